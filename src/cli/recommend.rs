//! `cobrar-gpu recommend --checkpoint DIR --user ID [-k 10]`, or `--all --out FILE`: top-k lists from a
//! saved model with original ids; a user's training items are never recommended, unless
//! `--include-train` ranks every item (the same scorer and tie rule over an empty exclusion CSR).

use std::path::PathBuf;

use clap::Args;

use super::GpuArgs;
use crate::checkpoint;
use crate::eval::ranking::{self, MAX_K};
use crate::report::run::recommendations_tsv;
use crate::util::write_atomic;

#[derive(Debug, Args)]
pub struct RecommendCommand {
    /// Run directory written by `cobrar-gpu train --out DIR`
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Original id of the user (repeatable)
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub user: Vec<String>,
    /// Every user (requires --out)
    #[arg(long, requires = "out")]
    pub all: bool,
    /// Recommendations per user
    #[arg(short, long, value_name = "K", default_value_t = 10)]
    pub k: usize,
    /// Write `user<TAB>rank<TAB>item<TAB>score` to FILE instead of printing
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace FILE if it exists (never a file of the run itself)
    #[arg(long, requires = "out")]
    pub overwrite: bool,
    /// Rank every item, the user's training items included (same scores and tie rule; without it
    /// they are never recommended)
    #[arg(long)]
    pub include_train: bool,
}

/// Top-k lists of a saved run with the ids to print them (what `recommend` writes).
pub struct Recommendations {
    pub top: ranking::TopK,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
}

/// Checks `cmd`'s `-k` and users, then ranks on the GPU (the note on an unfinished run goes to
/// stderr). Writes nothing.
pub fn recommendations(cmd: &RecommendCommand, gpu: &GpuArgs) -> anyhow::Result<Recommendations> {
    check_k(cmd.k)?;
    let saved = checkpoint::load_run(&cmd.checkpoint)?;
    let ds = &saved.dataset;
    let users: Vec<u32> = if cmd.all {
        (0..ds.n_users() as u32).collect()
    } else {
        let index: std::collections::HashMap<&str, u32> = ds
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        cmd.user
            .iter()
            .map(|id| match index.get(id.as_str()) {
                Some(&u) => Ok(u),
                None => Err(UnknownUser {
                    id: id.clone(),
                    users: ds.n_users(),
                }
                .into()),
            })
            .collect::<anyhow::Result<_>>()?
    };
    if let Some(note) = saved.unfinished_note() {
        eprintln!("{note}");
    }
    let mut session = saved.embedded_session(gpu.context()?)?;
    let emb = if cmd.include_train {
        session.embeddings_including_train()
    } else {
        session.embeddings()
    };
    let top = ranking::rank(&mut session.exec, &emb, &users, cmd.k)?;
    drop(session);
    Ok(Recommendations {
        top,
        user_ids: saved.dataset.user_ids,
        item_ids: saved.dataset.item_ids,
    })
}

/// A `--user` the run's data does not have (the Python package raises it as a `ValueError`).
#[derive(Debug, thiserror::Error)]
#[error("user {id:?} is not in the run's data ({users} users; ids as in the input file)")]
pub struct UnknownUser {
    pub id: String,
    pub users: usize,
}

/// A `-k` outside 1..=MAX_K.
#[derive(Debug, thiserror::Error)]
#[error("-k must be between 1 and {MAX_K}, got {0}")]
pub struct BadK(pub usize);

fn check_k(k: usize) -> anyhow::Result<()> {
    if k == 0 || k > MAX_K {
        return Err(BadK(k).into());
    }
    Ok(())
}

pub fn run(cmd: RecommendCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    check_k(cmd.k)?;
    let out = match &cmd.out {
        Some(o) => Some(crate::output::file(
            o,
            "--out",
            cmd.overwrite,
            &[&cmd.checkpoint],
        )?),
        None => None,
    };
    let r = recommendations(&cmd, gpu)?;
    let tsv = recommendations_tsv(&r.top, &r.user_ids, &r.item_ids);
    match &out {
        Some(path) => {
            write_atomic(path, tsv.as_bytes())?;
            eprintln!(
                "wrote {} recommendations for {} users to {}",
                r.top.items.iter().filter(|&&i| i != u32::MAX).count(),
                r.top.users.len(),
                path.display()
            );
        }
        None => out!("{tsv}"),
    }
    Ok(())
}
