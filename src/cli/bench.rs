//! `cobrar-gpu bench`: what bounds the speed of training on this machine, separated — the host's batch
//! pipeline alone, the GPU alone (replaying prepared batches), the two together — plus the adapter's
//! own copy bandwidth and, per kernel, the bytes and operations counted from the step's plan against
//! its measured time (a roofline). One full evaluation is timed too. JSON on stdout (with the adapter's
//! name, backend and driver, for comparing GPUs across vendors), a table on stderr.
//!
//! Every adapter first passes the selftest's quick set (a throughput from a miscompiling driver is not
//! a result); the outcome is in the JSON. `--workload` benchmarks a built-in synthetic dataset anyone
//! can generate (its hash in the JSON proves two machines ran the same data); `--adapter all` measures
//! every adapter in one process; `--standard-models` every model the study trains.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::GpuArgs;
use super::data::DatasetArgs;
use super::train::TrainArgs;
use crate::batch::{HostBatch, IndexStrategy};
use crate::eval::Evaluator;
use crate::gpu::GpuContext;
use crate::gpu::exec::GpuExec;
use crate::gpu::executor::Executor;
use crate::gpu::memory::{BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::{Cost, PlanBuilder};
use crate::kernels::copy;
use crate::models::{Model, ModelKind, NetBatch, ParamCounts};
use crate::pipeline::{self, IndexProbe, Item};
use crate::report::run::{Provenance, write_json};
use crate::selftest::AdapterIdentity;
use crate::selftest::cache::SelftestStatus;
use crate::train::TrainConfig;

#[derive(Debug, Args)]
pub struct BenchCommand {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Timed training steps (end to end, and GPU alone)
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub steps: usize,
    /// Untimed steps first (shader compilation, caches)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub warmup: usize,
    /// Steps profiled kernel by kernel with GPU timestamps (0: skip)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub profile_steps: usize,
    /// Batches the host pipeline builds for its ceiling (no GPU work)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub host_steps: usize,
    /// Skip the full evaluation
    #[arg(long)]
    pub no_eval: bool,
    /// The models of the study in one run instead of --model/--arch: CoBraR 512,64 and 2048,128,
    /// DeepMF 512,64, BPR-MF 64, LightGCN 64 (K = 3) and MultVAE 600,200, each with its defaults
    #[arg(long, conflicts_with_all = ["model", "arch"])]
    pub standard_models: bool,
    /// Measure even on an adapter that fails the selftest's quick set (recorded as such)
    #[arg(long)]
    pub skip_selftest: bool,
    /// Also write the JSON report to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file
    #[arg(long)]
    pub overwrite: bool,
}

/// Version of the bench JSON layout: 2 added the file envelope, workloads, data hashes, the selftest
/// outcome and the adapter's identity (1 was one bare report).
pub const SCHEMA: u32 = 2;

/// The models `--standard-models` measures: (model, architecture), from each model's descriptor.
pub fn standard_models() -> Vec<(ModelKind, &'static str)> {
    crate::models::registry::bench_models()
}

/// A bench JSON file: who measured, with what, and one report per adapter and model.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct BenchFile {
    pub schema: u32,
    #[serde(flatten)]
    pub provenance: Provenance,
    /// The host's processor (the batch pipeline runs there).
    pub cpu: String,
    pub cores: usize,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub runs: Vec<BenchReport>,
}

/// The built-in workload a report measured.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct WorkloadRef {
    pub name: String,
    /// SHA-256 of the generated interaction matrix.
    pub hash: String,
}

