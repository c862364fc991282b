//! LightGCN (He et al., SIGIR 2020; SPEC §7): layer-0 embeddings E⁰ of every user and item, propagated
//! K times over the training graph, E^{k+1} = Â·E^k with Â = D^{-1/2} A D^{-1/2} (degrees + 1e-7, as
//! Elliot); the final embedding is the mean of E⁰…E^K, scored by the dot product and trained with the
//! BPR loss on the `bpr` sampler's triples, the regulariser (λ/2)·‖·‖²/B on the layer-0 rows used.
//!
//! A step: the forward propagation (2K launches: each side's layer from the other side's previous
//! layer, the running mean in `lgcn.total.*`), the BPR loss on the final rows, the loss sum, the loss
//! gradient gathered into a dense gradient per side (through the batch's index), the backward
//! propagation — Â is symmetric, so the gradient of the layer mean is the same mean of Â^k applied to
//! the gradient: the same 2K launches —, the regulariser on the rows used, and a dense Adam step of both
//! tables. Everything is a gather in a fixed order: deterministic.

use std::sync::Arc;

use super::Block;
use super::bpr::{self, BprBatch};
use super::net::Net;
use super::params::ParamLayout;
use super::spec::{self, ModelSpec};
use super::{Embedding, Mode, Model, ModelKind, MomentIds, Side, WithGrads, WithMoments, buffers};
use crate::batch::IndexStrategy;
use crate::config::TrainConfig;
use crate::data::Csr;
use crate::data::Dataset;
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufId, BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::{self, AdamConfig};
use crate::kernels::{adam_table, propagate};
use crate::sampler::Pair;
use crate::sampler::SamplerKind;

/// Per side (users, items): the layer mean, the two ping-pong layers, the dense gradient, the degree
/// factors, and the training CSR of the side.
const TOTAL: [&str; 2] = ["lgcn.total.u", "lgcn.total.i"];
const LAYER: [[&str; 2]; 2] = [["lgcn.u.0", "lgcn.u.1"], ["lgcn.i.0", "lgcn.i.1"]];
const GRAD: [&str; 2] = ["lgcn.grad.u", "lgcn.grad.i"];
const SCALE: [&str; 2] = ["lgcn.s.u", "lgcn.s.i"];
const CSR: [[&str; 2]; 2] = [
    [buffers::EXCLUDE_PTR, buffers::EXCLUDE_IDX],
    [buffers::BY_ITEM_PTR, buffers::BY_ITEM_IDX],
];

/// The propagation's buffers of one side, resolved from the layout.
#[derive(Debug, Clone, Copy)]
struct SideIds {
    /// The layer mean (and, after the backward propagation, the table's gradient).
    total: BufId,
    /// The two ping-pong layers.
    layers: [BufId; 2],
    /// The side's training CSR (row offsets, member ids) and degree factors.
    csr: [BufId; 2],
    scale: BufId,
}

/// The buffers of the propagation (every plan runs it), both sides, and the layer-0 tables.
#[derive(Debug, Clone, Copy)]
struct PropagationIds {
    tables: [BufId; 2],
    sides: [SideIds; 2],
}

impl PropagationIds {
    fn resolve(layout: &MemoryLayout) -> PropagationIds {
        PropagationIds {
            tables: bpr::table_ids(layout),
            sides: [0, 1].map(|s| SideIds {
                total: layout.id(TOTAL[s]),
                layers: LAYER[s].map(|n| layout.id(n)),
                csr: CSR[s].map(|n| layout.id(n)),
                scale: layout.id(SCALE[s]),
            }),
        }
    }
}

/// The buffers of a forward and backward pass (training and checks).
struct StepIds {
    prop: PropagationIds,
    triple: bpr::TripleIds,
    /// Per side, the final rows' gradient gathered per table row.
    grads: [BufId; 2],
}

impl StepIds {
    fn resolve(layout: &MemoryLayout) -> StepIds {
        StepIds {
            prop: PropagationIds::resolve(layout),
            triple: bpr::TripleIds::resolve(layout),
            grads: GRAD.map(|n| layout.id(n)),
        }
    }
}

/// The most propagation layers accepted.
pub const MAX_LAYERS: usize = 4;

/// LightGCN's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LightGcnConfig {
    pub dim: usize,
    /// Propagation layers K.
    pub layers: usize,
    /// λ of the regulariser on the layer-0 rows used.
    pub lambda: f32,
    pub lr: f64,
}

/// LightGCN on a training split.
pub struct LightGcn<'d> {
    pub cfg: LightGcnConfig,
    by_user: &'d Csr,
    by_item: &'d Csr,
    /// Degree factors (f32 bits) of users and items.
    scales: [Vec<u32>; 2],
    pub max_triples: usize,
    params: Arc<ParamLayout>,
}

