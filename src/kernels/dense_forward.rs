//! Dense layer forward (`shaders/dense_forward.wgsl`): Y = act(dropout([X | 1] · [W ; b])) for one or
//! two row segments, with the activation and dropout chosen per pipeline; CPU twin.

use super::{Activation, Dropout, Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::kernel::KernelDef;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

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

crate::param_block! {
    pub struct Params {
        pub rows: [u32; 2], pub x_off: [u32; 2], pub y_off: [u32; 2], pub w_off: [u32; 2],
        pub row_base: [u32; 2], pub d_in: u32, pub d_out: u32, pub drop_threshold: u32,
        pub drop_scale: f32, pub seed: u32, pub salt: u32,
    }
}

// Bindings: `params` (read: the [W ; b] blocks), `acts` (read_write: X and Y). ACTIVATION: 0 identity,
// 1 ReLU, 2 tanh.
crate::kernel_def! { pub RELU_DROPOUT = "dense_forward.relu.dropout", shaders::DENSE_FORWARD, "main", Params, twin, "ACTIVATION" => 1.0, "DROPOUT" => 1.0 }
crate::kernel_def! { pub RELU = "dense_forward.relu", shaders::DENSE_FORWARD, "main", Params, twin, "ACTIVATION" => 1.0, "DROPOUT" => 0.0 }
crate::kernel_def! { pub TANH = "dense_forward.tanh", shaders::DENSE_FORWARD, "main", Params, twin, "ACTIVATION" => 2.0, "DROPOUT" => 0.0 }
crate::kernel_def! { pub IDENTITY = "dense_forward.identity", shaders::DENSE_FORWARD, "main", Params, twin, "ACTIVATION" => 0.0, "DROPOUT" => 0.0 }

/// The definition with activation `a`, with dropout compiled in or not (tanh and identity take none).
pub fn def(a: Activation, dropout: bool) -> &'static KernelDef {
    match (a, dropout) {
        (Activation::Relu, true) => &RELU_DROPOUT,
        (Activation::Relu, false) => &RELU,
        (Activation::Tanh, false) => &TANH,
        (Activation::Identity, false) => &IDENTITY,
        (a, true) => panic!("dropout is supported after ReLU layers only, not {a:?}"),
    }
}

/// The value of `f` for segments 0 and 1 (a missing second segment has no rows).
pub(crate) fn per_segment<S: Copy + Default>(segments: &[S], f: impl Fn(&S) -> u32) -> [u32; 2] {
    assert!(matches!(segments.len(), 1 | 2), "one or two segments");
    let s1 = segments.get(1).copied().unwrap_or_default();
    [f(&segments[0]), f(&s1)]
}

/// Parameters and grid for `segments` (one or two) of a `d_in → d_out` layer: 64×64 output tiles
/// over (d_out, rows), one z-slice per segment.
pub fn params(
    segments: &[Segment],
    d_in: usize,
    d_out: usize,
    dropout: Dropout,
) -> (Params, [u32; 3]) {
    assert!(
        d_in.is_multiple_of(4) && d_out.is_multiple_of(4),
        "layer widths must be multiples of 4"
    );
    let p = Params {
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
    };
    let max_rows = segments.iter().map(|s| s.rows).max().unwrap_or(0);
    (
        p,
        Grid::tiles(d_out, max_rows, TILE, segments.len()).workgroups,
    )
}

/// Bytes and operations of a launch over `segments`.
pub fn cost(segments: &[Segment], d_in: usize, d_out: usize) -> Cost {
    segments.iter().fold(Cost::default(), |c, s| {
        let (r, i, o) = (s.rows as u64, d_in as u64, d_out as u64);
        c + Cost {
            bytes: 4 * (r * i + (i + 1) * o + r * o),
            flops: 2 * r * (i + 1) * o,
        }
    })
}
/// CPU twin for one segment: `x` is `rows × d_in`, `wb` is [W ; b] `(d_in + 1) × d_out`; returns the
/// post-activation `rows × d_out`. Dropout uses the shaders' hash (`shaders/lib/hash.wgsl`) keyed by `row_base + r`.
#[allow(clippy::too_many_arguments)]
pub fn cpu<T: Real>(
    x: &[T],
    rows: usize,
    d_in: usize,
    wb: &[T],
    d_out: usize,
    dropout: Dropout,
    row_base: usize,
    act: Activation,
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
            y[r * d_out + n] = T::from_f64(act.apply(z));
        }
    }
    y
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let act = Activation::from_code(c.constant("ACTIVATION"));
    let dropout = if c.constant("DROPOUT") != 0.0 {
        Dropout {
            threshold: p.drop_threshold,
            scale: p.drop_scale,
            seed: p.seed,
            salt: p.salt,
        }
    } else {
        Dropout::NONE
    };
    let (d_in, d_out) = (p.d_in as usize, p.d_out as usize);
    for z in 0..c.workgroups[2] as usize {
        let (rows, x_off, y_off) = (p.rows[z] as usize, p.x_off[z], p.y_off[z]);
        let (w_off, row_base) = (p.w_off[z], p.row_base[z]);
        let wb = c.f("params")[at4(w_off)..][..(d_in + 1) * d_out].to_vec();
        let x = c.f("acts")[at4(x_off)..][..rows * d_in].to_vec();
        let y = cpu(&x, rows, d_in, &wb, d_out, dropout, row_base as usize, act);
        c.f_mut("acts")[at4(y_off)..][..rows * d_out].copy_from_slice(&y);
    }
}
