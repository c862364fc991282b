//! `cobrar-gpu train`: preprocess and split the data, train with early stopping on validation
//! NDCG@5, evaluate the best epoch on test, and write the run directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::GpuArgs;
use super::data::DatasetArgs;
use crate::data::Dataset;
use crate::eval::Evaluator;
use crate::eval::metrics::{DEFAULT_CUTOFFS, SplitMetrics};
use crate::gpu::context::AdapterSummary;
use crate::models::{Architecture, ModelKind, ParamCounts};
use crate::report::run::{self, DatasetSummary, RunConfig, RunMetrics, Timings};
use crate::rundir::RunDir;
use crate::sampler::SamplerKind;
use crate::train::{self, IndexChoice, TrainConfig};

/// Model and training hyper-parameters (shared by `train` and `grid`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model and training")]
pub struct TrainArgs {
    /// The model: cobrar (one collaborative branch shared by users and items), deepmf (one branch
    /// per side), or the baselines bpr (BPR-MF), lightgcn, multvae and mostpop
    #[arg(long, value_enum, default_value = "cobrar")]
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

    /// CoBraR's and DeepMF's loss: bce (the study's, per pair) or bpr (−ln σ(τ(ŷ_pos − ŷ_neg)) over the
    /// bpr sampler's triples; the paper's future work) [default: bce]
    #[arg(long, value_enum)]
    pub loss: Option<crate::config::LossKind>,

    /// The pairwise loss's temperature τ, in (0, 100]: a cosine lives in [−1, 1], so −ln σ(ŷ_pos −
    /// ŷ_neg) saturates slowly at τ = 1 [default: 1]
    #[arg(long, value_name = "TAU")]
    pub temperature: Option<f32>,

    /// How the embedding tables step (cobrar, deepmf, bpr): adam (the study's: every row, every step)
    /// or lazy-adam (only the rows a batch touches, each with its own step count; the tables' memory
    /// traffic scales with the batch, not the catalog) [default: adam]
    #[arg(long, value_enum)]
    pub optimizer: Option<crate::config::Optimizer>,

