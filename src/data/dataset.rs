//! The loaded dataset the engine trains on, and `load`: resolve the input, read it, run the SPEC §2
//! pipeline (or take a published split as is), and build the index structures.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cold::{self, ColdSet, ColdSpec};
use super::csr::{Csr, check_nnz};
use super::error::DataError;
use super::features::{self, FeatureSet, FeatureSide, FeatureSource, Features};
use super::formats::{DelimitedSpec, Format, Parser};
use super::intern::Interner;
use super::pipeline::{self, Counts, IdOrder};
use super::readers::{self, FileRead, Source};
use super::split::{self, SplitConfig};

/// Name of the dataset embedded in the binary (used when no `--dataset` is given).
pub const EMBEDDED_NAME: &str = "synthetic";

/// `assets/synthetic.tsv.gz`, compiled in so the binary runs from any directory with no files around
/// it. See `assets/README.md` for how it was generated.
pub static EMBEDDED_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/synthetic.tsv.gz"
));

/// How to find, read and preprocess a dataset. The CLI's `DatasetArgs` converts into this; library
/// users and tests build it directly (`LoadOptions { dataset: Some(..), ..Default::default() }`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// A file, a directory (pre-split triple, or one known ratings file), or a known name resolved
    /// under `data_dir`. `None`: the embedded synthetic dataset.
    pub dataset: Option<String>,
    /// Where known names live (`COBRAR_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// `None`: detect from the file name and first lines.
    pub format: Option<Format>,
    /// Layout of generic delimited text.
    pub delimited: DelimitedSpec,
    /// Keep only ratings at or above this value.
    pub min_rating: Option<f32>,
    /// Iterative k-core threshold; 0 disables. Not applied to pre-split data.
    pub kcore: u32,
    /// Not applied to pre-split data.
    pub split: SplitConfig,
    /// A built-in synthetic workload (`data::workload`) instead of `dataset`.
    pub workload: Option<String>,
    /// Side information of the users and of the items (`--user-features`, `--item-features`).
    pub user_features: Option<FeatureSource>,
    pub item_features: Option<FeatureSource>,
    /// Hold out a seeded fraction of the items or users entirely (`--cold-start`, `--cold-ratio`).
    /// Not applied to pre-split data (its `cold_*.txt` file decides).
    pub cold: Option<ColdSpec>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dataset: None,
            data_dir: None,
            format: None,
            delimited: DelimitedSpec::default(),
            min_rating: None,
            kcore: 5,
            split: SplitConfig::default(),
            workload: None,
            user_features: None,
            item_features: None,
            cold: None,
        }
    }
}

/// The built-in workload a dataset was generated from.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct WorkloadReport {
    pub name: String,
    /// SHA-256 of the generated interaction matrix (`Workload::hash`): equal hashes, equal data.
    pub hash: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// Where its shape comes from.
    pub source: String,
    pub generate_seconds: f64,
}

/// Counts after the k-core filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KcoreReport {
    pub k: u32,
    /// Degree-counting passes, including the last one that found nothing to drop.
    pub passes: usize,
    pub counts: Counts,
}

/// The split parts' counts and how they were made.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SplitReport {
    /// "random" (seeded per-user split) or "published" (pre-split input used as is).
    pub method: String,
    pub seed: Option<u64>,
    pub test_ratio: Option<f64>,
    pub val_ratio: Option<f64>,
    /// Users and items with at least one interaction in the part.
    pub train: Counts,
    pub val: Counts,
    pub test: Counts,
    /// Users with fewer than 3 interactions whose sizes were adjusted so they keep a training item.
    pub users_clamped: usize,
    /// Items of the dataset that ended up with no training interaction (all in validation/test).
    pub items_without_train: usize,
    /// Present for a cold-start split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<ColdReport>,
}

/// The entities a cold-start split holds out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdReport {
    pub side: FeatureSide,
    pub ratio: Option<f64>,
    /// Users or items held out.
    pub entities: usize,
    /// Their interactions (all in test).
    pub test_interactions: usize,
}

/// One file of a published split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreSplitFile {
    /// "train", "val" or "test".
    pub part: String,
    /// Records in the file (before `--min-rating` and any dropping).
    pub rows: u64,
    /// Interactions kept.
    pub kept: usize,
    /// Repeated (user, item) records inside the file, collapsed.
    pub duplicates: u64,
    /// Rows whose user has no training interaction.
    pub dropped_unknown_user: u64,
    /// Rows whose user is known but whose item has no training interaction.
    pub dropped_unknown_item: u64,
    /// Rows whose pair is already in an earlier part (train, then validation).
    pub dropped_in_earlier_part: u64,
}

/// What happened to a published split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreSplitReport {
    pub files: Vec<PreSplitFile>,
    /// Records in all three files, before anything is dropped.
    pub total_rows: u64,
    /// Validation/test records dropped (unknown user or item, or already in an earlier part).
    pub dropped: u64,
}

