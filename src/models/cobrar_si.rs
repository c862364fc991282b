//! CoBraR with side information (`cobrar-si`; the paper's future work, §6: "combining the two
//! branches of SiBraR into a single one"). Each entity's input is its interaction row followed by its
//! features ([`crate::data::Features`]), so each side's projection is one linear layer over
//! `[interactions | features]`:
//! `h_u = ReLU(b_U + Σ_{j ∈ items(u)} W_U[j] + Σ_{f ∈ features(u)} W_U[M + f])`
//! (and the same for items over W_T), then CoBraR's one shared branch, cosine and loss.
//!
//! The two projections are **summed**, not averaged: a sum is exactly what one `nn.Linear` over the
//! concatenated multi-hot input computes (the checkpoint keeps CoBraR's PyTorch layout, W_U just has
//! M + F_U rows), it runs on CoBraR's own kernels, and an entity without interactions — a cold-start
//! item — is embedded from its features' rows alone, which is what modality dropout trains for. An
//! average would rescale each row by its input count and change with it what a feature row means.
//!
//! Modality dropout (SiBraR's, `--modality-dropout p`): at each step, each batch entity that has both
//! interactions and features loses one of them with probability p (either, evenly), so the shared
//! branch also learns to embed from one modality alone. It lives in the inputs, not the kernels: such
//! an entity has three input rows — both (row e), interactions only (N + e), features only (2N + e) —
//! and the batch names the row its entity drew, so the projection and its gradient index see exactly
//! the kept entries. The draw is keyed by the run's seed and the batch's pairs (the sampler's stream,
//! which resume restores), so a resumed run draws the same. Evaluation uses the full rows.

use std::borrow::Cow;
use std::sync::Arc;

use super::Block;
use super::cobrar::{self, Inputs, StepConfig, TwoTower};
use super::net::Net;
use super::params::ParamLayout;
use super::spec::{self, ModelSpec};
use super::{Mode, Model, ModelKind};
use crate::batch::{HostBatch, IndexStrategy};
use crate::config::TrainConfig;
use crate::data::{Csr, Dataset, FeatureSet};
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufferSpec, MemoryLayout};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::AdamConfig;
use crate::models::params::Weights;
use crate::sampler::Pair;
use crate::util::{fnv1a, splitmix64};

/// Resident buffers of the inputs (the exclusion CSR stays the training interactions).
const INPUT_NAMES: [&str; 4] = [
    "input.users.ptr",
    "input.users.idx",
    "input.items.ptr",
    "input.items.idx",
];

/// CoBraR over [interactions | features] inputs, with modality dropout.
pub struct SideInfo<'d> {
    tower: TwoTower<'d>,
    /// Probability that a batch entity with both inputs loses one.
    modality_dropout: f32,
    seed: u64,
    /// Entities per side, and whether each side has the three input variants.
    n: [usize; 2],
    variants: [bool; 2],
}

/// One side's inputs: rows 0..n are each entity's interactions then its features (offset by
/// `n_cols`); with `variants`, rows n..2n the interactions alone and 2n..3n the features alone.
/// Returns the CSR and its table rows.
pub fn side_inputs(
    interactions: &Csr,
    n_cols: usize,
    features: &FeatureSet,
    variants: bool,
) -> (Csr, usize) {
    let n = interactions.n_rows();
    let offset = u32::try_from(n_cols).expect("columns fit u32");
    let feats = |e: usize| features.rows.row(e).iter().map(move |&f| f + offset);
    let mut rows: Vec<Vec<u32>> = Vec::with_capacity(if variants { 3 * n } else { n });
    for e in 0..n {
        rows.push(
            interactions
                .row(e)
                .iter()
                .copied()
                .chain(feats(e))
                .collect(),
        );
    }
    if variants {
        for e in 0..n {
            rows.push(interactions.row(e).to_vec());
        }
        for e in 0..n {
            rows.push(feats(e).collect());
        }
    }
    (Csr::from_rows(&rows), n_cols + features.n_features())
}

