//! The training loop: sample → batch (in a producer thread, overlapping GPU work) → step on the GPU →
//! every epoch, full-ranking validation, early stopping on validation NDCG@k, best weights kept.

use std::io::IsTerminal;
use std::sync::Arc;

use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::batch::IndexStrategy;
pub use crate::config::{
    DEFAULT_ANNEAL_CAP, DEFAULT_ANNEAL_STEPS, DEFAULT_LAYERS, IndexChoice, TrainConfig,
};
use crate::data::Dataset;
use crate::eval::Evaluator;
use crate::eval::metrics::SplitMetrics;
use crate::gpu::GpuContext;
use crate::gpu::exec::GpuExec;
use crate::gpu::executor::Executor;
use crate::models::session::gpu_session;
use crate::models::{Mode, Model, Net, Session, Weights, model_for};
use crate::pipeline::{self, IndexProbe, Item, Pipeline};
pub use crate::report::run::EpochRecord;
use crate::sampler::Sampler;
pub use hooks::{Hooks, Interrupted, TrainHooks, current_hooks, with_hooks};

mod hooks;

/// The GPU training session of a run on a dataset.
pub type TrainSession<'d> = Session<GpuExec, Net<'d>>;

/// What a finished run hands back; the session holds the best epoch's weights.
pub struct TrainOutcome<'d> {
    pub session: TrainSession<'d>,
    pub best_epoch: usize,
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// Training and validation seconds of every epoch, over every process that trained the run (a
    /// resumed run's earlier processes included).
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// How batches were built (who built the gradient index, and the measurement behind it).
    pub batch_pipeline: IndexProbe,
}

/// Where a run starts: from scratch, or from a committed epoch of an interrupted run.
pub type Start = Option<crate::checkpoint::state::Progress>;

/// A finished epoch, as the observer sees it.
pub struct EpochEnd<'s, 'd> {
    pub record: &'s EpochRecord,
    pub history: &'s [EpochRecord],
    /// The best epoch so far: (selection score, epoch, weights).
    pub best: &'s (f64, usize, Weights<f32>),
    /// Whether this epoch is the new best.
    pub new_best: bool,
    /// The training session (current weights and Adam state, for checkpoints).
    pub session: &'s mut TrainSession<'d>,
}

/// Trains on `ds` with `cfg`, from scratch or from `start`. `on_epoch` sees every finished epoch
/// (logs, checkpoints).
pub fn train<'d>(
    ctx: Arc<GpuContext>,
    ds: &'d Dataset,
    cfg: &TrainConfig,
    progress: bool,
    start: Start,
    on_epoch: &mut EpochObserver<'_, 'd>,
) -> anyhow::Result<TrainOutcome<'d>> {
    let prepared = prepare(&ctx, ds, cfg)?;
    train_prepared(ctx, prepared, ds, cfg, progress, start, on_epoch)
}

