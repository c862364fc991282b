//! `cobrar_gpu._native`: the Python package's bridge to the library the CLI uses. Every function takes
//! the command line the CLI would get (the Python layer builds it from keyword arguments) and parses it
//! with the CLI's own clap structs, so flags are validated exactly as `cobrar-gpu` validates them,
//! with the same messages; then it calls the functions the CLI command calls. Nothing here
//! reimplements a command. Errors become `NativeError(kind, message)`, which the Python layer maps to
//! its exception classes; Ctrl-C during training becomes `KeyboardInterrupt`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use cobrar_gpu::cli::{Cli, Command, GpuArgs};
use cobrar_gpu::data::Dataset;
use cobrar_gpu::train::{EpochRecord, Interrupted, TrainHooks};
use numpy::IntoPyArray;
use numpy::ndarray::{Array1, Array2};
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    NativeError,
    PyException,
    "A failure of the native library: args are (kind, message); the Python layer re-raises it as a \
     cobrar_gpu.CobrarError subclass."
);

/// Error kinds the Python layer maps to its exception classes.
const INVALID: &str = "invalid"; // a flag or argument the CLI refuses (ValueError)
const DATA: &str = "data"; // input data the readers or the pipeline refuse (ValueError)
const RUNTIME: &str = "runtime"; // a failure while working (RuntimeError)
const SELFTEST: &str = "selftest"; // a failing selftest check (RuntimeError)

fn native(kind: &str, message: String) -> PyErr {
    NativeError::new_err((kind.to_string(), message))
}

/// The CLI's one error line (`error: {err:#}` without its prefix) with the kind its causes tell.
fn classify(err: &anyhow::Error, default: &str) -> PyErr {
    if err.chain().any(|c| c.is::<cobrar_gpu::data::DataError>()) {
        return native(DATA, format!("{err:#}"));
    }
    if let Some(f) = err.downcast_ref::<cobrar_gpu::selftest::SelftestFailed>() {
        return native(SELFTEST, format!("selftest failed\n{f}"));
    }
    native(default, format!("{err:#}"))
}

/// Parses `argv` (without the program name) as the CLI does. A clap error is the CLI's first line.
fn parse(argv: Vec<String>) -> PyResult<Cli> {
    let argv = std::iter::once("cobrar-gpu".to_string()).chain(argv);
    Cli::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let line = text.lines().next().unwrap_or_default();
        native(INVALID, line.trim_start_matches("error: ").to_string())
    })
}

/// The dataset flags of `data stats FLAGS…` (the one command that takes exactly them).
fn dataset_args(argv: Vec<String>) -> PyResult<(cobrar_gpu::cli::data::DatasetArgs, GpuArgs)> {
    let argv = [vec!["data".to_string(), "stats".to_string()], argv].concat();
    let cli = parse(argv)?;
    match cli.command {
        Command::Data(cobrar_gpu::cli::data::DataCommand::Stats(s)) => Ok((s.dataset, cli.gpu)),
        _ => unreachable!("parsed as data stats"),
    }
}

/// A loaded, preprocessed and split dataset, with the flags that described it.
#[pyclass(module = "cobrar_gpu._native", frozen)]
struct NativeDataset {
    ds: Arc<Dataset>,
    args: cobrar_gpu::cli::data::DatasetArgs,
    /// Where a DataFrame's data came from (for `config.json`), when it is not a --dataset.
    source: Option<String>,
}

/// Loads a dataset from the CLI's dataset flags, or from `data` (a tab-separated user, item[, rating]
/// text the Python layer wrote from a DataFrame) named `name` in messages.
#[pyfunction]
#[pyo3(signature = (argv, data=None, name=None))]
fn load_dataset(
    py: Python<'_>,
    argv: Vec<String>,
    data: Option<&[u8]>,
    name: Option<String>,
) -> PyResult<NativeDataset> {
    let (args, _) = dataset_args(argv)?;
    // One copy of the frame's text (a view of the `bytes` object), then the GIL is released.
    let data = data.map(<[u8]>::to_vec);
    let source = data.as_ref().map(|_| name.clone().unwrap_or_default());
    let loaded = py.detach(|| -> anyhow::Result<Dataset> {
        match data {
            Some(bytes) => {
                let opts = args.to_options()?;
                cobrar_gpu::data::load_bytes(name.as_deref().unwrap_or("dataframe"), bytes, &opts)
            }
            None => args.load(),
        }
    });
    let ds = loaded.map_err(|e| classify(&e, INVALID))?;
    Ok(NativeDataset {
        ds: Arc::new(ds),
        args,
        source,
    })
}