/// Counts before and after every step, and everything needed to reproduce the result.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PipelineReport {
    pub dataset: String,
    /// The resolved format (for delimited text with its separator).
    pub format: String,
    pub inputs: Vec<FileRead>,
    /// Every record as read (duplicates included; users/items are all distinct ids seen).
    pub raw: Counts,
    pub min_rating: Option<f32>,
    /// Distinct pairs after `--min-rating`.
    pub implicit: Counts,
    /// `None` when disabled or for pre-split data.
    pub kcore: Option<KcoreReport>,
    /// The dataset as trained on (the paper's Table 1): N users, M items, all interactions kept
    /// (train + validation + test).
    pub preprocessed: Counts,
    pub split: SplitReport,
    /// Present for pre-split input.
    pub pre_split: Option<PreSplitReport>,
    /// Present for a built-in workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadReport>,
    pub user_id_order: Option<IdOrder>,
    pub item_id_order: Option<IdOrder>,
}

/// A preprocessed, split dataset: what training, evaluation and reporting consume. Users are
/// `0..n_users()`, items `0..n_items()`; the original ids are kept for output.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// e.g. "ml-1m", the file or directory name, or "synthetic".
    pub name: String,
    /// Original id of dense user `u`.
    pub user_ids: Vec<String>,
    /// Original id of dense item `i`.
    pub item_ids: Vec<String>,
    /// By user: each user's sorted training items (negative sampling and ranking masks).
    pub train: Csr,
    /// By item: each item's sorted training users (the item side's sparse input).
    pub train_by_item: Csr,
    /// By user: validation truth.
    pub val: Csr,
    /// By user: test truth.
    pub test: Csr,
    /// Training interactions per item.
    pub item_popularity: Vec<u32>,
    pub report: PipelineReport,
    /// Side information, where it was asked for (empty otherwise).
    pub features: Features,
    /// The users or items a cold-start split held out of training (`None`: an ordinary split).
    pub cold: Option<ColdSet>,
}

impl Dataset {
    /// Every record the pipeline left out, in one line per cause (empty when nothing was dropped):
    /// what `train` and `data stats` report so nothing disappears silently.
    pub fn dropped_records(&self) -> Vec<String> {
        let r = &self.report;
        let mut out = Vec::new();
        let negative: u64 = r.inputs.iter().map(|f| f.negative_rating).sum();
        if negative > 0 {
            out.push(format!(
                "{negative} records with a negative rating dropped (negative feedback is not a positive)"
            ));
        }
        let below: u64 = r.inputs.iter().map(|f| f.below_min_rating).sum();
        if below > 0 {
            out.push(format!(
                "{below} records below --min-rating {} dropped",
                r.min_rating.unwrap_or_default()
            ));
        }
        let duplicates =
            r.raw.interactions as i64 - (negative + below) as i64 - r.implicit.interactions as i64;
        if duplicates > 0 && r.pre_split.is_none() {
            out.push(format!(
                "{duplicates} duplicate (user, item) records collapsed"
            ));
        }
        if let Some(k) = &r.kcore {
            let lost = r
                .implicit
                .interactions
                .saturating_sub(k.counts.interactions);
            if lost > 0 {
                out.push(format!(
                    "{lost} interactions of users or items with fewer than {} dropped by the {}-core filter",
                    k.k, k.k
                ));
            }
        }
        if let Some(p) = &r.pre_split {
            for f in &p.files[1..] {
                let n = f.dropped_unknown_user + f.dropped_unknown_item + f.dropped_in_earlier_part;
                if n > 0 {
                    out.push(format!(
                        "{n} {} records dropped: {} with a user unknown to training, {} with an \
                         unknown item, {} already in an earlier part",
                        f.part,
                        f.dropped_unknown_user,
                        f.dropped_unknown_item,
                        f.dropped_in_earlier_part
                    ));
                }
            }
        }
        out
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Original ids of the users or of the items, in dense order.
    pub fn ids(&self, side: FeatureSide) -> &[String] {
        match side {
            FeatureSide::Users => &self.user_ids,
            FeatureSide::Items => &self.item_ids,
        }
    }

    /// SHA-256 of what a model trains and is evaluated on: the numbers of users and items, the
    /// train, validation and test interactions (dense indices) and a cold-start split's held-out set. Two runs with the same hash used the
    /// same data and the same split.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"cobrar-gpu split v1\0");
        h.update((self.n_users() as u64).to_le_bytes());
        h.update((self.n_items() as u64).to_le_bytes());
        for part in [&self.train, &self.val, &self.test] {
            for words in [&part.offsets, &part.indices] {
                h.update((words.len() as u64).to_le_bytes());
                h.update(bytemuck::cast_slice::<u32, u8>(words));
            }
        }
        // The same three parts with and without a cold set are evaluated differently.
        if let Some(c) = &self.cold {
            h.update(format!("cold {}\0", c.side.noun()).as_bytes());
            h.update((c.ids.len() as u64).to_le_bytes());
            h.update(bytemuck::cast_slice::<u32, u8>(&c.ids));
        }
        crate::util::hex(&h.finalize())
    }

