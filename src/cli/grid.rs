//! `cobrar-gpu grid --config FILE.toml`: trains every combination of a Cartesian grid of training flags
//! on one dataset, selects on validation NDCG@k, and writes a results table.
//!
//! The file's `[train]` table holds fixed flags, `[grid]` lists of values, `[dataset]` the dataset flags;
//! keys are the command-line flag names (`lr`, `arch`, `weight-decay`, `dropout`, …) and are parsed by
//! `train`'s own flag parser, so every flag and check is the same as on the command line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser};

use super::GpuArgs;
use super::train::{TrainCommand, execute};
use crate::report::run::{RunMetrics, write_json};
use crate::util::write_atomic;

#[derive(Debug, Args)]
pub struct GridCommand {
    /// The grid (TOML with [dataset], [train] and [grid] tables; see examples/grid_study.toml)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Folder for the runs and the results table [default: the file's `out`, else runs/grid]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the combinations and exit
    #[arg(long)]
    pub dry_run: bool,
    /// Replace runs already in the output folder
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    out: Option<PathBuf>,
    #[serde(default)]
    dataset: BTreeMap<String, toml::Value>,
    #[serde(default)]
    train: BTreeMap<String, toml::Value>,
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
}

/// `--key value` arguments for one TOML value (`true` → a bare flag, `false` → nothing).
pub(crate) fn flag_args(key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    let flag = format!("--{}", key.replace('_', "-"));
    Ok(match value {
        toml::Value::Boolean(true) => vec![flag],
        toml::Value::Boolean(false) => vec![],
        toml::Value::String(s) => vec![flag, s.clone()],
        toml::Value::Integer(i) => vec![flag, i.to_string()],
        toml::Value::Float(f) => vec![flag, format!("{f:e}")],
        toml::Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|v| v.to_string().trim_matches('"').to_string())
                .collect();
            vec![flag, parts.join(",")]
        }
        other => bail!("{key}: unsupported value {other}"),
    })
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if *f != 0.0 && f.abs() < 1e-3 => format!("{f:e}"),
        toml::Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

