//! `cobrar-gpu recommend --checkpoint DIR --user ID [-k 10]`, or `--all --out FILE`: top-k lists from a
//! saved model with original ids; a user's training items are never recommended.

use std::path::PathBuf;

use anyhow::bail;
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
}

pub fn run(cmd: RecommendCommand, gpu: &GpuArgs) -> anyhow::Result<()> {
    if cmd.k == 0 || cmd.k > MAX_K {
        bail!("-k must be between 1 and {MAX_K}, got {}", cmd.k);
    }
    let out = match &cmd.out {
        Some(o) => Some(crate::output::file(
            o,
            "--out",
            cmd.overwrite,
            &[&cmd.checkpoint],
        )?),
        None => None,
    };
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
                None => bail!(
                    "user {id:?} is not in the run's data ({} users; ids as in the input file)",
                    ds.n_users()
                ),
            })
            .collect::<anyhow::Result<_>>()?
    };
    if let Some(note) = saved.unfinished_note() {
        eprintln!("{note}");
    }
    let mut session = saved.embedded_session(gpu.context()?)?;
    let emb = session.embeddings();
    let top = ranking::rank(&mut session.exec, &emb, &users, cmd.k)?;
    let tsv = recommendations_tsv(&top, &ds.user_ids, &ds.item_ids);
    match &out {
        Some(path) => {
            write_atomic(path, tsv.as_bytes())?;
            eprintln!(
                "wrote {} recommendations for {} users to {}",
                top.items.iter().filter(|&&i| i != u32::MAX).count(),
                users.len(),
                path.display()
            );
        }
        None => out!("{tsv}"),
    }
    Ok(())
}
