//! Graph propagation for LightGCN (`shaders/propagate.wgsl`): one layer of E^{k+1} = Â·E^k for one
//! side of the bipartite graph with the running layer sum, and the regulariser's gradient on the
//! layer-0 rows a batch uses; with their CPU twins.

use super::{Real, u32_of};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

use crate::gpu::shaders;

crate::param_block! {
    pub struct Params {
        pub rows: u32, pub d4: u32, pub groups_x: u32, pub ptr_off: u32, pub total_scale: f32,
        pub coef: f32, pub _pad: [u32; 2],
    }
}

// Entry `main`. Bindings: CSR ptr, CSR idx, s_out, s_in (f32 bits), x (read), y, total (read_write).
crate::kernel_def! { pub LAYER = "propagate.layer", shaders::PROPAGATE, "main", Params, layer_twin }

// Entry `regularise`. Bindings: e0, `batch` (read), gradient (read_write).
crate::kernel_def! {
    pub REGULARISE = "propagate.regularise", shaders::PROPAGATE, "regularise", Params, regularise_twin
}

/// The symmetric normalisation's per-node factor (degree + 1e-7)^{-1/2}, as Elliot computes it.
pub fn degree_scale(degree: usize) -> f32 {
    ((degree as f64 + 1e-7).powf(-0.5)) as f32
}

/// A layer over `rows` rows of width `dim`; `total_scale` multiplies the running sum after adding
/// (1/(K+1) on the last layer).
pub fn layer_params(
    rows: usize,
    dim: usize,
    total_scale: f32,
    max_per_dim: u32,
) -> (Params, [u32; 3]) {
    assert!(dim.is_multiple_of(4));
    // One invocation per output vec4.
    let grid = Grid::cover(rows * dim / 4, 64, max_per_dim);
    let p = Params {
        rows: u32_of(rows),
        d4: u32_of(dim / 4),
        groups_x: grid.groups_x,
        total_scale,
        ..Params::default()
    };
    (p, grid.workgroups)
}

/// The regulariser over `rows` rows: `coef` = λ/B, the batch's gradient index offsets at `ptr_off`.
pub fn regularise_params(
    rows: usize,
    dim: usize,
    ptr_off: usize,
    coef: f32,
    max_per_dim: u32,
) -> (Params, [u32; 3]) {
    let (mut p, _) = layer_params(rows, dim, 1.0, max_per_dim);
    // One workgroup per row.
    let grid = Grid::linear(rows, max_per_dim);
    p.groups_x = grid.groups_x;
    p.ptr_off = u32_of(ptr_off);
    p.coef = coef;
    (p, grid.workgroups)
}

/// Bytes and operations of a layer whose rows have `edges` neighbours in all.
pub fn layer_cost(p: &Params, edges: u64) -> Cost {
    let (rows, d) = (p.rows as u64, p.d4 as u64 * 4);
    Cost {
        bytes: edges * (4 * d + 8) + rows * (12 * d + 12),
        flops: 2 * edges * d + 2 * rows * d,
    }
}

/// CPU twin of a layer: `y` and the updated `total` for `x` (the other side, `s_in.len()` rows).
pub fn layer_cpu<T: Real>(
    ptr: &[u32],
    idx: &[u32],
    (s_out, s_in): (&[f32], &[f32]),
    x: &[T],
    total: &mut [T],
    dim: usize,
    total_scale: f32,
) -> Vec<T> {
    let rows = ptr.len() - 1;
    let mut y = vec![T::default(); rows * dim];
    let mut acc = vec![0f64; dim];
    for r in 0..rows {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for &c in &idx[ptr[r] as usize..ptr[r + 1] as usize] {
            let sc = s_in[c as usize] as f64;
            for (a, v) in acc
                .iter_mut()
                .zip(&x[c as usize * dim..(c as usize + 1) * dim])
            {
                *a += sc * v.to_f64();
            }
        }
        let sr = s_out[r] as f64;
        for (k, a) in acc.iter().enumerate() {
            let v = sr * a;
            y[r * dim + k] = T::from_f64(v);
            let t = &mut total[r * dim + k];
            *t = T::from_f64((t.to_f64() + v) * total_scale as f64);
        }
    }
    y
}

fn layer_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (rows, dim) = (p.rows as usize, p.d4 as usize * 4);
    let ptr = c.u("csr_ptr")[..rows + 1].to_vec();
    let idx = c.u("csr_idx").to_vec();
    let s_out: Vec<f32> = c.u("s_out")[..rows]
        .iter()
        .map(|b| f32::from_bits(*b))
        .collect();
    let s_in: Vec<f32> = c.u("s_in").iter().map(|b| f32::from_bits(*b)).collect();
    let x = c.f("x").to_vec();
    let mut total = c.f("total")[..rows * dim].to_vec();
    let y = layer_cpu(
        &ptr,
        &idx,
        (&s_out, &s_in),
        &x,
        &mut total,
        dim,
        p.total_scale,
    );
    c.f_mut("y")[..rows * dim].copy_from_slice(&y);
    c.f_mut("total")[..rows * dim].copy_from_slice(&total);
}

fn regularise_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (rows, dim) = (p.rows as usize, p.d4 as usize * 4);
    let ptr = c.u("batch")[p.ptr_off as usize..][..rows + 1].to_vec();
    let e0 = c.f("e0")[..rows * dim].to_vec();
    let g = c.f_mut("grad");
    for r in 0..rows {
        let k = p.coef as f64 * (ptr[r + 1] - ptr[r]) as f64;
        for j in r * dim..(r + 1) * dim {
            g[j] = T::from_f64(g[j].to_f64() + k * e0[j].to_f64());
        }
    }
}
