//! MultVAE (SPEC §7; Liang et al., WWW 2018, as Elliot's MultiVAE): a user's training row x_u,
//! L2-normalised and with dropout on its entries, goes through the encoder M → hidden (tanh) → 2d
//! (μ, log σ²); z = μ + σ ⊙ ε in training, z = μ at inference; the decoder d → hidden (tanh) → M gives
//! the logits. Loss per batch: −Σ_i x_ui·log_softmax(logits_u)_i averaged over the batch users, plus
//! β·KL(q(z | x_u) ‖ N(0, I)) averaged likewise, β annealed linearly from 0 to `anneal_cap` over
//! `anneal_steps` updates; L2 λ is Adam's coupled weight decay on every parameter (as the PyTorch
//! ports do), so the reported loss is the negative ELBO alone.
//!
//! The encoder's first layer is the sparse row projection (`spmm`, per-row scale 1/√|x_u| and the
//! dropout mask on the entries), its weight gradient the transposed sum over the batch's index
//! (`spmm_transpose`). The softmax runs over blocks of logit rows sized so the step's activations fit
//! one storage binding whatever M is; each block's output-layer gradients are added in block order.
//! Ranking needs no softmax (it is monotone): a user's embedding is its decoder hidden row with a
//! trailing 1, an item's its column of the output layer's [W ; b], so their dot product is the logit.

use std::sync::Arc;

use super::Block;
use super::arch::{Architecture, ParamCounts};
use super::net::Net;
use super::params::{DENSE, Init, ParamLayout, TensorSpec};
use super::spec::{self, ModelSpec};
use super::{
    Embedding, Mode, Model, ModelKind, MomentIds, Side, WithMoments, buffers, grad_buffer,
};
use crate::batch::IndexStrategy;
use crate::config::TrainConfig;
use crate::data::Csr;
use crate::data::Dataset;
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufId, BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::{self, AdamConfig};
use crate::kernels::{
    Activation, Dropout, column_sums, dense_backward_data, dense_backward_weight, dense_forward,
    spmm, spmm_transpose, strided_copy, vae,
};
use crate::sampler::Pair;
use crate::sampler::SamplerKind;

/// The input layer's table (items × hidden).
pub const INPUT: &str = "W_in";
/// The hidden width of the study's MultVAE.
pub const HIDDEN: usize = 600;
/// What a step's activations may take: WebGPU's default storage binding (128 MiB), which every
/// adapter offers; the logit blocks are sized to stay within it.
pub const ACTS_BUDGET: u64 = 128 << 20;

/// MultVAE's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultVaeConfig {
    pub hidden: usize,
    pub latent: usize,
    /// Dropout rate on the input's entries.
    pub dropout: f32,
    /// β's final value and the updates it takes to reach it.
    pub anneal_cap: f32,
    pub anneal_steps: u64,
    /// lr and λ (coupled weight decay).
    pub adam: AdamConfig,
    pub seed: u64,
    /// Logit rows per softmax block; `None`: as many as the activations' budget allows.
    pub logit_rows: Option<usize>,
}

impl MultVaeConfig {
    /// β at optimizer step `t` (1-based): min(cap, (t − 1) / anneal_steps), Liang's schedule (the
    /// update count before this update).
    pub fn beta(&self, t: u64) -> f32 {
        if self.anneal_steps == 0 {
            return self.anneal_cap;
        }
        ((t - 1) as f64 / self.anneal_steps as f64).min(self.anneal_cap as f64) as f32
    }

    /// The input dropout of step `t`.
    pub fn input_dropout(&self, t: u64) -> Dropout {
        Dropout::new(self.dropout, self.seed, t, 0)
    }
}

/// The parameter tensors on `n_items` items. The output layer has M rounded up to a multiple of 4
/// rows (the kernels' vec4 rows); the padding rows are never scored and get no data gradient.
pub fn param_layout(hidden: usize, latent: usize, n_items: usize) -> ParamLayout {
    let m4 = n_items.next_multiple_of(4);
    ParamLayout::new(vec![
        // Stored input-major like CoBraR's projection tables: row j is item j's weights.
        TensorSpec::table(
            "encoder.0.weight",
            INPUT,
            n_items,
            hidden,
            Init::xavier(n_items, hidden),
        ),
        TensorSpec::dense("encoder.0.bias", &[hidden], false, Init::Zeros),
        TensorSpec::dense(
            "encoder.1.weight",
            &[2 * latent, hidden],
            true,
            Init::xavier(hidden, 2 * latent),
        ),
        TensorSpec::dense("encoder.1.bias", &[2 * latent], false, Init::Zeros),
        TensorSpec::dense(
            "decoder.0.weight",
            &[hidden, latent],
            true,
            Init::xavier(latent, hidden),
        ),
        TensorSpec::dense("decoder.0.bias", &[hidden], false, Init::Zeros),
        TensorSpec::dense(
            "decoder.1.weight",
            &[m4, hidden],
            true,
            Init::xavier(hidden, n_items),
        ),
        TensorSpec::dense("decoder.1.bias", &[m4], false, Init::Zeros),
    ])
}

