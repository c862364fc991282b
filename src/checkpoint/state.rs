//! The resumable state of a training run, in `RUN/state/`:
//!
//! - `progress.safetensors`: after the last completed epoch, every parameter buffer (`theta/<buffer>`)
//!   and Adam's moments (`m/<buffer>`, `v/<buffer>`), with the epoch, Adam's step count, the epoch
//!   history and the best epoch so far in its metadata;
//! - `best-eNNNN.safetensors`: the parameters of the best epoch.
//!
//! An epoch is committed by the atomic rename of `progress.safetensors`; the best file it names is
//! written before it, and older best files are deleted after, so a kill at any moment leaves a
//! consistent state: the previous epoch's, or this one's. The sampler and dropout streams are keyed by
//! (seed, epoch) and (seed, step), so the epoch and step count are all a resumed run needs of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::st;
use crate::models::session::RowSteps;
use crate::models::{ParamLayout, Weights};
use crate::report::run::EpochRecord;

pub use crate::rundir::STATE_DIR;
const PROGRESS_FILE: &str = "progress.safetensors";

/// What a resumed run restores.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Last completed epoch.
    pub epoch: usize,
    /// Adam's step count.
    pub t: u64,
    pub weights: Weights<f32>,
    pub m: Weights<f32>,
    pub v: Weights<f32>,
    /// Lazy Adam's row step counts (`steps/<buffer>`; empty for dense Adam).
    pub row_steps: RowSteps,
    pub history: Vec<EpochRecord>,
    /// (selection score, epoch, weights) of the best epoch.
    pub best: Option<(f64, usize, Weights<f32>)>,
    /// Wall-clock seconds of every process that trained the run, up to this commit.
    pub wall_seconds: f64,
    /// Processes that trained the run up to this commit (1 + resumes).
    pub processes: u32,
}

fn best_file(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(STATE_DIR)
        .join(format!("best-e{epoch:04}.safetensors"))
}

fn buffers_tensors<'a>(prefix: &str, w: &'a Weights<f32>) -> Vec<st::Tensor<'a>> {
    w.layout
        .buffers
        .iter()
        .zip(&w.data)
        .map(|(b, d)| st::Tensor {
            name: format!("{prefix}/{}", b.name),
            shape: vec![d.len()],
            data: st::Data::F32(d),
        })
        .collect()
}

fn read_buffers(
    file: &st::File,
    path: &Path,
    prefix: &str,
    layout: &Arc<ParamLayout>,
) -> anyhow::Result<Weights<f32>> {
    let mut w = Weights::zeros(layout);
    for (b, d) in layout.buffers.iter().zip(w.data.iter_mut()) {
        let name = format!("{prefix}/{}", b.name);
        match file.tensor(&name, path)? {
            Some((shape, values)) if shape == vec![d.len()] => *d = values,
            Some((shape, _)) => bail!(
                "{}: {name} has shape {shape:?}, the model needs [{}]",
                path.display(),
                d.len()
            ),
            None => bail!("{}: {name} missing", path.display()),
        }
    }
    Ok(w)
}

/// Lazy Adam's row step counts in `file`, for the table buffers that have them (a dense run's state
/// has none; the session checks that they match its optimizer).
fn read_row_steps(
    file: &st::File,
    path: &Path,
    layout: &Arc<ParamLayout>,
) -> anyhow::Result<RowSteps> {
    let mut out = Vec::new();
    for b in layout.buffers.iter().filter(|b| b.table) {
        let name = format!("steps/{}", b.name);
        match file.tensor_u32(&name, path)? {
            Some((shape, values)) if shape == vec![b.rows] => out.push((b.name.clone(), values)),
            Some((shape, _)) => bail!(
                "{}: {name} has shape {shape:?}, the model needs [{}]",
                path.display(),
                b.rows
            ),
            None => {}
        }
    }
    Ok(out)
}

