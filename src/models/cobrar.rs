//! CoBraR and DeepMF (SPEC §3): per side a sparse row projection h = ReLU(b + Σ W[j, :]) over the
//! entity's training row, then the collaborative branch — one shared by users and items (CoBraR), or one
//! per side (DeepMF) — of ReLU layers with dropout; scored by the μ-clamped cosine with BCE.
//!
//! Parameters: the projection tables W_U (items × d1, gathered through the users' rows) and W_T
//! (users × d1), and one dense block holding both projection biases and every layer as [W ; b]. A step
//! uploads the batch image (`batch.rs`) and records: 2 projections (× table chunks), L dense forward,
//! score + loss sum, 2L dense backward, the bias column sums, dense Adam, and the tables' Adam fused
//! with their gradient gather (× chunks).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use super::Block;
use super::arch::ParamCounts;
use super::net::Net;
use super::params::{DENSE, Init, ParamLayout, TensorSpec};
use super::spec::{self, ModelSpec};
use super::{
    Architecture, Embedding, Mode, Model, ModelKind, MomentIds, Side, buffers, grad_buffer,
    ring_slot, row_steps_buffer,
};
use crate::batch::{self, HostBatch, IndexStrategy};
use crate::config::{Optimizer, TrainConfig};
use crate::data::Csr;
use crate::data::Dataset;
use crate::eval::ranking::Scorer;
use crate::gpu::GpuContext;
use crate::gpu::exec::GpuExec;
use crate::gpu::memory::{Bind, BufId, BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::{self, AdamConfig, AdamStep};
use crate::kernels::{
    Activation, Dropout, adam_table, batch_index, column_sums, dense_backward_data,
    dense_backward_weight, dense_forward, score_loss, spmm,
};
use crate::pipeline::{self, IndexProbe};
use crate::sampler::Pair;
use crate::sampler::{Sampler, SamplerKind};

/// Rows of one embedding block in inference sessions.
pub const INFER_ROWS: usize = 4096;

/// Step-level settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepConfig {
    /// Lower clamp of the score before the loss.
    pub mu: f32,
    /// Dropout rate after every branch layer (CoBraR only; 0 disables).
    pub dropout: f32,
    pub adam: AdamConfig,
    /// The run's seed (dropout masks are keyed by it).
    pub seed: u64,
    /// The loss over the clamped cosines (not written when BCE: the study's records are unchanged).
    #[serde(default, skip_serializing_if = "score_loss::Loss::is_bce")]
    pub loss: score_loss::Loss,
    /// How the tables step (not written when dense Adam, as the loss).
    #[serde(default, skip_serializing_if = "Optimizer::is_adam")]
    pub optimizer: Optimizer,
}

impl StepConfig {
    /// The step settings of a run's configuration.
    pub fn of(cfg: &TrainConfig) -> StepConfig {
        StepConfig {
            mu: cfg.mu,
            dropout: cfg.dropout,
            adam: AdamConfig::new(cfg.lr, cfg.weight_decay),
            seed: cfg.seed,
            loss: match cfg.loss {
                crate::config::LossKind::Bce => score_loss::Loss::Bce,
                crate::config::LossKind::Bpr => score_loss::Loss::Bpr {
                    tau: cfg.temperature,
                },
            },
            optimizer: cfg.optimizer,
        }
    }

    /// Dropout of branch layer `l` (0-based) at optimizer step `t`.
    pub fn dropout_at(&self, t: u64, l: usize) -> Dropout {
        Dropout::new(self.dropout, self.seed, t, l as u32)
    }
}

/// Names of the parameter tensors (the checkpoint's, PyTorch's layout).
pub fn branch_prefix(kind: ModelKind, branch: usize) -> &'static str {
    match (kind, branch) {
        (ModelKind::Deepmf, 0) => "user_branch",
        (ModelKind::Deepmf, _) => "item_branch",
        _ => "branch",
    }
}

/// The parameter tensors of `kind` with `arch` on N users and M items, in initialisation order.
pub fn param_layout(
    kind: ModelKind,
    arch: &Architecture,
    n_users: usize,
    n_items: usize,
) -> ParamLayout {
    let d1 = arch.d1();
    // The user encoder's first layer is Linear(M → d1); the item encoder's Linear(N → d1).
    let mut t = Vec::new();
    for (side, table, fan_in) in [("user", W_USER, n_items), ("item", W_ITEM, n_users)] {
        let weight = format!("{side}_projection.weight");
        t.push(TensorSpec::table(
            &weight,
            table,
            fan_in,
            d1,
            Init::xavier(fan_in, d1),
        ));
        let bias = format!("{side}_projection.bias");
        t.push(TensorSpec::dense(&bias, &[d1], false, Init::bias(fan_in)));
    }
    for branch in 0..branches_of(kind) {
        let prefix = branch_prefix(kind, branch);
        for (l, (i, o)) in arch.layers().enumerate() {
            // Stored [W ; b] with W as fan_in × fan_out; exported as nn.Linear's fan_out × fan_in.
            t.push(TensorSpec::dense(
                &format!("{prefix}.{l}.weight"),
                &[o, i],
                true,
                Init::xavier(i, o),
            ));
            t.push(TensorSpec::dense(
                &format!("{prefix}.{l}.bias"),
                &[o],
                false,
                Init::bias(i),
            ));
        }
    }
    ParamLayout::new(t)
}

/// The two projections' sparse inputs: each entity's row over its projection table's rows. For CoBraR
/// and DeepMF these are the training interactions (a user's items, an item's users); a model that
/// adds columns (side information after the interactions) or rows (variants of an entity's input,
/// beyond the first N or M) gives its own. Rows 0..N (0..M) are the entities' inputs at evaluation.
#[derive(Debug, Clone)]
pub struct Inputs<'d> {
    /// Rows: the users, then any variant rows; columns: W_U's rows.
    pub users: Cow<'d, Csr>,
    /// Rows: the items, then any variant rows; columns: W_T's rows.
    pub items: Cow<'d, Csr>,
    /// Rows of W_U and of W_T (the inputs' column counts).
    pub user_table_rows: usize,
    pub item_table_rows: usize,
    /// Resident buffers of the inputs: the users' offsets and indices, the items'.
    pub names: [&'static str; 4],
}

