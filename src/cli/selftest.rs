//! `cobrar-gpu selftest`: is this GPU computing correctly? Every kernel against its CPU twin, every
//! model's training and embedding step against the CPU executor, the ranking against a CPU top-k, on
//! one adapter or all of them (`--adapter all`). A table on stdout, progress on stderr, the report as
//! JSON with `--json`; exit status 1 naming each failing check and the seed that replays it.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::GpuArgs;
use crate::gpu::GpuContext;
use crate::selftest::cache::{self, SelftestStatus};
use crate::selftest::report::{self, SelftestReport};
use crate::selftest::{self, AdapterOutcome, CHECKS, COVERAGE, Selection, SelftestFailed};

#[derive(Debug, Args)]
pub struct SelftestCommand {
    /// The quick set: every check with its small cases only (what `bench` runs first)
    #[arg(long)]
    pub quick: bool,
    /// Run only this check (repeatable; `--list` names them)
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    /// Seed of the inputs [default: from the clock; printed, so that a failure can be replayed]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Also write the report as JSON (adapters, drivers, version, every check's numbers)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file
    #[arg(long)]
    pub overwrite: bool,
    /// List the checks and exit
    #[arg(long)]
    pub list: bool,
}

/// An adapter to run on: the `--adapter` value that selects it alone, and its device (or why it could
/// not be opened).
pub type Target = (String, anyhow::Result<Arc<GpuContext>>);

/// The `--adapter` value that selects `info` among `all`: its backend when it is the only adapter of
/// that backend, else its name.
fn selecting_flag(info: &wgpu::AdapterInfo, all: &[wgpu::AdapterInfo]) -> String {
    let backend = info.backend.to_string().to_lowercase();
    if all.iter().filter(|a| a.backend == info.backend).count() == 1 {
        backend
    } else {
        format!("{:?}", info.name)
    }
}

/// The devices `--adapter` names: every adapter for `all`, else the one it selects.
pub fn targets(gpu: &GpuArgs) -> anyhow::Result<Vec<Target>> {
    let adapters = crate::gpu::context::enumerate_adapters();
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    if gpu.adapter.as_deref().map(str::trim) == Some("all") {
        anyhow::ensure!(
            !adapters.is_empty(),
            "no GPU adapter found: install a GPU driver, or on Linux without a GPU the software \
             Vulkan driver (`apt-get install mesa-vulkan-drivers libvulkan1`)"
        );
        Ok(adapters
            .iter()
            .zip(&infos)
            .map(|(a, i)| {
                (
                    selecting_flag(i, &infos),
                    GpuContext::from_adapter(a).map(Arc::new),
                )
            })
            .collect())
    } else {
        let ctx = gpu.context()?;
        Ok(vec![(selecting_flag(&ctx.info, &infos), Ok(ctx))])
    }
}

/// The selftest (its `quick` set, or all of it) on `ctx` before a command trusts the adapter: a
/// failing check ends the command with status 1, naming the failures, the seed that replays them
/// (`flag`: the `--adapter` to replay on) and `consequence` (what the command did not do).
pub fn must_pass(
    ctx: &Arc<GpuContext>,
    quick: bool,
    flag: &str,
    consequence: &str,
) -> anyhow::Result<SelftestStatus> {
    let seed = selftest::fresh_seed();
    let sel = Selection {
        quick,
        only: Vec::new(),
    };
    let outcome = run_on(ctx, &sel, seed)?;
    if !outcome.passed {
        return Err(SelftestFailed(format!(
            "{}\n{consequence}",
            selftest::failure_summary(&outcome, flag, seed, quick)
        ))
        .into());
    }
    Ok(SelftestStatus::of(&outcome, quick, seed))
}

/// Runs the selection on `ctx`, printing a line per check on stderr, and remembers the outcome for
/// this adapter, driver and binary.
pub fn run_on(ctx: &Arc<GpuContext>, sel: &Selection, seed: u64) -> anyhow::Result<AdapterOutcome> {
    eprintln!(
        "selftest on {} ({} set, seed {seed})",
        ctx.adapter_label(),
        if sel.quick { "quick" } else { "full" }
    );
    let outcome = selftest::run(ctx, sel, seed, |c| {
        eprintln!(
            "  {:<34} {}  {:.2}s",
            c.name,
            if c.passed { "pass" } else { "FAIL" },
            c.seconds
        );
        for f in c.failures.iter().take(3) {
            eprintln!("      {f}");
        }
    })?;
    // Only complete runs speak for the adapter.
    if sel.only.is_empty() {
        cache::store(
            &outcome.adapter,
            &SelftestStatus::of(&outcome, sel.quick, seed),
        );
    }
    Ok(outcome)
}

pub fn run(cmd: SelftestCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    if cmd.list {
        for c in CHECKS {
            let set = if c.full_only {
                "full set only"
            } else {
                "quick and full"
            };
            outln!("{:<34} {set:<15} kernels: {}", c.name, c.kernels.join(", "));
        }
        outln!(
            "{COVERAGE:<34} {:<15} every kernel of the engine ran",
            "quick and full"
        );
        return Ok(());
    }
    let sel = Selection {
        quick: cmd.quick,
        only: cmd.checks.clone(),
    };
    sel.checks()?; // unknown --check names before any device is opened
    let json = match &cmd.json {
        Some(p) => Some(crate::output::file(p, "--json", cmd.overwrite, &[])?),
        None => None,
    };
    let seed = cmd.seed.unwrap_or_else(selftest::fresh_seed);
    let mut outcomes = Vec::new();
    let mut unusable = Vec::new();
    let mut flags = Vec::new();
    for (flag, ctx) in targets(gpu)? {
        match ctx {
            Ok(ctx) => {
                outcomes.push(run_on(&ctx, &sel, seed)?);
                flags.push(flag);
            }
            Err(e) => unusable.push(format!("{flag}: {e:#}")),
        }
    }
    out!("{}", report::table(&outcomes));
    let report = SelftestReport::new(seed, cmd.quick, outcomes);
    if let Some(path) = &json {
        crate::report::run::write_json(path, &report)?;
    }
    let mut failures: Vec<String> = report
        .adapters
        .iter()
        .zip(&flags)
        .map(|(a, flag)| selftest::failure_summary(a, flag, seed, cmd.quick))
        .filter(|s| !s.is_empty())
        .collect();
    failures.extend(
        unusable
            .into_iter()
            .map(|e| format!("an adapter could not be opened: {e}")),
    );
    if failures.is_empty() {
        eprintln!(
            "selftest passed on {} adapter(s) (seed {seed})",
            report.adapters.len()
        );
        Ok(())
    } else {
        Err(SelftestFailed(failures.join("\n")).into())
    }
}
