//! What both executors offer: run a plan, collect its read-backs, and move whole buffers in and out
//! (tables chunk by chunk, in row order). Sessions, the ranking and the tests are written against this
//! trait, so the same code drives the GPU and the CPU twins.

use std::ops::Range;

use anyhow::ensure;

use super::memory::{Bind, BufId, Elem, MemoryLayout};
use super::plan::Plan;
use super::twin::Real;

pub trait Executor {
    /// The float type of the f32 buffers (`f32` on the GPU; `f32` or `f64` on the CPU).
    type Real: Real;
    fn layout(&self) -> &MemoryLayout;
    fn run(&mut self, plan: &Plan<'_>) -> anyhow::Result<()>;
    /// The per-dimension workgroup limit the plans must respect.
    fn max_per_dim(&self) -> u32;
    /// One chunk of an f32 buffer, read back (blocking).
    fn read_chunk(&mut self, b: Bind) -> anyhow::Result<Vec<Self::Real>>;
    /// Overwrites one chunk of an f32 buffer.
    fn write_chunk(&mut self, b: Bind, data: &[Self::Real]) -> anyhow::Result<()>;
    /// Overwrites the start of a (one-chunk) u32 buffer.
    fn write_u32(&mut self, id: BufId, data: &[u32]) -> anyhow::Result<()>;
    /// A (one-chunk) u32 buffer, read back (blocking).
    fn read_u32(&mut self, id: BufId) -> anyhow::Result<Vec<u32>>;
    /// The completed `Read`s of the plans run so far whose tags lie in `tags`, oldest first, without
    /// blocking: (tag, the buffer's 32-bit words; f32 values as their f32 bits). Completed reads with
    /// other tags are kept for whoever issued them.
    fn take_reads(&mut self, tags: Range<u64>) -> anyhow::Result<Vec<(u64, Vec<u32>)>>;
    /// Blocks until the `Read` tagged `tag` (and every read issued before it) has completed.
    fn wait_read(&mut self, tag: u64) -> anyhow::Result<()>;
    /// A choice measured once on this executor's device (which of equivalent kernels is faster there),
    /// by name; `None` until measured.
    fn choice(&self, name: &'static str) -> Option<u32>;
    fn set_choice(&mut self, name: &'static str, value: u32);

    /// A whole f32 buffer, every chunk in row order.
    fn read(&mut self, id: BufId) -> anyhow::Result<Vec<Self::Real>> {
        let spec = self.layout().spec(id);
        ensure!(spec.elem == Elem::F32, "{} is a u32 buffer", spec.name);
        let mut out = Vec::with_capacity(spec.len());
        for c in 0..self.layout().chunks(id) {
            let chunk = self.layout().chunk(id, c);
            out.extend(self.read_chunk(chunk)?);
        }
        Ok(out)
    }

    /// Overwrites a whole f32 buffer, every chunk.
    fn write(&mut self, id: BufId, data: &[Self::Real]) -> anyhow::Result<()> {
        let spec = self.layout().spec(id);
        ensure!(
            spec.elem == Elem::F32 && data.len() == spec.len(),
            "{}: {} values for {} f32 elements",
            spec.name,
            data.len(),
            spec.len()
        );
        let cols = spec.cols;
        for c in 0..self.layout().chunks(id) {
            let (lo, hi) = self.layout().chunk_rows(id, c);
            let chunk = self.layout().chunk(id, c);
            self.write_chunk(chunk, &data[lo * cols..hi * cols])?;
        }
        Ok(())
    }
}
