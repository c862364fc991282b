//! Storage buffers: creation with typed limit and out-of-memory errors, byte accounting (live and peak
//! bytes per device: `evaluate` reports what inference really holds), upload, and a blocking read for
//! tests and diagnostics (the training loop reads through the non-blocking ring in `readback`).

use std::sync::Arc;

use anyhow::Context;

use super::GpuContext;
use super::error::GpuError;
use super::memory::MemoryStats;

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A storage buffer whose bytes count towards its device's [`MemoryStats`] while it lives.
#[derive(Debug)]
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    stats: Arc<MemoryStats>,
}

impl std::ops::Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.stats.sub(self.buffer.size());
    }
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// A zeroed storage buffer of `bytes` bytes (at least 16, so empty regions still bind).
pub fn storage(ctx: &GpuContext, label: &str, bytes: u64) -> anyhow::Result<GpuBuffer> {
    let size = bytes.max(16).next_multiple_of(16);
    if size > ctx.limits.max_buffer_size {
        return Err(GpuError::BufferLimit {
            what: label.to_string(),
            mib: mib(size),
            limit_mib: ctx.limits.max_buffer_size >> 20,
        }
        .into());
    }
    ctx.check()?;
    if let Some(fault) = ctx.take_injected_fault(super::context::FaultPoint::Allocation) {
        return Err(fault.into());
    }
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: STORAGE,
        mapped_at_creation: false,
    });
    if pollster::block_on(scope.pop()).is_some() {
        return Err(GpuError::OutOfMemory {
            what: label.to_string(),
            mib: mib(size),
        }
        .into());
    }
    ctx.memory.add(size);
    Ok(GpuBuffer {
        buffer,
        stats: ctx.memory.clone(),
    })
}

/// A storage buffer holding `data`.
pub fn storage_init<T: bytemuck::Pod>(
    ctx: &GpuContext,
    label: &str,
    data: &[T],
) -> anyhow::Result<GpuBuffer> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let buffer = storage(ctx, label, bytes.len() as u64)?;
    if !bytes.is_empty() {
        ctx.queue.write_buffer(&buffer, 0, bytes);
    }
    Ok(buffer)
}

/// Uploads `data` at element offset `offset` (in `T` units); it lands before the next submission runs.
pub fn upload<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: usize,
    data: &[T],
) {
    if !data.is_empty() {
        let start = (offset * std::mem::size_of::<T>()) as u64;
        ctx.queue
            .write_buffer(buffer, start, bytemuck::cast_slice(data));
    }
}

/// Reads `len` elements of `T` starting at element `offset`, blocking until the copy is done (tests and
/// diagnostics; training reads go through the non-blocking ring).
pub fn read<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: usize,
    len: usize,
) -> anyhow::Result<Vec<T>> {
    let elem = std::mem::size_of::<T>();
    let bytes = (len * elem) as u64;
    if bytes == 0 {
        return Ok(Vec::new());
    }
    // Copies must be 4-byte aligned in offset and size.
    let start = (offset * elem) as u64;
    let aligned_start = start & !3;
    let aligned_len = (start + bytes).next_multiple_of(4) - aligned_start;
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back"),
        size: aligned_len,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, aligned_start, &staging, 0, aligned_len);
    let index = ctx.queue.submit([enc.finish()]);
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait_for(index)?;
    rx.recv()
        .context("GPU read-back was cancelled")?
        .map_err(|e| anyhow::anyhow!("GPU read-back failed: {e}"))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| anyhow::anyhow!("GPU read-back failed: {e}"))?;
    let skip = (start - aligned_start) as usize;
    let out: Vec<T> = bytemuck::pod_collect_to_vec(&view[skip..skip + bytes as usize]);
    drop(view);
    staging.unmap();
    Ok(out)
}
