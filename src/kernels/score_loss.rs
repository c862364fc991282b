//! Cosine score + μ clamp + BCE loss and its gradient (`shaders/score_loss.wgsl`), gathered per
//! embedding row, plus the per-step loss sum; with their CPU twins.

use super::{Real, at4, u32_of, vec4_offset};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

use crate::gpu::shaders;

/// Smallest norm the cosine divides by (PyTorch's `cosine_similarity` eps).
pub const NORM_EPS: f64 = 1e-8;
/// Widest embedding the kernel supports (4 vec4 per invocation × 64 invocations × 4).
pub const MAX_DIM: usize = 1024;

/// The scored pairs of a batch: local user row, local item index (its row is `n_users + item`), label.
#[derive(Debug, Clone, Copy)]
pub struct Pairs<'a> {
    pub user: &'a [u32],
    pub item: &'a [u32],
    pub label: &'a [f32],
}

impl Pairs<'_> {
    pub fn len(&self) -> usize {
        self.user.len()
    }
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

crate::param_block! {
    pub struct Params {
        pub n_rows: u32, pub n_users: u32, pub n_pairs: u32, pub d4: u32, pub e_off: u32,
        pub de_off: u32, pub pair_user: u32, pub pair_item: u32, pub pair_label: u32,
        pub row_ptr: u32, pub row_pairs: u32, pub ring_slot: u32, pub mu: f32, pub out_scale: f32,
        pub groups_x: u32, pub pairwise: u32, pub tau: f32, pub _pad0: u32, pub _pad1: u32,
        pub _pad2: u32,
    }
}

/// The loss over the scored pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    #[default]
    /// Binary cross-entropy of each pair's clamped cosine against its label (the study's).
    Bce,
    /// The pairwise loss −ln σ(τ(ŷ_pos − ŷ_neg)) over triples: pairs 2t (positive) and 2t+1
    /// (negative) share their user (the bpr sampler's order).
    Bpr { tau: f32 },
}

impl Loss {
    pub fn is_bce(&self) -> bool {
        *self == Loss::Bce
    }
}

/// One launch of the score stage.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub n_users: usize,
    pub n_items: usize,
    pub n_pairs: usize,
    pub dim: usize,
    /// E in `acts` and dE in `grads_act` (f32 elements).
    pub e_off: usize,
    pub de_off: usize,
    /// Where the pair data lives in `batch` (u32 offsets): local user row of each pair, local item
    /// index, label (f32 bits), then the pairs of every embedding row as a CSR (`row_ptr`, `row_pairs`).
    pub pair_user: usize,
    pub pair_item: usize,
    pub pair_label: usize,
    pub row_ptr: usize,
    pub row_pairs: usize,
    pub mu: f32,
    /// The last layer's dropout scale.
    pub out_scale: f32,
    /// Where `sum_loss` writes the batch's mean loss.
    pub ring_slot: usize,
    pub loss: Loss,
}

impl Launch {
    /// The parameter block and the grid of `grad` (one workgroup per embedding row).
    pub fn params(&self, max_per_dim: u32) -> (Params, [u32; 3]) {
        assert!(
            self.dim.is_multiple_of(4) && self.dim <= MAX_DIM,
            "embedding width must be a multiple of 4, at most {MAX_DIM}"
        );
        let n_rows = self.n_users + self.n_items;
        let grid = Grid::linear(n_rows, max_per_dim);
        let p = Params {
            n_rows: u32_of(n_rows),
            n_users: u32_of(self.n_users),
            n_pairs: u32_of(self.n_pairs),
            d4: u32_of(self.dim / 4),
            e_off: vec4_offset(self.e_off),
            de_off: vec4_offset(self.de_off),
            pair_user: u32_of(self.pair_user),
            pair_item: u32_of(self.pair_item),
            pair_label: u32_of(self.pair_label),
            row_ptr: u32_of(self.row_ptr),
            row_pairs: u32_of(self.row_pairs),
            ring_slot: u32_of(self.ring_slot),
            mu: self.mu,
            out_scale: self.out_scale,
            groups_x: grid.groups_x,
            pairwise: u32::from(matches!(self.loss, Loss::Bpr { .. })),
            tau: match self.loss {
                Loss::Bpr { tau } => tau,
                Loss::Bce => 1.0,
            },
            ..Default::default()
        };
        (p, grid.workgroups)
    }