/// Every combination of the grid's lists, in a fixed order (keys sorted, last key fastest).
pub(crate) fn combinations(
    grid: &BTreeMap<String, Vec<toml::Value>>,
) -> Vec<Vec<(String, toml::Value)>> {
    let mut out = vec![Vec::new()];
    for (key, values) in grid {
        let mut next = Vec::new();
        for prefix in &out {
            for v in values {
                let mut c: Vec<(String, toml::Value)> = prefix.clone();
                c.push((key.clone(), v.clone()));
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Most combinations one grid may hold (a typo such as a 10,000-value list fails at once).
pub const MAX_COMBINATIONS: usize = 10_000;

/// A parsed grid: its output folder and every combination as a `train` command.
pub struct Grid {
    pub out: PathBuf,
    pub keys: Vec<String>,
    pub commands: Vec<(Vec<(String, toml::Value)>, TrainCommand)>,
}

/// Parses a grid file's `text` (`name` in messages): every combination is parsed with `train`'s own
/// flags and checked, so a typo fails before hours of training.
pub fn parse(
    text: &str,
    name: &Path,
    out: Option<PathBuf>,
    overwrite: bool,
) -> anyhow::Result<Grid> {
    let file: GridFile = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{}: {}", name.display(), e.to_string().trim()))?;
    if let Some((k, _)) = file.grid.iter().find(|(_, v)| v.is_empty()) {
        bail!("{}: grid.{k} has no values", name.display());
    }
    for key in ["out", "quiet", "overwrite", "resume"] {
        if file.train.contains_key(key) || file.grid.contains_key(key) {
            bail!("{}: `{key}` is set by grid itself", name.display());
        }
    }
    let n_combos = file
        .grid
        .values()
        .try_fold(1usize, |n, v| n.checked_mul(v.len()))
        .filter(|&n| n <= MAX_COMBINATIONS);
    let Some(_) = n_combos else {
        bail!(
            "{}: the grid has more than {MAX_COMBINATIONS} combinations",
            name.display()
        );
    };
    let out = out
        .or(file.out.clone())
        .unwrap_or_else(|| PathBuf::from("runs/grid"));
    let mut base = vec!["train".to_string()];
    for (k, v) in file.dataset.iter().chain(&file.train) {
        base.extend(flag_args(k, v)?);
    }
    let mut commands = Vec::new();
    for (n, combo) in combinations(&file.grid).iter().enumerate() {
        let mut args = base.clone();
        for (k, v) in combo {
            args.extend(flag_args(k, v)?);
        }
        let dir = out.join(format!("run-{:03}", n + 1));
        args.extend([
            "--out".to_string(),
            dir.display().to_string(),
            "--quiet".to_string(),
        ]);
        if overwrite {
            args.push("--overwrite".to_string());
        }
        let parsed = TrainFlags::try_parse_from(&args).map_err(|e| {
            anyhow::anyhow!(
                "{}: combination {}: {}",
                name.display(),
                n + 1,
                e.to_string().trim()
            )
        })?;
        parsed.cmd.train.config()?;
        commands.push((combo.clone(), parsed.cmd));
    }
    Ok(Grid {
        out,
        keys: file.grid.keys().cloned().collect(),
        commands,
    })
}

pub fn run(cmd: GridCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&cmd.config)
        .with_context(|| format!("cannot read {}", cmd.config.display()))?;
    let Grid {
        out,
        keys,
        commands,
    } = parse(&text, &cmd.config, cmd.out.clone(), cmd.overwrite)?;
    eprintln!(
        "grid: {} combinations of {} → {}",
        commands.len(),
        keys.join(", "),
        out.display()
    );
    if cmd.dry_run {
        for (n, (combo, _)) in commands.iter().enumerate() {
            outln!("run-{:03}  {}", n + 1, describe(combo));
        }
        return Ok(());
    }
    let (out, _) = crate::output::dir(&out, "--out", cmd.overwrite, &[&cmd.config])?;
    let ds = commands[0].1.dataset.load()?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut results: Vec<(usize, String, RunMetrics)> = Vec::new();
    for (n, (combo, tc)) in commands.iter().enumerate() {
        eprintln!(
            "grid: run {}/{}: {}",
            n + 1,
            commands.len(),
            describe(combo)
        );
        let m = execute(tc, gpu, &ds, Instant::now())?;
        results.push((n + 1, describe(combo), m));
        write_results(&out, &results, tc.train.select_k)?;
    }
    let select_k = commands[0].1.train.select_k;
    outln!("{}", results_markdown(&results, select_k));
    Ok(())
}

/// `train`'s flags, parsed from a grid line as if typed on the command line.
#[derive(Debug, Parser)]
struct TrainFlags {
    #[command(flatten)]
    cmd: TrainCommand,
}

pub(crate) fn describe(combo: &[(String, toml::Value)]) -> String {
    combo
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn val_ndcg(m: &RunMetrics, k: usize) -> f64 {
    m.validation
        .as_ref()
        .and_then(|v| v.at(k))
        .map_or(f64::NAN, |c| c.ndcg)
}

/// Runs sorted by validation NDCG@k (best first).
fn ranked(results: &[(usize, String, RunMetrics)], k: usize) -> Vec<&(usize, String, RunMetrics)> {
    let mut r: Vec<_> = results.iter().collect();
    r.sort_by(|a, b| {
        val_ndcg(&b.2, k)
            .total_cmp(&val_ndcg(&a.2, k))
            .then(a.0.cmp(&b.0))
    });
    r
}

/// The table's numbers for one run: validation NDCG@k, then test NDCG, ARP, PopRSP, coverage %.
fn row_values(m: &RunMetrics, k: usize) -> [f64; 5] {
    let t = m.test.at(k);
    let f = |g: fn(&crate::eval::metrics::CutoffMetrics) -> f64| t.map_or(f64::NAN, g);
    [
        val_ndcg(m, k),
        f(|c| c.ndcg),
        f(|c| c.arp),
        f(|c| c.poprsp),
        f(|c| c.coverage_pct),
    ]
}

fn results_markdown(results: &[(usize, String, RunMetrics)], k: usize) -> String {
    let mut s = format!(
        "| run | setting | val NDCG@{k} | test NDCG@{k} | test ARP@{k} | test PopRSP@{k} | test Cov@{k} % | best epoch | s |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for (n, desc, m) in ranked(results, k) {
        let [v, nd, arp, pop, cov] = row_values(m, k);
        let (e, secs) = (m.best_epoch, m.timings.total_seconds);
        let _ = writeln!(
            s,
            "| run-{n:03} | {desc} | {v:.4} | {nd:.4} | {arp:.2} | {pop:.4} | {cov:.1} | {e} | {secs:.0} |"
        );
    }
    if let Some((n, desc, _)) = ranked(results, k).first() {
        let _ = writeln!(
            s,
            "\nselected (best validation NDCG@{k}): run-{n:03} {desc}"
        );
    }
    s
}

fn write_results(
    out: &Path,
    results: &[(usize, String, RunMetrics)],
    k: usize,
) -> anyhow::Result<()> {
    write_atomic(
        &out.join("grid_results.md"),
        results_markdown(results, k).as_bytes(),
    )?;
    let mut csv = format!(
        "run,setting,val_ndcg@{k},test_ndcg@{k},test_arp@{k},test_poprsp@{k},test_coverage_pct@{k},best_epoch,seconds\n"
    );
    for (n, desc, m) in ranked(results, k) {
        let [v, nd, arp, pop, cov] = row_values(m, k);
        let (e, secs) = (m.best_epoch, m.timings.total_seconds);
        let _ = writeln!(
            csv,
            "run-{n:03},\"{desc}\",{v},{nd},{arp},{pop},{cov},{e},{secs}"
        );
    }
    write_atomic(&out.join("grid_results.csv"), csv.as_bytes())?;
    let summary: Vec<serde_json::Value> = results
        .iter()
        .map(|(n, desc, m)| serde_json::json!({"run": format!("run-{n:03}"), "setting": desc, "metrics": m}))
        .collect();
    write_json(&out.join("grid_results.json"), &summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartesian_product_in_fixed_order() {
        let mut g = BTreeMap::new();
        g.insert(
            "lr".to_string(),
            vec![toml::Value::Float(1e-4), toml::Value::Float(1e-3)],
        );
        g.insert(
            "arch".to_string(),
            vec![
                toml::Value::String("512,64".into()),
                toml::Value::String("2048,128".into()),
            ],
        );
        let c = combinations(&g);
        assert_eq!(c.len(), 4);
        assert_eq!(describe(&c[0]), "arch=512,64 lr=1e-4");
        assert_eq!(describe(&c[3]), "arch=2048,128 lr=0.001");
        assert_eq!(
            flag_args("weight_decay", &toml::Value::Float(1e-3)).unwrap(),
            vec!["--weight-decay", "1e-3"]
        );
        assert!(
            flag_args("header", &toml::Value::Boolean(false))
                .unwrap()
                .is_empty()
        );
    }
}
