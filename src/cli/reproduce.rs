//! `cobrar-gpu reproduce --dataset D --out DIR [--grid fast|paper|study|FILE.toml] [--models …]`: the
//! study in one command. Every model's grid is trained with the study's protocol (selection on
//! validation NDCG@5, early stopping), every run kept under `DIR/runs/`, and the reports written:
//! Table 2 (markdown and CSV, significance after Bonferroni), the parameter counts, the timing table
//! that answers the open question (does CoBraR's shared branch need longer training than DeepMF's two?),
//! every run's numbers, and `report.md` tying them together.
//!
//! A run's directory is named by a hash of its configuration and dataset flags, so an interrupted
//! `reproduce` continues where it stopped: a finished run is never trained twice, an interrupted one
//! resumes from its last completed epoch, and only the rest is trained.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser};
use sha2::{Digest, Sha256};

use super::GpuArgs;
use super::data::DatasetArgs;
use super::grid::{combinations, describe, flag_args};
use super::train::{TrainArgs, TrainCommand};
use crate::models::arch::group_digits;
use crate::models::{ModelKind, STUDY_PAIR, registry};
use crate::report::run::{RunConfig, RunMetrics};
use crate::report::table;
use crate::train::{EpochRecord, TrainConfig};
use crate::util::write_atomic;

#[derive(Debug, Args)]
pub struct ReproduceCommand {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Folder for every run (`runs/`) and the reports
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The grid: fast (small machines), paper (the study's printed grid), study (the paper's grid
    /// with lr 1e-3/1e-4), or a TOML file of the same form (see grids/ in the repository)
    #[arg(long, value_name = "GRID", default_value = "fast")]
    pub grid: String,
    /// Only these models (comma-separated) [default: every model in the grid]
    #[arg(long, value_name = "MODEL,…", value_delimiter = ',')]
    pub models: Option<Vec<ModelKind>>,
    /// List the runs (and which are finished) and exit
    #[arg(long)]
    pub dry_run: bool,
    /// Use an output folder that holds files reproduce did not write (they stay; its own reports are
    /// replaced)
    #[arg(long)]
    pub overwrite: bool,
    /// Train only share I of N of the grid's runs (runs I, I+N, I+2N, … in grid order; 1 ≤ I ≤ N), for
    /// a job array or GNU parallel over one shared --out (e.g. `--shard $SLURM_ARRAY_TASK_ID/4`); the
    /// reports are written by whichever shard finishes the grid's last run, or by `--collect`
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "collect")]
    pub shard: Option<Shard>,
    /// Train nothing: write the reports from the grid's finished runs and list the missing ones
    #[arg(long)]
    pub collect: bool,
    /// Train on these adapters at once (comma-separated names or indices of `cobrar-gpu adapters`, or
    /// `all`: every adapter of the kind and backend `auto` picks), one worker each taking the next
    /// unfinished run [default: --adapter's one]
    #[arg(long, value_name = "ADAPTER,…", value_delimiter = ',')]
    pub devices: Option<Vec<String>>,
    /// Runs at once on each adapter (small models leave a large GPU mostly idle; each run needs its
    /// own memory plan's bytes on the adapter)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Train nothing: write a job script for a scheduler into --out (`slurm`: reproduce.sbatch, a job
    /// array of --shards tasks, each this command with --shard I/N) and say how to submit it
    #[arg(long, value_enum, value_name = "SCHEDULER", conflicts_with_all = ["shard", "collect", "dry_run", "devices"])]
    pub emit: Option<Emit>,
    /// With --emit: the array's tasks [default: one per run to train, at most 64]
    #[arg(long, value_name = "N", requires = "emit", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shards: Option<u32>,
    /// With --emit slurm: GPUs each task requests (--gres=gpu:N; 0: none)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "emit")]
    pub gpus_per_task: u32,
    /// With --emit slurm: each task's time limit (Slurm's form: 12:00:00, 2-00:00:00 …)
    #[arg(long, value_name = "TIME", default_value = "1-00:00:00", requires = "emit", value_parser = super::slurm::parse_time)]
    pub time: String,
}

/// The schedulers `--emit` writes a job script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Slurm,
}

/// Flags of `reproduce` that describe the emitted script, not the study (left out of its command).
const EMIT_FLAGS: &[&str] = &["--emit", "--shards", "--gpus-per-task", "--time"];

/// A share of a grid: the runs whose 0-based position p has p mod `of` = `index` − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub of: usize,
}