impl<'d> SideInfo<'d> {
    /// The model on training interactions `by_user` (N rows over M items) / `by_item` with the
    /// features of either side; `modality_dropout` > 0 builds the input variants.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        arch: super::Architecture,
        cfg: StepConfig,
        by_user: &'d Csr,
        by_item: &'d Csr,
        user_features: Option<&FeatureSet>,
        item_features: Option<&FeatureSet>,
        modality_dropout: f32,
        max_pairs: usize,
    ) -> SideInfo<'d> {
        let (n, m) = (by_user.n_rows(), by_item.n_rows());
        let plain = Inputs::interactions(by_user, by_item);
        let mut inputs = Inputs {
            names: INPUT_NAMES,
            ..plain
        };
        let mut variants = [false; 2];
        if let Some(f) = user_features {
            let v = modality_dropout > 0.0;
            let (csr, rows) = side_inputs(by_user, m, f, v);
            (inputs.users, inputs.user_table_rows) = (Cow::Owned(csr), rows);
            variants[0] = v;
        }
        if let Some(f) = item_features {
            let v = modality_dropout > 0.0;
            let (csr, rows) = side_inputs(by_item, n, f, v);
            (inputs.items, inputs.item_table_rows) = (Cow::Owned(csr), rows);
            variants[1] = v;
        }
        let tower = TwoTower::with_inputs(
            ModelKind::CobrarSi,
            arch,
            cfg,
            by_user,
            m,
            inputs,
            max_pairs,
        );
        SideInfo {
            tower,
            modality_dropout,
            seed: cfg.seed,
            n: [n, m],
            variants,
        }
    }

    /// The shared-branch model underneath (its inputs include the features).
    pub fn tower(&self) -> &TwoTower<'d> {
        &self.tower
    }

    /// The input row entity `e` of `side` (0 users, 1 items) draws in the batch keyed `key`.
    fn input_row(&self, side: usize, e: u32, key: u64) -> u32 {
        if !self.variants[side] {
            return e;
        }
        let (csr, n) = match side {
            0 => (self.tower.training_split().0, self.n[0]),
            _ => (self.tower.training_split().1, self.n[1]),
        };
        // Only an entity with both inputs can lose one: its variant rows are both non-empty.
        let (alone, feats) = (csr.row_len(n + e as usize), csr.row_len(2 * n + e as usize));
        if alone == 0 || feats == 0 {
            return e;
        }
        let u = unit(splitmix64(
            self.seed ^ key ^ ((side as u64) << 62) ^ e as u64,
        ));
        let p = self.modality_dropout as f64;
        if u < p / 2.0 {
            (2 * n) as u32 + e // the interactions dropped: features alone
        } else if u < p {
            n as u32 + e // the features dropped: interactions alone
        } else {
            e
        }
    }
}

/// A uniform value in [0, 1) from 53 bits of `x`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A key of the batch's pairs (FNV-1a over their words).
fn batch_key(pairs: &[Pair]) -> u64 {
    fnv1a(
        pairs
            .iter()
            .flat_map(|&(u, i, l)| [u, i, l.to_bits()].map(u64::from)),
    )
}

impl Model for SideInfo<'_> {
    type Batch = HostBatch;

    fn label(&self) -> String {
        self.tower.label()
    }
    fn kind(&self) -> ModelKind {
        ModelKind::CobrarSi
    }
    fn params(&self) -> &Arc<ParamLayout> {
        self.tower.params()
    }
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        self.tower.buffers(mode)
    }
    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        self.tower.check_layout(layout)
    }
    fn lazy_adam(&self) -> Option<AdamConfig> {
        self.tower.lazy_adam()
    }
    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        self.tower.resident()
    }
    fn n_users(&self) -> usize {
        self.tower.n_users()
    }
    fn n_items(&self) -> usize {
        self.tower.n_items()
    }
    fn dim(&self) -> usize {
        self.tower.dim()
    }
    fn scorer(&self) -> Scorer {
        self.tower.scorer()
    }
    fn trains(&self) -> bool {
        true
    }
    fn fitted(&self) -> Option<Weights<f32>> {
        None
    }
    fn build_batch(&self, pairs: &[Pair]) -> HostBatch {
        if self.modality_dropout <= 0.0 || self.variants == [false, false] {
            return self.tower.batch_of(pairs);
        }
        let key = batch_key(pairs);
        let drawn: Vec<Pair> = pairs
            .iter()
            .map(|&(u, i, l)| (self.input_row(0, u, key), self.input_row(1, i, key), l))
            .collect();
        self.tower.batch_of(&drawn)
    }
    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a HostBatch, t: u64) {
        self.tower.train_step(pb, batch, t)
    }
    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a HostBatch, t: u64) {
        self.tower.grad_step(pb, batch, t)
    }
    fn embed_rows(&self, mode: Mode) -> usize {
        self.tower.embed_rows(mode)
    }
    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        self.tower.embed_block(pb, block)
    }
}

/// The model's train flags: CoBraR's and modality dropout.
const FLAGS: &[&str] = &[
    "lr",
    "weight-decay",
    "mu",
    "negatives",
    "loss",
    "temperature",
    "optimizer",
    "dropout",
    "modality-dropout",
];

/// The descriptor.
pub static SPEC: ModelSpec = ModelSpec {
    title: "CoBraR+SI",
    flags: FLAGS,
    why_not: "it trains CoBraR's shared branch on pointwise (user, item, label) pairs",
    dropout: Some(0.1),
    counts: |a, s| {
        // W_U has a row per item and per user feature; W_T per user and per item feature.
        cobrar::counts(1, a, s.users + s.item_features, s.items + s.user_features)
    },
    counts_note: Some(
        "cobrar-si: the projections' rows include one per feature of the side (W_U: items + user \
         features; W_T: users + item features)",
    ),
    param_layout: |cfg, s| {
        let (w_t, w_u) = (s.users + s.item_features, s.items + s.user_features);
        cobrar::param_layout(ModelKind::CobrarSi, &cfg.arch, w_t, w_u)
    },
    build,
    check,
    check_data,
    label,
    index_probe: None,
    bench_archs: &[],
    unseen: spec::Unseen::FromFeatures,
    ..cobrar::TWO_TOWER
};