impl<'d> Inputs<'d> {
    /// The training interactions as inputs (CoBraR's and DeepMF's), resident under the exclusion's
    /// and the by-item names.
    pub fn interactions(by_user: &'d Csr, by_item: &'d Csr) -> Inputs<'d> {
        Inputs {
            users: Cow::Borrowed(by_user),
            items: Cow::Borrowed(by_item),
            user_table_rows: by_item.n_rows(),
            item_table_rows: by_user.n_rows(),
            names: [
                buffers::EXCLUDE_PTR,
                buffers::EXCLUDE_IDX,
                buffers::BY_ITEM_PTR,
                buffers::BY_ITEM_IDX,
            ],
        }
    }

    /// Whether the users' inputs are the exclusion CSR itself (no separate upload).
    fn users_are_exclusion(&self) -> bool {
        self.names[0] == buffers::EXCLUDE_PTR
    }
}

/// CoBraR (one shared branch) or DeepMF (a branch per side) on a training split.
#[derive(Clone)]
pub struct TwoTower<'d> {
    pub kind: ModelKind,
    pub arch: Architecture,
    pub cfg: StepConfig,
    /// The training interactions by user (the ranking's exclusion).
    train: &'d Csr,
    n_items: usize,
    inputs: Inputs<'d>,
    /// Most pairs one training step scores.
    pub max_pairs: usize,
    /// Who builds the tables' gradient index (the same lists either way).
    pub index: IndexStrategy,
    params: Arc<ParamLayout>,
    /// Offsets of each branch's layers' [W ; b] in the dense block: `layers[branch][l]`.
    layers: Vec<Vec<usize>>,
    b_user: usize,
    b_item: usize,
}

/// The projection tables' buffers: W_U (items × d1, gathered through the users' rows) and W_T.
const W_USER: &str = "W_U";
const W_ITEM: &str = "W_T";

/// One projection table's Adam step: the table, where its gradient index lies (the buffer, the
/// offsets of its row pointers and rows) and the first dh row of the side it gathers.
struct TableGather {
    table: BufId,
    index_buf: BufId,
    index: (usize, usize),
    dh_off: usize,
    side: Side,
}

/// The resident input CSRs: the users' projection rows and the items'.
#[derive(Debug, Clone, Copy)]
struct CsrIds {
    u_ptr: BufId,
    u_idx: BufId,
    i_ptr: BufId,
    i_idx: BufId,
}

impl CsrIds {
    fn resolve(layout: &MemoryLayout, names: &[&str; 4]) -> CsrIds {
        let [u_ptr, u_idx, i_ptr, i_idx] = names.map(|n| layout.id(n));
        CsrIds {
            u_ptr,
            u_idx,
            i_ptr,
            i_idx,
        }
    }
}

/// The buffers of the gradient index built on the GPU ([`IndexStrategy::Gpu`]): the batch image it
/// reads, the training CSRs, the batch-membership maps and the index.
#[derive(Debug, Clone, Copy)]
struct IndexIds {
    batch: BufId,
    csr: CsrIds,
    maps: BufId,
    index: BufId,
}

impl IndexIds {
    fn resolve(layout: &MemoryLayout, names: &[&str; 4]) -> IndexIds {
        IndexIds {
            batch: layout.id(buffers::BATCH),
            csr: CsrIds::resolve(layout, names),
            maps: layout.id(INDEX_MAPS),
            index: layout.id(INDEX),
        }
    }
}

/// The buffers of the forward pass (every plan), resolved once per plan.
#[derive(Debug, Clone, Copy)]
struct Ids {
    w_user: BufId,
    w_item: BufId,
    dense: BufId,
    acts: BufId,
    batch: BufId,
    csr: CsrIds,
}

impl Ids {
    fn resolve(layout: &MemoryLayout, names: &[&str; 4]) -> Ids {
        Ids {
            w_user: layout.id(W_USER),
            w_item: layout.id(W_ITEM),
            dense: layout.id(DENSE),
            acts: layout.id(buffers::ACTS),
            batch: layout.id(buffers::BATCH),
            csr: CsrIds::resolve(layout, names),
        }
    }
}

/// The buffers of a forward and backward pass (training and checks): the forward pass's, the
/// activation gradients, the losses, the dense gradient, and the GPU-built index's when the model
/// builds it there.
struct StepIds {
    fwd: Ids,
    grads_act: BufId,
    pair_loss: BufId,
    ring: BufId,
    dense_grad: BufId,
    gpu_index: Option<IndexIds>,
}

impl StepIds {
    fn resolve(layout: &MemoryLayout, index: IndexStrategy, names: &[&str; 4]) -> StepIds {
        StepIds {
            fwd: Ids::resolve(layout, names),
            grads_act: layout.id(buffers::GRADS_ACT),
            pair_loss: layout.id(buffers::PAIR_LOSS),
            ring: layout.id(buffers::LOSS_RING),
            dense_grad: layout.id(&grad_buffer(DENSE)),
            gpu_index: (index == IndexStrategy::Gpu).then(|| IndexIds::resolve(layout, names)),
        }
    }
}

/// A training step's buffers: the step's, the dense block's moments and the tables' (W_U's, W_T's).
struct TrainIds {
    step: StepIds,
    dense_moments: MomentIds,
    table_moments: [MomentIds; 2],
}

/// A gradient check's buffers: the step's and the tables' gradients (W_U's, W_T's).
struct CheckIds {
    step: StepIds,
    table_grads: [BufId; 2],
}

