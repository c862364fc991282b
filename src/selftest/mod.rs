//! `selftest`: is this GPU computing correctly? Every kernel, in every override-constant variant the
//! models use, against its CPU twin on fresh seeded inputs; the whole training step and embedding step
//! of each of the six models against the CPU executor; the ranking, in both variants, against a CPU
//! top-k. The test suite runs the same checks (`tests/gpu`), so the tolerances are defined once, in
//! the checks and [`verdict`].
//!
//! A check's inputs come from one seed: the run's seed mixed with the check's name
//! ([`check_seed`]), so `selftest --check NAME --seed S` replays exactly the inputs of a failure.
//! Passing outcomes are remembered per adapter, driver and binary ([`cache`]) so that `train` can say
//! in `metrics.json` whether the adapter it ran on was checked.

pub mod cache;
pub mod harness;
pub mod kernels;
pub mod models;
pub mod ranking;
pub mod report;
pub mod verdict;

use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::gpu::GpuContext;
pub use harness::{Harness, Rng};
pub use verdict::Verdict;

/// What a check runs.
pub type CheckFn = fn(&Harness, &mut Rng, &mut Verdict) -> anyhow::Result<()>;

/// One check of the selftest.
pub struct Check {
    /// `kernel:spmm`, `model:cobrar`, `ranking:dot`.
    pub name: &'static str,
    /// The kernels it exercises (names or families before a dot), for the failure message.
    pub kernels: &'static [&'static str],
    pub run: CheckFn,
    /// Only in the full set (large shapes that add time but no kernel).
    pub full_only: bool,
}

macro_rules! check {
    ($name:literal, $run:path, [$($k:literal),* $(,)?]) => {
        Check { name: $name, kernels: &[$($k),*], run: $run, full_only: false }
    };
    ($name:literal, $run:path, [$($k:literal),* $(,)?], full) => {
        Check { name: $name, kernels: &[$($k),*], run: $run, full_only: true }
    };
}

/// Every check, kernels first (a miscompiled kernel is named there before the models that use it).
pub const CHECKS: &[Check] = &[
    check!("kernel:spmm", kernels::spmm, ["spmm"]),
    check!("kernel:column_sums", kernels::column_sums, ["column_sums"]),
    check!(
        "kernel:dense_forward",
        kernels::dense_forward,
        ["dense_forward"]
    ),
    check!(
        "kernel:dense_forward.many_tiles",
        kernels::dense_forward_many_tiles,
        ["dense_forward.relu"],
        full
    ),
    check!(
        "kernel:dense_backward_data",
        kernels::dense_backward_data,
        ["dense_backward_data"]
    ),
    check!(
        "kernel:dense_backward_weight",
        kernels::dense_backward_weight,
        ["dense_backward_weight"]
    ),
    check!("kernel:score_loss", kernels::score_loss, ["score_loss"]),
    check!(
        "kernel:bpr_loss",
        kernels::bpr_loss,
        ["bpr_loss", "score_loss.sum"]
    ),
    check!("kernel:propagate", kernels::propagate, ["propagate"]),
    check!("kernel:adam_dense", kernels::adam_dense, ["adam_dense"]),
    check!("kernel:adam_table", kernels::adam_table, ["adam_table"]),
    check!(
        "kernel:adam_table.lazy",
        kernels::adam_table_lazy,
        ["adam_table.lazy"]
    ),
    check!("kernel:batch_index", kernels::batch_index, ["batch_index"]),
    check!(
        "kernel:spmm_transpose",
        kernels::spmm_transpose,
        ["spmm_transpose"]
    ),
    check!("kernel:vae", kernels::vae, ["vae"]),
    check!(
        "kernel:strided_copy",
        kernels::strided_copy,
        ["strided_copy"]
    ),
    check!(
        "kernel:reduce+copy",
        kernels::reduce_and_copy,
        ["reduce", "copy"]
    ),
    check!(
        "ranking:sessions",
        ranking::session_embeddings,
        ["rank_topk"]
    ),
    check!(
        "ranking:dot",
        ranking::dot_widths,
        ["rank_topk.dot", "rank_topk.norms"]
    ),
    check!(
        "model:cobrar",
        models::cobrar,
        [
            "spmm",
            "dense_*",
            "column_sums",
            "score_loss",
            "adam_*",
            "batch_index"
        ]
    ),
    check!(
        "model:deepmf",
        models::deepmf,
        [
            "spmm",
            "dense_*",
            "column_sums",
            "score_loss",
            "adam_*",
            "batch_index"
        ]
    ),
    check!(
        "model:cobrar-si",
        models::cobrar_si,
        ["spmm", "dense_*", "column_sums", "score_loss", "adam_*"]
    ),
    check!(
        "model:bpr",
        models::bpr,
        ["bpr_loss", "adam_table", "score_loss.sum"]
    ),
    check!(
        "model:lazy-adam",
        models::lazy_adam,
        [
            "adam_table.lazy",
            "adam_dense",
            "spmm",
            "dense_*",
            "bpr_loss"
        ]
    ),
    check!(
        "model:lightgcn",
        models::lightgcn,
        ["propagate", "bpr_loss", "adam_dense"]
    ),
    check!(
        "model:multvae",
        models::multvae,
        ["spmm*", "dense_*", "vae", "strided_copy", "adam_dense"]
    ),
    check!("model:mostpop", models::mostpop, ["(embedding copy)"]),
];