/// Commits epoch `p.epoch`: the best file (when this epoch is the best), then the progress file, then
/// the clean-up of older best files. `new_best`: whether this epoch's weights are the best.
pub fn save(dir: &Path, p: &Progress, new_best: bool) -> anyhow::Result<()> {
    let state = dir.join(STATE_DIR);
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create {}", state.display()))?;
    let best_epoch = p.best.as_ref().map_or(0, |b| b.1);
    if new_best && let Some((_, e, w)) = &p.best {
        let bytes = st::serialize(&buffers_tensors("theta", w), &BTreeMap::new());
        crate::util::write_atomic(&best_file(dir, *e), &bytes)?;
    }
    let mut tensors = buffers_tensors("theta", &p.weights);
    tensors.extend(buffers_tensors("m", &p.m));
    tensors.extend(buffers_tensors("v", &p.v));
    tensors.extend(p.row_steps.iter().map(|(name, d)| st::Tensor {
        name: format!("steps/{name}"),
        shape: vec![d.len()],
        data: st::Data::U32(d),
    }));
    let meta = BTreeMap::from([
        ("epoch".to_string(), p.epoch.to_string()),
        ("t".to_string(), p.t.to_string()),
        ("history".to_string(), serde_json::to_string(&p.history)?),
        ("best_epoch".to_string(), best_epoch.to_string()),
        (
            "best_score_bits".to_string(),
            p.best.as_ref().map_or(0, |b| b.0.to_bits()).to_string(),
        ),
        ("wall_seconds".to_string(), p.wall_seconds.to_string()),
        ("processes".to_string(), p.processes.to_string()),
    ]);
    let bytes = st::serialize(&tensors, &meta);
    let path = state.join(PROGRESS_FILE);
    if crate::util::kill_requested("checkpoint", p.epoch as u64) {
        // A kill in the middle of this write: half a temporary file, the previous state untouched.
        let tmp = state.join(format!(".{PROGRESS_FILE}.tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes[..bytes.len() / 2])?;
        crate::util::kill_point("checkpoint", p.epoch as u64);
    }
    crate::util::write_atomic(&path, &bytes)?;
    // Older best files are no longer referenced.
    if let Ok(entries) = std::fs::read_dir(&state) {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("best-e") && e.path() != best_file(dir, best_epoch) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The committed state of run directory `dir`, or `None` when no epoch was completed.
pub fn load(dir: &Path, layout: &Arc<ParamLayout>) -> anyhow::Result<Option<Progress>> {
    let path = dir.join(STATE_DIR).join(PROGRESS_FILE);
    if !path.exists() {
        // No committed epoch — unless the run's log says there were some (it is written after the
        // progress file, so a kill cannot leave a log without progress): then the state was damaged,
        // and starting over silently would discard them. (A best-weights file alone is a kill
        // between the two writes of the first epoch's commit.)
        let logged = crate::report::run::logged_epochs(dir);
        if logged > 0 {
            bail!(
                "{} is missing, but the run recorded {logged} epoch(s) in {}: its resumable state was \
                 damaged; start it over with `cobrar-gpu train … --out {} --overwrite`",
                path.display(),
                crate::report::run::TRAIN_LOG_FILE,
                dir.display()
            );
        }
        return Ok(None);
    }
    let file = st::File::read(&path)?;
    let meta = |k: &str| -> anyhow::Result<&String> {
        file.metadata
            .get(k)
            .with_context(|| format!("{}: no {k} in its metadata", path.display()))
    };
    let parse = |k: &str| -> anyhow::Result<u64> {
        meta(k)?
            .parse()
            .with_context(|| format!("{}: {k} is not a number", path.display()))
    };
    let epoch = parse("epoch")? as usize;
    let t = parse("t")?;
    let best_epoch = parse("best_epoch")? as usize;
    let best_score = f64::from_bits(parse("best_score_bits")?);
    // Written since wall times were recorded; 0 and 1 for older states.
    let wall_seconds: f64 = file
        .metadata
        .get("wall_seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let processes: u32 = file
        .metadata
        .get("processes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let history: Vec<EpochRecord> = serde_json::from_str(meta("history")?)
        .with_context(|| format!("{}: unreadable history", path.display()))?;
    if history.len() != epoch {
        bail!(
            "{}: {} epochs of history for epoch {epoch}",
            path.display(),
            history.len()
        );
    }
    let best = if best_epoch > 0 {
        let bpath = best_file(dir, best_epoch);
        let bfile = st::File::read(&bpath)?;
        Some((
            best_score,
            best_epoch,
            read_buffers(&bfile, &bpath, "theta", layout)?,
        ))
    } else {
        None
    };
    Ok(Some(Progress {
        epoch,
        t,
        weights: read_buffers(&file, &path, "theta", layout)?,
        m: read_buffers(&file, &path, "m", layout)?,
        v: read_buffers(&file, &path, "v", layout)?,
        row_steps: read_row_steps(&file, &path, layout)?,
        history,
        best,
        wall_seconds,
        processes,
    }))
}