/// [`train`] with the sampler and model [`prepare`]d beforehand (the commands prepare before they
/// write anything, and build the model once).
pub fn train_prepared<'d>(
    ctx: Arc<GpuContext>,
    prepared: Prepared<'d>,
    ds: &'d Dataset,
    cfg: &TrainConfig,
    progress: bool,
    start: Start,
    on_epoch: &mut EpochObserver<'_, 'd>,
) -> anyhow::Result<TrainOutcome<'d>> {
    let (mut session, sampler, probe) = prepared.session(ctx, cfg)?;
    let builders = probe.builders;
    let mut evaluator = Evaluator::new(&cfg.cutoffs)?;
    let validate = !cfg.no_validation;
    let steps_per_epoch = epoch_steps(cfg, &sampler);
    let hooks = current_hooks();

    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best: Option<(f64, usize, Weights<f32>)> = None;
    let mut first_epoch = 1;
    if let Some(p) = start {
        session.write_weights(&p.weights)?;
        session.write_moments(&p.m, &p.v, p.t)?;
        session.write_row_steps(&p.row_steps)?;
        first_epoch = p.epoch + 1;
        history = p.history;
        best = p.best;
    }
    if let Some(h) = &hooks {
        h.begin(first_epoch, cfg.max_epochs, steps_per_epoch);
    }
    let mut stopped_early = false;
    let finished = |history: &[EpochRecord], best: &Option<(f64, usize, Weights<f32>)>| {
        let epoch = history.len();
        let best_epoch = best.as_ref().map_or(0, |b| b.1);
        validate && cfg.patience > 0 && epoch - best_epoch >= cfg.patience
    };
    if first_epoch > cfg.max_epochs || finished(&history, &best) {
        // Killed after the last epoch's checkpoint: nothing left to train.
        stopped_early = first_epoch <= cfg.max_epochs;
    } else {
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let model = session.model.clone();
            let epochs = first_epoch as u64..=cfg.max_epochs as u64;
            let build = move |pairs: &[crate::sampler::Pair]| model.build_batch(pairs);
            let mut rx = pipeline::spawn(scope, &sampler, epochs, steps_per_epoch, build, builders);
            for epoch in first_epoch..=cfg.max_epochs {
                let bar = epoch_bar(progress, epoch, cfg.max_epochs, steps_per_epoch);
                let started = Instant::now();
                let loss = run_epoch(
                    &mut session,
                    &mut rx,
                    cfg,
                    epoch,
                    steps_per_epoch,
                    &bar,
                    progress,
                )?;
                let seconds = started.elapsed().as_secs_f64();
                bar.finish_and_clear();
                check_parameters(&mut session, epoch)?;
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
                    session.embed_all()?;
                    let ev = evaluator.evaluate_session(&mut session, &ds.val, ds)?;
                    record.eval_seconds = t.elapsed().as_secs_f64();
                    let split = SplitMetrics::from(&ev.result);
                    let ndcg = split.at(cfg.select_k).map(|m| m.ndcg).unwrap_or(0.0);
                    record.validation = Some(split);
                    ndcg
                } else {
                    epoch as f64 // without validation data the last epoch is kept
                };
                if best.as_ref().is_none_or(|b| score > b.0) {
                    record.best = true;
                    best = Some((score, epoch, session.read_weights()?));
                }
                if progress {
                    eprintln!("{}", epoch_line(&record, cfg));
                }
                history.push(record);
                let end = EpochEnd {
                    record: history.last().expect("pushed"),
                    history: &history,
                    best: best.as_ref().expect("set above"),
                    new_best: history.last().is_some_and(|r| r.best),
                    session: &mut session,
                };
                on_epoch(end)?;
                if let Some(h) = &hooks {
                    h.epoch(history.last().expect("pushed"))?;
                }
                crate::util::kill_point("epoch", epoch as u64);
                if finished(&history, &best) && epoch < cfg.max_epochs {
                    stopped_early = true;
                    break;
                }
            }
            drop(rx);
            Ok(())
        })?;
    }

    let (_, best_epoch, best_params) = best.context("no epoch finished")?;
    // Totals over every process that trained this run: a resumed run's history holds the epochs of
    // the processes before it.
    let train_seconds = history.iter().map(|r| r.seconds).sum();
    let eval_seconds = history.iter().map(|r| r.eval_seconds).sum();
    session.write_weights(&best_params)?;
    Ok(TrainOutcome {
        session,
        best_epoch,
        history,
        stopped_early,
        train_seconds,
        eval_seconds,
        batch_pipeline: probe,
    })
}

/// Stops a diverged run: non-finite parameters (counted on the GPU) end training with a clear error
/// before they can be evaluated, selected or saved.
fn check_parameters(session: &mut TrainSession<'_>, epoch: usize) -> anyhow::Result<()> {
    let bad = session.nonfinite_params()?;
    if let Some((buffer, n)) = bad.first() {
        let tensors: Vec<&str> = session
            .model
            .params()
            .tensors
            .iter()
            .filter(|t| match &t.storage {
                crate::models::params::Storage::Table(b) => b == buffer,
                crate::models::params::Storage::Dense { .. } => {
                    buffer == crate::models::params::DENSE
                }
            })
            .map(|t| t.name.as_str())
            .collect();
        bail!(
            "training diverged: {n} non-finite parameter value(s) in {buffer} ({}) after epoch \
             {epoch} (optimizer step {}); try a smaller --lr or --weight-decay",
            tensors.join(", "),
            session.t
        );
    }
    Ok(())
}

/// Called after every finished epoch.
pub type EpochObserver<'a, 'd> = dyn FnMut(EpochEnd<'_, 'd>) -> anyhow::Result<()> + 'a;

/// Refuses splits a run cannot use: an empty test split, an empty validation split (unless
/// `--no-validation`).
pub fn check_splits(ds: &Dataset, cfg: &TrainConfig) -> anyhow::Result<()> {
    if ds.test.nnz() == 0 {
        bail!(
            "the test split of {} is empty: there is nothing to evaluate the run on; change \
             --test-ratio",
            ds.name
        );
    }
    if ds.val.nnz() == 0 && !cfg.no_validation {
        bail!(
            "the validation split of {} is empty: nothing selects the best epoch; change \
             --val-ratio, or pass --no-validation to keep the last epoch",
            ds.name
        );
    }
    (cfg.model.spec().check_data)(cfg, ds)
}

