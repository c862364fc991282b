//! BPR-MF (SPEC §7, the authors' released BPRMF): a user and an item embedding table, scored by the dot
//! product, trained on sampled triples (u, i, j) with the BPR loss
//! −mean ln σ(x_ui − x_uj) + (λ/2)·(‖γ_u‖² + ‖γ_i‖² + ‖γ_j‖²)/B — the regulariser on the rows a batch
//! uses, not coupled to Adam — and a dense Adam update of both tables every step.
//!
//! A step uploads the batch image (the triples and, per table, the transposed index of the rows each
//! table row receives gradient from) and records three dispatches and one per table: the loss with each
//! triple's three gradient rows, the loss sum into the ring, and each table's Adam step gathering its
//! rows' gradients (the same row-gathered Adam as CoBraR's tables). The embedding step is a copy.

use std::sync::Arc;

use super::Block;
use super::arch::{Architecture, ParamCounts};
use super::net::Net;
use super::params::{Init, ParamLayout, TensorSpec};
use super::spec::{self, ModelSpec};
use super::{
    Mode, Model, ModelKind, MomentIds, Side, WithGrads, WithMoments, buffers, row_steps_buffer,
};
use crate::batch::IndexStrategy;
use crate::config::{Optimizer, TrainConfig};
use crate::data::Csr;
use crate::data::Dataset;
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{Bind, BufId, BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::AdamConfig;
use crate::kernels::{adam_table, bpr_loss};
use crate::sampler::Pair;
use crate::sampler::SamplerKind;

/// Buffers of the two tables (LightGCN's layer 0 too).
pub(crate) const USERS: &str = "E_U";
pub(crate) const ITEMS: &str = "E_I";

/// BPR-MF's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BprConfig {
    pub dim: usize,
    /// λ of the regulariser on the rows used.
    pub lambda: f32,
    pub lr: f64,
    /// How the tables step.
    pub optimizer: Optimizer,
}

/// One step's upload: the triples, then each table's transposed index.
pub struct BprBatch {
    pub image: Vec<u32>,
    /// Triples in the batch.
    pub n: usize,
    /// Where the image's parts start.
    pub regions: BprRegions,
}

/// Offsets (u32 words) in a [`BprBatch`]'s image of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BprRegions {
    /// Each triple's user, positive item, negative item (`n` words each).
    pub users: usize,
    pub positives: usize,
    pub negatives: usize,
    /// The user table's gradient index: row offsets (`n_users + 1`), then the gradient rows.
    pub user_ptr: usize,
    pub user_rows: usize,
    /// The item table's gradient index, likewise.
    pub item_ptr: usize,
    pub item_rows: usize,
}

impl BprBatch {
    /// Builds the image of `pairs`, read as (u, i, 1), (u, j, 0) couples (the `bpr` sampler's order).
    /// `n_users`/`n_items`: the tables' rows.
    pub fn build(pairs: &[Pair], n_users: usize, n_items: usize) -> BprBatch {
        assert!(
            pairs.len().is_multiple_of(2),
            "BPR batches are (positive, negative) couples"
        );
        let n = pairs.len() / 2;
        let len = image_len(n, n_users, n_items);
        let mut image = Vec::with_capacity(len);
        image.extend(pairs.chunks(2).map(|c| c[0].0));
        image.extend(pairs.chunks(2).map(|c| c[0].1));
        image.extend(pairs.chunks(2).map(|c| c[1].1));
        let user_ptr = image.len();
        // Per table row, its gradient rows in ascending order: user rows are triples, item rows are
        // slots 2b (positive) and 2b + 1 (negative).
        let users = pairs.chunks(2).map(|c| c[0].0);
        let user_rows = push_index(&mut image, users, n_users);
        let item_ptr = image.len();
        let items = pairs.chunks(2).flat_map(|c| [c[0].1, c[1].1]);
        let item_rows = push_index(&mut image, items, n_items);
        debug_assert_eq!(image.len(), len);
        BprBatch {
            image,
            n,
            regions: BprRegions {
                users: 0,
                positives: n,
                negatives: 2 * n,
                user_ptr,
                user_rows,
                item_ptr,
                item_rows,
            },
        }
    }