    /// The pairwise loss's two extra passes (`None` for BCE): `pair_cosines` (one workgroup per pair)
    /// and `pair_losses` (one invocation per triple), each with its parameter block and grid.
    pub fn pairwise_params(&self, max_per_dim: u32) -> Option<[(Params, [u32; 3]); 2]> {
        if self.loss == Loss::Bce {
            return None;
        }
        assert!(
            self.n_pairs.is_multiple_of(2),
            "the pairwise loss needs whole triples"
        );
        let (base, _) = self.params(max_per_dim);
        let per_pair = Grid::linear(self.n_pairs, max_per_dim);
        let per_triple = Grid::linear((self.n_pairs / 2).div_ceil(64), max_per_dim);
        Some([
            (
                Params {
                    groups_x: per_pair.groups_x,
                    ..base
                },
                per_pair.workgroups,
            ),
            (
                Params {
                    groups_x: per_triple.groups_x,
                    ..base
                },
                per_triple.workgroups,
            ),
        ])
    }
}

// Entry `grad`. Bindings: `acts` (read: E), `grads_act` (read_write: dE), `batch` (read),
// `pair_loss` (read_write).
crate::kernel_def! { pub GRAD = "score_loss.grad", shaders::SCORE_LOSS, "grad", Params, grad_twin }

// Entry `sum_loss` (one workgroup). Bindings: `pair_loss` (read_write), `loss_ring` (read_write).
crate::kernel_def! { pub SUM = "score_loss.sum_loss", shaders::SCORE_LOSS, "sum_loss", Params, sum_twin }

// Entry `pair_cosines` (pairwise loss, before `grad`). Bindings: `acts` (read: E), `batch` (read),
// `pair_loss` (read_write: the cosines).
crate::kernel_def! { pub COSINES = "score_loss.pair_cosines", shaders::SCORE_LOSS, "pair_cosines", Params, cosines_twin }

// Entry `pair_losses` (pairwise loss, after `grad`). Bindings: `pair_loss` (read_write: cosines in,
// losses out).
crate::kernel_def! { pub LOSSES = "score_loss.pair_losses", shaders::SCORE_LOSS, "pair_losses", Params, losses_twin }

/// Bytes and operations of `pair_cosines` and `pair_losses`.
pub fn pairwise_cost(p: &Params) -> (Cost, Cost) {
    let d = p.d4 as u64 * 4;
    let pairs = p.n_pairs as u64;
    (
        Cost {
            bytes: 4 * (2 * pairs * d + 3 * pairs),
            flops: 6 * pairs * d,
        },
        Cost {
            bytes: 4 * 2 * pairs,
            flops: 8 * pairs,
        },
    )
}

/// Bytes and operations of `grad` (its own row, the other row of each of its pairs, dE written, the
/// pair data) and of `sum_loss`.
pub fn cost(p: &Params) -> (Cost, Cost) {
    let d = p.d4 as u64 * 4;
    let (rows, pairs) = (p.n_rows as u64, p.n_pairs as u64);
    let grad = Cost {
        bytes: 4 * (2 * rows * d + 2 * pairs * d + 5 * pairs + rows + 1),
        flops: 8 * pairs * d,
    };
    let sum = Cost {
        bytes: 4 * (pairs + 1),
        flops: pairs,
    };
    (grad, sum)
}
fn grad_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let dim = at4(p.d4);
    let (nu, n_rows, np) = (p.n_users as usize, p.n_rows as usize, p.n_pairs as usize);
    let e = c.f("acts")[at4(p.e_off)..][..n_rows * dim].to_vec();
    let batch = c.u("batch");
    let user = batch[p.pair_user as usize..][..np].to_vec();
    let item = batch[p.pair_item as usize..][..np].to_vec();
    let label: Vec<f32> = batch[p.pair_label as usize..][..np]
        .iter()
        .map(|b| f32::from_bits(*b))
        .collect();
    let pairs = Pairs {
        user: &user,
        item: &item,
        label: &label,
    };
    let loss = if p.pairwise == 1 {
        Loss::Bpr { tau: p.tau }
    } else {
        Loss::Bce
    };
    let out = cpu(&e, nu, n_rows - nu, dim, pairs, p.mu, p.out_scale, loss);
    c.f_mut("grads_act")[at4(p.de_off)..][..n_rows * dim].copy_from_slice(&out.d_e);
    // The pairwise loss's `grad` reads the cosines in `pair_loss` and writes no loss.
    if loss == Loss::Bce {
        for (o, l) in c.f_mut("pair_loss").iter_mut().zip(&out.pair_loss) {
            *o = T::from_f64(*l);
        }
    }
}

