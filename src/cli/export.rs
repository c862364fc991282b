//! `cobrar-gpu export --checkpoint DIR --out FILE`: the final user and item embeddings of a run, with
//! their original ids, as safetensors and `.npy` (L2-normalised for cosine models, so an
//! inner-product index returns the model's top-k).

use std::path::PathBuf;

use clap::Args;

use super::GpuArgs;
use crate::checkpoint;
use crate::models::{Model, Side};
use crate::report::export::{self, Table};

#[derive(Debug, Args)]
pub struct ExportCommand {
    /// Run directory written by `cobrar-gpu train --out DIR`
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// The safetensors file to write (tensors `users` [N, d] and `items` [M, d]); beside it
    /// `<stem>.users.npy`, `<stem>.items.npy` and the original ids `<stem>.users.txt`, `<stem>.items.txt`
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace existing output files (never files of the run itself)
    #[arg(long)]
    pub overwrite: bool,
}

/// A run's final embeddings as `export` writes them: L2-normalised rows for a cosine model.
pub struct Embeddings {
    /// `user_ids.len()` × `dim`, row-major.
    pub users: Vec<f32>,
    /// `item_ids.len()` × `dim`, row-major.
    pub items: Vec<f32>,
    pub dim: usize,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    pub scorer: crate::eval::ranking::Scorer,
    pub label: String,
    pub dataset: String,
}

/// Computes the final embeddings of the run in `checkpoint` on the GPU (the note on an unfinished run
/// goes to stderr); `normalised`: as `export` writes them (for a cosine model, each row divided by
/// its norm), else as the model computes them.
pub fn embeddings(
    checkpoint: &std::path::Path,
    gpu: &GpuArgs,
    normalised: bool,
) -> anyhow::Result<Embeddings> {
    let saved = checkpoint::load_run(checkpoint)?;
    if let Some(note) = saved.unfinished_note() {
        eprintln!("{note}");
    }
    let mut session = saved.embedded_session(gpu.context()?)?;
    let scorer = session.model.scorer();
    let dim = session.model.dim();
    let mut users = session.read_embeddings(Side::Users)?;
    let mut items = session.read_embeddings(Side::Items)?;
    drop(session);
    if normalised && scorer.normalise_for_inner_product() {
        export::normalise_rows(&mut users, dim);
        export::normalise_rows(&mut items, dim);
    }
    Ok(Embeddings {
        users,
        items,
        dim,
        user_ids: saved.dataset.user_ids,
        item_ids: saved.dataset.item_ids,
        scorer,
        label: saved.config.label(),
        dataset: saved.config.dataset.name,
    })
}

pub fn run(cmd: ExportCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let out = crate::output::file(&cmd.out, "--out", cmd.overwrite, &[&cmd.checkpoint])?;
    for path in export::output_paths(&out).into_iter().skip(1) {
        crate::output::file(&path, "--out", cmd.overwrite, &[&cmd.checkpoint])?;
    }
    // `export::write` normalises the rows itself (once).
    let e = embeddings(&cmd.checkpoint, gpu, false)?;
    let (dim, scorer) = (e.dim, e.scorer);
    let mut tables = [
        Table {
            name: "users",
            ids: &e.user_ids,
            values: e.users,
            dim,
        },
        Table {
            name: "items",
            ids: &e.item_ids,
            values: e.items,
            dim,
        },
    ];
    let meta = [
        ("model", e.label.clone()),
        ("dataset", e.dataset.clone()),
        (
            "format",
            "cobrar-gpu embeddings; rows follow the .txt id files".into(),
        ),
    ];
    let paths = export::write(&out, &mut tables, scorer, &meta)?;
    eprintln!(
        "exported {} users and {} items × {dim}{} to {}",
        e.user_ids.len(),
        e.item_ids.len(),
        if scorer.normalise_for_inner_product() {
            " (L2-normalised: inner product = the model's cosine)"
        } else {
            ""
        },
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
