//! A session: one model on one executor. It lays out the memory (the model's buffers, the parameters
//! and, when training, their Adam moments), uploads the weights and resident data, and runs the model's
//! plans — the same plans on the GPU and on the CPU twins.

use std::sync::Arc;

use anyhow::ensure;

use super::Block;
use super::{
    LOSS_RING, Mode, Model, Side, Weights, buffers, grad_buffer, moment_buffers, row_steps_buffer,
};
use crate::eval::ranking::Embeddings;
use crate::gpu::cpu::CpuExec;
use crate::gpu::exec::GpuExec;
pub use crate::gpu::executor::Executor;
use crate::gpu::memory::{BufId, BufferSpec, MemoryLayout, Role};
use crate::gpu::plan::{Plan, PlanBuilder};
use crate::gpu::twin::Real;

/// Every buffer a session of `model` in `mode` holds.
pub fn buffer_specs<M: Model>(model: &M, mode: Mode) -> Vec<BufferSpec> {
    let mut specs = Vec::new();
    let lazy = mode == Mode::Train && model.lazy_adam().is_some();
    for b in &model.params().buffers {
        let spec = |name: String, role| {
            if b.table {
                BufferSpec::table(name, b.rows, b.cols, role)
            } else {
                BufferSpec::f32(name, b.len(), role)
            }
        };
        specs.push(spec(b.name.clone(), Role::Param));
        if mode == Mode::Train {
            for name in moment_buffers(&b.name) {
                specs.push(spec(name, Role::OptState));
            }
            if lazy && b.table {
                specs.push(BufferSpec::u32(
                    row_steps_buffer(&b.name),
                    b.rows,
                    Role::OptState,
                ));
            }
        }
        if mode == Mode::Check {
            specs.push(spec(grad_buffer(&b.name), Role::Grad));
        }
    }
    if let Some(adam) = model.lazy_adam().filter(|_| lazy) {
        let rows = adam.bias_rows();
        specs.push(BufferSpec::f32(
            buffers::ADAM_BIAS,
            2 * rows,
            Role::Resident,
        ));
    }
    if mode != Mode::Infer {
        specs.push(BufferSpec::f32(buffers::LOSS_RING, LOSS_RING, Role::Output));
    }
    let n_params = model.params().buffers.len();
    specs.push(BufferSpec::u32(buffers::NONFINITE, n_params, Role::Output));
    let dim = model.dim();
    specs.push(BufferSpec::f32(
        buffers::USER_EMBEDDINGS,
        model.n_users() * dim,
        Role::Output,
    ));
    specs.push(BufferSpec::f32(
        buffers::ITEM_EMBEDDINGS,
        model.n_items() * dim,
        Role::Output,
    ));
    specs.extend(crate::kernels::rank_topk::buffer_specs(
        model.n_users(),
        model.n_items(),
    ));
    specs.extend(model.buffers(mode));
    specs
}

/// The memory layout of a session of `model` in `mode` under a binding limit of `max_binding` bytes.
pub fn layout<M: Model>(
    model: &M,
    mode: Mode,
    max_binding: u64,
    force_chunk_rows: Option<usize>,
) -> anyhow::Result<MemoryLayout> {
    let layout = MemoryLayout::new(buffer_specs(model, mode), max_binding, force_chunk_rows)?;
    model.check_layout(&layout)?;
    Ok(layout)
}

/// Adam's first and second moments.
pub type Moments<T> = (Weights<T>, Weights<T>);

/// Lazy Adam's step counts of every table row: (parameter buffer, one count per row), for the table
/// buffers in layout order; empty when the tables step densely.
pub type RowSteps = Vec<(String, Vec<u32>)>;

/// What a session will hold, checked before anything is allocated.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    pub layout: MemoryLayout,
    /// Bytes of every GPU buffer.
    pub gpu_bytes: u64,
    /// Bytes the host holds beside the dataset: copies of the parameters (initialisation, the best
    /// epoch's, a checkpoint being written) and, on a CPU adapter, the GPU buffers themselves.
    pub host_bytes: u64,
}