/// One kernel on the roofline.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct KernelTime {
    pub kernel: String,
    /// Dispatches of this kernel per step.
    pub dispatches: usize,
    /// Bytes read and written per step, counted from the plan.
    pub bytes: u64,
    /// Floating-point operations per step, counted from the plan.
    pub flops: u64,
    /// Mean GPU milliseconds per step (timestamp queries).
    pub ms_per_step: f64,
    /// Achieved bandwidth, and as a fraction of the measured copy bandwidth.
    pub gbps: f64,
    pub copy_fraction: f64,
    pub gflops: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BenchReport {
    pub adapter: AdapterIdentity,
    /// The selftest's quick set on this adapter just before measuring.
    pub selftest: SelftestStatus,
    pub dataset: String,
    pub workload: Option<WorkloadRef>,
    /// SHA-256 of the data and split trained on (`Dataset::content_hash`).
    pub data_hash: String,
    pub users: usize,
    pub items: usize,
    pub train_interactions: usize,
    pub model: String,
    pub arch: String,
    pub sampler: String,
    pub batch_size: usize,
    pub negatives: usize,
    /// How the tables stepped (absent for the study's Adam, as in older bench files).
    #[serde(default, skip_serializing_if = "crate::config::Optimizer::is_adam")]
    pub optimizer: crate::config::Optimizer,
    pub parameters: u64,
    pub dispatches_per_step: usize,
    /// Who built the gradient index, and the start-up measurement behind the choice.
    pub batch_pipeline: IndexProbe,
    /// The batch pipeline alone (sampler + every builder), no GPU: the host's ceiling.
    pub host_steps_per_s: f64,
    /// The same ceiling with the other index strategy.
    pub host_steps_per_s_other_index: f64,
    /// Prepared batches replayed, no host work in the loop: the GPU's ceiling.
    pub gpu_steps_per_s: f64,
    /// The real pipeline end to end.
    pub steps_per_s: f64,
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_epoch: usize,
    pub epoch_seconds_estimate: f64,
    /// The adapter's copy bandwidth, measured by a copy kernel (read + write bytes per second).
    pub copy_gbps: f64,
    pub kernels: Vec<KernelTime>,
    pub kernel_ms_per_step: f64,
    /// One full evaluation: embeddings of all users and items, top-20 over all items for every user
    /// (the second of the process; the first, which also compiles, is `eval_seconds_cold`).
    pub eval_seconds: f64,
    pub eval_seconds_cold: f64,
}

/// Copy bandwidth of the adapter: the best of a few copies of up to 64 MiB with the copy kernel,
/// timed by the adapter's timestamps when it has them (as the kernels it is compared with are), by
/// the wall clock around submit-and-wait otherwise.
pub fn copy_bandwidth(ctx: &Arc<GpuContext>) -> anyhow::Result<f64> {
    let n = ((64usize << 20) / 4).min((ctx.max_binding() / 4) as usize) & !3;
    let layout = MemoryLayout::new(
        vec![
            BufferSpec::f32("src", n, Role::Work),
            BufferSpec::f32("dst", n, Role::Work),
        ],
        ctx.max_binding(),
        None,
    )?;
    let mut exec = GpuExec::new(ctx.clone(), layout.clone())?;
    let timestamps = exec.enable_profiling(4);
    let (src, dst) = (layout.id("src"), layout.id("dst"));
    let mut pb = PlanBuilder::new(&layout, exec.max_per_dim());
    let (p, grid) = copy::params(n, 16, pb.max_per_dim);
    pb.dispatch(&copy::DEF, &[src.into(), dst.into()], &p, grid);
    let plan = pb.finish();
    let mut best = f64::INFINITY;
    for _ in 0..8 {
        let t = Instant::now();
        exec.run(&plan)?;
        exec.wait()?;
        let wall = t.elapsed().as_secs_f64();
        let gpu: f64 = exec.kernel_times().iter().map(|&(_, ns)| ns * 1e-9).sum();
        best = best.min(if timestamps && gpu > 0.0 { gpu } else { wall });
    }
    Ok(copy::bytes(n) as f64 / best / 1e9)
}

