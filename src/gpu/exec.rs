//! The GPU executor: allocates a memory layout on the device and records each plan into one command
//! buffer — uploads, every dispatch in one compute pass (one pass per dispatch when profiling), copies,
//! and read-back copies into the staging ring — then submits it.
//!
//! Bind groups are built once per (kernel, bindings) and reused; parameter blocks go into one uniform
//! arena per submission, sized from the plan. The host may run ahead of the GPU by at most
//! `max_in_flight` submissions: it then waits for the oldest one, never for the whole queue.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use anyhow::{Context, ensure};

use super::GpuContext;
use super::buffers::{self, GpuBuffer};
use super::context::FaultPoint;
use super::executor::Executor;
use super::kernel::Kernel;
use super::memory::{Bind, BufId, Elem, MemoryLayout};
use super::plan::{Op, Plan};
use super::readback::ReadbackRing;
use super::recorder::{self, Profiler, Recorder};
use super::uniforms::UniformArena;

/// Submissions the host may queue ahead of the GPU.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

pub struct GpuExec {
    pub ctx: Arc<GpuContext>,
    layout: MemoryLayout,
    /// Per buffer, one GPU buffer per chunk.
    bufs: Vec<Vec<GpuBuffer>>,
    arena: UniformArena,
    groups: HashMap<(&'static str, Vec<Bind>), wgpu::BindGroup>,
    kernels: HashMap<&'static str, Arc<Kernel>>,
    reads: ReadbackRing,
    /// Completed reads a [`Executor::take_reads`] left (tags outside its range), oldest first, for
    /// whoever issued them.
    held: Vec<(u64, Vec<u8>)>,
    in_flight: VecDeque<wgpu::SubmissionIndex>,
    max_in_flight: usize,
    profiler: Option<Profiler>,
    last_times: Vec<(&'static str, f64)>,
    submissions: u64,
}

impl GpuExec {
    /// Allocates every buffer of `layout` (zeroed) on `ctx`'s device.
    pub fn new(ctx: Arc<GpuContext>, layout: MemoryLayout) -> anyhow::Result<GpuExec> {
        let mut bufs = Vec::with_capacity(layout.specs().len());
        for id in layout.ids() {
            let spec = layout.spec(id);
            let n = layout.chunks(id);
            let mut chunks = Vec::with_capacity(n);
            for c in 0..n {
                let label = if n == 1 {
                    spec.name.clone()
                } else {
                    format!("{}[{c}]", spec.name)
                };
                chunks.push(buffers::storage(
                    &ctx,
                    &label,
                    layout.chunk_len(id, c) as u64 * 4,
                )?);
            }
            bufs.push(chunks);
        }
        let arena = UniformArena::new(&ctx, 16);
        Ok(GpuExec {
            ctx,
            layout,
            bufs,
            arena,
            groups: HashMap::new(),
            kernels: HashMap::new(),
            reads: ReadbackRing::new(8),
            held: Vec::new(),
            in_flight: VecDeque::new(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            profiler: None,
            last_times: Vec::new(),
            submissions: 0,
        })
    }

    /// The GPU buffer behind a binding.
    pub fn buffer(&self, b: impl Into<Bind>) -> &wgpu::Buffer {
        let b = b.into();
        &self.bufs[b.buf.0 as usize][b.chunk as usize]
    }

    /// Bytes of every buffer this executor allocated.
    pub fn allocated_bytes(&self) -> u64 {
        self.bufs.iter().flatten().map(|b| b.size()).sum()
    }

    /// Times every dispatch of every following plan (each dispatch then gets its own pass and `run`
    /// waits for the timings). Returns false when the device has no timestamp queries.
    pub fn enable_profiling(&mut self, max_dispatches: u32) -> bool {
        self.profiler = Profiler::new(&self.ctx, max_dispatches);
        self.profiler.is_some()
    }

    /// (kernel, nanoseconds) of every dispatch of the last profiled plan.
    pub fn kernel_times(&self) -> &[(&'static str, f64)] {
        &self.last_times
    }

    fn kernel(&mut self, def: &'static super::kernel::KernelDef) -> anyhow::Result<Arc<Kernel>> {
        if let Some(k) = self.kernels.get(def.name) {
            return Ok(k.clone());
        }
        let k = self.ctx.kernel(def)?;
        self.kernels.insert(def.name, k.clone());
        Ok(k)
    }

    /// Records `plan` into one command buffer and submits it. Returns once the submission is queued
    /// (and, when more than `max_in_flight` are queued, once the oldest has finished).
    fn record_and_submit(&mut self, plan: &Plan<'_>) -> anyhow::Result<()> {
        self.ctx.check()?;
        let dispatches = plan
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Dispatch(_)))
            .count();
        if dispatches > self.arena.capacity() {
            // Bind groups refer to the arena's buffer: rebuild them with the larger one.
            self.arena = UniformArena::new(&self.ctx, dispatches.next_power_of_two());
            self.groups.clear();
        }
        self.arena.clear();
        // Compile and bind before recording (the recorder borrows the encoder).
        let mut prepared = Vec::with_capacity(dispatches);
        for op in &plan.ops {
            match op {
                Op::Upload { dst, offset, data } => {
                    buffers::upload(&self.ctx, self.buffer(*dst), *offset, data);
                }
                Op::Dispatch(d) => {
                    let kernel = self.kernel(d.kernel)?;
                    ensure!(
                        d.binds.len() == kernel.storage_bindings(),
                        "kernel {} takes {} storage bindings, the plan gives {}",
                        d.kernel.name,
                        kernel.storage_bindings(),
                        d.binds.len()
                    );
                    let key = (d.kernel.name, d.binds.clone());
                    if !self.groups.contains_key(&key) {
                        let bufs: Vec<&wgpu::Buffer> =
                            d.binds.iter().map(|b| self.buffer(*b)).collect();
                        let group = kernel.bind(&self.ctx.device, &bufs, &self.arena.buffer);
                        self.groups.insert(key.clone(), group);
                    }
                    let offset = self.arena.push_bytes(&d.params);
                    prepared.push((kernel, key, offset));
                }
                _ => {}
            }
        }
        let profiler = self.profiler.take();
        let mut rec = Recorder::new(&self.ctx, "plan", profiler.as_ref());
        let mut next = prepared.iter();
        for op in &plan.ops {
            match op {
                Op::Upload { .. } => {}
                Op::Dispatch(d) => {
                    let (kernel, key, offset) = next.next().expect("prepared");
                    rec.dispatch(kernel, &self.groups[key], *offset, d.workgroups);
                }
                Op::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    len,
                } => {
                    if *len > 0 {
                        rec.encoder().copy_buffer_to_buffer(
                            &self.bufs[src.buf.0 as usize][src.chunk as usize],
                            *src_offset as u64 * 4,
                            &self.bufs[dst.buf.0 as usize][dst.chunk as usize],
                            *dst_offset as u64 * 4,
                            *len as u64 * 4,
                        );
                    }
                }
                Op::Read {
                    src,
                    offset,
                    len,
                    tag,
                } => {
                    let buffer = &self.bufs[src.buf.0 as usize][src.chunk as usize];
                    self.reads.record(
                        &self.ctx,
                        rec.encoder(),
                        buffer,
                        *offset as u64 * 4,
                        *len as u64 * 4,
                        *tag,
                    )?;
                }
            }
        }
        let (commands, labels) = rec.finish();
        self.arena.upload(&self.ctx);
        self.submissions += 1;
        if let Some(fault) = self.ctx.take_injected_fault(FaultPoint::Submit) {
            self.ctx.report(fault);
        }
        let index = self.ctx.queue.submit([commands]);
        self.reads.submitted(&index);
        self.in_flight.push_back(index);
        if let Some(p) = &profiler {
            self.last_times = recorder::read_times(&self.ctx, p, &labels)?;
        }
        self.profiler = profiler;
        while self.in_flight.len() > self.max_in_flight {
            let oldest = self.in_flight.pop_front().expect("non-empty");
            self.ctx.wait_for(oldest)?;
        }
        self.ctx.check()?;
        Ok(())
    }

    /// Completed reads (tag, bytes), oldest first, without blocking.
    pub fn ready_reads(&mut self) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
        let mut out = std::mem::take(&mut self.held);
        out.extend(self.reads.ready(&self.ctx)?);
        Ok(out)
    }

