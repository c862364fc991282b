//! `cobrar-gpu train`: preprocess and split the data, train with early stopping on validation
//! NDCG@5, evaluate the best epoch on test, and write the run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::GpuArgs;
use super::data::DatasetArgs;
use crate::checkpoint;
use crate::checkpoint::state;
use crate::data::Dataset;
use crate::eval::Evaluator;
use crate::eval::metrics::{DEFAULT_CUTOFFS, SplitMetrics};
use crate::gpu::context::AdapterSummary;
use crate::models::{Architecture, ModelKind, ParamCounts};
use crate::report::run::{self, DatasetSummary, RunConfig, RunMetrics, Timings};
use crate::report::{plot, table};
use crate::rundir::{self, RunLock};
use crate::sampler::SamplerKind;
use crate::train::{self, IndexChoice, TrainConfig};
use crate::util::write_atomic;

/// Model and training hyper-parameters (shared by `train` and `grid`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model and training")]
pub struct TrainArgs {
    /// The model: cobrar (one collaborative branch shared by users and items), deepmf (one branch
    /// per side), or the baselines bpr (BPR-MF), lightgcn, multvae and mostpop
    #[arg(long, value_enum, default_value_t = ModelKind::Cobrar)]
    pub model: ModelKind,

    /// Layer widths: projection width, hidden layers, embedding size — "2048,128" (shallow) or
    /// "512,512,256,256,128" (deep); for bpr and lightgcn the embedding size alone; for multvae the
    /// hidden width and the latent size. Multiples of 4 [default: 512,64; 64 for bpr and lightgcn;
    /// 600,200 for multvae]
    #[arg(long, value_name = "WIDTHS")]
    pub arch: Option<Architecture>,

    /// Dropout after every branch layer (cobrar) or on the input's entries (multvae) [default: 0.1
    /// for cobrar, 0.5 for multvae, 0 otherwise]
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    pub dropout: Option<f32>,

    /// Adam learning rate (every model but mostpop) [default: 1e-3]
    #[arg(long, value_name = "LR")]
    #[arg(allow_negative_numbers = true)]
    pub lr: Option<f64>,

    /// L2 regularisation λ: added to every gradient (PyTorch Adam weight_decay); for bpr, the
    /// (λ/2)·‖row‖² term on the rows each batch uses (every model but mostpop) [default: 1e-3]
    #[arg(
        long = "weight-decay",
        alias = "lambda",
        alias = "reg",
        value_name = "λ"
    )]
    #[arg(allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,

    /// Lower clamp μ of the predicted score before the loss (cobrar, deepmf) [default: 1e-4]
    #[arg(long, value_name = "MU")]
    #[arg(allow_negative_numbers = true)]
    pub mu: Option<f32>,

    /// Negatives sampled per positive (cobrar, deepmf) [default: 5]
    #[arg(long, alias = "neg", value_name = "N")]
    pub negatives: Option<usize>,

    /// Positives per step (alg1) or samples per step (authors)
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub batch_size: usize,

    /// alg1: the paper's Algorithm 1; authors: the released code's sampler; bpr: (user, positive,
    /// negative) triples; users: whole users [default: bpr for bpr and lightgcn, users for multvae,
    /// alg1 otherwise]
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,

    /// LightGCN's propagation layers K (1 to 4) [default: 3]
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,

    /// MultVAE's final KL weight β, in [0, 1] [default: 0.2]
    #[arg(long, value_name = "BETA")]
    pub anneal_cap: Option<f32>,

    /// MultVAE's annealing: β = min(cap, (t − 1) / N) at update t, so it grows by 1/N an update and
    /// stays at the cap after cap·N updates (40,000 with the defaults) [default: 200000]
    #[arg(long, value_name = "N")]
    pub anneal_steps: Option<u64>,

    /// Maximum number of epochs [default: 100; `train` on the embedded dataset: 20]
    #[arg(long, alias = "max-epochs", value_name = "N")]
    pub epochs: Option<usize>,

    /// Stop after this many epochs without a better validation NDCG@5 (0: never stop early)
    /// [default: 10; `train` on the embedded dataset: 5]
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,

    /// Seed of initialisation, sampling and dropout
    #[arg(long, value_name = "SEED", default_value_t = 42)]
    pub seed: u64,

    /// Evaluation cutoffs
    #[arg(long, value_name = "K,K,…", value_delimiter = ',', default_values_t = DEFAULT_CUTOFFS.to_vec())]
    pub cutoffs: Vec<usize>,

    /// Cutoff of the validation NDCG that selects the best epoch
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub select_k: usize,

    /// Steps between loss read-backs (progress, divergence check)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub log_every: usize,

    /// End each epoch after N steps (quick smoke runs and timing; the study uses whole epochs)
    #[arg(long, value_name = "N")]
    pub max_steps_per_epoch: Option<usize>,

    /// Train without a validation split (no model selection: the last epoch is kept)
    #[arg(long)]
    pub no_validation: bool,

    /// Who builds each batch's gradient index: measure both at start-up (auto), the host's batch
    /// builders, or the GPU from the resident training data. The results are identical
    #[arg(long, value_enum, default_value_t = IndexChoice::Auto)]
    pub batch_index: IndexChoice,
}