    /// Dense index of an original user id. A linear scan (O(N)), meant for a handful of look-ups such
    /// as `recommend --user ID`; build a map for bulk use.
    pub fn user_index(&self, original: &str) -> Option<usize> {
        self.user_ids.iter().position(|id| id == original)
    }

    /// Dense index of an original item id (linear scan, as [`Dataset::user_index`]).
    pub fn item_index(&self, original: &str) -> Option<usize> {
        self.item_ids.iter().position(|id| id == original)
    }

    /// User `u`'s sorted training items.
    pub fn train_items(&self, u: usize) -> &[u32] {
        self.train.row(u)
    }

    /// Builds a dataset from given parts (hand-made test data, a checkpoint's id maps): derives the
    /// item-side CSR, the popularity and a minimal report. Checks shapes and CSR invariants.
    pub fn from_parts(
        name: impl Into<String>,
        user_ids: Vec<String>,
        item_ids: Vec<String>,
        train: Csr,
        val: Csr,
        test: Csr,
    ) -> anyhow::Result<Dataset> {
        let (n, m) = (user_ids.len(), item_ids.len());
        for (part, csr) in [("train", &train), ("val", &val), ("test", &test)] {
            if csr.n_rows() != n {
                anyhow::bail!("{part} has {} rows for {n} users", csr.n_rows());
            }
            csr.validate(m)
                .map_err(|e| anyhow::anyhow!("{part}: {e}"))?;
        }
        let name = name.into();
        let mut report = PipelineReport {
            dataset: name.clone(),
            format: "in-memory".into(),
            ..Default::default()
        };
        report.preprocessed = Counts::new(n, m, train.nnz() + val.nnz() + test.nnz());
        report.raw = report.preprocessed;
        report.implicit = report.preprocessed;
        report.split.method = "given".into();
        Ok(assemble(name, user_ids, item_ids, train, val, test, report))
    }

    /// Marks the entities of `side` named by `ids` (original ids) as the split's cold set, checking
    /// that the dataset has each and that none has a training or validation interaction.
    pub fn set_cold(
        &mut self,
        side: FeatureSide,
        ratio: Option<f64>,
        ids: &[String],
    ) -> anyhow::Result<()> {
        let index: std::collections::HashMap<&str, u32> = self
            .ids(side)
            .iter()
            .enumerate()
            .map(|(e, id)| (id.as_str(), e as u32))
            .collect();
        let mut dense = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(&e) = index.get(id.as_str()) else {
                anyhow::bail!("held-out {} {id:?} is not in the dataset", side.one());
            };
            dense.push(e);
        }
        let set = ColdSet::new(side, ratio, dense, self.ids(side).len());
        for (name, part) in [("training", &self.train), ("validation", &self.val)] {
            let seen = match side {
                FeatureSide::Users => set
                    .ids
                    .iter()
                    .copied()
                    .find(|&u| part.row_len(u as usize) > 0),
                FeatureSide::Items => part.indices.iter().copied().find(|&i| set.contains(i)),
            };
            if let Some(e) = seen {
                anyhow::bail!(
                    "held-out {} {:?} has {name} interactions: a cold-start split holds out every \
                     interaction of its {}",
                    side.one(),
                    self.ids(side)[e as usize],
                    side.noun()
                );
            }
        }
        self.attach_cold(set);
        Ok(())
    }

    /// Records `set` as the split's cold set (and its counts in the report).
    fn attach_cold(&mut self, set: ColdSet) {
        self.report.split.cold_start = Some(cold_report(&set, &self.test));
        self.cold = Some(set);
    }

    /// Test interactions of the cold entities (`cold`) or of the others (`!cold`), as a CSR by user;
    /// the whole test split when there is no cold set and `!cold`.
    pub fn test_part(&self, cold: bool) -> Csr {
        let Some(c) = &self.cold else {
            return if cold {
                Csr::from_pairs(self.n_users(), &[])
            } else {
                self.test.clone()
            };
        };
        let mut pairs = Vec::new();
        for u in 0..self.n_users() {
            for &i in self.test.row(u) {
                let is_cold = match c.side {
                    FeatureSide::Users => c.contains(u as u32),
                    FeatureSide::Items => c.contains(i),
                };
                if is_cold == cold {
                    pairs.push((u as u32, i));
                }
            }
        }
        Csr::from_pairs(self.n_users(), &pairs)
    }
}

fn cold_report(set: &ColdSet, test: &Csr) -> ColdReport {
    let test_interactions = match set.side {
        FeatureSide::Users => set.ids.iter().map(|&u| test.row_len(u as usize)).sum(),
        FeatureSide::Items => test.indices.iter().filter(|&&i| set.contains(i)).count(),
    };
    ColdReport {
        side: set.side,
        ratio: set.ratio,
        entities: set.len(),
        test_interactions,
    }
}