/// A buffer's name as a user reads it in a memory error.
fn describe_buffer(name: &str) -> String {
    let known = [
        (
            super::params::DENSE,
            "the dense parameters (projection biases and branch layers)",
        ),
        (buffers::ACTS, "the activations of one training step"),
        (
            buffers::GRADS_ACT,
            "the activation gradients of one training step",
        ),
        (buffers::BATCH, "one step's batch"),
        (
            buffers::USER_EMBEDDINGS,
            "every user's embedding (the ranking binds it whole; its width is the model's embedding)",
        ),
        (
            buffers::ITEM_EMBEDDINGS,
            "every item's embedding (the ranking binds it whole; its width is the model's embedding)",
        ),
    ];
    match known.iter().find(|(n, _)| *n == name) {
        Some((_, d)) => d.to_string(),
        None => name.to_string(),
    }
}

/// Bytes of memory the system can still give (`MemAvailable` on Linux); `None` elsewhere.
pub fn host_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Lays out a session of `model` in `mode` on `ctx` and checks it against the adapter's limits and the
/// host's memory: one line with the numbers and what to change when it does not fit.
pub fn memory_plan<M: Model>(
    model: &M,
    mode: Mode,
    ctx: &crate::gpu::GpuContext,
) -> anyhow::Result<MemoryPlan> {
    let hint = "reduce the widths of --arch (the first one sizes the projection tables) or \
                --batch-size";
    let layout = layout(model, mode, ctx.max_binding(), None).map_err(|e| {
        let e = match e.downcast::<crate::gpu::GpuError>() {
            Ok(crate::gpu::GpuError::BindingLimit {
                what,
                mib,
                limit_mib,
            }) => crate::gpu::GpuError::BindingLimit {
                what: describe_buffer(&what),
                mib,
                limit_mib,
            }
            .into(),
            Ok(other) => other.into(),
            Err(e) => e,
        };
        anyhow::anyhow!("{e:#}; {hint}")
    })?;
    for id in layout.ids() {
        for c in 0..layout.chunks(id) {
            let bytes = layout.chunk_len(id, c) as u64 * 4;
            if bytes > ctx.limits.max_buffer_size {
                return Err(crate::gpu::GpuError::BufferLimit {
                    what: layout.spec(id).name.clone(),
                    mib: bytes.div_ceil(1 << 20),
                    limit_mib: ctx.limits.max_buffer_size >> 20,
                }
                .into());
            }
        }
    }
    let gpu_bytes = layout.total_bytes();
    let params: u64 = layout
        .specs()
        .iter()
        .filter(|s| s.role == Role::Param)
        .map(|s| s.bytes())
        .sum();
    let copies = if mode == Mode::Train { 6 } else { 2 };
    let on_host = ctx.info.device_type == wgpu::DeviceType::Cpu;
    let host_bytes = copies * params + if on_host { gpu_bytes } else { 0 };
    if let Some(avail) = host_available()
        && host_bytes > avail
    {
        anyhow::bail!(
            "{} needs about {} of host memory ({} of parameters{}), and {} are available; {hint}",
            model.label(),
            gib(host_bytes),
            gib(params),
            if on_host {
                format!(", {} of buffers on the CPU adapter", gib(gpu_bytes))
            } else {
                String::new()
            },
            gib(avail)
        );
    }
    Ok(MemoryPlan {
        layout,
        gpu_bytes,
        host_bytes,
    })
}

/// Which buffer of every parameter buffer a set of values is.
#[derive(Debug, Clone, Copy)]
enum ParamSet {
    Value,
    /// Adam's first and second moments.
    M,
    V,
    Grad,
}

impl ParamSet {
    fn buffer(self, name: &str) -> String {
        match self {
            ParamSet::Value => name.to_string(),
            ParamSet::M => moment_buffers(name)[0].clone(),
            ParamSet::V => moment_buffers(name)[1].clone(),
            ParamSet::Grad => grad_buffer(name),
        }
    }
}