/// Whether `train` flag `flag` (its long name) means anything for `model` (`reproduce` gives a
/// model only the shared `[train]` flags it uses; on the command line the others are refused).
pub fn flag_applies(model: ModelKind, flag: &str) -> bool {
    use ModelKind::*;
    match flag {
        "lr" | "weight-decay" | "lambda" | "reg" => model != Mostpop,
        "mu" | "negatives" | "neg" => matches!(model, Cobrar | Deepmf),
        "dropout" => matches!(model, Cobrar | Multvae),
        "layers" => model == Lightgcn,
        "anneal-cap" | "anneal-steps" => model == Multvae,
        _ => true,
    }
}

/// A flag the chosen model has no use for ([`flag_applies`]): one line saying so, instead of silently
/// ignoring it. `given`: (long name, whether it was given).
fn refuse_ignored(model: ModelKind, given: &[(&str, bool)]) -> anyhow::Result<()> {
    let why = match model {
        ModelKind::Mostpop => "mostpop is fitted from training counts: nothing is learned",
        ModelKind::Bpr | ModelKind::Lightgcn => {
            "it trains on the bpr sampler's (user, positive, negative) triples with the BPR loss"
        }
        ModelKind::Multvae => "it trains on whole users with a multinomial likelihood",
        ModelKind::Cobrar | ModelKind::Deepmf => "",
    };
    if let Some((flag, _)) = given
        .iter()
        .find(|(flag, g)| *g && !flag_applies(model, flag))
    {
        anyhow::bail!("--{flag} does not apply to {model}: {why}; drop it");
    }
    Ok(())
}

/// The study's stopping rule: at most 100 epochs, 10 without a better validation NDCG.
pub const DEFAULT_MAX_EPOCHS: usize = 100;
pub const DEFAULT_PATIENCE: usize = 10;

/// `train`'s stopping rule on the embedded dataset (README's first command), where the study's is
/// long for what it shows: validation NDCG@5 is within 0.002 of its best by epoch 5 and then moves
/// by epoch-to-epoch noise, so patience 10 trains 27 epochs (about six to ten minutes on a 2-core
/// machine with the software driver) for nothing a newcomer can see; patience 5 stops after 10,
/// patience 3 already after 4, on epoch 1's early peak (RESULTS.md has the three runs).
pub const EMBEDDED_MAX_EPOCHS: usize = 20;
pub const EMBEDDED_PATIENCE: usize = 5;