/// Adds the derived structures and the split counts.
fn assemble(
    name: String,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    train: Csr,
    val: Csr,
    test: Csr,
    mut report: PipelineReport,
) -> Dataset {
    let m = item_ids.len();
    let train_by_item = train.transpose(m);
    let item_popularity: Vec<u32> = (0..m).map(|i| train_by_item.row_len(i) as u32).collect();
    report.split.train = part_counts(&train, &train_by_item);
    report.split.val = part_counts(&val, &val.transpose(m));
    report.split.test = part_counts(&test, &test.transpose(m));
    report.split.items_without_train = item_popularity.iter().filter(|&&p| p == 0).count();
    Dataset {
        name,
        user_ids,
        item_ids,
        train,
        train_by_item,
        val,
        test,
        item_popularity,
        report,
        features: Features::default(),
        cold: None,
    }
}

fn part_counts(by_user: &Csr, by_item: &Csr) -> Counts {
    let nonempty = |c: &Csr| (0..c.n_rows()).filter(|&r| c.row_len(r) > 0).count();
    Counts::new(nonempty(by_user), nonempty(by_item), by_user.nnz())
}

/// Where the interactions come from, once `--dataset` is resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Embedded,
    File(PathBuf),
    /// A directory and its `train`, `val`, `test` files.
    PreSplit(PathBuf, [PathBuf; 3]),
}

/// The file a known dataset name stands for, relative to the data directory.
fn known_relative(name: &str) -> Option<&'static str> {
    Some(match name {
        "ml-1m" => "ml-1m/interactions_all.tsv.gz",
        "ml-100k" => "ml-100k/u.data",
        "ml-latest-small" => "ml-latest-small/ratings.csv",
        "amazon-baby" => "amazon-baby",
        "amazon-music-mmb" => "amazon-music-mmb",
        _ => return None,
    })
}

/// In a directory without a split triple, the first of these files is the dataset.
const DIR_CANDIDATES: &[&str] = &[
    "interactions_all.tsv.gz",
    "interactions_all.tsv",
    "ratings.dat",
    "ratings.dat.gz",
    "u.data",
    "ratings.csv",
    "ratings.csv.gz",
];

/// File stems that say nothing about the dataset; the parent directory names it instead.
const GENERIC_STEMS: &[&str] = &[
    "ratings",
    "u",
    "interactions_all",
    "interactions",
    "data",
    "reviews",
    "train",
];

/// Resolves `--dataset` to a name and an input. An existing path wins over a known name, so a local
/// `./ml-1m` directory is read as a directory.
pub fn resolve(opts: &LoadOptions) -> Result<(String, Input), DataError> {
    let Some(spec) = opts.dataset.as_deref() else {
        return Ok((EMBEDDED_NAME.to_string(), Input::Embedded));
    };
    let path = Path::new(spec);
    if path.exists() {
        return resolve_path(path, opts.format).map(|input| (name_of(path), input));
    }
    // A symbolic link that leads nowhere: say so, rather than "no such file".
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        let why = match std::fs::canonicalize(path) {
            Err(e) if crate::util::is_link_loop(&e) => "a loop of symbolic links".to_string(),
            _ => match std::fs::read_link(path) {
                Ok(t) => format!("a symbolic link to {}, which does not exist", t.display()),
                Err(_) => "a broken symbolic link".to_string(),
            },
        };
        return Err(DataError::Invalid(format!(
            "--dataset {}: {why}",
            path.display()
        )));
    }
    if let Some(rel) = known_relative(spec) {
        let dir = opts
            .data_dir
            .as_ref()
            .ok_or_else(|| DataError::DataDirUnset {
                name: spec.to_string(),
            })?;
        let target = dir.join(rel);
        if !target.exists() {
            return Err(DataError::NotInDataDir {
                name: spec.to_string(),
                dir: dir.clone(),
                expected: target,
            });
        }
        return resolve_path(&target, opts.format).map(|input| (spec.to_string(), input));
    }
    if spec.contains(['/', '\\', '.']) {
        Err(DataError::NotFound {
            path: path.to_path_buf(),
        })
    } else {
        Err(DataError::UnknownDataset {
            name: spec.to_string(),
        })
    }
}

fn resolve_path(path: &Path, format: Option<Format>) -> Result<Input, DataError> {
    if !path.is_dir() {
        return Ok(Input::File(path.to_path_buf()));
    }
    match readers::triple_in(path) {
        Ok(files) if format.is_none() || format == Some(Format::PreSplit) => {
            return Ok(Input::PreSplit(path.to_path_buf(), files));
        }
        Err(missing) if format == Some(Format::PreSplit) => {
            return Err(DataError::MissingTriple {
                dir: path.to_path_buf(),
                missing,
            });
        }
        _ => {}
    }
    for c in DIR_CANDIDATES {
        let p = path.join(c);
        if p.is_file() {
            return Ok(Input::File(p));
        }
    }
    let missing = readers::triple_in(path)
        .err()
        .unwrap_or_else(|| "ratings file".into());
    Err(DataError::MissingTriple {
        dir: path.to_path_buf(),
        missing,
    })
}