/// One step's upload: the batch users, then the transposed index of their training rows (per item,
/// the batch rows holding it, ascending).
pub struct VaeBatch {
    pub image: Vec<u32>,
    /// Users in the batch.
    pub n: usize,
    /// Offsets in `image` of the index's row offsets (M + 1) and of its batch rows.
    pub ptr_off: usize,
    pub list_off: usize,
}

impl VaeBatch {
    pub fn build(users: &[u32], by_user: &Csr, n_items: usize) -> VaeBatch {
        let n = users.len();
        let mut image = Vec::with_capacity(n + n_items + 1);
        image.extend_from_slice(users);
        let ptr_off = image.len();
        image.resize(ptr_off + n_items + 1, 0);
        for &u in users {
            for &i in by_user.row(u as usize) {
                image[ptr_off + i as usize + 1] += 1;
            }
        }
        for i in 0..n_items {
            image[ptr_off + i + 1] += image[ptr_off + i];
        }
        let list_off = image.len();
        image.resize(list_off + image[ptr_off + n_items] as usize, 0);
        let mut fill = image[ptr_off..ptr_off + n_items].to_vec();
        for (r, &u) in users.iter().enumerate() {
            for &i in by_user.row(u as usize) {
                image[list_off + fill[i as usize] as usize] = r as u32;
                fill[i as usize] += 1;
            }
        }
        VaeBatch {
            image,
            n,
            ptr_off,
            list_off,
        }
    }
}

/// Where the activations lie (f32 elements, for blocks of `rows` rows).
#[derive(Debug, Clone, Copy)]
struct Acts {
    h1: usize,
    mulv: usize,
    z: usize,
    h2: usize,
    logits: usize,
}

/// MultVAE on a training split.
pub struct MultVae<'d> {
    pub cfg: MultVaeConfig,
    by_user: &'d Csr,
    n_items: usize,
    /// Most users one step (and one embedding block) holds.
    pub max_users: usize,
    params: Arc<ParamLayout>,
    /// Offsets of the dense tensors: encoder.0.bias, encoder.1 [W ; b], decoder.0, decoder.1.
    b_in: usize,
    enc1: usize,
    dec0: usize,
    dec1: usize,
}

