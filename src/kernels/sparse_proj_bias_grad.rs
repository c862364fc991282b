//! Bias gradients of the two sparse projections (`shaders/sparse_proj_bias_grad.wgsl`): column sums of
//! dh over the user rows and over the item rows; CPU twin.

use bytemuck::{Pod, Zeroable};

use super::{Real, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot, groups};
use crate::gpu::shaders;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: [u32; 2],
    dh_off: [u32; 2],
    g_off: [u32; 2],
    d4: u32,
    _pad: u32,
}

impl Params {
    /// `sides[s] = (rows, dh offset in grads_act, bias-gradient offset in grads)`, f32 elements.
    pub fn new(sides: [(usize, usize, usize); 2], dim: usize) -> Params {
        assert!(dim % 4 == 0);
        Params {
            rows: sides.map(|s| u32_of(s.0)),
            dh_off: sides.map(|s| vec4_offset(s.1)),
            g_off: sides.map(|s| vec4_offset(s.2)),
            d4: u32_of(dim / 4),
            _pad: 0,
        }
    }

    pub fn workgroups(&self) -> [u32; 3] {
        [groups(self.d4 as usize, 64), 1, 2]
    }
}

/// Bindings: 0 `grads_act` (read: dh), 1 `grads` (read_write), 2 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::SPARSE_PROJ_BIAS_GRAD,
        "main",
        &[
            Slot::Read,
            Slot::ReadWrite,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin: column sums of `dh` (rows × dim).
pub fn cpu<T: Real>(dh: &[T], rows: usize, dim: usize) -> Vec<T> {
    assert_eq!(dh.len(), rows * dim);
    let mut acc = vec![0f64; dim];
    for r in 0..rows {
        for (a, v) in acc.iter_mut().zip(&dh[r * dim..(r + 1) * dim]) {
            *a += v.to_f64();
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}