/// The training configurations a bench run measures.
fn configs(cmd: &BenchCommand) -> anyhow::Result<Vec<TrainConfig>> {
    if !cmd.standard_models {
        let cfg = cmd.train.config()?;
        anyhow::ensure!(
            cfg.model.trains(),
            "bench measures training steps, and {} trains none; bench another --model",
            cfg.model
        );
        return Ok(vec![cfg]);
    }
    standard_models()
        .into_iter()
        .map(|(model, arch)| {
            let mut args = cmd.train.clone();
            args.model = model;
            args.arch = Some(arch.parse()?);
            args.dropout = None;
            args.sampler = None;
            args.config()
        })
        .collect()
}

/// The host's processor name, from `/proc/cpuinfo` where there is one.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn run(cmd: BenchCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    for (flag, n) in [("--steps", cmd.steps), ("--host-steps", cmd.host_steps)] {
        anyhow::ensure!(n >= 1, "{flag} must be at least 1, got 0");
    }
    let configs = configs(&cmd)?;
    let json = match &cmd.json {
        Some(p) => {
            let data: Vec<&std::path::Path> = cmd
                .dataset
                .dataset
                .iter()
                .map(std::path::Path::new)
                .collect();
            Some(crate::output::file(p, "--json", cmd.overwrite, &data)?)
        }
        None => None,
    };
    let ds = cmd.dataset.load()?;
    let data_hash = ds.content_hash();
    let workload = ds.report.workload.as_ref().map(|w| WorkloadRef {
        name: w.name.clone(),
        hash: w.hash.clone(),
    });
    let mut runs = Vec::new();
    for (flag, ctx) in super::selftest::targets(gpu)? {
        let ctx = ctx?;
        let status = if cmd.skip_selftest {
            SelftestStatus::skipped()
        } else {
            super::selftest::must_pass(
                &ctx,
                true,
                &flag,
                "bench measured nothing: a throughput from a miscompiling driver is not a result \
                 (--skip-selftest measures anyway, recorded as skipped)",
            )?
        };
        for cfg in &configs {
            let mut report = measure(&cmd, &ctx, &ds, cfg)?;
            report.selftest = status.clone();
            report.workload = workload.clone();
            report.data_hash = data_hash.clone();
            eprint!("{}", table(&report));
            runs.push(report);
        }
    }
    let file = BenchFile {
        schema: SCHEMA,
        provenance: Provenance::here(),
        cpu: cpu_name(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        runs,
    };
    outln!("{}", serde_json::to_string_pretty(&file)?);
    if let Some(path) = &json {
        write_json(path, &file)?;
    }
    Ok(())
}