impl TrainArgs {
    /// The embedded dataset's stopping rule where `--epochs` / `--patience` were not given; returns
    /// whether either default was applied (for a note).
    pub fn embedded_defaults(&mut self) -> bool {
        let applied = self.epochs.is_none() || self.patience.is_none();
        self.epochs.get_or_insert(EMBEDDED_MAX_EPOCHS);
        self.patience.get_or_insert(EMBEDDED_PATIENCE);
        applied
    }

    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        refuse_ignored(
            self.model,
            &[
                ("lr", self.lr.is_some()),
                ("weight-decay", self.weight_decay.is_some()),
                ("mu", self.mu.is_some()),
                ("negatives", self.negatives.is_some()),
            ],
        )?;
        let dropout = match (self.model, self.dropout) {
            (ModelKind::Cobrar, d) => d.unwrap_or(0.1),
            (ModelKind::Multvae, d) => d.unwrap_or(0.5),
            (ModelKind::Deepmf, Some(d)) if d > 0.0 => {
                anyhow::bail!("DeepMF trains without dropout (as in the study); drop --dropout")
            }
            (_, d) => d.unwrap_or(0.0), // validated below: only CoBraR has dropout
        };
        if self.layers.is_some() && self.model != ModelKind::Lightgcn {
            anyhow::bail!(
                "--layers is LightGCN's; {} has no propagation layers",
                self.model
            );
        }
        if (self.anneal_cap.is_some() || self.anneal_steps.is_some())
            && self.model != ModelKind::Multvae
        {
            anyhow::bail!(
                "--anneal-cap and --anneal-steps are MultVAE's; {} has no KL term",
                self.model
            );
        }
        let sampler = self.sampler.unwrap_or(match self.model {
            ModelKind::Bpr | ModelKind::Lightgcn => SamplerKind::Bpr,
            ModelKind::Multvae => SamplerKind::Users,
            _ => SamplerKind::Alg1,
        });
        let arch = self
            .arch
            .clone()
            .unwrap_or_else(|| self.model.default_arch());
        // MostPop is fitted once: one "epoch" that runs no steps.
        let epochs = if self.model == ModelKind::Mostpop {
            1
        } else {
            self.epochs.unwrap_or(DEFAULT_MAX_EPOCHS)
        };
        let mut cutoffs = self.cutoffs.clone();
        if !cutoffs.contains(&self.select_k) {
            cutoffs.push(self.select_k);
        }
        cutoffs.sort_unstable();
        cutoffs.dedup();
        Ok(TrainConfig {
            model: self.model,
            arch,
            dropout,
            lr: self.lr.unwrap_or(1e-3),
            weight_decay: self.weight_decay.unwrap_or(1e-3),
            mu: self.mu.unwrap_or(1e-4),
            negatives: self.negatives.unwrap_or(5),
            batch_size: self.batch_size,
            sampler,
            max_epochs: epochs,
            patience: self.patience.unwrap_or(DEFAULT_PATIENCE),
            seed: self.seed,
            cutoffs,
            select_k: self.select_k,
            log_every: self.log_every,
            max_steps_per_epoch: self.max_steps_per_epoch,
            no_validation: self.no_validation,
            batch_index: self.batch_index,
            anneal_cap: self.anneal_cap.unwrap_or(crate::train::DEFAULT_ANNEAL_CAP),
            anneal_steps: self
                .anneal_steps
                .unwrap_or(crate::train::DEFAULT_ANNEAL_STEPS),
            layers: self.layers.unwrap_or(train::DEFAULT_LAYERS),
        })
        .and_then(|c| c.validate().map(|()| c))
    }
}

