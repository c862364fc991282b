//! [`RunDir`]: one training run's directory and everything written into it — created whole or not at
//! all, locked for the run's lifetime, a resumable state and the log at every epoch, the best
//! weights, and at the end the test results and reports, `metrics.json` last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{
    CONFIG_FILE, CURVE_FILE, Existing, METRICS_FILE, RECOMMENDATIONS_FILE, RunLock, SPLIT_DIR,
    STATE_DIR, TRAIN_LOG_FILE, USER_METRICS_FILE, WEIGHTS_FILE,
};
use crate::checkpoint::{self, state};
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::eval::metrics::PerUserMetrics;
use crate::eval::ranking::TopK;
use crate::report::run::{self, EpochRecord, RunConfig, RunMetrics};
use crate::report::{plot, table};
use crate::train::{EpochEnd, Start};
use crate::util::write_atomic;

/// A run directory held by this process (its lock is released on drop).
pub struct RunDir {
    path: PathBuf,
    config: RunConfig,
    _lock: RunLock,
    /// When this process started (its wall time counts toward the run's).
    started: Instant,
    /// Wall seconds of the run's earlier processes (a resumed run), and this process's number.
    earlier_wall: f64,
    processes: u32,
}

impl RunDir {
    /// Creates the run directory `path` (found `existing` by the output checks) holding the ids, the
    /// split and `config.json` — written last: its presence marks a run `--resume` can continue.
    pub fn create(
        path: &Path,
        existing: Existing,
        config: RunConfig,
        ds: &Dataset,
        started: Instant,
    ) -> anyhow::Result<RunDir> {
        let lock = super::create_run(path, existing, |dir| {
            checkpoint::save_ids(dir, &ds.user_ids, &ds.item_ids)?;
            checkpoint::save_features(dir, ds)?;
            crate::data::write_split(ds, &dir.join(SPLIT_DIR))?;
            run::write_json(&dir.join(CONFIG_FILE), &config)
        })?;
        Ok(RunDir::locked(path, config, lock, started))
    }

