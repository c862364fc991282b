//! Command-line interface: one file per command. `run` dispatches; every command returns
//! `anyhow::Result` so `main` can print one error line and exit non-zero.

use std::io::Write;

use clap::{Args, Parser, Subcommand};

/// Standard output was closed by its reader (`cobrar-gpu evaluate … | head -1`): `main` ends quietly
/// with status 0, as command-line tools do.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct ClosedPipe;

/// Writes to standard output; a closed pipe becomes [`ClosedPipe`] instead of a panic.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedPipe.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `println!` for command output: returns early with [`ClosedPipe`] when the reader went away.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` for command output.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}

pub mod adapters;
pub mod bench;
pub mod bench_report;
pub mod compare;
pub mod data;
pub mod evaluate;
pub mod export;
pub mod grid;
pub mod recommend;
pub mod reproduce;
pub mod selftest;
pub mod slurm;
pub mod train;
pub mod workers;

/// Train and evaluate CoBraR / DeepMF recommenders on any GPU through WGSL compute shaders.
#[derive(Debug, Parser)]
#[command(name = "cobrar-gpu", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where GPU work runs.
#[derive(Debug, Clone, Args)]
pub struct GpuArgs {
    /// GPU adapter: auto, vulkan, metal, dx12, gl, part of the adapter's name, or its index in
    /// `cobrar-gpu adapters`' list. auto prefers discrete, then integrated, virtual, CPU.
    #[arg(long, global = true, env = "COBRAR_ADAPTER", value_name = "ADAPTER")]
    pub adapter: Option<String>,
}

impl GpuArgs {
    pub fn context(&self) -> anyhow::Result<std::sync::Arc<crate::gpu::GpuContext>> {
        Ok(std::sync::Arc::new(crate::gpu::GpuContext::from_flag(
            self.adapter.as_deref(),
        )?))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPU adapters wgpu finds: name, backend, type, driver, limits, features.
    /// With --adapter, also show which one that choice selects (an error if none matches).
    Adapters {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Train a model (CoBraR, DeepMF or a baseline) with early stopping, evaluate on test, write a
    /// run directory.
    Train(Box<train::TrainCommand>),
    /// Recompute every metric of a run from its saved weights and split.
    Evaluate(evaluate::EvaluateCommand),
    /// Top-k recommendations of a saved run for some users (--user ID) or all (--all --out FILE);
    /// training items excluded unless --include-train.
    Recommend(recommend::RecommendCommand),
    /// The final user and item embeddings of a run, with original ids, as safetensors and .npy.
    Export(export::ExportCommand),
    /// The study's Table 2 from run directories, with paired t-test significance marks.
    Compare(compare::CompareArgs),
    /// Train every combination of a hyper-parameter grid; select on validation NDCG@5.
    Grid(grid::GridCommand),
    /// The study in one command: every model's grid, Table 2, parameter counts, the timing table.
    Reproduce(Box<reproduce::ReproduceCommand>),
    /// Benchmark: training steps/s, per-kernel GPU times and one full evaluation, as JSON.
    Bench(Box<bench::BenchCommand>),
    /// Bench reports from several adapters or machines side by side: markdown, CSV and plots.
    BenchReport(bench_report::BenchReportCommand),
    /// Is this GPU computing correctly? Every kernel, every model's steps and the ranking against
    /// their CPU twins on fresh seeded inputs; exit status 1 names the failing check and its seed.
    Selftest(selftest::SelftestCommand),
    /// Dataset statistics (the paper's Table 1) and split files.
    #[command(subcommand)]
    Data(data::DataCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Adapters { json } => adapters::run(json, cli.gpu.adapter.as_deref()),
        Command::Data(cmd) => data::run(cmd),
        Command::Train(cmd) => train::run(*cmd, &cli.gpu),
        Command::Bench(cmd) => bench::run(*cmd, &cli.gpu),
        Command::BenchReport(cmd) => bench_report::run(cmd),
        Command::Evaluate(cmd) => evaluate::run(cmd, &cli.gpu),
        Command::Recommend(cmd) => recommend::run(cmd, &cli.gpu),
        Command::Export(cmd) => export::run(cmd, &cli.gpu),
        Command::Compare(args) => compare::run(args),
        Command::Grid(cmd) => grid::run(cmd, &cli.gpu),
        Command::Reproduce(cmd) => reproduce::run(*cmd, &cli.gpu),
        Command::Selftest(cmd) => selftest::run(cmd, &cli.gpu),
    }
}
