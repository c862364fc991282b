//! Checkpoints: weights as safetensors (loadable from PyTorch), the run's configuration, and the id
//! maps that tie dense indices back to the original user and item ids.
//!
//! Tensor names and shapes (f32, row-major):
//! - `user_projection.weight` [n_items, d1] — W_U, row j is item j's weight row (PyTorch
//!   `EmbeddingBag(n_items, d1).weight`, or the transpose of `Linear(n_items, d1).weight`);
//!   `user_projection.bias` [d1].
//! - `item_projection.weight` [n_users, d1], `item_projection.bias` [d1] — W_T, likewise.
//! - CoBraR: `branch.{l}.weight` [d_{l+1}, d_l] and `branch.{l}.bias` [d_{l+1}] — PyTorch
//!   `nn.Linear` layout, layer l = 0, 1, …
//! - DeepMF: `user_branch.{l}.*` and `item_branch.{l}.*`, the same shapes.

pub mod st;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::models::{ParamLayout, Weights};
use crate::util::write_atomic;

pub use crate::rundir::WEIGHTS_FILE;
pub const USER_IDS_FILE: &str = "ids/users.txt";
pub const ITEM_IDS_FILE: &str = "ids/items.txt";

/// Every tensor as (name, shape, values) in the documented layout, in declaration order.
pub fn tensors(p: &Weights<f32>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    p.layout
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone(), p.tensor(&t.name)))
        .collect()
}

/// Writes the weights to `path` (atomically, deterministic bytes, with a checksum), with `metadata`
/// in the safetensors header. Non-finite weights are refused: they are never saved as a result.
pub fn save_weights(
    path: &Path,
    p: &Weights<f32>,
    metadata: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if let Some((name, i)) = p.first_non_finite() {
        bail!(
            "refusing to save non-finite weights to {}: {name}[{i}] is {}",
            path.display(),
            p.stored(&name)[i]
        );
    }
    let all = tensors(p);
    let views: Vec<st::Tensor<'_>> = all
        .iter()
        .map(|(name, shape, v)| st::Tensor {
            name: name.clone(),
            shape: shape.clone(),
            data: st::Data::F32(v),
        })
        .collect();
    write_atomic(path, &st::serialize(&views, metadata))
}

/// Reads weights for `layout` from `path`: the checksum, every tensor's presence, dtype and shape, and
/// that every value is finite.
pub fn load_weights(path: &Path, layout: &Arc<ParamLayout>) -> anyhow::Result<Weights<f32>> {
    let file = st::File::read(path)?;
    let mut p = Weights::zeros(layout);
    for spec in &layout.tensors {
        let name = &spec.name;
        let Some((shape, values)) = file.tensor(name, path)? else {
            bail!(
                "{}: tensor {name} missing (the file holds another model than config.json describes)",
                path.display()
            );
        };
        if shape != spec.shape {
            bail!(
                "{}: tensor {name} has shape {shape:?}, but config.json's model needs {:?}",
                path.display(),
                spec.shape
            );
        }
        p.set_tensor(name, &values);
    }
    if let Some((name, i)) = p.first_non_finite() {
        bail!(
            "{}: tensor {name} holds a non-finite value ({} at index {i}): the run diverged; \
             retrain with a smaller --lr",
            path.display(),
            p.stored(&name)[i]
        );
    }
    Ok(p)
}

/// Writes original ids, one per line in dense order (`ids/users.txt`, `ids/items.txt`).
pub fn save_ids(dir: &Path, user_ids: &[String], item_ids: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(crate::rundir::IDS_DIR))
        .with_context(|| format!("cannot create {}/ids", dir.display()))?;
    for (file, ids) in [(USER_IDS_FILE, user_ids), (ITEM_IDS_FILE, item_ids)] {
        let mut text = ids.join("\n");
        text.push('\n');
        write_atomic(&dir.join(file), text.as_bytes())?;
    }
    Ok(())
}

/// Files of the side information in a run directory's `features/`: original id, TAB, feature name,
/// after one `# source: …` line.
const FEATURE_FILES: [(crate::data::FeatureSide, &str); 2] = [
    (crate::data::FeatureSide::Users, "users.tsv"),
    (crate::data::FeatureSide::Items, "items.tsv"),
];

fn feature_file(side: crate::data::FeatureSide) -> &'static str {
    FEATURE_FILES[side as usize].1
}