    /// Per table (users, items): where its gradient index lies in the image (row offsets, rows), where
    /// its gradient rows start in `grads_act` for `dim`-wide rows (users' first, one per triple, then
    /// items', two per triple), and how many rows it gathers.
    pub fn gathers(&self, dim: usize) -> [((usize, usize), usize, u64); 2] {
        let (r, n) = (&self.regions, self.n);
        [
            ((r.user_ptr, r.user_rows), 0, n as u64),
            ((r.item_ptr, r.item_rows), n * dim, 2 * n as u64),
        ]
    }
}

impl BprBatch {
    /// Rows of the `rows`-row table whose index (offsets at `ptr` in the image) is not empty: the
    /// rows a lazy step updates (for its cost).
    pub fn touched(&self, ptr: usize, rows: usize) -> u64 {
        let off = &self.image[ptr..ptr + rows + 1];
        off.windows(2).filter(|w| w[1] > w[0]).count() as u64
    }
}

/// Appends the CSR (row → positions in `keys`, ascending) of `keys` over `rows` rows; returns where
/// its position list starts.
fn push_index(image: &mut Vec<u32>, keys: impl Iterator<Item = u32> + Clone, rows: usize) -> usize {
    let start = image.len();
    image.resize(start + rows + 1, 0);
    let mut n = 0u32;
    for k in keys.clone() {
        image[start + k as usize + 1] += 1;
        n += 1;
    }
    for r in 0..rows {
        image[start + r + 1] += image[start + r];
    }
    let list = image.len();
    image.resize(list + n as usize, 0);
    let mut fill: Vec<u32> = image[start..start + rows].to_vec();
    for (pos, k) in keys.enumerate() {
        let at = &mut fill[k as usize];
        image[list + *at as usize] = pos as u32;
        *at += 1;
    }
    list
}

/// u32 words of the image of `n` triples.
pub(crate) fn image_len(n: usize, n_users: usize, n_items: usize) -> usize {
    3 * n + (n_users + 1 + n) + (n_items + 1 + 2 * n)
}

/// The embedding tables' kernels bind them whole: one line when one exceeds a storage binding.
pub(crate) fn check_tables_unchunked(layout: &MemoryLayout, model: &str) -> anyhow::Result<()> {
    for (table, side) in [(USERS, "user"), (ITEMS, "item")] {
        let id = layout.id(table);
        anyhow::ensure!(
            layout.chunks(id) == 1,
            "{model}'s {side} embedding table ({} MiB) exceeds one storage binding of this \
             adapter; use a smaller --arch (the embedding size)",
            layout.spec(id).bytes() >> 20
        );
    }
    Ok(())
}

/// The buffers a model trained on triples adds for its steps ([`triple_buffers`]), resolved from a
/// training or check session's layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TripleIds {
    pub batch: BufId,
    pub grads_act: BufId,
    pub pair_loss: BufId,
    pub ring: BufId,
}

impl TripleIds {
    pub fn resolve(layout: &MemoryLayout) -> TripleIds {
        TripleIds {
            batch: layout.id(buffers::BATCH),
            grads_act: layout.id(buffers::GRADS_ACT),
            pair_loss: layout.id(buffers::PAIR_LOSS),
            ring: layout.id(buffers::LOSS_RING),
        }
    }
}

