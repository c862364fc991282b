//! Dense layer backward, input side (`shaders/dense_backward_data.wgsl`):
//! dX = (dZ · Wᵀ) ⊙ [X > 0] · in_scale, and its CPU twin.

use bytemuck::{Pod, Zeroable};

use super::dense_forward::{TILE, per_segment};
use super::{Real, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot, groups};
use crate::gpu::shaders;

/// One block of rows sharing a weight matrix. Offsets in f32 elements (multiples of 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub rows: usize,
    /// dZ (rows × d_out) in `grads_act`.
    pub dz_off: usize,
    /// dX (rows × d_in) in `grads_act`.
    pub dx_off: usize,
    /// X (rows × d_in) in `acts`: the layer's input, whose ReLU mask applies.
    pub x_off: usize,
    /// [W ; b] in `params`.
    pub w_off: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: [u32; 2],
    dz_off: [u32; 2],
    dx_off: [u32; 2],
    x_off: [u32; 2],
    w_off: [u32; 2],
    d_in: u32,
    d_out: u32,
    in_scale: f32,
    _pad: [u32; 3],
}

impl Params {
    /// `in_scale`: dropout scale of the layer that produced X (1 when it has none).
    pub fn new(segments: &[Segment], d_in: usize, d_out: usize, in_scale: f32) -> Params {
        assert!(
            d_in % 4 == 0 && d_out % 4 == 0,
            "layer widths must be multiples of 4"
        );
        Params {
            rows: per_segment(segments, |s| u32_of(s.rows)),
            dz_off: per_segment(segments, |s| vec4_offset(s.dz_off)),
            dx_off: per_segment(segments, |s| vec4_offset(s.dx_off)),
            x_off: per_segment(segments, |s| vec4_offset(s.x_off)),
            w_off: per_segment(segments, |s| vec4_offset(s.w_off)),
            d_in: u32_of(d_in),
            d_out: u32_of(d_out),
            in_scale,
            _pad: [0; 3],
        }
    }

    pub fn workgroups(&self, segments: &[Segment]) -> [u32; 3] {
        let max_rows = segments.iter().map(|s| s.rows).max().unwrap_or(0);
        [
            groups(self.d_in as usize, TILE),
            groups(max_rows, TILE),
            segments.len() as u32,
        ]
    }
}

/// Bindings: 0 `params` (read), 1 `acts` (read), 2 `grads_act` (read_write: dZ in, dX out), 3 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::DENSE_BACKWARD_DATA,
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

/// CPU twin for one segment: `dz` rows × d_out, `wb` [W ; b], `x` rows × d_in → dX rows × d_in.
pub fn cpu<T: Real>(
    dz: &[T],
    rows: usize,
    d_in: usize,
    d_out: usize,
    wb: &[T],
    x: &[T],
    in_scale: f32,
) -> Vec<T> {
    assert_eq!(dz.len(), rows * d_out);
    assert_eq!(x.len(), rows * d_in);
    assert_eq!(wb.len(), (d_in + 1) * d_out);
    let mut dx = vec![T::default(); rows * d_in];
    for r in 0..rows {
        let dzr = &dz[r * d_out..(r + 1) * d_out];
        for c in 0..d_in {
            if x[r * d_in + c].to_f64() <= 0.0 {
                continue;
            }
            let w = &wb[c * d_out..(c + 1) * d_out];
            let s: f64 = dzr
                .iter()
                .zip(w)
                .map(|(a, b)| a.to_f64() * b.to_f64())
                .sum();
            dx[r * d_in + c] = T::from_f64(s * in_scale as f64);
        }
    }
    dx
}