impl<'d> LightGcn<'d> {
    pub fn new(
        cfg: LightGcnConfig,
        by_user: &'d Csr,
        by_item: &'d Csr,
        max_triples: usize,
    ) -> LightGcn<'d> {
        assert!(
            (1..=MAX_LAYERS).contains(&cfg.layers),
            "1 to {MAX_LAYERS} layers"
        );
        let scale = |csr: &Csr| -> Vec<u32> {
            (0..csr.n_rows())
                .map(|r| propagate::degree_scale(csr.row_len(r)).to_bits())
                .collect()
        };
        let params = Arc::new(bpr::param_layout(
            cfg.dim,
            by_user.n_rows(),
            by_item.n_rows(),
        ));
        LightGcn {
            cfg,
            by_user,
            by_item,
            scales: [scale(by_user), scale(by_item)],
            max_triples: max_triples.max(1),
            params,
        }
    }

    fn rows(&self, side: usize) -> usize {
        [self.by_user.n_rows(), self.by_item.n_rows()][side]
    }

    /// The layer mean of the propagation of `x0` (per side) into the `TOTAL` buffers.
    fn propagate(&self, pb: &mut PlanBuilder<'_, '_>, ids: &PropagationIds, x0: [BufId; 2]) {
        let (d, k_max) = (self.cfg.dim, self.cfg.layers);
        let s = &ids.sides;
        for side in 0..2 {
            pb.copy(x0[side], 0, s[side].total, 0, self.rows(side) * d);
        }
        let edges = self.by_user.nnz() as u64;
        for k in 0..k_max {
            let scale = if k + 1 == k_max {
                1.0 / (k_max as f32 + 1.0)
            } else {
                1.0
            };
            for side in 0..2 {
                let other = 1 - side;
                let x = if k == 0 {
                    x0[other]
                } else {
                    s[other].layers[k % 2]
                };
                let (p, grid) = propagate::layer_params(self.rows(side), d, scale, pb.max_per_dim);
                let binds = [
                    s[side].csr[0].into(),
                    s[side].csr[1].into(),
                    s[side].scale.into(),
                    s[other].scale.into(),
                    x.into(),
                    s[side].layers[(k + 1) % 2].into(),
                    s[side].total.into(),
                ];
                let cost = propagate::layer_cost(&p, edges);
                pb.dispatch_costed(&propagate::LAYER, &binds, &p, grid, cost);
            }
        }
    }

    /// Forward, loss and backward of batch `b` at step `t`: each table's full gradient in `TOTAL`.
    fn forward_backward<'a>(
        &self,
        pb: &mut PlanBuilder<'_, 'a>,
        ids: &StepIds,
        b: &'a BprBatch,
        t: u64,
    ) {
        let d = self.cfg.dim;
        let tables = ids.prop.tables;
        let (batch, grads) = (ids.triple.batch, ids.triple.grads_act);
        pb.upload(batch, 0, &b.image);
        self.propagate(pb, &ids.prop, tables);
        let finals = ids.prop.sides.map(|s| s.total);
        bpr::record_loss(pb, &ids.triple, b, t, d, self.cfg.lambda, finals, tables);
        // The final rows' gradients, gathered per table row (every row written, zero if unused).
        let index = b.gathers(d);
        let unused = AdamConfig::new(self.cfg.lr, 0.0).at_step(t);
        for (side, (&(ptr_rows, dh_off, _), grad)) in index.iter().zip(ids.grads).enumerate() {
            let rows = (0, self.rows(side));
            let (p, grid) = adam_table::params(rows, d, ptr_rows, dh_off, unused, pb.max_per_dim);
            let binds = [batch.into(), grads.into(), grad.into()];
            pb.dispatch(&adam_table::GATHER, &binds, &p, grid);
        }
        self.propagate(pb, &ids.prop, ids.grads);
        let coef = self.cfg.lambda / b.n.max(1) as f32;
        for side in 0..2 {
            let (p, grid) = propagate::regularise_params(
                self.rows(side),
                d,
                index[side].0.0,
                coef,
                pb.max_per_dim,
            );
            let total = ids.prop.sides[side].total;
            let binds = [tables[side].into(), batch.into(), total.into()];
            pb.dispatch(&propagate::REGULARISE, &binds, &p, grid);
        }
    }
}