/// Records the BPR loss of batch `b` (already uploaded to `ids.batch`) at step `t`: the scores of the
/// `scored` user and item rows, the regulariser on the `regularised` ones — its gradient in the
/// gradient rows only when they are the same rows (BPR-MF) — and the mean into the loss ring.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_loss(
    pb: &mut PlanBuilder<'_, '_>,
    ids: &TripleIds,
    b: &BprBatch,
    t: u64,
    dim: usize,
    lambda: f32,
    scored: [BufId; 2],
    regularised: [BufId; 2],
) {
    let TripleIds {
        batch,
        grads_act: grads,
        pair_loss,
        ring,
    } = *ids;
    let r = &b.regions;
    let [(_, gu_off, _), (_, gi_off, _)] = b.gathers(dim);
    let launch = bpr_loss::Launch {
        n: b.n,
        dim,
        u_off: r.users,
        i_off: r.positives,
        j_off: r.negatives,
        gu_off,
        gi_off,
        lambda,
        reg_rows: scored == regularised,
    };
    let (p, grid) = launch.params(pb.max_per_dim);
    let binds = [
        scored[0].into(),
        scored[1].into(),
        batch.into(),
        grads.into(),
        pair_loss.into(),
        regularised[0].into(),
        regularised[1].into(),
    ];
    pb.dispatch_costed(&bpr_loss::GRAD, &binds, &p, grid, bpr_loss::cost(&p));
    super::record_mean_loss(pb, pair_loss, ring, b.n, t);
}

/// The buffers a model trained on triples needs beside its own in `mode`: the batch image, the
/// triples' gradient rows and their losses (training and checks only), and its resident data.
pub(crate) fn triple_buffers(
    mode: Mode,
    (n_users, n_items, dim): (usize, usize, usize),
    max_triples: usize,
    resident: Vec<(&'static str, &[u32])>,
) -> Vec<BufferSpec> {
    let mut specs = Vec::new();
    if mode != Mode::Infer {
        let b = max_triples;
        let image = image_len(b, n_users, n_items);
        specs.push(BufferSpec::u32(buffers::BATCH, image, Role::Input));
        specs.push(BufferSpec::f32(buffers::GRADS_ACT, 3 * b * dim, Role::Work));
        specs.push(BufferSpec::f32(buffers::PAIR_LOSS, b, Role::Work));
    }
    for (name, data) in resident {
        specs.push(BufferSpec::u32(name, data.len(), Role::Resident));
    }
    specs
}

/// The parameter tensors: Xavier-uniform embeddings (PyTorch's bound for an N × d weight).
pub fn param_layout(dim: usize, n_users: usize, n_items: usize) -> ParamLayout {
    ParamLayout::new(vec![
        TensorSpec::table(
            "user_embedding.weight",
            USERS,
            n_users,
            dim,
            Init::xavier(n_users, dim),
        ),
        TensorSpec::table(
            "item_embedding.weight",
            ITEMS,
            n_items,
            dim,
            Init::xavier(n_items, dim),
        ),
    ])
}

/// BPR-MF on a training split.
pub struct Bpr<'d> {
    pub cfg: BprConfig,
    by_user: &'d Csr,
    n_items: usize,
    /// Most triples one step holds.
    pub max_triples: usize,
    params: Arc<ParamLayout>,
}

impl<'d> Bpr<'d> {
    /// The tables' Adam: λ is in the loss (rows used only), so Adam adds no weight decay.
    fn adam(&self) -> AdamConfig {
        AdamConfig::new(self.cfg.lr, 0.0)
    }

    pub fn new(cfg: BprConfig, by_user: &'d Csr, n_items: usize, max_triples: usize) -> Bpr<'d> {
        let params = Arc::new(param_layout(cfg.dim, by_user.n_rows(), n_items));
        Bpr {
            cfg,
            by_user,
            n_items,
            max_triples: max_triples.max(1),
            params,
        }
    }

    /// The loss stage of batch `b` (gradient rows into `grads_act`, losses into the ring).
    fn loss<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, ids: &StepIds, b: &'a BprBatch, t: u64) {
        pb.upload(ids.triple.batch, 0, &b.image);
        let (d, lambda) = (self.cfg.dim, self.cfg.lambda);
        record_loss(pb, &ids.triple, b, t, d, lambda, ids.tables, ids.tables);
    }
}

/// The two tables' buffers (users, items).
pub(crate) fn table_ids(layout: &MemoryLayout) -> [BufId; 2] {
    [layout.id(USERS), layout.id(ITEMS)]
}

/// The buffers of a BPR-MF step, resolved once per plan.
struct StepIds {
    triple: TripleIds,
    tables: [BufId; 2],
}

impl StepIds {
    fn resolve(layout: &MemoryLayout) -> StepIds {
        StepIds {
            triple: TripleIds::resolve(layout),
            tables: table_ids(layout),
        }
    }
}