/// A short dataset name for reports: a directory's name, or a file's stem (without `.gz` and its
/// extension) unless the stem is generic (`ratings`, `u`, …), in which case the parent directory's.
fn name_of(path: &Path) -> String {
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if abs.is_dir() {
        return file_name(&abs);
    }
    let full = file_name(&abs);
    let without_gz = full.strip_suffix(".gz").unwrap_or(&full);
    let stem = match without_gz.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => without_gz,
    };
    if GENERIC_STEMS.contains(&stem.to_ascii_lowercase().as_str())
        && let Some(parent) = abs.parent()
        && !file_name(parent).is_empty()
    {
        return file_name(parent);
    }
    stem.to_string()
}

/// Loads a dataset: resolve, read, implicit, k-core, re-index, split (or a published split as is).
pub fn load(opts: &LoadOptions) -> anyhow::Result<Dataset> {
    opts.split.validate()?;
    if let Some(c) = &opts.cold {
        c.validate()?;
    }
    if let Some(m) = opts.min_rating
        && !m.is_finite()
    {
        return Err(DataError::Invalid(format!("--min-rating must be a number, got {m}")).into());
    }
    if opts.dataset.is_none()
        && (opts.format.is_some() || opts.delimited != DelimitedSpec::default())
    {
        return Err(DataError::Invalid(
            "--format, --sep and the column flags describe a --dataset file, and none was given"
                .into(),
        )
        .into());
    }
    if let Some(w) = &opts.workload {
        let ds = load_workload(super::workload::find(w)?, opts)?;
        return with_features(ds, &Input::Embedded, opts);
    }
    let (name, input) = resolve(opts)?;
    if let (Some(c), Input::PreSplit(dir, _)) = (&opts.cold, &input) {
        return Err(DataError::Invalid(format!(
            "--cold-start {}: {} is already split (a cold-start split directory holds its cold set \
             in cold_items.txt or cold_users.txt); --cold-start applies to a dataset this program \
             splits",
            c.side.noun(),
            dir.display()
        ))
        .into());
    }
    let ds = match &input {
        Input::Embedded => {
            let src = Source::Embedded {
                name: "synthetic.tsv.gz",
                bytes: EMBEDDED_BYTES,
            };
            load_single(name, &src, opts)?
        }
        Input::File(path) => load_single(name, &Source::open_path(path.clone())?, opts)?,
        Input::PreSplit(dir, files) => load_pre_split(name, dir, files, opts)?,
    };
    with_features(ds, &input, opts)
}

/// Attaches the side information `opts` asks for: a file per side, or MovieLens's own files beside
/// the ratings (`builtin`).
fn with_features(mut ds: Dataset, input: &Input, opts: &LoadOptions) -> anyhow::Result<Dataset> {
    for (side, source) in [
        (FeatureSide::Users, &opts.user_features),
        (FeatureSide::Items, &opts.item_features),
    ] {
        let Some(source) = source else { continue };
        let (pairs, label) = match source {
            FeatureSource::File(path) => (
                features::read_pairs(path, side)?.0,
                path.display().to_string(),
            ),
            FeatureSource::Builtin => {
                let dir = match input {
                    Input::File(path) => path.parent().map(Path::to_path_buf),
                    Input::PreSplit(dir, _) => Some(dir.clone()),
                    Input::Embedded => None,
                };
                let Some(dir) = dir else {
                    return Err(DataError::Invalid(format!(
                        "{} builtin reads MovieLens's own files beside the ratings file; the \
                         built-in synthetic data has none (give --dataset ml-100k or ml-1m, or a \
                         file of id<TAB>feature lines)",
                        side.flag()
                    ))
                    .into());
                };
                let dir = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir
                };
                // A split directory `data split` wrote keeps the features it was given.
                let copy = dir.join(features::split_feature_file(side));
                if matches!(input, Input::PreSplit(..)) && copy.is_file() {
                    let (pairs, source) = features::read_pairs(&copy, side)?;
                    let label = source.unwrap_or_else(|| copy.display().to_string());
                    (pairs, label)
                } else {
                    features::read_builtin(&dir, side)?
                }
            }
        };
        let set = FeatureSet::from_pairs(ds.ids(side), &pairs, label);
        ds.features.set(side, set);
    }
    Ok(ds)
}

