//! Row-gathered Adam (`shaders/adam_table.wgsl`): a table's gradient, gathered per row through an index
//! of contributing rows (the batch's transposed index), fused into its Adam step, one row chunk per
//! launch. Entry `gather` writes the gathered gradient instead (gradient checks); entry `lazy` is lazy
//! Adam (only the rows a batch touches step, each with its own step count). CPU twins of all three.

use super::adam_dense::{self, AdamConfig, AdamStep};
use super::{Real, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

use crate::gpu::shaders;

crate::param_block! {
    pub struct Params {
        pub rows: u32, pub row0: u32, pub d4: u32, pub ptr_off: u32, pub rows_off: u32,
        pub dh_off: u32, pub groups_x: u32, pub bias_rows: u32, pub _pad: [u32; 2],
        pub step_size: f32, pub bc2_sqrt: f32, pub beta1: f32, pub beta2: f32, pub eps: f32,
        pub weight_decay: f32,
    }
}

// Entry `main`. Bindings: θ chunk, m chunk, v chunk (read_write), `batch`, `grads_act` (read).
crate::kernel_def! { pub STEP = "adam_table.step", shaders::ADAM_TABLE, "main", Params, step_twin }

// Entry `gather`. Bindings: `batch`, `grads_act` (read), gradient chunk (read_write).
crate::kernel_def! { pub GATHER = "adam_table.gather", shaders::ADAM_TABLE, "gather", Params, gather_twin }

// Entry `lazy`. Bindings: θ chunk, m chunk, v chunk (read_write), `batch`, `grads_act` (read), the
// table's row step counts (whole, read_write), the bias-correction table (read).
crate::kernel_def! { pub LAZY = "adam_table.lazy", shaders::ADAM_TABLE, "lazy", Params, lazy_twin }

/// The parameters of a lazy step (entry `lazy`): `params`' with the bias-correction table's row count
/// (the per-step constants are unused: every row reads its own from the table).
pub fn lazy_params(
    chunk: (usize, usize),
    dim: usize,
    index: (usize, usize),
    dh_off: usize,
    adam: &AdamConfig,
    max_per_dim: u32,
) -> (Params, [u32; 3]) {
    let (mut p, grid) = params(chunk, dim, index, dh_off, adam.at_step(1), max_per_dim);
    p.bias_rows = u32_of(adam.bias_rows());
    (p, grid)
}

/// Rows `chunk` = [lo, hi) of a `dim`-wide table. The index for this table sits in `batch` at
/// `index.0` (offsets over all table rows) and `index.1` (contributing rows, u32 units); those rows'
/// gradients start at `dh_off` in `grads_act` (f32 elements). One workgroup per table row.
pub fn params(
    chunk: (usize, usize),
    dim: usize,
    index: (usize, usize),
    dh_off: usize,
    step: AdamStep,
    max_per_dim: u32,
) -> (Params, [u32; 3]) {
    assert!(dim.is_multiple_of(4));
    let rows = chunk.1 - chunk.0;
    let grid = Grid::linear(rows, max_per_dim);
    let p = Params {
        rows: u32_of(rows),
        row0: u32_of(chunk.0),
        d4: u32_of(dim / 4),
        ptr_off: u32_of(index.0),
        rows_off: u32_of(index.1),
        dh_off: vec4_offset(dh_off),
        groups_x: grid.groups_x,
        step_size: step.step_size,
        bc2_sqrt: step.bc2_sqrt,
        beta1: step.beta1,
        beta2: step.beta2,
        eps: step.eps,
        weight_decay: step.weight_decay,
        ..Params::default()
    };
    (p, grid.workgroups)
}

/// Bytes and operations of one launch whose rows gather `entries` gradient rows: θ, m and v read and
/// written (`step`) or the gradient written (`gather`), the gathered rows, the index.
pub fn cost(p: &Params, entries: u64, step: bool) -> Cost {
    let d = p.d4 as u64 * 4;
    let rows = p.rows as u64;
    let table = if step { 24 * rows * d } else { 4 * rows * d };
    Cost {
        bytes: table + entries * (4 * d + 4) + 4 * (rows + 1),
        flops: entries * d + if step { 12 * rows * d } else { 0 },
    }
}
/// Bytes and operations of one lazy launch: `touched` of its rows step (θ, m, v read and written, the
/// step count and the bias constants), every row reads its two index offsets and the others stop
/// there, plus the gathered rows.
pub fn lazy_cost(p: &Params, entries: u64, touched: u64) -> Cost {
    let d = p.d4 as u64 * 4;
    let rows = p.rows as u64;
    Cost {
        bytes: 24 * touched * d + 16 * touched + 8 * rows + entries * (4 * d + 4),
        flops: entries * d + 12 * touched * d,
    }
}

/// CPU twin of the gather: for every table row t, Σ over its contributing rows k
/// (`rows[ptr[t]..ptr[t + 1]]`) of `dh[k]` (rows of width `dim`). Returns `ptr.len() - 1` rows × dim.
pub fn grad_cpu<T: Real>(ptr: &[u32], rows: &[u32], dh: &[T], dim: usize) -> Vec<T> {
    let n = ptr.len() - 1;
    let mut g = vec![T::default(); n * dim];
    let mut acc = vec![0f64; dim];
    for t in 0..n {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for &k in &rows[ptr[t] as usize..ptr[t + 1] as usize] {
            let src = &dh[k as usize * dim..(k as usize + 1) * dim];
            for (a, v) in acc.iter_mut().zip(src) {
                *a += v.to_f64();
            }
        }
        for (o, a) in g[t * dim..(t + 1) * dim].iter_mut().zip(&acc) {
            *o = T::from_f64(*a);
        }
    }
    g
}

/// The gathered gradient of the chunk's rows, from bindings `batch` and `grads_act` (both entry
/// points bind them).
fn chunk_grad<T: Real>(c: &CpuCall<'_, T>, p: &Params) -> Vec<T> {
    let dim = p.d4 as usize * 4;
    let (lo, n) = (p.row0 as usize, p.rows as usize);
    let b = c.u("batch");
    let ptr = &b[p.ptr_off as usize + lo..][..n + 1];
    let base = ptr[0] as usize;
    let local: Vec<u32> = ptr.iter().map(|v| v - ptr[0]).collect();
    let rows = &b[p.rows_off as usize + base..][..(ptr[n] - ptr[0]) as usize];
    grad_cpu(
        &local,
        rows,
        &c.f("grads_act")[p.dh_off as usize * 4..],
        dim,
    )
}

fn step_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let g = chunk_grad(c, &p);
    let n = g.len();
    let step = AdamStep {
        step_size: p.step_size,
        bc2_sqrt: p.bc2_sqrt,
        beta1: p.beta1,
        beta2: p.beta2,
        eps: p.eps,
        weight_decay: p.weight_decay,
    };
    let mut m = c.f("m1")[..n].to_vec();
    let mut v = c.f("m2")[..n].to_vec();
    adam_dense::cpu(&mut c.f_mut("theta")[..n], &g, &mut m, &mut v, &step);
    c.f_mut("m1")[..n].copy_from_slice(&m);
    c.f_mut("m2")[..n].copy_from_slice(&v);
}

