//! The files of a run directory: `config.json` (everything needed to rebuild the model), `metrics.json`
//! (validation and test metrics, best epoch, timings, adapter, version, hyper-parameters),
//! `train_log.jsonl`, `recommendations.tsv` and the training-curve SVG. (`user_metrics.tsv` is written
//! by `report::table`, which also reads it back for `compare`.)

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::eval::metrics::SplitMetrics;
use crate::eval::ranking::TopK;
use crate::gpu::context::AdapterSummary;
use crate::models::ParamCounts;
use crate::util::write_atomic;

pub use crate::rundir::{CONFIG_FILE, CURVE_FILE, RECOMMENDATIONS_FILE, SPLIT_DIR, TRAIN_LOG_FILE};

/// The program's version and the git revision it was built from.
pub use crate::util::{git_revision, version, write_json};

/// Who wrote a JSON report, where: the program, its version and git revision, the OS and the CPU
/// architecture (`bench` and `selftest` files carry it, flattened into their top level).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub program: String,
    pub version: String,
    pub git_revision: String,
    pub os: String,
    pub arch: String,
}

impl Provenance {
    /// This binary on this machine.
    pub fn here() -> Provenance {
        Provenance {
            program: "cobrar-gpu".into(),
            version: version(),
            git_revision: git_revision(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        }
    }
}

/// The dataset as a run saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub name: String,
    /// How it was given (`--dataset` value, or "embedded synthetic dataset").
    pub source: String,
    pub users: usize,
    pub items: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

/// `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub program: String,
    pub version: String,
    pub git_revision: String,
    pub train: TrainConfig,
    pub dataset: DatasetSummary,
    pub parameters: ParamCounts,
    pub adapter: AdapterSummary,
}

impl RunConfig {
    pub fn load(dir: &Path) -> anyhow::Result<RunConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: not a run directory (cannot read {CONFIG_FILE})",
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid run configuration", path.display()))
    }

    /// The row label of `compare`: model and architecture (MostPop has none).
    pub fn label(&self) -> String {
        self.train.label()
    }
}

/// Wall-clock timings of a run, in seconds, over every process that trained it: a run killed and
/// resumed adds up its epochs' training and validation times and its processes' wall time up to their
/// last committed epoch (the work after it, which the resumed run redid, is not counted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timings {
    pub train_seconds: f64,
    pub validation_seconds: f64,
    pub test_seconds: f64,
    pub total_seconds: f64,
    pub mean_steps_per_s: f64,
    /// Processes that trained the run: 1, plus one per `--resume`.
    #[serde(default = "one")]
    pub processes: u32,
}

fn one() -> u32 {
    1
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    pub dataset: String,
    pub model: String,
    pub label: String,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub stopped_early: bool,
    /// Validation metrics of the best epoch (absent without validation data).
    pub validation: Option<SplitMetrics>,
    pub test: SplitMetrics,
    pub timings: Timings,
    pub adapter: AdapterSummary,
    pub version: String,
    pub git_revision: String,
    pub hyperparameters: TrainConfig,
    pub parameters: ParamCounts,
    /// How batches were built: who built the gradient index and the start-up measurement behind it.
    #[serde(default)]
    pub batch_pipeline: Option<crate::pipeline::IndexProbe>,
    /// Whether this adapter, driver and binary passed a selftest (`cobrar-gpu selftest`, or
    /// `train --selftest`), as remembered in the user's cache directory when the run finished.
    #[serde(default = "crate::selftest::cache::SelftestStatus::not_run")]
    pub selftest: crate::selftest::cache::SelftestStatus,
    /// SHA-256 of the data and split trained and tested on (`Dataset::content_hash`): `compare` runs
    /// paired tests only between runs that share it.
    #[serde(default)]
    pub split_hash: Option<String>,
}

/// Rewrites `train_log.jsonl` with one line per epoch so far (atomically: a reader never sees a torn line).
pub fn write_train_log(path: &Path, history: &[EpochRecord]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in history {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Epochs recorded in run directory `dir`'s training log (0 without one).
pub fn logged_epochs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join(TRAIN_LOG_FILE))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// `user<TAB>rank<TAB>item<TAB>score` with original ids, ranks from 1, for every listed user.
pub fn recommendations_tsv(top: &TopK, user_ids: &[String], item_ids: &[String]) -> String {
    let mut out = String::with_capacity(top.items.len() * 24 + 32);
    out.push_str("user\trank\titem\tscore\n");
    for (row, &u) in top.users.iter().enumerate() {
        for (r, &i) in top.list(row).iter().enumerate() {
            let score = top.scores[row * top.k + r];
            out.push_str(&format!(
                "{}\t{}\t{}\t{score:.6}\n",
                user_ids[u as usize],
                r + 1,
                item_ids[i as usize]
            ));
        }
    }
    out
}

/// One line of `train_log.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<SplitMetrics>,
    pub eval_seconds: f64,
    /// Whether this epoch's weights are the best so far.
    pub best: bool,
}