    /// cobrar-si: the probability, in [0, 1), that a batch user or item with both interactions and
    /// features loses one of them for the step (either, evenly; SiBraR's modality dropout), so the
    /// shared branch also learns to embed from features alone [default: 0]
    #[arg(long, value_name = "P")]
    pub modality_dropout: Option<f32>,

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
    model.flag_applies(flag)
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
        self.model.refuse_ignored(&[
            ("lr", self.lr.is_some()),
            ("weight-decay", self.weight_decay.is_some()),
            ("mu", self.mu.is_some()),
            ("negatives", self.negatives.is_some()),
            ("loss", self.loss.is_some()),
            ("temperature", self.temperature.is_some()),
            ("optimizer", self.optimizer.is_some()),
            ("modality-dropout", self.modality_dropout.is_some()),
            ("layers", self.layers.is_some()),
            ("anneal-cap", self.anneal_cap.is_some()),
            ("anneal-steps", self.anneal_steps.is_some()),
        ])?;
        let dropout = self.model.dropout(self.dropout)?;
        let loss = self.loss.unwrap_or_default();
        if self.temperature.is_some() && loss != crate::config::LossKind::Bpr {
            anyhow::bail!("--temperature is the pairwise loss's: add --loss bpr, or drop it");
        }
        // The pairwise loss trains on the bpr sampler's triples.
        let sampler = self.sampler.unwrap_or(match loss {
            crate::config::LossKind::Bpr => crate::sampler::SamplerKind::Bpr,
            crate::config::LossKind::Bce => self.model.default_sampler(),
        });
        let arch = self
            .arch
            .clone()
            .unwrap_or_else(|| self.model.default_arch());
        // A model fitted once (MostPop) runs one "epoch" of no steps.
        let epochs = if !self.model.trains() {
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
            loss,
            temperature: self.temperature.unwrap_or(1.0),
            optimizer: self.optimizer.unwrap_or_default(),
            modality_dropout: self.modality_dropout.unwrap_or(0.0),
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
    /// Where the data came from when it is not a --dataset (`config.json`'s `dataset.source`): set by
    /// the Python package for a DataFrame
    #[arg(skip)]
    pub source: Option<String>,
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
        && cmd.train.model.trains()
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

/// Trains on the loaded `ds` and writes the run directory; returns the run's metrics.
pub fn execute(
    cmd: &TrainCommand,
    gpu: &GpuArgs,
    ds: &Dataset,
    started: Instant,
) -> anyhow::Result<RunMetrics> {
    let cfg = cmd.train.config()?;
    let ctx = gpu.context()?;
    let prepared = train::prepare(&ctx, ds, &cfg)?;
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
        .source
        .clone()
        .or_else(|| cmd.dataset.dataset.clone())
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
        parameters: ParamCounts::of(&cfg, ds),
        adapter: AdapterSummary::from(&ctx.info),
    };
    // Validated: from here on the run directory is written (created whole, or not at all).
    let dir = RunDir::create(&out, existing, config, ds, started)?;
    run_training(dir, ds, ctx, prepared, None, (cmd.quiet, !cmd.no_summary))
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
    let (run_dir, swept) = RunDir::open_unfinished(dir, started)?;
    let ds = run_dir.dataset()?;
    let ctx = gpu.context()?;
    let prepared = train::prepare(&ctx, &ds, &run_dir.config().train)?;
    if selftest {
        selftest_first(&ctx)?;
    }
    let progress = run_dir.progress(&ds)?;
    eprintln!(
        "resuming {} in {} after epoch {}{}",
        run_dir.config().label(),
        dir.display(),
        progress.as_ref().map_or(0, |p| p.epoch),
        if swept > 0 {
            format!(" ({swept} half-written file(s) of the interrupted run removed)")
        } else {
            String::new()
        }
    );
    run_training(run_dir, &ds, ctx, prepared, progress, (quiet, summary))
}

/// Trains (from scratch or from `start`), checkpointing every epoch, then evaluates the best epoch on
/// test and writes the reports.
fn run_training<'d>(
    mut dir: RunDir,
    ds: &'d Dataset,
    ctx: std::sync::Arc<crate::gpu::GpuContext>,
    prepared: train::Prepared<'d>,
    start: train::Start,
    (quiet, summary): (bool, bool),
) -> anyhow::Result<RunMetrics> {
    let config = dir.config().clone();
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
    for side in [
        crate::data::FeatureSide::Users,
        crate::data::FeatureSide::Items,
    ] {
        if let Some(f) = ds.features.side(side) {
            let n = ds.ids(side).len();
            eprintln!("  side information: {}", f.summary(side, n));
        }
    }
    if let Some(c) = &ds.cold {
        eprintln!(
            "  cold start: {} {} held out (none of their interactions in training); `cobrar-gpu \
             evaluate --checkpoint {}` ranks the warm and the cold test apart",
            c.len(),
            c.side.noun(),
            dir.path().display()
        );
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
        dir.path().display()
    );
    dir.begin(&start)?;
    let outcome = train::train_prepared(ctx, prepared, ds, cfg, !quiet, start, &mut |e| {
        dir.on_epoch(e)
    })
    .map_err(|e| dir.training_error(e))?;
    let mut session = outcome.session;

    // Test (and the best epoch's validation) metrics from the best weights.
    let t = Instant::now();
    session.embed_all()?;
    let mut evaluator = Evaluator::new(&cfg.cutoffs)?;
    let test = evaluator.evaluate_session(&mut session, &ds.test, ds)?;
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
            total_seconds: dir.wall_seconds(),
            mean_steps_per_s: steps as f64 / outcome.train_seconds.max(1e-9),
            processes: dir.processes(),
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
    dir.finish(
        ds,
        &metrics,
        &test.result.per_user,
        &test.top,
        &outcome.history,
    )?;
    if summary {
        print_summary(dir.path(), &metrics)?;
    }
    Ok(metrics)
}

/// `runs/DATASET-MODEL-TIME`: where a run goes without `--out`.
pub fn default_run_dir(dataset: &str, model: ModelKind) -> PathBuf {
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