impl<'d> MultVae<'d> {
    pub fn new(
        cfg: MultVaeConfig,
        by_user: &'d Csr,
        n_items: usize,
        max_users: usize,
    ) -> MultVae<'d> {
        let params = Arc::new(param_layout(cfg.hidden, cfg.latent, n_items));
        let at = |name: &str| params.offset(name);
        MultVae {
            b_in: at("encoder.0.bias"),
            enc1: at("encoder.1.weight"),
            dec0: at("decoder.0.weight"),
            dec1: at("decoder.1.weight"),
            cfg,
            by_user,
            n_items,
            max_users: max_users.max(1),
            params,
        }
    }

    fn m4(&self) -> usize {
        self.n_items.next_multiple_of(4)
    }

    /// f32 elements of one user's activations: h1, [μ | log σ²], z, h2.
    fn per_row(&self) -> usize {
        2 * self.cfg.hidden + 3 * self.cfg.latent
    }

    /// Logit rows per softmax block.
    pub fn logit_rows(&self) -> usize {
        let rows = self.cfg.logit_rows.unwrap_or_else(|| {
            let fixed = (self.max_users * self.per_row()) as u64 * 4;
            let left = ACTS_BUDGET.saturating_sub(fixed) / (self.m4() as u64 * 4);
            left as usize
        });
        rows.clamp(1, self.max_users)
    }

    fn acts(&self) -> Acts {
        let (rows, h, d) = (self.max_users, self.cfg.hidden, self.cfg.latent);
        let h1 = 0;
        let mulv = h1 + rows * h;
        let z = mulv + rows * 2 * d;
        let h2 = z + rows * d;
        Acts {
            h1,
            mulv,
            z,
            h2,
            logits: h2 + rows * h,
        }
    }

    fn acts_len(&self, mode: Mode) -> usize {
        let logits = match mode {
            Mode::Infer => 0,
            _ => self.logit_rows() * self.m4(),
        };
        self.acts().logits + logits
    }

    /// The most index entries a batch holds: the longest `max_users` training rows.
    fn max_entries(&self) -> usize {
        let mut lens: Vec<usize> = (0..self.n_users())
            .map(|u| self.by_user.row_len(u))
            .collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.iter().take(self.max_users).sum()
    }

    fn vae_layout(&self, rows: usize) -> vae::Layout {
        let a = self.acts();
        vae::Layout {
            rows,
            d: self.cfg.latent,
            mulv_off: a.mulv,
            z_off: a.z,
            ids_off: 0,
            n_items: self.n_items,
        }
    }

    /// The encoder's sparse input layer over the `rows` users at the start of `batch`: h1 = tanh(b +
    /// s_u·Σ kept W_in rows), one launch per table chunk.
    fn input_layer(&self, pb: &mut PlanBuilder<'_, '_>, ids: &Ids, rows: usize, dropout: Dropout) {
        let (table, h) = (ids.table, self.cfg.hidden);
        let n_chunks = pb.layout.chunks(table);
        for c in 0..n_chunks {
            let launch = spmm::Launch {
                n_rows: rows,
                ids_off: 0,
                h_off: self.acts().h1,
                dim: h,
                chunk: pb.layout.chunk_rows(table, c),
                bias: Some(self.b_in),
                first: c == 0,
                last: c + 1 == n_chunks,
                row_scale: true,
                dropout,
            };
            let (p, grid) = launch.params(pb.max_per_dim);
            let binds = [
                pb.layout.chunk(table, c),
                ids.ptr.into(),
                ids.idx.into(),
                ids.batch.into(),
                ids.dense.into(),
                ids.acts.into(),
            ];
            let entries = self.entries(rows, launch.chunk);
            let cost = spmm::cost(&p, entries);
            pb.dispatch_costed(spmm::def(Activation::Tanh), &binds, &p, grid, cost);
        }
    }

    /// Training entries `rows` users hold in table rows `chunk`, estimated from the mean row (the
    /// cost counts only).
    fn entries(&self, rows: usize, chunk: (usize, usize)) -> u64 {
        let share = (chunk.1 - chunk.0) as f64 / self.n_items.max(1) as f64;
        let mean = self.by_user.nnz() as f64 / self.n_users().max(1) as f64;
        (rows as f64 * mean * share) as u64
    }

    /// A dense layer `d_in → d_out` over `rows` rows from `x` to `y` with weights at `w`.
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &self,
        pb: &mut PlanBuilder<'_, '_>,
        ids: &Ids,
        act: Activation,
        rows: usize,
        (x, y, w): (usize, usize, usize),
        d_in: usize,
        d_out: usize,
    ) {
        let s = [dense_forward::Segment {
            rows,
            x_off: x,
            y_off: y,
            w_off: w,
            row_base: 0,
        }];
        let (p, grid) = dense_forward::params(&s, d_in, d_out, Dropout::NONE);
        let cost = dense_forward::cost(&s, d_in, d_out);
        let binds = [ids.dense.into(), ids.acts.into()];
        pb.dispatch_costed(dense_forward::def(act, false), &binds, &p, grid, cost);
    }

    /// A dense layer's backward: its [W ; b] gradient from X at `x` and dZ at `dz` (added to the one
    /// there when `accumulate`), and dX ⊙ act'(X) at `x` in `grads_act`, where `act` is X's own
    /// activation.
    #[allow(clippy::too_many_arguments)]
    fn dense_backward(
        &self,
        pb: &mut PlanBuilder<'_, '_>,
        step: &StepIds,
        act: Activation,
        rows: usize,
        (x, dz, w): (usize, usize, usize),
        d_in: usize,
        d_out: usize,
        accumulate: bool,
    ) {
        let (acts, grads_act, dense) = (step.fwd.acts, step.grads_act, step.fwd.dense);
        let grads = step.dense_grad;
        let ws = [dense_backward_weight::Segment {
            rows,
            x_off: x,
            dz_off: dz,
            g_off: w,
        }];
        let (mut p, grid) = dense_backward_weight::params(&ws, d_in, d_out);
        p.accumulate = accumulate as u32;
        let binds = [acts.into(), grads_act.into(), grads.into()];
        let cost = dense_backward_weight::cost(&ws, d_in, d_out);
        pb.dispatch_costed(&dense_backward_weight::DEF, &binds, &p, grid, cost);
        let ds = [dense_backward_data::Segment {
            rows,
            dz_off: dz,
            dx_off: x,
            x_off: x,
            w_off: w,
        }];
        let (p, grid) = dense_backward_data::params(&ds, d_in, d_out, 1.0);
        let binds = [dense.into(), acts.into(), grads_act.into()];
        let cost = dense_backward_data::cost(&ds, d_in, d_out);
        pb.dispatch_costed(dense_backward_data::def(act), &binds, &p, grid, cost);
    }

    /// Forward and backward of step `t`: the gradients into `dense.grad` and `W_in.grad`, the mean
    /// loss into the ring.
    fn forward_backward<'a>(
        &self,
        pb: &mut PlanBuilder<'_, 'a>,
        step: &StepIds,
        b: &'a VaeBatch,
        t: u64,
    ) {
        let max = pb.max_per_dim;
        let batch = step.fwd.batch;
        pb.upload(batch, 0, &b.image);
        let (n, h, d, m4) = (b.n, self.cfg.hidden, self.cfg.latent, self.m4());
        let a = self.acts();
        let noise = vae::noise_key(self.cfg.seed, t);
        let lay = self.vae_layout(n);
        let (acts, grads_act, row_loss) = (step.fwd.acts, step.grads_act, step.row_loss);

        self.input_layer(pb, &step.fwd, n, self.cfg.input_dropout(t));
        self.dense(
            pb,
            &step.fwd,
            Activation::Identity,
            n,
            (a.h1, a.mulv, self.enc1),
            h,
            2 * d,
        );
        let (p, grid) = lay.reparam(Some(noise), max);
        pb.dispatch_costed(
            &vae::REPARAM,
            &[acts.into()],
            &p,
            grid,
            vae::latent_cost(&p),
        );
        self.dense(
            pb,
            &step.fwd,
            Activation::Tanh,
            n,
            (a.z, a.h2, self.dec0),
            d,
            h,
        );

        // The output layer and the softmax, block by block; the output layer's gradient is the sum
        // of the blocks' in block order.
        let block = self.logit_rows();
        let (ptr, idx) = (step.fwd.ptr, step.fwd.idx);
        for (k, row0) in (0..n).step_by(block).enumerate() {
            let rows = block.min(n - row0);
            let x = a.h2 + row0 * h;
            self.dense(
                pb,
                &step.fwd,
                Activation::Identity,
                rows,
                (x, a.logits, self.dec1),
                h,
                m4,
            );
            let (p, grid) = lay.softmax(row0, rows, a.logits, max);
            let binds = [
                acts.into(),
                grads_act.into(),
                batch.into(),
                ptr.into(),
                idx.into(),
                row_loss.into(),
            ];
            let users = &b.image[row0..row0 + rows];
            let entries: u64 = users
                .iter()
                .map(|&u| self.by_user.row_len(u as usize) as u64)
                .sum();
            let cost = vae::softmax_cost(&p, entries);
            pb.dispatch_costed(&vae::SOFTMAX, &binds, &p, grid, cost);
            let w = (x, a.logits, self.dec1);
            self.dense_backward(pb, step, Activation::Tanh, rows, w, h, m4, k > 0);
        }

        self.dense_backward(
            pb,
            step,
            Activation::Identity,
            n,
            (a.z, a.h2, self.dec0),
            d,
            h,
            false,
        );
        let (p, grid) = lay.kl(noise, self.cfg.beta(t), max);
        let binds = [acts.into(), grads_act.into(), row_loss.into()];
        pb.dispatch_costed(&vae::KL, &binds, &p, grid, vae::latent_cost(&p));
        let w = (a.h1, a.mulv, self.enc1);
        self.dense_backward(pb, step, Activation::Tanh, n, w, h, 2 * d, false);

        let grads = step.dense_grad;
        let (p, mut grid) = column_sums::params([(n, a.h1, self.b_in), (0, 0, 0)], h);
        grid[2] = 1; // one block
        let binds = [grads_act.into(), grads.into()];
        pb.dispatch_costed(&column_sums::DEF, &binds, &p, grid, column_sums::cost(&p));

        let (table, table_grad) = (step.fwd.table, step.table_grad);
        for c in 0..pb.layout.chunks(table) {
            let launch = spmm_transpose::Launch {
                chunk: pb.layout.chunk_rows(table, c),
                dim: h,
                ptr_off: b.ptr_off,
                list_off: b.list_off,
                ids_off: 0,
                dz_off: a.h1,
                row_scale: true,
                dropout: self.cfg.input_dropout(t),
            };
            let (p, grid) = launch.params(max);
            let binds = [
                batch.into(),
                ptr.into(),
                grads_act.into(),
                pb.layout.chunk(table_grad, c),
            ];
            let range = &b.image[b.ptr_off..];
            let entries = (range[launch.chunk.1] - range[launch.chunk.0]) as u64;
            let cost = spmm_transpose::cost(&p, entries);
            pb.dispatch_costed(&spmm_transpose::DEF, &binds, &p, grid, cost);
        }

        super::record_mean_loss(pb, row_loss, step.ring, n, t);
    }
}

