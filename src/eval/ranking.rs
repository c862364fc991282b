//! Full ranking on the GPU (`shaders/rank_topk.wgsl`) over any model's embeddings: every item scored for
//! each evaluated user with the model's scorer, the exclusion CSR's items (the user's training items)
//! dropped, and the top k kept on the GPU with deterministic ties. Only k ids and scores per user come
//! back, tile by tile through the non-blocking read-back ring, so memory is bounded by one tile and the
//! host never waits for the queue between tiles. The scorers, the kernel and its CPU twin are in
//! `kernels::rank_topk`.

use anyhow::ensure;

use crate::gpu::GpuContext;
use crate::gpu::buffers;
use crate::gpu::grid::Grid;
use crate::gpu::readback::ReadbackRing;
use crate::gpu::uniforms::UniformArena;
pub use crate::kernels::rank_topk::{MAX_K, NO_ITEM, Params, RankVariant, Scorer, TopK, rank_cpu};
use crate::kernels::u32_of;

/// Users per dispatch (and per read-back).
pub const TILE_USERS: usize = 4096;

/// What the ranking reads: every user's and item's embedding on the GPU, the scorer, and the items to
/// exclude per user (a CSR by user, usually the training interactions).
pub struct Embeddings<'a> {
    pub users: &'a wgpu::Buffer,
    pub items: &'a wgpu::Buffer,
    pub n_users: usize,
    pub n_items: usize,
    pub dim: usize,
    pub scorer: Scorer,
    pub exclude_ptr: &'a wgpu::Buffer,
    pub exclude_idx: &'a wgpu::Buffer,
}

/// Ranks users against all items on one device.
pub struct Ranker {
    reads: ReadbackRing,
}

impl Ranker {
    pub fn new() -> Ranker {
        Ranker {
            reads: ReadbackRing::new(8),
        }
    }

    /// Top `k` items for each of `users` under `emb`, with the ranking variant measured fastest on
    /// this device (both give the same lists). The first call on a device times both variants on a
    /// sample of `users` (each compiled and run once first) and remembers the faster.
    pub fn rank(
        &mut self,
        ctx: &GpuContext,
        emb: &Embeddings<'_>,
        users: &[u32],
        k: usize,
    ) -> anyhow::Result<TopK> {
        // The serial variant gave wrong lists for embeddings of several hundred floats on lavapipe
        // (MultVAE's 604, at k = 128 in the tests); it is used only as wide as it has been checked.
        if emb.dim > SERIAL_MAX_DIM {
            return self.rank_with(ctx, emb, users, k, RankVariant::Workgroup);
        }
        let variant = match ctx.choice(CHOICE) {
            Some(v) => variant_of(v),
            None => {
                let sample = &users[..users.len().min(256)];
                let mut best = (f64::INFINITY, RankVariant::Workgroup);
                for v in [RankVariant::Workgroup, RankVariant::Serial] {
                    self.rank_with(ctx, emb, sample, k, v)?;
                    let t = std::time::Instant::now();
                    self.rank_with(ctx, emb, sample, k, v)?;
                    let s = t.elapsed().as_secs_f64();
                    if s < best.0 {
                        best = (s, v);
                    }
                }
                ctx.set_choice(CHOICE, best.1 as u32);
                best.1
            }
        };
        self.rank_with(ctx, emb, users, k, variant)
    }

