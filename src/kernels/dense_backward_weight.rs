//! Dense layer backward, weight side (`shaders/dense_backward_weight.wgsl`): d[W ; b] = [X | 1]ᵀ · dZ,
//! written, or added to the gradient already there (`accumulate`: row blocks of one batch, as MultVAE's
//! chunked output layer), and its CPU twin.

use super::dense_forward::{TILE, per_segment};
use super::{Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

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

crate::param_block! {
    pub struct Params {
        pub rows: [u32; 2], pub x_off: [u32; 2], pub dz_off: [u32; 2], pub g_off: [u32; 2],
        pub d_in: u32, pub d_out: u32, pub accumulate: u32, pub _pad: u32,
    }
}

// Bindings: `acts` (read), `grads_act` (read), `grads` (read_write).
crate::kernel_def! { pub DEF = "dense_backward_weight", shaders::DENSE_BACKWARD_WEIGHT, "main", Params, twin }

/// Parameters and grid: 64×64 tiles over (d_out, d_in + 1), one z-slice per segment.
pub fn params(segments: &[Segment], d_in: usize, d_out: usize) -> (Params, [u32; 3]) {
    assert!(
        d_in.is_multiple_of(4) && d_out.is_multiple_of(4),
        "layer widths must be multiples of 4"
    );
    let p = Params {
        rows: per_segment(segments, |s| u32_of(s.rows)),
        x_off: per_segment(segments, |s| vec4_offset(s.x_off)),
        dz_off: per_segment(segments, |s| vec4_offset(s.dz_off)),
        g_off: per_segment(segments, |s| vec4_offset(s.g_off)),
        d_in: u32_of(d_in),
        d_out: u32_of(d_out),
        accumulate: 0,
        _pad: 0,
    };
    (
        p,
        Grid::tiles(d_out, d_in + 1, TILE, segments.len()).workgroups,
    )
}

/// Bytes and operations of a launch over `segments`.
pub fn cost(segments: &[Segment], d_in: usize, d_out: usize) -> Cost {
    segments.iter().fold(Cost::default(), |c, s| {
        let (r, i, o) = (s.rows as u64, d_in as u64, d_out as u64);
        c + Cost {
            bytes: 4 * (r * i + r * o + (i + 1) * o),
            flops: 2 * r * (i + 1) * o,
        }
    })
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

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (d_in, d_out) = (p.d_in as usize, p.d_out as usize);
    for z in 0..c.workgroups[2] as usize {
        let (rows, x_off, dz_off, g_off) =
            (p.rows[z] as usize, p.x_off[z], p.dz_off[z], p.g_off[z]);
        let x = c.f("acts")[at4(x_off)..][..rows * d_in].to_vec();
        let dz = c.f("grads_act")[at4(dz_off)..][..rows * d_out].to_vec();
        let g = cpu(&x, &dz, rows, d_in, d_out);
        let out = &mut c.f_mut("grads")[at4(g_off)..][..g.len()];
        if p.accumulate == 1 {
            for (o, v) in out.iter_mut().zip(&g) {
                *o = T::from_f64(o.to_f64() + v.to_f64());
            }
        } else {
            out.copy_from_slice(&g);
        }
    }
}