impl<'d> TwoTower<'d> {
    /// `by_user` (N rows of items) and `by_item` (M rows of users) are the training interactions.
    pub fn new(
        kind: ModelKind,
        arch: Architecture,
        cfg: StepConfig,
        by_user: &'d Csr,
        by_item: &'d Csr,
        max_pairs: usize,
    ) -> TwoTower<'d> {
        let inputs = Inputs::interactions(by_user, by_item);
        Self::with_inputs(
            kind,
            arch,
            cfg,
            by_user,
            by_item.n_rows(),
            inputs,
            max_pairs,
        )
    }

    /// The model over given projection inputs; `train` (N rows of items, of `n_items`) is the training
    /// interactions by user (the ranking's exclusion).
    pub fn with_inputs(
        kind: ModelKind,
        arch: Architecture,
        cfg: StepConfig,
        train: &'d Csr,
        n_items: usize,
        inputs: Inputs<'d>,
        max_pairs: usize,
    ) -> TwoTower<'d> {
        // param_layout's W_U has one row per "item" and W_T one per "user": the inputs' columns.
        let params = Arc::new(param_layout(
            kind,
            &arch,
            inputs.item_table_rows,
            inputs.user_table_rows,
        ));
        let layers = (0..branches_of(kind))
            .map(|b| {
                (0..arch.n_layers())
                    .map(|l| params.offset(&format!("{}.{l}.weight", branch_prefix(kind, b))))
                    .collect()
            })
            .collect();
        let b_user = params.offset("user_projection.bias");
        let b_item = params.offset("item_projection.bias");
        TwoTower {
            kind,
            arch,
            cfg,
            train,
            n_items,
            inputs,
            max_pairs,
            index: IndexStrategy::Host,
            params,
            layers,
            b_user,
            b_item,
        }
    }

    /// The same model with the tables' gradient index built by `index`.
    pub fn with_index(mut self, index: IndexStrategy) -> Self {
        self.index = index;
        self
    }

    /// Whether it trains with the pairwise loss (on triples).
    pub fn pairwise(&self) -> bool {
        self.cfg.loss != score_loss::Loss::Bce
    }

    /// The same model with its tables stepping by `optimizer`.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Self {
        self.cfg.optimizer = optimizer;
        self
    }

    /// The same model trained with `loss` (its batches must then be the bpr sampler's triples).
    pub fn with_loss(mut self, loss: score_loss::Loss) -> Self {
        self.cfg.loss = loss;
        self
    }

    /// The projections' inputs: by user and by item (the training interactions for CoBraR and DeepMF).
    pub fn training_split(&self) -> (&Csr, &Csr) {
        (self.input(Side::Users), self.input(Side::Items))
    }

    /// The projection inputs of `side` (rows: its entities, then any variant rows).
    fn input(&self, side: Side) -> &Csr {
        match side {
            Side::Users => &self.inputs.users,
            Side::Items => &self.inputs.items,
        }
    }

    /// The most input entries one batch's entities of `side` can hold: the entities' own rows'
    /// total (variant rows are subsets of them, and an entity is in a batch once).
    fn own_nnz(&self, side: Side) -> usize {
        let n = match side {
            Side::Users => self.n_users(),
            Side::Items => self.n_items(),
        };
        self.input(side).offsets[n] as usize
    }

    /// The batch of `pairs`, whose user and item ids are rows of the inputs (variant rows included).
    pub fn batch_of(&self, pairs: &[Pair]) -> HostBatch {
        let i = &self.inputs;
        let tables = (i.user_table_rows, i.item_table_rows);
        HostBatch::build_over(pairs, &i.users, &i.items, tables, self.index)
    }

    /// Embedding rows of a training step's activations.
    fn train_rows(&self) -> usize {
        batch::max_rows(self.max_pairs, self.n_users(), self.n_items())
    }

    /// Offsets (f32 elements) of h and each layer's output in `acts` / `grads_act` for blocks of
    /// `rows` rows, and the total.
    fn offsets(&self, rows: usize) -> Vec<usize> {
        let mut off = Vec::new();
        let mut total = 0usize;
        for &w in &self.arch.widths {
            off.push(total);
            total += rows * w;
        }
        off.push(total);
        off
    }

    fn train_ids(&self, layout: &MemoryLayout) -> TrainIds {
        TrainIds {
            step: StepIds::resolve(layout, self.index, &self.inputs.names),
            dense_moments: MomentIds::of(layout, DENSE),
            table_moments: [W_USER, W_ITEM].map(|t| MomentIds::of(layout, t)),
        }
    }

    fn check_ids(&self, layout: &MemoryLayout) -> CheckIds {
        CheckIds {
            step: StepIds::resolve(layout, self.index, &self.inputs.names),
            table_grads: [W_USER, W_ITEM].map(|t| layout.id(&grad_buffer(t))),
        }
    }

    /// Row blocks of the stacked batch: (rows, first row, branch).
    fn segments(&self, nu: usize, ni: usize) -> Vec<(usize, usize, usize)> {
        if branches_of(self.kind) == 1 {
            vec![(nu + ni, 0, 0)]
        } else {
            vec![(nu, 0, 0), (ni, nu, 1)]
        }
    }

    fn dropout(&self, t: Option<u64>, l: usize) -> Dropout {
        match t {
            Some(t) => self.cfg.dropout_at(t, l),
            None => Dropout::NONE,
        }
    }

    /// h rows `[row0, row0 + rows)` from the user (W_U) or item (W_T) projection of the ids at
    /// `ids_off` in `batch`, one launch per table chunk.
    #[allow(clippy::too_many_arguments)]
    fn projection(
        &self,
        pb: &mut PlanBuilder<'_, '_>,
        ids: &Ids,
        act_off: &[usize],
        side: Side,
        entities: &[u32],
        ids_off: usize,
        row0: usize,
    ) {
        let rows = entities.len();
        if rows == 0 {
            return;
        }
        let d1 = self.arch.d1();
        let (table, ptr, idx, b_off) = match side {
            Side::Users => (ids.w_user, ids.csr.u_ptr, ids.csr.u_idx, self.b_user),
            Side::Items => (ids.w_item, ids.csr.i_ptr, ids.csr.i_idx, self.b_item),
        };
        let n_chunks = pb.layout.chunks(table);
        for c in 0..n_chunks {
            let launch = spmm::Launch {
                n_rows: rows,
                ids_off,
                h_off: act_off[0] + row0 * d1,
                dim: d1,
                chunk: pb.layout.chunk_rows(table, c),
                bias: Some(b_off),
                first: c == 0,
                last: c + 1 == n_chunks,
                row_scale: false,
                dropout: Dropout::NONE,
            };
            let (p, grid) = launch.params(pb.max_per_dim);
            let binds = [
                pb.layout.chunk(table, c),
                ptr.into(),
                idx.into(),
                ids.batch.into(),
                ids.dense.into(),
                ids.acts.into(),
            ];
            let entries = self.entries(side, entities, launch.chunk);
            let cost = spmm::cost(&p, entries);
            pb.dispatch_costed(spmm::def(Activation::Relu), &binds, &p, grid, cost);
        }
    }

    /// Training-row entries of `entities` (users or items) that fall in table rows `chunk`: the rows a
    /// projection sums, and the gradient rows the other table's Adam gathers.
    fn entries(&self, side: Side, entities: &[u32], chunk: (usize, usize)) -> u64 {
        let csr = self.input(side);
        let (lo, hi) = (chunk.0 as u32, chunk.1 as u32);
        entities
            .iter()
            .map(|&e| {
                let row = csr.row(e as usize);
                (row.partition_point(|&t| t < hi) - row.partition_point(|&t| t < lo)) as u64
            })
            .sum()
    }

    /// Distinct table rows in `chunk` that `entities`' training rows reach: the rows a lazy step
    /// updates (for its cost).
    fn touched(&self, side: Side, entities: &[u32], chunk: (usize, usize)) -> u64 {
        let csr = self.input(side);
        let mut seen = vec![false; chunk.1 - chunk.0];
        let (lo, hi) = (chunk.0 as u32, chunk.1 as u32);
        for &e in entities {
            let row = csr.row(e as usize);
            let first = row.partition_point(|&t| t < lo);
            for &t in row[first..].iter().take_while(|&&t| t < hi) {
                seen[(t - lo) as usize] = true;
            }
        }
        seen.iter().filter(|&&s| s).count() as u64
    }

    /// Branch layers over row blocks `segs` = (rows, first row, branch); `t`: training step (dropout)
    /// or `None` (evaluation).
    fn branch(
        &self,
        pb: &mut PlanBuilder<'_, '_>,
        ids: &Ids,
        act_off: &[usize],
        segs: &[(usize, usize, usize)],
        t: Option<u64>,
    ) {
        let widths = &self.arch.widths;
        let def = dense_forward::def(Activation::Relu, t.is_some() && self.cfg.dropout > 0.0);
        for l in 0..widths.len() - 1 {
            let (d_in, d_out) = (widths[l], widths[l + 1]);
            let s: Vec<dense_forward::Segment> = segs
                .iter()
                .filter(|s| s.0 > 0)
                .map(|&(rows, start, branch)| dense_forward::Segment {
                    rows,
                    x_off: act_off[l] + start * d_in,
                    y_off: act_off[l + 1] + start * d_out,
                    w_off: self.layers[branch][l],
                    row_base: start,
                })
                .collect();
            if s.is_empty() {
                continue;
            }
            let (p, grid) = dense_forward::params(&s, d_in, d_out, self.dropout(t, l));
            let cost = dense_forward::cost(&s, d_in, d_out);
            pb.dispatch_costed(def, &[ids.dense.into(), ids.acts.into()], &p, grid, cost);
        }
    }

    /// Forward and backward of step `t`: every gradient but the tables' (which the caller gathers,
    /// into Adam or into gradient buffers) into `dense_grad`; dh stays in `grads_act`.
    fn forward_backward<'a>(
        &self,
        pb: &mut PlanBuilder<'_, 'a>,
        step: &StepIds,
        b: &'a HostBatch,
        t: u64,
    ) {
        let max = pb.max_per_dim;
        let ids = &step.fwd;
        let dense_grad = step.dense_grad;
        pb.upload(ids.batch, 0, &b.image);
        if let Some(gpu) = &step.gpu_index {
            self.build_index(pb, b, gpu);
        }
        let (nu, ni) = (b.n_users(), b.n_items());
        let act_off = &self.act_off(pb, ids.acts);
        self.projection(
            pb,
            ids,
            act_off,
            Side::Users,
            &b.user_ids,
            b.regions.user_ids,
            0,
        );
        self.projection(
            pb,
            ids,
            act_off,
            Side::Items,
            &b.item_ids,
            b.regions.item_ids,
            nu,
        );
        let segs = self.segments(nu, ni);
        self.branch(pb, ids, act_off, &segs, Some(t));

        let widths = &self.arch.widths;
        let n_layers = widths.len() - 1;
        let e_off = act_off[n_layers];
        let (grads_act, pair_loss, ring) = (step.grads_act, step.pair_loss, step.ring);
        let r = &b.regions.pairs;
        let launch = score_loss::Launch {
            n_users: nu,
            n_items: ni,
            n_pairs: b.n_pairs(),
            dim: self.arch.embedding(),
            e_off,
            de_off: e_off,
            pair_user: r.pair_user,
            pair_item: r.pair_item,
            pair_label: r.pair_label,
            row_ptr: r.row_ptr,
            row_pairs: r.row_pairs,
            mu: self.cfg.mu,
            out_scale: self.dropout(Some(t), n_layers - 1).scale,
            ring_slot: ring_slot(t),
            loss: self.cfg.loss,
        };
        let (sp, grid) = launch.params(max);
        let score_binds = [
            ids.acts.into(),
            grads_act.into(),
            ids.batch.into(),
            pair_loss.into(),
        ];
        let (grad_cost, sum_cost) = score_loss::cost(&sp);
        let pairwise = launch.pairwise_params(max);
        if let Some([(cp, cgrid), _]) = pairwise {
            let binds = [ids.acts.into(), ids.batch.into(), pair_loss.into()];
            let (cost, _) = score_loss::pairwise_cost(&cp);
            pb.dispatch_costed(&score_loss::COSINES, &binds, &cp, cgrid, cost);
        }
        pb.dispatch_costed(&score_loss::GRAD, &score_binds, &sp, grid, grad_cost);
        if let Some([_, (lp, lgrid)]) = pairwise {
            let (_, cost) = score_loss::pairwise_cost(&lp);
            pb.dispatch_costed(&score_loss::LOSSES, &[pair_loss.into()], &lp, lgrid, cost);
        }
        let binds = [pair_loss.into(), ring.into()];
        pb.dispatch_costed(&score_loss::SUM, &binds, &sp, [1, 1, 1], sum_cost);

        for l in (0..n_layers).rev() {
            let (d_in, d_out) = (widths[l], widths[l + 1]);
            let ws: Vec<dense_backward_weight::Segment> = segs
                .iter()
                .map(|&(rows, start, branch)| dense_backward_weight::Segment {
                    rows,
                    x_off: act_off[l] + start * d_in,
                    dz_off: act_off[l + 1] + start * d_out,
                    g_off: self.layers[branch][l],
                })
                .collect();
            let (p, grid) = dense_backward_weight::params(&ws, d_in, d_out);
            let binds = [ids.acts.into(), grads_act.into(), dense_grad.into()];
            let cost = dense_backward_weight::cost(&ws, d_in, d_out);
            pb.dispatch_costed(&dense_backward_weight::DEF, &binds, &p, grid, cost);

            let in_scale = if l == 0 {
                1.0
            } else {
                self.dropout(Some(t), l - 1).scale
            };
            let ds: Vec<dense_backward_data::Segment> = segs
                .iter()
                .filter(|s| s.0 > 0)
                .map(|&(rows, start, branch)| dense_backward_data::Segment {
                    rows,
                    dz_off: act_off[l + 1] + start * d_out,
                    dx_off: act_off[l] + start * d_in,
                    x_off: act_off[l] + start * d_in,
                    w_off: self.layers[branch][l],
                })
                .collect();
            let (p, grid) = dense_backward_data::params(&ds, d_in, d_out, in_scale);
            let binds = [ids.dense.into(), ids.acts.into(), grads_act.into()];
            let cost = dense_backward_data::cost(&ds, d_in, d_out);
            let def = dense_backward_data::def(Activation::Relu);
            pb.dispatch_costed(def, &binds, &p, grid, cost);
        }

        let d1 = self.arch.d1();
        let dh = act_off[0];
        let (p, grid) =
            column_sums::params([(nu, dh, self.b_user), (ni, dh + nu * d1, self.b_item)], d1);
        let binds = [grads_act.into(), dense_grad.into()];
        pb.dispatch_costed(&column_sums::DEF, &binds, &p, grid, column_sums::cost(&p));
    }

    /// The two tables and where each finds its gradient index: W_U's rows gather the batch users' dh
    /// (rows from 0), W_T's the batch items'.
    fn table_gathers(&self, b: &HostBatch, step: &StepIds) -> [TableGather; 2] {
        let ids = &step.fwd;
        let items_dh = b.n_users() * self.arch.d1(); // h (and dh) come first in the activations
        let (index_buf, user_index, item_index) = match self.index {
            IndexStrategy::Host => {
                let r = &b.regions;
                (
                    ids.batch,
                    (r.user_table_ptr, r.user_table_rows),
                    (r.item_table_ptr, r.item_table_rows),
                )
            }
            IndexStrategy::Gpu => {
                let (u_ptr, i_ptr, rows) = batch_index::layout(self.n_users(), self.n_items());
                let gpu = step.gpu_index.expect("a GPU-built index has its buffers");
                (gpu.index, (u_ptr, rows), (i_ptr, rows))
            }
        };
        [
            TableGather {
                table: ids.w_user,
                index_buf,
                index: user_index,
                dh_off: 0,
                side: Side::Users,
            },
            TableGather {
                table: ids.w_item,
                index_buf,
                index: item_index,
                dh_off: items_dh,
                side: Side::Items,
            },
        ]
    }

    /// The buffers the GPU-built index needs alone (the start-up measurement of the two strategies).
    pub fn index_buffers(&self) -> Vec<BufferSpec> {
        let (n, m) = (self.n_users(), self.n_items());
        let nnz = self.own_nnz(Side::Users);
        let mut specs = vec![
            BufferSpec::u32(
                buffers::BATCH,
                batch::max_image_len(self.max_pairs, n, m, nnz, IndexStrategy::Gpu),
                Role::Input,
            ),
            BufferSpec::u32(INDEX_MAPS, n + m, Role::Work),
            BufferSpec::u32(INDEX, batch_index::index_len(n, m, nnz), Role::Work),
        ];
        for (name, data) in self.resident() {
            specs.push(BufferSpec::u32(name, data.len(), Role::Resident));
        }
        specs
    }

    /// Uploads `b` and builds its gradient index on the GPU: the index part of a step alone.
    pub fn index_plan<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a HostBatch) {
        let ids = IndexIds::resolve(pb.layout, &self.inputs.names);
        pb.upload(ids.batch, 0, &b.image);
        if self.index == IndexStrategy::Gpu {
            self.build_index(pb, b, &ids);
        }
    }

    /// The GPU builds the tables' gradient index of `b` (strategy [`IndexStrategy::Gpu`]).
    fn build_index(&self, pb: &mut PlanBuilder<'_, '_>, b: &HostBatch, ids: &IndexIds) {
        let (maps, index) = (ids.maps, ids.index);
        let (p, [clear, scatter, rows, scan]) = batch_index::params(
            self.n_users(),
            self.n_items(),
            (b.n_users(), b.n_items()),
            (b.regions.user_ids, b.regions.item_ids),
            pb.max_per_dim,
        );
        let csr = [
            ids.csr.i_ptr.into(),
            ids.csr.i_idx.into(),
            ids.csr.u_ptr.into(),
            ids.csr.u_idx.into(),
        ];
        let scans = [&csr[..], &[maps.into(), index.into()]].concat();
        let [c0, c1, c2, c3, c4] = batch_index::cost(&p, self.own_nnz(Side::Users) as u64);
        pb.dispatch_costed(&batch_index::CLEAR, &[maps.into()], &p, clear, c0);
        let binds = [ids.batch.into(), maps.into()];
        pb.dispatch_costed(&batch_index::SCATTER, &binds, &p, scatter, c1);
        pb.dispatch_costed(&batch_index::COUNT, &scans, &p, rows, c2);
        pb.dispatch_costed(&batch_index::SCAN, &[index.into()], &p, scan, c3);
        pb.dispatch_costed(&batch_index::FILL, &scans, &p, rows, c4);
    }
}