#[pymethods]
impl NativeDataset {
    #[getter]
    fn name(&self) -> String {
        self.ds.name.clone()
    }
    #[getter]
    fn n_users(&self) -> usize {
        self.ds.n_users()
    }
    #[getter]
    fn n_items(&self) -> usize {
        self.ds.n_items()
    }
    /// Whether this is the embedded synthetic dataset (train's own stopping defaults apply).
    #[getter]
    fn embedded(&self) -> bool {
        self.args.is_embedded() && self.source.is_none()
    }
    /// `data stats --json`: the pipeline report (Table 1's numbers at every step).
    fn stats_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.ds.report).map_err(|e| native(RUNTIME, e.to_string()))
    }
    /// The split as dense pairs: (user ids, item ids, [(users, items) of train, val, test]).
    #[allow(clippy::type_complexity)]
    fn split<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Vec<String>,
        Vec<String>,
        Vec<(
            Bound<'py, numpy::PyArray1<u32>>,
            Bound<'py, numpy::PyArray1<u32>>,
        )>,
    ) {
        let parts = [&self.ds.train, &self.ds.val, &self.ds.test]
            .into_iter()
            .map(|csr| {
                let (u, i): (Vec<u32>, Vec<u32>) = csr.iter().unzip();
                (u.into_pyarray(py), i.into_pyarray(py))
            })
            .collect();
        (self.ds.user_ids.clone(), self.ds.item_ids.clone(), parts)
    }
}

/// What the training loop reports to the thread that waits for it.
enum Event {
    Begin(usize, usize, usize),
    Step(usize, usize, usize),
    Epoch(String),
}

/// The hooks the training thread calls: events go to the waiting (Python) thread, which sets `stop`
/// on Ctrl-C or when a callback raised.
struct Watch {
    stop: AtomicBool,
    began: AtomicBool,
    tx: Mutex<mpsc::Sender<Event>>,
}

impl Watch {
    fn send(&self, e: Event) {
        // The receiver lives until the training thread has ended.
        let _ = self.tx.lock().expect("never poisoned").send(e);
    }
}

impl TrainHooks for Watch {
    fn begin(&self, first_epoch: usize, max_epochs: usize, steps_per_epoch: usize) {
        self.began.store(true, Ordering::SeqCst);
        self.send(Event::Begin(first_epoch, max_epochs, steps_per_epoch));
    }
    fn step(&self, epoch: usize, step: usize, steps: usize) -> bool {
        self.send(Event::Step(epoch, step, steps));
        self.stop.load(Ordering::SeqCst)
    }
    fn epoch(&self, record: &EpochRecord) -> anyhow::Result<()> {
        self.send(Event::Epoch(serde_json::to_string(record)?));
        Ok(())
    }
}

/// Runs `work` on a thread of its own with the training hooks installed, while this thread (holding
/// the GIL only briefly) hands its events to `events(kind, …)` and checks for Ctrl-C every 50 ms.
/// Ctrl-C, or an exception from `events`, stops training at its next step; the run keeps its last
/// completed epoch. Returns the work's result, whether training began, and the Python error that
/// stopped it.
fn watched<T: Send>(
    py: Python<'_>,
    events: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> (anyhow::Result<T>, bool, Option<PyErr>) {
    let (tx, rx) = mpsc::channel();
    let rx = Mutex::new(rx);
    let watch = Arc::new(Watch {
        stop: AtomicBool::new(false),
        began: AtomicBool::new(false),
        tx: Mutex::new(tx),
    });
    let mut stopped_by: Option<PyErr> = None;
    let result = std::thread::scope(|scope| {
        let hooks: cobrar_gpu::train::Hooks = watch.clone();
        let handle = scope.spawn(move || cobrar_gpu::train::with_hooks(Some(hooks), work));
        let mut last_step = Instant::now();
        loop {
            let done = handle.is_finished();
            let batch: Vec<Event> = py.detach(|| {
                let rx = rx.lock().expect("never poisoned");
                let mut v = Vec::new();
                if !done && let Ok(e) = rx.recv_timeout(Duration::from_millis(50)) {
                    v.push(e);
                }
                v.extend(rx.try_iter());
                v
            });
            if stopped_by.is_none()
                && let Some(cb) = events
            {
                // Steps come fast on a fast GPU: the progress bar sees the latest of a batch of
                // events at most ten times a second, and every epoch's last step.
                let n = batch.len();
                for (i, e) in batch.into_iter().enumerate() {
                    let call = match e {
                        Event::Begin(a, b, c) => cb.call1(("begin", a, b, c)),
                        Event::Step(a, b, c) => {
                            let latest = i + 1 == n;
                            if b != c
                                && !(latest && last_step.elapsed() >= Duration::from_millis(100))
                            {
                                continue;
                            }
                            last_step = Instant::now();
                            cb.call1(("step", a, b, c))
                        }
                        Event::Epoch(json) => cb.call1(("epoch", json)),
                    };
                    if let Err(err) = call {
                        stopped_by = Some(err);
                        watch.stop.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
            if stopped_by.is_none()
                && let Err(err) = py.check_signals()
            {
                stopped_by = Some(err);
                watch.stop.store(true, Ordering::SeqCst);
            }
            if done {
                break;
            }
        }
        handle.join().unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "internal error: the training thread panicked"
            ))
        })
    });
    (result, watch.began.load(Ordering::SeqCst), stopped_by)
}

