//! Sparse row projection forward (`shaders/sparse_proj_forward.wgsl`): h = ReLU(b + Σ W[j, :]) over
//! each batch entity's training CSR row, chunk by chunk for tables over the binding limit; CPU twin.

use bytemuck::{Pod, Zeroable};

use super::{Real, grid_2d, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    n_rows: u32,
    ids_off: u32,
    h_off: u32,
    d4: u32,
    chunk_lo: u32,
    chunk_hi: u32,
    b_off: u32,
    first: u32,
    last: u32,
    groups_x: u32,
    _pad: [u32; 2],
}

/// One launch: `n_rows` batch rows whose entity ids start at `ids_off` in `batch` (u32 units), summing
/// table rows `chunk` = [lo, hi) into h at `h_off` (f32 elements) of `acts`; bias at `b_off` in `params`.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub n_rows: usize,
    pub ids_off: usize,
    pub h_off: usize,
    pub dim: usize,
    pub chunk: (usize, usize),
    pub b_off: usize,
    pub first: bool,
    pub last: bool,
}

impl Params {
    pub fn new(ctx: &GpuContext, l: Launch) -> Params {
        assert!(l.dim % 4 == 0, "projection width must be a multiple of 4");
        Params {
            n_rows: u32_of(l.n_rows),
            ids_off: u32_of(l.ids_off),
            h_off: vec4_offset(l.h_off),
            d4: u32_of(l.dim / 4),
            chunk_lo: u32_of(l.chunk.0),
            chunk_hi: u32_of(l.chunk.1),
            b_off: vec4_offset(l.b_off),
            first: l.first as u32,
            last: l.last as u32,
            groups_x: grid_2d(l.n_rows, ctx.limits.max_compute_workgroups_per_dimension)[0],
            _pad: [0; 2],
        }
    }

    /// One workgroup per batch row.
    pub fn workgroups(&self, ctx: &GpuContext) -> [u32; 3] {
        grid_2d(
            self.n_rows as usize,
            ctx.limits.max_compute_workgroups_per_dimension,
        )
    }
}

/// Bindings: 0 table chunk, 1 CSR offsets, 2 CSR indices, 3 `batch`, 4 `params` (all read),
/// 5 `acts` (read_write), 6 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::SPARSE_PROJ_FORWARD,
        "main",
        &[
            Slot::Read,
            Slot::Read,
            Slot::Read,
            Slot::Read,
            Slot::Read,
            Slot::ReadWrite,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin: for each id, ReLU(bias + Σ_{j ∈ csr row(id)} table[j, :]); returns ids.len() × dim.
pub fn cpu<T: Real>(
    table: &[T],
    dim: usize,
    csr_ptr: &[u32],
    csr_idx: &[u32],
    ids: &[u32],
    bias: &[T],
) -> Vec<T> {
    assert_eq!(bias.len(), dim);
    let mut h = vec![T::default(); ids.len() * dim];
    let mut acc = vec![0f64; dim];
    for (r, &id) in ids.iter().enumerate() {
        for (a, b) in acc.iter_mut().zip(bias) {
            *a = b.to_f64();
        }
        let (s, e) = (
            csr_ptr[id as usize] as usize,
            csr_ptr[id as usize + 1] as usize,
        );
        for &j in &csr_idx[s..e] {
            let w = &table[j as usize * dim..(j as usize + 1) * dim];
            for (a, v) in acc.iter_mut().zip(w) {
                *a += v.to_f64();
            }
        }
        for (o, a) in h[r * dim..(r + 1) * dim].iter_mut().zip(&acc) {
            *o = T::from_f64(a.max(0.0));
        }
    }
    h
}
