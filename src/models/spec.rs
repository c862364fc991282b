//! A model's descriptor: everything the commands need to know about a model, declared next to its code
//! (RecBole's shape). The registry ([`super::registry`]) maps each [`super::ModelKind`] to one; the
//! training loop, the checkpoints and the commands ask the descriptor and never match on the kind.

use std::sync::Arc;

use crate::batch::IndexStrategy;
use crate::config::TrainConfig;
use crate::data::{Dataset, FeatureSide};
use crate::gpu::GpuContext;
use crate::pipeline::IndexProbe;
use crate::sampler::{Sampler, SamplerKind};

use super::arch::{Architecture, ParamCounts};
use super::kind::ModelKind;
use super::net::Net;
use super::params::ParamLayout;

/// The `train` flags that only some models use (long names; aliases are mapped by
/// [`canonical_flag`]). Every other flag applies to every model.
pub const MODEL_FLAGS: &[&str] = &[
    "lr",
    "weight-decay",
    "mu",
    "negatives",
    "dropout",
    "layers",
    "anneal-cap",
    "anneal-steps",
    "loss",
    "temperature",
    "optimizer",
    "modality-dropout",
];

/// `flag`'s name in [`MODEL_FLAGS`] (`lambda` and `reg` are `weight-decay`, `neg` is `negatives`).
pub fn canonical_flag(flag: &str) -> &str {
    match flag {
        "lambda" | "reg" => "weight-decay",
        "neg" => "negatives",
        f => f,
    }
}

/// Measures how the batch's gradient index is best built on this machine (models whose index the
/// GPU can build): (GPU, data, configuration, sampler, host batch builders).
pub type IndexProbeFn =
    fn(&Arc<GpuContext>, &Dataset, &TrainConfig, &Sampler<'_>, usize) -> anyhow::Result<IndexProbe>;

/// Builds the model a configuration describes on a dataset's training split, sized for steps of at
/// most `max_pairs` sampled pairs, its gradient index built as `index` says.
pub type BuildFn = for<'d> fn(&TrainConfig, &'d Dataset, usize, IndexStrategy) -> Net<'d>;

/// What a model's parameter shapes depend on in its data: users, items, and the features of each side
/// (0 where the dataset has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataShape {
    pub users: usize,
    pub items: usize,
    pub user_features: usize,
    pub item_features: usize,
}

impl DataShape {
    /// N users and M items, no features.
    pub fn plain(users: usize, items: usize) -> DataShape {
        DataShape {
            users,
            items,
            ..DataShape::default()
        }
    }

    /// The shape of `ds` (its side information included).
    pub fn of(ds: &Dataset) -> DataShape {
        let (user_features, item_features) = ds.features.counts();
        DataShape {
            users: ds.n_users(),
            items: ds.n_items(),
            user_features,
            item_features,
        }
    }
}

/// One model's descriptor.
pub struct ModelSpec {
    /// The model's name as the literature writes it (`LightGCN`), for messages.
    pub title: &'static str,
    /// `--arch` when it is not given.
    pub default_arch: &'static [usize],
    /// Whether `--arch` suits the model: one line saying what it expects.
    pub check_arch: fn(ModelKind, &Architecture) -> anyhow::Result<()>,
    /// The model's own checks of the rest of the configuration (its flags' ranges).
    pub check: fn(&TrainConfig) -> anyhow::Result<()>,
    /// Its checks of the dataset it is to train on (e.g. that it has the side information the model
    /// needs), before anything is built.
    pub check_data: fn(&TrainConfig, &Dataset) -> anyhow::Result<()>,
    /// The [`MODEL_FLAGS`] it uses; the others are refused on the command line and left out of its
    /// grid runs.
    pub flags: &'static [&'static str],
    /// Why the other model flags do not apply (the refusal's reason).
    pub why_not: &'static str,
    /// Dropout rate when `--dropout` is not given; `None`: the model has no dropout.
    pub dropout: Option<f32>,
    /// The samplers it trains on, its default first; empty: it samples nothing (any is accepted).
    pub samplers: &'static [SamplerKind],
    /// Whether it learns by steps; one that does not is fitted once (one epoch of no steps).
    pub trains: bool,
    /// Weight sets of dense layers: 1 for a branch shared by users and items, 2 for one per side, 0
    /// for models without a branch.
    pub branches: usize,
    /// The row label of `compare` and the run's reports (`cobrar 512,64`).
    pub label: fn(&TrainConfig) -> String,
    /// Exact parameter counts on (architecture, data shape).
    pub counts: fn(&Architecture, DataShape) -> ParamCounts,
    /// The counts in the model's own words.
    pub describe: fn(&ParamCounts) -> String,
    /// A note under `reproduce`'s parameter table, when the table's columns mean something else for
    /// this model.
    pub counts_note: Option<&'static str>,
    /// Its parameter tensors on (configuration, data shape): the checkpoint's names and shapes.
    pub param_layout: fn(&TrainConfig, DataShape) -> ParamLayout,
    pub build: BuildFn,
    /// Who builds the gradient index of each batch: `None` when only the host can.
    pub index_probe: Option<IndexProbeFn>,
    /// The architectures `bench` runs by default.
    pub bench_archs: &'static [&'static str],
    /// What it can score for users or items without training interactions (a cold-start split's).
    pub unseen: Unseen,
}

/// How a model scores users or items that have no training interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unseen {
    /// It embeds them from those interactions alone: it cannot (cold-start evaluation says so and
    /// does not score it).
    Cannot,
    /// From their side information, where the data has it for that side.
    FromFeatures,
    /// Its scores are popularity counts (MostPop: an unseen item has none, an unseen user ranks the
    /// popular items): the floor.
    Popularity,
}

impl ModelSpec {
    /// Why the model cannot score held-out `side` entities of `ds`; `None` when it can.
    pub fn cannot_score_unseen(&self, ds: &Dataset, side: FeatureSide) -> Option<String> {
        let noun = side.noun();
        match self.unseen {
            Unseen::Popularity => None,
            Unseen::FromFeatures if ds.features.side(side).is_some() => None,
            Unseen::FromFeatures => Some(format!(
                "{} embeds {noun} without training interactions from their features, and this run \
                 has no {noun}' features ({})",
                self.title,
                side.flag()
            )),
            Unseen::Cannot => Some(format!(
                "{} embeds {noun} from their training interactions alone, and held-out {noun} have \
                 none: it cannot embed them (not scored)",
                self.title
            )),
        }
    }
}

/// The label of a model whose run is named by its architecture alone (`cobrar 512,64`).
pub fn arch_label(cfg: &TrainConfig) -> String {
    // Lazy Adam is named (tables and reports tell it from the study's dense Adam); dense is not, so
    // the study's labels are unchanged.
    match cfg.optimizer {
        crate::config::Optimizer::Adam => format!("{} {}", cfg.model, cfg.arch),
        crate::config::Optimizer::LazyAdam => format!("{} {} lazy-adam", cfg.model, cfg.arch),
    }
}

/// A parameter count said the plain way ([`ParamCounts`]' `Display`).
pub fn plain_counts(c: &ParamCounts) -> String {
    c.to_string()
}

/// No checks beyond the shared ones.
pub fn no_check(_: &TrainConfig) -> anyhow::Result<()> {
    Ok(())
}

/// No checks of the data beyond the shared ones.
pub fn no_data_check(_: &TrainConfig, _: &Dataset) -> anyhow::Result<()> {
    Ok(())
}
