//! What defines a training run ([`TrainConfig`], written to `config.json`) and the checks every model
//! shares; the model's own checks come from its descriptor (`models::registry`).

use serde::{Deserialize, Serialize};

use crate::models::{Architecture, LOSS_RING, ModelKind};
use crate::sampler::SamplerKind;

/// Everything that defines a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub arch: Architecture,
    pub dropout: f32,
    pub lr: f64,
    /// Coupled L2 (λ), PyTorch `Adam(weight_decay=λ)`.
    pub weight_decay: f64,
    pub mu: f32,
    pub negatives: usize,
    pub batch_size: usize,
    pub sampler: SamplerKind,
    pub max_epochs: usize,
    /// Epochs without a better validation score before stopping (0: never stop early).
    pub patience: usize,
    pub seed: u64,
    /// Evaluation cutoffs.
    pub cutoffs: Vec<usize>,
    /// The cutoff of the validation NDCG that selects the best epoch.
    pub select_k: usize,
    /// Steps between loss read-backs (progress and the NaN check).
    pub log_every: usize,
    /// Stop each epoch after this many steps (smoke tests, timing); `None`: whole epochs.
    #[serde(default)]
    pub max_steps_per_epoch: Option<usize>,
    /// Train without a validation split: no model selection, the last epoch is kept.
    #[serde(default)]
    pub no_validation: bool,
    /// Who builds the tables' gradient index of each batch (the same bits either way).
    #[serde(default)]
    pub batch_index: IndexChoice,
    /// LightGCN's propagation layers K.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// MultVAE's final KL weight β and the updates its linear annealing takes.
    #[serde(default = "default_anneal_cap")]
    pub anneal_cap: f32,
    #[serde(default = "default_anneal_steps")]
    pub anneal_steps: u64,
    /// CoBraR's and DeepMF's loss over the clamped cosine (written only when not the study's BCE, so
    /// the configurations, and the folders `reproduce` keys by them, of BCE runs are unchanged).
    #[serde(default, skip_serializing_if = "LossKind::is_bce")]
    pub loss: LossKind,
    /// The pairwise loss's temperature τ: −ln σ(τ(ŷ_pos − ŷ_neg)) (written only when not 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub temperature: f32,
    /// How the embedding tables step (written only when not the study's dense Adam).
    #[serde(default, skip_serializing_if = "Optimizer::is_adam")]
    pub optimizer: Optimizer,
    /// The probability that a batch entity with both interactions and features loses one of them
    /// (cobrar-si; written only when not 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modality_dropout: f32,
}

/// `--optimizer`: how CoBraR's, DeepMF's and BPR-MF's embedding tables step (dense layers always take
/// dense Adam).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// The study's: every row of every table takes an Adam step every step (PyTorch's Adam with
    /// coupled L2: a row no batch touches still moves by its moments and its decay).
    #[default]
    Adam,
    /// Only the rows the batch touches step, each with its own step count for the bias corrections,
    /// and the L2 term on those rows only: work per step scales with the batch, not the catalog.
    LazyAdam,
}

impl Optimizer {
    pub fn is_adam(&self) -> bool {
        *self == Optimizer::Adam
    }
}

/// CoBraR's and DeepMF's loss (`--loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Binary cross-entropy of each (user, item, label) pair's clamped cosine (the study's).
    #[default]
    Bce,
    /// The pairwise loss −ln σ(τ(ŷ_pos − ŷ_neg)) over the bpr sampler's (user, positive, negative)
    /// triples (the paper's future work).
    Bpr,
}

impl LossKind {
    pub fn is_bce(&self) -> bool {
        *self == LossKind::Bce
    }
}

fn one() -> f32 {
    1.0
}

fn is_one(v: &f32) -> bool {
    *v == 1.0
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// MultVAE's β schedule when not given (Liang et al.'s and Elliot's).
pub const DEFAULT_ANNEAL_CAP: f32 = 0.2;
pub const DEFAULT_ANNEAL_STEPS: u64 = 200_000;

fn default_anneal_cap() -> f32 {
    DEFAULT_ANNEAL_CAP
}

fn default_anneal_steps() -> u64 {
    DEFAULT_ANNEAL_STEPS
}

/// LightGCN's K when not given (Elliot's and the study's middle value).
pub const DEFAULT_LAYERS: usize = 3;

fn default_layers() -> usize {
    DEFAULT_LAYERS
}

/// `--batch-index`: measure both strategies at start-up (`auto`), or force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IndexChoice {
    #[default]
    Auto,
    Host,
    Gpu,
}

/// A setting outside its range: one line naming the flag, the range and the value.
pub fn out_of_range(flag: &str, range: &str, value: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{flag} must be {range}, got {value}")
}

impl TrainConfig {
    /// Checks the settings every model shares against their ranges; the model's own checks are
    /// [`TrainConfig::validate`]'s (in the registry).
    pub fn check_ranges(&self) -> anyhow::Result<()> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(out_of_range("--dropout", "in [0, 1)", self.dropout));
        }
        if !(self.temperature > 0.0 && self.temperature <= 100.0) {
            return Err(out_of_range(
                "--temperature",
                "in (0, 100]",
                self.temperature,
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(out_of_range("--lr", "a positive finite number", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(out_of_range(
                "--weight-decay",
                "a finite number ≥ 0",
                self.weight_decay,
            ));
        }
        // μ clamps predictions in [0, 1]: at 1 or above every score is clamped and nothing is learned.
        if !(0.0..1.0).contains(&self.mu) {
            return Err(out_of_range("--mu", "in [0, 1)", self.mu));
        }
        if self.negatives == 0 && matches!(self.sampler, SamplerKind::Alg1 | SamplerKind::Authors) {
            return Err(out_of_range(
                "--negatives",
                "at least 1 (a pointwise loss needs negatives)",
                0,
            ));
        }
        if self.batch_size == 0 {
            return Err(out_of_range("--batch-size", "at least 1", 0));
        }
        if self.max_epochs == 0 {
            return Err(out_of_range("--epochs", "at least 1", 0));
        }
        if self.max_steps_per_epoch == Some(0) {
            return Err(out_of_range("--max-steps-per-epoch", "at least 1", 0));
        }
        if self.log_every == 0 || self.log_every > LOSS_RING {
            return Err(out_of_range(
                "--log-every",
                &format!("between 1 and {LOSS_RING}"),
                self.log_every,
            ));
        }
        let max_k = crate::eval::ranking::MAX_K;
        if !(1..=max_k).contains(&self.select_k) {
            return Err(out_of_range(
                "--select-k",
                &format!("between 1 and {max_k}"),
                self.select_k,
            ));
        }
        if let Some(k) = self.cutoffs.iter().find(|k| !(1..=max_k).contains(*k)) {
            return Err(out_of_range(
                "every --cutoffs value",
                &format!("between 1 and {max_k}"),
                k,
            ));
        }
        Ok(())
    }
}
