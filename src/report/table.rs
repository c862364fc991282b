//! The study's Table 2: per dataset, one row per run with NDCG@k, ARP@k, PopRSP@k and Coverage@k (%)
//! on the test split, and `*` on a user-level metric where the dataset's best run is significantly
//! better (two-sided paired t-test on per-user values, Bonferroni-corrected p < 0.05).
//!
//! Also both sides of the run-directory files this needs, so the writer (the training command) and the
//! reader (`compare`) cannot drift apart:
//! * `metrics.json` — read tolerantly: only `dataset`, `model`, optional `label` and `test` are used,
//!   every other field is ignored;
//! * `user_metrics.tsv` — `user<TAB>metric<TAB>cutoff<TAB>value`, original user ids, test-split values;
//!   written by [`write_user_metrics`], read by [`read_user_metrics`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::eval::metrics::{CutoffMetrics, PerUserMetrics, SplitMetrics};
use crate::eval::significance::{bonferroni, paired_t_test};

/// File names inside a run directory.
pub use crate::rundir::{METRICS_FILE, USER_METRICS_FILE};

/// The significance level the marks use (after Bonferroni).
pub const ALPHA: f64 = 0.05;

/// The user-level metrics the table tests, and whether higher is better. NDCG: higher is more
/// accurate. ARP: lower is better — the study's point is reducing popularity bias, so the "best" run
/// recommends the least popular items on average.
pub const TESTED_METRICS: [(&str, bool); 2] = [("ndcg", true), ("arp", false)];

/// Per-user values from `user_metrics.tsv`: `(metric, cutoff)` → original user id → value. Sorted
/// maps, so pairing two runs visits users in one fixed order and a p-value never depends on hash
/// order.
pub type UserValues = BTreeMap<(String, usize), BTreeMap<String, f64>>;

/// Writes `user_metrics.tsv` atomically: header `user\tmetric\tcutoff\tvalue`, then for each evaluated
/// user every metric at every cutoff, with the user's original id (`user_ids[dense]`). Values are
/// written in Rust's shortest round-trip form, so reading them back gives the same `f64`.
///
/// Errors when a dense id has no original id, an id contains a tab or line break (the format could
/// not hold it), a value list does not match the user list, or a value is not finite.
pub fn write_user_metrics(
    path: &Path,
    user_ids: &[String],
    per_user: &PerUserMetrics,
) -> anyhow::Result<()> {
    for (metric, k, vals) in &per_user.values {
        ensure!(
            vals.len() == per_user.users.len(),
            "per-user {metric}@{k} has {} values for {} users",
            vals.len(),
            per_user.users.len()
        );
    }
    let mut out = String::with_capacity(32 * per_user.users.len() * per_user.values.len() + 32);
    out.push_str("user\tmetric\tcutoff\tvalue\n");
    for (i, &dense) in per_user.users.iter().enumerate() {
        let id = user_ids
            .get(dense as usize)
            .with_context(|| format!("user {dense} has no original id"))?;
        ensure!(
            !id.contains(['\t', '\n', '\r']),
            "user id {id:?} contains a tab or line break; cannot write {}",
            path.display()
        );
        for (metric, k, vals) in &per_user.values {
            let v = vals[i];
            ensure!(v.is_finite(), "user {id}: {metric}@{k} is {v}");
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{id}\t{metric}\t{k}\t{v}");
        }
    }
    crate::util::write_atomic(path, out.as_bytes())
}

/// Reads `user_metrics.tsv`, keeping only rows at `cutoff` when given. Columns are found by header
/// name, so extra columns and another order are fine; blank lines are skipped.
///
/// Errors (naming the file and line) on a missing column, an unparsable cutoff or value, a non-finite
/// value, or the same user, metric and cutoff twice.
pub fn read_user_metrics(path: &Path, cutoff: Option<usize>) -> anyhow::Result<UserValues> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.trim_end_matches('\r').split('\t').collect())
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(cu), Some(cm), Some(ck), Some(cv)) =
        (col("user"), col("metric"), col("cutoff"), col("value"))
    else {
        bail!(
            "{}: the header must name the columns user, metric, cutoff, value",
            path.display()
        );
    };
    let width = cu.max(cm).max(ck).max(cv) + 1;
    let mut values = UserValues::new();
    for (n, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), n + 1);
        let f: Vec<&str> = line.split('\t').collect();
        ensure!(
            f.len() >= width,
            "{}: expected {width} tab-separated fields, found {}",
            at(),
            f.len()
        );
        let k: usize = f[ck]
            .trim()
            .parse()
            .with_context(|| format!("{}: bad cutoff {:?}", at(), f[ck]))?;
        if cutoff.is_some_and(|c| c != k) {
            continue;
        }
        let v: f64 = f[cv]
            .trim()
            .parse()
            .with_context(|| format!("{}: bad value {:?}", at(), f[cv]))?;
        ensure!(v.is_finite(), "{}: value {v} is not finite", at());
        let (user, metric) = (f[cu].to_string(), f[cm].trim().to_string());
        let by_user = values.entry((metric.clone(), k)).or_default();
        if by_user.insert(user.clone(), v).is_some() {
            bail!("{}: user {user:?} has {metric}@{k} twice", at());
        }
    }
    Ok(values)
}

