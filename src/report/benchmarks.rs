//! `bench-report`: bench JSON files from any number of machines and adapters, side by side — a markdown
//! and a CSV table (steps/s end to end and on the GPU alone, evaluation seconds, copy bandwidth, each
//! kernel's share of its adapter's copy bandwidth) and plots. Runs are grouped by workload (or dataset)
//! and model; a group whose runs trained on different data (different workload or data hashes) is
//! refused, naming the runs that differ.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::bench::{BenchFile, BenchReport, SCHEMA};

/// One run and the file it came from.
#[derive(Debug, Clone)]
pub struct Run {
    pub file: PathBuf,
    pub report: BenchReport,
    /// The column it is shown in: the adapter, with the file's name when another file holds the same
    /// adapter and model on the same data (two machines with the same GPU).
    pub column: String,
}

/// Reads bench files (schema 2); one line naming the file when one is not a bench report.
pub fn read(paths: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let schema = value.get("schema").and_then(|s| s.as_u64());
        if schema != Some(SCHEMA as u64) {
            bail!(
                "{}: not a bench report of schema {SCHEMA} (found {}); re-run `cobrar-gpu bench --json` \
                 with this version",
                path.display(),
                schema.map_or("no schema".to_string(), |s| format!("schema {s}"))
            );
        }
        let file: BenchFile = serde_json::from_value(value)
            .with_context(|| format!("{}: not a valid bench report", path.display()))?;
        for report in file.runs {
            runs.push(Run {
                file: path.clone(),
                column: report.adapter.label(),
                report,
            });
        }
    }
    if runs.is_empty() {
        bail!("the bench files hold no runs");
    }
    Ok(runs)
}

/// What a row compares: the same data and the same model.
fn row_key(r: &BenchReport) -> String {
    let data = r
        .workload
        .as_ref()
        .map_or(r.dataset.clone(), |w| w.name.clone());
    format!("{data} · {} {}", r.model, r.arch)
}

/// The table's rows (in first-seen order) and columns; refuses rows mixing different data.
pub struct Comparison {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// (row, column) → run.
    pub cells: BTreeMap<(usize, usize), Run>,
}

pub fn compare(runs: Vec<Run>) -> anyhow::Result<Comparison> {
    let mut rows: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(usize, usize), Run> = BTreeMap::new();
    for mut run in runs {
        let key = row_key(&run.report);
        // Two files with this adapter in this row (two machines with the same GPU): its own column.
        let taken = cells
            .values()
            .any(|o| row_key(&o.report) == key && o.column == run.column && o.file != run.file);
        if taken {
            let stem = run.file.file_stem().unwrap_or_default().to_string_lossy();
            run.column = format!("{} [{stem}]", run.column);
        }
        let r = rows.iter().position(|k| *k == key).unwrap_or_else(|| {
            rows.push(key.clone());
            rows.len() - 1
        });
        let c = columns
            .iter()
            .position(|k| *k == run.column)
            .unwrap_or_else(|| {
                columns.push(run.column.clone());
                columns.len() - 1
            });
        if let Some(first) = cells.values().find(|o| row_key(&o.report) == key) {
            let (a, b) = (&first.report, &run.report);
            let hash = |x: &BenchReport| x.workload.as_ref().map(|w| w.hash.clone());
            if hash(a) != hash(b) {
                bail!(
                    "{key}: different workloads cannot share a row: {} ({}) has workload hash {}, {} \
                     ({}) has {}",
                    first.column,
                    first.file.display(),
                    hash(a).unwrap_or_else(|| "none".into()),
                    run.column,
                    run.file.display(),
                    hash(b).unwrap_or_else(|| "none".into())
                );
            }
            if a.data_hash != b.data_hash {
                bail!(
                    "{key}: the runs trained on different data or splits: {} ({}) has data hash {}, \
                     {} ({}) has {}; bench the same --workload (or file) with the same \
                     preprocessing flags",
                    first.column,
                    first.file.display(),
                    &a.data_hash[..a.data_hash.len().min(16)],
                    run.column,
                    run.file.display(),
                    &b.data_hash[..b.data_hash.len().min(16)]
                );
            }
        }
        if cells.insert((r, c), run).is_some() {
            bail!(
                "{key}: {} appears twice (two bench files of the same adapter and model?)",
                columns[c]
            );
        }
    }
    Ok(Comparison {
        rows,
        columns,
        cells,
    })
}

