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

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::model::{Layout, ModelKind, ModelParams};
use crate::util::write_atomic;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const USER_IDS_FILE: &str = "ids/users.txt";
pub const ITEM_IDS_FILE: &str = "ids/items.txt";

fn branch_prefix(kind: ModelKind, branch: usize) -> &'static str {
    match (kind, branch) {
        (ModelKind::Cobrar, _) => "branch",
        (ModelKind::Deepmf, 0) => "user_branch",
        (ModelKind::Deepmf, _) => "item_branch",
    }
}

/// Every tensor as (name, shape, values) in the documented layout.
pub fn tensors(p: &ModelParams<f32>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let l = &p.layout;
    let d1 = l.d1();
    let mut out = vec![
        (
            "user_projection.weight".to_string(),
            vec![l.n_items, d1],
            p.w_user.clone(),
        ),
        (
            "user_projection.bias".to_string(),
            vec![d1],
            p.bias_user().to_vec(),
        ),
        (
            "item_projection.weight".to_string(),
            vec![l.n_users, d1],
            p.w_item.clone(),
        ),
        (
            "item_projection.bias".to_string(),
            vec![d1],
            p.bias_item().to_vec(),
        ),
    ];
    for branch in 0..l.kind.branches() {
        let prefix = branch_prefix(l.kind, branch);
        for (k, (i, o)) in l.arch.layers().enumerate() {
            let wb = p.layer(branch, k);
            // Stored [W ; b] with W as fan_in × fan_out; nn.Linear wants fan_out × fan_in.
            let mut w = vec![0f32; i * o];
            for r in 0..i {
                for c in 0..o {
                    w[c * i + r] = wb[r * o + c];
                }
            }
            out.push((format!("{prefix}.{k}.weight"), vec![o, i], w));
            out.push((format!("{prefix}.{k}.bias"), vec![o], wb[i * o..].to_vec()));
        }
    }
    out
}

/// Writes the weights to `path` (atomically), with `metadata` in the safetensors header.
pub fn save_weights(
    path: &Path,
    p: &ModelParams<f32>,
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let all = tensors(p);
    let bytes: Vec<Vec<u8>> = all
        .iter()
        .map(|(_, _, v)| bytemuck::cast_slice(v).to_vec())
        .collect();
    let views = all
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let data = safetensors::serialize(views, Some(metadata))?;
    write_atomic(path, &data)
}

/// Reads weights for `layout` from `path`, checking every tensor's presence, dtype and shape.
pub fn load_weights(path: &Path, layout: &Layout) -> anyhow::Result<ModelParams<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut p = ModelParams {
        layout: layout.clone(),
        w_user: Vec::new(),
        w_item: Vec::new(),
        dense: vec![0f32; layout.dense_len],
    };
    // `tensors` of a zero model gives every expected name and shape; fill each from the file.
    let expected = tensors(&ModelParams {
        layout: layout.clone(),
        w_user: vec![0.0; layout.n_items * layout.d1()],
        w_item: vec![0.0; layout.n_users * layout.d1()],
        dense: vec![0.0; layout.dense_len],
    });
    let mut found: HashMap<String, Vec<f32>> = HashMap::new();
    for (name, shape, _) in &expected {
        let t = st
            .tensor(name)
            .with_context(|| format!("{}: tensor {name} missing", path.display()))?;
        ensure!(
            t.dtype() == Dtype::F32,
            "{}: tensor {name} is {:?}, expected F32",
            path.display(),
            t.dtype()
        );
        if t.shape() != shape.as_slice() {
            bail!(
                "{}: tensor {name} has shape {:?}, expected {:?}",
                path.display(),
                t.shape(),
                shape
            );
        }
        found.insert(name.clone(), bytemuck::pod_collect_to_vec(t.data()));
    }
    let mut take = |name: &str| found.remove(name).expect("checked above");
    p.w_user = take("user_projection.weight");
    p.w_item = take("item_projection.weight");
    let d1 = layout.d1();
    p.dense[layout.b_user..layout.b_user + d1].copy_from_slice(&take("user_projection.bias"));
    p.dense[layout.b_item..layout.b_item + d1].copy_from_slice(&take("item_projection.bias"));
    for branch in 0..layout.kind.branches() {
        let prefix = branch_prefix(layout.kind, branch);
        for (k, (i, o)) in layout.arch.layers().enumerate() {
            let w = take(&format!("{prefix}.{k}.weight"));
            let b = take(&format!("{prefix}.{k}.bias"));
            let off = layout.layers[branch][k];
            for r in 0..i {
                for c in 0..o {
                    p.dense[off + r * o + c] = w[c * i + r];
                }
            }
            p.dense[off + i * o..off + (i + 1) * o].copy_from_slice(&b);
        }
    }
    Ok(p)
}