/// Loads a dataset from bytes already in memory (`name` stands for the file in messages), with `opts`'
/// format, preprocessing and split (`opts.dataset` is ignored). The fuzz targets drive the readers
/// through it.
pub fn load_bytes(name: &str, bytes: Vec<u8>, opts: &LoadOptions) -> anyhow::Result<Dataset> {
    opts.split.validate()?;
    let src = Source::Memory {
        path: PathBuf::from(name),
        bytes: std::sync::Arc::new(bytes),
    };
    load_single(name_of(Path::new(name)), &src, opts)
}

fn format_label(p: &Parser) -> String {
    match p.format {
        Format::Delimited => format!("delimited ({})", p.sep),
        f => f.name().to_string(),
    }
}

fn check_rating_available(
    parser: &Parser,
    src: &Source,
    opts: &LoadOptions,
) -> Result<(), DataError> {
    if opts.min_rating.is_some() && !parser.has_rating() {
        return Err(DataError::Invalid(format!(
            "{}: --min-rating needs a rating column, and this {} file has none (pass --rating-col)",
            src.display_name(),
            format_label(parser)
        )));
    }
    Ok(())
}

fn load_single(name: String, src: &Source, opts: &LoadOptions) -> anyhow::Result<Dataset> {
    let parser = readers::parser_for(src, opts.format, &opts.delimited)?;
    check_rating_available(&parser, src, opts)?;
    let (mut users, mut items) = (Interner::default(), Interner::default());
    let mut keys = Vec::new();
    let read = readers::read_interactions(
        src,
        &parser,
        opts.min_rating,
        &mut users,
        &mut items,
        &mut keys,
    )?;
    let file = read.path.clone();
    if read.rows == 0 {
        return Err(DataError::Empty {
            step: format!("reading {file}"),
            hint: Some("the file has no records".into()),
        }
        .into());
    }
    let report = PipelineReport {
        dataset: name.clone(),
        format: format_label(&parser),
        raw: Counts::new(users.len(), items.len(), read.rows as usize),
        min_rating: opts.min_rating,
        inputs: vec![read],
        ..Default::default()
    };
    preprocess(name, report, keys, &users, &items, opts, &file)
}

/// Loads a built-in workload: generated (no file), then the same pipeline as a file's interactions.
/// Its ids are "1".."N" for users and items.
fn load_workload(w: &super::workload::Workload, opts: &LoadOptions) -> anyhow::Result<Dataset> {
    if opts.dataset.is_some() {
        return Err(DataError::Invalid(
            "--workload generates its data: drop --dataset (or --workload)".into(),
        )
        .into());
    }
    if opts.min_rating.is_some() {
        return Err(DataError::Invalid(
            "--min-rating: a workload is implicit feedback and has no ratings".into(),
        )
        .into());
    }
    let started = std::time::Instant::now();
    let keys = w.generate();
    let hash = w.hash(&keys);
    let generate_seconds = started.elapsed().as_secs_f64();
    let (mut users, mut items) = (Interner::default(), Interner::default());
    for u in 1..=w.users {
        users.intern(&u.to_string());
    }
    for i in 1..=w.items {
        items.intern(&i.to_string());
    }
    let name = format!("{}-workload", w.name);
    let report = PipelineReport {
        dataset: name.clone(),
        format: "built-in workload".into(),
        raw: Counts::new(w.users, w.items, keys.len()),
        workload: Some(WorkloadReport {
            name: w.name.into(),
            hash,
            users: w.users,
            items: w.items,
            interactions: keys.len(),
            source: w.source.into(),
            generate_seconds,
        }),
        ..Default::default()
    };
    let file = format!("workload {}", w.name);
    preprocess(name, report, keys, &users, &items, opts, &file)
}

