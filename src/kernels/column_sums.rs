//! Column sums of up to two row blocks (`shaders/column_sums.wgsl`): the sparse projections' bias
//! gradients; CPU twin.

use super::{Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

use crate::gpu::shaders;

crate::param_block! {
    pub struct Params {
        pub rows: [u32; 2], pub dh_off: [u32; 2], pub g_off: [u32; 2], pub d4: u32, pub _pad: u32,
    }
}

// Bindings: `grads_act` (read: the rows), `grads` (read_write: the sums).
crate::kernel_def! { pub DEF = "column_sums", shaders::COLUMN_SUMS, "main", Params, twin }

/// `blocks[z] = (rows, first row's offset in grads_act, sums' offset in grads)`, f32 elements. A
/// launch of one block sets the grid's z to 1.
pub fn params(blocks: [(usize, usize, usize); 2], dim: usize) -> (Params, [u32; 3]) {
    assert!(dim.is_multiple_of(4));
    let p = Params {
        rows: blocks.map(|b| u32_of(b.0)),
        dh_off: blocks.map(|b| vec4_offset(b.1)),
        g_off: blocks.map(|b| vec4_offset(b.2)),
        d4: u32_of(dim / 4),
        _pad: 0,
    };
    let mut g = Grid::cover(dim / 4, 64, u32::MAX).workgroups;
    g[2] = 2;
    (p, g)
}

/// Bytes and operations of a launch.
pub fn cost(p: &Params) -> Cost {
    let d = p.d4 as u64 * 4;
    let rows = (p.rows[0] + p.rows[1]) as u64;
    Cost {
        bytes: 4 * (rows * d + 2 * d),
        flops: rows * d,
    }
}
/// CPU twin: column sums of `x` (rows × dim).
pub fn cpu<T: Real>(x: &[T], rows: usize, dim: usize) -> Vec<T> {
    assert_eq!(x.len(), rows * dim);
    let mut acc = vec![0f64; dim];
    for r in 0..rows {
        for (a, v) in acc.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
            *a += v.to_f64();
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let dim = at4(p.d4);
    for z in 0..c.workgroups[2] as usize {
        let (rows, src, dst) = (p.rows[z], p.dh_off[z], p.g_off[z]);
        let x = c.f("grads_act")[at4(src)..][..rows as usize * dim].to_vec();
        let s = cpu(&x, rows as usize, dim);
        c.f_mut("grads")[at4(dst)..][..dim].copy_from_slice(&s);
    }
}