/// The fields of `metrics.json` the table uses; serde skips every other field.
#[derive(Debug, Deserialize)]
struct MetricsFile {
    dataset: String,
    model: String,
    #[serde(default)]
    label: Option<String>,
    test: SplitMetrics,
    #[serde(default)]
    split_hash: Option<String>,
}

/// One run directory, as far as the table needs it.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    pub dataset: String,
    /// The row label: `label` from metrics.json, else `model`.
    pub label: String,
    /// Test-split metrics.
    pub test: SplitMetrics,
    /// Per-user test values at the loaded cutoff; `None` when the run has no `user_metrics.tsv`
    /// (an error only if a significance test needs it).
    pub per_user: Option<UserValues>,
    /// SHA-256 of the split the run trained and was tested on (`Dataset::content_hash`): from
    /// `metrics.json`, or computed from the run's `split/` for runs made before it was recorded;
    /// `None` when neither exists.
    pub split_hash: Option<String>,
}

/// The split a run directory holds (`split/` and `ids/`), hashed as at training time.
fn split_hash_of(dir: &Path) -> Option<String> {
    let config = crate::report::run::RunConfig::load(dir).ok()?;
    crate::checkpoint::load_dataset(dir, &config)
        .ok()
        .map(|ds| ds.content_hash())
}

/// How a run's split was made, from `split/split.json` (for messages).
fn split_description(dir: &Path) -> String {
    let path = dir.join(crate::report::run::SPLIT_DIR).join("split.json");
    let Some(v) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return "no split.json".into();
    };
    let field = |k: &str| v.get(k).map_or("?".to_string(), |x| x.to_string());
    format!(
        "{}, seed {}, test ratio {}, validation ratio {}, {}-core, {} users × {} items",
        v.get("method").and_then(|m| m.as_str()).unwrap_or("?"),
        field("seed"),
        field("test_ratio"),
        field("val_ratio"),
        field("kcore"),
        field("users"),
        field("items")
    )
}

/// Loads a run directory, keeping per-user values at `cutoff` only.
pub fn load_run(dir: &Path, cutoff: usize) -> anyhow::Result<Run> {
    let mpath = dir.join(METRICS_FILE);
    ensure!(
        dir.is_dir(),
        "{}: not a run directory (not a directory)",
        dir.display()
    );
    ensure!(
        mpath.is_file(),
        "{}: not a run directory (no {METRICS_FILE})",
        dir.display()
    );
    let text = std::fs::read_to_string(&mpath)
        .with_context(|| format!("cannot read {}", mpath.display()))?;
    let m: MetricsFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid metrics file", mpath.display()))?;
    let upath = dir.join(USER_METRICS_FILE);
    let per_user = if upath.is_file() {
        Some(read_user_metrics(&upath, Some(cutoff))?)
    } else {
        None
    };
    let label = match m.label {
        Some(l) if !l.trim().is_empty() => l,
        _ => m.model,
    };
    let split_hash = m.split_hash.or_else(|| split_hash_of(dir));
    Ok(Run {
        dir: dir.to_path_buf(),
        dataset: m.dataset,
        label,
        test: m.test,
        per_user,
        split_hash,
    })
}

/// One paired test of a run against its dataset's best run, on one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Users both runs evaluated (the pairs of the test).
    pub n: usize,
    /// Two-sided p-value before correction.
    pub p_raw: f64,
    /// Bonferroni-corrected: `min(1, p_raw × comparisons)`.
    pub p: f64,
    /// Number of comparisons made for this metric in this dataset (the Bonferroni factor).
    pub comparisons: usize,
    /// `p < ALPHA`: the best run is significantly better than this one.
    pub significant: bool,
}