impl Shard {
    fn takes(&self, position: usize) -> bool {
        position % self.of == self.index - 1
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("{s:?}: expected I/N with 1 ≤ I ≤ N (e.g. 2/4)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, of) = (
        i.trim().parse::<usize>().map_err(|_| bad())?,
        n.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if index == 0 || index > of {
        return Err(bad());
    }
    Ok(Shard { index, of })
}

/// The record of what reproduce wrote into its output folder: a later run (the same study
/// continued) may replace those files, and nothing else there.
const MANIFEST: &str = ".cobrar-gpu-reproduce.json";

/// The reports reproduce writes beside `runs/`.
const REPORT_FILES: &[&str] = &[
    "table2.md",
    "table2.csv",
    "parameters.md",
    "timing.md",
    "runs.md",
    "report.md",
    "figure2.svg",
    "figure2.png",
];

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Manifest {
    program: String,
    /// Files and folders reproduce wrote (relative to the output folder).
    written: Vec<String>,
}

/// Checks the output folder: missing, empty, or holding only what reproduce wrote there before (its
/// manifest says what); anything else needs `--overwrite`. Files, special files and run directories'
/// own folders are refused (`output::folder`).
fn check_out(dir: &Path, overwrite: bool) -> anyhow::Result<()> {
    let target = crate::output::folder(dir, "--out")?;
    if !target.exists() {
        return Ok(());
    }
    let manifest = read_manifest(&target);
    let foreign: Vec<String> = std::fs::read_dir(&target)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != MANIFEST && !crate::util::is_temporary(n) && !manifest.written.contains(n))
        .collect();
    if !foreign.is_empty() && !overwrite {
        bail!(
            "--out {} holds files reproduce did not write ({}); choose another folder, or pass \
             --overwrite to write its reports there anyway",
            dir.display(),
            foreign.join(", ")
        );
    }
    Ok(())
}

/// Records that reproduce wrote `names` into `dir` (beside what it recorded before).
fn record(dir: &Path, names: &[&str]) -> anyhow::Result<()> {
    let mut m = read_manifest(dir);
    m.program = "cobrar-gpu reproduce".into();
    for n in names {
        if !m.written.iter().any(|w| w == n) {
            m.written.push(n.to_string());
        }
    }
    crate::report::run::write_json(&dir.join(MANIFEST), &m)
}

/// The manifest in `dir`; empty when there is none (or it is unreadable: then nothing there is
/// reproduce's).
fn read_manifest(dir: &Path) -> Manifest {
    std::fs::read_to_string(dir.join(MANIFEST))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The grids built into the binary: name, file text.
const GRIDS: [(&str, &str); 3] = [
    ("fast", include_str!("../../grids/fast.toml")),
    ("paper", include_str!("../../grids/paper.toml")),
    ("study", include_str!("../../grids/study.toml")),
];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    /// Flags of every run.
    #[serde(default)]
    train: BTreeMap<String, toml::Value>,
    /// Per model: its flags; a list is a grid over its values.
    #[serde(default)]
    models: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

/// `train`'s model and training flags, parsed from a grid line as if typed on the command line.
#[derive(Debug, Parser)]
struct TrainOnly {
    #[command(flatten)]
    train: TrainArgs,
}

/// One run of the study.
#[derive(Clone)]
pub struct Planned {
    pub model: ModelKind,
    /// The grid values of this run (`lr=0.001 weight-decay=0.01`).
    pub setting: String,
    pub config: TrainConfig,
    pub dir: PathBuf,
    args: TrainArgs,
}

/// The grid's name and text: a built-in one, or a file.
fn grid_source(grid: &str) -> anyhow::Result<(String, String)> {
    if let Some((name, text)) = GRIDS.iter().find(|(n, _)| *n == grid) {
        return Ok((name.to_string(), text.to_string()));
    }
    let path = Path::new(grid);
    if path.extension().is_some_and(|e| e == "toml") || path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the grid file {}", path.display()))?;
        return Ok((path.display().to_string(), text));
    }
    let names: Vec<&str> = GRIDS.iter().map(|g| g.0).collect();
    bail!(
        "--grid {grid:?}: not a built-in grid ({}) nor a .toml file",
        names.join(", ")
    )
}

/// The runs of grid `text` (called `name` in messages) for `models` (all when `None`), each in a
/// folder of `out/runs` named by a hash of its configuration and `dataset`'s flags.
pub fn plan(
    text: &str,
    name: &str,
    dataset: &DatasetArgs,
    out: &Path,
    models: Option<&[ModelKind]>,
) -> anyhow::Result<Vec<Planned>> {
    let file: GridFile =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{name}: {}", e.to_string().trim()))?;
    for key in ["model", "out", "quiet", "overwrite", "resume"] {
        if file.train.contains_key(key) || file.models.values().any(|m| m.contains_key(key)) {
            bail!("{name}: `{key}` is set by reproduce itself");
        }
    }
    let mut runs = Vec::new();
    let mut seen = Vec::new();
    for (model_name, flags) in &file.models {
        let model = registry::by_name(model_name).ok_or_else(|| {
            anyhow::anyhow!(
                "{name}: unknown model [models.{model_name}] (known: {})",
                registry::names().join(", ")
            )
        })?;
        seen.push(model);
        if models.is_some_and(|m| !m.contains(&model)) {
            continue;
        }
        let (mut fixed, mut grid) = (Vec::new(), BTreeMap::new());
        for (k, v) in flags {
            match v {
                toml::Value::Array(values) => {
                    if values.is_empty() {
                        bail!("{name}: models.{model_name}.{k} has no values");
                    }
                    grid.insert(k.clone(), values.clone());
                }
                other => fixed.push((k.clone(), other.clone())),
            }
        }
        // Counted before anything is enumerated: a typo such as a 1000-value list in three keys
        // fails at once instead of parsing a million train commands.
        let n_combos = grid
            .values()
            .try_fold(1usize, |n, v| n.checked_mul(v.len()))
            .filter(|&n| runs.len() + n <= super::grid::MAX_COMBINATIONS);
        if n_combos.is_none() {
            bail!(
                "{name}: more than {} runs (with [models.{model_name}]'s lists); split the grid",
                super::grid::MAX_COMBINATIONS
            );
        }
        for combo in combinations(&grid) {
            let mut args = vec!["train".to_string(), "--model".into(), model.to_string()];
            // A model's own flag replaces [train]'s (e.g. fewer epochs where an epoch is dear).
            let shared = file
                .train
                .iter()
                .filter(|(k, _)| !flags.contains_key(*k) && super::train::flag_applies(model, k));
            for (k, v) in shared.chain(fixed.iter().map(|(k, v)| (k, v))) {
                args.extend(flag_args(k, v)?);
            }
            for (k, v) in &combo {
                args.extend(flag_args(k, v)?);
            }
            let setting = describe(&combo);
            let what = format!("{name}: {model} {setting}");
            let parsed = TrainOnly::try_parse_from(&args)
                .map_err(|e| anyhow::anyhow!("{what}: {}", e.to_string().trim()))?;
            let config = parsed.train.config().with_context(|| what.clone())?;
            let dir = out
                .join("runs")
                .join(format!("{model}-{}", run_hash(&config, dataset)?));
            runs.push(Planned {
                model,
                setting,
                config,
                dir,
                args: parsed.train,
            });
        }
    }
    if let Some(wanted) = models
        && let Some(m) = wanted.iter().find(|m| !seen.contains(m))
    {
        bail!("{name} has no [models.{m}] table");
    }
    if runs.is_empty() {
        bail!("{name}: no runs (add [models.NAME] tables)");
    }
    Ok(runs)
}

/// 12 hex digits of the SHA-256 of a run's configuration and dataset flags.
fn run_hash(config: &TrainConfig, dataset: &DatasetArgs) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(config)?);
    // The dataset flags as they were hashed before `--workload` existed, so that the runs of an
    // existing study keep their folders (a finished run is never trained twice).
    let flags = format!("{dataset:?}");
    let flags = match dataset.workload {
        None => flags.replacen(", workload: None", "", 1),
        Some(_) => flags,
    };
    h.update(flags.as_bytes());
    let digest = h.finalize();
    Ok(digest[..6].iter().map(|b| format!("{b:02x}")).collect())
}

