//! Parameter layout and host-side parameters: the two projection tables, and one dense block holding
//! the projection biases and every branch layer as [W ; b] (the layout the kernels fold the bias into).
//! Initialisation follows the authors' PyTorch code: Xavier-uniform weights, biases uniform in
//! ±1/√fan_in, everything from the run's seed.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::arch::{Architecture, ModelKind, ParamCounts};
use crate::kernels::Real;

/// Where every parameter lives. Offsets are in f32 elements of the dense block (all multiples of 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub kind: ModelKind,
    pub arch: Architecture,
    pub n_users: usize,
    pub n_items: usize,
    /// b_U (d1) in the dense block.
    pub b_user: usize,
    /// b_T (d1) in the dense block.
    pub b_item: usize,
    /// `layers[branch][l]`: offset of layer l's [W ; b] ((fan_in + 1) × fan_out). Branch 0 serves users
    /// (and items, for CoBraR); DeepMF's branch 1 serves items.
    pub layers: Vec<Vec<usize>>,
    pub dense_len: usize,
}

impl Layout {
    pub fn new(kind: ModelKind, arch: &Architecture, n_users: usize, n_items: usize) -> Layout {
        let d1 = arch.d1();
        let mut off = 2 * d1;
        let mut layers = Vec::new();
        for _ in 0..kind.branches() {
            let mut branch = Vec::new();
            for (i, o) in arch.layers() {
                branch.push(off);
                off += (i + 1) * o;
            }
            layers.push(branch);
        }
        Layout {
            kind,
            arch: arch.clone(),
            n_users,
            n_items,
            b_user: 0,
            b_item: d1,
            layers,
            dense_len: off,
        }
    }

    pub fn d1(&self) -> usize {
        self.arch.d1()
    }

    /// The branch that embeds items: 0 for CoBraR (shared), 1 for DeepMF.
    pub fn item_branch(&self) -> usize {
        self.kind.branches() - 1
    }

    pub fn counts(&self) -> ParamCounts {
        ParamCounts::new(self.kind, &self.arch, self.n_users, self.n_items)
    }

    /// Length of layer `l`'s [W ; b] block.
    pub fn layer_len(&self, l: usize) -> usize {
        let (i, o) = (self.arch.widths[l], self.arch.widths[l + 1]);
        (i + 1) * o
    }
}

/// All parameters on the host. `w_user` is W_U (items × d1: row j is item j's weight row, the layout of
/// PyTorch's EmbeddingBag); `w_item` is W_T (users × d1).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParams<T> {
    pub layout: Layout,
    pub w_user: Vec<T>,
    pub w_item: Vec<T>,
    pub dense: Vec<T>,
}

/// Stream of the run's seed used for initialisation.
const INIT_STREAM: u64 = 1;

fn fill_uniform(rng: &mut impl rand::Rng, out: &mut [f32], bound: f64) {
    let b = bound as f32;
    for v in out {
        *v = if b > 0.0 {
            rng.random_range(-b..b)
        } else {
            0.0
        };
    }
}

fn xavier(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}

impl ModelParams<f32> {
    /// Seeded initialisation (Xavier-uniform weights, biases in ±1/√fan_in).
    pub fn init(layout: &Layout, seed: u64) -> ModelParams<f32> {
        let mut rng = crate::util::seeded_rng(seed, INIT_STREAM);
        let (n, m, d1) = (layout.n_users, layout.n_items, layout.d1());
        let mut w_user = vec![0f32; m * d1];
        let mut w_item = vec![0f32; n * d1];
        let mut dense = vec![0f32; layout.dense_len];
        // The user encoder's first layer is Linear(M → d1); the item encoder's Linear(N → d1).
        fill_uniform(&mut rng, &mut w_user, xavier(m, d1));
        fill_uniform(
            &mut rng,
            &mut dense[layout.b_user..layout.b_user + d1],
            1.0 / (m as f64).sqrt(),
        );
        fill_uniform(&mut rng, &mut w_item, xavier(n, d1));
        fill_uniform(
            &mut rng,
            &mut dense[layout.b_item..layout.b_item + d1],
            1.0 / (n as f64).sqrt(),
        );
        for branch in &layout.layers {
            for (l, &off) in branch.iter().enumerate() {
                let (i, o) = (layout.arch.widths[l], layout.arch.widths[l + 1]);
                fill_uniform(&mut rng, &mut dense[off..off + i * o], xavier(i, o));
                fill_uniform(
                    &mut rng,
                    &mut dense[off + i * o..off + (i + 1) * o],
                    1.0 / (i as f64).sqrt(),
                );
            }
        }
        ModelParams {
            layout: layout.clone(),
            w_user,
            w_item,
            dense,
        }
    }
}

impl<T: Real> ModelParams<T> {
    /// The same parameters in another float type.
    pub fn convert<U: Real>(&self) -> ModelParams<U> {
        let c = |v: &[T]| v.iter().map(|x| U::from_f64(x.to_f64())).collect();
        ModelParams {
            layout: self.layout.clone(),
            w_user: c(&self.w_user),
            w_item: c(&self.w_item),
            dense: c(&self.dense),
        }
    }

    /// All parameters zeroed (optimizer state, gradients).
    pub fn zeros_like(&self) -> ModelParams<T> {
        ModelParams {
            layout: self.layout.clone(),
            w_user: vec![T::default(); self.w_user.len()],
            w_item: vec![T::default(); self.w_item.len()],
            dense: vec![T::default(); self.dense.len()],
        }
    }

    /// Layer `l` of `branch` as [W ; b].
    pub fn layer(&self, branch: usize, l: usize) -> &[T] {
        let off = self.layout.layers[branch][l];
        &self.dense[off..off + self.layout.layer_len(l)]
    }

    pub fn bias_user(&self) -> &[T] {
        &self.dense[self.layout.b_user..self.layout.b_user + self.layout.d1()]
    }

    pub fn bias_item(&self) -> &[T] {
        &self.dense[self.layout.b_item..self.layout.b_item + self.layout.d1()]
    }

    /// Every parameter as one flat view: tables, then the dense block.
    pub fn parts(&self) -> [&[T]; 3] {
        [&self.w_user, &self.w_item, &self.dense]
    }

    pub fn parts_mut(&mut self) -> [&mut [T]; 3] {
        [&mut self.w_user, &mut self.w_item, &mut self.dense]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_counts_and_init_is_seeded() {
        let arch: Architecture = "16,8,4".parse().unwrap();
        for kind in [ModelKind::Cobrar, ModelKind::Deepmf] {
            let layout = Layout::new(kind, &arch, 5, 7);
            let c = layout.counts();
            let p = ModelParams::init(&layout, 3);
            assert_eq!(
                (p.w_user.len() + p.w_item.len() + p.dense.len()) as u64,
                c.total
            );
            assert_eq!(p, ModelParams::init(&layout, 3));
            assert_ne!(p.dense, ModelParams::init(&layout, 4).dense);
            let bound = (6.0f32 / (16 + 8) as f32).sqrt();
            assert!(p.layer(0, 0)[..16 * 8].iter().all(|w| w.abs() <= bound));
            assert!(
                p.layer(0, 0)[..16 * 8]
                    .iter()
                    .any(|w| w.abs() > bound * 0.5)
            );
        }
    }
}