impl Model for MultVae<'_> {
    type Batch = VaeBatch;

    fn label(&self) -> String {
        format!("multvae {},{}", self.cfg.hidden, self.cfg.latent)
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Multvae
    }

    fn params(&self) -> &Arc<ParamLayout> {
        &self.params
    }

    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        let acts = self.acts_len(mode);
        let mut specs = vec![BufferSpec::f32(buffers::ACTS, acts, Role::Work)];
        match mode {
            Mode::Infer => specs.push(BufferSpec::u32(buffers::BATCH, self.max_users, Role::Input)),
            Mode::Train | Mode::Check => {
                let image = self.max_users + self.n_items + 1 + self.max_entries();
                specs.push(BufferSpec::f32(buffers::GRADS_ACT, acts, Role::Work));
                specs.push(BufferSpec::u32(buffers::BATCH, image, Role::Input));
                specs.push(BufferSpec::f32(
                    buffers::PAIR_LOSS,
                    self.max_users,
                    Role::Work,
                ));
            }
        }
        if mode == Mode::Train {
            let dense = self.params.dense_len();
            specs.push(BufferSpec::f32(grad_buffer(DENSE), dense, Role::Grad));
            let (m, h) = (self.n_items, self.cfg.hidden);
            specs.push(BufferSpec::table(grad_buffer(INPUT), m, h, Role::Grad));
        }
        for (name, data) in self.resident() {
            specs.push(BufferSpec::u32(name, data.len(), Role::Resident));
        }
        specs
    }

    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        buffers::exclusion(self.by_user)
    }

    fn n_users(&self) -> usize {
        self.by_user.n_rows()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    /// The decoder's hidden width, its constant 1 (the bias), and padding to a multiple of 4.
    fn dim(&self) -> usize {
        self.cfg.hidden + 4
    }

    fn scorer(&self) -> Scorer {
        Scorer::Dot
    }

    fn build_batch(&self, pairs: &[Pair]) -> VaeBatch {
        let users: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        VaeBatch::build(&users, self.by_user, self.n_items)
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a VaeBatch, t: u64) {
        let ids = WithMoments::resolve(pb.layout, StepIds::resolve(pb.layout), [DENSE, INPUT]);
        self.forward_backward(pb, &ids.step, b, t);
        let step = self.cfg.adam.at_step(t);
        let max = pb.max_per_dim;
        let s = &ids.step;
        let params = [
            (s.fwd.dense, s.dense_grad, ids.moments[0]),
            (s.fwd.table, s.table_grad, ids.moments[1]),
        ];
        for (theta, grad, MomentIds { m, v }) in params {
            for c in 0..pb.layout.chunks(theta) {
                let len = pb.layout.chunk_len(theta, c);
                let (p, grid) = adam_dense::params(len, step, max);
                let binds = [
                    pb.layout.chunk(theta, c),
                    pb.layout.chunk(grad, c),
                    pb.layout.chunk(m, c),
                    pb.layout.chunk(v, c),
                ];
                pb.dispatch_costed(&adam_dense::DEF, &binds, &p, grid, adam_dense::cost(&p));
            }
        }
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, b: &'a VaeBatch, t: u64) {
        let step = StepIds::resolve(pb.layout);
        self.forward_backward(pb, &step, b, t);
    }

    fn embed_rows(&self, _mode: Mode) -> usize {
        self.max_users
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        let Block { side, ids, first } = block;
        let (h, d, dim) = (self.cfg.hidden, self.cfg.latent, self.dim());
        let rows = ids.len();
        let a = self.acts();
        let users = ids;
        let ids = Embedding::resolve(pb.layout, Ids::resolve(pb.layout), side);
        let launch = match side {
            Side::Users => {
                pb.upload(ids.fwd.batch, 0, users);
                self.input_layer(pb, &ids.fwd, rows, Dropout::NONE);
                self.dense(
                    pb,
                    &ids.fwd,
                    Activation::Identity,
                    rows,
                    (a.h1, a.mulv, self.enc1),
                    h,
                    2 * d,
                );
                let (p, grid) = self.vae_layout(rows).reparam(None, pb.max_per_dim);
                let acts = ids.fwd.acts;
                pb.dispatch_costed(
                    &vae::REPARAM,
                    &[acts.into()],
                    &p,
                    grid,
                    vae::latent_cost(&p),
                );
                self.dense(
                    pb,
                    &ids.fwd,
                    Activation::Tanh,
                    rows,
                    (a.z, a.h2, self.dec0),
                    d,
                    h,
                );
                strided_copy::Launch {
                    rows,
                    width: dim,
                    n: h,
                    src_off: a.h2,
                    row_stride: h,
                    col_stride: 1,
                    dst_off: first * dim,
                    tail: 1.0,
                }
            }
            // Item i: column i of the output layer's [W ; b] (h + 1 values at stride M4).
            Side::Items => strided_copy::Launch {
                rows,
                width: dim,
                n: h + 1,
                src_off: self.dec1 + first,
                row_stride: 1,
                col_stride: self.m4(),
                dst_off: first * dim,
                tail: 0.0,
            },
        };
        let src = match side {
            Side::Users => ids.fwd.acts,
            Side::Items => ids.fwd.dense,
        };
        let dst = ids.dst;
        let (p, grid) = launch.params(pb.max_per_dim);
        let cost = strided_copy::cost(&p);
        pb.dispatch_costed(
            &strided_copy::DEF,
            &[src.into(), dst.into()],
            &p,
            grid,
            cost,
        );
    }
}