/// CoBraR's label, and the modality dropout where there is one (`cobrar-si 512,64 md=0.3`).
fn label(cfg: &TrainConfig) -> String {
    let base = cobrar::label(cfg);
    match cfg.modality_dropout {
        0.0 => base,
        p => format!("{base} md={p}"),
    }
}

/// CoBraR's checks and the modality dropout's range.
fn check(cfg: &TrainConfig) -> anyhow::Result<()> {
    cobrar::check_loss(cfg)?;
    anyhow::ensure!(
        (0.0..1.0).contains(&cfg.modality_dropout),
        "--modality-dropout is a probability in [0, 1), got {}",
        cfg.modality_dropout
    );
    Ok(())
}

/// The model needs side information on at least one side.
fn check_data(cfg: &TrainConfig, ds: &Dataset) -> anyhow::Result<()> {
    anyhow::ensure!(
        !ds.features.is_empty(),
        "{} embeds users and items from their interactions and their features, and {} has none: \
         give --item-features and/or --user-features (a file of id<TAB>feature lines, or builtin \
         for MovieLens's own files beside the ratings)",
        cfg.model,
        ds.name
    );
    Ok(())
}

fn build<'d>(
    cfg: &TrainConfig,
    ds: &'d Dataset,
    max_pairs: usize,
    _index: IndexStrategy,
) -> Net<'d> {
    Net::new(SideInfo::new(
        cfg.arch.clone(),
        StepConfig::of(cfg),
        &ds.train,
        &ds.train_by_item,
        ds.features.users.as_ref(),
        ds.features.items.as_ref(),
        cfg.modality_dropout,
        max_pairs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_put_features_after_the_interactions_and_variants_after_the_entities() {
        let by_user = Csr::from_rows(&[vec![0u32, 2], vec![1], vec![]]);
        let ids: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        let pairs: Vec<(String, String)> = [("0", "a"), ("0", "b"), ("2", "b")]
            .iter()
            .map(|(x, y)| (x.to_string(), y.to_string()))
            .collect();
        let f = FeatureSet::from_pairs(&ids, &pairs, "t".into());
        let (csr, rows) = side_inputs(&by_user, 4, &f, true);
        let nnz = csr.offsets[3]; // the entities' own (full) rows
        assert_eq!((rows, nnz, csr.n_rows()), (6, 6, 9));
        assert_eq!(csr.row(0), &[0, 2, 4, 5]);
        assert_eq!(csr.row(2), &[5]);
        assert_eq!(csr.row(3), &[0, 2]); // interactions alone
        assert_eq!(csr.row(6), &[4, 5]); // features alone
        assert!(csr.row(7).is_empty());
    }

    #[test]
    fn modality_dropout_draws_only_entities_with_both_inputs_at_its_rate_and_repeatably() {
        use crate::selftest::harness::toy_data;
        use crate::selftest::models::{step_config, toy_features};
        let mut rng = rand_pcg::Pcg64Mcg::new(3);
        let (n, m) = (400, 300);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.01);
        let uf = toy_features(&mut rng, n, 4, 0.3);
        let p = 0.4;
        let with = |p: f32| {
            let arch = "8,4".parse().unwrap();
            SideInfo::new(
                arch,
                step_config(0.0),
                &by_user,
                &by_item,
                Some(&uf),
                None,
                p,
                4096,
            )
        };
        let mdl = with(p);
        let pairs: Vec<Pair> = (0..n as u32).map(|u| (u, u % m as u32, 1.0)).collect();
        let b = mdl.build_batch(&pairs);
        assert_eq!(b.user_ids.len(), n, "one row per user");
        let (mut both, mut dropped) = (0, [0usize; 2]);
        for &id in &b.user_ids {
            let (variant, u) = (id as usize / n, id as usize % n);
            let has_both = by_user.row_len(u) > 0 && uf.rows.row_len(u) > 0;
            both += has_both as usize;
            if variant > 0 {
                assert!(has_both, "user {u} lost its only input");
                dropped[variant - 1] += 1;
            }
        }
        // Items have no features here: never a variant.
        assert!(b.item_ids.iter().all(|&i| (i as usize) < m));
        let rate = (dropped[0] + dropped[1]) as f64 / both as f64;
        assert!(
            both > 100 && (rate - f64::from(p)).abs() < 0.1,
            "{dropped:?} of {both}: {rate}"
        );
        assert!(
            dropped[0] > 10 && dropped[1] > 10,
            "{dropped:?}: both kinds drawn"
        );
        // The same pairs draw the same; other pairs draw anew.
        assert_eq!(mdl.build_batch(&pairs).user_ids, b.user_ids);
        let other: Vec<Pair> = pairs.iter().map(|&(u, i, _)| (u, i, 0.0)).collect();
        assert_ne!(mdl.build_batch(&other).user_ids, b.user_ids);
        // Without modality dropout, the batch is the plain one over the entities' full rows.
        let plain = with(0.0);
        let b0 = plain.build_batch(&pairs);
        assert!(b0.user_ids.iter().all(|&u| (u as usize) < n));
    }
}
