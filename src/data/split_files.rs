//! Writing a dataset's split to disk (`train.tsv`, `val.tsv`, `test.tsv`, `split.json`): what a run
//! directory's `split/` and `data split` hold.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::cold::ColdSet;
use super::csr::Csr;
use super::dataset::{Dataset, PipelineReport};
use super::features::FeatureSide;
use crate::util::write_atomic;

/// What `split.json` holds: enough to know exactly how the three files were made.
#[derive(Serialize)]
struct SplitJson<'a> {
    dataset: &'a str,
    method: &'a str,
    seed: Option<u64>,
    test_ratio: Option<f64>,
    val_ratio: Option<f64>,
    kcore: Option<u32>,
    min_rating: Option<f32>,
    users: usize,
    items: usize,
    train: usize,
    val: usize,
    test: usize,
    inputs: Vec<InputHash<'a>>,
    pipeline: &'a PipelineReport,
}

#[derive(Serialize)]
struct InputHash<'a> {
    path: &'a str,
    bytes: u64,
    sha256: &'a str,
}

/// Writes `train.tsv`, `val.tsv`, `test.tsv` (`user<TAB>item` with original ids, users in dense
/// order, each user's items ascending) and `split.json` (seed, ratios, counts, input sha256) into
/// `dir`, creating it; a cold-start split also writes its cold set (`cold_items.txt` or
/// `cold_users.txt`: original ids, one per line), which loading the directory restores. Each file is written atomically, so an interrupted run never leaves a
/// half-written split; the same dataset and seed give byte-identical files.
pub fn write_split(ds: &Dataset, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, part) in [
        ("train.tsv", &ds.train),
        ("val.tsv", &ds.val),
        ("test.tsv", &ds.test),
    ] {
        write_atomic(&dir.join(name), &part_tsv(ds, part))?;
    }
    // A cold file of an earlier split in the same directory would be read back as this split's.
    for side in [FeatureSide::Users, FeatureSide::Items] {
        let path = dir.join(ColdSet::file_name(side));
        match &ds.cold {
            Some(c) if c.side == side => write_atomic(&path, c.to_text(ds.ids(side)).as_bytes())?,
            _ => remove_if_present(&path)?,
        }
    }
    let r = &ds.report;
    let published = r.pre_split.is_some();
    let json = SplitJson {
        dataset: &ds.name,
        method: if published {
            "pre-split (as published)"
        } else {
            "seeded per-user random"
        },
        seed: r.split.seed,
        test_ratio: r.split.test_ratio,
        val_ratio: r.split.val_ratio,
        kcore: r.kcore.as_ref().map(|k| k.k),
        min_rating: r.min_rating,
        users: ds.n_users(),
        items: ds.n_items(),
        train: ds.train.nnz(),
        val: ds.val.nnz(),
        test: ds.test.nnz(),
        inputs: r
            .inputs
            .iter()
            .map(|f| InputHash {
                path: &f.path,
                bytes: f.bytes,
                sha256: &f.sha256,
            })
            .collect(),
        pipeline: r,
    };
    let mut bytes = serde_json::to_vec_pretty(&json)?;
    bytes.push(b'\n');
    write_atomic(&dir.join("split.json"), &bytes)
}

fn part_tsv(ds: &Dataset, part: &Csr) -> Vec<u8> {
    let mut out = Vec::with_capacity(part.nnz() * 16);
    for u in 0..part.n_rows() {
        let user = ds.user_ids[u].as_bytes();
        for &i in part.row(u) {
            out.extend_from_slice(user);
            out.push(b'\t');
            out.extend_from_slice(ds.item_ids[i as usize].as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// Writes each side's features `ds` has as `<dir>/<name(side)>` (`id<TAB>feature` after a `# source:`
/// line) and removes the file of a side it has none for (left by an earlier write to `dir`).
pub fn write_features(
    ds: &Dataset,
    dir: &Path,
    name: fn(FeatureSide) -> &'static str,
) -> anyhow::Result<()> {
    for side in [FeatureSide::Users, FeatureSide::Items] {
        let path = dir.join(name(side));
        match ds.features.side(side) {
            Some(set) => write_atomic(&path, set.to_tsv(ds.ids(side)).as_bytes())?,
            None => remove_if_present(&path)?,
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}
