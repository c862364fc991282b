//! A strided copy into rows (`shaders/strided_copy.wgsl`): row r of the destination takes n source
//! values at (row stride, column stride), then `tail`, then zeros to the row's width — MultVAE's user
//! and item embeddings; CPU twin.

use super::{Real, u32_of};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub rows: u32, pub width: u32, pub n: u32, pub src_off: u32, pub row_stride: u32,
        pub col_stride: u32, pub dst_off: u32, pub groups_x: u32, pub tail: f32, pub _pad: [u32; 3],
    }
}

// Bindings: source (read), destination (read_write).
crate::kernel_def! { pub DEF = "strided_copy", shaders::STRIDED_COPY, "main", Params, twin }

/// One copy; offsets and strides in f32 elements.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub rows: usize,
    pub width: usize,
    pub n: usize,
    pub src_off: usize,
    pub row_stride: usize,
    pub col_stride: usize,
    pub dst_off: usize,
    pub tail: f32,
}

impl Launch {
    pub fn params(&self, max_per_dim: u32) -> (Params, [u32; 3]) {
        assert!(
            self.n < self.width,
            "the row must hold the values and the tail"
        );
        let grid = Grid::cover(self.rows * self.width, 64, max_per_dim);
        let p = Params {
            rows: u32_of(self.rows),
            width: u32_of(self.width),
            n: u32_of(self.n),
            src_off: u32_of(self.src_off),
            row_stride: u32_of(self.row_stride),
            col_stride: u32_of(self.col_stride),
            dst_off: u32_of(self.dst_off),
            groups_x: grid.groups_x,
            tail: self.tail,
            _pad: [0; 3],
        };
        (p, grid.workgroups)
    }
}

/// Bytes a launch moves.
pub fn cost(p: &Params) -> Cost {
    Cost {
        bytes: 8 * p.rows as u64 * p.width as u64,
        flops: 0,
    }
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let src = c.f("src").to_vec();
    let dst = c.f_mut("dst");
    for r in 0..p.rows as usize {
        for k in 0..p.width as usize {
            let v = if k < p.n as usize {
                src[p.src_off as usize + r * p.row_stride as usize + k * p.col_stride as usize]
            } else if k == p.n as usize {
                T::from_f64(p.tail as f64)
            } else {
                T::from_f64(0.0)
            };
            dst[p.dst_off as usize + r * p.width as usize + k] = v;
        }
    }
}