/// Buffers of the GPU-built gradient index: the batch-membership maps and the index.
const INDEX_MAPS: &str = "batch_index.maps";
const INDEX: &str = "batch_index";

impl Model for TwoTower<'_> {
    type Batch = HostBatch;

    fn label(&self) -> String {
        format!("{} {}", self.kind, self.arch)
    }

    fn kind(&self) -> ModelKind {
        self.kind
    }

    fn lazy_adam(&self) -> Option<AdamConfig> {
        (self.cfg.optimizer == Optimizer::LazyAdam).then_some(self.cfg.adam)
    }

    fn params(&self) -> &Arc<ParamLayout> {
        &self.params
    }

    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        let (n, m) = (self.n_users(), self.n_items());
        let rows = match mode {
            Mode::Infer => self.embed_rows(mode),
            _ => self.train_rows(),
        };
        let acts = *self.offsets(rows).last().unwrap();
        let mut specs = vec![BufferSpec::f32(buffers::ACTS, acts, Role::Work)];
        match mode {
            Mode::Infer => specs.push(BufferSpec::u32(buffers::BATCH, rows, Role::Input)),
            Mode::Train | Mode::Check => {
                let i = &self.inputs;
                let nnz = self.own_nnz(Side::Users);
                let image = batch::max_image_len_over(
                    self.max_pairs,
                    (n, m),
                    (i.user_table_rows, i.item_table_rows),
                    (nnz, self.own_nnz(Side::Items)),
                    self.index,
                );
                specs.push(BufferSpec::f32(buffers::GRADS_ACT, acts, Role::Work));
                specs.push(BufferSpec::u32(buffers::BATCH, image, Role::Input));
                specs.push(BufferSpec::f32(
                    buffers::PAIR_LOSS,
                    self.max_pairs,
                    Role::Work,
                ));
                if self.index == IndexStrategy::Gpu {
                    specs.push(BufferSpec::u32(INDEX_MAPS, n + m, Role::Work));
                    let len = batch_index::index_len(n, m, nnz);
                    specs.push(BufferSpec::u32(INDEX, len, Role::Work));
                }
            }
        }
        if mode == Mode::Train {
            specs.push(BufferSpec::f32(
                grad_buffer(DENSE),
                self.params.dense_len(),
                Role::Grad,
            ));
        }
        for (name, data) in self.resident() {
            specs.push(BufferSpec::u32(name, data.len(), Role::Resident));
        }
        specs
    }

    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        let i = &self.inputs;
        let [u_ptr, u_idx, i_ptr, i_idx] = i.names;
        let mut r = Vec::with_capacity(6);
        if !i.users_are_exclusion() {
            r.extend(buffers::exclusion(self.train));
        }
        r.extend([
            (u_ptr, &i.users.offsets[..]),
            (u_idx, &i.users.indices[..]),
            (i_ptr, &i.items.offsets[..]),
            (i_idx, &i.items.indices[..]),
        ]);
        r
    }

    fn n_users(&self) -> usize {
        self.train.n_rows()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn dim(&self) -> usize {
        self.arch.embedding()
    }

    fn scorer(&self) -> Scorer {
        Scorer::CosineClamp { mu: self.cfg.mu }
    }

    fn build_batch(&self, pairs: &[Pair]) -> HostBatch {
        self.batch_of(pairs)
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a HostBatch, t: u64) {
        let all = self.train_ids(pb.layout);
        self.forward_backward(pb, &all.step, b, t);
        let max = pb.max_per_dim;
        let step: AdamStep = self.cfg.adam.at_step(t);
        let MomentIds { m, v } = all.dense_moments;
        let (p, grid) = adam_dense::params(self.params.dense_len(), step, max);
        let dense_grad = all.step.dense_grad;
        let binds = [
            all.step.fwd.dense.into(),
            dense_grad.into(),
            m.into(),
            v.into(),
        ];
        pb.dispatch_costed(&adam_dense::DEF, &binds, &p, grid, adam_dense::cost(&p));
        let grads_act = all.step.grads_act;
        let d1 = self.arch.d1();
        let gathers = self.table_gathers(b, &all.step);
        let lazy = self.lazy_adam().map(|a| {
            let steps = [W_USER, W_ITEM].map(|t| pb.layout.id(&row_steps_buffer(t)));
            (a, steps, pb.layout.id(buffers::ADAM_BIAS))
        });
        for (s, (g, moments)) in gathers.into_iter().zip(all.table_moments).enumerate() {
            let (table, index) = (g.table, g.index);
            let MomentIds { m, v } = moments;
            let entities = match g.side {
                Side::Users => &b.user_ids,
                Side::Items => &b.item_ids,
            };
            for c in 0..pb.layout.chunks(table) {
                let rows = pb.layout.chunk_rows(table, c);
                let mut binds = vec![
                    pb.layout.chunk(table, c),
                    pb.layout.chunk(m, c),
                    pb.layout.chunk(v, c),
                    g.index_buf.into(),
                    grads_act.into(),
                ];
                let entries = self.entries(g.side, entities, rows);
                if let Some((adam, steps, bias)) = &lazy {
                    let (p, grid) = adam_table::lazy_params(rows, d1, index, g.dh_off, adam, max);
                    binds.extend::<[Bind; 2]>([steps[s].into(), (*bias).into()]);
                    let touched = self.touched(g.side, entities, rows);
                    let cost = adam_table::lazy_cost(&p, entries, touched);
                    pb.dispatch_costed(&adam_table::LAZY, &binds, &p, grid, cost);
                } else {
                    let (p, grid) = adam_table::params(rows, d1, index, g.dh_off, step, max);
                    let cost = adam_table::cost(&p, entries, true);
                    pb.dispatch_costed(&adam_table::STEP, &binds, &p, grid, cost);
                }
            }
        }
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a HostBatch, t: u64) {
        let all = self.check_ids(pb.layout);
        self.forward_backward(pb, &all.step, b, t);
        let grads_act = all.step.grads_act;
        let step = self.cfg.adam.at_step(t);
        let gathers = self.table_gathers(b, &all.step);
        for (tg, g) in gathers.into_iter().zip(all.table_grads) {
            for c in 0..pb.layout.chunks(tg.table) {
                let rows = pb.layout.chunk_rows(tg.table, c);
                let d1 = self.arch.d1();
                let (p, grid) =
                    adam_table::params(rows, d1, tg.index, tg.dh_off, step, pb.max_per_dim);
                let binds = [tg.index_buf.into(), grads_act.into(), pb.layout.chunk(g, c)];
                pb.dispatch(&adam_table::GATHER, &binds, &p, grid);
            }
        }
    }

    fn embed_rows(&self, mode: Mode) -> usize {
        match mode {
            Mode::Infer => INFER_ROWS.min(self.n_users().max(self.n_items())).max(1),
            _ => self.train_rows(),
        }
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        let Block {
            side,
            ids: ids_,
            first,
        } = block;
        let fwd = Ids::resolve(pb.layout, &self.inputs.names);
        let Embedding { fwd: ids, dst } = Embedding::resolve(pb.layout, fwd, side);
        pb.upload(ids.batch, 0, ids_);
        let rows = ids_.len();
        let act_off = &self.act_off(pb, ids.acts);
        self.projection(pb, &ids, act_off, side, ids_, 0, 0);
        // A one-sided block: rows from 0, through the user or the item branch.
        let branch = match side {
            Side::Users => 0,
            Side::Items => branches_of(self.kind) - 1,
        };
        self.branch(pb, &ids, act_off, &[(rows, 0, branch)], None);
        let dim = self.arch.embedding();
        pb.copy(
            ids.acts,
            act_off[self.arch.n_layers()],
            dst,
            first * dim,
            rows * dim,
        );
    }
}

