//! The GPU step graph. Parameters, Adam state and the training CSRs stay on the GPU for the whole run;
//! a step uploads one batch image and one block of kernel parameters, records every stage into one
//! command buffer and submits it. Nothing is read back per step: each step's mean loss lands in a ring
//! the host reads every few steps.
//!
//! Dispatches per step: 2 projections (× table chunks) + L dense forward + 2 loss + 2L dense backward
//! + 1 projection bias + 1 dense Adam + 2 table Adam (× chunks) = 8 + 3L on one-chunk tables.

use anyhow::ensure;

use super::StepConfig;
use super::params::{Layout, ModelParams};
use crate::batch::{self, HostBatch};
use crate::data::Csr;
use crate::gpu::GpuContext;
use crate::gpu::buffers::{self, ChunkedTable};
use crate::gpu::pipelines::Kernel;
use crate::gpu::recorder::{self, Profiler, Recorder};
use crate::gpu::uniforms::UniformArena;
use crate::kernels::{
    Dropout, adam_dense, adam_table, dense_backward_data, dense_backward_weight, dense_forward,
    score_loss, sparse_proj_bias_grad, sparse_proj_forward,
};

/// Steps whose losses the ring keeps between read-backs.
pub const LOSS_RING: usize = 512;

struct Kernels {
    proj: Kernel,
    proj_bias: Kernel,
    dense_fwd: Kernel,
    dense_bwd_data: Kernel,
    dense_bwd_weight: Kernel,
    score: Kernel,
    loss_sum: Kernel,
    adam_dense: Kernel,
    adam_table: Kernel,
}

/// A projection table with its Adam moments, row-chunked alike.
struct Table {
    theta: ChunkedTable,
    m: ChunkedTable,
    v: ChunkedTable,
}

impl Table {
    fn new(
        ctx: &GpuContext,
        name: &str,
        rows: usize,
        cols: usize,
        chunk_rows: Option<usize>,
    ) -> anyhow::Result<Table> {
        let make = |suffix: &str| match chunk_rows {
            Some(r) => {
                ChunkedTable::with_chunk_rows(ctx, &format!("{name}{suffix}"), rows, cols, r)
            }
            None => ChunkedTable::new(ctx, &format!("{name}{suffix}"), rows, cols),
        };
        Ok(Table {
            theta: make("")?,
            m: make(".m")?,
            v: make(".v")?,
        })
    }
}

impl Table {
    /// One `adam_table` bind group per chunk: θ, m, v of the chunk, the batch image, dh.
    fn adam_groups(
        &self,
        ctx: &GpuContext,
        kernel: &Kernel,
        batch: &wgpu::Buffer,
        grads_act: &wgpu::Buffer,
        uniforms: &wgpu::Buffer,
    ) -> Vec<wgpu::BindGroup> {
        (0..self.theta.chunks.len())
            .map(|c| {
                let chunk = [&self.theta.chunks[c], &self.m.chunks[c], &self.v.chunks[c]];
                kernel.bind(
                    ctx,
                    &[chunk[0], chunk[1], chunk[2], batch, grads_act, uniforms],
                )
            })
            .collect()
    }
}

/// Bind groups, built once: buffers never change size during a run.
struct Groups {
    proj_user: Vec<wgpu::BindGroup>,
    proj_item: Vec<wgpu::BindGroup>,
    proj_bias: wgpu::BindGroup,
    dense_fwd: wgpu::BindGroup,
    dense_bwd_data: wgpu::BindGroup,
    dense_bwd_weight: wgpu::BindGroup,
    score: wgpu::BindGroup,
    adam_dense: wgpu::BindGroup,
    adam_user: Vec<wgpu::BindGroup>,
    adam_item: Vec<wgpu::BindGroup>,
}

/// Options that shape the engine's buffers.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Most pairs one step scores.
    pub max_pairs: usize,
    /// Force table chunks of this many rows (tests); `None`: as large as the binding limit allows.
    pub chunk_rows: Option<usize>,
}