    /// Waits for every submission.
    pub fn wait(&mut self) -> anyhow::Result<()> {
        self.in_flight.clear();
        self.ctx.wait()
    }

    /// Part of one chunk, read back (blocking).
    pub fn read_range(&self, b: Bind, offset: usize, len: usize) -> anyhow::Result<Vec<f32>> {
        buffers::read(&self.ctx, self.buffer(b), offset, len)
    }

    /// Submissions so far.
    pub fn submissions(&self) -> u64 {
        self.submissions
    }
}

impl Executor for GpuExec {
    type Real = f32;

    fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    fn run(&mut self, plan: &Plan<'_>) -> anyhow::Result<()> {
        self.record_and_submit(plan)
    }

    fn max_per_dim(&self) -> u32 {
        self.ctx.limits.max_compute_workgroups_per_dimension
    }

    fn read_chunk(&mut self, b: Bind) -> anyhow::Result<Vec<f32>> {
        let len = self.layout.chunk_len(b.buf, b.chunk as usize);
        buffers::read::<f32>(&self.ctx, self.buffer(b), 0, len)
            .with_context(|| format!("reading {}", self.layout.spec(b.buf).name))
    }

    fn write_chunk(&mut self, b: Bind, data: &[f32]) -> anyhow::Result<()> {
        buffers::upload(&self.ctx, self.buffer(b), 0, data);
        Ok(())
    }

