//! Cosine score + μ clamp + BCE loss and its gradient (`shaders/score_loss.wgsl`), gathered per
//! embedding row, plus the per-step loss sum; with their CPU twins.

use bytemuck::{Pod, Zeroable};

use super::{Real, grid_2d, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;

/// Smallest norm the cosine divides by (PyTorch's `cosine_similarity` eps).
pub const NORM_EPS: f64 = 1e-8;
/// Widest embedding the kernel supports (4 vec4 per invocation × 64 invocations × 4).
pub const MAX_DIM: usize = 1024;

/// The scored pairs of a batch: local user row, local item index (its row is `n_users + item`), label.
#[derive(Debug, Clone, Copy)]
pub struct Pairs<'a> {
    pub user: &'a [u32],
    pub item: &'a [u32],
    pub label: &'a [f32],
}

impl Pairs<'_> {
    pub fn len(&self) -> usize {
        self.user.len()
    }
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

/// The pairs that touch each embedding row (user rows, then item rows), as a CSR over pair indices in
/// ascending order: the gather order of the shader.
pub fn pair_rows(n_users: usize, n_items: usize, pairs: Pairs<'_>) -> (Vec<u32>, Vec<u32>) {
    let n_rows = n_users + n_items;
    let mut ptr = vec![0u32; n_rows + 1];
    for q in 0..pairs.len() {
        ptr[pairs.user[q] as usize + 1] += 1;
        ptr[n_users + pairs.item[q] as usize + 1] += 1;
    }
    for r in 0..n_rows {
        ptr[r + 1] += ptr[r];
    }
    let mut fill = ptr.clone();
    let mut idx = vec![0u32; 2 * pairs.len()];
    for q in 0..pairs.len() {
        for row in [pairs.user[q] as usize, n_users + pairs.item[q] as usize] {
            idx[fill[row] as usize] = q as u32;
            fill[row] += 1;
        }
    }
    (ptr, idx)
}

/// Where the pair data lives in the `batch` buffer (u32 offsets).
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchRegions {
    pub pair_user: usize,
    pub pair_item: usize,
    pub pair_label: usize,
    pub row_ptr: usize,
    pub row_pairs: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    n_rows: u32,
    n_users: u32,
    n_pairs: u32,
    d4: u32,
    e_off: u32,
    de_off: u32,
    pair_user: u32,
    pair_item: u32,
    pair_label: u32,
    row_ptr: u32,
    row_pairs: u32,
    ring_slot: u32,
    mu: f32,
    out_scale: f32,
    groups_x: u32,
    _pad: u32,
}

impl Params {
    /// `e_off`/`de_off`: E in `acts` and dE in `grads_act` (f32 elements); `out_scale`: the last
    /// layer's dropout scale; `ring_slot`: where `sum_loss` writes the batch's mean loss.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &GpuContext,
        n_users: usize,
        n_items: usize,
        n_pairs: usize,
        dim: usize,
        e_off: usize,
        de_off: usize,
        regions: BatchRegions,
        mu: f32,
        out_scale: f32,
        ring_slot: usize,
    ) -> Params {
        assert!(
            dim % 4 == 0 && dim <= MAX_DIM,
            "embedding width must be a multiple of 4, at most {MAX_DIM}"
        );
        let n_rows = n_users + n_items;
        Params {
            n_rows: u32_of(n_rows),
            n_users: u32_of(n_users),
            n_pairs: u32_of(n_pairs),
            d4: u32_of(dim / 4),
            e_off: vec4_offset(e_off),
            de_off: vec4_offset(de_off),
            pair_user: u32_of(regions.pair_user),
            pair_item: u32_of(regions.pair_item),
            pair_label: u32_of(regions.pair_label),
            row_ptr: u32_of(regions.row_ptr),
            row_pairs: u32_of(regions.row_pairs),
            ring_slot: u32_of(ring_slot),
            mu,
            out_scale,
            groups_x: grid_2d(n_rows, ctx.limits.max_compute_workgroups_per_dimension)[0],
            _pad: 0,
        }
    }

    /// One workgroup per embedding row.
    pub fn workgroups(&self, ctx: &GpuContext) -> [u32; 3] {
        grid_2d(
            self.n_rows as usize,
            ctx.limits.max_compute_workgroups_per_dimension,
        )
    }
}