/// The training sampler of `cfg` on `ds`.
pub fn sampler_for<'d>(cfg: &TrainConfig, ds: &'d Dataset) -> anyhow::Result<Sampler<'d>> {
    Sampler::new(
        cfg.sampler,
        &ds.train,
        ds.n_items(),
        cfg.batch_size,
        cfg.negatives,
        cfg.seed,
    )?
    .without(ds.cold.as_ref())
}

/// A run's sampler and model, checked against the configuration, the data and the memory plan: built
/// once, before a command writes anything, then turned into a session.
pub struct Prepared<'d> {
    pub sampler: Sampler<'d>,
    pub model: Net<'d>,
    /// Who builds the batches' gradient index, and the measurement behind the choice.
    pub probe: IndexProbe,
}

/// Checks `cfg` against `ds`, measures who should build the gradient index (models that have one), and
/// builds the model, its memory plan checked (a mistyped `--arch` gets one line before the host
/// allocates any weights).
pub fn prepare<'d>(
    ctx: &Arc<GpuContext>,
    ds: &'d Dataset,
    cfg: &TrainConfig,
) -> anyhow::Result<Prepared<'d>> {
    let sampler = checked_sampler(ds, cfg)?;
    let builders = pipeline::default_builders();
    let index_probe = cfg.model.spec().index_probe;
    let probe = match (cfg.batch_index, index_probe) {
        // Only some models (the two-tower ones) have a gradient index the GPU can build.
        (_, None) => IndexProbe {
            strategy: IndexStrategy::Host,
            chosen_by: format!("{} builds its small index on the host", cfg.model),
            host_ms_with_index: 0.0,
            host_ms_without_index: 0.0,
            gpu_index_ms: 0.0,
            builders,
        },
        (IndexChoice::Auto, Some(probe)) => probe(ctx, ds, cfg, &sampler, builders)?,
        (IndexChoice::Host | IndexChoice::Gpu, Some(_)) => IndexProbe {
            strategy: if cfg.batch_index == IndexChoice::Gpu {
                IndexStrategy::Gpu
            } else {
                IndexStrategy::Host
            },
            chosen_by: "requested".into(),
            host_ms_with_index: 0.0,
            host_ms_without_index: 0.0,
            gpu_index_ms: 0.0,
            builders,
        },
    };
    let model = planned_model(ctx, ds, cfg, &sampler, probe.strategy)?;
    Ok(Prepared {
        sampler,
        model,
        probe,
    })
}

/// Everything [`prepare`] checks, without measuring who builds the gradient index (`reproduce` checks
/// every run of its grid so before it trains the first).
pub fn preflight(ctx: &GpuContext, ds: &Dataset, cfg: &TrainConfig) -> anyhow::Result<()> {
    let sampler = checked_sampler(ds, cfg)?;
    planned_model(ctx, ds, cfg, &sampler, IndexStrategy::default()).map(drop)
}

/// `cfg` checked on its own and against `ds`, and its sampler.
fn checked_sampler<'d>(ds: &'d Dataset, cfg: &TrainConfig) -> anyhow::Result<Sampler<'d>> {
    cfg.validate()?;
    check_splits(ds, cfg)?;
    sampler_for(cfg, ds)
}

/// The model of `cfg`, its memory plan checked on `ctx`.
fn planned_model<'d>(
    ctx: &GpuContext,
    ds: &'d Dataset,
    cfg: &TrainConfig,
    sampler: &Sampler<'_>,
    index: IndexStrategy,
) -> anyhow::Result<Net<'d>> {
    let model = model_for(cfg, ds, sampler.max_pairs(), index);
    crate::models::session::memory_plan(&model, Mode::Train, ctx)?;
    Ok(model)
}

/// Optimizer steps an epoch of `cfg` takes with `sampler` (`--max-steps-per-epoch` caps it; a model
/// fitted once takes none).
pub fn epoch_steps(cfg: &TrainConfig, sampler: &Sampler<'_>) -> usize {
    match cfg.max_steps_per_epoch {
        _ if !cfg.model.trains() => 0,
        Some(n) => n.clamp(1, sampler.steps_per_epoch()),
        None => sampler.steps_per_epoch(),
    }
}

impl<'d> Prepared<'d> {
    /// A GPU training session holding freshly initialised (or fitted) parameters.
    pub fn session(
        self,
        ctx: Arc<GpuContext>,
        cfg: &TrainConfig,
    ) -> anyhow::Result<(TrainSession<'d>, Sampler<'d>, IndexProbe)> {
        let weights = self
            .model
            .fitted()
            .unwrap_or_else(|| Weights::init(self.model.params(), cfg.seed));
        let session = gpu_session(ctx, self.model, Mode::Train, &weights, None)?;
        Ok((session, self.sampler, self.probe))
    }
}

