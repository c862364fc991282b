//! Shared helpers of the integration tests: the GPU context (failing loudly when there is no adapter),
//! fresh-but-reproducible random inputs, and tolerance checks.
#![allow(dead_code)]

use cobrar_gpu::gpu::GpuContext;
use rand::{RngExt, SeedableRng};

/// The test adapter (`COBRAR_ADAPTER`, else auto). Panics with what to install when there is none:
/// GPU tests never pass by skipping.
pub fn gpu() -> GpuContext {
    GpuContext::from_flag(None).unwrap_or_else(|e| {
        panic!(
            "GPU tests need a wgpu adapter: {e:#}\n\
             On Linux without a GPU install the software Vulkan driver: \
             apt-get install -y mesa-vulkan-drivers libvulkan1"
        )
    })
}

/// A generator seeded from `COBRAR_TEST_SEED`, else from the clock; the seed is printed so a failure
/// can be replayed.
pub fn rng(test: &str) -> rand_pcg::Pcg64Mcg {
    let seed = std::env::var("COBRAR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: COBRAR_TEST_SEED={seed}");
    rand_pcg::Pcg64Mcg::seed_from_u64(seed)
}

/// `n` values uniform in [lo, hi).
pub fn uniform(rng: &mut impl rand::Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Asserts |got − want| ≤ atol + rtol·scale[i] elementwise, where `scale` bounds the magnitude of the
/// terms that were summed (so long sums get a proportionate tolerance). Reports the worst element.
pub fn assert_close_scaled(
    what: &str,
    got: &[f32],
    want: &[f32],
    scale: &[f32],
    atol: f32,
    rtol: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(usize, f32)> = None;
    for i in 0..got.len() {
        let err = (got[i] - want[i]).abs();
        let tol = atol + rtol * scale[i];
        if err.is_nan() || err > tol {
            let excess = if err.is_nan() {
                f32::INFINITY
            } else {
                err / tol
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} differs: gpu {} vs cpu {} (tolerance {} + {}·{})",
            got[i], want[i], atol, rtol, scale[i]
        );
    }
}

/// Asserts |got − want| ≤ atol + rtol·|want| elementwise.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let scale: Vec<f32> = want.iter().map(|w| w.abs()).collect();
    assert_close_scaled(what, got, want, &scale, atol, rtol);
}

/// Records and submits one dispatch of `kernel` over `buffers` (the uniform slot last, filled with
/// `params`), then waits.
pub fn dispatch<P: bytemuck::Pod>(
    ctx: &GpuContext,
    kernel: &cobrar_gpu::gpu::pipelines::Kernel,
    buffers: &[&wgpu::Buffer],
    params: &P,
    workgroups: [u32; 3],
) {
    let mut arena = cobrar_gpu::gpu::uniforms::UniformArena::new(ctx, 1);
    let off = arena.push(params);
    arena.upload(ctx);
    let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
    all.push(&arena.buffer);
    let group = kernel.bind(ctx, &all);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        kernel.dispatch(&mut pass, &group, off, workgroups);
    }
    ctx.queue.submit([enc.finish()]);
    ctx.wait().unwrap();
}

/// A random CSR with `rows` rows over `cols` columns, sorted and duplicate-free, row lengths in
/// `0..=max_len` (some rows empty).
pub fn random_csr(
    rng: &mut impl rand::Rng,
    rows: usize,
    cols: usize,
    max_len: usize,
) -> (Vec<u32>, Vec<u32>) {
    let mut ptr = vec![0u32];
    let mut idx = Vec::new();
    for _ in 0..rows {
        let len = rng.random_range(0..=max_len.min(cols));
        let mut row: Vec<u32> = rand::seq::index::sample(rng, cols, len)
            .into_iter()
            .map(|v| v as u32)
            .collect();
        row.sort_unstable();
        idx.extend(row);
        ptr.push(idx.len() as u32);
    }
    (ptr, idx)
}
