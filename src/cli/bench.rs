//! `cobrar-gpu bench`: training steps per second (the real pipeline: sampler thread, uploads, one
//! submit per step), per-kernel GPU times from timestamp queries, and the time of one full-ranking
//! evaluation — as JSON with the adapter's name, backend and driver, for comparing GPUs across vendors.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::GpuArgs;
use super::data::DatasetArgs;
use super::train::TrainArgs;
use crate::batch::HostBatch;
use crate::eval::Evaluator;
use crate::gpu::context::AdapterSummary;
use crate::models::Model;
use crate::models::ParamCounts;
use crate::report::run::{git_revision, version, write_json};

#[derive(Debug, Args)]
pub struct BenchCommand {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Timed training steps
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub steps: usize,
    /// Untimed steps first (shader compilation, caches)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub warmup: usize,
    /// Steps profiled kernel by kernel with GPU timestamps (0: skip)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub profile_steps: usize,
    /// Also write the JSON report to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct KernelTime {
    pub kernel: String,
    /// Dispatches of this kernel per step.
    pub dispatches: usize,
    /// Mean GPU milliseconds per step spent in this kernel.
    pub ms_per_step: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub program: String,
    pub version: String,
    pub git_revision: String,
    pub adapter: AdapterSummary,
    pub dataset: String,
    pub users: usize,
    pub items: usize,
    pub train_interactions: usize,
    pub model: String,
    pub arch: String,
    pub sampler: String,
    pub batch_size: usize,
    pub negatives: usize,
    pub parameters: u64,
    pub dispatches_per_step: usize,
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_s: f64,
    pub steps_per_epoch: usize,
    pub epoch_seconds_estimate: f64,
    pub kernels: Vec<KernelTime>,
    pub kernel_ms_per_step: f64,
    /// One full evaluation: embeddings of all users and items, top-20 over all items for every user.
    pub eval_seconds: f64,
}

pub fn run(cmd: BenchCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let cfg = cmd.train.config()?;
    let ds = cmd.dataset.load()?;
    let ctx = gpu.context()?;
    let adapter = AdapterSummary::from(&ctx.info);
    let counts = ParamCounts::new(cfg.model, &cfg.arch, ds.n_users(), ds.n_items());
    let (mut session, sampler) = crate::train::setup(ctx, &ds, &cfg)?;
    eprintln!(
        "bench: {} on {} ({} users, {} items) with {} {}, {} sampler, on {} ({})",
        cfg.model,
        ds.name,
        ds.n_users(),
        ds.n_items(),
        cfg.model,
        cfg.arch,
        serde_json::to_value(cfg.sampler)?,
        adapter.name,
        adapter.backend
    );
    let (n_users, n_items) = (ds.n_users(), ds.n_items());
    let total = cmd.warmup + cmd.steps + cmd.profile_steps;
    let mut seconds = 0.0;
    let mut sums: Vec<(String, usize, f64)> = Vec::new();
    let mut dispatches = 0;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = sync_channel::<HostBatch>(4);
        let sampler = &sampler;
        let model = session.model.clone();
        scope.spawn(move || {
            let mut sent = 0;
            for epoch in 1.. {
                for pairs in sampler.epoch(epoch) {
                    if sent == total || tx.send(model.build_batch(&pairs)).is_err() {
                        return;
                    }
                    sent += 1;
                }
            }
        });
        for _ in 0..cmd.warmup {
            let b = rx.recv()?;
            dispatches = session.train_plan(&b, session.t + 1).dispatch_count();
            session.step(&b, false)?;
        }
        session.exec.wait()?;
        let start = Instant::now();
        for _ in 0..cmd.steps {
            session.step(&rx.recv()?, false)?;
        }
        session.exec.wait()?;
        seconds = start.elapsed().as_secs_f64();
        if cmd.profile_steps > 0 && session.exec.enable_profiling(256) {
            for _ in 0..cmd.profile_steps {
                session.step(&rx.recv()?, false)?;
                for &(name, ns) in session.exec.kernel_times() {
                    match sums.iter_mut().find(|s| s.0 == name) {
                        Some(s) => {
                            s.1 += 1;
                            s.2 += ns;
                        }
                        None => sums.push((name.to_string(), 1, ns)),
                    }
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
        .map(|(kernel, n, ns)| KernelTime {
            kernel,
            dispatches: (n as f64 / p).round() as usize,
            ms_per_step: ns / p / 1e6,
        })
        .collect();
    let t = Instant::now();
    session.embed_all()?;
    let mut evaluator = Evaluator::new(&[20])?;
    evaluator.evaluate_session(&session, &ds.test, &ds)?;
    let eval_seconds = t.elapsed().as_secs_f64();
    let report = BenchReport {
        program: "cobrar-gpu".into(),
        version: version(),
        git_revision: git_revision(),
        adapter,
        dataset: ds.name.clone(),
        users: n_users,
        items: n_items,
        train_interactions: ds.train.nnz(),
        model: cfg.model.to_string(),
        arch: cfg.arch.to_string(),
        sampler: serde_json::to_value(cfg.sampler)?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        batch_size: cfg.batch_size,
        negatives: cfg.negatives,
        parameters: counts.total,
        dispatches_per_step: dispatches,
        steps: cmd.steps,
        seconds,
        steps_per_s,
        steps_per_epoch: sampler.steps_per_epoch(),
        epoch_seconds_estimate: sampler.steps_per_epoch() as f64 / steps_per_s,
        kernel_ms_per_step: kernels.iter().map(|k| k.ms_per_step).sum(),
        kernels,
        eval_seconds,
    };
    let text = serde_json::to_string_pretty(&report)?;
    outln!("{text}");
    if let Some(path) = &cmd.json {
        write_json(path, &report)?;
    }
    Ok(())
}