/// The sampler and a GPU training session holding freshly initialised parameters for `cfg` on `ds`.
pub fn setup<'d>(
    ctx: Arc<GpuContext>,
    ds: &'d Dataset,
    cfg: &TrainConfig,
) -> anyhow::Result<(TrainSession<'d>, Sampler<'d>, IndexProbe)> {
    prepare(&ctx, ds, cfg)?.session(ctx, cfg)
}

/// Runs one epoch's steps; returns the mean loss. Fails on a non-finite loss, naming the step. Losses
/// come back through non-blocking read-backs every `log_every` steps; the epoch's last step waits for
/// its own.
fn run_epoch(
    session: &mut TrainSession<'_>,
    rx: &mut Pipeline<crate::models::NetBatch>,
    cfg: &TrainConfig,
    epoch: usize,
    steps: usize,
    bar: &ProgressBar,
    progress: bool,
) -> anyhow::Result<f64> {
    let hooks = current_hooks();
    // Without a terminal the bar is invisible: report every tenth of a long epoch as a plain line.
    let plain = progress && !std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut next_report = steps.div_ceil(10);
    let first_t = session.t + 1;
    let mut losses = LossTracker {
        checked: session.t,
        sum: 0.0,
        last: f32::NAN,
    };
    let mut step = 0usize;
    let mut requested = session.t;
    loop {
        match rx.recv()? {
            Item::EpochEnd(_) => break,
            Item::Batch(b) => {
                step += 1;
                let read = step.is_multiple_of(cfg.log_every) || step == steps;
                session.step(&b, read)?;
                crate::util::kill_point("step", session.t);
                if hooks.as_ref().is_some_and(|h| h.step(epoch, step, steps)) {
                    bail!(Interrupted { epoch, step, steps });
                }
                if read {
                    requested = session.t;
                }
                bar.inc(1);
                if losses.take(session.exec.ready_reads()?, epoch, steps, first_t)? {
                    bar.set_message(losses.shown());
                }
                if plain && step >= next_report && step < steps {
                    let rate = step as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let eta = (steps - step) as f64 / rate;
                    eprintln!(
                        "epoch {epoch}: {}% ({step}/{steps} steps) · loss {} · {rate:.1} steps/s · ETA {:.0}s",
                        100 * step / steps,
                        losses.shown(),
                        eta
                    );
                    next_report += steps.div_ceil(10);
                }
            }
        }
    }
    if requested > losses.checked {
        session.exec.wait_read(requested)?;
        losses.take(session.exec.ready_reads()?, epoch, steps, first_t)?;
    }
    anyhow::ensure!(
        losses.checked == session.t,
        "losses of steps {}..={} were not read back",
        losses.checked + 1,
        session.t
    );
    Ok(losses.sum / step.max(1) as f64)
}

/// The losses read back so far in an epoch.
struct LossTracker {
    /// Last optimizer step whose loss was checked.
    checked: u64,
    sum: f64,
    last: f32,
}

impl LossTracker {
    /// The last loss read back, or "…" before the epoch's first read-back.
    fn shown(&self) -> String {
        if self.last.is_nan() {
            "…".into()
        } else {
            format!("{:.4}", self.last)
        }
    }

    /// Takes completed ring read-backs (tagged with the step they were copied at): checks and sums
    /// the losses of the steps not yet seen. Returns whether anything new arrived.
    fn take(
        &mut self,
        reads: Vec<(u64, Vec<u8>)>,
        epoch: usize,
        steps: usize,
        first_t: u64,
    ) -> anyhow::Result<bool> {
        let mut any = false;
        for (upto, bytes) in reads {
            let ring: &[f32] = bytemuck::cast_slice(&bytes);
            debug_assert_eq!(ring.len(), crate::models::LOSS_RING);
            for t in self.checked + 1..=upto {
                let l = ring[crate::models::ring_slot(t)];
                if !l.is_finite() {
                    bail!(
                        "training diverged: loss is {l} at epoch {epoch}, step {} of {steps} (optimizer step {t}); \
                         try a smaller --lr",
                        t - first_t + 1
                    );
                }
                self.sum += l as f64;
                self.last = l;
                any = true;
            }
            self.checked = self.checked.max(upto);
        }
        Ok(any)
    }
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
    let mut s = if r.steps == 0 {
        format!("epoch {:>3}  fitted (no training steps)", r.epoch)
    } else {
        format!(
            "epoch {:>3}  loss {:.5}  {:.1} steps/s  {:.1}s",
            r.epoch, r.loss, r.steps_per_s, r.seconds
        )
    };
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
