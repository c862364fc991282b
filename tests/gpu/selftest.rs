//! The selftest as a whole: its quick set (what `bench` runs first) passes on the test adapter and, on
//! a device of its own, compiles and runs every kernel the engine has.

use std::sync::Arc;

use cobrar_gpu::gpu::GpuContext;
use cobrar_gpu::selftest::{self, COVERAGE, Selection};

#[test]
fn the_quick_set_passes_and_runs_every_kernel() {
    let ctx = Arc::new(GpuContext::from_flag(None).expect("a GPU adapter (see common::gpu)"));
    let seed = crate::common::seed("selftest quick");
    let sel = Selection {
        quick: true,
        only: Vec::new(),
    };
    let out = selftest::run(&ctx, &sel, seed, |_| {}).unwrap();
    let failed: Vec<String> = out
        .failed()
        .map(|c| format!("{}: {}", c.name, c.failures.join("; ")))
        .collect();
    assert!(out.passed, "seed {seed}:\n{}", failed.join("\n"));
    assert_eq!(out.checks.last().unwrap().name, COVERAGE);
    // Every check but the full-only ones ran, plus the coverage check.
    let expected = selftest::CHECKS.iter().filter(|c| !c.full_only).count() + 1;
    assert_eq!(out.checks.len(), expected);
    for c in &out.checks[..expected - 1] {
        assert!(c.comparisons > 0, "{} compared nothing", c.name);
    }
}
