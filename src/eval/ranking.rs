//! Full ranking on the GPU (`shaders/rank_topk.wgsl`): every item scored for each evaluated user from
//! the engine's evaluation embeddings, training items excluded, the top k kept on the GPU with
//! deterministic ties; only k ids and scores per user are read back, tile by tile, so memory is bounded
//! by one tile and never users × items. With its CPU twin.

use anyhow::ensure;
use bytemuck::{Pod, Zeroable};

use crate::data::Csr;
use crate::gpu::GpuContext;
use crate::gpu::buffers;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;
use crate::gpu::uniforms::UniformArena;
use crate::kernels::score_loss::NORM_EPS;
use crate::kernels::{grid_2d, u32_of};
use crate::model::engine::Engine;

/// Largest k the kernel keeps.
pub const MAX_K: usize = 128;
/// Marks an empty position (fewer than k candidate items).
pub const NO_ITEM: u32 = u32::MAX;
/// Users per dispatch (and per read-back).
pub const TILE_USERS: usize = 4096;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    n_users: u32,
    user_off: u32,
    n_items: u32,
    d4: u32,
    k: u32,
    mu: f32,
    groups_x: u32,
    _pad: u32,
}

/// Ranked lists: `items[u * k + r]` is the r-th recommendation of the u-th listed user (`NO_ITEM` past
/// the end of a short list), `scores` the matching predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub users: Vec<u32>,
    pub k: usize,
    pub items: Vec<u32>,
    pub scores: Vec<f32>,
}

impl TopK {
    /// The u-th listed user's recommendations (without empty positions).
    pub fn list(&self, u: usize) -> &[u32] {
        let row = &self.items[u * self.k..(u + 1) * self.k];
        let len = row.iter().position(|&i| i == NO_ITEM).unwrap_or(self.k);
        &row[..len]
    }
}

/// The ranking kernel and its uniform block.
pub struct Ranker {
    kernel: Kernel,
    arena: UniformArena,
}

impl Ranker {
    pub fn new(ctx: &GpuContext) -> anyhow::Result<Ranker> {
        let mut slots = vec![Slot::Read; 5];
        slots.extend([
            Slot::ReadWrite,
            Slot::ReadWrite,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ]);
        Ok(Ranker {
            kernel: Kernel::new(ctx, &shaders::RANK_TOPK, "main", &slots)?,
            arena: UniformArena::new(ctx, 1),
        })
    }

    /// Top `k` items for each of `users` from the engine's evaluation embeddings (call
    /// `engine.embed_all()` first), with prediction clamp `mu`.
    pub fn rank(
        &mut self,
        engine: &Engine,
        users: &[u32],
        k: usize,
        mu: f32,
    ) -> anyhow::Result<TopK> {
        ensure!(
            (1..=MAX_K).contains(&k),
            "k must be between 1 and {MAX_K}, got {k}"
        );
        let ctx = &engine.ctx;
        let dim = engine.layout.arch.embedding();
        let n_items = engine.layout.n_items;
        let users_buf = buffers::storage_init(ctx, "ranked users", users)?;
        let tile = TILE_USERS.min(users.len()).max(1);
        let out_items = buffers::storage(ctx, "top-k items", (tile * k * 4) as u64)?;
        let out_scores = buffers::storage(ctx, "top-k scores", (tile * k * 4) as u64)?;
        let group = self.kernel.bind(
            ctx,
            &[
                &engine.emb_users,
                &engine.emb_items,
                &engine.train_ptr,
                &engine.train_idx,
                &users_buf,
                &out_items,
                &out_scores,
                &self.arena.buffer,
            ],
        );
        let mut top = TopK {
            users: users.to_vec(),
            k,
            items: Vec::with_capacity(users.len() * k),
            scores: Vec::with_capacity(users.len() * k),
        };
        for start in (0..users.len()).step_by(tile) {
            let n = tile.min(users.len() - start);
            let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
            let p = Params {
                n_users: u32_of(n),
                user_off: u32_of(start),
                n_items: u32_of(n_items),
                d4: u32_of(dim / 4),
                k: u32_of(k),
                mu,
                groups_x: grid_2d(n, max_dim)[0],
                _pad: 0,
            };
            self.arena.clear();
            let off = self.arena.push(&p);
            self.arena.upload(ctx);
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("rank"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("rank"),
                    timestamp_writes: None,
                });
                self.kernel
                    .dispatch(&mut pass, &group, off, grid_2d(n, max_dim));
            }
            ctx.queue.submit([enc.finish()]);
            top.items
                .extend(buffers::read::<u32>(ctx, &out_items, 0, n * k)?);
            top.scores
                .extend(buffers::read::<f32>(ctx, &out_scores, 0, n * k)?);
        }
        Ok(top)
    }
}

/// The model's clamped prediction for embeddings `a`, `b`: max(cos, μ).
pub fn score(a: &[f32], b: &[f32], mu: f32) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na = a
        .iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(NORM_EPS);
    let nb = b
        .iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(NORM_EPS);
    (dot / (na * nb)).max(mu as f64)
}

/// CPU twin: `user_emb` (N × dim) and `item_emb` (M × dim), training items excluded, ties by lower
/// item index. Scores are computed in f64.
pub fn rank_cpu(
    user_emb: &[f32],
    item_emb: &[f32],
    dim: usize,
    train: &Csr,
    users: &[u32],
    k: usize,
    mu: f32,
) -> TopK {
    let n_items = item_emb.len() / dim;
    let mut items = Vec::with_capacity(users.len() * k);
    let mut scores = Vec::with_capacity(users.len() * k);
    let mut cand: Vec<(f64, u32)> = Vec::with_capacity(n_items);
    for &u in users {
        let ue = &user_emb[u as usize * dim..(u as usize + 1) * dim];
        cand.clear();
        for i in 0..n_items {
            if !train.contains(u as usize, i as u32) {
                cand.push((score(ue, &item_emb[i * dim..(i + 1) * dim], mu), i as u32));
            }
        }
        cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for r in 0..k {
            match cand.get(r) {
                Some(&(s, i)) => {
                    items.push(i);
                    scores.push(s as f32);
                }
                None => {
                    items.push(NO_ITEM);
                    scores.push(f32::MIN);
                }
            }
        }
    }
    TopK {
        users: users.to_vec(),
        k,
        items,
        scores,
    }
}