/// The name of the check that every kernel the engine has was compiled and run by the others.
pub const COVERAGE: &str = "coverage:every kernel";

/// The check called `name`.
pub fn find(name: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.name == name)
}

/// The seed of check `name` in a run seeded with `seed` (FNV-1a of the name, mixed in).
pub fn check_seed(seed: u64, name: &str) -> u64 {
    seed ^ crate::util::fnv1a(name.bytes().map(u64::from))
}

/// A fresh seed from the clock (printed with every run, so any failure can be replayed).
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        % 1_000_000_000_000
}

/// What one check found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub name: String,
    pub kernels: Vec<String>,
    pub passed: bool,
    /// The worst comparison's error and its tolerance (absent for exact or boolean checks only).
    pub max_error: Option<f64>,
    pub tolerance: Option<f64>,
    /// What the worst comparison compared.
    pub worst: Option<String>,
    pub comparisons: usize,
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Runs one check on `h` with the inputs of `seed` (the run's seed; mixed with the check's name).
/// Errors and panics inside the check are failures of the check, not of the program.
pub fn run_check(h: &Harness, check: &Check, seed: u64) -> CheckOutcome {
    let started = Instant::now();
    let mut rng = Rng::seed_from_u64(check_seed(seed, check.name));
    let mut v = Verdict::default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (check.run)(h, &mut rng, &mut v)
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => v.fail(format!("{e:#}")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            v.fail(format!("panicked: {msg}"));
        }
    }
    if v.comparisons() == 0 {
        v.fail("compared nothing");
    }
    // A device error (out of memory, lost device) reported while the check ran is its failure too.
    if let Err(e) = h.ctx.check() {
        v.fail(format!("the device reported: {e}"));
    }
    outcome(
        check.name,
        check.kernels,
        &v,
        started.elapsed().as_secs_f64(),
    )
}

fn outcome(name: &str, kernels: &[&str], v: &Verdict, seconds: f64) -> CheckOutcome {
    let finite = |x: f64| x.is_finite().then_some(x);
    CheckOutcome {
        name: name.to_string(),
        kernels: kernels.iter().map(|k| k.to_string()).collect(),
        passed: v.passed(),
        max_error: v.worst().and_then(|w| finite(w.error)),
        tolerance: v.worst().and_then(|w| finite(w.tolerance)),
        worst: v.worst().map(|w| w.what.clone()),
        comparisons: v.comparisons(),
        failures: v.failures().to_vec(),
        seconds,
    }
}

/// The adapter a selftest ran on, as its JSON and the cache record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterIdentity {
    pub name: String,
    pub vendor: String,
    pub device: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// Which limits the device was created with (`adapter`, or `webgpu` under `COBRAR_LIMITS`).
    pub limits: String,
}

impl AdapterIdentity {
    pub fn of(ctx: &GpuContext) -> AdapterIdentity {
        let i = &ctx.info;
        AdapterIdentity {
            name: i.name.clone(),
            vendor: format!("0x{:04x}", i.vendor),
            device: format!("0x{:04x}", i.device),
            backend: i.backend.to_string(),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
            limits: ctx.limits_name().to_string(),
        }
    }