pub struct Engine {
    pub ctx: GpuContext,
    pub layout: Layout,
    cfg: StepConfig,
    kernels: Kernels,
    groups: Groups,
    dense: wgpu::Buffer,
    dense_grad: wgpu::Buffer,
    // Adam moments of the dense block: only the bind groups use them today; kept for checkpoints.
    #[allow(dead_code)]
    dense_m: wgpu::Buffer,
    #[allow(dead_code)]
    dense_v: wgpu::Buffer,
    w_user: Table,
    w_item: Table,
    batch: wgpu::Buffer,
    loss_ring: wgpu::Buffer,
    arena: UniformArena,
    /// Offsets (f32 elements) of h and each layer's output in `acts` / `grads_act`.
    act_off: Vec<usize>,
    max_rows: usize,
    max_image: usize,
    /// Optimizer steps taken (Adam's t).
    pub t: u64,
    acts: wgpu::Buffer,
    grads_act: wgpu::Buffer,
    /// The training CSR by user (the ranking excludes these items).
    pub train_ptr: wgpu::Buffer,
    pub train_idx: wgpu::Buffer,
    /// Evaluation embeddings of every user and item (`embed_all`), N × dL and M × dL.
    pub emb_users: wgpu::Buffer,
    pub emb_items: wgpu::Buffer,
    profiler: Option<Profiler>,
    last_times: Vec<(&'static str, f64)>,
}

impl Engine {
    /// Allocates everything, uploads `params` and the training CSRs.
    pub fn new(
        ctx: GpuContext,
        params: &ModelParams<f32>,
        by_user: &Csr,
        by_item: &Csr,
        cfg: StepConfig,
        opts: EngineOptions,
    ) -> anyhow::Result<Engine> {
        let layout = params.layout.clone();
        let (n, m, d1) = (layout.n_users, layout.n_items, layout.d1());
        ensure!(
            by_user.n_rows() == n && by_item.n_rows() == m,
            "CSR shapes do not match the model"
        );
        let kernels = Kernels {
            proj: sparse_proj_forward::kernel(&ctx)?,
            proj_bias: sparse_proj_bias_grad::kernel(&ctx)?,
            dense_fwd: dense_forward::kernel(&ctx)?,
            dense_bwd_data: dense_backward_data::kernel(&ctx)?,
            dense_bwd_weight: dense_backward_weight::kernel(&ctx)?,
            score: score_loss::grad_kernel(&ctx)?,
            loss_sum: score_loss::sum_kernel(&ctx)?,
            adam_dense: adam_dense::kernel(&ctx)?,
            adam_table: adam_table::kernel(&ctx)?,
        };
        let max_rows = batch::max_rows(opts.max_pairs, n, m);
        let max_image = batch::max_image_len(opts.max_pairs, n, m, by_user.nnz());
        let mut act_off = Vec::new();
        let mut total = 0usize;
        for &w in &layout.arch.widths {
            act_off.push(total);
            total += max_rows * w;
        }
        let max_binding = ctx.max_binding();
        ensure!(
            (total * 4) as u64 <= max_binding,
            "a batch of {} pairs needs {} MiB of activations, above the adapter's {} MiB storage binding: \
             use a smaller --batch-size",
            opts.max_pairs,
            (total * 4) >> 20,
            max_binding >> 20
        );
        let dl = layout.dense_len;
        let dense = buffers::storage_init(&ctx, "dense params", &params.dense)?;
        let dense_grad = buffers::storage(&ctx, "dense grads", (dl * 4) as u64)?;
        let dense_m = buffers::storage(&ctx, "dense m", (dl * 4) as u64)?;
        let dense_v = buffers::storage(&ctx, "dense v", (dl * 4) as u64)?;
        let w_user = Table::new(&ctx, "W_U", m, d1, opts.chunk_rows)?;
        let w_item = Table::new(&ctx, "W_T", n, d1, opts.chunk_rows)?;
        w_user.theta.upload(&ctx, &params.w_user);
        w_item.theta.upload(&ctx, &params.w_item);
        let acts = buffers::storage(&ctx, "activations", (total * 4) as u64)?;
        let grads_act = buffers::storage(&ctx, "activation grads", (total * 4) as u64)?;
        let batch = buffers::storage(&ctx, "batch", (max_image * 4) as u64)?;
        let pair_loss = buffers::storage(&ctx, "pair losses", (opts.max_pairs * 4) as u64)?;
        let loss_ring = buffers::storage(&ctx, "loss ring", (LOSS_RING * 4) as u64)?;
        let csr = |name: &str, v: &[u32]| buffers::storage_init(&ctx, name, v);
        let (u_ptr, u_idx) = (
            csr("items of users", &by_user.offsets)?,
            csr("items of users", &by_user.indices)?,
        );
        let (i_ptr, i_idx) = (
            csr("users of items", &by_item.offsets)?,
            csr("users of items", &by_item.indices)?,
        );
        for b in [&u_idx, &i_idx] {
            ensure!(
                b.size() <= max_binding,
                "training interactions exceed the adapter's storage binding limit"
            );
        }
        let dim = layout.arch.embedding();
        let emb_users = buffers::storage(&ctx, "user embeddings", (n * dim * 4) as u64)?;
        let emb_items = buffers::storage(&ctx, "item embeddings", (m * dim * 4) as u64)?;
        let blocks = 16
            + 4 * layout.arch.n_layers()
            + 2 * (w_user.theta.chunks.len() + w_item.theta.chunks.len());
        let arena = UniformArena::new(&ctx, blocks);
        let u = &arena.buffer;
        let k = &kernels;
        let groups = Groups {
            proj_user: w_user
                .theta
                .chunks
                .iter()
                .map(|c| {
                    k.proj
                        .bind(&ctx, &[c, &u_ptr, &u_idx, &batch, &dense, &acts, u])
                })
                .collect(),
            proj_item: w_item
                .theta
                .chunks
                .iter()
                .map(|c| {
                    k.proj
                        .bind(&ctx, &[c, &i_ptr, &i_idx, &batch, &dense, &acts, u])
                })
                .collect(),
            proj_bias: k.proj_bias.bind(&ctx, &[&grads_act, &dense_grad, u]),
            dense_fwd: k.dense_fwd.bind(&ctx, &[&dense, &acts, u]),
            dense_bwd_data: k.dense_bwd_data.bind(&ctx, &[&dense, &acts, &grads_act, u]),
            dense_bwd_weight: k
                .dense_bwd_weight
                .bind(&ctx, &[&acts, &grads_act, &dense_grad, u]),
            score: k.score.bind(
                &ctx,
                &[&acts, &grads_act, &batch, &pair_loss, &loss_ring, u],
            ),
            adam_dense: k
                .adam_dense
                .bind(&ctx, &[&dense, &dense_grad, &dense_m, &dense_v, u]),
            // W_U (rows: items) and W_T (rows: users) gather through the batch's transposed index.
            adam_user: w_user.adam_groups(&ctx, &k.adam_table, &batch, &grads_act, u),
            adam_item: w_item.adam_groups(&ctx, &k.adam_table, &batch, &grads_act, u),
        };
        Ok(Engine {
            ctx,
            layout,
            cfg,
            kernels,
            groups,
            dense,
            dense_grad,
            dense_m,
            dense_v,
            w_user,
            w_item,
            batch,
            loss_ring,
            arena,
            act_off,
            max_rows,
            max_image,
            t: 0,
            acts,
            grads_act,
            train_ptr: u_ptr,
            train_idx: u_idx,
            emb_users,
            emb_items,
            profiler: None,
            last_times: Vec::new(),
        })
    }