#[derive(Debug, Args)]
pub struct TrainCommand {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Run directory for the checkpoint, metrics and reports [default: runs/DATASET-MODEL-TIME]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the run (or other files) already in --out
    #[arg(long)]
    pub overwrite: bool,
    /// Continue the interrupted run in DIR from its last completed epoch, with its own configuration
    /// (no other model or data flags); ends exactly as an uninterrupted run would
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "overwrite"])]
    pub resume: Option<PathBuf>,
    /// No progress bar or epoch lines (errors and the final summary still print)
    #[arg(long, short)]
    pub quiet: bool,
    /// Run the full selftest on the adapter first; a failing check stops before anything is written
    /// (exit status 1). Without it, metrics.json still records whether this adapter, driver and
    /// binary passed a selftest earlier
    #[arg(long)]
    pub selftest: bool,
    /// No final summary on stdout either: set by commands that train many runs and print their own
    /// report (`reproduce`)
    #[arg(skip)]
    pub no_summary: bool,
}

/// Flags of `train` that `--resume` accepts beside itself (the run's configuration is its own).
const RESUME_FLAGS: &[&str] = &["resume", "quiet", "adapter", "selftest"];

pub fn run(cmd: TrainCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(dir) = &cmd.resume {
        reject_flags_beside_resume()?;
        return resume(dir, cmd.quiet, true, cmd.selftest, gpu, started).map(|_| ());
    }
    let mut cmd = cmd;
    if cmd.dataset.is_embedded()
        && cmd.train.model != ModelKind::Mostpop
        && cmd.train.embedded_defaults()
        && !cmd.quiet
    {
        let (e, p) = (cmd.train.epochs, cmd.train.patience);
        eprintln!(
            "embedded dataset: at most {} epochs, patience {} (its own defaults, for a quick first \
             run; --epochs and --patience set them)",
            e.unwrap_or_default(),
            p.unwrap_or_default()
        );
    }
    cmd.train.config()?; // flag errors before the data loads
    let ds = cmd.dataset.load()?;
    execute(&cmd, gpu, &ds, started)?;
    Ok(())
}