/// The error a watched command raises: the Python error that stopped it (Ctrl-C: `KeyboardInterrupt`
/// with the run's state and how to continue), else the command's own.
fn watched_error(
    err: anyhow::Error,
    began: bool,
    stopped_by: Option<PyErr>,
    py: Python<'_>,
) -> PyErr {
    let interrupted = err.chain().any(|c| c.is::<Interrupted>());
    match stopped_by {
        Some(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => {
            PyKeyboardInterrupt::new_err(format!("{err:#}"))
        }
        Some(e) => e,
        None if interrupted => PyKeyboardInterrupt::new_err(format!("{err:#}")),
        // Before training began, what failed was the flags, the data or the plan: the CLI's checks.
        None => classify(&err, if began { RUNTIME } else { INVALID }),
    }
}

/// `train FLAGS…` on a loaded dataset; returns (run directory, metrics.json as text).
#[pyfunction]
#[pyo3(signature = (dataset, argv, events=None))]
fn train(
    py: Python<'_>,
    dataset: &NativeDataset,
    argv: Vec<String>,
    events: Option<&Bound<'_, PyAny>>,
) -> PyResult<(String, String)> {
    let argv = [vec!["train".to_string()], argv].concat();
    let cli = parse(argv.clone())?;
    refuse_dataset_flags(&argv)?;
    let Command::Train(cmd) = cli.command else {
        unreachable!("parsed as train")
    };
    let mut cmd = *cmd;
    if cmd.resume.is_some() {
        return Err(native(
            INVALID,
            "resume=: continue a run with cobrar_gpu.resume(run_dir)".into(),
        ));
    }
    cmd.dataset = dataset.args.clone();
    cmd.source = dataset.source.clone();
    cmd.no_summary = true;
    let ds = dataset.ds.clone();
    // The CLI's `train`: the embedded dataset's own stopping rule, flag errors before anything else.
    if dataset.embedded() && cmd.train.model.trains() && cmd.train.embedded_defaults() && !cmd.quiet
    {
        eprintln!(
            "embedded dataset: at most {} epochs, patience {} (its own defaults, for a quick first \
             run; epochs= and patience= set them)",
            cmd.train.epochs.unwrap_or_default(),
            cmd.train.patience.unwrap_or_default()
        );
    }
    if let Err(e) = cmd.train.config() {
        return Err(classify(&e, INVALID));
    }
    let cfg_model = cmd.train.model;
    let out = cmd
        .out
        .clone()
        .unwrap_or_else(|| cobrar_gpu::cli::train::default_run_dir(&ds.name, cfg_model));
    cmd.out = Some(out.clone());
    let gpu = cli.gpu;
    let (result, began, stopped_by) = watched(py, events, || {
        cobrar_gpu::cli::train::execute(&cmd, &gpu, &ds, Instant::now())
    });
    match result {
        Ok(m) if stopped_by.is_none() => Ok((
            out.display().to_string(),
            serde_json::to_string(&m).map_err(|e| native(RUNTIME, e.to_string()))?,
        )),
        Ok(_) => Err(stopped_by.expect("checked")),
        Err(e) => Err(watched_error(e, began, stopped_by, py)),
    }
}

/// The data is the `Dataset`'s: a dataset flag given to `train` (any argument under `train --help`'s
/// "Dataset" heading) would be ignored, so it is refused.
fn refuse_dataset_flags(argv: &[String]) -> PyResult<()> {
    let command = Cli::command();
    let Ok(matches) = command
        .clone()
        .try_get_matches_from(std::iter::once("cobrar-gpu").chain(argv.iter().map(String::as_str)))
    else {
        return Ok(()); // parse() reported it
    };
    let (Some(("train", sub)), Some(train)) =
        (matches.subcommand(), command.find_subcommand("train"))
    else {
        return Ok(());
    };
    for arg in train.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.get_help_heading() == Some("Dataset")
            && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        {
            return Err(native(
                INVALID,
                format!(
                    "{id}= describes the data, not the training: give it to the Dataset \
                     (Dataset.from_path(..., {id}=...))"
                ),
            ));
        }
    }
    Ok(())
}