impl Model for Bpr<'_> {
    type Batch = BprBatch;

    fn label(&self) -> String {
        format!("bpr {}", self.cfg.dim)
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Bpr
    }

    fn lazy_adam(&self) -> Option<AdamConfig> {
        (self.cfg.optimizer == Optimizer::LazyAdam).then(|| self.adam())
    }

    fn params(&self) -> &Arc<ParamLayout> {
        &self.params
    }

    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        let shape = (self.n_users(), self.n_items, self.cfg.dim);
        triple_buffers(mode, shape, self.max_triples, self.resident())
    }

    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        check_tables_unchunked(layout, "BPR-MF")
    }

    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        buffers::exclusion(self.by_user)
    }

    fn n_users(&self) -> usize {
        self.by_user.n_rows()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn dim(&self) -> usize {
        self.cfg.dim
    }

    fn scorer(&self) -> Scorer {
        Scorer::Dot
    }

    fn build_batch(&self, pairs: &[Pair]) -> BprBatch {
        BprBatch::build(pairs, self.n_users(), self.n_items)
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a BprBatch, t: u64) {
        let ids = WithMoments::resolve(pb.layout, StepIds::resolve(pb.layout), [USERS, ITEMS]);
        self.loss(pb, &ids.step, b, t);
        let adam = self.adam();
        let step = adam.at_step(t);
        let (batch, grads) = (ids.step.triple.batch, ids.step.triple.grads_act);
        let lazy = self.lazy_adam().is_some();
        for side in 0..2 {
            let (index, dh_off, entries) = b.gathers(self.cfg.dim)[side];
            let table = ids.step.tables[side];
            let MomentIds { m, v } = ids.moments[side];
            let rows = (0, pb.layout.spec(table).rows);
            let mut binds = vec![table.into(), m.into(), v.into(), batch.into(), grads.into()];
            let max = pb.max_per_dim;
            if lazy {
                let (p, grid) =
                    adam_table::lazy_params(rows, self.cfg.dim, index, dh_off, &adam, max);
                let steps = pb.layout.id(&row_steps_buffer([USERS, ITEMS][side]));
                binds.extend::<[Bind; 2]>([steps.into(), pb.layout.id(buffers::ADAM_BIAS).into()]);
                let cost = adam_table::lazy_cost(&p, entries, b.touched(index.0, rows.1));
                pb.dispatch_costed(&adam_table::LAZY, &binds, &p, grid, cost);
            } else {
                let (p, grid) = adam_table::params(rows, self.cfg.dim, index, dh_off, step, max);
                let cost = adam_table::cost(&p, entries, true);
                pb.dispatch_costed(&adam_table::STEP, &binds, &p, grid, cost);
            }
        }
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a BprBatch, t: u64) {
        let ids = WithGrads::resolve(pb.layout, StepIds::resolve(pb.layout), [USERS, ITEMS]);
        self.loss(pb, &ids.step, b, t);
        let step = self.adam().at_step(t);
        let (batch, grads) = (ids.step.triple.batch, ids.step.triple.grads_act);
        for side in 0..2 {
            let (index, dh_off, _) = b.gathers(self.cfg.dim)[side];
            let rows = (0, pb.layout.spec(ids.step.tables[side]).rows);
            let out = ids.grads[side];
            let (p, grid) =
                adam_table::params(rows, self.cfg.dim, index, dh_off, step, pb.max_per_dim);
            let binds = [batch.into(), grads.into(), out.into()];
            pb.dispatch(&adam_table::GATHER, &binds, &p, grid);
        }
    }

    fn embed_rows(&self, _mode: Mode) -> usize {
        self.n_users().max(self.n_items)
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        let Block { side, ids, first } = block;
        // The embeddings are the tables: blocks are consecutive ids.
        debug_assert!(
            ids.iter()
                .enumerate()
                .all(|(k, &id)| id as usize == first + k)
        );
        let (table, dst) = embed_ids(pb.layout, side);
        let d = self.cfg.dim;
        pb.copy(table, first * d, dst, first * d, ids.len() * d);
    }
}