/// Where a planned run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Finished,
    /// Interrupted after writing its configuration: resumable.
    Interrupted,
    New,
}

fn state(run: &Planned) -> anyhow::Result<State> {
    let config = run.dir.join(crate::report::run::CONFIG_FILE);
    if !config.exists() {
        return Ok(State::New);
    }
    let saved = RunConfig::load(&run.dir)?;
    if serde_json::to_value(&saved.train)? != serde_json::to_value(&run.config)? {
        bail!(
            "{} holds another configuration than the grid's {} {}; move it away",
            run.dir.display(),
            run.model,
            run.setting
        );
    }
    Ok(if run.dir.join(table::METRICS_FILE).exists() {
        State::Finished
    } else {
        State::Interrupted
    })
}

fn load_metrics(dir: &Path) -> anyhow::Result<RunMetrics> {
    let path = dir.join(table::METRICS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a metrics file", path.display()))
}

pub fn run(cmd: ReproduceCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let (grid_name, text) = grid_source(&cmd.grid)?;
    let runs = plan(
        &text,
        &grid_name,
        &cmd.dataset,
        &cmd.out,
        cmd.models.as_deref(),
    )?;
    let states = runs.iter().map(state).collect::<anyhow::Result<Vec<_>>>()?;
    let finished = states.iter().filter(|s| **s == State::Finished).count();
    eprintln!(
        "reproduce: grid {grid_name}, {} runs ({finished} finished, {} to train) in {}",
        runs.len(),
        runs.len() - finished,
        cmd.out.display()
    );
    let mine = |i: usize| cmd.shard.is_none_or(|sh| sh.takes(i));
    if let Some(sh) = cmd.shard {
        let n = (0..runs.len()).filter(|&i| mine(i)).count();
        eprintln!(
            "reproduce: shard {}/{}: {n} of the grid's runs",
            sh.index, sh.of
        );
    }
    if cmd.dry_run {
        for (_, (r, s)) in runs
            .iter()
            .zip(&states)
            .enumerate()
            .filter(|(i, _)| mine(*i))
        {
            let s = format!("{s:?}").to_lowercase();
            outln!("{}  {s:<11}  {} {}", r.dir.display(), r.model, r.setting);
        }
        return Ok(());
    }
    if cmd.collect {
        return collect(&cmd, &runs, &states, &grid_name);
    }
    check_out(&cmd.out, cmd.overwrite)?;
    let ds = cmd.dataset.load()?;
    if cmd.emit.is_some() {
        return emit_slurm(&cmd, &runs, &states, &ds, &grid_name);
    }
    // Every run's data checks and memory plan before any run trains: a grid entry that cannot run
    // is found now, not after the ones before it have trained.
    let ctx = gpu.context()?;
    let mut checked: Vec<String> = Vec::new();
    for (i, (r, s)) in runs.iter().zip(&states).enumerate() {
        if *s == State::Finished || !mine(i) {
            continue;
        }
        // The memory plan depends on the model's shape, not on its learning rate: check each once.
        let c = &r.config;
        let key = format!(
            "{} {} {} {} {:?} {}",
            c.model, c.arch, c.batch_size, c.negatives, c.sampler, c.layers
        );
        if !checked.contains(&key) {
            crate::train::preflight(&ctx, &ds, c)
                .with_context(|| format!("{grid_name}: {} {}", r.model, r.setting.trim_end()))?;
            checked.push(key);
        }
    }
    std::fs::create_dir_all(cmd.out.join("runs"))
        .with_context(|| format!("cannot create {}", cmd.out.display()))?;
    record(&cmd.out, &["runs"])?;
    let started = Instant::now();
    let workers = workers(&cmd, gpu)?;
    if workers.len() > 1 {
        let names: Vec<String> = workers
            .iter()
            .map(|w| w.adapter.clone().unwrap_or_else(|| "auto".into()))
            .collect();
        eprintln!(
            "reproduce: {} workers ({})",
            workers.len(),
            names.join(", ")
        );
    }
    let to_train = (0..runs.len())
        .filter(|&i| mine(i) && states[i] != State::Finished)
        .count();
    let jobs: Vec<usize> = (0..runs.len()).filter(|&i| mine(i)).collect();
    let progress = Mutex::new((0usize, 0.0f64)); // runs trained, their seconds (for the ETA)
    let mut results = super::workers::run(&workers, &jobs, |worker, &n| {
        let (r, s) = (&runs[n], states[n]);
        let eta = {
            let (trained, seconds) = *progress.lock().expect("no worker panics holding it");
            if trained > 0 {
                let left = (to_train - trained) as f64 * seconds / trained as f64;
                format!(" · ETA {}", hms(left / workers.len() as f64))
            } else {
                String::new()
            }
        };
        let what = format!("{} {}", r.model, r.setting);
        let on = match (&worker.adapter, workers.len()) {
            (Some(a), 2..) => format!(" [on {a}]"),
            _ => String::new(),
        };
        let head = format!(
            "reproduce: run {}/{}: {}{on}",
            n + 1,
            runs.len(),
            what.trim_end()
        );
        let t = Instant::now();
        let metrics = match s {
            State::Finished => {
                eprintln!("{head} · finished earlier");
                return load_metrics(&r.dir);
            }
            State::Interrupted => {
                eprintln!("{head} · resuming{eta}");
                super::train::resume(&r.dir, true, false, false, worker, t)?
            }
            State::New => {
                eprintln!("{head}{eta}");
                let tc = TrainCommand {
                    dataset: cmd.dataset.clone(),
                    train: r.args.clone(),
                    out: Some(r.dir.clone()),
                    // A folder without config.json is a run killed before it started: ours to reuse.
                    overwrite: r.dir.exists(),
                    resume: None,
                    quiet: true,
                    selftest: false,
                    no_summary: true,
                    source: None,
                };
                super::train::execute(&tc, worker, &ds, t)?
            }
        };
        let mut p = progress.lock().expect("no worker panics holding it");
        p.0 += 1;
        p.1 += t.elapsed().as_secs_f64();
        Ok(metrics)
    })?;
    let trained = progress.into_inner().expect("the workers have ended").0;
    if cmd.shard.is_some() {
        // The other shards' runs: the reports wait for the grid's last run, whichever shard trains it.
        let states = runs.iter().map(state).collect::<anyhow::Result<Vec<_>>>()?;
        let missing = states.iter().filter(|s| **s != State::Finished).count();
        if missing > 0 {
            eprintln!(
                "reproduce: this shard's runs are finished ({trained} trained in {}); {missing} of the \
                 grid's {} runs are not finished yet: the last shard to finish writes the reports, or \
                 run the same command with --collect instead of --shard",
                hms(started.elapsed().as_secs_f64()),
                runs.len()
            );
            return Ok(());
        }
        results = runs
            .iter()
            .map(|r| load_metrics(&r.dir))
            .collect::<anyhow::Result<_>>()?;
    }
    let reports = Reports::build(&runs, &results, &grid_name)?;
    record(&cmd.out, REPORT_FILES)?;
    reports.write(&cmd.out)?;
    eprintln!(
        "reproduce: {} runs ({trained} trained in {}); reports in {}",
        runs.len(),
        hms(started.elapsed().as_secs_f64()),
        cmd.out.display()
    );
    outln!("{}", reports.table2_markdown);
    Ok(())
}

/// The workers of `--devices` × `--jobs`, each an adapter choice (one worker per run at a time),
/// interleaved so that the first runs spread over the adapters.
fn workers(cmd: &ReproduceCommand, gpu: &GpuArgs) -> anyhow::Result<Vec<GpuArgs>> {
    let devices: Vec<GpuArgs> = match cmd.devices.as_deref() {
        None => vec![gpu.clone()],
        Some([all]) if all.eq_ignore_ascii_case("all") => {
            use crate::gpu::context::{AdapterChoice, enumerate_adapters, select_adapter};
            let chosen =
                select_adapter(&AdapterChoice::resolve(gpu.adapter.as_deref()))?.get_info();
            enumerate_adapters()
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    let i = a.get_info();
                    i.backend == chosen.backend && i.device_type == chosen.device_type
                })
                .map(|(i, _)| GpuArgs {
                    adapter: Some(i.to_string()),
                })
                .collect()
        }
        Some(list) => {
            let mut out = Vec::new();
            for d in list {
                // Checked now: a mistyped device is one line before anything trains.
                crate::gpu::context::select_adapter(&crate::gpu::context::AdapterChoice::resolve(
                    Some(d),
                ))
                .with_context(|| format!("--devices {d}"))?;
                out.push(GpuArgs {
                    adapter: Some(d.clone()),
                });
            }
            out
        }
    };
    Ok((0..cmd.jobs as usize)
        .flat_map(|_| devices.iter().cloned())
        .collect())
}