    /// Top `k` items for each of `users` under `emb` with `variant`.
    pub fn rank_with(
        &mut self,
        ctx: &GpuContext,
        emb: &Embeddings<'_>,
        users: &[u32],
        k: usize,
        variant: RankVariant,
    ) -> anyhow::Result<TopK> {
        ensure!(
            (1..=MAX_K).contains(&k),
            "k must be between 1 and {MAX_K}, got {k}"
        );
        ensure!(
            emb.dim.is_multiple_of(4),
            "embedding width must be a multiple of 4"
        );
        let kernel = ctx.kernel(emb.scorer.def(variant))?;
        let tiles: Vec<usize> = (0..users.len()).step_by(TILE_USERS).collect();
        let mut top = TopK {
            users: users.to_vec(),
            k,
            items: Vec::with_capacity(users.len() * k),
            scores: Vec::with_capacity(users.len() * k),
        };
        if users.is_empty() {
            return Ok(top);
        }
        let tile = TILE_USERS.min(users.len());
        let users_buf = buffers::storage_init(ctx, "ranked users", users)?;
        let out_items = buffers::storage(ctx, "top-k items", (tile * k * 4) as u64)?;
        let out_scores = buffers::storage(ctx, "top-k scores", (tile * k * 4) as u64)?;
        let norms = buffers::storage(ctx, "item norms", (emb.n_items * 4) as u64)?;
        let mut arena = UniformArena::new(ctx, tiles.len() + 1);
        let norms_kernel = ctx.kernel(&crate::kernels::rank_topk::RANK_NORMS)?;
        let norms_group = norms_kernel.bind(&ctx.device, &[emb.items, &norms], &arena.buffer);
        let group = kernel.bind(
            &ctx.device,
            &[
                emb.users,
                emb.items,
                emb.exclude_ptr,
                emb.exclude_idx,
                &users_buf,
                &out_items,
                &out_scores,
                &norms,
            ],
            &arena.buffer,
        );
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        // The item norms first (block 0), then every tile (blocks 1..): one upload.
        let norms_grid = Grid::cover(emb.n_items, 64, max_dim);
        let norms_offset = arena.push(&Params {
            n_items: u32_of(emb.n_items),
            d4: u32_of(emb.dim / 4),
            groups_x: norms_grid.groups_x,
            ..Params::default()
        });
        let mut offsets = Vec::with_capacity(tiles.len());
        for &start in &tiles {
            let n = tile.min(users.len() - start);
            let grid = Grid::cover(n, variant.users_per_workgroup(), max_dim);
            let p = Params {
                n_users: u32_of(n),
                user_off: u32_of(start),
                n_items: u32_of(emb.n_items),
                d4: u32_of(emb.dim / 4),
                k: u32_of(k),
                mu: emb.scorer.mu(),
                groups_x: grid.groups_x,
                _pad: 0,
            };
            offsets.push((arena.push(&p), grid.workgroups, n));
        }
        arena.upload(ctx);
        let mut results: Vec<(u64, Vec<u8>)> = Vec::with_capacity(2 * tiles.len());
        for (t, &(off, workgroups, n)) in offsets.iter().enumerate() {
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
                if t == 0 {
                    norms_kernel.dispatch(
                        &mut pass,
                        &norms_group,
                        norms_offset,
                        norms_grid.workgroups,
                    );
                }
                kernel.dispatch(&mut pass, &group, off, workgroups);
            }
            let bytes = (n * k * 4) as u64;
            let tag = 2 * t as u64;
            self.reads
                .record(ctx, &mut enc, &out_items, 0, bytes, tag)?;
            self.reads
                .record(ctx, &mut enc, &out_scores, 0, bytes, tag + 1)?;
            let index = ctx.queue.submit([enc.finish()]);
            self.reads.submitted(&index);
            results.extend(self.reads.ready(ctx)?);
        }
        let last = 2 * tiles.len() as u64 - 1;
        self.reads.wait(ctx, last)?;
        results.extend(self.reads.ready(ctx)?);
        ctx.check()?;
        results.sort_by_key(|r| r.0);
        ensure!(
            results.len() == 2 * tiles.len(),
            "ranking read-backs incomplete"
        );
        for pair in results.chunks(2) {
            top.items
                .extend(bytemuck::cast_slice::<u8, u32>(&pair[0].1));
            top.scores
                .extend(bytemuck::cast_slice::<u8, f32>(&pair[1].1));
        }
        Ok(top)
    }
}

/// The device choice's name and its values.
const CHOICE: &str = "rank_topk.variant";

/// The widest embeddings the serial ranking variant is used for.
pub const SERIAL_MAX_DIM: usize = 128;

fn variant_of(v: u32) -> RankVariant {
    if v == RankVariant::Serial as u32 {
        RankVariant::Serial
    } else {
        RankVariant::Workgroup
    }
}

impl Default for Ranker {
    fn default() -> Self {
        Ranker::new()
    }
}