/// Measures training `cfg` on `ds` on `ctx`: the host pipeline, the copy bandwidth, the GPU alone,
/// end to end, kernel by kernel, and a full evaluation.
fn measure(
    cmd: &BenchCommand,
    ctx: &Arc<GpuContext>,
    ds: &crate::data::Dataset,
    cfg: &TrainConfig,
) -> anyhow::Result<BenchReport> {
    let adapter = AdapterIdentity::of(ctx);
    let counts = ParamCounts::of(cfg, ds);
    let (mut session, sampler, probe) = crate::train::setup(ctx.clone(), ds, cfg)?;
    eprintln!(
        "bench: {} {} on {} ({} users, {} items), {} sampler, on {}; gradient index built by the {:?} ({})",
        cfg.model,
        cfg.arch,
        ds.name,
        ds.n_users(),
        ds.n_items(),
        serde_json::to_value(cfg.sampler)?
            .as_str()
            .unwrap_or_default(),
        ctx.adapter_label(),
        probe.strategy,
        probe.chosen_by,
    );
    let builders = probe.builders;
    let (by_user, by_item) = (&ds.train, &ds.train_by_item);

    // 1. The host alone, with the strategy in use and with the other one.
    // Models whose gradient index the GPU can build: their host batches are built both ways.
    let two_tower = cfg.model.spec().index_probe.is_some();
    let host = |index: IndexStrategy| {
        let model = session.model.clone();
        let build = move |p: &[crate::sampler::Pair]| match two_tower {
            true => Box::new(HostBatch::build(p, by_user, by_item, index)) as NetBatch,
            false => model.build_batch(p), // one way to build its batches
        };
        pipeline::host_ceiling(&sampler, cmd.host_steps, build, builders)
    };
    let other = match probe.strategy {
        IndexStrategy::Host => IndexStrategy::Gpu,
        IndexStrategy::Gpu => IndexStrategy::Host,
    };
    let host_steps_per_s = host(probe.strategy)?;
    let host_other = host(other)?;
    eprintln!("bench: host pipeline {host_steps_per_s:.0} steps/s ({builders} builders)");

    // 2. The adapter's copy bandwidth.
    let copy_gbps = copy_bandwidth(ctx)?;
    eprintln!("bench: copy kernel {copy_gbps:.2} GB/s");

    // 3. The GPU alone: prepared batches replayed.
    let prepared: Vec<NetBatch> = sampler
        .epoch(1)
        .take(cmd.steps.clamp(1, 32))
        .map(|p| session.model.build_batch(&p))
        .collect();
    let dispatches = session
        .train_plan(&prepared[0], session.t + 1)
        .dispatch_count();
    for b in prepared.iter().cycle().take(cmd.warmup.max(1)) {
        session.step(b, false)?;
    }
    session.exec.wait()?;
    let t = Instant::now();
    for b in prepared.iter().cycle().take(cmd.steps) {
        session.step(b, false)?;
    }
    session.exec.wait()?;
    let gpu_steps_per_s = cmd.steps as f64 / t.elapsed().as_secs_f64().max(1e-9);
    eprintln!("bench: GPU alone {gpu_steps_per_s:.2} steps/s");

    // 4. End to end through the pipeline, then kernel by kernel.
    let mut seconds = 0.0;
    let mut sums: Vec<(String, usize, f64, Cost)> = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let model = session.model.clone();
        let build = move |p: &[crate::sampler::Pair]| model.build_batch(p);
        let per_epoch = sampler.steps_per_epoch();
        let total = cmd.warmup + cmd.steps + cmd.profile_steps;
        let epochs = 1..=(total.div_ceil(per_epoch) as u64 + 1);
        let mut rx = pipeline::spawn(scope, &sampler, epochs, per_epoch, build, builders);
        let mut next = || -> anyhow::Result<NetBatch> {
            loop {
                if let Item::Batch(b) = rx.recv()? {
                    return Ok(b);
                }
            }
        };
        for _ in 0..cmd.warmup {
            session.step(&next()?, false)?;
        }
        session.exec.wait()?;
        let start = Instant::now();
        for _ in 0..cmd.steps {
            session.step(&next()?, false)?;
        }
        session.exec.wait()?;
        seconds = start.elapsed().as_secs_f64();
        if cmd.profile_steps > 0 && session.exec.enable_profiling(256) {
            for _ in 0..cmd.profile_steps {
                let b = next()?;
                let plan = session.train_plan(&b, session.t + 1);
                session.step(&b, false)?;
                for &(name, ns) in session.exec.kernel_times() {
                    match sums.iter_mut().find(|s| s.0 == name) {
                        Some(s) => {
                            s.1 += 1;
                            s.2 += ns;
                        }
                        None => sums.push((name.to_string(), 1, ns, Cost::default())),
                    }
                }
                for s in sums.iter_mut() {
                    s.3 = s.3 + plan.cost_of(&s.0);
                }
            }
        } else if cmd.profile_steps > 0 {
            eprintln!("bench: the adapter has no timestamp queries; per-kernel times skipped");
        }
        Ok(())
    })?;
    let steps_per_s = cmd.steps as f64 / seconds.max(1e-9);
    let p = cmd.profile_steps.max(1) as f64;
    let kernels: Vec<KernelTime> = sums
        .into_iter()
        .map(|(kernel, n, ns, cost)| {
            let ms = ns / p / 1e6;
            let (bytes, flops) = (cost.bytes as f64 / p, cost.flops as f64 / p);
            let gbps = bytes / (ms * 1e6).max(1e-9);
            KernelTime {
                kernel,
                dispatches: (n as f64 / p).round() as usize,
                bytes: bytes as u64,
                flops: flops as u64,
                ms_per_step: ms,
                gbps,
                copy_fraction: gbps / copy_gbps,
                gflops: flops / (ms * 1e6).max(1e-9),
            }
        })
        .collect();
    // The first evaluation of a process also compiles its kernels and picks the ranking variant.
    let mut evaluate = || -> anyhow::Result<f64> {
        let t = Instant::now();
        session.embed_all()?;
        let mut evaluator = Evaluator::new(&[20])?;
        evaluator.evaluate_session(&mut session, &ds.test, ds)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let (eval_seconds_cold, eval_seconds) = if cmd.no_eval {
        (0.0, 0.0)
    } else {
        (evaluate()?, evaluate()?)
    };
    Ok(BenchReport {
        adapter,
        selftest: SelftestStatus::not_run(),
        dataset: ds.name.clone(),
        workload: None,
        data_hash: String::new(),
        users: ds.n_users(),
        items: ds.n_items(),
        train_interactions: ds.train.nnz(),
        model: cfg.model.to_string(),
        arch: cfg.arch.to_string(),
        sampler: serde_json::to_value(cfg.sampler)?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        batch_size: cfg.batch_size,
        negatives: cfg.negatives,
        optimizer: cfg.optimizer,
        parameters: counts.total,
        dispatches_per_step: dispatches,
        batch_pipeline: probe,
        host_steps_per_s,
        host_steps_per_s_other_index: host_other,
        gpu_steps_per_s,
        steps_per_s,
        steps: cmd.steps,
        seconds,
        steps_per_epoch: sampler.steps_per_epoch(),
        epoch_seconds_estimate: sampler.steps_per_epoch() as f64 / steps_per_s,
        copy_gbps,
        kernel_ms_per_step: kernels.iter().map(|k| k.ms_per_step).sum(),
        kernels,
        eval_seconds,
        eval_seconds_cold,
    })
}

