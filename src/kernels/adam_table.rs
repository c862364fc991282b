//! A projection table's weight gradient fused into its Adam step (`shaders/adam_table.wgsl`), one row
//! chunk per launch; CPU twins of the gradient gather and (via `adam_dense::cpu`) of the update.

use bytemuck::{Pod, Zeroable};

use super::adam_dense::AdamStep;
use super::{Real, grid_2d, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: u32,
    row0: u32,
    d4: u32,
    ptr_off: u32,
    rows_off: u32,
    dh_off: u32,
    groups_x: u32,
    _pad: [u32; 3],
    step: AdamStep,
}

impl Params {
    /// Rows `chunk` = [lo, hi) of a `dim`-wide table. The batch's transposed index for this table sits
    /// in `batch` at `ptr_off` (offsets over all table rows) and `rows_off` (contributing batch rows,
    /// u32 units); those rows' dh start at `dh_off` in `grads_act` (f32 elements).
    pub fn new(
        ctx: &GpuContext,
        chunk: (usize, usize),
        dim: usize,
        index: (usize, usize),
        dh_off: usize,
        step: AdamStep,
    ) -> Params {
        assert!(dim % 4 == 0);
        let rows = chunk.1 - chunk.0;
        Params {
            rows: u32_of(rows),
            row0: u32_of(chunk.0),
            d4: u32_of(dim / 4),
            ptr_off: u32_of(index.0),
            rows_off: u32_of(index.1),
            dh_off: vec4_offset(dh_off),
            groups_x: grid_2d(rows, ctx.limits.max_compute_workgroups_per_dimension)[0],
            _pad: [0; 3],
            step,
        }
    }

    /// One workgroup per table row of the chunk.
    pub fn workgroups(&self, ctx: &GpuContext) -> [u32; 3] {
        grid_2d(
            self.rows as usize,
            ctx.limits.max_compute_workgroups_per_dimension,
        )
    }
}

/// Bindings: 0 θ chunk, 1 m chunk, 2 v chunk (read_write), 3 `batch`, 4 `grads_act` (read), 5 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::ADAM_TABLE,
        "main",
        &[
            Slot::ReadWrite,
            Slot::ReadWrite,
            Slot::ReadWrite,
            Slot::Read,
            Slot::Read,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin of the gather: for every table row t, Σ over its contributing batch rows k
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