/// The buffers of the encoder and decoder's forward pass (every plan), resolved once per plan: the
/// input layer's table, the dense block, the activations, the batch and the training CSR by user.
#[derive(Debug, Clone, Copy)]
struct Ids {
    table: BufId,
    dense: BufId,
    acts: BufId,
    batch: BufId,
    ptr: BufId,
    idx: BufId,
}

impl Ids {
    fn resolve(layout: &MemoryLayout) -> Ids {
        Ids {
            table: layout.id(INPUT),
            dense: layout.id(DENSE),
            acts: layout.id(buffers::ACTS),
            batch: layout.id(buffers::BATCH),
            ptr: layout.id(buffers::EXCLUDE_PTR),
            idx: layout.id(buffers::EXCLUDE_IDX),
        }
    }
}

/// The buffers of a forward and backward pass (training and checks): the forward pass's, the
/// activation gradients, each user's loss, the loss ring, and both parameters' gradients.
struct StepIds {
    fwd: Ids,
    grads_act: BufId,
    row_loss: BufId,
    ring: BufId,
    dense_grad: BufId,
    table_grad: BufId,
}

impl StepIds {
    fn resolve(layout: &MemoryLayout) -> StepIds {
        StepIds {
            fwd: Ids::resolve(layout),
            grads_act: layout.id(buffers::GRADS_ACT),
            row_loss: layout.id(buffers::PAIR_LOSS),
            ring: layout.id(buffers::LOSS_RING),
            dense_grad: layout.id(&grad_buffer(DENSE)),
            table_grad: layout.id(&grad_buffer(INPUT)),
        }
    }
}

