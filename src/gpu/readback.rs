//! Non-blocking read-backs: a persistent pool of staging buffers. A plan's `Read` copies into a free
//! staging buffer inside the same command buffer; after the submit the buffer is mapped asynchronously,
//! and the host collects the bytes whenever the GPU gets there — it never waits for the queue to drain
//! to report a loss.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::GpuContext;

type MapResult = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

struct Staging {
    buffer: wgpu::Buffer,
    /// `Some` while a read is in flight in this buffer.
    pending: Option<Pending>,
}

struct Pending {
    tag: u64,
    bytes: u64,
    submission: Option<wgpu::SubmissionIndex>,
    mapped: MapResult,
}

/// The staging pool of one executor.
pub struct ReadbackRing {
    slots: Vec<Staging>,
    /// Slots in the order their reads were issued.
    order: VecDeque<usize>,
    /// Slots filled by the plan being recorded (mapped after its submit).
    recorded: Vec<usize>,
    /// Completed reads collected early (while waiting for a free buffer).
    stash: Vec<(u64, Vec<u8>)>,
    max_slots: usize,
}

impl ReadbackRing {
    pub fn new(max_slots: usize) -> ReadbackRing {
        ReadbackRing {
            slots: Vec::new(),
            order: VecDeque::new(),
            recorded: Vec::new(),
            stash: Vec::new(),
            max_slots: max_slots.max(1),
        }
    }

    /// Records a copy of `bytes` bytes of `src` at `offset` into a staging buffer. When every buffer is
    /// busy, waits for the oldest read (not for the whole queue).
    pub fn record(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        tag: u64,
    ) -> anyhow::Result<()> {
        let size = bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let slot = match self
            .slots
            .iter()
            .position(|s| s.pending.is_none() && s.buffer.size() >= size)
        {
            Some(i) => i,
            None if self.slots.len() < self.max_slots => {
                self.slots.push(Staging {
                    buffer: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("read-back staging"),
                        size: size.next_power_of_two(),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    pending: None,
                });
                self.slots.len() - 1
            }
            None => {
                // Every buffer is busy: wait for the oldest read (not for the queue), keep its bytes for
                // `ready`, and reuse its buffer.
                let oldest = *self.order.front().context("read-back pool is empty")?;
                let tag = self.slots[oldest].pending.as_ref().map(|p| p.tag);
                if let Some(tag) = tag {
                    self.wait(ctx, tag)?;
                    let got = self.take(oldest)?;
                    self.stash.push(got);
                }
                self.order.pop_front();
                if self.slots[oldest].buffer.size() < size {
                    self.slots[oldest].buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("read-back staging"),
                        size: size.next_power_of_two(),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                }
                oldest
            }
        };
        encoder.copy_buffer_to_buffer(src, offset, &self.slots[slot].buffer, 0, size);
        self.slots[slot].pending = Some(Pending {
            tag,
            bytes,
            submission: None,
            mapped: Arc::default(),
        });
        self.recorded.push(slot);
        self.order.push_back(slot);
        Ok(())
    }

    /// After the submit of the recorded plan: starts mapping its read-backs.
    pub fn submitted(&mut self, index: &wgpu::SubmissionIndex) {
        for slot in self.recorded.drain(..) {
            let s = &mut self.slots[slot];
            let p = s.pending.as_mut().expect("recorded slot is pending");
            p.submission = Some(index.clone());
            let mapped = p.mapped.clone();
            s.buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                *mapped.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    }

    /// The reads that have completed, oldest first, without blocking.
    pub fn ready(&mut self, ctx: &GpuContext) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
        ctx.poll_ready()?;
        let mut out = std::mem::take(&mut self.stash);
        while let Some(&slot) = self.order.front() {
            let done = self.slots[slot]
                .pending
                .as_ref()
                .expect("ordered slot is pending")
                .mapped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some();
            if !done {
                break;
            }
            self.order.pop_front();
            out.push(self.take(slot)?);
        }
        Ok(out)
    }

    /// Blocks until the read tagged `tag` (and every read before it) has completed.
    pub fn wait(&mut self, ctx: &GpuContext, tag: u64) -> anyhow::Result<()> {
        let Some(pos) = self
            .order
            .iter()
            .position(|&s| self.slots[s].pending.as_ref().is_some_and(|p| p.tag == tag))
        else {
            return Ok(());
        };
        if let Some(index) = self.slots[self.order[pos]]
            .pending
            .as_ref()
            .and_then(|p| p.submission.clone())
        {
            ctx.wait_for(index)?;
        }
        // The submission is done, but when another thread polls the same device at that moment, it
        // may have collected our map callbacks and be about to run them: wait for them briefly.
        let started = std::time::Instant::now();
        while !self.order.iter().take(pos + 1).all(|&s| self.mapped(s)) {
            anyhow::ensure!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "GPU read-back did not complete within 60 s of its submission"
            );
            std::thread::yield_now();
            ctx.poll_ready()?;
        }
        Ok(())
    }

    fn mapped(&self, slot: usize) -> bool {
        self.slots[slot].pending.as_ref().is_none_or(|p| {
            p.submission.is_none() || p.mapped.lock().unwrap_or_else(|e| e.into_inner()).is_some()
        })
    }

    fn take(&mut self, slot: usize) -> anyhow::Result<(u64, Vec<u8>)> {
        let s = &mut self.slots[slot];
        let p = s.pending.take().expect("pending");
        let result = p
            .mapped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("read-back not mapped")?;
        result.map_err(|e| anyhow::anyhow!("GPU read-back failed: {e}"))?;
        let data = {
            let view = s
                .buffer
                .slice(..)
                .get_mapped_range()
                .map_err(|e| anyhow::anyhow!("GPU read-back failed: {e}"))?;
            view[..p.bytes as usize].to_vec()
        };
        s.buffer.unmap();
        Ok((p.tag, data))
    }
}
