//! A projection table's weight gradient fused into its Adam step (`shaders/adam_table.wgsl`), one row
//! chunk per launch; CPU twins of the gradient gather and (via `adam_dense::cpu`) of the update.

use bytemuck::{Pod, Zeroable};

use super::adam_dense::AdamStep;
use super::{NOT_IN_BATCH, Real, grid_2d, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: u32,
    row0: u32,
    d4: u32,
    map_off: u32,
    dh_off: u32,
    groups_x: u32,
    step: AdamStep,
}

impl Params {
    /// Rows `chunk` = [lo, hi) of a `dim`-wide table; the neighbour → batch-row map at `map_off` in
    /// `batch` (u32 units); the neighbours' dh row 0 at `dh_off` in `grads_act` (f32 elements).
    pub fn new(
        ctx: &GpuContext,
        chunk: (usize, usize),
        dim: usize,
        map_off: usize,
        dh_off: usize,
        step: AdamStep,
    ) -> Params {
        assert!(dim % 4 == 0);
        let rows = chunk.1 - chunk.0;
        Params {
            rows: u32_of(rows),
            row0: u32_of(chunk.0),
            d4: u32_of(dim / 4),
            map_off: u32_of(map_off),
            dh_off: vec4_offset(dh_off),
            groups_x: grid_2d(rows, ctx.limits.max_compute_workgroups_per_dimension)[0],
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

/// Bindings: 0 θ chunk, 1 m chunk, 2 v chunk (read_write), 3 CSR offsets, 4 CSR indices, 5 `batch`,
/// 6 `grads_act` (read), 7 uniform.
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
            Slot::Read,
            Slot::Read,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin of the gather: for every table row t, Σ over t's CSR neighbours n with `map[n]` in the
/// batch of `dh[map[n]]` (rows of width `dim`). Returns `csr_ptr.len() - 1` rows × dim.
pub fn grad_cpu<T: Real>(
    csr_ptr: &[u32],
    csr_idx: &[u32],
    map: &[u32],
    dh: &[T],
    dim: usize,
) -> Vec<T> {
    let rows = csr_ptr.len() - 1;
    let mut g = vec![T::default(); rows * dim];
    let mut acc = vec![0f64; dim];
    for t in 0..rows {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for &n in &csr_idx[csr_ptr[t] as usize..csr_ptr[t + 1] as usize] {
            let loc = map[n as usize];
            if loc == NOT_IN_BATCH {
                continue;
            }
            let src = &dh[loc as usize * dim..(loc as usize + 1) * dim];
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