/// MultVAE's descriptor.
pub static SPEC: ModelSpec = ModelSpec {
    title: "MultVAE",
    // Liang et al.'s and Elliot's [600, 200].
    default_arch: &[600, 200],
    check_arch,
    check,
    check_data: spec::no_data_check,
    flags: &[
        "lr",
        "weight-decay",
        "dropout",
        "anneal-cap",
        "anneal-steps",
    ],
    why_not: "it trains on whole users with a multinomial likelihood",
    dropout: Some(0.5),
    samplers: &[SamplerKind::Users],
    trains: true,
    branches: 0,
    label: spec::arch_label,
    counts: |a, s| counts(a, s.users, s.items),
    describe: |c| {
        use super::arch::group_digits;
        format!(
            "{} parameters: encoder input layer {}, decoder output layer {}, latent layers {}",
            group_digits(c.total),
            group_digits(c.user_projection),
            group_digits(c.item_projection),
            group_digits(c.branches)
        )
    },
    counts_note: Some(
        "MultVAE's user side is its encoder's input layer, its item side the decoder's output layer \
         (whose columns are the item embeddings), its branch weights the two latent layers'.",
    ),
    param_layout: |cfg, s| param_layout(cfg.arch.d1(), cfg.arch.embedding(), s.items),
    build,
    index_probe: None,
    bench_archs: &["600,200"],
    unseen: spec::Unseen::Cannot,
};

