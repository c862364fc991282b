//! Shared helpers: the GPU context (failing loudly when there is no adapter), fresh-but-reproducible
//! seeds, and the selftest's checks run as tests — the GPU-vs-CPU comparisons and their tolerances
//! live in `src/selftest`, defined once for `cobrar-gpu selftest` and for this suite.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use cobrar_gpu::gpu::GpuContext;
use cobrar_gpu::selftest::{self, Harness};
use rand::SeedableRng;

pub use cobrar_gpu::selftest::harness::{toy_data, toy_pairs};

/// The test adapter (`COBRAR_ADAPTER`, else auto), one device shared by the tests of this binary.
/// Panics with what to install when there is none: GPU tests never pass by skipping.
pub fn gpu() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(GpuContext::from_flag(None).unwrap_or_else(|e| {
            panic!(
                "GPU tests need a wgpu adapter: {e:#}\n\
                 On Linux without a GPU install the software Vulkan driver: \
                 apt-get install -y mesa-vulkan-drivers libvulkan1"
            )
        }))
    })
    .clone()
}

/// The seed of a test: `COBRAR_TEST_SEED`, else from the clock; printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("COBRAR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(selftest::fresh_seed);
    eprintln!("{test}: COBRAR_TEST_SEED={seed}");
    seed
}

/// A generator seeded by [`seed`].
pub fn rng(test: &str) -> rand_pcg::Pcg64Mcg {
    rand_pcg::Pcg64Mcg::seed_from_u64(seed(test))
}

/// Runs the selftest's check `name` (its full set of cases) on the test adapter and fails with its
/// failures and the seed that replays them.
pub fn check(name: &str) {
    let c = selftest::find(name).unwrap_or_else(|| panic!("no selftest check {name}"));
    let seed = seed(name);
    let h = Harness {
        ctx: gpu(),
        quick: false,
    };
    let o = selftest::run_check(&h, c, seed);
    assert!(
        o.passed,
        "{name} failed (replay: COBRAR_TEST_SEED={seed}, or cobrar-gpu selftest --check {name} --seed {seed}):\n  {}",
        o.failures.join("\n  ")
    );
}

/// Asserts |got − want| ≤ atol + rtol·|want| elementwise (the selftest's definition).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let mut v = selftest::Verdict::default();
    v.close(what, got, want, atol, rtol);
    assert!(v.passed(), "{}", v.describe_failures());
}