/// One model on one executor.
pub struct Session<E: Executor, M: Model> {
    pub exec: E,
    /// Shared, so a producer thread can build batches while the session steps.
    pub model: Arc<M>,
    pub mode: Mode,
    /// Optimizer steps taken (Adam's t).
    pub t: u64,
}

impl<E: Executor, M: Model> Session<E, M> {
    /// Uploads `weights` and the model's resident data into `exec` (laid out by [`layout`]).
    pub fn new(
        mut exec: E,
        model: M,
        mode: Mode,
        weights: &Weights<E::Real>,
    ) -> anyhow::Result<Session<E, M>> {
        ensure!(
            *weights.layout == **model.params(),
            "weights of another model"
        );
        for (name, data) in model.resident() {
            let id = exec.layout().id(name);
            exec.write_u32(id, data)?;
        }
        crate::kernels::rank_topk::clear_no_exclude(&mut exec)?;
        if let Some(adam) = model.lazy_adam().filter(|_| mode == Mode::Train) {
            let id = exec.layout().id(buffers::ADAM_BIAS);
            let table: Vec<E::Real> = adam
                .bias_table()
                .iter()
                .map(|&v| E::Real::from_f64(v as f64))
                .collect();
            exec.write(id, &table)?;
        }
        let mut s = Session {
            exec,
            model: Arc::new(model),
            mode,
            t: 0,
        };
        s.write_weights(weights)?;
        Ok(s)
    }

    fn param_ids(&self, set: ParamSet) -> Vec<BufId> {
        self.model
            .params()
            .buffers
            .iter()
            .map(|b| self.exec.layout().id(&set.buffer(&b.name)))
            .collect()
    }

    fn read_set(&mut self, set: ParamSet) -> anyhow::Result<Weights<E::Real>> {
        let mut data = Vec::new();
        for id in self.param_ids(set) {
            data.push(self.exec.read(id)?);
        }
        Ok(Weights {
            layout: self.model.params().clone(),
            data,
        })
    }

    fn write_set(&mut self, set: ParamSet, w: &Weights<E::Real>) -> anyhow::Result<()> {
        ensure!(
            *w.layout == **self.model.params(),
            "values of another model"
        );
        for (id, v) in self.param_ids(set).into_iter().zip(&w.data) {
            self.exec.write(id, v)?;
        }
        Ok(())
    }

    /// Current parameters.
    pub fn read_weights(&mut self) -> anyhow::Result<Weights<E::Real>> {
        self.read_set(ParamSet::Value)
    }

    /// Replaces the parameters (the optimizer state is kept).
    pub fn write_weights(&mut self, w: &Weights<E::Real>) -> anyhow::Result<()> {
        self.write_set(ParamSet::Value, w)
    }

    /// Adam's first and second moments (training sessions).
    pub fn read_moments(&mut self) -> anyhow::Result<Moments<E::Real>> {
        Ok((self.read_set(ParamSet::M)?, self.read_set(ParamSet::V)?))
    }

    /// Restores Adam's moments and step count (resuming a run).
    pub fn write_moments(
        &mut self,
        m: &Weights<E::Real>,
        v: &Weights<E::Real>,
        t: u64,
    ) -> anyhow::Result<()> {
        self.write_set(ParamSet::M, m)?;
        self.write_set(ParamSet::V, v)?;
        self.t = t;
        Ok(())
    }

    /// The table buffers whose rows step lazily (none unless training with lazy Adam).
    fn lazy_tables(&self) -> Vec<String> {
        if self.mode != Mode::Train || self.model.lazy_adam().is_none() {
            return Vec::new();
        }
        let params = self.model.params();
        params
            .buffers
            .iter()
            .filter(|b| b.table)
            .map(|b| b.name.clone())
            .collect()
    }

    /// Lazy Adam's row step counts (empty when the tables step densely).
    pub fn read_row_steps(&mut self) -> anyhow::Result<RowSteps> {
        let mut out = Vec::new();
        for name in self.lazy_tables() {
            let id = self.exec.layout().id(&row_steps_buffer(&name));
            out.push((name, self.exec.read_u32(id)?));
        }
        Ok(out)
    }

