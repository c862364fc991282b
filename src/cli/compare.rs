//! `cobrar-gpu compare RUN_DIR...`: the study's Table 2 (NDCG, ARP, PopRSP, Coverage per dataset and
//! run, test split) with significance marks, as markdown on stdout and optionally to files. The work
//! is in [`crate::report::table`]; this file is the command-line surface.

use std::path::PathBuf;

use clap::Args;

use crate::report::table;

/// Options of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories written by training (`--out DIR`), each with metrics.json and
    /// user_metrics.tsv; grouped by their dataset
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,

    /// The cutoff k of the table (it must be one the runs evaluated)
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub cutoff: usize,

    /// Also write the table as CSV (with p-values) to FILE
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Also write the markdown printed on stdout to FILE
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Replace existing --csv / --markdown files (never a run's own files)
    #[arg(long)]
    pub overwrite: bool,

    /// Print the table of runs made on different splits (without significance marks: paired tests
    /// need one test set)
    #[arg(long)]
    pub allow_different_splits: bool,
}

/// Builds the table, writes the requested files (atomically), then prints the markdown. Files are
/// written before anything is printed so that a failure leaves stdout empty and shows one error line.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let inputs: Vec<&std::path::Path> = args.runs.iter().map(|p| p.as_path()).collect();
    let csv = match &args.csv {
        Some(p) => Some(crate::output::file(p, "--csv", args.overwrite, &inputs)?),
        None => None,
    };
    let md = match &args.markdown {
        Some(p) => Some(crate::output::file(
            p,
            "--markdown",
            args.overwrite,
            &inputs,
        )?),
        None => None,
    };
    anyhow::ensure!(
        csv.is_none() || csv != md,
        "--csv and --markdown name the same file"
    );
    let t = table::compare_with(&args.runs, args.cutoff, args.allow_different_splits)?;
    let markdown = table::render_markdown(&t);
    if let Some(path) = &csv {
        crate::util::write_atomic(path, table::render_csv(&t).as_bytes())?;
    }
    if let Some(path) = &md {
        crate::util::write_atomic(path, markdown.as_bytes())?;
    }
    out!("{markdown}");
    Ok(())
}