impl TwoTower<'_> {
    /// Activation offsets of the session `pb` plans for, from the size of its `acts` buffer (training
    /// sessions hold a training step's rows, inference sessions one embedding block's).
    fn act_off(&self, pb: &PlanBuilder<'_, '_>, acts: BufId) -> Vec<usize> {
        let acts = pb.layout.spec(acts).len();
        let per_row: usize = self.arch.widths.iter().sum();
        self.offsets(acts / per_row)
    }
}

/// Branches of `kind`: CoBraR's one shared, DeepMF's one per side.
fn branches_of(kind: ModelKind) -> usize {
    if kind == ModelKind::Deepmf {
        DEEPMF.branches
    } else {
        COBRAR.branches
    }
}

/// CoBraR's train flags: the two-tower models' and, last, dropout.
const COBRAR_FLAGS: &[&str] = &[
    "lr",
    "weight-decay",
    "mu",
    "negatives",
    "loss",
    "temperature",
    "optimizer",
    "dropout",
];

/// The train flags both two-tower models use (DeepMF trains without dropout, as in the study).
const TWO_TOWER_FLAGS: &[&str] = match COBRAR_FLAGS.split_last() {
    Some((_, shared)) => shared,
    None => &[],
};

/// CoBraR's descriptor.
pub static COBRAR: ModelSpec = ModelSpec {
    title: "CoBraR",
    flags: COBRAR_FLAGS,
    dropout: Some(0.1),
    bench_archs: &["512,64", "2048,128"],
    ..TWO_TOWER
};