/// `--emit slurm`: `reproduce.sbatch` in the output folder (and its `slurm/` log folder).
fn emit_slurm(
    cmd: &ReproduceCommand,
    runs: &[Planned],
    states: &[State],
    ds: &crate::data::Dataset,
    grid_name: &str,
) -> anyhow::Result<()> {
    let to_train: Vec<usize> = (0..runs.len())
        .filter(|&i| states[i] != State::Finished)
        .collect();
    if to_train.is_empty() {
        bail!(
            "--emit slurm: every run of the grid is finished in {}: nothing to schedule (run the \
             command without --emit to write the reports)",
            cmd.out.display()
        );
    }
    let shards = cmd.shards.map_or(to_train.len().min(64), |n| n as usize);
    // Per shard: runs to train and their most steps (every epoch).
    let mut plan = vec![(0usize, 0u64); shards];
    for &i in &to_train {
        let c = &runs[i].config;
        let sampler = crate::train::sampler_for(c, ds)?;
        let steps = crate::train::epoch_steps(c, &sampler) as u64 * c.max_epochs as u64;
        let p = &mut plan[i % shards];
        p.0 += 1;
        p.1 += steps;
    }
    // The command as given, minus the emit flags; --out made absolute (the logs are written there).
    let out = std::path::absolute(&cmd.out)
        .with_context(|| format!("cannot resolve {}", cmd.out.display()))?;
    let given: Vec<String> = std::env::args().skip(1).collect();
    let mut args = Vec::new();
    let mut it = given.iter().peekable();
    while let Some(a) = it.next() {
        let name = a.split('=').next().unwrap_or(a);
        if EMIT_FLAGS.contains(&name) || name == "--out" {
            if !a.contains('=') {
                it.next();
            }
            continue;
        }
        args.push(a.clone());
    }
    args.extend(["--out".to_string(), out.display().to_string()]);
    let program = std::env::current_exe().context("cannot find this program's path")?;
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let job = super::slurm::JobArray {
        program: &program,
        args: &args,
        workdir: &workdir,
        out: &out,
        shards,
        gpus_per_task: cmd.gpus_per_task,
        time: &cmd.time,
        plan: &plan,
        grid: grid_name,
    };
    std::fs::create_dir_all(out.join("slurm"))
        .with_context(|| format!("cannot create {}", out.join("slurm").display()))?;
    let script = out.join("reproduce.sbatch");
    write_atomic(&script, job.script().as_bytes())?;
    record(&cmd.out, &["slurm", "reproduce.sbatch"])?;
    eprintln!(
        "reproduce: {} run(s) to train in {shards} array task(s); submit with\n  sbatch {}\nthen, \
         when every task has ended (the last to finish writes the reports too):\n  cobrar-gpu \
         reproduce … --collect",
        to_train.len(),
        super::slurm::quote(&script.display().to_string())
    );
    Ok(())
}

