//! Dense layer backward, input side (`shaders/dense_backward_data.wgsl`):
//! dX = (dZ · Wᵀ) ⊙ act'(X) · in_scale, and its CPU twin.

use super::dense_forward::{TILE, per_segment};
use super::{Activation, Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::kernel::KernelDef;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

/// One block of rows sharing a weight matrix. Offsets in f32 elements (multiples of 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub rows: usize,
    /// dZ (rows × d_out) in `grads_act`.
    pub dz_off: usize,
    /// dX (rows × d_in) in `grads_act`.
    pub dx_off: usize,
    /// X (rows × d_in) in `acts`: the layer's input, whose activation derivative applies.
    pub x_off: usize,
    /// [W ; b] in `params`.
    pub w_off: usize,
}

crate::param_block! {
    pub struct Params {
        pub rows: [u32; 2], pub dz_off: [u32; 2], pub dx_off: [u32; 2], pub x_off: [u32; 2],
        pub w_off: [u32; 2], pub d_in: u32, pub d_out: u32, pub in_scale: f32, pub _pad: [u32; 3],
    }
}

// Bindings: `params` (read), `acts` (read), `grads_act` (read_write: dZ in, dX out).
crate::kernel_def! { pub RELU = "dense_backward_data.relu", shaders::DENSE_BACKWARD_DATA, "main", Params, twin, "IN_ACTIVATION" => 1.0 }
crate::kernel_def! { pub TANH = "dense_backward_data.tanh", shaders::DENSE_BACKWARD_DATA, "main", Params, twin, "IN_ACTIVATION" => 2.0 }
crate::kernel_def! { pub IDENTITY = "dense_backward_data.identity", shaders::DENSE_BACKWARD_DATA, "main", Params, twin, "IN_ACTIVATION" => 0.0 }

/// The definition for an input X produced by activation `a`.
pub fn def(a: Activation) -> &'static KernelDef {
    match a {
        Activation::Relu => &RELU,
        Activation::Tanh => &TANH,
        Activation::Identity => &IDENTITY,
    }
}

/// Parameters and grid; `in_scale` is the dropout scale of the layer that produced X (1 without).
pub fn params(
    segments: &[Segment],
    d_in: usize,
    d_out: usize,
    in_scale: f32,
) -> (Params, [u32; 3]) {
    assert!(
        d_in.is_multiple_of(4) && d_out.is_multiple_of(4),
        "layer widths must be multiples of 4"
    );
    let p = Params {
        rows: per_segment(segments, |s| u32_of(s.rows)),
        dz_off: per_segment(segments, |s| vec4_offset(s.dz_off)),
        dx_off: per_segment(segments, |s| vec4_offset(s.dx_off)),
        x_off: per_segment(segments, |s| vec4_offset(s.x_off)),
        w_off: per_segment(segments, |s| vec4_offset(s.w_off)),
        d_in: u32_of(d_in),
        d_out: u32_of(d_out),
        in_scale,
        _pad: [0; 3],
    };
    let max_rows = segments.iter().map(|s| s.rows).max().unwrap_or(0);
    (
        p,
        Grid::tiles(d_in, max_rows, TILE, segments.len()).workgroups,
    )
}

/// Bytes and operations of a launch over `segments`.
pub fn cost(segments: &[Segment], d_in: usize, d_out: usize) -> Cost {
    segments.iter().fold(Cost::default(), |c, s| {
        let (r, i, o) = (s.rows as u64, d_in as u64, d_out as u64);
        c + Cost {
            bytes: 4 * (r * o + i * o + 2 * r * i),
            flops: 2 * r * i * o,
        }
    })
}
/// CPU twin for one segment: `dz` rows × d_out, `wb` [W ; b], `x` rows × d_in → dX rows × d_in.
#[allow(clippy::too_many_arguments)]
pub fn cpu<T: Real>(
    dz: &[T],
    rows: usize,
    d_in: usize,
    d_out: usize,
    wb: &[T],
    x: &[T],
    in_scale: f32,
    in_act: Activation,
) -> Vec<T> {
    assert_eq!(dz.len(), rows * d_out);
    assert_eq!(x.len(), rows * d_in);
    assert_eq!(wb.len(), (d_in + 1) * d_out);
    let mut dx = vec![T::default(); rows * d_in];
    for r in 0..rows {
        let dzr = &dz[r * d_out..(r + 1) * d_out];
        for c in 0..d_in {
            let d = in_act.derivative_from_output(x[r * d_in + c].to_f64());
            if d == 0.0 {
                continue;
            }
            let w = &wb[c * d_out..(c + 1) * d_out];
            let s: f64 = dzr
                .iter()
                .zip(w)
                .map(|(a, b)| a.to_f64() * b.to_f64())
                .sum();
            dx[r * d_in + c] = T::from_f64(s * d * in_scale as f64);
        }
    }
    dx
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let act = Activation::from_code(c.constant("IN_ACTIVATION"));
    let (d_in, d_out) = (p.d_in as usize, p.d_out as usize);
    for z in 0..c.workgroups[2] as usize {
        let (rows, dz_off, dx_off) = (p.rows[z] as usize, p.dz_off[z], p.dx_off[z]);
        let (x_off, w_off) = (p.x_off[z], p.w_off[z]);
        let wb = c.f("params")[at4(w_off)..][..(d_in + 1) * d_out].to_vec();
        let x = c.f("acts")[at4(x_off)..][..rows * d_in].to_vec();
        let dz = c.f("grads_act")[at4(dz_off)..][..rows * d_out].to_vec();
        let dx = cpu(&dz, rows, d_in, d_out, &wb, &x, p.in_scale, act);
        c.f_mut("grads_act")[at4(dx_off)..][..rows * d_in].copy_from_slice(&dx);
    }
}