/// The significance status of one cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// This run is the dataset's best on the metric (ties: the first listed).
    Best,
    /// Tested against the best run.
    Tested(Comparison),
    /// The only run of its dataset: nothing to compare with.
    Alone,
    /// The dataset's runs were made on different splits (`compare --allow-different-splits`): not
    /// tested, since a paired test needs one test set.
    Untested,
}

impl Mark {
    pub fn significant(&self) -> bool {
        matches!(self, Mark::Tested(c) if c.significant)
    }

    fn comparison(&self) -> Option<&Comparison> {
        match self {
            Mark::Tested(c) => Some(c),
            _ => None,
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub dataset: String,
    pub label: String,
    pub dir: PathBuf,
    /// The run's test metrics at the table's cutoff.
    pub metrics: CutoffMetrics,
    pub ndcg: Mark,
    pub arp: Mark,
}

/// The table: rows grouped by dataset (datasets in order of first appearance, runs in the order
/// given within each).
#[derive(Clone, Debug, PartialEq)]
pub struct CompareTable {
    pub k: usize,
    pub rows: Vec<Row>,
}

/// Loads every run directory and builds the table at cutoff `k`; runs of one dataset made on
/// different splits are refused.
pub fn compare(dirs: &[PathBuf], k: usize) -> anyhow::Result<CompareTable> {
    compare_with(dirs, k, false)
}

/// [`compare`], or with `allow_different_splits` the table of runs made on different splits without
/// significance tests for their datasets.
pub fn compare_with(
    dirs: &[PathBuf],
    k: usize,
    allow_different_splits: bool,
) -> anyhow::Result<CompareTable> {
    ensure!(!dirs.is_empty(), "no run directories given");
    let runs = dirs
        .iter()
        .map(|d| load_run(d, k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    build_table_with(&runs, k, allow_different_splits)
}

/// Whether the runs of `group` share one split; an error naming two that differ (and how), unless
/// `allow` (then `false`).
fn one_split(group: &[&Run], allow: bool) -> anyhow::Result<bool> {
    let first = group[0];
    for r in &group[1..] {
        let same = match (&first.split_hash, &r.split_hash) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if same {
            continue;
        }
        if allow {
            return Ok(false);
        }
        let unknown = |x: &Run| {
            x.split_hash.is_none().then(|| {
                format!(
                    "{} records no split (no split_hash in metrics.json, no split/)",
                    x.dir.display()
                )
            })
        };
        if let Some(msg) = unknown(first).or_else(|| unknown(r)) {
            bail!(
                "{msg}: compare cannot tell whether the runs of {} share a test set; pass \
                 --allow-different-splits for the table without significance marks",
                first.dataset
            );
        }
        bail!(
            "{} and {} were trained and tested on different splits of {} ({} / {}): paired t-tests \
             need one test set; train them on one split, or pass --allow-different-splits for the \
             table without significance marks",
            first.dir.display(),
            r.dir.display(),
            first.dataset,
            split_description(&first.dir),
            split_description(&r.dir)
        );
    }
    Ok(true)
}

/// Builds the table at cutoff `k` from loaded runs.
///
/// Within each dataset and for each metric of [`TESTED_METRICS`], the best run is the one with the
/// best test value in `metrics.json` (highest NDCG, lowest ARP; ties: the first listed). Every other
/// run is compared with it by a two-sided paired t-test on the per-user values of the users both runs
/// evaluated, Bonferroni-corrected over the `runs − 1` comparisons of that metric in that dataset.
///
/// Errors when a run lacks metrics at `k`, a compared run lacks per-user values, or two compared runs
/// share fewer than 2 users.
pub fn build_table(runs: &[Run], k: usize) -> anyhow::Result<CompareTable> {
    build_table_with(runs, k, false)
}

/// [`build_table`]; with `allow_different_splits`, a dataset whose runs were made on different
/// splits gets no significance tests instead of an error.
pub fn build_table_with(
    runs: &[Run],
    k: usize,
    allow_different_splits: bool,
) -> anyhow::Result<CompareTable> {
    let mut datasets: Vec<&str> = Vec::new();
    for r in runs {
        if !datasets.contains(&r.dataset.as_str()) {
            datasets.push(&r.dataset);
        }
    }
    let mut rows = Vec::with_capacity(runs.len());
    for ds in datasets {
        let group: Vec<&Run> = runs.iter().filter(|r| r.dataset == ds).collect();
        let metrics = group
            .iter()
            .map(|r| {
                r.test.at(k).cloned().with_context(|| {
                    let have: Vec<String> =
                        r.test.cutoffs.iter().map(|c| c.k.to_string()).collect();
                    format!(
                        "{}: no test metrics at cutoff {k} (has {})",
                        r.dir.display(),
                        if have.is_empty() {
                            "none".into()
                        } else {
                            have.join(", ")
                        }
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut marks: Vec<[Mark; 2]> = vec![[Mark::Alone, Mark::Alone]; group.len()];
        if group.len() > 1 && !one_split(&group, allow_different_splits)? {
            marks = vec![[Mark::Untested, Mark::Untested]; group.len()];
        } else if group.len() > 1 {
            for (mi, &(metric, higher_better)) in TESTED_METRICS.iter().enumerate() {
                let value = |c: &CutoffMetrics| if metric == "ndcg" { c.ndcg } else { c.arp };
                let mut best = 0;
                for i in 1..group.len() {
                    let (v, b) = (value(&metrics[i]), value(&metrics[best]));
                    if (higher_better && v > b) || (!higher_better && v < b) {
                        best = i;
                    }
                }
                let comparisons = group.len() - 1;
                for i in 0..group.len() {
                    marks[i][mi] = if i == best {
                        Mark::Best
                    } else {
                        Mark::Tested(compare_pair(group[best], group[i], metric, k, comparisons)?)
                    };
                }
            }
        }
        for ((run, m), [ndcg, arp]) in group.iter().zip(metrics).zip(marks) {
            // Runs of one dataset that share a label (e.g. grid runs) are told apart by their folder.
            let shared = group.iter().filter(|r| r.label == run.label).count() > 1;
            let label = match run.dir.file_name() {
                Some(name) if shared => format!("{} ({})", run.label, name.to_string_lossy()),
                _ => run.label.clone(),
            };
            rows.push(Row {
                dataset: run.dataset.clone(),
                label,
                dir: run.dir.clone(),
                metrics: m,
                ndcg,
                arp,
            });
        }
    }
    Ok(CompareTable { k, rows })
}

/// The per-user values of `metric@k` in `run`, or an error saying what is missing.
fn user_values<'a>(
    run: &'a Run,
    metric: &str,
    k: usize,
) -> anyhow::Result<&'a BTreeMap<String, f64>> {
    let path = run.dir.join(USER_METRICS_FILE);
    let all = run.per_user.as_ref().with_context(|| {
        format!(
            "{}: missing (compare needs per-user values for its significance tests)",
            path.display()
        )
    })?;
    all.get(&(metric.to_string(), k))
        .with_context(|| format!("{}: no {metric} values at cutoff {k}", path.display()))
}

/// Paired t-test of `best` against `other` on `metric@k` over their common users.
fn compare_pair(
    best: &Run,
    other: &Run,
    metric: &str,
    k: usize,
    comparisons: usize,
) -> anyhow::Result<Comparison> {
    let (vb, vo) = (
        user_values(best, metric, k)?,
        user_values(other, metric, k)?,
    );
    let (a, b): (Vec<f64>, Vec<f64>) = vb
        .iter()
        .filter_map(|(u, &x)| vo.get(u).map(|&y| (x, y)))
        .unzip();
    let pair = || {
        format!(
            "runs {} and {} ({})",
            best.dir.display(),
            other.dir.display(),
            best.dataset
        )
    };
    ensure!(
        !a.is_empty(),
        "{} share no evaluated users in {USER_METRICS_FILE}",
        pair()
    );
    let t = paired_t_test(&a, &b).with_context(|| format!("{}: {metric}@{k}", pair()))?;
    let p = bonferroni(t.p, comparisons);
    Ok(Comparison {
        n: t.n,
        p_raw: t.p,
        p,
        comparisons,
        significant: p < ALPHA,
    })
}

/// Escapes a markdown table cell (a `|` would split it; a line break would end the row).
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A p-value for people: four decimals, or two significant digits in scientific form when smaller.
fn fmt_p(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The table as markdown: the Table 2 layout (values with `*` marks), a legend, and a second table
/// with the corrected p-values behind the marks.
pub fn render_markdown(t: &CompareTable) -> String {
    let k = t.k;
    let star = |m: &Mark| if m.significant() { "*" } else { "" };
    let mut s = String::new();
    let _ = writeln!(s, "Test metrics at k = {k}\n");
    let _ = writeln!(
        s,
        "| Dataset | Model | NDCG@{k} | ARP@{k} | PopRSP@{k} | Coverage@{k} (%) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    for r in &t.rows {
        let m = &r.metrics;
        let _ = writeln!(
            s,
            "| {} | {} | {:.4}{} | {:.2}{} | {:.4} | {:.2} |",
            md_cell(&r.dataset),
            md_cell(&r.label),
            m.ndcg,
            star(&r.ndcg),
            m.arp,
            star(&r.arp),
            m.poprsp,
            m.coverage_pct
        );
    }
    let tested = t.rows.iter().any(|r| {
        !matches!(
            (&r.ndcg, &r.arp),
            (Mark::Alone | Mark::Untested, Mark::Alone | Mark::Untested)
        )
    });
    let any_untested = t.rows.iter().any(|r| matches!(r.ndcg, Mark::Untested));
    if tested || !any_untested {
        let _ = writeln!(
            s,
            "\n`*`: the dataset's best run on this metric (NDCG: highest; ARP: lowest, i.e. least \
         popularity bias) is significantly better — two-sided paired t-test over the users both runs \
         evaluated, Bonferroni-corrected p < {ALPHA}."
        );
    }
    let untested: Vec<&str> = t
        .rows
        .iter()
        .filter(|r| matches!(r.ndcg, Mark::Untested))
        .map(|r| r.dataset.as_str())
        .fold(Vec::new(), |mut v, d| {
            if !v.contains(&d) {
                v.push(d);
            }
            v
        });
    if !untested.is_empty() {
        let _ = writeln!(
            s,
            "
Not tested (`--allow-different-splits`): the runs of {} were made on different splits, \
             and a paired test needs one test set.",
            untested.join(", ")
        );
    }
    if tested {
        let _ = writeln!(
            s,
            "\nPaired t-tests against each dataset's best run (p after Bonferroni):\n"
        );
        let _ = writeln!(s, "| Dataset | Model | Users | p NDCG@{k} | p ARP@{k} |");
        let _ = writeln!(s, "|---|---|---:|---:|---:|");
        for r in &t.rows {
            let cell = |m: &Mark| match m {
                Mark::Best => "best".to_string(),
                Mark::Alone => "–".to_string(),
                Mark::Untested => "not tested".to_string(),
                Mark::Tested(c) => fmt_p(c.p),
            };
            let users = match (r.ndcg.comparison(), r.arp.comparison()) {
                (Some(a), Some(b)) if a.n != b.n => format!("{}/{}", a.n, b.n),
                (Some(c), _) | (None, Some(c)) => c.n.to_string(),
                (None, None) => "–".to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md_cell(&r.dataset),
                md_cell(&r.label),
                users,
                cell(&r.ndcg),
                cell(&r.arp)
            );
        }
    }
    s
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A p-value at full precision: plain decimals down to 1e-4, scientific below (Rust's plain form
/// of 1e-42 would be 45 characters of zeros). Both read back exactly.
fn csv_p(p: f64) -> String {
    if p == 0.0 || p >= 1e-4 {
        p.to_string()
    } else {
        format!("{p:e}")
    }
}

/// The CSV header of [`render_csv`].
pub const CSV_HEADER: &str = "dataset,model,run_dir,k,ndcg,arp,poprsp,coverage,coverage_pct,\
ndcg_best,ndcg_significant,n_ndcg,p_ndcg_raw,p_ndcg,arp_best,arp_significant,n_arp,p_arp_raw,p_arp";

/// The table as CSV, one line per run, numbers at full precision. `p_ndcg`/`p_arp` are
/// Bonferroni-corrected (the marks use them), `*_raw` uncorrected; the p and n columns are empty for
/// a dataset's best run and for a run alone in its dataset.
pub fn render_csv(t: &CompareTable) -> String {
    let mut s = String::new();
    s.push_str(CSV_HEADER);
    s.push('\n');
    let test_cols = |m: &Mark| {
        let best = matches!(m, Mark::Best);
        match m.comparison() {
            Some(c) => format!(
                "{best},{},{},{},{}",
                c.significant,
                c.n,
                csv_p(c.p_raw),
                csv_p(c.p)
            ),
            None => format!("{best},false,,,"),
        }
    };
    for r in &t.rows {
        let m = &r.metrics;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&r.dataset),
            csv_field(&r.label),
            csv_field(&r.dir.display().to_string()),
            t.k,
            m.ndcg,
            m.arp,
            m.poprsp,
            m.coverage,
            m.coverage_pct,
            test_cols(&r.ndcg),
            test_cols(&r.arp)
        );
    }
    s
}
