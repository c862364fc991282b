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

pub fn run(cmd: ExportCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    let out = crate::output::file(&cmd.out, "--out", cmd.overwrite, &[&cmd.checkpoint])?;
    for path in export::output_paths(&out).into_iter().skip(1) {
        crate::output::file(&path, "--out", cmd.overwrite, &[&cmd.checkpoint])?;
    }
    let saved = checkpoint::load_run(&cmd.checkpoint)?;
    let ds = &saved.dataset;
    if let Some(note) = saved.unfinished_note() {
        eprintln!("{note}");
    }
    let mut session = saved.embedded_session(gpu.context()?)?;
    let scorer = session.model.scorer();
    let dim = session.model.dim();
    let users = session.read_embeddings(Side::Users)?;
    let items = session.read_embeddings(Side::Items)?;
    let mut tables = [
        Table {
            name: "users",
            ids: &ds.user_ids,
            values: users,
            dim,
        },
        Table {
            name: "items",
            ids: &ds.item_ids,
            values: items,
            dim,
        },
    ];
    let meta = [
        ("model", saved.config.label()),
        ("dataset", ds.name.clone()),
        (
            "format",
            "cobrar-gpu embeddings; rows follow the .txt id files".into(),
        ),
    ];
    let paths = export::write(&out, &mut tables, scorer, &meta)?;
    eprintln!(
        "exported {} users and {} items × {dim}{} to {}",
        ds.n_users(),
        ds.n_items(),
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
