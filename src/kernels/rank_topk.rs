//! Full-ranking top-k selection (`shaders/rank_topk.wgsl`): the scorers, the parameter block, the
//! kernel definitions, the buffers a session holds for them and the CPU twin. `eval::ranking` runs it
//! over a model's embeddings, as plans on either executor.

use crate::data::Csr;
use crate::gpu::kernel::KernelDef;
use crate::gpu::memory::{BufferSpec, Role};
use crate::gpu::shaders;
use crate::gpu::twin::{CpuCall, Real};
use crate::kernels::score_loss::NORM_EPS;

/// Largest k the kernel keeps.
pub const MAX_K: usize = 128;
/// Marks an empty position (fewer than k candidate items).
pub const NO_ITEM: u32 = u32::MAX;
/// Users per ranking dispatch (and per read-back).
pub const TILE_USERS: usize = 4096;

/// Names of the buffers the ranking uses beside the embeddings and the exclusion CSR.
pub mod buffers {
    /// The ranked users' ids (uploaded with the first tile).
    pub const USERS: &str = "rank.users";
    /// One tile's top-k items and scores (`users × k`, k at most [`super::MAX_K`]).
    pub const TOP_ITEMS: &str = "rank.top_items";
    pub const TOP_SCORES: &str = "rank.top_scores";
    /// Every item embedding's norm (the cosine scorer's denominator).
    pub const ITEM_NORMS: &str = "rank.item_norms";
    /// An exclusion CSR with every user's row empty (`n_users + 1` zero offsets and one index no row
    /// reaches): bound instead of the training interactions, the ranking scores every item
    /// (`recommend --include-train`).
    pub const NO_EXCLUDE_PTR: &str = "rank.no_exclude.ptr";
    pub const NO_EXCLUDE_IDX: &str = "rank.no_exclude.idx";
}

/// The ranking's buffers in a session over `n_users` users and `n_items` items: room for every user,
/// one tile of lists of up to [`MAX_K`] items, the item norms and the empty exclusion CSR (zeros as
/// allocated; [`clear_no_exclude`] writes them).
pub fn buffer_specs(n_users: usize, n_items: usize) -> Vec<BufferSpec> {
    let tile = TILE_USERS.min(n_users).max(1);
    vec![
        BufferSpec::u32(buffers::USERS, n_users, Role::Input),
        BufferSpec::u32(buffers::TOP_ITEMS, tile * MAX_K, Role::Output),
        BufferSpec::f32(buffers::TOP_SCORES, tile * MAX_K, Role::Output),
        BufferSpec::f32(buffers::ITEM_NORMS, n_items, Role::Work),
        BufferSpec::u32(buffers::NO_EXCLUDE_PTR, n_users + 1, Role::Resident),
        BufferSpec::u32(buffers::NO_EXCLUDE_IDX, 1, Role::Resident),
    ]
}

/// Writes the empty exclusion CSR ([`buffers::NO_EXCLUDE_PTR`]: zero offsets, every row empty).
pub fn clear_no_exclude<E: crate::gpu::executor::Executor>(exec: &mut E) -> anyhow::Result<()> {
    let id = exec.layout().id(buffers::NO_EXCLUDE_PTR);
    let zeros = vec![0u32; exec.layout().spec(id).len()];
    exec.write_u32(id, &zeros)
}

/// How a model scores a (user, item) pair from their embeddings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scorer {
    /// max(cos(e_u, e_i), μ): CoBraR and DeepMF.
    CosineClamp { mu: f32 },
    /// e_u · e_i: matrix factorisation, graph models, and item priors (MostPop: e_u = 1, e_i = pop).
    Dot,
}

impl Scorer {
    /// The score of embeddings `a` (user) and `b` (item), in f64.
    pub fn score(&self, a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        match *self {
            Scorer::Dot => dot,
            Scorer::CosineClamp { mu } => {
                let norm = |v: &[f32]| {
                    v.iter()
                        .map(|x| (*x as f64).powi(2))
                        .sum::<f64>()
                        .sqrt()
                        .max(NORM_EPS)
                };
                (dot / (norm(a) * norm(b))).max(mu as f64)
            }
        }
    }

    /// Whether an inner-product index over exported embeddings needs them L2-normalised to return
    /// this scorer's ranking.
    pub fn normalise_for_inner_product(&self) -> bool {
        matches!(self, Scorer::CosineClamp { .. })
    }

    pub fn mu(&self) -> f32 {
        match *self {
            Scorer::CosineClamp { mu } => mu,
            Scorer::Dot => f32::NEG_INFINITY,
        }
    }

    pub fn def(&self, variant: RankVariant) -> &'static KernelDef {
        match (self, variant) {
            (Scorer::CosineClamp { .. }, RankVariant::Workgroup) => &RANK_COSINE,
            (Scorer::Dot, RankVariant::Workgroup) => &RANK_DOT,
            (Scorer::CosineClamp { .. }, RankVariant::Serial) => &RANK_COSINE_SERIAL,
            (Scorer::Dot, RankVariant::Serial) => &RANK_DOT_SERIAL,
        }
    }
}

crate::param_block! {
    pub struct Params {
        pub n_users: u32, pub user_off: u32, pub n_items: u32, pub d4: u32, pub k: u32, pub mu: f32,
        pub groups_x: u32, pub _pad: u32,
    }
}