/// `train --resume DIR [--quiet]` (with `global` flags such as `--adapter`); returns as [`train`].
#[pyfunction]
#[pyo3(signature = (argv, events=None))]
fn resume(
    py: Python<'_>,
    argv: Vec<String>,
    events: Option<&Bound<'_, PyAny>>,
) -> PyResult<(String, String)> {
    let cli = parse([vec!["train".to_string()], argv].concat())?;
    let Command::Train(cmd) = cli.command else {
        unreachable!("parsed as train")
    };
    let Some(dir) = cmd.resume.clone() else {
        return Err(native(INVALID, "resume needs --resume DIR".into()));
    };
    let gpu = cli.gpu;
    let (result, began, stopped_by) = watched(py, events, || {
        cobrar_gpu::cli::train::resume(&dir, cmd.quiet, false, cmd.selftest, &gpu, Instant::now())
    });
    match result {
        Ok(m) if stopped_by.is_none() => Ok((
            dir.display().to_string(),
            serde_json::to_string(&m).map_err(|e| native(RUNTIME, e.to_string()))?,
        )),
        Ok(_) => Err(stopped_by.expect("checked")),
        Err(e) => Err(watched_error(e, began, stopped_by, py)),
    }
}

/// `reproduce FLAGS…`: trains the grid (Ctrl-C stops it at the next step) and writes the reports.
#[pyfunction]
#[pyo3(signature = (argv, events=None))]
fn reproduce(py: Python<'_>, argv: Vec<String>, events: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let cli = parse([vec!["reproduce".to_string()], argv].concat())?;
    let Command::Reproduce(cmd) = cli.command else {
        unreachable!("parsed as reproduce")
    };
    let gpu = cli.gpu;
    let (result, began, stopped_by) =
        watched(py, events, || cobrar_gpu::cli::reproduce::run(*cmd, &gpu));
    match (result, stopped_by) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(e)) => Err(e),
        // reproduce checks the whole grid before it trains: its refusals are the flags' or the data's.
        (Err(e), s) => Err(watched_error(e, began, s, py)),
    }
}

/// `evaluate --checkpoint DIR [--cutoffs …]`: {split: metrics} (and `cold_start`) as JSON text.
#[pyfunction]
fn evaluate(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let cli = parse([vec!["evaluate".to_string()], argv].concat())?;
    let Command::Evaluate(cmd) = cli.command else {
        unreachable!("parsed as evaluate")
    };
    let gpu = cli.gpu;
    let e = py
        .detach(|| cobrar_gpu::cli::evaluate::evaluation(&cmd, &gpu))
        .map_err(|e| classify(&e, RUNTIME))?;
    Ok(serde_json::Value::Object(e.metrics_json()).to_string())
}

/// `recommend --checkpoint DIR (--user ID… | all) -k K [--include-train]`: (users, ranks, items,
/// scores) rows.
#[pyfunction]
#[pyo3(signature = (argv, all_users=false))]
#[allow(clippy::type_complexity)]
fn recommend<'py>(
    py: Python<'py>,
    argv: Vec<String>,
    all_users: bool,
) -> PyResult<(
    Vec<String>,
    Bound<'py, numpy::PyArray1<u32>>,
    Vec<String>,
    Bound<'py, numpy::PyArray1<f32>>,
)> {
    let cli = parse([vec!["recommend".to_string()], argv].concat())?;
    let Command::Recommend(mut cmd) = cli.command else {
        unreachable!("parsed as recommend")
    };
    if all_users {
        // `--all` needs `--out` on the command line; here the lists come back instead of a file.
        cmd.all = true;
        cmd.user.clear();
    }
    let gpu = cli.gpu;
    let r = py
        .detach(|| cobrar_gpu::cli::recommend::recommendations(&cmd, &gpu))
        .map_err(|e| {
            let invalid = e.chain().any(|c| {
                c.is::<cobrar_gpu::cli::recommend::UnknownUser>()
                    || c.is::<cobrar_gpu::cli::recommend::BadK>()
            });
            classify(&e, if invalid { INVALID } else { RUNTIME })
        })?;
    let (mut users, mut ranks, mut items, mut scores) = (vec![], vec![], vec![], vec![]);
    for (row, &u) in r.top.users.iter().enumerate() {
        for (rank, &i) in r.top.list(row).iter().enumerate() {
            users.push(r.user_ids[u as usize].clone());
            ranks.push(rank as u32 + 1);
            items.push(r.item_ids[i as usize].clone());
            scores.push(r.top.scores[row * r.top.k + rank]);
        }
    }
    Ok((
        users,
        Array1::from(ranks).into_pyarray(py),
        items,
        Array1::from(scores).into_pyarray(py),
    ))
}