/// Writes the dataset's side information, if it has any (`features/users.tsv`, `features/items.tsv`),
/// so the run's model can be rebuilt from its directory alone.
pub fn save_features(dir: &Path, ds: &crate::data::Dataset) -> anyhow::Result<()> {
    if ds.features.is_empty() {
        return Ok(());
    }
    let folder = dir.join(crate::rundir::FEATURES_DIR);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    crate::data::write_features(ds, &folder, feature_file)
}

/// Reads a run directory's side information back onto its dataset (nothing when it has none).
fn load_features(dir: &Path, ds: &mut crate::data::Dataset) -> anyhow::Result<()> {
    use crate::data::FeatureSet;
    for (side, file) in FEATURE_FILES {
        let path = dir.join(crate::rundir::FEATURES_DIR).join(file);
        if !path.exists() {
            continue;
        }
        let (pairs, source) = crate::data::read_feature_pairs(&path, side)?;
        let source = source.unwrap_or_else(|| "run directory".into());
        let set = FeatureSet::from_pairs(ds.ids(side), &pairs, source);
        if set.unknown_ids > 0 {
            bail!(
                "{}: {} lines name {} not in the run's id maps: the run directory mixes files of \
                 different runs",
                path.display(),
                set.unknown_ids,
                side.noun()
            );
        }
        ds.features.set(side, set);
    }
    Ok(())
}

/// Reads the id maps back.
pub fn load_ids(dir: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let read = |file: &str| -> anyhow::Result<Vec<String>> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text.lines().map(str::to_string).collect())
    };
    Ok((read(USER_IDS_FILE)?, read(ITEM_IDS_FILE)?))
}

/// Everything a run directory holds for re-use: its configuration, the dataset rebuilt from the saved
/// split and id maps, and the best weights.
pub struct SavedRun {
    pub dir: PathBuf,
    pub config: crate::report::run::RunConfig,
    pub dataset: crate::data::Dataset,
    pub params: Weights<f32>,
}

/// Loads a run directory written by `cobrar-gpu train --out DIR`.
pub fn load_run(dir: &Path) -> anyhow::Result<SavedRun> {
    let config = crate::report::run::RunConfig::load(dir)?;
    let dataset = load_dataset(dir, &config)?;
    let t = &config.train;
    let shape = crate::models::DataShape::of(&dataset);
    let layout = Arc::new(crate::models::param_layout(t, shape));
    let params = load_weights(&dir.join(WEIGHTS_FILE), &layout)?;
    Ok(SavedRun {
        dir: dir.to_path_buf(),
        config,
        dataset,
        params,
    })
}

/// The dataset of run directory `dir`, rebuilt from its split and id maps and checked against its
/// configuration.
pub fn load_dataset(
    dir: &Path,
    config: &crate::report::run::RunConfig,
) -> anyhow::Result<crate::data::Dataset> {
    use crate::rundir::SPLIT_DIR;
    let (user_ids, item_ids) = load_ids(dir)?;
    let users: HashMap<&str, u32> = user_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let items: HashMap<&str, u32> = item_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let part = |name: &str| -> anyhow::Result<crate::data::Csr> {
        let path = dir.join(SPLIT_DIR).join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut pairs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let mut f = line.split('\t');
            let (Some(u), Some(i)) = (f.next(), f.next()) else {
                bail!(
                    "{}:{}: expected user<TAB>item, found {line:?}",
                    path.display(),
                    n + 1
                );
            };
            let (Some(&u), Some(&i)) = (users.get(u), items.get(i)) else {
                bail!(
                    "{}:{}: user or item not in the run's id maps: {line:?}",
                    path.display(),
                    n + 1
                );
            };
            pairs.push((u, i));
        }
        Ok(crate::data::Csr::from_pairs(user_ids.len(), &pairs))
    };
    let (train, val, test) = (part("train.tsv")?, part("val.tsv")?, part("test.tsv")?);
    let d = &config.dataset;
    if (user_ids.len(), item_ids.len()) != (d.users, d.items) {
        bail!(
            "{}: ids/ holds {} users and {} items, but config.json says {} and {}: the run directory \
             mixes files of different runs",
            dir.display(),
            user_ids.len(),
            item_ids.len(),
            d.users,
            d.items
        );
    }
    if (train.nnz(), val.nnz(), test.nnz()) != (d.train, d.val, d.test) {
        bail!(
            "{}: split/ holds {}/{}/{} train/validation/test interactions, but config.json says \
             {}/{}/{}: the run directory mixes files of different runs",
            dir.display(),
            train.nnz(),
            val.nnz(),
            test.nnz(),
            d.train,
            d.val,
            d.test
        );
    }
    let name = config.dataset.name.clone();
    let mut ds = crate::data::Dataset::from_parts(name, user_ids, item_ids, train, val, test)?;
    let split_dir = dir.join(SPLIT_DIR);
    if let Some((side, ids)) = crate::data::read_cold_file(&split_dir)? {
        let ratio = crate::data::recorded_cold_ratio(&split_dir);
        ds.set_cold(side, ratio, &ids)
            .with_context(|| split_dir.display().to_string())?;
    }
    load_features(dir, &mut ds)?;
    Ok(ds)
}