    /// `name (backend)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.backend)
    }
}

/// Every check on one adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterOutcome {
    pub adapter: AdapterIdentity,
    pub passed: bool,
    pub seconds: f64,
    pub checks: Vec<CheckOutcome>,
}

impl AdapterOutcome {
    pub fn failed(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Which checks a run takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The quick set: every check, each with its quick cases only, no full-only check.
    pub quick: bool,
    /// Only these checks (by name); empty: all.
    pub only: Vec<String>,
}

impl Selection {
    /// The checks selected, or one line naming the unknown ones and the known ones.
    pub fn checks(&self) -> anyhow::Result<Vec<&'static Check>> {
        if let Some(bad) = self
            .only
            .iter()
            .find(|n| find(n).is_none() && n.as_str() != COVERAGE)
        {
            let names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
            anyhow::bail!(
                "--check {bad:?}: no such check; checks: {}",
                names.join(", ")
            );
        }
        Ok(CHECKS
            .iter()
            .filter(|c| {
                if self.only.is_empty() {
                    !(self.quick && c.full_only)
                } else {
                    self.only.iter().any(|n| n == c.name)
                }
            })
            .collect())
    }
}

/// Runs the selected checks on `ctx` with `seed`, calling `each` after every check (progress). When
/// every check runs, a last one verifies that every kernel of the engine was compiled on the device
/// along the way (a check that stopped exercising a kernel is a hole in the selftest).
pub fn run(
    ctx: &Arc<GpuContext>,
    sel: &Selection,
    seed: u64,
    mut each: impl FnMut(&CheckOutcome),
) -> anyhow::Result<AdapterOutcome> {
    let started = Instant::now();
    let h = Harness {
        ctx: ctx.clone(),
        quick: sel.quick,
    };
    let mut checks = Vec::new();
    for c in sel.checks()? {
        let o = run_check(&h, c, seed);
        each(&o);
        checks.push(o);
    }
    if sel.only.is_empty() || sel.only.iter().any(|n| n == COVERAGE) {
        let o = coverage(ctx);
        each(&o);
        checks.push(o);
    }
    Ok(AdapterOutcome {
        adapter: AdapterIdentity::of(ctx),
        passed: checks.iter().all(|c| c.passed),
        seconds: started.elapsed().as_secs_f64(),
        checks,
    })
}

/// Every kernel definition of the engine was compiled on the device (by the checks before).
fn coverage(ctx: &GpuContext) -> CheckOutcome {
    let compiled = ctx.registry.compiled_names();
    let missing: Vec<&str> = crate::kernels::ALL
        .iter()
        .map(|d| d.name)
        .filter(|n| !compiled.contains(n))
        .collect();
    let mut v = Verdict::default();
    v.ensure(missing.is_empty(), || {
        format!("no check ran {}", missing.join(", "))
    });
    outcome(COVERAGE, &[], &v, 0.0)
}

/// `selftest` found a wrong result: the command's exit status is 1 (other errors give 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelftestFailed(pub String);

/// One line per failing check: adapter, check, its first failure, and how to replay it (`adapter_flag`:
/// the `--adapter` value that selects this adapter).
pub fn failure_summary(
    outcome: &AdapterOutcome,
    adapter_flag: &str,
    seed: u64,
    quick: bool,
) -> String {
    let mut lines = Vec::new();
    for c in outcome.failed() {
        let first = c.failures.first().map(String::as_str).unwrap_or("failed");
        let kernels = if c.kernels.is_empty() {
            String::new()
        } else {
            format!(" (kernels {})", c.kernels.join(", "))
        };
        let replay = if c.name == COVERAGE {
            String::new()
        } else {
            format!(
                "; replay: cobrar-gpu selftest --adapter {adapter_flag} --check {}{} --seed {seed}",
                c.name,
                if quick { " --quick" } else { "" }
            )
        };
        lines.push(format!(
            "{} failed on {}{kernels}: {first}{replay}",
            c.name,
            outcome.adapter.label()
        ));
    }
    lines.join("\n")
}
