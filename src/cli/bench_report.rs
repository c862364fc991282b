//! `cobrar-gpu bench-report A.json B.json … --out DIR`: bench reports from several adapters or
//! machines side by side (markdown, CSV, plots); rows that would compare different data are refused.

use std::path::PathBuf;

use clap::Args;

use crate::report::benchmarks;

#[derive(Debug, Args)]
pub struct BenchReportCommand {
    /// Bench JSON files (`cobrar-gpu bench --json FILE`), from any adapters and machines
    #[arg(value_name = "BENCH.json", required = true)]
    pub files: Vec<PathBuf>,
    /// Folder for report.md, runs.csv, kernels.csv, steps.svg/.png and roofline-*.svg/.png
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace report files already in --out
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(cmd: BenchReportCommand) -> anyhow::Result<()> {
    let comparison = benchmarks::compare(benchmarks::read(&cmd.files)?)?;
    let out = crate::output::folder(&cmd.out, "--out")?;
    if out.exists() {
        let ours = |name: &str| {
            [
                "report.md",
                "runs.csv",
                "kernels.csv",
                "steps.svg",
                "steps.png",
            ]
            .contains(&name)
                || name.starts_with("roofline-")
        };
        let existing: Vec<String> = std::fs::read_dir(&out)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| ours(n))
            .collect();
        if !existing.is_empty() && !cmd.overwrite {
            anyhow::bail!(
                "{} already holds a report ({}); choose another --out or pass --overwrite",
                cmd.out.display(),
                existing.join(", ")
            );
        }
        for input in &cmd.files {
            let inside = input
                .canonicalize()
                .is_ok_and(|f| f.parent() == Some(out.as_path()));
            let name = input.file_name().unwrap_or_default().to_string_lossy();
            anyhow::ensure!(
                !(inside && ours(&name)),
                "{} is an input and would be overwritten by the report",
                input.display()
            );
        }
    } else {
        std::fs::create_dir_all(&out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", cmd.out.display()))?;
    }
    let written = benchmarks::write(&comparison, &out)?;
    eprintln!(
        "{} rows × {} adapters; wrote {}",
        comparison.rows.len(),
        comparison.columns.len(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!("{}", benchmarks::markdown(&comparison));
    Ok(())
}
