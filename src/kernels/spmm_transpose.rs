//! The sparse projection's weight gradient (`shaders/spmm_transpose.wgsl`): for every row j of a table
//! chunk, dW[j] = Σ over the batch rows r whose entity has j (and kept it, under dropout) of s_r · dZ[r],
//! from the batch's transposed index; CPU twin.

use super::{Dropout, Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub lo: u32, pub hi: u32, pub d4: u32, pub ptr_off: u32, pub list_off: u32, pub ids_off: u32,
        pub dz_off: u32, pub groups_x: u32, pub row_scale: u32, pub drop_threshold: u32,
        pub drop_seed: u32, pub drop_salt: u32, pub drop_scale: f32, pub _pad: [u32; 3],
    }
}

// Bindings: `batch` (read: index and ids), the CSR's row offsets (read: row lengths), `grads_act`
// (read: dZ), the chunk's gradient (read_write).
crate::kernel_def! { pub DEF = "spmm_transpose", shaders::SPMM_TRANSPOSE, "main", Params, twin }

/// One launch over table rows `chunk` = [lo, hi) of a `dim`-wide table. Offsets: `ptr_off`,
/// `list_off`, `ids_off` in `batch` (u32 units); `dz_off` in `grads_act` (f32 elements).
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub chunk: (usize, usize),
    pub dim: usize,
    pub ptr_off: usize,
    pub list_off: usize,
    pub ids_off: usize,
    pub dz_off: usize,
    /// The forward pass's 1/√(row length).
    pub row_scale: bool,
    /// The forward pass's dropout.
    pub dropout: Dropout,
}

impl Launch {
    /// The parameter block and grid (one workgroup per table row of the chunk).
    pub fn params(&self, max_per_dim: u32) -> (Params, [u32; 3]) {
        assert!(
            self.dim.is_multiple_of(4),
            "table width must be a multiple of 4"
        );
        let grid = Grid::linear(self.chunk.1 - self.chunk.0, max_per_dim);
        let p = Params {
            lo: u32_of(self.chunk.0),
            hi: u32_of(self.chunk.1),
            d4: u32_of(self.dim / 4),
            ptr_off: u32_of(self.ptr_off),
            list_off: u32_of(self.list_off),
            ids_off: u32_of(self.ids_off),
            dz_off: vec4_offset(self.dz_off),
            groups_x: grid.groups_x,
            row_scale: self.row_scale as u32,
            drop_threshold: self.dropout.threshold,
            drop_seed: self.dropout.seed,
            drop_salt: self.dropout.salt,
            drop_scale: self.dropout.scale,
            _pad: [0; 3],
        };
        (p, grid.workgroups)
    }
}

/// Bytes and operations of a launch whose chunk receives `entries` index entries.
pub fn cost(p: &Params, entries: u64) -> Cost {
    let d = p.d4 as u64 * 4;
    let rows = (p.hi - p.lo) as u64;
    Cost {
        bytes: entries * (d * 4 + 16) + rows * (8 + d * 4),
        flops: entries * 2 * d,
    }
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let dim = at4(p.d4);
    let batch = c.u("batch").to_vec();
    let csr_ptr = c.u("csr_ptr").to_vec();
    let dz = c.f("grads_act")[at4(p.dz_off)..].to_vec();
    let drop = Dropout {
        threshold: p.drop_threshold,
        scale: p.drop_scale,
        seed: p.drop_seed,
        salt: p.drop_salt,
    };
    let out = c.f_mut("grad");
    let mut acc = vec![0f64; dim];
    for j in p.lo..p.hi {
        acc.fill(0.0);
        let (start, end) = (
            batch[(p.ptr_off + j) as usize],
            batch[(p.ptr_off + j + 1) as usize],
        );
        for e in start..end {
            let r = batch[(p.list_off + e) as usize];
            if !drop.keep(r, j) {
                continue;
            }
            let mut s = 1.0;
            if p.row_scale == 1 {
                let id = batch[(p.ids_off + r) as usize] as usize;
                s = 1.0 / ((csr_ptr[id + 1] - csr_ptr[id]) as f64).sqrt();
            }
            if p.drop_threshold > 0 {
                s *= p.drop_scale as f64;
            }
            for (a, v) in acc.iter_mut().zip(&dz[r as usize * dim..][..dim]) {
                *a += s * v.to_f64();
            }
        }
        let row = &mut out[(j - p.lo) as usize * dim..][..dim];
        for (o, a) in row.iter_mut().zip(&acc) {
            *o = T::from_f64(*a);
        }
    }
}