/// The final embeddings of the run in `checkpoint` (`normalised`: as `export` writes them):
/// (user ids, users [N, d], item ids, items [M, d]).
#[pyfunction]
#[pyo3(signature = (argv, checkpoint, normalised=true))]
#[allow(clippy::type_complexity)]
fn embeddings<'py>(
    py: Python<'py>,
    argv: Vec<String>,
    checkpoint: PathBuf,
    normalised: bool,
) -> PyResult<(
    Vec<String>,
    Bound<'py, numpy::PyArray2<f32>>,
    Vec<String>,
    Bound<'py, numpy::PyArray2<f32>>,
)> {
    // The global flags (--adapter) only: `export` itself needs an --out this call does not write.
    let cli = parse([argv, vec!["adapters".to_string()]].concat())?;
    let gpu = cli.gpu;
    let e = py
        .detach(|| cobrar_gpu::cli::export::embeddings(&checkpoint, &gpu, normalised))
        .map_err(|e| classify(&e, RUNTIME))?;
    let table = |values: Vec<f32>, rows: usize| {
        Array2::from_shape_vec((rows, e.dim), values).map_err(|e| native(RUNTIME, e.to_string()))
    };
    let users = table(e.users, e.user_ids.len())?.into_pyarray(py);
    let items = table(e.items, e.item_ids.len())?.into_pyarray(py);
    Ok((e.user_ids, users, e.item_ids, items))
}

/// `compare RUN_DIR… [--cutoff K] [--allow-different-splits]`: (CSV with p-values, markdown).
#[pyfunction]
fn compare(py: Python<'_>, argv: Vec<String>) -> PyResult<(String, String)> {
    let cli = parse([vec!["compare".to_string()], argv].concat())?;
    let Command::Compare(args) = cli.command else {
        unreachable!("parsed as compare")
    };
    let t = py
        .detach(|| {
            cobrar_gpu::report::table::compare_with(
                &args.runs,
                args.cutoff,
                args.allow_different_splits,
            )
        })
        .map_err(|e| classify(&e, INVALID))?;
    Ok((
        cobrar_gpu::report::table::render_csv(&t),
        cobrar_gpu::report::table::render_markdown(&t),
    ))
}

/// `selftest FLAGS…` (the table on stdout, progress on stderr); a failing check raises.
#[pyfunction]
fn selftest(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    let cli = parse([vec!["selftest".to_string()], argv].concat())?;
    let Command::Selftest(cmd) = cli.command else {
        unreachable!("parsed as selftest")
    };
    let gpu = cli.gpu;
    py.detach(|| cobrar_gpu::cli::selftest::run(cmd, &gpu))
        .map_err(|e| classify(&e, RUNTIME))
}

/// `adapters --json` as text (with `--adapter X` in `argv`: an error when X selects none).
#[pyfunction]
fn adapters(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let cli = parse([argv, vec!["adapters".to_string()]].concat())?;
    let list = py.detach(|| -> anyhow::Result<Vec<serde_json::Value>> {
        if cli.gpu.adapter.is_some() {
            cli.gpu.context()?;
        }
        Ok(cobrar_gpu::cli::adapters::list_json())
    });
    let list = list.map_err(|e| classify(&e, INVALID))?;
    Ok(serde_json::Value::Array(list).to_string())
}

/// The CLI's `--help` of `command` (its flags, for the Python functions' docstrings).
#[pyfunction]
fn help(command: &str) -> PyResult<String> {
    let mut cli = Cli::command();
    let sub = cli
        .find_subcommand_mut(command)
        .ok_or_else(|| native(INVALID, format!("no command {command:?}")))?;
    Ok(sub.render_long_help().to_string())
}

/// The program's version and git revision, as `metrics.json` records them.
#[pyfunction]
fn version() -> (String, String) {
    (
        cobrar_gpu::report::run::version(),
        cobrar_gpu::report::run::git_revision(),
    )
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add_class::<NativeDataset>()?;
    m.add_function(wrap_pyfunction!(load_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(recommend, m)?)?;
    m.add_function(wrap_pyfunction!(embeddings, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(selftest, m)?)?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add_function(wrap_pyfunction!(help, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
