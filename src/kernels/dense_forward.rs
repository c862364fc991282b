//! Dense layer forward (`shaders/dense_forward.wgsl`): Y = ReLU(dropout([X | 1] · [W ; b])) for one or
//! two row segments, and its CPU twin.

use bytemuck::{Pod, Zeroable};

use super::{Dropout, Real, u32_of, vec4_offset};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot, groups};
use crate::gpu::shaders;

/// Output tile of one workgroup (rows × columns) in the three dense kernels.
pub const TILE: usize = 64;

/// One block of rows that shares a weight matrix. Offsets are in f32 elements (multiples of 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub rows: usize,
    /// First element of this segment's X in `acts`.
    pub x_off: usize,
    /// First element of this segment's Y in `acts`.
    pub y_off: usize,
    /// First element of this segment's [W ; b] in `params`.
    pub w_off: usize,
    /// Index of the segment's first row in the stacked batch (keys the dropout mask).
    pub row_base: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    rows: [u32; 2],
    x_off: [u32; 2],
    y_off: [u32; 2],
    w_off: [u32; 2],
    row_base: [u32; 2],
    d_in: u32,
    d_out: u32,
    drop_threshold: u32,
    drop_scale: f32,
    seed: u32,
    salt: u32,
}

/// The value of `f` for segments 0 and 1 (a missing second segment has no rows).
pub(crate) fn per_segment<S: Copy + Default>(segments: &[S], f: impl Fn(&S) -> u32) -> [u32; 2] {
    assert!(matches!(segments.len(), 1 | 2), "one or two segments");
    let s1 = segments.get(1).copied().unwrap_or_default();
    [f(&segments[0]), f(&s1)]
}

impl Params {
    /// Parameters for `segments` (one or two) of a `d_in → d_out` layer.
    pub fn new(segments: &[Segment], d_in: usize, d_out: usize, dropout: Dropout) -> Params {
        assert!(
            d_in % 4 == 0 && d_out % 4 == 0,
            "layer widths must be multiples of 4"
        );
        Params {
            rows: per_segment(segments, |s| u32_of(s.rows)),
            x_off: per_segment(segments, |s| vec4_offset(s.x_off)),
            y_off: per_segment(segments, |s| vec4_offset(s.y_off)),
            w_off: per_segment(segments, |s| vec4_offset(s.w_off)),
            row_base: per_segment(segments, |s| u32_of(s.row_base)),
            d_in: u32_of(d_in),
            d_out: u32_of(d_out),
            drop_threshold: dropout.threshold,
            drop_scale: dropout.scale,
            seed: dropout.seed,
            salt: dropout.salt,
        }
    }

    /// Workgroups: 64×64 output tiles over (d_out, rows), one z-slice per segment.
    pub fn workgroups(&self, segments: &[Segment]) -> [u32; 3] {
        let max_rows = segments.iter().map(|s| s.rows).max().unwrap_or(0);
        [
            groups(self.d_out as usize, TILE),
            groups(max_rows, TILE),
            segments.len() as u32,
        ]
    }
}

/// Bindings: 0 `params` (read: the [W ; b] blocks), 1 `acts` (read_write: X and Y), 2 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::DENSE_FORWARD,
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

/// CPU twin for one segment: `x` is `rows × d_in`, `wb` is [W ; b] `(d_in + 1) × d_out`; returns the
/// post-activation `rows × d_out`. Dropout uses the shader's hash keyed by `row_base + r`.
pub fn cpu<T: Real>(
    x: &[T],
    rows: usize,
    d_in: usize,
    wb: &[T],
    d_out: usize,
    dropout: Dropout,
    row_base: usize,
) -> Vec<T> {
    assert_eq!(x.len(), rows * d_in);
    assert_eq!(wb.len(), (d_in + 1) * d_out);
    let mut y = vec![T::default(); rows * d_out];
    let mut acc = vec![0f64; d_out];
    for r in 0..rows {
        for (a, b) in acc.iter_mut().zip(&wb[d_in * d_out..]) {
            *a = b.to_f64();
        }
        for k in 0..d_in {
            let xv = x[r * d_in + k].to_f64();
            if xv != 0.0 {
                for (a, w) in acc.iter_mut().zip(&wb[k * d_out..(k + 1) * d_out]) {
                    *a += xv * w.to_f64();
                }
            }
        }
        for n in 0..d_out {
            let z = acc[n] * dropout.factor((row_base + r) as u32, n as u32) as f64;
            y[r * d_out + n] = T::from_f64(z.max(0.0));
        }
    }
    y
}
