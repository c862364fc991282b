//! The training loop: sample → batch (in a producer thread, overlapping GPU work) → step on the GPU →
//! every epoch, full-ranking validation, early stopping on validation NDCG@k, best weights kept.

use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::batch::HostBatch;
use crate::data::Dataset;
use crate::eval::Evaluator;
use crate::eval::metrics::SplitMetrics;
use crate::gpu::GpuContext;
use crate::kernels::adam_dense::AdamConfig;
use crate::model::engine::{Engine, EngineOptions, LOSS_RING};
use crate::model::{Architecture, Layout, ModelKind, ModelParams, StepConfig};
use crate::sampler::{Sampler, SamplerKind};

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
}

impl TrainConfig {
    pub fn step_config(&self) -> StepConfig {
        StepConfig {
            mu: self.mu,
            dropout: self.dropout,
            adam: AdamConfig::new(self.lr, self.weight_decay),
            seed: self.seed,
        }
    }
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

/// What a finished run hands back; the engine holds the best epoch's weights.
pub struct TrainOutcome {
    pub engine: Engine,
    pub best_epoch: usize,
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

enum Msg {
    Batch(Box<HostBatch>),
    EpochEnd,
}

/// Trains on `ds` with `cfg`. `on_epoch` sees every finished epoch, with the weights when the epoch is
/// the best so far (logs, checkpoints of long runs).
pub fn train(
    ctx: GpuContext,
    ds: &Dataset,
    cfg: &TrainConfig,
    progress: bool,
    on_epoch: &mut EpochObserver<'_>,
) -> anyhow::Result<TrainOutcome> {
    if cfg.model == ModelKind::Deepmf && cfg.dropout > 0.0 {
        bail!("DeepMF trains without dropout (as in the study); drop --dropout or set it to 0");
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        bail!("--dropout must be in [0, 1), got {}", cfg.dropout);
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", cfg.lr);
    }
    if cfg.max_epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if cfg.log_every == 0 || cfg.log_every > LOSS_RING {
        bail!("--log-every must be between 1 and {LOSS_RING}");
    }
    let (mut engine, sampler) = setup(ctx, ds, cfg)?;
    let mut evaluator = Evaluator::new(&engine.ctx, &cfg.cutoffs)?;
    let validate = ds.val.nnz() > 0;
    let steps_per_epoch = match cfg.max_steps_per_epoch {
        Some(n) => n.clamp(1, sampler.steps_per_epoch()),
        None => sampler.steps_per_epoch(),
    };

    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best: Option<(f64, usize, ModelParams<f32>)> = None;
    let mut stopped_early = false;
    let (mut train_seconds, mut eval_seconds) = (0.0, 0.0);

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = sync_channel::<Msg>(4);
        let sampler = &sampler;
        let (by_user, by_item) = (&ds.train, &ds.train_by_item);
        let max_epochs = cfg.max_epochs as u64;
        scope.spawn(move || {
            for epoch in 1..=max_epochs {
                for pairs in sampler.epoch(epoch).take(steps_per_epoch) {
                    let b = HostBatch::build(&pairs, by_user, by_item);
                    if tx.send(Msg::Batch(Box::new(b))).is_err() {
                        return; // the trainer stopped (early stopping or an error)
                    }
                }
                if tx.send(Msg::EpochEnd).is_err() {
                    return;
                }
            }
        });
        for epoch in 1..=cfg.max_epochs {
            let bar = epoch_bar(progress, epoch, cfg.max_epochs, steps_per_epoch);
            let start = Instant::now();
            let loss = run_epoch(
                &mut engine,
                &rx,
                cfg,
                epoch,
                steps_per_epoch,
                &bar,
                progress,
            )?;
            let seconds = start.elapsed().as_secs_f64();
            train_seconds += seconds;
            bar.finish_and_clear();
            let mut record = EpochRecord {
                epoch,
                loss,
                steps: steps_per_epoch,
                seconds,
                steps_per_s: steps_per_epoch as f64 / seconds.max(1e-9),
                validation: None,
                eval_seconds: 0.0,
                best: false,
            };
            let score = if validate {
                let t = Instant::now();
                engine.embed_all()?;
                let ev =
                    evaluator.evaluate(&engine, &ds.val, &ds.train, &ds.item_popularity, cfg.mu)?;
                record.eval_seconds = t.elapsed().as_secs_f64();
                eval_seconds += record.eval_seconds;
                let split = SplitMetrics::from(&ev.result);
                let ndcg = split.at(cfg.select_k).map(|m| m.ndcg).unwrap_or(0.0);
                record.validation = Some(split);
                ndcg
            } else {
                -loss // without validation data the last epoch is kept
            };
            if best.as_ref().is_none_or(|b| score > b.0) {
                record.best = true;
                best = Some((score, epoch, engine.read_params()?));
            }
            if progress {
                eprintln!("{}", epoch_line(&record, cfg));
            }
            let new_best = if record.best {
                best.as_ref().map(|b| &b.2)
            } else {
                None
            };
            on_epoch(&record, new_best)?;
            history.push(record);
            let best_epoch = best.as_ref().map_or(0, |b| b.1);
            if validate
                && cfg.patience > 0
                && epoch - best_epoch >= cfg.patience
                && epoch < cfg.max_epochs
            {
                stopped_early = true;
                break;
            }
        }
        drop(rx);
        Ok(())
    })?;