// Bindings of `main` and `serial`: user embeddings, item embeddings, exclusion CSR offsets and
// indices, users (read); top-k items and scores, item norms (read_write). Of `norms`: item embeddings,
// item norms. SCORER: 0 clamped cosine, 1 dot product.
crate::kernel_def! { pub RANK_COSINE = "rank_topk.cosine", shaders::RANK_TOPK, "main", Params, rank_twin, "SCORER" => 0.0 }
crate::kernel_def! { pub RANK_DOT = "rank_topk.dot", shaders::RANK_TOPK, "main", Params, rank_twin, "SCORER" => 1.0 }
crate::kernel_def! { pub RANK_NORMS = "rank_topk.norms", shaders::RANK_TOPK, "norms", Params, norms_twin, "SCORER" => 0.0 }
crate::kernel_def! { pub RANK_COSINE_SERIAL = "rank_topk.cosine.serial", shaders::RANK_TOPK, "serial", Params, rank_twin, "SCORER" => 0.0 }
crate::kernel_def! { pub RANK_DOT_SERIAL = "rank_topk.dot.serial", shaders::RANK_TOPK, "serial", Params, rank_twin, "SCORER" => 1.0 }

/// The two ways to rank: a workgroup per user (GPUs) or an invocation per user (CPU adapters). They
/// return the same lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankVariant {
    Workgroup,
    Serial,
}

impl RankVariant {
    /// Users one workgroup of the variant ranks (the grid's unit).
    pub fn users_per_workgroup(self) -> usize {
        match self {
            RankVariant::Workgroup => 1,
            RankVariant::Serial => 64,
        }
    }
}

/// Ranked lists: `items[u * k + r]` is the r-th recommendation of the u-th listed user (`NO_ITEM` past
/// the end of a short list), `scores` the matching predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub users: Vec<u32>,
    pub k: usize,
    pub items: Vec<u32>,
    pub scores: Vec<f32>,
}

impl TopK {
    /// The u-th listed user's recommendations (without empty positions).
    pub fn list(&self, u: usize) -> &[u32] {
        let row = &self.items[u * self.k..(u + 1) * self.k];
        let len = row.iter().position(|&i| i == NO_ITEM).unwrap_or(self.k);
        &row[..len]
    }
}

/// CPU twin: `user_emb` (N × dim) and `item_emb` (M × dim), the `exclude` CSR's items skipped, ties by
/// lower item index. Scores are computed in f64.
pub fn rank_cpu(
    user_emb: &[f32],
    item_emb: &[f32],
    dim: usize,
    exclude: &Csr,
    users: &[u32],
    k: usize,
    scorer: Scorer,
) -> TopK {
    let n_items = item_emb.len() / dim;
    let mut items = Vec::with_capacity(users.len() * k);
    let mut scores = Vec::with_capacity(users.len() * k);
    let mut cand: Vec<(f64, u32)> = Vec::with_capacity(n_items);
    for &u in users {
        let ue = &user_emb[u as usize * dim..(u as usize + 1) * dim];
        cand.clear();
        for i in 0..n_items {
            if !exclude.contains(u as usize, i as u32) {
                cand.push((
                    scorer.score(ue, &item_emb[i * dim..(i + 1) * dim]),
                    i as u32,
                ));
            }
        }
        cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for r in 0..k {
            match cand.get(r) {
                Some(&(s, i)) => {
                    items.push(i);
                    scores.push(s as f32);
                }
                None => {
                    items.push(NO_ITEM);
                    scores.push(f32::MIN);
                }
            }
        }
    }
    TopK {
        users: users.to_vec(),
        k,
        items,
        scores,
    }
}

/// The twin over the kernel's bindings (one tile), for the CPU executor.
fn rank_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let dim = p.d4 as usize * 4;
    let scorer = if c.constant("SCORER") == 1.0 {
        Scorer::Dot
    } else {
        Scorer::CosineClamp { mu: p.mu }
    };
    let to32 = |v: &[T]| v.iter().map(|x| x.to_f64() as f32).collect::<Vec<f32>>();
    let (ue, ie) = (to32(c.f("user_emb")), to32(c.f("item_emb")));
    let ptr = c.u("train_ptr").to_vec();
    let idx = c.u("train_idx").to_vec();
    let rows: Vec<Vec<u32>> = (0..ptr.len() - 1)
        .map(|u| idx[ptr[u] as usize..ptr[u + 1] as usize].to_vec())
        .collect();
    let exclude = Csr::from_rows(&rows);
    let users = c.u("users")[p.user_off as usize..][..p.n_users as usize].to_vec();
    let item_emb = &ie[..p.n_items as usize * dim];
    let top = rank_cpu(&ue, item_emb, dim, &exclude, &users, p.k as usize, scorer);
    c.u_mut("out_items")[..top.items.len()].copy_from_slice(&top.items);
    for (o, s) in c.f_mut("out_scores").iter_mut().zip(&top.scores) {
        *o = T::from_f64(*s as f64);
    }
}

fn norms_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let dim = p.d4 as usize * 4;
    let norms: Vec<f64> = c.f("item_emb")[..p.n_items as usize * dim]
        .chunks(dim)
        .map(|v| {
            v.iter()
                .map(|x| x.to_f64().powi(2))
                .sum::<f64>()
                .sqrt()
                .max(NORM_EPS)
        })
        .collect();
    for (o, n) in c.f_mut("item_norms").iter_mut().zip(norms) {
        *o = T::from_f64(n);
    }
}