fn cosines_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (dim, np, n_rows) = (at4(p.d4), p.n_pairs as usize, p.n_rows as usize);
    let e = c.f("acts")[at4(p.e_off)..][..n_rows * dim].to_vec();
    let batch = c.u("batch");
    let (user, item) = (
        batch[p.pair_user as usize..][..np].to_vec(),
        batch[p.pair_item as usize..][..np].to_vec(),
    );
    let cosines = pair_cosines(
        &e,
        dim,
        &row_norms(&e, dim),
        p.n_users as usize,
        &user,
        &item,
    );
    for (o, cos) in c.f_mut("pair_loss").iter_mut().zip(cosines) {
        *o = T::from_f64(cos);
    }
}

fn losses_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let out = c.f_mut("pair_loss");
    for t in 0..p.n_pairs as usize / 2 {
        let l = bpr(
            out[2 * t].to_f64(),
            out[2 * t + 1].to_f64(),
            p.mu as f64,
            p.tau as f64,
        );
        out[2 * t] = T::from_f64(l);
        out[2 * t + 1] = T::from_f64(l);
    }
}

fn sum_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = p.n_pairs as usize;
    let sum: f64 = c.f("pair_loss")[..n].iter().map(|v| v.to_f64()).sum();
    c.f_mut("loss_ring")[p.ring_slot as usize] = T::from_f64(sum / n.max(1) as f64);
}

/// What the score stage produces.
#[derive(Debug, Clone)]
pub struct ScoreOutput<T> {
    /// Gradient with respect to the last layer's pre-activation, rows × dim (users then items).
    pub d_e: Vec<T>,
    /// Cosine of each pair (before the clamp).
    pub cos: Vec<f64>,
    /// Loss of each pair.
    pub pair_loss: Vec<f64>,
    /// Mean loss over the pairs.
    pub loss: f64,
}

/// ŷ = min(max(cos, μ), 1) and the pair's BCE loss (logs clamped at −100).
pub fn bce(cos: f64, label: f64, mu: f64) -> (f64, f64) {
    let pred = cos.max(mu).min(1.0);
    let loss = -(label * pred.ln().max(-100.0) + (1.0 - label) * (1.0 - pred).ln().max(-100.0));
    (pred, loss)
}

