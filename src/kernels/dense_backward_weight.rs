//! Dense layer backward, weight side (`shaders/dense_backward_weight.wgsl`): d[W ; b] = [X | 1]ᵀ · dZ,
//! and its CPU twin.

use bytemuck::{Pod, Zeroable};

use super::dense_forward::{TILE, per_segment};
use super::{Real, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot, groups};
use crate::gpu::shaders;

/// One block of rows whose gradient goes into one [W ; b] block. Offsets in f32 elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub rows: usize,
    /// X (rows × d_in) in `acts`.
    pub x_off: usize,
    /// dZ (rows × d_out) in `grads_act`.
    pub dz_off: usize,
    /// d[W ; b] ((d_in + 1) × d_out) in `grads`.
    pub g_off: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: [u32; 2],
    x_off: [u32; 2],
    dz_off: [u32; 2],
    g_off: [u32; 2],
    d_in: u32,
    d_out: u32,
    _pad: [u32; 2],
}

impl Params {
    pub fn new(segments: &[Segment], d_in: usize, d_out: usize) -> Params {
        assert!(
            d_in % 4 == 0 && d_out % 4 == 0,
            "layer widths must be multiples of 4"
        );
        Params {
            rows: per_segment(segments, |s| u32_of(s.rows)),
            x_off: per_segment(segments, |s| vec4_offset(s.x_off)),
            dz_off: per_segment(segments, |s| vec4_offset(s.dz_off)),
            g_off: per_segment(segments, |s| vec4_offset(s.g_off)),
            d_in: u32_of(d_in),
            d_out: u32_of(d_out),
            _pad: [0; 2],
        }
    }

    /// 64×64 tiles over (d_out, d_in + 1), one z-slice per segment.
    pub fn workgroups(&self, segments: &[Segment]) -> [u32; 3] {
        [
            groups(self.d_out as usize, TILE),
            groups(self.d_in as usize + 1, TILE),
            segments.len() as u32,
        ]
    }
}

/// Bindings: 0 `acts` (read), 1 `grads_act` (read), 2 `grads` (read_write), 3 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::DENSE_BACKWARD_WEIGHT,
        "main",
        &[
            Slot::Read,
            Slot::Read,
            Slot::ReadWrite,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin for one segment: `x` rows × d_in, `dz` rows × d_out → d[W ; b] (d_in + 1) × d_out.
pub fn cpu<T: Real>(x: &[T], dz: &[T], rows: usize, d_in: usize, d_out: usize) -> Vec<T> {
    assert_eq!(x.len(), rows * d_in);
    assert_eq!(dz.len(), rows * d_out);
    let mut acc = vec![0f64; (d_in + 1) * d_out];
    for r in 0..rows {
        let dzr = &dz[r * d_out..(r + 1) * d_out];
        for k in 0..d_in {
            let xv = x[r * d_in + k].to_f64();
            if xv != 0.0 {
                for (a, g) in acc[k * d_out..(k + 1) * d_out].iter_mut().zip(dzr) {
                    *a += xv * g.to_f64();
                }
            }
        }
        for (a, g) in acc[d_in * d_out..].iter_mut().zip(dzr) {
            *a += g.to_f64();
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}