    /// The run in `path`, held by this process through `lock`; its time counted from `started`.
    fn locked(path: &Path, config: RunConfig, lock: RunLock, started: Instant) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
            config,
            _lock: lock,
            started,
            earlier_wall: 0.0,
            processes: 1,
        }
    }

    /// Opens the interrupted run in `path` for `--resume`: locks it, sweeps the half-written files of
    /// the killed process (how many: the second value) and reads its configuration.
    pub fn open_unfinished(path: &Path, started: Instant) -> anyhow::Result<(RunDir, usize)> {
        match super::inspect(path)? {
            Existing::FinishedRun => anyhow::bail!(
                "{} holds a finished run (metrics.json): there is nothing to resume",
                path.display()
            ),
            Existing::UnfinishedRun => {}
            Existing::Unstarted => anyhow::bail!(
                "{d}: the run was interrupted while its directory was being created (no \
                 config.json): nothing was trained; run the same `cobrar-gpu train … --out {d}` \
                 again",
                d = path.display()
            ),
            _ => anyhow::bail!(
                "{}: not a run directory (no config.json and split/): nothing to resume",
                path.display()
            ),
        }
        let lock = RunLock::acquire(path)?;
        let swept = super::sweep_temporaries(path);
        let config = RunConfig::load(path)?;
        Ok((RunDir::locked(path, config, lock, started), swept))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The dataset exactly as the run was split (its `split/` and `ids/`).
    pub fn dataset(&self) -> anyhow::Result<Dataset> {
        checkpoint::load_dataset(&self.path, &self.config)
    }

    /// The last committed epoch's state, if any (for `--resume`).
    pub fn progress(&self, ds: &Dataset) -> anyhow::Result<Start> {
        let cfg = &self.config.train;
        let layout = std::sync::Arc::new(crate::models::param_layout(
            cfg,
            crate::models::DataShape::of(ds),
        ));
        state::load(&self.path, &layout)
    }

    /// Before training from `start`: the committed state is authoritative, so the log and the best
    /// weights are rewritten from it; the run's earlier processes' wall time is carried on.
    pub fn begin(&mut self, start: &Start) -> anyhow::Result<()> {
        let Some(p) = start else {
            return Ok(());
        };
        (self.earlier_wall, self.processes) = (p.wall_seconds, p.processes + 1);
        run::write_train_log(&self.path.join(TRAIN_LOG_FILE), &p.history)?;
        if let Some((_, epoch, w)) = &p.best {
            self.save_weights(w, *epoch)?;
        }
        Ok(())
    }

    /// Every finished epoch commits a resumable state, then the log and, for a new best, the weights
    /// — so an interrupted run still leaves a usable checkpoint and `--resume` continues it exactly.
    pub fn on_epoch(&self, e: EpochEnd<'_, '_>) -> anyhow::Result<()> {
        let (m, v) = e.session.read_moments()?;
        let progress = state::Progress {
            epoch: e.record.epoch,
            t: e.session.t,
            weights: e.session.read_weights()?,
            m,
            v,
            row_steps: e.session.read_row_steps()?,
            history: e.history.to_vec(),
            best: Some(e.best.clone()),
            wall_seconds: self.wall_seconds(),
            processes: self.processes,
        };
        state::save(&self.path, &progress, e.new_best)?;
        run::write_train_log(&self.path.join(TRAIN_LOG_FILE), e.history)?;
        if e.new_best {
            self.save_weights(&e.best.2, e.best.1)?;
        }
        Ok(())
    }

    /// Training's error, with how to continue when a completed epoch is saved (not after a
    /// divergence, which would diverge again).
    pub fn training_error(&self, e: anyhow::Error) -> anyhow::Error {
        let resumable = self.path.join(STATE_DIR).exists();
        let diverged = e.to_string().contains("diverged");
        if resumable && !diverged {
            e.context(format!(
                "training stopped; the last completed epoch is saved: continue with `cobrar-gpu \
                 train --resume {}`",
                self.path.display()
            ))
        } else {
            e
        }
    }

    /// Wall seconds of the run so far, over every process that trained it.
    pub fn wall_seconds(&self) -> f64 {
        self.earlier_wall + self.started.elapsed().as_secs_f64()
    }

    /// How many processes have trained the run (this one included).
    pub fn processes(&self) -> u32 {
        self.processes
    }

    /// Writes the finished run's results: per-user test metrics, the top-k lists, the training curve
    /// and `metrics.json` — last: its presence marks a finished run, which needs no resumable state.
    pub fn finish(
        &self,
        ds: &Dataset,
        metrics: &RunMetrics,
        per_user: &PerUserMetrics,
        top: &TopK,
        history: &[EpochRecord],
    ) -> anyhow::Result<()> {
        let cfg = &self.config.train;
        table::write_user_metrics(&self.path.join(USER_METRICS_FILE), &ds.user_ids, per_user)?;
        let recs = run::recommendations_tsv(top, &ds.user_ids, &ds.item_ids);
        write_atomic(&self.path.join(RECOMMENDATIONS_FILE), recs.as_bytes())?;
        let losses: Vec<f64> = history.iter().map(|r| r.loss).collect();
        let ndcg: Vec<Option<f64>> = history
            .iter()
            .map(|r| {
                r.validation
                    .as_ref()
                    .and_then(|v| v.at(cfg.select_k))
                    .map(|m| m.ndcg)
            })
            .collect();
        let title = format!(
            "{} on {} ({})",
            self.config.label(),
            ds.name,
            metrics.adapter.name
        );
        let svg = plot::training_curve(&title, &losses, &ndcg, cfg.select_k, metrics.best_epoch)?;
        write_atomic(&self.path.join(CURVE_FILE), svg.as_bytes())?;
        run::write_json(&self.path.join(METRICS_FILE), metrics)?;
        let _ = std::fs::remove_dir_all(self.path.join(STATE_DIR));
        Ok(())
    }

    fn save_weights(&self, w: &crate::models::Weights<f32>, epoch: usize) -> anyhow::Result<()> {
        let cfg = &self.config.train;
        let meta = weights_metadata(cfg, &self.config.dataset.name, epoch);
        checkpoint::save_weights(&self.path.join(WEIGHTS_FILE), w, &meta)
    }
}

/// The safetensors header metadata of a checkpoint.
fn weights_metadata(cfg: &TrainConfig, dataset: &str, epoch: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("model".to_string(), cfg.model.to_string()),
        ("arch".to_string(), cfg.arch.to_string()),
        ("dataset".to_string(), dataset.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        (
            "format".to_string(),
            "cobrar-gpu; tensor names in README".to_string(),
        ),
    ])
}