fn lazy_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let g = chunk_grad(c, &p);
    let dim = p.d4 as usize * 4;
    let (lo, n) = (p.row0 as usize, p.rows as usize);
    let ptr = c.u("batch")[p.ptr_off as usize + lo..][..n + 1].to_vec();
    let bias: Vec<f64> = c.f("bias").iter().map(|v| v.to_f64()).collect();
    for r in 0..n {
        if ptr[r + 1] == ptr[r] {
            continue; // untouched: θ, m, v and the step count stay
        }
        let steps = c.u_mut("row_steps");
        steps[lo + r] += 1;
        let k = (steps[lo + r].min(p.bias_rows) - 1) as usize;
        let step = AdamStep {
            step_size: bias[2 * k] as f32,
            bc2_sqrt: bias[2 * k + 1] as f32,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
        };
        let row = r * dim..(r + 1) * dim;
        let mut m = c.f("m1")[row.clone()].to_vec();
        let mut v = c.f("m2")[row.clone()].to_vec();
        adam_dense::cpu(
            &mut c.f_mut("theta")[row.clone()],
            &g[row.clone()],
            &mut m,
            &mut v,
            &step,
        );
        c.f_mut("m1")[row.clone()].copy_from_slice(&m);
        c.f_mut("m2")[row].copy_from_slice(&v);
    }
}

fn gather_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let g = chunk_grad(c, &p);
    c.f_mut("grad_out")[..g.len()].copy_from_slice(&g);
}
