//! The CPU executor: runs a plan by calling each dispatch's CPU twin on host buffers — in `f32` to check
//! the GPU, in `f64` for finite-difference gradient checks. Tables are split into the same row chunks
//! as on the GPU, so the chunked code paths are mirrored too.

use std::collections::HashMap;
use std::ops::Range;

use anyhow::{Context, ensure};

use super::executor::Executor;
use super::memory::{Bind, BufId, Elem, MemoryLayout};
use super::plan::{Op, Plan};
use super::twin::{CpuCall, HostBuf, Real};

/// Host memory laid out like a GPU session, and the twins that run on it.
pub struct CpuExec<T> {
    layout: MemoryLayout,
    bufs: Vec<HostBuf<T>>,
    /// Results of the `Read` operations run so far and not yet taken: (tag, 32-bit words).
    reads: Vec<(u64, Vec<u32>)>,
    /// Choices measured on this executor (it has no device to share them with).
    choices: HashMap<&'static str, u32>,
    dispatched: usize,
}

impl<T: Real> CpuExec<T> {
    /// Zeroed host buffers for every buffer of `layout`.
    pub fn new(layout: MemoryLayout) -> CpuExec<T> {
        let bufs = layout
            .ids()
            .map(|id| {
                let chunks = 0..layout.chunks(id);
                match layout.spec(id).elem {
                    Elem::F32 => HostBuf::F(
                        chunks
                            .map(|c| vec![T::default(); layout.chunk_len(id, c)])
                            .collect(),
                    ),
                    Elem::U32 => HostBuf::U(
                        chunks
                            .map(|c| vec![0u32; layout.chunk_len(id, c)])
                            .collect(),
                    ),
                }
            })
            .collect();
        CpuExec {
            layout,
            bufs,
            reads: Vec::new(),
            choices: HashMap::new(),
            dispatched: 0,
        }
    }

    /// Dispatches run so far.
    pub fn dispatched(&self) -> usize {
        self.dispatched
    }

    /// Runs every operation of `plan` in order.
    fn run_plan(&mut self, plan: &Plan<'_>) -> anyhow::Result<()> {
        for op in &plan.ops {
            match op {
                Op::Upload { dst, offset, data } => match &mut self.bufs[dst.buf.0 as usize] {
                    HostBuf::U(v) => {
                        v[dst.chunk as usize][*offset..*offset + data.len()].copy_from_slice(data)
                    }
                    HostBuf::F(v) => {
                        for (o, w) in v[dst.chunk as usize][*offset..].iter_mut().zip(*data) {
                            *o = T::from_f64(f32::from_bits(*w) as f64);
                        }
                    }
                },
                Op::Dispatch(d) => {
                    if d.workgroups.contains(&0) {
                        continue;
                    }
                    let twin = d.kernel.twin.get::<T>();
                    let names = d.kernel.storage_names()?;
                    ensure!(
                        d.binds.len() == names.len(),
                        "kernel {} binds {names:?}, the dispatch passes {} buffers",
                        d.kernel.name,
                        d.binds.len()
                    );
                    let mut call = CpuCall::new(
                        d.kernel.name,
                        d.kernel.constants,
                        d.workgroups,
                        &d.params,
                        names,
                        &d.binds,
                        &mut self.bufs,
                    );
                    twin(&mut call);
                    self.dispatched += 1;
                }
                Op::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    len,
                } => {
                    let data = self.chunk_words(*src)?;
                    let part = data[*src_offset..*src_offset + *len].to_vec();
                    self.write_words(*dst, *dst_offset, &part);
                }
                Op::Read {
                    src,
                    offset,
                    len,
                    tag,
                } => {
                    let words = self.chunk_words(*src)?[*offset..*offset + *len]
                        .iter()
                        .map(|w| match w {
                            Word::F(x) => (x.to_f64() as f32).to_bits(),
                            Word::U(u) => *u,
                        })
                        .collect();
                    self.reads.push((*tag, words));
                }
            }
        }
        Ok(())
    }

    /// A chunk as 4-byte words (copies between buffers move bits; only f32 → f32 and u32 → u32).
    fn chunk_words(&self, b: Bind) -> anyhow::Result<Vec<Word<T>>> {
        Ok(match &self.bufs[b.buf.0 as usize] {
            HostBuf::F(v) => v[b.chunk as usize].iter().map(|x| Word::F(*x)).collect(),
            HostBuf::U(v) => v[b.chunk as usize].iter().map(|x| Word::U(*x)).collect(),
        })
    }

    fn write_words(&mut self, b: Bind, offset: usize, words: &[Word<T>]) {
        match &mut self.bufs[b.buf.0 as usize] {
            HostBuf::F(v) => {
                for (o, w) in v[b.chunk as usize][offset..].iter_mut().zip(words) {
                    *o = match w {
                        Word::F(x) => *x,
                        Word::U(u) => T::from_f64(f32::from_bits(*u) as f64),
                    };
                }
            }
            HostBuf::U(v) => {
                for (o, w) in v[b.chunk as usize][offset..].iter_mut().zip(words) {
                    *o = match w {
                        Word::U(u) => *u,
                        Word::F(x) => (x.to_f64() as f32).to_bits(),
                    };
                }
            }
        }
    }

    fn chunk_values(&self, b: Bind) -> anyhow::Result<Vec<T>> {
        match &self.bufs[b.buf.0 as usize] {
            HostBuf::F(v) => Ok(v[b.chunk as usize].clone()),
            HostBuf::U(_) => anyhow::bail!("{} is a u32 buffer", self.layout.spec(b.buf).name),
        }
    }
}

