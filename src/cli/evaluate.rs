//! `cobrar-gpu evaluate --checkpoint DIR`: recompute every metric from a run's saved weights and split.

use std::path::PathBuf;

use clap::Args;

use super::GpuArgs;
use super::train::metrics_table;
use crate::checkpoint;
use crate::eval::Evaluator;
use crate::eval::metrics::SplitMetrics;

#[derive(Debug, Args)]
pub struct EvaluateCommand {
    /// Run directory written by `cobrar-gpu train --out DIR`
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Cutoffs [default: those of the run]
    #[arg(long, value_name = "K,K,…", value_delimiter = ',')]
    pub cutoffs: Option<Vec<usize>>,
    /// Print JSON ({"validation": …, "test": …}) instead of tables
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: EvaluateCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let saved = checkpoint::load_run(&cmd.checkpoint)?;
    let cutoffs = cmd
        .cutoffs
        .clone()
        .unwrap_or_else(|| saved.config.train.cutoffs.clone());
    let ds = &saved.dataset;
    if let Some(note) = saved.unfinished_note() {
        eprintln!("{note}");
    }
    let mut session = saved.embedded_session(gpu.context()?)?;
    let mut evaluator = Evaluator::new(&cutoffs)?;
    let mut out = serde_json::Map::new();
    for (name, truth) in [("validation", &ds.val), ("test", &ds.test)] {
        if truth.nnz() == 0 {
            continue;
        }
        let ev = evaluator.evaluate_session(&mut session, truth, ds)?;
        let m = SplitMetrics::from(&ev.result);
        if !cmd.json {
            outln!("{}\n", metrics_table(name, &m));
        }
        out.insert(name.to_string(), serde_json::to_value(&m)?);
    }
    // Inference holds the weights, one embedding block's activations and the embeddings: no
    // optimizer state, no gradients.
    let peak = session.ctx().memory.peak();
    if cmd.json {
        out.insert("gpu_peak_bytes".into(), peak.into());
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        outln!(
            "{} on {} — {} ({}); GPU buffers at peak {:.1} MiB",
            saved.config.label(),
            ds.name,
            session.ctx().info.name,
            session.ctx().info.backend,
            peak as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