/// `--resume` takes the run's own configuration: any other model or data flag on the command line is
/// a mistake worth one clear line.
fn reject_flags_beside_resume() -> anyhow::Result<()> {
    use clap::CommandFactory;
    use clap::parser::ValueSource;
    let Ok(matches) = super::Cli::command().try_get_matches_from(std::env::args_os()) else {
        return Ok(()); // not called from the command line (tests, library use)
    };
    let Some(("train", sub)) = matches.subcommand() else {
        return Ok(());
    };
    // Only arguments: the flattened structs' groups (`TrainArgs`, `DatasetArgs`) have ids too.
    let command = super::Cli::command();
    let args: Vec<String> = command
        .find_subcommand("train")
        .map(|c| {
            c.get_arguments()
                .map(|a| a.get_id().as_str().to_string())
                .collect()
        })
        .unwrap_or_default();
    let given: Vec<String> = sub
        .ids()
        .map(|id| id.as_str().to_string())
        .filter(|id| {
            args.contains(id)
                && !RESUME_FLAGS.contains(&id.as_str())
                && sub.value_source(id) == Some(ValueSource::CommandLine)
        })
        .collect();
    if !given.is_empty() {
        anyhow::bail!(
            "--resume continues a run with its own configuration; drop {}",
            given
                .iter()
                .map(|g| format!("--{}", g.replace('_', "-")))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Everything that must hold before a run directory is touched: flags, data, the memory plan.
pub fn preflight(
    cfg: &TrainConfig,
    ds: &Dataset,
    ctx: &crate::gpu::GpuContext,
) -> anyhow::Result<()> {
    train::check_splits(ds, cfg)?;
    let sampler = train::sampler_for(cfg, ds)?;
    let model = train::model_for(cfg, ds, sampler.max_pairs());
    crate::models::session::memory_plan(&model, crate::models::Mode::Train, ctx)?;
    Ok(())
}

/// Trains on the loaded `ds` and writes the run directory; returns the run's metrics.
pub fn execute(
    cmd: &TrainCommand,
    gpu: &GpuArgs,
    ds: &Dataset,
    started: Instant,
) -> anyhow::Result<RunMetrics> {
    let cfg = cmd.train.config()?;
    let ctx = gpu.context()?;
    preflight(&cfg, ds, &ctx)?;
    let out = match &cmd.out {
        Some(d) => d.clone(),
        None => default_run_dir(&ds.name, cfg.model),
    };
    let inputs: Vec<&Path> = cmd.dataset.dataset.iter().map(Path::new).collect();
    let (out, existing) = crate::output::dir(&out, "--out", cmd.overwrite, &inputs)?;
    if cmd.selftest {
        selftest_first(&ctx)?;
    }
    let source = cmd
        .dataset
        .dataset
        .clone()
        .unwrap_or_else(|| "embedded synthetic dataset".to_string());
    let config = RunConfig {
        program: "cobrar-gpu".into(),
        version: run::version(),
        git_revision: run::git_revision(),
        train: cfg.clone(),
        dataset: DatasetSummary {
            name: ds.name.clone(),
            source,
            users: ds.n_users(),
            items: ds.n_items(),
            train: ds.train.nnz(),
            val: ds.val.nnz(),
            test: ds.test.nnz(),
        },
        parameters: ParamCounts::new(cfg.model, &cfg.arch, ds.n_users(), ds.n_items()),
        adapter: AdapterSummary::from(&ctx.info),
    };
    // Validated: from here on the run directory is written (created whole, or not at all).
    let _lock = rundir::create_run(&out, existing, |dir| {
        checkpoint::save_ids(dir, &ds.user_ids, &ds.item_ids)?;
        crate::data::write_split(ds, &dir.join(run::SPLIT_DIR))?;
        // config.json last: its presence marks a run directory that `--resume` can continue.
        run::write_json(&dir.join(run::CONFIG_FILE), &config)
    })?;
    run_training(
        &out,
        &config,
        ds,
        ctx,
        None,
        (cmd.quiet, !cmd.no_summary),
        started,
    )
}

/// `--selftest`: the full selftest on `ctx`; a failing check ends the command (status 1).
fn selftest_first(ctx: &std::sync::Arc<crate::gpu::GpuContext>) -> anyhow::Result<()> {
    let flag = ctx.info.backend.to_string().to_lowercase();
    super::selftest::must_pass(
        ctx,
        false,
        &flag,
        "nothing was trained: results from this adapter would not be trustworthy",
    )?;
    Ok(())
}

/// Continues the interrupted run in `dir`.
pub fn resume(
    dir: &Path,
    quiet: bool,
    summary: bool,
    selftest: bool,
    gpu: &GpuArgs,
    started: Instant,
) -> anyhow::Result<RunMetrics> {
    match rundir::inspect(dir)? {
        rundir::Existing::FinishedRun => anyhow::bail!(
            "{} holds a finished run (metrics.json): there is nothing to resume",
            dir.display()
        ),
        rundir::Existing::UnfinishedRun => {}
        rundir::Existing::Unstarted => anyhow::bail!(
            "{d}: the run was interrupted while its directory was being created (no config.json): \
             nothing was trained; run the same `cobrar-gpu train … --out {d}` again",
            d = dir.display()
        ),
        _ => anyhow::bail!(
            "{}: not a run directory (no config.json and split/): nothing to resume",
            dir.display()
        ),
    }
    let _lock = RunLock::acquire(dir)?;
    let swept = rundir::sweep_temporaries(dir);
    let config = RunConfig::load(dir)?;
    let ds = checkpoint::load_dataset(dir, &config)?;
    let ctx = gpu.context()?;
    preflight(&config.train, &ds, &ctx)?;
    if selftest {
        selftest_first(&ctx)?;
    }
    let layout = std::sync::Arc::new(train::param_layout(
        &config.train,
        ds.n_users(),
        ds.n_items(),
    ));
    let progress = state::load(dir, &layout)?;
    eprintln!(
        "resuming {} in {} after epoch {}{}",
        config.label(),
        dir.display(),
        progress.as_ref().map_or(0, |p| p.epoch),
        if swept > 0 {
            format!(" ({swept} half-written file(s) of the interrupted run removed)")
        } else {
            String::new()
        }
    );
    run_training(dir, &config, &ds, ctx, progress, (quiet, summary), started)
}

/// Trains (from scratch or from `start`), checkpointing every epoch, then evaluates the best epoch on
/// test and writes the reports.
fn run_training(
    out: &Path,
    config: &RunConfig,
    ds: &Dataset,
    ctx: std::sync::Arc<crate::gpu::GpuContext>,
    start: train::Start,
    (quiet, summary): (bool, bool),
    started: Instant,
) -> anyhow::Result<RunMetrics> {
    let cfg = &config.train;
    let counts = config.parameters;
    let adapter = AdapterSummary::from(&ctx.info);
    let selftest = crate::selftest::cache::lookup(&crate::selftest::AdapterIdentity::of(&ctx));
    eprintln!(
        "{}: {} users, {} items, {} train / {} validation / {} test interactions",
        ds.name,
        ds.n_users(),
        ds.n_items(),
        ds.train.nnz(),
        ds.val.nnz(),
        ds.test.nnz()
    );
    for note in ds.dropped_records() {
        eprintln!("  {note}");
    }
    eprintln!(
        "{}: {}",
        config.label(),
        counts.describe(config.train.model)
    );
    eprintln!(
        "adapter: {} ({}, {:?}); writing to {}",
        ctx.info.name,
        ctx.info.backend,
        ctx.info.device_type,
        out.display()
    );
    let log_path = out.join(run::TRAIN_LOG_FILE);
    let weights_path = out.join(checkpoint::WEIGHTS_FILE);
    // Wall time and processes of the run's earlier processes (a resumed run).
    let (earlier_wall, processes) = start
        .as_ref()
        .map_or((0.0, 1), |p| (p.wall_seconds, p.processes + 1));
    if let Some(p) = &start {
        // The committed state is authoritative: the log and the best weights follow it.
        run::write_train_log(&log_path, &p.history)?;
        if let Some((_, e, w)) = &p.best {
            checkpoint::save_weights(&weights_path, w, &weights_metadata(cfg, &ds.name, *e))?;
        }
    }
    // Every epoch commits a resumable state, then the log and, for a new best, the weights — so an
    // interrupted run still leaves a usable checkpoint and `--resume` continues it exactly.
    let mut on_epoch = |e: train::EpochEnd<'_, '_>| -> anyhow::Result<()> {
        let (m, v) = e.session.read_moments()?;
        let progress = state::Progress {
            epoch: e.record.epoch,
            t: e.session.t,
            weights: e.session.read_weights()?,
            m,
            v,
            history: e.history.to_vec(),
            best: Some(e.best.clone()),
            wall_seconds: earlier_wall + started.elapsed().as_secs_f64(),
            processes,
        };
        state::save(out, &progress, e.new_best)?;
        run::write_train_log(&log_path, e.history)?;
        if e.new_best {
            checkpoint::save_weights(
                &weights_path,
                &e.best.2,
                &weights_metadata(cfg, &ds.name, e.best.1),
            )?;
        }
        Ok(())
    };
    let outcome = train::train(ctx, ds, cfg, !quiet, start, &mut on_epoch).map_err(|e| {
        let resumable = out.join(state::STATE_DIR).exists();
        let diverged = e.to_string().contains("diverged");
        if resumable && !diverged {
            e.context(format!(
                "training stopped; the last completed epoch is saved: continue with \
                 `cobrar-gpu train --resume {}`",
                out.display()
            ))
        } else {
            e
        }
    })?;
    let mut session = outcome.session;

    // Test (and the best epoch's validation) metrics from the best weights.
    let t = Instant::now();
    session.embed_all()?;
    let mut evaluator = Evaluator::new(&cfg.cutoffs)?;
    let test = evaluator.evaluate_session(&session, &ds.test, ds)?;
    let test_seconds = t.elapsed().as_secs_f64();
    let best = &outcome.history[outcome.best_epoch - 1];

    let steps: usize = outcome.history.iter().map(|r| r.steps).sum();
    let metrics = RunMetrics {
        dataset: ds.name.clone(),
        model: cfg.model.to_string(),
        label: config.label(),
        best_epoch: outcome.best_epoch,
        epochs_run: outcome.history.len(),
        stopped_early: outcome.stopped_early,
        validation: best.validation.clone(),
        test: SplitMetrics::from(&test.result),
        timings: Timings {
            train_seconds: outcome.train_seconds,
            validation_seconds: outcome.eval_seconds,
            test_seconds,
            total_seconds: earlier_wall + started.elapsed().as_secs_f64(),
            mean_steps_per_s: steps as f64 / outcome.train_seconds.max(1e-9),
            processes,
        },
        adapter,
        version: run::version(),
        git_revision: run::git_revision(),
        hyperparameters: cfg.clone(),
        parameters: counts,
        batch_pipeline: Some(outcome.batch_pipeline.clone()),
        selftest,
        split_hash: Some(ds.content_hash()),
    };
    table::write_user_metrics(
        &out.join(table::USER_METRICS_FILE),
        &ds.user_ids,
        &test.result.per_user,
    )?;
    let recs = run::recommendations_tsv(&test.top, &ds.user_ids, &ds.item_ids);
    write_atomic(&out.join(run::RECOMMENDATIONS_FILE), recs.as_bytes())?;
    let losses: Vec<f64> = outcome.history.iter().map(|r| r.loss).collect();
    let ndcg: Vec<Option<f64>> = outcome
        .history
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
        config.label(),
        ds.name,
        metrics.adapter.name
    );
    let svg = plot::training_curve(&title, &losses, &ndcg, cfg.select_k, outcome.best_epoch)?;
    write_atomic(&out.join(run::CURVE_FILE), svg.as_bytes())?;
    // metrics.json last: its presence marks a finished run, which needs no resumable state.
    run::write_json(&out.join(table::METRICS_FILE), &metrics)?;
    let _ = std::fs::remove_dir_all(out.join(state::STATE_DIR));
    if summary {
        print_summary(out, &metrics)?;
    }
    Ok(metrics)
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

fn default_run_dir(dataset: &str, model: ModelKind) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new("runs").join(format!("{name}-{model}-{secs}"))
}

/// The final lines: best epoch and every test metric at every cutoff.
fn print_summary(out: &Path, m: &RunMetrics) -> anyhow::Result<()> {
    outln!(
        "{} on {}: best epoch {} of {}{}; {:.1}s training, {:.1} steps/s",
        m.label,
        m.dataset,
        m.best_epoch,
        m.epochs_run,
        if m.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        m.timings.train_seconds,
        m.timings.mean_steps_per_s
    );
    outln!("{}", metrics_table("test", &m.test));
    outln!("run directory: {}", out.display());
    Ok(())
}

/// A small text table of one split's metrics at every cutoff.
pub fn metrics_table(split: &str, m: &SplitMetrics) -> String {
    let mut s = format!(
        "{split} ({} users)\n   k    NDCG  Recall  Precision  HitRate     MRR       ARP  Coverage    PopRSP",
        m.users
    );
    for c in &m.cutoffs {
        s.push_str(&format!(
            "\n{:>4}  {:.4}  {:.4}     {:.4}   {:.4}  {:.4}  {:>8.2}  {:>5} ({:.1}%)  {:.4}",
            c.k,
            c.ndcg,
            c.recall,
            c.precision,
            c.hit_rate,
            c.mrr,
            c.arp,
            c.coverage,
            c.coverage_pct,
            c.poprsp
        ));
    }
    s
}
