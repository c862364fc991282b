//! BPR loss and its per-row gradients (`shaders/bpr_loss.wgsl`) for dot-product models (BPR-MF), with
//! its CPU twin. The batch mean goes to the loss ring through `score_loss::SUM`.

use super::{Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

use crate::gpu::shaders;

crate::param_block! {
    pub struct Params {
        pub n: u32, pub d4: u32, pub u_off: u32, pub i_off: u32, pub j_off: u32, pub gu_off: u32,
        pub gi_off: u32, pub groups_x: u32, pub lambda: f32, pub inv_n: f32, pub reg_rows: u32,
        pub _pad: u32,
    }
}

// Entry `grad`. Bindings: scored user rows, scored item rows, `batch` (read), `grads_act`, `pair_loss`
// (read_write), regularised user rows, regularised item rows (read).
crate::kernel_def! { pub GRAD = "bpr_loss.grad", shaders::BPR_LOSS, "grad", Params, grad_twin }

/// One launch over `n` triples of `dim`-wide rows: the triples' users, positives and negatives sit at
/// `u_off`, `i_off`, `j_off` in `batch`; the gradient rows start at `gu_off` (users, one per triple)
/// and `gi_off` (items, two per triple) in `grads_act` (f32 elements).
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub n: usize,
    pub dim: usize,
    pub u_off: usize,
    pub i_off: usize,
    pub j_off: usize,
    pub gu_off: usize,
    pub gi_off: usize,
    pub lambda: f32,
    /// The regulariser's gradient joins the gradient rows (BPR-MF: the scored rows are the
    /// regularised ones); otherwise the caller adds it (LightGCN, after the backward propagation).
    pub reg_rows: bool,
}

impl Launch {
    pub fn params(&self, max_per_dim: u32) -> (Params, [u32; 3]) {
        assert!(
            self.dim.is_multiple_of(4),
            "embedding width must be a multiple of 4"
        );
        let grid = Grid::cover(self.n, 64, max_per_dim);
        let p = Params {
            n: u32_of(self.n),
            d4: u32_of(self.dim / 4),
            u_off: u32_of(self.u_off),
            i_off: u32_of(self.i_off),
            j_off: u32_of(self.j_off),
            gu_off: vec4_offset(self.gu_off),
            gi_off: vec4_offset(self.gi_off),
            groups_x: grid.groups_x,
            lambda: self.lambda,
            inv_n: 1.0 / self.n.max(1) as f32,
            reg_rows: self.reg_rows as u32,
            ..Params::default()
        };
        (p, grid.workgroups)
    }
}

/// Bytes and operations of one launch: three rows read twice and written once per triple.
pub fn cost(p: &Params) -> Cost {
    let (n, d) = (p.n as u64, p.d4 as u64 * 4);
    Cost {
        bytes: n * (4 * 9 * d + 16),
        flops: n * 16 * d,
    }
}

/// What the twin computes for a batch of triples.
#[derive(Debug, Clone)]
pub struct BprOutput<T> {
    /// Per triple: the user's gradient row.
    pub d_user: Vec<T>,
    /// Per triple: the positive's then the negative's gradient row.
    pub d_item: Vec<T>,
    /// Per triple: softplus(−s) + (λ/2)·Σ‖rows‖².
    pub loss: Vec<f64>,
}

/// −ln σ(s) = softplus(−s) and σ(−s), stable for any s.
pub fn softplus_sigmoid(s: f64) -> (f64, f64) {
    let e = (-s.abs()).exp();
    let softplus = (-s).max(0.0) + e.ln_1p();
    let sig = if s >= 0.0 {
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + e)
    };
    (softplus, sig)
}

/// The rows a batch of triples reads: scored and regularised (the same tables for BPR-MF).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, T> {
    pub users: &'a [T],
    pub items: &'a [T],
    pub reg_users: &'a [T],
    pub reg_items: &'a [T],
}

/// CPU twin: rows of width `dim` indexed by the triples' ids.
pub fn cpu<T: Real>(
    rows: Rows<'_, T>,
    dim: usize,
    triples: &[(u32, u32, u32)],
    lambda: f64,
    reg_rows: bool,
) -> BprOutput<T> {
    let row = |t: &[T], r: u32| -> Vec<f64> {
        t[r as usize * dim..(r as usize + 1) * dim]
            .iter()
            .map(|v| v.to_f64())
            .collect()
    };
    let inv_n = 1.0 / triples.len().max(1) as f64;
    let mut out = BprOutput {
        d_user: Vec::with_capacity(triples.len() * dim),
        d_item: Vec::with_capacity(2 * triples.len() * dim),
        loss: Vec::with_capacity(triples.len()),
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for &(u, i, j) in triples {
        let (gu, gi, gj) = (row(rows.users, u), row(rows.items, i), row(rows.items, j));
        let (ru, ri, rj) = (
            row(rows.reg_users, u),
            row(rows.reg_items, i),
            row(rows.reg_items, j),
        );
        let s = dot(&gu, &gi) - dot(&gu, &gj);
        let sq = dot(&ru, &ru) + dot(&ri, &ri) + dot(&rj, &rj);
        let (softplus, sig) = softplus_sigmoid(s);
        out.loss.push(softplus + 0.5 * lambda * sq);
        let a = sig * inv_n;
        let r = if reg_rows { lambda * inv_n } else { 0.0 };
        let f = T::from_f64;
        out.d_user
            .extend((0..dim).map(|c| f(-a * (gi[c] - gj[c]) + r * ru[c])));
        out.d_item
            .extend((0..dim).map(|c| f(-a * gu[c] + r * ri[c])));
        out.d_item
            .extend((0..dim).map(|c| f(a * gu[c] + r * rj[c])));
    }
    out
}

fn grad_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (n, dim) = (p.n as usize, at4(p.d4));
    let b = c.u("batch");
    let triples: Vec<(u32, u32, u32)> = (0..n)
        .map(|k| {
            let at = |off: u32| b[off as usize + k];
            (at(p.u_off), at(p.i_off), at(p.j_off))
        })
        .collect();
    let rows = Rows {
        users: c.f("users"),
        items: c.f("items"),
        reg_users: c.f("reg_users"),
        reg_items: c.f("reg_items"),
    };
    let out = cpu(rows, dim, &triples, p.lambda as f64, p.reg_rows == 1);
    c.f_mut("grads_act")[at4(p.gu_off)..][..n * dim].copy_from_slice(&out.d_user);
    c.f_mut("grads_act")[at4(p.gi_off)..][..2 * n * dim].copy_from_slice(&out.d_item);
    for (o, l) in c.f_mut("pair_loss").iter_mut().zip(&out.loss) {
        *o = T::from_f64(*l);
    }
}