    fn write_u32(&mut self, id: BufId, data: &[u32]) -> anyhow::Result<()> {
        let spec = self.layout.spec(id);
        ensure!(
            spec.elem == Elem::U32 && data.len() <= spec.len(),
            "{}: {} words for {} u32 elements",
            spec.name,
            data.len(),
            spec.len()
        );
        buffers::upload(&self.ctx, &self.bufs[id.0 as usize][0], 0, data);
        Ok(())
    }

    fn read_u32(&mut self, id: BufId) -> anyhow::Result<Vec<u32>> {
        let spec = self.layout.spec(id);
        ensure!(spec.elem == Elem::U32, "{} is an f32 buffer", spec.name);
        buffers::read::<u32>(&self.ctx, &self.bufs[id.0 as usize][0], 0, spec.len())
    }

    fn take_reads(&mut self, tags: Range<u64>) -> anyhow::Result<Vec<(u64, Vec<u32>)>> {
        let mut taken = Vec::new();
        let mut ready = std::mem::take(&mut self.held);
        ready.extend(self.reads.ready(&self.ctx)?);
        for (tag, bytes) in ready {
            if tags.contains(&tag) {
                taken.push((tag, bytemuck::pod_collect_to_vec(&bytes)));
            } else {
                self.held.push((tag, bytes));
            }
        }
        Ok(taken)
    }

    /// Blocks until the read tagged `tag` has completed (then `take_reads` or `ready_reads` returns
    /// it).
    fn wait_read(&mut self, tag: u64) -> anyhow::Result<()> {
        self.reads.wait(&self.ctx, tag)
    }

    /// Measured once per device, for every session on it.
    fn choice(&self, name: &'static str) -> Option<u32> {
        self.ctx.choice(name)
    }

    fn set_choice(&mut self, name: &'static str, value: u32) {
        self.ctx.set_choice(name, value)
    }
}