impl SavedRun {
    /// The run's model on its training split (for inference: no optimizer state is allocated).
    pub fn model(&self) -> crate::models::Net<'_> {
        crate::models::model_for(
            &self.config.train,
            &self.dataset,
            1,
            crate::batch::IndexStrategy::Host,
        )
    }

    /// When the run is unfinished (no `metrics.json`: training stopped, or is still going), a line
    /// saying so: its weights are the best epoch's so far, not the run's result.
    pub fn unfinished_note(&self) -> Option<String> {
        if self.dir.join(crate::rundir::METRICS_FILE).exists() {
            return None;
        }
        let epochs = crate::report::run::logged_epochs(&self.dir);
        Some(format!(
            "note: {} is an unfinished run (training stopped after {epochs} of at most {} epochs, or \
             is still going): these are its best weights so far, not its result; continue it with \
             `cobrar-gpu train --resume {}`",
            self.dir.display(),
            self.config.train.max_epochs,
            self.dir.display()
        ))
    }

    /// [`SavedRun::session`] with every embedding computed, refusing weights that give non-finite
    /// embeddings (a damaged or hand-edited checkpoint: 1e38 weights overflow), which would otherwise
    /// rank every item alike.
    pub fn embedded_session(
        &self,
        ctx: Arc<crate::gpu::GpuContext>,
    ) -> anyhow::Result<crate::models::Session<crate::gpu::exec::GpuExec, crate::models::Net<'_>>>
    {
        use crate::models::{Model, Side};
        let mut session = self.session(ctx)?;
        session.embed_all()?;
        for side in [Side::Users, Side::Items] {
            let e = session.read_embeddings(side)?;
            let bad = e.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                let rows = e.len() / session.model.dim().max(1);
                bail!(
                    "{}: its weights give {bad} non-finite value(s) in the {} embeddings ({rows} \
                     rows): the checkpoint is damaged or was edited (weights too large to compute \
                     with); retrain, or restore {WEIGHTS_FILE}",
                    self.dir.display(),
                    if side == Side::Users { "user" } else { "item" }
                );
            }
        }
        Ok(session)
    }

    /// An inference session on the GPU holding the saved weights: parameters, the embedding pass and
    /// the embeddings — no optimizer state, no gradients.
    pub fn session(
        &self,
        ctx: Arc<crate::gpu::GpuContext>,
    ) -> anyhow::Result<crate::models::Session<crate::gpu::exec::GpuExec, crate::models::Net<'_>>>
    {
        let model = self.model();
        crate::models::session::memory_plan(&model, crate::models::Mode::Infer, &ctx)?;
        crate::models::session::gpu_session(
            ctx,
            model,
            crate::models::Mode::Infer,
            &self.params,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cobrar::param_layout;
    use crate::models::{Architecture, STUDY_PAIR};

    #[test]
    fn weights_round_trip_in_pytorch_layout() {
        // The shared branch (CoBraR) and one per side (DeepMF).
        for kind in STUDY_PAIR {
            let arch: Architecture = "8,12,4".parse().unwrap();
            let layout = Arc::new(param_layout(kind, &arch, 5, 7));
            let p = Weights::init(&layout, 1);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.safetensors");
            save_weights(&path, &p, &BTreeMap::new()).unwrap();
            let q = load_weights(&path, &layout).unwrap();
            assert_eq!(p, q);
            // nn.Linear layout: weight[out][in] = stored W[in][out].
            let t = tensors(&p);
            let (_, shape, w) = t
                .iter()
                .find(|(n, _, _)| n.ends_with("branch.0.weight"))
                .unwrap();
            assert_eq!(shape, &vec![12, 8]);
            let name = if kind == STUDY_PAIR[0] {
                "branch.0.weight"
            } else {
                "user_branch.0.weight"
            };
            assert_eq!(w[3 * 8 + 5], p.stored(name)[5 * 12 + 3]);
            let other = Arc::new(param_layout(kind, &"8,4".parse().unwrap(), 5, 7));
            assert!(load_weights(&path, &other).is_err());
        }
    }
}
