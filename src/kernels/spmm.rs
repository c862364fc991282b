//! Sparse row sums over a CSR (`shaders/spmm.wgsl`): h[r] = act(b + s_r · Σ_{j ∈ row(id_r)} W[j, :]),
//! one launch per row chunk of W, optionally with dropout on the entries (MultVAE's input); the CPU
//! twin mirrors the chunked accumulation.

use super::{Activation, Dropout, Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::kernel::KernelDef;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub n_rows: u32, pub ids_off: u32, pub h_off: u32, pub d4: u32, pub chunk_lo: u32,
        pub chunk_hi: u32, pub b_off: u32, pub first: u32, pub last: u32, pub groups_x: u32,
        pub has_bias: u32, pub row_scale: u32, pub drop_threshold: u32, pub drop_seed: u32,
        pub drop_salt: u32, pub drop_scale: f32,
    }
}

// Bindings: table chunk, CSR offsets, CSR indices, `batch` (ids), `params` (bias) — all read —,
// `acts` (read_write).
crate::kernel_def! { pub RELU = "spmm.relu", shaders::SPMM, "main", Params, twin, "ACTIVATION" => 1.0 }
crate::kernel_def! { pub TANH = "spmm.tanh", shaders::SPMM, "main", Params, twin, "ACTIVATION" => 2.0 }
crate::kernel_def! { pub IDENTITY = "spmm.identity", shaders::SPMM, "main", Params, twin, "ACTIVATION" => 0.0 }

/// The definition with activation `a`.
pub fn def(a: Activation) -> &'static KernelDef {
    match a {
        Activation::Relu => &RELU,
        Activation::Tanh => &TANH,
        Activation::Identity => &IDENTITY,
    }
}

/// One launch: `n_rows` batch rows whose entity ids start at `ids_off` in `batch` (u32 units), summing
/// table rows `chunk` = [lo, hi) into h at `h_off` (f32 elements) of `acts`; bias at `b_off` in
/// `params` when `bias`.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub n_rows: usize,
    pub ids_off: usize,
    pub h_off: usize,
    pub dim: usize,
    pub chunk: (usize, usize),
    pub bias: Option<usize>,
    pub first: bool,
    pub last: bool,
    /// Multiply each row's sum by 1/√(row length).
    pub row_scale: bool,
    /// Dropout on the entries, keyed by (batch row, table row); kept entries count 1/(1 − rate).
    pub dropout: Dropout,
}

impl Launch {
    /// The parameter block and grid (one workgroup per batch row).
    pub fn params(&self, max_per_dim: u32) -> (Params, [u32; 3]) {
        assert!(
            self.dim.is_multiple_of(4),
            "projection width must be a multiple of 4"
        );
        let grid = Grid::linear(self.n_rows, max_per_dim);
        let p = Params {
            n_rows: u32_of(self.n_rows),
            ids_off: u32_of(self.ids_off),
            h_off: vec4_offset(self.h_off),
            d4: u32_of(self.dim / 4),
            chunk_lo: u32_of(self.chunk.0),
            chunk_hi: u32_of(self.chunk.1),
            b_off: vec4_offset(self.bias.unwrap_or(0)),
            first: self.first as u32,
            last: self.last as u32,
            groups_x: grid.groups_x,
            has_bias: self.bias.is_some() as u32,
            row_scale: self.row_scale as u32,
            drop_threshold: self.dropout.threshold,
            drop_seed: self.dropout.seed,
            drop_salt: self.dropout.salt,
            drop_scale: self.dropout.scale,
        };
        (p, grid.workgroups)
    }
}

/// Bytes and operations of one launch that sums `entries` table rows (the batch rows' CSR entries
/// inside the chunk): the rows read, the CSR entries, the partial sums read back (later chunks) and
/// the outputs written.
pub fn cost(p: &Params, entries: u64) -> Cost {
    let d = p.d4 as u64 * 4;
    let rows = p.n_rows as u64;
    let partial = if p.first == 0 { rows * d * 4 } else { 0 };
    Cost {
        bytes: entries * (d * 4 + 4) + rows * (12 + d * 4) + partial + d * 4,
        flops: entries * d,
    }
}
/// CPU twin of one launch, over the same bindings.
fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let act = Activation::from_code(c.constant("ACTIVATION"));
    let dim = at4(p.d4);
    let (ptr, idx) = (c.u("csr_ptr").to_vec(), c.u("csr_idx").to_vec());
    let ids = c.u("batch")[p.ids_off as usize..][..p.n_rows as usize].to_vec();
    let bias: Vec<f64> = if p.has_bias == 1 {
        c.f("params")[at4(p.b_off)..][..dim]
            .iter()
            .map(|v| v.to_f64())
            .collect()
    } else {
        vec![0.0; dim]
    };
    let table = c.f("table").to_vec();
    let (lo, hi) = (p.chunk_lo, p.chunk_hi);
    let h = &mut c.f_mut("acts")[at4(p.h_off)..];
    let drop = Dropout {
        threshold: p.drop_threshold,
        scale: p.drop_scale,
        seed: p.drop_seed,
        salt: p.drop_salt,
    };
    let mut acc = vec![0f64; dim];
    for (r, &id) in ids.iter().enumerate() {
        let row = &mut h[r * dim..(r + 1) * dim];
        let scaled = p.row_scale == 1 || p.drop_threshold > 0;
        let bias_first = p.has_bias == 1 && !scaled;
        for (k, a) in acc.iter_mut().enumerate() {
            *a = if p.first == 0 {
                row[k].to_f64()
            } else if bias_first {
                bias[k]
            } else {
                0.0
            };
        }
        let entries = &idx[ptr[id as usize] as usize..ptr[id as usize + 1] as usize];
        let kept = |t: u32| drop.keep(r as u32, t);
        for &t in entries.iter().filter(|&&t| t >= lo && t < hi && kept(t)) {
            let w = &table[(t - lo) as usize * dim..][..dim];
            for (a, v) in acc.iter_mut().zip(w) {
                *a += v.to_f64();
            }
        }
        let mut scale = match (p.row_scale, entries.len()) {
            (0, _) => 1.0,
            (_, 0) => 0.0,
            (_, n) => 1.0 / (n as f64).sqrt(),
        };
        if p.drop_threshold > 0 {
            scale *= p.drop_scale as f64;
        }
        for (k, (o, a)) in row.iter_mut().zip(&acc).enumerate() {
            let mut v = *a;
            if p.last == 1 {
                if scaled {
                    v = v * scale + bias[k] * (p.has_bias as f64);
                }
                v = act.apply(v);
            }
            *o = T::from_f64(v);
        }
    }
}
