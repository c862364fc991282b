//! `cobrar-gpu evaluate --checkpoint DIR`: recompute every metric from a run's saved weights and split.

use std::path::PathBuf;

use clap::Args;

use super::GpuArgs;
use super::train::metrics_table;
use crate::checkpoint;
use crate::data::{Dataset, FeatureSide};
use crate::eval::Evaluator;
use crate::eval::cold::{HostScores, Protocol};
use crate::eval::metrics::SplitMetrics;
use crate::models::{Model, Side};

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
    /// On a cold-start split: the warm and the cold half of the test, ranked apart.
    pub cold_start: Option<ColdStart>,
}

/// A cold-start split's evaluation: the model and the floors on each half of the test.
#[derive(Debug, serde::Serialize)]
pub struct ColdStart {
    /// Which side was held out, how many, and the ratio that chose them.
    pub side: FeatureSide,
    pub entities: usize,
    pub ratio: Option<f64>,
    /// "warm", then "cold".
    pub halves: Vec<Half>,
}

/// One half of the test: what was ranked, and each scorer's metrics (or why it is not scored).
#[derive(Debug, serde::Serialize)]
pub struct Half {
    pub name: &'static str,
    pub users: usize,
    pub candidates: usize,
    pub interactions: usize,
    /// The model's row first (its label), then "mostpop (floor)", "feature popularity (floor)".
    pub rows: Vec<Row>,
}

#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub scorer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SplitMetrics>,
    /// Why this scorer has no metrics here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scored: Option<String>,
}

impl Row {
    fn of(scorer: String, r: Result<SplitMetrics, String>) -> Row {
        match r {
            Ok(m) => Row {
                scorer,
                metrics: Some(m),
                not_scored: None,
            },
            Err(why) => Row {
                scorer,
                metrics: None,
                not_scored: Some(why),
            },
        }
    }
}

/// Scores both halves of `ds`'s cold-start test with the model's embeddings (`model`: its label,
/// whether it can score the held-out side, its embeddings) and the two floors.
pub fn cold_start(
    ds: &Dataset,
    label: &str,
    cannot: Option<String>,
    model: &HostScores,
    cutoffs: &[usize],
) -> Option<ColdStart> {
    let cold = ds.cold.as_ref()?;
    let protocols = Protocol::both(ds)?;
    let floors: [(&str, Result<HostScores, String>); 2] = [
        ("mostpop (floor)", Ok(HostScores::most_popular(ds))),
        (
            "feature popularity (floor)",
            HostScores::feature_popularity(ds),
        ),
    ];
    let halves = protocols
        .iter()
        .map(|p| {
            let score = |s: &HostScores| SplitMetrics::from(&p.evaluate(s, cutoffs));
            let model_row = match (&cannot, p.name) {
                (Some(why), "cold") => Err(why.clone()),
                _ => Ok(score(model)),
            };
            let mut rows = vec![Row::of(label.to_string(), model_row)];
            for (name, f) in &floors {
                rows.push(Row::of(
                    name.to_string(),
                    f.as_ref().map(score).map_err(|e| e.clone()),
                ));
            }
            Half {
                name: p.name,
                users: p.users.len(),
                candidates: p.candidates.len(),
                interactions: p.interactions(),
                rows,
            }
        })
        .collect();
    Some(ColdStart {
        side: cold.side,
        entities: cold.len(),
        ratio: cold.ratio,
        halves,
    })
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
    let cold_start = match &ds.cold {
        None => None,
        Some(c) => {
            let dim = session.model.dim();
            let mut read = |side: Side, n: usize| -> anyhow::Result<Vec<f32>> {
                let mut e = session.read_embeddings(side)?;
                e.truncate(n * dim);
                Ok(e)
            };
            let scores = HostScores {
                users: read(Side::Users, ds.n_users())?,
                items: read(Side::Items, ds.n_items())?,
                dim,
                scorer: session.model.scorer(),
            };
            let spec = saved.config.train.model.spec();
            let cannot = spec.cannot_score_unseen(ds, c.side);
            cold_start(ds, &saved.config.label(), cannot, &scores, &cutoffs)
        }
    };
    // Inference holds the weights, one embedding block's activations and the embeddings: no
    // optimizer state, no gradients.
    Ok(Evaluation {
        splits,
        label: saved.config.label(),
        dataset: ds.name.clone(),
        adapter: session.ctx().info.name.clone(),
        backend: session.ctx().info.backend.to_string(),
        gpu_peak_bytes: session.ctx().memory.peak(),
        cold_start,
    })
}

impl Evaluation {
    /// The metrics as `evaluate --json` prints them (without the memory figure): each split's, and
    /// `cold_start` on a cold-start split.
    pub fn metrics_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for (name, m) in &self.splits {
            out.insert(
                name.to_string(),
                serde_json::to_value(m).expect("plain data"),
            );
        }
        if let Some(c) = &self.cold_start {
            out.insert(
                "cold_start".into(),
                serde_json::to_value(c).expect("plain data"),
            );
        }
        out
    }
}

pub fn run(cmd: EvaluateCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let e = evaluation(&cmd, gpu)?;
    if cmd.json {
        let mut out = e.metrics_json();
        out.insert("gpu_peak_bytes".into(), e.gpu_peak_bytes.into());
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (name, m) in &e.splits {
            outln!("{}\n", metrics_table(name, m));
        }
        if let Some(c) = &e.cold_start {
            outln!("{}", cold_start_text(c));
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

/// The cold-start section of `evaluate`'s text output.
pub fn cold_start_text(c: &ColdStart) -> String {
    use super::data::thousands;
    let mut s = format!(
        "cold start: {} {} held out{}; the test is ranked in two halves —\n",
        thousands(c.entities),
        c.side.noun(),
        c.ratio.map(|r| format!(" (ratio {r})")).unwrap_or_default()
    );
    for h in &c.halves {
        let what = match (c.side, h.name) {
            (FeatureSide::Items, "warm") => "test items not held out, among all such items",
            (FeatureSide::Items, _) => "held-out test items, among the held-out items",
            (FeatureSide::Users, "warm") => "the other users' test items, among all items",
            (FeatureSide::Users, _) => "held-out users' test items, among all items",
        };
        s.push_str(&format!(
            "\n{}: {what} ({} users, {} candidates, {} interactions)\n",
            h.name,
            thousands(h.users),
            thousands(h.candidates),
            thousands(h.interactions)
        ));
        for r in &h.rows {
            match (&r.metrics, &r.not_scored) {
                (Some(m), _) => s.push_str(&format!(
                    "{}\n",
                    metrics_table(&format!("{} {}", h.name, r.scorer), m)
                )),
                (None, Some(why)) => s.push_str(&format!("{} {}: {why}\n", h.name, r.scorer)),
                (None, None) => {}
            }
        }
    }
    s
}