fn cell(c: &Comparison, r: usize, col: usize) -> Option<&BenchReport> {
    c.cells.get(&(r, col)).map(|run| &run.report)
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.digits$}"))
}

/// The markdown report.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# GPU benchmark comparison\n");
    let _ = writeln!(s, "## Adapters\n");
    let _ = writeln!(
        s,
        "| column | backend | type | driver | limits | selftest | files |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (k, col) in c.columns.iter().enumerate() {
        let runs: Vec<&Run> = c
            .cells
            .iter()
            .filter(|((_, cc), _)| *cc == k)
            .map(|(_, r)| r)
            .collect();
        let Some(run) = runs.first() else { continue };
        let a = &run.report.adapter;
        let mut files: Vec<String> = runs.iter().map(|r| r.file.display().to_string()).collect();
        files.sort();
        files.dedup();
        let mut selftest: Vec<&str> = runs
            .iter()
            .map(|r| r.report.selftest.status.as_str())
            .collect();
        selftest.sort_unstable();
        selftest.dedup();
        let _ = writeln!(
            s,
            "| {col} | {} | {} | {} {} | {} | {} | {} |",
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info,
            a.limits,
            selftest.join(", "),
            files.join(", ")
        );
    }
    let header = |s: &mut String, title: &str| {
        let _ = writeln!(s, "\n## {title}\n");
        let _ = write!(s, "| workload · model |");
        for col in &c.columns {
            let _ = write!(s, " {col} |");
        }
        let _ = writeln!(s);
        let _ = write!(s, "|---|");
        for _ in &c.columns {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s);
    };
    type Figure = fn(&BenchReport) -> String;
    let tables: [(&str, Figure); 4] = [
        ("Training steps/s, end to end (GPU alone)", |r| {
            format!("{:.2} ({:.2})", r.steps_per_s, r.gpu_steps_per_s)
        }),
        ("Full evaluation, seconds (top-20 for every user)", |r| {
            num((r.eval_seconds > 0.0).then_some(r.eval_seconds), 2)
        }),
        ("Copy bandwidth of the adapter, GB/s", |r| {
            format!("{:.1}", r.copy_gbps)
        }),
        ("Host batch pipeline ceiling, steps/s", |r| {
            format!("{:.0}", r.host_steps_per_s)
        }),
    ];
    for (title, f) in tables {
        header(&mut s, title);
        for (ri, row) in c.rows.iter().enumerate() {
            let _ = write!(s, "| {row} |");
            for ci in 0..c.columns.len() {
                let _ = write!(s, " {} |", cell(c, ri, ci).map_or("—".into(), f));
            }
            let _ = writeln!(s);
        }
    }
    let _ = writeln!(
        s,
        "\n## Each kernel's bandwidth as a share of its adapter's copy bandwidth\n"
    );
    for (ri, row) in c.rows.iter().enumerate() {
        let kernels = kernel_names(c, ri);
        if kernels.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {row}\n");
        let _ = write!(s, "| kernel |");
        for col in &c.columns {
            let _ = write!(s, " {col} ms/step · % of copy |");
        }
        let _ = writeln!(s);
        let _ = write!(s, "|---|");
        for _ in &c.columns {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s);
        for k in &kernels {
            let _ = write!(s, "| {k} |");
            for ci in 0..c.columns.len() {
                let v = cell(c, ri, ci)
                    .and_then(|r| r.kernels.iter().find(|x| x.kernel == *k))
                    .map_or("—".into(), |x| {
                        format!("{:.3} · {:.0}%", x.ms_per_step, 100.0 * x.copy_fraction)
                    });
                let _ = write!(s, " {v} |");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    s
}

/// The kernels any run of row `ri` profiled, in first-seen order.
fn kernel_names(c: &Comparison, ri: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for ci in 0..c.columns.len() {
        for k in cell(c, ri, ci).map_or(&[][..], |r| &r.kernels[..]) {
            if !names.contains(&k.kernel) {
                names.push(k.kernel.clone());
            }
        }
    }
    names
}

/// Quotes a CSV field when it needs it.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// One line per run (`runs.csv`) and one per run and kernel (`kernels.csv`).
pub fn csv(c: &Comparison) -> (String, String) {
    let mut runs = String::from(
        "row,column,adapter,backend,driver,driver_info,limits,selftest,dataset,workload,workload_hash,\
         data_hash,model,arch,steps_per_s,gpu_steps_per_s,host_steps_per_s,eval_seconds,copy_gbps,\
         parameters,file\n",
    );
    let mut kernels = String::from(
        "row,column,kernel,dispatches,bytes,flops,ms_per_step,gbps,copy_fraction,gflops\n",
    );
    for ((ri, ci), run) in &c.cells {
        let r = &run.report;
        let fields = [
            c.rows[*ri].clone(),
            c.columns[*ci].clone(),
            r.adapter.name.clone(),
            r.adapter.backend.clone(),
            r.adapter.driver.clone(),
            r.adapter.driver_info.clone(),
            r.adapter.limits.clone(),
            r.selftest.status.clone(),
            r.dataset.clone(),
            r.workload
                .as_ref()
                .map_or(String::new(), |w| w.name.clone()),
            r.workload
                .as_ref()
                .map_or(String::new(), |w| w.hash.clone()),
            r.data_hash.clone(),
            r.model.clone(),
            r.arch.clone(),
            format!("{}", r.steps_per_s),
            format!("{}", r.gpu_steps_per_s),
            format!("{}", r.host_steps_per_s),
            format!("{}", r.eval_seconds),
            format!("{}", r.copy_gbps),
            format!("{}", r.parameters),
            run.file.display().to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        runs.push_str(&line.join(","));
        runs.push('\n');
        for k in &r.kernels {
            let fields = [
                c.rows[*ri].clone(),
                c.columns[*ci].clone(),
                k.kernel.clone(),
                k.dispatches.to_string(),
                k.bytes.to_string(),
                k.flops.to_string(),
                format!("{}", k.ms_per_step),
                format!("{}", k.gbps),
                format!("{}", k.copy_fraction),
                format!("{}", k.gflops),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            kernels.push_str(&line.join(","));
            kernels.push('\n');
        }
    }
    (runs, kernels)
}

/// A file name from a row label.
fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

/// Writes `report.md`, `runs.csv`, `kernels.csv`, `steps.svg`/`.png` (end-to-end steps/s per adapter
/// and workload) and one `roofline-<row>.svg`/`.png` per row (each kernel's share of the copy
/// bandwidth) into `out`; returns the files written.
pub fn write(c: &Comparison, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use crate::report::figure::BarFigure;
    use crate::util::write_atomic;
    let mut written = Vec::new();
    let put = |name: &str, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        let p = out.join(name);
        write_atomic(&p, bytes)?;
        Ok(p)
    };
    written.push(put("report.md", markdown(c).as_bytes())?);
    let (runs, kernels) = csv(c);
    written.push(put("runs.csv", runs.as_bytes())?);
    written.push(put("kernels.csv", kernels.as_bytes())?);
    let groups: Vec<(String, Vec<Option<f64>>)> = c
        .rows
        .iter()
        .enumerate()
        .map(|(ri, row)| {
            let v = (0..c.columns.len())
                .map(|ci| cell(c, ri, ci).map(|r| r.steps_per_s))
                .collect();
            (row.clone(), v)
        })
        .collect();
    let fig = BarFigure {
        title: "training steps/s, end to end",
        x_desc: "steps/s",
        series: &c.columns,
        groups: &groups,
    };
    written.push(put("steps.svg", fig.svg()?.as_bytes())?);
    fig.write_png(&out.join("steps.png"))?;
    written.push(out.join("steps.png"));
    for (ri, row) in c.rows.iter().enumerate() {
        let kernels = kernel_names(c, ri);
        if kernels.is_empty() {
            continue;
        }
        let groups: Vec<(String, Vec<Option<f64>>)> = kernels
            .iter()
            .map(|k| {
                let v = (0..c.columns.len())
                    .map(|ci| {
                        cell(c, ri, ci)
                            .and_then(|r| r.kernels.iter().find(|x| x.kernel == *k))
                            .map(|x| 100.0 * x.copy_fraction)
                    })
                    .collect();
                (k.clone(), v)
            })
            .collect();
        let title = format!("{row}: each kernel's bandwidth, % of its adapter's copy bandwidth");
        let fig = BarFigure {
            title: &title,
            x_desc: "% of copy bandwidth",
            series: &c.columns,
            groups: &groups,
        };
        let stem = format!("roofline-{}", slug(row));
        written.push(put(&format!("{stem}.svg"), fig.svg()?.as_bytes())?);
        let png = out.join(format!("{stem}.png"));
        fig.write_png(&png)?;
        written.push(png);
    }
    Ok(written)
}