    /// Restores lazy Adam's row step counts (resuming a run): exactly the session's tables.
    pub fn write_row_steps(&mut self, steps: &RowSteps) -> anyhow::Result<()> {
        let tables = self.lazy_tables();
        let given: Vec<&String> = steps.iter().map(|(n, _)| n).collect();
        ensure!(
            given.iter().copied().eq(tables.iter()),
            "the saved state has lazy Adam's row step counts for {given:?}, the run needs them for \
             {tables:?}"
        );
        for (name, data) in steps {
            let id = self.exec.layout().id(&row_steps_buffer(name));
            self.exec.write_u32(id, data)?;
        }
        Ok(())
    }

    /// Every parameter's gradient from the last [`Session::grad_step`].
    pub fn read_grads(&mut self) -> anyhow::Result<Weights<E::Real>> {
        self.read_set(ParamSet::Grad)
    }

    /// The plan of the next training step (for counts and profiles; [`Session::step`] runs it).
    pub fn train_plan<'a>(&self, batch: &'a M::Batch, t: u64) -> Plan<'a> {
        let mut pb = PlanBuilder::new(self.exec.layout(), self.exec.max_per_dim());
        self.model.train_step(&mut pb, batch, t);
        pb.finish()
    }

    /// One training step. With `read_losses`, the step also copies the loss ring for the host
    /// (tagged with the step count; the GPU executor reads it back without waiting).
    pub fn step(&mut self, batch: &M::Batch, read_losses: bool) -> anyhow::Result<()> {
        self.t += 1;
        let t = self.t;
        let mut pb = PlanBuilder::new(self.exec.layout(), self.exec.max_per_dim());
        self.model.train_step(&mut pb, batch, t);
        if read_losses {
            let ring = pb.id(buffers::LOSS_RING);
            pb.read(ring, 0, LOSS_RING, t);
        }
        let plan = pb.finish();
        self.exec.run(&plan)
    }

    /// Forward and backward of step `t`, gradients into the `.grad` buffers (check sessions).
    pub fn grad_step(&mut self, batch: &M::Batch, t: u64) -> anyhow::Result<()> {
        ensure!(self.mode == Mode::Check, "gradients need a check session");
        let mut pb = PlanBuilder::new(self.exec.layout(), self.exec.max_per_dim());
        self.model.grad_step(&mut pb, batch, t);
        let plan = pb.finish();
        self.exec.run(&plan)
    }

    /// The mean losses of steps `first..=last` (at most [`LOSS_RING`] steps back), blocking.
    pub fn read_losses(&mut self, first: u64, last: u64) -> anyhow::Result<Vec<E::Real>> {
        ensure!(
            first >= 1 && last >= first && (last - first) < LOSS_RING as u64,
            "loss window"
        );
        let id = self.exec.layout().id(buffers::LOSS_RING);
        let ring = self.exec.read(id)?;
        Ok((first..=last).map(|s| ring[super::ring_slot(s)]).collect())
    }

    /// Evaluation embeddings of every user and item into the embedding buffers, block by block.
    pub fn embed_all(&mut self) -> anyhow::Result<()> {
        let rows = self.model.embed_rows(self.mode).max(1);
        for (side, n) in [
            (Side::Users, self.model.n_users()),
            (Side::Items, self.model.n_items()),
        ] {
            let ids: Vec<u32> = (0..n as u32).collect();
            for (b, ids) in ids.chunks(rows).enumerate() {
                let mut pb = PlanBuilder::new(self.exec.layout(), self.exec.max_per_dim());
                let block = Block {
                    side,
                    ids,
                    first: b * rows,
                };
                self.model.embed_block(&mut pb, block);
                let plan = pb.finish();
                self.exec.run(&plan)?;
            }
        }
        Ok(())
    }

    /// The embeddings of one side, read back (after [`Session::embed_all`]).
    pub fn read_embeddings(&mut self, side: Side) -> anyhow::Result<Vec<E::Real>> {
        let id = self.exec.layout().id(buffers::embeddings(side));
        self.exec.read(id)
    }

    /// The parameter buffers holding non-finite values, with their counts — counted on the executor,
    /// so nothing but the counts comes back.
    pub fn nonfinite_params(&mut self) -> anyhow::Result<Vec<(String, u64)>> {
        let names: Vec<String> = self
            .model
            .params()
            .buffers
            .iter()
            .map(|b| b.name.clone())
            .collect();
        let zeros = vec![0u32; names.len()];
        let mut pb = PlanBuilder::new(self.exec.layout(), self.exec.max_per_dim());
        let counts = pb.id(buffers::NONFINITE);
        pb.upload(counts, 0, &zeros);
        for (slot, name) in names.iter().enumerate() {
            let id = pb.id(name);
            for c in 0..pb.layout.chunks(id) {
                let n = pb.layout.chunk_len(id, c);
                let (p, grid) = crate::kernels::reduce::params(n, slot, pb.max_per_dim);
                let binds = [pb.layout.chunk(id, c), counts.into()];
                pb.dispatch(&crate::kernels::reduce::COUNT_NONFINITE, &binds, &p, grid);
            }
        }
        let plan = pb.finish();
        self.exec.run(&plan)?;
        let got = self
            .exec
            .read_u32(self.exec.layout().id(buffers::NONFINITE))?;
        Ok(names
            .into_iter()
            .zip(got)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (name, n as u64))
            .collect())
    }

    /// Bytes of every buffer of the session.
    pub fn bytes(&self) -> u64 {
        self.exec.layout().total_bytes()
    }

    /// What the ranking reads (after [`Session::embed_all`]): the session's embeddings, its model's
    /// scorer and exclusion CSR.
    pub fn embeddings(&self) -> Embeddings {
        let l = self.exec.layout();
        Embeddings {
            users: l.id(buffers::USER_EMBEDDINGS),
            items: l.id(buffers::ITEM_EMBEDDINGS),
            n_users: self.model.n_users(),
            n_items: self.model.n_items(),
            dim: self.model.dim(),
            scorer: self.model.scorer(),
            exclude_ptr: l.id(buffers::EXCLUDE_PTR),
            exclude_idx: l.id(buffers::EXCLUDE_IDX),
        }
    }

    /// [`Session::embeddings`] with the empty exclusion CSR: the ranking scores every item, a user's
    /// training items included, with the same scorer and tie rule (`recommend --include-train`).
    pub fn embeddings_including_train(&self) -> Embeddings {
        use crate::kernels::rank_topk::buffers as rank;
        let l = self.exec.layout();
        Embeddings {
            exclude_ptr: l.id(rank::NO_EXCLUDE_PTR),
            exclude_idx: l.id(rank::NO_EXCLUDE_IDX),
            ..self.embeddings()
        }
    }
}

impl<M: Model> Session<GpuExec, M> {
    pub fn ctx(&self) -> &crate::gpu::GpuContext {
        &self.exec.ctx
    }
}

/// A GPU session: lays out, allocates and fills. (Commands check [`memory_plan`] first, before the
/// host allocates the weights.)
pub fn gpu_session<M: Model>(
    ctx: Arc<crate::gpu::GpuContext>,
    model: M,
    mode: Mode,
    weights: &Weights<f32>,
    force_chunk_rows: Option<usize>,
) -> anyhow::Result<Session<GpuExec, M>> {
    let layout = layout(&model, mode, ctx.max_binding(), force_chunk_rows)?;
    let exec = GpuExec::new(ctx, layout)?;
    Session::new(exec, model, mode, weights)
}

/// A CPU session with the same layout a device with `max_binding`-byte bindings would get.
pub fn cpu_session<T: Real, M: Model>(
    model: M,
    mode: Mode,
    weights: &Weights<T>,
    max_binding: u64,
    force_chunk_rows: Option<usize>,
) -> anyhow::Result<Session<CpuExec<T>, M>> {
    let layout = layout(&model, mode, max_binding, force_chunk_rows)?;
    Session::new(CpuExec::new(layout), model, mode, weights)
}