/// The human-readable summary: the three ceilings and the roofline.
pub fn table(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{} {} on {} — {} (selftest {})",
        r.model,
        r.arch,
        r.dataset,
        r.adapter.label(),
        r.selftest.status
    );
    let _ = writeln!(
        s,
        "host pipeline {:>9.1} steps/s  (other index strategy {:.1})",
        r.host_steps_per_s, r.host_steps_per_s_other_index
    );
    let _ = writeln!(s, "GPU alone     {:>9.2} steps/s", r.gpu_steps_per_s);
    let _ = writeln!(s, "end to end    {:>9.2} steps/s", r.steps_per_s);
    let _ = writeln!(s, "copy kernel   {:>9.2} GB/s", r.copy_gbps);
    let _ = writeln!(
        s,
        "{:<30} {:>4} {:>10} {:>10} {:>9} {:>8} {:>6} {:>8}",
        "kernel", "n", "MB/step", "MFLOP", "ms/step", "GB/s", "copy%", "GFLOP/s"
    );
    for k in &r.kernels {
        let _ = writeln!(
            s,
            "{:<30} {:>4} {:>10.1} {:>10.1} {:>9.3} {:>8.2} {:>5.0}% {:>8.2}",
            k.kernel,
            k.dispatches,
            k.bytes as f64 / 1e6,
            k.flops as f64 / 1e6,
            k.ms_per_step,
            k.gbps,
            100.0 * k.copy_fraction,
            k.gflops
        );
    }
    if r.eval_seconds > 0.0 {
        let _ = writeln!(
            s,
            "full evaluation {:.2} s (first of the process {:.2} s)",
            r.eval_seconds, r.eval_seconds_cold
        );
    }
    s
}