/// The Euclidean norm of every row of `e` (width `dim`), in f64.
fn row_norms<T: Real>(e: &[T], dim: usize) -> Vec<f64> {
    e.chunks(dim)
        .map(|r| {
            r.iter()
                .map(|v| v.to_f64() * v.to_f64())
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The cosine of each pair (user row `user[q]`, item row `n_users + item[q]` of `e`), each norm
/// clamped at [`NORM_EPS`]: what `pair_cosines` writes and `grad` recomputes.
fn pair_cosines<T: Real>(
    e: &[T],
    dim: usize,
    norms: &[f64],
    n_users: usize,
    user: &[u32],
    item: &[u32],
) -> Vec<f64> {
    let row = |r: usize| &e[r * dim..(r + 1) * dim];
    user.iter()
        .zip(item)
        .map(|(&u, &i)| {
            let (u, i) = (u as usize, n_users + i as usize);
            let dot: f64 = row(u)
                .iter()
                .zip(row(i))
                .map(|(a, b)| a.to_f64() * b.to_f64())
                .sum();
            dot / (norms[u].max(NORM_EPS) * norms[i].max(NORM_EPS))
        })
        .collect()
}

/// The pairwise loss of a triple from its two cosines: softplus(−x), x = τ(ŷ_pos − ŷ_neg).
pub fn bpr(cos_pos: f64, cos_neg: f64, mu: f64, tau: f64) -> f64 {
    let x = tau * (cos_pos.max(mu).min(1.0) - cos_neg.max(mu).min(1.0));
    (-x).max(0.0) + (-x.abs()).exp().ln_1p()
}

/// CPU twin of `grad` + `sum_loss` (and, for the pairwise loss, `pair_cosines` and `pair_losses`):
/// `e` holds `n_users + n_items` rows of width `dim`.
#[allow(clippy::too_many_arguments)] // the parameter block's fields, as the kernel reads them
pub fn cpu<T: Real>(
    e: &[T],
    n_users: usize,
    n_items: usize,
    dim: usize,
    pairs: Pairs<'_>,
    mu: f32,
    out_scale: f32,
    loss_kind: Loss,
) -> ScoreOutput<T> {
    let n_rows = n_users + n_items;
    assert_eq!(e.len(), n_rows * dim);
    let row = |r: usize| &e[r * dim..(r + 1) * dim];
    let norms = row_norms(e, dim);
    let mut g = vec![0f64; n_rows * dim];
    let n = pairs.len().max(1) as f64;
    let mu = mu as f64;
    let cosines = pair_cosines(e, dim, &norms, n_users, pairs.user, pairs.item);
    let mut losses = Vec::with_capacity(pairs.len());
    for q in 0..pairs.len() {
        let (u, i) = (pairs.user[q] as usize, n_users + pairs.item[q] as usize);
        let y = pairs.label[q] as f64;
        let (a, b) = (norms[u].max(NORM_EPS), norms[i].max(NORM_EPS));
        let cos = cosines[q];
        let dpred = match loss_kind {
            Loss::Bce => {
                let (pred, loss) = bce(cos, y, mu);
                losses.push(loss);
                (pred - y) / (pred * (1.0 - pred)).max(1e-12) / n
            }
            Loss::Bpr { tau } => {
                let tau = tau as f64;
                let (pos, neg) = (cosines[q & !1], cosines[q | 1]);
                losses.push(bpr(pos, neg, mu, tau));
                let x = tau * (pos.max(mu).min(1.0) - neg.max(mu).min(1.0));
                let sign = if q & 1 == 1 { 1.0 } else { -1.0 };
                sign * tau / (1.0 + x.exp()) * 2.0 / n
            }
        };
        let dcos = if cos >= mu && cos <= 1.0 { dpred } else { 0.0 };
        // ∂cos/∂x = other/(‖x‖‖other‖) − cos·x/‖x‖² (the norm term vanishes where the clamp bites).
        for (me, other, my_norm, my_eps_norm) in [(u, i, norms[u], a), (i, u, norms[i], b)] {
            let coef_other = dcos / (a * b);
            let coef_own = if my_norm >= NORM_EPS {
                dcos * cos / (my_eps_norm * my_eps_norm)
            } else {
                0.0
            };
            for c in 0..dim {
                g[me * dim + c] +=
                    coef_other * row(other)[c].to_f64() - coef_own * row(me)[c].to_f64();
            }
        }
    }
    let d_e = g
        .iter()
        .zip(e)
        .map(|(gv, ev)| {
            T::from_f64(if ev.to_f64() > 0.0 {
                gv * out_scale as f64
            } else {
                0.0
            })
        })
        .collect();
    let loss = losses.iter().sum::<f64>() / n;
    ScoreOutput {
        d_e,
        cos: cosines,
        pair_loss: losses,
        loss,
    }
}