/// DeepMF's descriptor: CoBraR's with a branch per side and no dropout (as in the study).
pub static DEEPMF: ModelSpec = ModelSpec {
    title: "DeepMF",
    flags: TWO_TOWER_FLAGS,
    branches: 2,
    counts: |a, s| counts(2, a, s.users, s.items),
    bench_archs: &["512,64"],
    ..TWO_TOWER
};

/// What the two descriptors share (and CoBraR with side information, `cobrar_si`).
pub(crate) const TWO_TOWER: ModelSpec = ModelSpec {
    title: "",
    default_arch: &[512, 64],
    check_arch,
    check: check_loss,
    check_data: spec::no_data_check,
    flags: TWO_TOWER_FLAGS,
    why_not: TWO_TOWER_WHY,
    dropout: None,
    samplers: &[SamplerKind::Alg1, SamplerKind::Authors, SamplerKind::Bpr],
    trains: true,
    branches: 1,
    label,
    counts: |a, s| counts(1, a, s.users, s.items),
    describe: spec::plain_counts,
    counts_note: None,
    param_layout: layout_of,
    build,
    index_probe: Some(probe_index),
    bench_archs: &[],
    unseen: spec::Unseen::Cannot,
};

/// The pairwise loss needs the bpr sampler's triples (pair 2t positive, 2t+1 its negative).
pub(crate) fn check_loss(cfg: &TrainConfig) -> anyhow::Result<()> {
    if cfg.loss == crate::config::LossKind::Bpr && cfg.sampler != SamplerKind::Bpr {
        anyhow::bail!(
            "--loss bpr trains on the bpr sampler's (user, positive, negative) triples; drop --sampler \
             or give --sampler bpr"
        );
    }
    Ok(())
}