impl Model for LightGcn<'_> {
    type Batch = BprBatch;

    fn label(&self) -> String {
        label(self.cfg.dim, self.cfg.layers)
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Lightgcn
    }

    fn params(&self) -> &Arc<ParamLayout> {
        &self.params
    }

    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        let d = self.cfg.dim;
        let mut specs = Vec::new();
        for side in 0..2 {
            let len = self.rows(side) * d;
            specs.push(BufferSpec::f32(TOTAL[side], len, Role::Work));
            for name in LAYER[side] {
                specs.push(BufferSpec::f32(name, len, Role::Work));
            }
            if mode != Mode::Infer {
                specs.push(BufferSpec::f32(GRAD[side], len, Role::Work));
            }
        }
        let shape = (self.rows(0), self.rows(1), d);
        specs.extend(bpr::triple_buffers(
            mode,
            shape,
            self.max_triples,
            self.resident(),
        ));
        specs
    }

    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        bpr::check_tables_unchunked(layout, "LightGCN")
    }

    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        vec![
            (CSR[0][0], &self.by_user.offsets[..]),
            (CSR[0][1], &self.by_user.indices[..]),
            (CSR[1][0], &self.by_item.offsets[..]),
            (CSR[1][1], &self.by_item.indices[..]),
            (SCALE[0], &self.scales[0][..]),
            (SCALE[1], &self.scales[1][..]),
        ]
    }

    fn n_users(&self) -> usize {
        self.rows(0)
    }

    fn n_items(&self) -> usize {
        self.rows(1)
    }

    fn dim(&self) -> usize {
        self.cfg.dim
    }

    fn scorer(&self) -> Scorer {
        Scorer::Dot
    }

    fn build_batch(&self, pairs: &[Pair]) -> BprBatch {
        BprBatch::build(pairs, self.rows(0), self.rows(1))
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a BprBatch, t: u64) {
        let ids = WithMoments::resolve(
            pb.layout,
            StepIds::resolve(pb.layout),
            [bpr::USERS, bpr::ITEMS],
        );
        self.forward_backward(pb, &ids.step, b, t);
        // λ is in the loss (layer-0 rows used only), so Adam adds no weight decay.
        let step = AdamConfig::new(self.cfg.lr, 0.0).at_step(t);
        for side in 0..2 {
            let table = ids.step.prop.tables[side];
            let grad = ids.step.prop.sides[side].total;
            let MomentIds { m, v } = ids.moments[side];
            let (p, grid) =
                adam_dense::params(self.rows(side) * self.cfg.dim, step, pb.max_per_dim);
            let binds = [table.into(), grad.into(), m.into(), v.into()];
            pb.dispatch_costed(&adam_dense::DEF, &binds, &p, grid, adam_dense::cost(&p));
        }
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a BprBatch, t: u64) {
        let ids = WithGrads::resolve(
            pb.layout,
            StepIds::resolve(pb.layout),
            [bpr::USERS, bpr::ITEMS],
        );
        self.forward_backward(pb, &ids.step, b, t);
        for side in 0..2 {
            let len = self.rows(side) * self.cfg.dim;
            let total = ids.step.prop.sides[side].total;
            pb.copy(total, 0, ids.grads[side], 0, len);
        }
    }

    fn embed_rows(&self, _mode: Mode) -> usize {
        self.rows(0).max(self.rows(1))
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        let Block { side, ids, first } = block;
        // One block per side (`embed_rows` covers both): propagate, then copy the side's layer mean.
        debug_assert_eq!((first, ids.len()), (0, ids.len()));
        let ids = Embedding::resolve(pb.layout, PropagationIds::resolve(pb.layout), side);
        self.propagate(pb, &ids.fwd, ids.fwd.tables);
        let s = match side {
            Side::Users => 0,
            Side::Items => 1,
        };
        let len = self.rows(s) * self.cfg.dim;
        pb.copy(ids.fwd.sides[s].total, 0, ids.dst, 0, len);
    }
}

/// LightGCN's descriptor.
pub static SPEC: ModelSpec = ModelSpec {
    title: "LightGCN",
    default_arch: &[64],
    check_arch: bpr::check_one_width,
    check,
    check_data: spec::no_data_check,
    flags: &["lr", "weight-decay", "layers"],
    why_not: bpr::PAIRWISE_WHY,
    dropout: None,
    samplers: &[SamplerKind::Bpr],
    trains: true,
    branches: 0,
    label: |cfg| label(cfg.arch.embedding(), cfg.layers),
    counts: |a, s| bpr::table_counts(a, s.users, s.items),
    describe: spec::plain_counts,
    counts_note: None,
    param_layout: |cfg, s| bpr::param_layout(cfg.arch.embedding(), s.users, s.items),
    build,
    index_probe: None,
    bench_archs: &["64"],
    unseen: spec::Unseen::Cannot,
};

/// `lightgcn 64 K=3`: the run label and the model's.
fn label(dim: usize, layers: usize) -> String {
    format!("lightgcn {dim} K={layers}")
}

fn check(cfg: &TrainConfig) -> anyhow::Result<()> {
    if !(1..=MAX_LAYERS).contains(&cfg.layers) {
        return Err(crate::config::out_of_range(
            "--layers",
            &format!("between 1 and {MAX_LAYERS}"),
            cfg.layers,
        ));
    }
    Ok(())
}

fn build<'d>(cfg: &TrainConfig, ds: &'d Dataset, max_pairs: usize, _: IndexStrategy) -> Net<'d> {
    let lcfg = LightGcnConfig {
        dim: cfg.arch.embedding(),
        layers: cfg.layers,
        lambda: cfg.weight_decay as f32,
        lr: cfg.lr,
    };
    let max_triples = max_pairs.div_ceil(2);
    Net::new(LightGcn::new(
        lcfg,
        &ds.train,
        &ds.train_by_item,
        max_triples,
    ))
}