    /// Times every kernel of every following step with GPU timestamps (each dispatch then gets its own
    /// pass and the step waits for its timings). Returns false when the device has no timestamps.
    pub fn enable_profiling(&mut self) -> bool {
        self.profiler = Profiler::new(&self.ctx, 256);
        self.profiler.is_some()
    }

    /// (kernel, nanoseconds) of every dispatch of the last profiled step.
    pub fn kernel_times(&self) -> &[(&'static str, f64)] {
        &self.last_times
    }

    pub fn config(&self) -> &StepConfig {
        &self.cfg
    }

    /// Records one training step for `b` and submits it. The step's mean loss goes to ring slot
    /// `(t − 1) % LOSS_RING` where t is the new step count.
    pub fn step(&mut self, b: &HostBatch) -> anyhow::Result<()> {
        ensure!(
            b.n_rows() <= self.max_rows && b.image.len() <= self.max_image,
            "batch larger than the engine was sized for"
        );
        self.t += 1;
        let t = self.t;
        buffers::upload(&self.ctx, &self.batch, 0, &b.image);
        self.arena.clear();
        let profiler = self.profiler.take();
        let mut rec = Recorder::new(&self.ctx, "train step", profiler.as_ref());
        self.record_forward(&mut rec, b, Some(t));
        self.record_backward(&mut rec, b, t);
        let (commands, labels) = rec.finish();
        self.arena.upload(&self.ctx);
        self.ctx.queue.submit([commands]);
        if let Some(p) = &profiler {
            self.last_times = recorder::read_times(&self.ctx, p, &labels)?;
        }
        self.profiler = profiler;
        Ok(())
    }

    /// Row blocks of the stacked batch: (rows, first row, branch).
    fn segments(&self, nu: usize, ni: usize) -> Vec<(usize, usize, usize)> {
        if self.layout.kind.branches() == 1 {
            vec![(nu + ni, 0, 0)]
        } else {
            vec![(nu, 0, 0), (ni, nu, 1)]
        }
    }

    fn dropout(&self, t: Option<u64>, l: usize) -> Dropout {
        match t {
            Some(t) => self.cfg.dropout_at(t, l),
            None => Dropout::NONE,
        }
    }

    /// Projections and branch layers for the batch's user rows then item rows. `t`: training step
    /// (dropout) or `None` (evaluation).
    fn record_forward(&mut self, rec: &mut Recorder<'_>, b: &HostBatch, t: Option<u64>) {
        let (nu, ni) = (b.n_users(), b.n_items());
        self.record_projection(rec, true, nu, b.regions.user_ids, 0);
        self.record_projection(rec, false, ni, b.regions.item_ids, nu);
        let segs = self.segments(nu, ni);
        self.record_branch(rec, &segs, t);
    }

    /// h rows `[row0, row0 + rows)` from the user (W_U) or item (W_T) projection of the ids at `ids_off`.
    fn record_projection(
        &mut self,
        rec: &mut Recorder<'_>,
        user: bool,
        rows: usize,
        ids_off: usize,
        row0: usize,
    ) {
        if rows == 0 {
            return;
        }
        let d1 = self.layout.d1();
        let (table, groups, b_off) = if user {
            (
                &self.w_user.theta,
                &self.groups.proj_user,
                self.layout.b_user,
            )
        } else {
            (
                &self.w_item.theta,
                &self.groups.proj_item,
                self.layout.b_item,
            )
        };
        let n_chunks = table.chunks.len();
        for (c, group) in groups.iter().enumerate() {
            let p = sparse_proj_forward::Params::new(
                &self.ctx,
                sparse_proj_forward::Launch {
                    n_rows: rows,
                    ids_off,
                    h_off: self.act_off[0] + row0 * d1,
                    dim: d1,
                    chunk: table.chunk_rows(c),
                    b_off,
                    first: c == 0,
                    last: c + 1 == n_chunks,
                },
            );
            let off = self.arena.push(&p);
            rec.dispatch(&self.kernels.proj, group, off, p.workgroups(&self.ctx));
        }
    }

    /// Branch layers over row blocks `segs` = (rows, first row, branch).
    fn record_branch(
        &mut self,
        rec: &mut Recorder<'_>,
        segs: &[(usize, usize, usize)],
        t: Option<u64>,
    ) {
        let widths = self.layout.arch.widths.clone();
        for l in 0..widths.len() - 1 {
            let (d_in, d_out) = (widths[l], widths[l + 1]);
            let s: Vec<dense_forward::Segment> = segs
                .iter()
                .filter(|s| s.0 > 0)
                .map(|&(rows, start, branch)| dense_forward::Segment {
                    rows,
                    x_off: self.act_off[l] + start * d_in,
                    y_off: self.act_off[l + 1] + start * d_out,
                    w_off: self.layout.layers[branch][l],
                    row_base: start,
                })
                .collect();
            if s.is_empty() {
                continue;
            }
            let p = dense_forward::Params::new(&s, d_in, d_out, self.dropout(t, l));
            let off = self.arena.push(&p);
            rec.dispatch(
                &self.kernels.dense_fwd,
                &self.groups.dense_fwd,
                off,
                p.workgroups(&s),
            );
        }
    }

    fn record_backward(&mut self, rec: &mut Recorder<'_>, b: &HostBatch, t: u64) {
        let (nu, ni) = (b.n_users(), b.n_items());
        let widths = self.layout.arch.widths.clone();
        let n_layers = widths.len() - 1;
        let dim = self.layout.arch.embedding();
        let e_off = self.act_off[n_layers];
        let ring_slot = ((t - 1) as usize) % LOSS_RING;
        let out_scale = self.dropout(Some(t), n_layers - 1).scale;
        let sp = score_loss::Params::new(
            &self.ctx,
            nu,
            ni,
            b.n_pairs(),
            dim,
            e_off,
            e_off,
            b.regions.pairs,
            self.cfg.mu,
            out_scale,
            ring_slot,
        );
        let off = self.arena.push(&sp);
        rec.dispatch(
            &self.kernels.score,
            &self.groups.score,
            off,
            sp.workgroups(&self.ctx),
        );
        rec.dispatch(&self.kernels.loss_sum, &self.groups.score, off, [1, 1, 1]);

        let segs = self.segments(nu, ni);
        for l in (0..n_layers).rev() {
            let (d_in, d_out) = (widths[l], widths[l + 1]);
            let ws: Vec<dense_backward_weight::Segment> = segs
                .iter()
                .map(|&(rows, start, branch)| dense_backward_weight::Segment {
                    rows,
                    x_off: self.act_off[l] + start * d_in,
                    dz_off: self.act_off[l + 1] + start * d_out,
                    g_off: self.layout.layers[branch][l],
                })
                .collect();
            let p = dense_backward_weight::Params::new(&ws, d_in, d_out);
            let off = self.arena.push(&p);
            rec.dispatch(
                &self.kernels.dense_bwd_weight,
                &self.groups.dense_bwd_weight,
                off,
                p.workgroups(&ws),
            );

            let in_scale = if l == 0 {
                1.0
            } else {
                self.dropout(Some(t), l - 1).scale
            };
            let ds: Vec<dense_backward_data::Segment> = segs
                .iter()
                .filter(|s| s.0 > 0)
                .map(|&(rows, start, branch)| dense_backward_data::Segment {
                    rows,
                    dz_off: self.act_off[l + 1] + start * d_out,
                    dx_off: self.act_off[l] + start * d_in,
                    x_off: self.act_off[l] + start * d_in,
                    w_off: self.layout.layers[branch][l],
                })
                .collect();
            let p = dense_backward_data::Params::new(&ds, d_in, d_out, in_scale);
            let off = self.arena.push(&p);
            rec.dispatch(
                &self.kernels.dense_bwd_data,
                &self.groups.dense_bwd_data,
                off,
                p.workgroups(&ds),
            );
        }

        let d1 = self.layout.d1();
        let dh = self.act_off[0];
        let bp = sparse_proj_bias_grad::Params::new(
            [
                (nu, dh, self.layout.b_user),
                (ni, dh + nu * d1, self.layout.b_item),
            ],
            d1,
        );
        let off = self.arena.push(&bp);
        rec.dispatch(
            &self.kernels.proj_bias,
            &self.groups.proj_bias,
            off,
            bp.workgroups(),
        );

        let step = self.cfg.adam.at_step(t);
        let ap = adam_dense::Params::new(&self.ctx, self.layout.dense_len, step);
        let off = self.arena.push(&ap);
        rec.dispatch(
            &self.kernels.adam_dense,
            &self.groups.adam_dense,
            off,
            ap.workgroups(&self.ctx),
        );

        // W_U's rows gather the batch users' dh (rows from 0); W_T's the batch items' (rows from nu).
        let r = &b.regions;
        let tables = [
            (
                &self.w_user.theta,
                &self.groups.adam_user,
                (r.user_table_ptr, r.user_table_rows),
                dh,
            ),
            (
                &self.w_item.theta,
                &self.groups.adam_item,
                (r.item_table_ptr, r.item_table_rows),
                dh + nu * d1,
            ),
        ];
        for (table, groups, index, dh_off) in tables {
            for (c, group) in groups.iter().enumerate() {
                let p = adam_table::Params::new(
                    &self.ctx,
                    table.chunk_rows(c),
                    d1,
                    index,
                    dh_off,
                    step,
                );
                let off = self.arena.push(&p);
                rec.dispatch(
                    &self.kernels.adam_table,
                    group,
                    off,
                    p.workgroups(&self.ctx),
                );
            }
        }
    }

    /// Storage buffers (row chunks) holding W_U and W_T: more than one when a table exceeds the
    /// adapter's storage binding limit.
    pub fn table_chunks(&self) -> (usize, usize) {
        (
            self.w_user.theta.chunks.len(),
            self.w_item.theta.chunks.len(),
        )
    }

    /// Dispatches one step records (for the dispatch-count report).
    pub fn dispatches_per_step(&self) -> usize {
        let l = self.layout.arch.n_layers();
        let chunks = self.w_user.theta.chunks.len() + self.w_item.theta.chunks.len();
        2 * chunks + l + 2 + 2 * l + 1 + 1
    }

    /// Mean losses of steps `first..=last` (1-based; at most `LOSS_RING` steps, all submitted).
    pub fn read_losses(&self, first: u64, last: u64) -> anyhow::Result<Vec<f32>> {
        ensure!(
            first >= 1 && last >= first && (last - first) < LOSS_RING as u64,
            "loss window"
        );
        let ring: Vec<f32> = buffers::read(&self.ctx, &self.loss_ring, 0, LOSS_RING)?;
        Ok((first..=last)
            .map(|s| ring[((s - 1) as usize) % LOSS_RING])
            .collect())
    }

    /// Waits for all submitted steps.
    pub fn wait(&self) -> anyhow::Result<()> {
        self.ctx.wait()
    }

    /// Current parameters, read back.
    pub fn read_params(&self) -> anyhow::Result<ModelParams<f32>> {
        Ok(ModelParams {
            layout: self.layout.clone(),
            w_user: self.w_user.theta.read(&self.ctx)?,
            w_item: self.w_item.theta.read(&self.ctx)?,
            dense: buffers::read(&self.ctx, &self.dense, 0, self.layout.dense_len)?,
        })
    }

    /// Replaces the parameters (e.g. to restore the best epoch) and keeps the optimizer state.
    pub fn write_params(&self, p: &ModelParams<f32>) -> anyhow::Result<()> {
        ensure!(p.layout == self.layout, "parameters of another model");
        buffers::upload(&self.ctx, &self.dense, 0, &p.dense);
        self.w_user.theta.upload(&self.ctx, &p.w_user);
        self.w_item.theta.upload(&self.ctx, &p.w_item);
        Ok(())
    }

    /// Activations (`grads = false`) or their gradients of the last step: h (`layer` 0) or the output of
    /// branch layer `layer − 1`, first `rows` rows (diagnostics and tests).
    pub fn read_activations(
        &self,
        grads: bool,
        layer: usize,
        rows: usize,
    ) -> anyhow::Result<Vec<f32>> {
        let buf = if grads { &self.grads_act } else { &self.acts };
        buffers::read(
            &self.ctx,
            buf,
            self.act_off[layer],
            rows * self.layout.arch.widths[layer],
        )
    }

    /// Gradients of the dense block from the last step (for tests and diagnostics).
    pub fn read_dense_grads(&self) -> anyhow::Result<Vec<f32>> {
        buffers::read(&self.ctx, &self.dense_grad, 0, self.layout.dense_len)
    }

    /// Embeddings (evaluation mode: no dropout) of every user and every item into `emb_users` and
    /// `emb_items`, on the GPU, in blocks of the engine's row capacity. Nothing is read back.
    pub fn embed_all(&mut self) -> anyhow::Result<()> {
        let users: Vec<u32> = (0..self.layout.n_users as u32).collect();
        let items: Vec<u32> = (0..self.layout.n_items as u32).collect();
        self.embed_blocks(true, &users, |_, _| Ok(()))?;
        self.embed_blocks(false, &items, |_, _| Ok(()))
    }

    /// Evaluation embeddings of `ids` on one side, read back (`ids.len() × dL`).
    pub fn embed(&mut self, users: bool, ids: &[u32]) -> anyhow::Result<Vec<f32>> {
        let dim = self.layout.arch.embedding();
        let mut out = Vec::with_capacity(ids.len() * dim);
        self.embed_blocks(users, ids, |e, rows| {
            out.extend(buffers::read::<f32>(
                &e.ctx,
                &e.acts,
                e.act_off[e.layout.arch.n_layers()],
                rows * dim,
            )?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs the evaluation forward pass over `ids` in blocks; `after(engine, rows)` sees each block's
    /// embeddings in the last activation region. When `ids` is the whole side in order (`embed_all`),
    /// each block is also copied into that side's embedding buffer.
    fn embed_blocks(
        &mut self,
        users: bool,
        ids: &[u32],
        mut after: impl FnMut(&Engine, usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let dim = self.layout.arch.embedding();
        let n_side = if users {
            self.layout.n_users
        } else {
            self.layout.n_items
        };
        let in_order = ids.len() == n_side && ids.iter().enumerate().all(|(k, &v)| k as u32 == v);
        let e_off = (self.act_off[self.layout.arch.n_layers()] * 4) as u64;
        let cap = self.max_rows;
        for (c, chunk) in ids.chunks(cap).enumerate() {
            buffers::upload(&self.ctx, &self.batch, 0, chunk);
            self.arena.clear();
            let mut rec = Recorder::new(&self.ctx, "embed", None);
            self.record_projection(&mut rec, users, chunk.len(), 0, 0);
            // A one-sided block: rows from 0, through the user or the item branch.
            let branch = if users { 0 } else { self.layout.item_branch() };
            self.record_branch(&mut rec, &[(chunk.len(), 0, branch)], None);
            if in_order {
                let dst = if users {
                    &self.emb_users
                } else {
                    &self.emb_items
                };
                let bytes = (chunk.len() * dim * 4) as u64;
                rec.encoder().copy_buffer_to_buffer(
                    &self.acts,
                    e_off,
                    dst,
                    (c * cap * dim * 4) as u64,
                    bytes,
                );
            }
            let (commands, _) = rec.finish();
            self.arena.upload(&self.ctx);
            self.ctx.queue.submit([commands]);
            after(self, chunk.len())?;
        }
        Ok(())
    }

    /// Total bytes of GPU memory the engine holds (parameters, state, work buffers).
    pub fn gpu_bytes(&self) -> u64 {
        let tables = 3 * (self.w_user.theta.bytes() + self.w_item.theta.bytes());
        tables + 4 * (self.layout.dense_len as u64 * 4) + 2 * self.acts.size() + self.batch.size()
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
}