/// The SPEC §2 pipeline over interned interactions: implicit, k-core, re-index, split.
fn preprocess(
    name: String,
    mut report: PipelineReport,
    mut keys: Vec<u64>,
    users: &Interner,
    items: &Interner,
    opts: &LoadOptions,
    file: &str,
) -> anyhow::Result<Dataset> {
    pipeline::implicit(&mut keys);
    report.implicit = pipeline::count_keys(&keys, users.len(), items.len());
    if keys.is_empty() {
        return Err(DataError::Empty {
            step: format!("--min-rating {}", opts.min_rating.unwrap_or_default()),
            hint: Some(format!("every rating in {file} is below it")),
        }
        .into());
    }
    if opts.kcore > 0 {
        let passes = pipeline::kcore(&mut keys, users.len(), items.len(), opts.kcore);
        let counts = pipeline::count_keys(&keys, users.len(), items.len());
        report.kcore = Some(KcoreReport {
            k: opts.kcore,
            passes,
            counts,
        });
        if keys.is_empty() {
            return Err(DataError::Empty {
                step: format!("the {}-core filter", opts.kcore),
                hint: Some(format!(
                    "no set of users and items in {file} has {} or more interactions each; lower --kcore (0 disables it)",
                    opts.kcore
                )),
            }
            .into());
        }
    }
    check_nnz(keys.len())?;
    let (du, di, dense) = pipeline::reindex(&keys, users, items);
    drop(keys);
    report.user_id_order = Some(du.order);
    report.item_id_order = Some(di.order);
    report.preprocessed = Counts::new(du.ids.len(), di.ids.len(), dense.len());
    let all = Csr::from_sorted_keys(du.ids.len(), &dense);
    drop(dense);
    let cold = match opts.cold {
        None => None,
        Some(c) => {
            let ids = match c.side {
                FeatureSide::Users => &du.ids,
                FeatureSide::Items => &di.ids,
            };
            let chosen = cold::choose(ids, c.side, c.ratio, opts.split.seed)?;
            Some(ColdSet::new(c.side, Some(c.ratio), chosen, ids.len()))
        }
    };
    let parts = split::split(&all, &du.ids, &opts.split, cold.as_ref());
    report.split.method = "random".into();
    report.split.seed = Some(opts.split.seed);
    report.split.test_ratio = Some(opts.split.test_ratio);
    report.split.val_ratio = Some(opts.split.val_ratio);
    report.split.users_clamped = parts.users_clamped;
    let mut ds = assemble(
        name,
        du.ids,
        di.ids,
        parts.train,
        parts.val,
        parts.test,
        report,
    );
    if let Some(set) = cold {
        ds.attach_cold(set);
    }
    Ok(ds)
}