impl<T: Real> Executor for CpuExec<T> {
    type Real = T;

    fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    fn run(&mut self, plan: &Plan<'_>) -> anyhow::Result<()> {
        self.run_plan(plan)
    }

    fn max_per_dim(&self) -> u32 {
        super::grid::DEFAULT_MAX_PER_DIM
    }

    fn read_chunk(&mut self, b: Bind) -> anyhow::Result<Vec<T>> {
        self.chunk_values(b)
    }

    fn write_chunk(&mut self, b: Bind, data: &[T]) -> anyhow::Result<()> {
        match &mut self.bufs[b.buf.0 as usize] {
            HostBuf::F(v) => {
                v[b.chunk as usize].copy_from_slice(data);
                Ok(())
            }
            HostBuf::U(_) => anyhow::bail!("{} is a u32 buffer", self.layout.spec(b.buf).name),
        }
    }

    fn write_u32(&mut self, id: BufId, data: &[u32]) -> anyhow::Result<()> {
        let name = self.layout.spec(id).name.clone();
        match &mut self.bufs[id.0 as usize] {
            HostBuf::U(v) => {
                let dst = v.first_mut().context("empty buffer")?;
                ensure!(
                    dst.len() >= data.len(),
                    "{name}: data larger than the buffer"
                );
                dst[..data.len()].copy_from_slice(data);
                Ok(())
            }
            HostBuf::F(_) => anyhow::bail!("{name} is an f32 buffer"),
        }
    }

    fn read_u32(&mut self, id: BufId) -> anyhow::Result<Vec<u32>> {
        match &self.bufs[id.0 as usize] {
            HostBuf::U(v) => Ok(v.concat()),
            HostBuf::F(_) => anyhow::bail!("{} is an f32 buffer", self.layout.spec(id).name),
        }
    }

    fn take_reads(&mut self, tags: Range<u64>) -> anyhow::Result<Vec<(u64, Vec<u32>)>> {
        let (taken, kept) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|r| tags.contains(&r.0));
        self.reads = kept;
        Ok(taken)
    }

    /// Reads complete when their plan runs.
    fn wait_read(&mut self, _tag: u64) -> anyhow::Result<()> {
        Ok(())
    }

    fn choice(&self, name: &'static str) -> Option<u32> {
        self.choices.get(name).copied()
    }

    fn set_choice(&mut self, name: &'static str, value: u32) {
        self.choices.insert(name, value);
    }
}

#[derive(Clone, Copy)]
enum Word<T> {
    F(T),
    U(u32),
}