/// A run's label: the architecture, and the loss where it is not the study's (`cobrar 512,64 bpr
/// τ=5`).
pub(crate) fn label(cfg: &TrainConfig) -> String {
    let base = spec::arch_label(cfg);
    match (cfg.loss, cfg.temperature) {
        (crate::config::LossKind::Bce, _) => base,
        (crate::config::LossKind::Bpr, 1.0) => format!("{base} bpr-loss"),
        (crate::config::LossKind::Bpr, t) => format!("{base} bpr-loss τ={t}"),
    }
}

const TWO_TOWER_WHY: &str = "it trains its branch on pointwise (user, item, label) pairs";

fn check_arch(kind: ModelKind, arch: &Architecture) -> anyhow::Result<()> {
    anyhow::ensure!(
        arch.widths.len() >= 2,
        "{kind} needs at least a projection width and an embedding size in --arch (e.g. \
         2048,128), got {arch}"
    );
    Ok(())
}

/// Exact counts with `b` branches: W_U (items × d1) + b_U, W_T (users × d1) + b_T, the branches.
pub(crate) fn counts(b: u64, arch: &Architecture, n_users: usize, n_items: usize) -> ParamCounts {
    let d1 = arch.d1() as u64;
    let user_projection = n_items as u64 * d1 + d1;
    let item_projection = n_users as u64 * d1 + d1;
    let branch_weights = b * arch.layers().map(|(i, o)| (i * o) as u64).sum::<u64>();
    let branches = b * arch.layers().map(|(i, o)| (i * o + o) as u64).sum::<u64>();
    ParamCounts {
        user_projection,
        item_projection,
        branches,
        branch_weights,
        total: user_projection + item_projection + branches,
    }
}