    let (_, best_epoch, best_params) = best.context("no epoch finished")?;
    engine.write_params(&best_params)?;
    Ok(TrainOutcome {
        engine,
        best_epoch,
        history,
        stopped_early,
        train_seconds,
        eval_seconds,
    })
}

/// Called after every epoch with its record and, when the epoch is the best so far, its weights.
pub type EpochObserver<'a> =
    dyn FnMut(&EpochRecord, Option<&ModelParams<f32>>) -> anyhow::Result<()> + 'a;

/// The sampler and a GPU engine holding freshly initialised parameters for `cfg` on `ds`.
pub fn setup<'d>(
    ctx: GpuContext,
    ds: &'d Dataset,
    cfg: &TrainConfig,
) -> anyhow::Result<(Engine, Sampler<'d>)> {
    let layout = Layout::new(cfg.model, &cfg.arch, ds.n_users(), ds.n_items());
    let sampler = Sampler::new(
        cfg.sampler,
        &ds.train,
        ds.n_items(),
        cfg.batch_size,
        cfg.negatives,
        cfg.seed,
    )?;
    let params = ModelParams::init(&layout, cfg.seed);
    let opts = EngineOptions {
        max_pairs: sampler.max_pairs(),
        chunk_rows: None,
    };
    let engine = Engine::new(
        ctx,
        &params,
        &ds.train,
        &ds.train_by_item,
        cfg.step_config(),
        opts,
    )?;
    Ok((engine, sampler))
}

/// Runs one epoch's steps; returns the mean loss. Fails on a non-finite loss, naming the step.
fn run_epoch(
    engine: &mut Engine,
    rx: &Receiver<Msg>,
    cfg: &TrainConfig,
    epoch: usize,
    steps: usize,
    bar: &ProgressBar,
    progress: bool,
) -> anyhow::Result<f64> {
    // Without a terminal the bar is invisible: report every tenth of a long epoch as a plain line.
    let plain = progress && !std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut next_report = steps.div_ceil(10);
    let first_t = engine.t + 1;
    let mut checked = engine.t;
    let mut sum = 0.0;
    let mut step = 0usize;
    let mut check = |engine: &Engine, upto: u64, sum: &mut f64| -> anyhow::Result<f32> {
        if upto <= checked {
            return Ok(f32::NAN);
        }
        let losses = engine.read_losses(checked + 1, upto)?;
        for (k, &l) in losses.iter().enumerate() {
            let t = checked + 1 + k as u64;
            if !l.is_finite() {
                bail!(
                    "training diverged: loss is {l} at epoch {epoch}, step {} of {steps} (optimizer step {t}); \
                     try a smaller --lr",
                    t - first_t + 1
                );
            }
            *sum += l as f64;
        }
        checked = upto;
        let last = losses.last().copied().unwrap_or(0.0);
        bar.set_message(format!("{last:.4}"));
        Ok(last)
    };
    loop {
        match rx
            .recv()
            .context("the batch producer stopped unexpectedly")?
        {
            Msg::EpochEnd => break,
            Msg::Batch(b) => {
                engine.step(&b)?;
                step += 1;
                bar.inc(1);
                if step % cfg.log_every == 0 {
                    let last = check(engine, engine.t, &mut sum)?;
                    if plain && step >= next_report && step < steps {
                        let rate = step as f64 / started.elapsed().as_secs_f64().max(1e-9);
                        let eta = (steps - step) as f64 / rate;
                        eprintln!(
                            "epoch {epoch}: {}% ({step}/{steps} steps) · loss {last:.4} · {rate:.1} steps/s · ETA {:.0}s",
                            100 * step / steps,
                            eta
                        );
                        next_report += steps.div_ceil(10);
                    }
                }
            }
        }
    }
    check(engine, engine.t, &mut sum)?;
    Ok(sum / step.max(1) as f64)
}

fn epoch_bar(progress: bool, epoch: usize, max_epochs: usize, steps: usize) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} steps · loss {msg} · {per_sec} · ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{max_epochs}"));
    bar
}

/// The one-line epoch summary printed after each epoch.
pub fn epoch_line(r: &EpochRecord, cfg: &TrainConfig) -> String {
    let mut s = format!(
        "epoch {:>3}  loss {:.5}  {:.1} steps/s  {:.1}s",
        r.epoch, r.loss, r.steps_per_s, r.seconds
    );
    if let Some(v) = &r.validation
        && let Some(m) = v.at(cfg.select_k)
    {
        s.push_str(&format!(
            "  val NDCG@{k} {:.4}  Recall@{k} {:.4}  ({:.1}s)",
            m.ndcg,
            m.recall,
            r.eval_seconds,
            k = cfg.select_k
        ));
    }
    if r.best {
        s.push_str("  *best");
    }
    s
}