fn check_arch(_: ModelKind, arch: &Architecture) -> anyhow::Result<()> {
    anyhow::ensure!(
        arch.widths.len() == 2,
        "multvae takes two widths in --arch, the hidden layer and the latent size (e.g. 600,200), \
         got {arch}"
    );
    Ok(())
}

fn check(cfg: &TrainConfig) -> anyhow::Result<()> {
    // β weighs the KL term against the likelihood; Liang et al. anneal it to at most 1 (a larger
    // weight only blurs the posterior further, and huge ones overflow).
    if !(0.0..=1.0).contains(&cfg.anneal_cap) {
        return Err(crate::config::out_of_range(
            "--anneal-cap",
            "in [0, 1]",
            cfg.anneal_cap,
        ));
    }
    Ok(())
}

/// The encoder's sparse input layer and the decoder's output layer in the projection fields (M·h + h
/// each: the output layer of M rows), the two latent layers as the "branch" (the output layer's
/// padding rows to a multiple of 4 are not counted).
fn counts(arch: &Architecture, _n_users: usize, n_items: usize) -> ParamCounts {
    let (h, d, m) = (arch.d1() as u64, arch.embedding() as u64, n_items as u64);
    let (input, output) = (m * h + h, h * m + m);
    let branch_weights = h * 2 * d + d * h;
    let branches = branch_weights + 2 * d + h;
    ParamCounts {
        user_projection: input,
        item_projection: output,
        branches,
        branch_weights,
        total: input + output + branches,
    }
}

fn build<'d>(cfg: &TrainConfig, ds: &'d Dataset, max_pairs: usize, _: IndexStrategy) -> Net<'d> {
    let vae = MultVaeConfig {
        hidden: cfg.arch.d1(),
        latent: cfg.arch.embedding(),
        dropout: cfg.dropout,
        anneal_cap: cfg.anneal_cap,
        anneal_steps: cfg.anneal_steps,
        adam: AdamConfig::new(cfg.lr, cfg.weight_decay),
        seed: cfg.seed,
        logit_rows: None,
    };
    Net::new(MultVae::new(vae, &ds.train, ds.n_items(), max_pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_index_lists_each_items_batch_rows_in_order() {
        let by_user = Csr::from_rows(&[vec![0u32, 2], vec![1], vec![0, 1, 3]]);
        let b = VaeBatch::build(&[2, 0], &by_user, 4);
        assert_eq!(&b.image[..2], &[2, 0]);
        // Item 0 ← rows 0 (user 2) and 1 (user 0); item 1 ← row 0; item 2 ← row 1; item 3 ← row 0.
        assert_eq!(&b.image[b.ptr_off..b.ptr_off + 5], &[0, 2, 3, 4, 5]);
        assert_eq!(&b.image[b.list_off..], &[0, 1, 0, 1, 0]);
    }

    #[test]
    fn beta_anneals_linearly_to_its_cap() {
        let cfg = MultVaeConfig {
            hidden: 8,
            latent: 4,
            dropout: 0.5,
            anneal_cap: 0.2,
            anneal_steps: 200_000,
            adam: AdamConfig::new(1e-3, 0.0),
            seed: 1,
            logit_rows: None,
        };
        assert_eq!(cfg.beta(1), 0.0);
        assert!((cfg.beta(20_001) - 0.1).abs() < 1e-7);
        assert_eq!(cfg.beta(40_001), 0.2);
        assert_eq!(cfg.beta(1_000_000), 0.2);
    }
}
