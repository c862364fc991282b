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

/// A run's metrics recomputed from its saved weights: what `evaluate` prints.
pub struct Evaluation {
    /// `validation` (when the run has a validation split) and `test`, in that order.
    pub splits: Vec<(&'static str, SplitMetrics)>,
    pub label: String,
    pub dataset: String,
    pub adapter: String,
    pub backend: String,
    /// GPU buffers at their peak, in bytes.
    pub gpu_peak_bytes: u64,
}

/// Recomputes every metric of `cmd.checkpoint` (the note on an unfinished run goes to stderr).
pub fn evaluation(cmd: &EvaluateCommand, gpu: &GpuArgs) -> anyhow::Result<Evaluation> {
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
    let mut splits = Vec::new();
    for (name, truth) in [("validation", &ds.val), ("test", &ds.test)] {
        if truth.nnz() == 0 {
            continue;
        }
        let ev = evaluator.evaluate_session(&mut session, truth, ds)?;
        splits.push((name, SplitMetrics::from(&ev.result)));
    }
    // Inference holds the weights, one embedding block's activations and the embeddings: no
    // optimizer state, no gradients.
    Ok(Evaluation {
        splits,
        label: saved.config.label(),
        dataset: ds.name.clone(),
        adapter: session.ctx().info.name.clone(),
        backend: session.ctx().info.backend.to_string(),
        gpu_peak_bytes: session.ctx().memory.peak(),
    })
}

pub fn run(cmd: EvaluateCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let e = evaluation(&cmd, gpu)?;
    if cmd.json {
        let mut out = serde_json::Map::new();
        for (name, m) in &e.splits {
            out.insert(name.to_string(), serde_json::to_value(m)?);
        }
        out.insert("gpu_peak_bytes".into(), e.gpu_peak_bytes.into());
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (name, m) in &e.splits {
            outln!("{}\n", metrics_table(name, m));
        }
        outln!(
            "{} on {} — {} ({}); GPU buffers at peak {:.1} MiB",
            e.label,
            e.dataset,
            e.adapter,
            e.backend,
            e.gpu_peak_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