/// Writes original ids, one per line in dense order (`ids/users.txt`, `ids/items.txt`).
pub fn save_ids(dir: &Path, user_ids: &[String], item_ids: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("ids"))
        .with_context(|| format!("cannot create {}/ids", dir.display()))?;
    for (file, ids) in [(USER_IDS_FILE, user_ids), (ITEM_IDS_FILE, item_ids)] {
        let mut text = ids.join("\n");
        text.push('\n');
        write_atomic(&dir.join(file), text.as_bytes())?;
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
    pub config: crate::report::run::RunConfig,
    pub dataset: crate::data::Dataset,
    pub params: ModelParams<f32>,
}

/// Loads a run directory written by `cobrar-gpu train --out DIR`.
pub fn load_run(dir: &Path) -> anyhow::Result<SavedRun> {
    use crate::report::run::{RunConfig, SPLIT_DIR};
    let config = RunConfig::load(dir)?;
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
    let name = config.dataset.name.clone();
    let dataset = crate::data::Dataset::from_parts(name, user_ids, item_ids, train, val, test)?;
    let t = &config.train;
    let layout = Layout::new(t.model, &t.arch, dataset.n_users(), dataset.n_items());
    ensure!(
        layout.counts().total == config.parameters.total,
        "{}: the saved split does not match the model's size",
        dir.display()
    );
    let params = load_weights(&dir.join(WEIGHTS_FILE), &layout)?;
    Ok(SavedRun {
        config,
        dataset,
        params,
    })
}

impl SavedRun {
    /// A GPU engine holding the saved weights, sized for evaluation.
    pub fn engine(
        &self,
        ctx: crate::gpu::GpuContext,
    ) -> anyhow::Result<crate::model::engine::Engine> {
        let opts = crate::model::engine::EngineOptions {
            max_pairs: 4096,
            chunk_rows: None,
        };
        crate::model::engine::Engine::new(
            ctx,
            &self.params,
            &self.dataset.train,
            &self.dataset.train_by_item,
            self.config.train.step_config(),
            opts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Architecture;

    #[test]
    fn weights_round_trip_in_pytorch_layout() {
        for kind in [ModelKind::Cobrar, ModelKind::Deepmf] {
            let arch: Architecture = "8,12,4".parse().unwrap();
            let layout = Layout::new(kind, &arch, 5, 7);
            let p = ModelParams::init(&layout, 1);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.safetensors");
            save_weights(&path, &p, HashMap::new()).unwrap();
            let q = load_weights(&path, &layout).unwrap();
            assert_eq!(p, q);
            // nn.Linear layout: weight[out][in] = stored W[in][out].
            let t = tensors(&p);
            let (_, shape, w) = t
                .iter()
                .find(|(n, _, _)| n.ends_with("branch.0.weight"))
                .unwrap();
            assert_eq!(shape, &vec![12, 8]);
            assert_eq!(w[3 * 8 + 5], p.layer(0, 0)[5 * 12 + 3]);
            let other = Layout::new(kind, &"8,4".parse().unwrap(), 5, 7);
            assert!(load_weights(&path, &other).is_err());
        }
    }
}