/// The buffers of BPR-MF's embedding of `side`: its table and the side's embeddings.
fn embed_ids(layout: &MemoryLayout, side: Side) -> (BufId, BufId) {
    let table = match side {
        Side::Users => USERS,
        Side::Items => ITEMS,
    };
    (layout.id(table), layout.id(buffers::embeddings(side)))
}

/// BPR-MF's descriptor.
pub static SPEC: ModelSpec = ModelSpec {
    title: "BPR-MF",
    default_arch: &[64],
    check_arch: check_one_width,
    check: spec::no_check,
    check_data: spec::no_data_check,
    flags: &["lr", "weight-decay", "optimizer"],
    why_not: PAIRWISE_WHY,
    dropout: None,
    samplers: &[SamplerKind::Bpr],
    trains: true,
    branches: 0,
    label: spec::arch_label,
    counts: |a, s| table_counts(a, s.users, s.items),
    describe: spec::plain_counts,
    counts_note: None,
    param_layout: |cfg, s| param_layout(cfg.arch.embedding(), s.users, s.items),
    build,
    index_probe: None,
    bench_archs: &["64"],
    unseen: spec::Unseen::Cannot,
};

/// Why BPR-MF and LightGCN take no pointwise flags.
pub(crate) const PAIRWISE_WHY: &str =
    "it trains on the bpr sampler's (user, positive, negative) triples with the BPR loss";

/// One width in `--arch`: the embedding size (BPR-MF, LightGCN).
pub(crate) fn check_one_width(kind: ModelKind, arch: &Architecture) -> anyhow::Result<()> {
    anyhow::ensure!(
        arch.widths.len() == 1,
        "{kind} takes one width in --arch, its embedding size (e.g. 64), got {arch}"
    );
    Ok(())
}

/// The two embedding tables (LightGCN's layer 0), counted in the projection fields.
pub(crate) fn table_counts(arch: &Architecture, n_users: usize, n_items: usize) -> ParamCounts {
    let d = arch.embedding() as u64;
    let (u, i) = (n_users as u64 * d, n_items as u64 * d);
    ParamCounts {
        user_projection: u,
        item_projection: i,
        branches: 0,
        branch_weights: 0,
        total: u + i,
    }
}

fn build<'d>(cfg: &TrainConfig, ds: &'d Dataset, max_pairs: usize, _: IndexStrategy) -> Net<'d> {
    let bpr = BprConfig {
        dim: cfg.arch.embedding(),
        lambda: cfg.weight_decay as f32,
        lr: cfg.lr,
        optimizer: cfg.optimizer,
    };
    // The bpr sampler's steps hold two pairs per triple.
    Net::new(Bpr::new(
        bpr,
        &ds.train,
        ds.n_items(),
        max_pairs.div_ceil(2),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_image_indexes_every_gradient_row_once_in_order() {
        let pairs = [
            (2, 5, 1.0),
            (2, 1, 0.0),
            (0, 1, 1.0),
            (0, 3, 0.0),
            (2, 5, 1.0),
            (2, 0, 0.0),
        ];
        let b = BprBatch::build(&pairs, 3, 6);
        assert_eq!(b.n, 3);
        let r = b.regions;
        assert_eq!((r.users, r.positives, r.negatives), (0, 3, 6));
        assert_eq!(&b.image[..9], &[2, 0, 2, 5, 1, 5, 1, 3, 0]);
        // Users: row 0 ← triple 1; row 2 ← triples 0 and 2.
        assert_eq!(&b.image[r.user_ptr..r.user_ptr + 4], &[0, 1, 1, 3]);
        assert_eq!(&b.image[r.user_rows..r.user_rows + 3], &[1, 0, 2]);
        // Items: slots 0..6 hold 5, 1, 1, 3, 5, 0.
        assert_eq!(&b.image[r.item_ptr..r.item_ptr + 7], &[0, 1, 3, 3, 4, 4, 6]);
        assert_eq!(&b.image[r.item_rows..], &[5, 1, 2, 3, 0, 4]);
        assert_eq!(b.image.len(), image_len(3, 3, 6));
    }
}