/// `--collect`: the reports of the grid's finished runs, and a list of the others.
fn collect(
    cmd: &ReproduceCommand,
    runs: &[Planned],
    states: &[State],
    grid_name: &str,
) -> anyhow::Result<()> {
    let (done, missing): (Vec<usize>, Vec<usize>) =
        (0..runs.len()).partition(|&i| states[i] == State::Finished);
    if done.is_empty() {
        bail!(
            "--collect: none of the grid's {} runs in {} is finished yet: nothing to report",
            runs.len(),
            cmd.out.display()
        );
    }
    check_out(&cmd.out, cmd.overwrite)?;
    let finished: Vec<Planned> = done.iter().map(|&i| runs[i].clone()).collect();
    let results = finished
        .iter()
        .map(|r| load_metrics(&r.dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut reports = Reports::build(&finished, &results, grid_name)?;
    if !missing.is_empty() {
        let mut list = format!(
            "\n## Not finished\n\n{} of the grid's {} runs were not finished when these reports were \
             written; the tables above leave them out:\n\n",
            missing.len(),
            runs.len()
        );
        for &i in &missing {
            let r = &runs[i];
            let state = format!("{:?}", states[i]).to_lowercase();
            let _ = writeln!(
                list,
                "- {} {} ({state}): {}",
                r.model,
                r.setting.trim_end(),
                r.dir.display()
            );
            eprintln!(
                "reproduce: missing ({state}): {} {} in {}",
                r.model,
                r.setting.trim_end(),
                r.dir.display()
            );
        }
        reports.report.push_str(&list);
    }
    record(&cmd.out, REPORT_FILES)?;
    reports.write(&cmd.out)?;
    eprintln!(
        "reproduce: reports of {} finished run(s) of {} in {}",
        done.len(),
        runs.len(),
        cmd.out.display()
    );
    outln!("{}", reports.table2_markdown);
    Ok(())
}

fn hms(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Validation NDCG at the run's selection cutoff.
fn val_ndcg(m: &RunMetrics) -> f64 {
    let k = m.hyperparameters.select_k;
    m.validation
        .as_ref()
        .and_then(|v| v.at(k))
        .map_or(f64::NEG_INFINITY, |c| c.ndcg)
}

/// Index of the best run by validation NDCG among `idx` (the first of equals).
fn best_of(idx: impl Iterator<Item = usize>, results: &[RunMetrics]) -> Option<usize> {
    idx.fold(None, |best: Option<usize>, i| match best {
        Some(b) if val_ndcg(&results[b]) >= val_ndcg(&results[i]) => Some(b),
        _ => Some(i),
    })
}

/// Epochs, optimizer steps and wall seconds of a run up to and including its best epoch.
fn to_best(dir: &Path, best_epoch: usize) -> anyhow::Result<(usize, f64)> {
    let path = dir.join(crate::report::run::TRAIN_LOG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (mut steps, mut seconds) = (0usize, 0.0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let r: EpochRecord = serde_json::from_str(line)
            .with_context(|| format!("{}: not a training log line", path.display()))?;
        if r.epoch <= best_epoch {
            steps += r.steps;
            seconds += r.seconds;
        }
    }
    Ok((steps, seconds))
}

/// The reports of a finished study.
pub struct Reports {
    pub table2_markdown: String,
    table2_csv: String,
    parameters: String,
    timing: String,
    runs: String,
    report: String,
    figure2: Option<Figure2>,
}

/// Figure 2's data: per paired architecture, CoBraR's and DeepMF's per-user test NDCG@5.
struct Figure2 {
    title: String,
    groups: Vec<(String, Vec<Vec<f64>>)>,
}

impl Reports {
    fn build(runs: &[Planned], results: &[RunMetrics], grid: &str) -> anyhow::Result<Reports> {
        let mut models: Vec<ModelKind> = Vec::new();
        for r in runs {
            if !models.contains(&r.model) {
                models.push(r.model);
            }
        }
        let selected: Vec<usize> = models
            .iter()
            .filter_map(|m| best_of((0..runs.len()).filter(|&i| runs[i].model == *m), results))
            .collect();
        let dirs: Vec<PathBuf> = selected.iter().map(|&i| runs[i].dir.clone()).collect();
        let k = 5;
        let t = table::compare(&dirs, k)?;
        let table2_markdown = table::render_markdown(&t);
        let table2_csv = table::render_csv(&t);

        let mut parameters = String::from(
            "| model | parameters | user side | item side | branch weights |\n|---|---:|---:|---:|---:|\n",
        );
        for &i in &selected {
            let p = &results[i].parameters;
            let _ = writeln!(
                parameters,
                "| {} | {} | {} | {} | {} |",
                results[i].label,
                group_digits(p.total),
                group_digits(p.user_projection),
                group_digits(p.item_projection),
                group_digits(p.branch_weights)
            );
        }

        // Notes of the models whose columns mean something else (MultVAE's), once each.
        let mut noted: Vec<ModelKind> = Vec::new();
        for &i in &selected {
            let kind = runs[i].model;
            if let Some(note) = kind.spec().counts_note.filter(|_| !noted.contains(&kind)) {
                let _ = write!(parameters, "\n{note}\n");
                noted.push(kind);
            }
        }

        let beside = crate::report::paper::beside(
            &results[0].dataset,
            &t,
            &protocol(runs, results, &selected, grid),
        )
        .map(|b| format!("## Beside the paper\n\n{b}\n"))
        .unwrap_or_default();
        let timing = timing_table(runs, results)?;
        let figure2 = figure2(runs, results)?;

        let mut all = String::from(
            "| run | model | setting | val NDCG@5 | test NDCG@5 | best epoch / run | seconds | selected |\n|---|---|---|---:|---:|---:|---:|---|\n",
        );
        for (i, (r, m)) in runs.iter().zip(results).enumerate() {
            let test = m.test.at(k).map_or(f64::NAN, |c| c.ndcg);
            let _ = writeln!(
                all,
                "| {} | {} | {} | {:.4} | {test:.4} | {} / {} | {:.0} | {} |",
                r.dir.file_name().unwrap_or_default().to_string_lossy(),
                r.model,
                if r.setting.is_empty() {
                    "–"
                } else {
                    &r.setting
                },
                val_ndcg(m),
                m.best_epoch,
                m.epochs_run,
                m.timings.total_seconds,
                if selected.contains(&i) { "✓" } else { "" }
            );
        }
        let first = &results[0];
        let report = format!(
            "# The study on {ds}\n\nGrid `{grid}`: {n} runs, each model's best selected on validation \
             NDCG@{sk}; test metrics of the selected runs, full ranking with training items excluded. \
             Adapter: {adapter} ({backend}); cobrar-gpu {version} ({rev}).\n\n\
             ## Table 2\n\n{table2_markdown}\n\n{beside}## Parameters (RQ2)\n\n{parameters}\n\
             ## Does the shared branch need longer training? (the open question)\n\n{timing}\n\
             ## Figure 2\n\n{fig}\n\n## Every run\n\n{all}",
            ds = first.dataset,
            n = runs.len(),
            sk = first.hyperparameters.select_k,
            adapter = first.adapter.name,
            backend = first.adapter.backend,
            version = first.version,
            rev = first.git_revision,
            fig = if figure2.is_some() {
                "Per-user test NDCG@5 of CoBraR and DeepMF at each architecture both were trained \
                 with (each model's best run there): ![Figure 2](figure2.svg) (also `figure2.png`)."
            } else {
                "Not drawn: no architecture was trained for both CoBraR and DeepMF."
            },
        );
        Ok(Reports {
            table2_markdown,
            table2_csv,
            parameters,
            timing,
            runs: all,
            report,
            figure2,
        })
    }

    fn write(&self, out: &Path) -> anyhow::Result<()> {
        for (name, text) in [
            ("table2.md", &self.table2_markdown),
            ("table2.csv", &self.table2_csv),
            ("parameters.md", &self.parameters),
            ("timing.md", &self.timing),
            ("runs.md", &self.runs),
            ("report.md", &self.report),
        ] {
            write_atomic(&out.join(name), text.as_bytes())?;
        }
        if let Some(f) = &self.figure2 {
            let fig = crate::report::figure::BoxFigure {
                title: &f.title,
                y_desc: "per-user test NDCG@5",
                series: &["cobrar", "deepmf"],
                groups: &f.groups,
            };
            write_atomic(&out.join("figure2.svg"), fig.svg()?.as_bytes())?;
            fig.write_png(&out.join("figure2.png"))?;
        }
        Ok(())
    }
}

/// Our side of the protocol, for the comparison with the paper: the grid, and the learning rates, stopping
/// rule and seeds of the selected runs.
fn protocol(runs: &[Planned], results: &[RunMetrics], selected: &[usize], grid: &str) -> String {
    let mut lrs: Vec<String> = Vec::new();
    let mut rules: Vec<String> = Vec::new();
    let mut seeds: Vec<String> = Vec::new();
    for &i in selected {
        let h = &results[i].hyperparameters;
        if !h.model.trains() {
            continue;
        }
        for (list, v) in [
            (&mut lrs, format!("{:e}", h.lr)),
            (
                &mut rules,
                format!("max epochs {}, patience {}", h.max_epochs, h.patience),
            ),
            (&mut seeds, h.seed.to_string()),
        ] {
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }
    format!(
        "Ours: grid `{grid}` ({n} runs); the selected runs trained at lr {lr}, {rule}, seed {seed}.",
        n = runs.len(),
        lr = lrs.join(" / "),
        rule = rules.join(" / "),
        seed = seeds.join(" / "),
    )
}

/// The architectures both CoBraR and DeepMF were trained with, in grid order.
fn paired_archs(runs: &[Planned]) -> Vec<String> {
    let mut archs: Vec<String> = Vec::new();
    let [shared, per_side] = STUDY_PAIR;
    for r in runs.iter().filter(|r| r.model == shared) {
        let a = r.config.arch.to_string();
        let deepmf = runs
            .iter()
            .any(|d| d.model == per_side && d.config.arch.to_string() == a);
        if deepmf && !archs.contains(&a) {
            archs.push(a);
        }
    }
    archs
}

/// The best run of `model` at architecture `arch`.
fn best_at(
    runs: &[Planned],
    results: &[RunMetrics],
    model: ModelKind,
    arch: &str,
) -> Option<usize> {
    let idx = (0..runs.len())
        .filter(|&i| runs[i].model == model && runs[i].config.arch.to_string() == arch);
    best_of(idx, results)
}

/// Figure 2: per-user test NDCG@5 box plots of CoBraR and DeepMF at every paired architecture.
fn figure2(runs: &[Planned], results: &[RunMetrics]) -> anyhow::Result<Option<Figure2>> {
    let archs = paired_archs(runs);
    if archs.is_empty() {
        return Ok(None);
    }
    let mut groups = Vec::new();
    for a in &archs {
        let mut per_model = Vec::new();
        for model in STUDY_PAIR {
            let Some(i) = best_at(runs, results, model, a) else {
                per_model.push(Vec::new());
                continue;
            };
            let path = runs[i].dir.join(table::USER_METRICS_FILE);
            let values = table::read_user_metrics(&path, Some(5))?;
            let ndcg = values
                .get(&("ndcg".to_string(), 5))
                .with_context(|| format!("{}: no NDCG@5 values", path.display()))?;
            per_model.push(ndcg.values().copied().collect());
        }
        groups.push((a.clone(), per_model));
    }
    Ok(Some(Figure2 {
        title: format!(
            "CoBraR and DeepMF on {}: per-user test NDCG@5",
            results[0].dataset
        ),
        groups,
    }))
}

/// CoBraR against DeepMF at every architecture both were trained with (each model's best run at that
/// architecture): epochs, optimizer steps and wall time to the best validation epoch.
fn timing_table(runs: &[Planned], results: &[RunMetrics]) -> anyhow::Result<String> {
    let archs = paired_archs(runs);
    if archs.is_empty() {
        return Ok("No architecture was trained for both CoBraR and DeepMF.\n".into());
    }
    let mut s = String::from(
        "| architecture | model | val NDCG@5 | best epoch / run | steps to best | seconds to best | training seconds |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut ratios = Vec::new();
    for a in &archs {
        let mut pair = Vec::new();
        for model in STUDY_PAIR {
            let Some(i) = best_at(runs, results, model, a) else {
                continue;
            };
            let m = &results[i];
            let (steps, secs) = to_best(&runs[i].dir, m.best_epoch)?;
            let _ = writeln!(
                s,
                "| {a} | {model} | {:.4} | {} / {} | {} | {secs:.1} | {:.1} |",
                val_ndcg(m),
                m.best_epoch,
                m.epochs_run,
                group_digits(steps as u64),
                m.timings.train_seconds
            );
            pair.push((m.best_epoch, secs));
        }
        if let [(ec, sc), (ed, sd)] = pair[..] {
            ratios.push(format!(
                "{a}: CoBraR's best epoch came after {:.2}× DeepMF's epochs and {:.2}× its wall time",
                ec as f64 / ed.max(1) as f64,
                sc / sd.max(1e-9)
            ));
        }
    }
    s.push('\n');
    for r in ratios {
        let _ = writeln!(s, "- {r}");
    }
    Ok(s)
}