/// Loads a published `train/val/test` triple as is: users and items are those of the training file;
/// validation/test records with an unknown user or item, or whose pair is already in an earlier part,
/// are dropped and counted. Neither k-core nor the random split is applied; `--min-rating` is.
fn load_pre_split(
    name: String,
    dir: &Path,
    files: &[PathBuf; 3],
    opts: &LoadOptions,
) -> anyhow::Result<Dataset> {
    let parser = Parser::fixed(Format::PreSplit);
    let (mut users, mut items) = (Interner::default(), Interner::default());
    let mut reads = Vec::new();
    let mut part_keys: Vec<Vec<u64>> = Vec::new();
    for f in files {
        let src = Source::open_path(f.clone())?;
        check_rating_available(&parser, &src, opts)?;
        let mut keys = Vec::new();
        reads.push(readers::read_interactions(
            &src,
            &parser,
            opts.min_rating,
            &mut users,
            &mut items,
            &mut keys,
        )?);
        part_keys.push(keys);
    }
    let total_rows: u64 = reads.iter().map(|r| r.rows).sum();
    let mut report = PipelineReport {
        dataset: name.clone(),
        format: Format::PreSplit.name().into(),
        raw: Counts::new(users.len(), items.len(), total_rows as usize),
        min_rating: opts.min_rating,
        ..Default::default()
    };
    let mut union: Vec<u64> = part_keys.concat();
    pipeline::implicit(&mut union);
    report.implicit = pipeline::count_keys(&union, users.len(), items.len());
    drop(union);

    let mut train_keys = std::mem::take(&mut part_keys[0]);
    let train_rows = train_keys.len() as u64;
    pipeline::implicit(&mut train_keys);
    if train_keys.is_empty() {
        return Err(DataError::Empty {
            step: format!("reading {}", reads[0].path),
            hint: Some(if opts.min_rating.is_some() {
                "every training rating is below --min-rating".into()
            } else {
                "the training file has no records".into()
            }),
        }
        .into());
    }
    check_nnz(train_keys.len())?;
    // A cold-start split's held-out entities have no training interaction: its cold file names them,
    // so they are kept (and their validation/test records too).
    let cold_file = cold::read_file(dir)?;
    let mut keep: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    if let Some((side, ids)) = &cold_file {
        let (names, keep) = match side {
            FeatureSide::Users => (&mut users, &mut keep[0]),
            FeatureSide::Items => (&mut items, &mut keep[1]),
        };
        let known = names.len();
        for id in ids {
            let code = names.intern(id);
            if code as usize >= known {
                return Err(DataError::Invalid(format!(
                    "{}: held-out {} {id:?} is in none of the split's three files",
                    dir.join(ColdSet::file_name(*side)).display(),
                    side.one()
                ))
                .into());
            }
            keep.push(code);
        }
    }
    let (du, di, train_dense) =
        pipeline::reindex_keeping(&train_keys, &users, &items, &keep[0], &keep[1]);
    let n = du.ids.len();
    let train = Csr::from_sorted_keys(n, &train_dense);
    let mut files_report = vec![PreSplitFile {
        part: "train".into(),
        rows: reads[0].rows,
        kept: train.nnz(),
        duplicates: train_rows - train_keys.len() as u64,
        dropped_unknown_user: 0,
        dropped_unknown_item: 0,
        dropped_in_earlier_part: 0,
    }];
    let mut earlier: Vec<Csr> = vec![train];
    for (p, part) in ["val", "test"].into_iter().enumerate() {
        let keys = &part_keys[p + 1];
        let mut f = PreSplitFile {
            part: part.into(),
            rows: reads[p + 1].rows,
            kept: 0,
            duplicates: 0,
            dropped_unknown_user: 0,
            dropped_unknown_item: 0,
            dropped_in_earlier_part: 0,
        };
        let mut dense = Vec::with_capacity(keys.len());
        for &k in keys {
            let u = du.code_to_dense[pipeline::user_of(k) as usize];
            let i = di.code_to_dense[pipeline::item_of(k) as usize];
            if u == u32::MAX {
                f.dropped_unknown_user += 1;
            } else if i == u32::MAX {
                f.dropped_unknown_item += 1;
            } else {
                dense.push(pipeline::key(u, i));
            }
        }
        let before = dense.len();
        pipeline::implicit(&mut dense);
        f.duplicates = (before - dense.len()) as u64;
        let before = dense.len();
        dense.retain(|&k| {
            let (u, i) = (pipeline::user_of(k) as usize, pipeline::item_of(k));
            !earlier.iter().any(|c| c.contains(u, i))
        });
        f.dropped_in_earlier_part = (before - dense.len()) as u64;
        f.kept = dense.len();
        earlier.push(Csr::from_sorted_keys(n, &dense));
        files_report.push(f);
    }
    let test = earlier.pop().unwrap_or_default();
    let val = earlier.pop().unwrap_or_default();
    let train = earlier.pop().unwrap_or_default();
    let dropped = files_report[1..]
        .iter()
        .map(|f| f.dropped_unknown_user + f.dropped_unknown_item + f.dropped_in_earlier_part)
        .sum();
    report.pre_split = Some(PreSplitReport {
        files: files_report,
        total_rows,
        dropped,
    });
    report.inputs = reads;
    report.user_id_order = Some(du.order);
    report.item_id_order = Some(di.order);
    report.preprocessed = Counts::new(n, di.ids.len(), train.nnz() + val.nnz() + test.nnz());
    report.split.method = "published".into();
    let mut ds = assemble(name, du.ids, di.ids, train, val, test, report);
    if let Some((side, ids)) = cold_file {
        ds.set_cold(side, cold::recorded_ratio(dir), &ids)
            .map_err(|e| {
                DataError::Invalid(format!(
                    "{}: {e}",
                    dir.join(ColdSet::file_name(side)).display()
                ))
            })?;
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_need_a_data_dir() {
        let opts = LoadOptions {
            dataset: Some("ml-1m".into()),
            ..Default::default()
        };
        let err = resolve(&opts).unwrap_err().to_string();
        assert!(err.contains("COBRAR_DATA_DIR"), "{err}");
        let err = resolve(&LoadOptions {
            data_dir: Some("/nonexistent-dir".into()),
            ..opts
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/nonexistent-dir/ml-1m/interactions_all.tsv.gz"),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_and_missing_paths_are_told_apart() {
        let r = |s: &str| {
            resolve(&LoadOptions {
                dataset: Some(s.into()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert!(r("ml-2m").starts_with("unknown dataset \"ml-2m\""));
        assert_eq!(r("missing.dat"), "missing.dat: no such file or directory");
    }

    #[test]
    fn embedded_dataset_loads() {
        let ds = load(&LoadOptions::default()).unwrap();
        assert_eq!(ds.name, "synthetic");
        assert!(ds.n_users() > 1000 && ds.n_items() > 500);
        assert_eq!(ds.train_by_item.nnz(), ds.train.nnz());
        assert_eq!(
            ds.item_popularity
                .iter()
                .map(|&p| p as usize)
                .sum::<usize>(),
            ds.train.nnz()
        );
        assert!((0..ds.n_users()).all(|u| ds.train.row_len(u) >= 1));
        assert_eq!(ds.user_index(&ds.user_ids[17]), Some(17));
        assert_eq!(ds.user_index("nobody"), None);
    }

    #[test]
    fn from_parts_checks_shapes() {
        let ids = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let train = Csr::from_rows(&[vec![0, 1], vec![2]]);
        let ok = Dataset::from_parts(
            "t",
            ids("u", 2),
            ids("i", 3),
            train.clone(),
            Csr::empty(2),
            Csr::from_rows(&[vec![2], vec![]]),
        )
        .unwrap();
        assert_eq!(ok.item_popularity, vec![1, 1, 1]);
        assert_eq!(ok.train_by_item.row(2), &[1]);
        assert!(
            Dataset::from_parts(
                "t",
                ids("u", 3),
                ids("i", 3),
                train.clone(),
                Csr::empty(3),
                Csr::empty(3)
            )
            .is_err()
        );
        assert!(
            Dataset::from_parts(
                "t",
                ids("u", 2),
                ids("i", 2),
                train,
                Csr::empty(2),
                Csr::empty(2)
            )
            .is_err()
        );
    }
}