fn slots() -> [Slot; 6] {
    [
        Slot::Read,
        Slot::ReadWrite,
        Slot::Read,
        Slot::ReadWrite,
        Slot::ReadWrite,
        Slot::Uniform {
            size: std::mem::size_of::<Params>() as u64,
        },
    ]
}

/// Entry `grad`. Bindings: 0 `acts` (read: E), 1 `grads_act` (read_write: dE), 2 `batch` (read),
/// 3 `pair_loss` (read_write), 4 `loss_ring` (read_write), 5 uniform.
pub fn grad_kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(ctx, &shaders::SCORE_LOSS, "grad", &slots())
}

/// Entry `sum_loss` (same bindings, one workgroup).
pub fn sum_kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(ctx, &shaders::SCORE_LOSS, "sum_loss", &slots())
}

/// What the score stage produces.
#[derive(Debug, Clone)]
pub struct ScoreOutput<T> {
    /// Gradient with respect to the last layer's pre-activation, rows × dim (users then items).
    pub d_e: Vec<T>,
    /// Cosine of each pair (before the clamp).
    pub cos: Vec<f64>,
    /// Loss of each pair.
    pub pair_loss: Vec<f64>,
    /// Mean loss over the pairs.
    pub loss: f64,
}

/// ŷ = min(max(cos, μ), 1) and the pair's BCE loss (logs clamped at −100).
pub fn bce(cos: f64, label: f64, mu: f64) -> (f64, f64) {
    let pred = cos.max(mu).min(1.0);
    let loss = -(label * pred.ln().max(-100.0) + (1.0 - label) * (1.0 - pred).ln().max(-100.0));
    (pred, loss)
}

/// CPU twin of `grad` + `sum_loss`: `e` holds `n_users + n_items` rows of width `dim`.
pub fn cpu<T: Real>(
    e: &[T],
    n_users: usize,
    n_items: usize,
    dim: usize,
    pairs: Pairs<'_>,
    mu: f32,
    out_scale: f32,
) -> ScoreOutput<T> {
    let n_rows = n_users + n_items;
    assert_eq!(e.len(), n_rows * dim);
    let row = |r: usize| &e[r * dim..(r + 1) * dim];
    let norm = |r: usize| {
        row(r)
            .iter()
            .map(|v| v.to_f64() * v.to_f64())
            .sum::<f64>()
            .sqrt()
    };
    let norms: Vec<f64> = (0..n_rows).map(norm).collect();
    let mut g = vec![0f64; n_rows * dim];
    let n = pairs.len().max(1) as f64;
    let mu = mu as f64;
    let mut cosines = Vec::with_capacity(pairs.len());
    let mut losses = Vec::with_capacity(pairs.len());
    for q in 0..pairs.len() {
        let (u, i) = (pairs.user[q] as usize, n_users + pairs.item[q] as usize);
        let y = pairs.label[q] as f64;
        let dot: f64 = row(u)
            .iter()
            .zip(row(i))
            .map(|(a, b)| a.to_f64() * b.to_f64())
            .sum();
        let (a, b) = (norms[u].max(NORM_EPS), norms[i].max(NORM_EPS));
        let cos = dot / (a * b);
        let (pred, loss) = bce(cos, y, mu);
        cosines.push(cos);
        losses.push(loss);
        let dpred = (pred - y) / (pred * (1.0 - pred)).max(1e-12) / n;
        let dcos = if cos >= mu && cos <= 1.0 { dpred } else { 0.0 };
        // ∂cos/∂x = other/(‖x‖‖other‖) − cos·x/‖x‖² (the norm term vanishes where the clamp bites).
        for (me, other, my_norm, my_eps_norm) in [(u, i, norms[u], a), (i, u, norms[i], b)] {
            let coef_other = dcos / (a * b);
            let coef_own = if my_norm >= NORM_EPS {
                dcos * cos / (my_eps_norm * my_eps_norm)
            } else {
                0.0
            };
            for c in 0..dim {
                g[me * dim + c] +=
                    coef_other * row(other)[c].to_f64() - coef_own * row(me)[c].to_f64();
            }
        }
    }
    let d_e = g
        .iter()
        .zip(e)
        .map(|(gv, ev)| {
            T::from_f64(if ev.to_f64() > 0.0 {
                gv * out_scale as f64
            } else {
                0.0
            })
        })
        .collect();
    let loss = losses.iter().sum::<f64>() / n;
    ScoreOutput {
        d_e,
        cos: cosines,
        pair_loss: losses,
        loss,
    }
}