fn layout_of(cfg: &TrainConfig, s: spec::DataShape) -> ParamLayout {
    param_layout(cfg.model, &cfg.arch, s.users, s.items)
}

fn build<'d>(
    cfg: &TrainConfig,
    ds: &'d Dataset,
    max_pairs: usize,
    index: IndexStrategy,
) -> Net<'d> {
    Net::new(
        TwoTower::new(
            cfg.model,
            cfg.arch.clone(),
            StepConfig::of(cfg),
            &ds.train,
            &ds.train_by_item,
            max_pairs,
        )
        .with_index(index),
    )
}

/// Times both ways of building the tables' gradient index on this machine — the host's builders on a
/// few batches, the GPU's dispatches on one — and picks the cheaper per step.
fn probe_index(
    ctx: &Arc<GpuContext>,
    ds: &Dataset,
    cfg: &TrainConfig,
    sampler: &Sampler<'_>,
    builders: usize,
) -> anyhow::Result<IndexProbe> {
    use crate::gpu::executor::Executor;
    let pairs: Vec<Vec<crate::sampler::Pair>> = sampler.epoch(1).take(6).collect();
    let (u, i) = (&ds.train, &ds.train_by_item);
    let host_with = pipeline::time_builds(&pairs, u, i, IndexStrategy::Host);
    let host_without = pipeline::time_builds(&pairs, u, i, IndexStrategy::Gpu);
    let model = TwoTower::new(
        cfg.model,
        cfg.arch.clone(),
        StepConfig::of(cfg),
        &ds.train,
        &ds.train_by_item,
        sampler.max_pairs(),
    )
    .with_index(IndexStrategy::Gpu);
    let layout =
        crate::gpu::memory::MemoryLayout::new(model.index_buffers(), ctx.max_binding(), None)?;
    let mut exec = GpuExec::new(ctx.clone(), layout)?;
    for (name, data) in model.resident() {
        let id = exec.layout().id(name);
        exec.write_u32(id, data)?;
    }
    let batch = model.build_batch(&pairs[0]);
    // In training the index kernels ride in the step's own submit, so only their GPU time counts:
    // timestamps where the adapter has them, the wall clock around submit-and-wait otherwise.
    let timestamps = exec.enable_profiling(16);
    let run = |exec: &mut GpuExec| -> anyhow::Result<f64> {
        let layout = exec.layout().clone();
        let mut pb = crate::gpu::plan::PlanBuilder::new(&layout, exec.max_per_dim());
        model.index_plan(&mut pb, &batch);
        let plan = pb.finish();
        let started = Instant::now();
        exec.run(&plan)?;
        exec.wait()?;
        let kernels: f64 = exec.kernel_times().iter().map(|&(_, ns)| ns * 1e-6).sum();
        Ok(if timestamps && kernels > 0.0 {
            kernels
        } else {
            started.elapsed().as_secs_f64() * 1e3
        })
    };
    run(&mut exec)?; // compiles the kernels
    let gpu = (0..3)
        .map(|_| run(&mut exec))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let gpu_ms = gpu.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(IndexProbe {
        strategy: IndexProbe::decide(host_with, host_without, gpu_ms, builders),
        chosen_by: "measured".into(),
        host_ms_with_index: host_with,
        host_ms_without_index: host_without,
        gpu_index_ms: gpu_ms,
        builders,
    })
}
