//! Storage buffers: creation with an out-of-memory check, upload, read-back, and row-chunked tables for
//! matrices larger than one storage binding (lavapipe allows 128 MiB per binding; the W_T table of
//! Amazon Baby with a 2048-wide first layer is 157 MB).

use anyhow::{Context, bail};

use super::GpuContext;

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A zeroed storage buffer of `bytes` bytes (at least 16, so empty regions still bind).
/// Fails with a clear message when the device is out of memory.
pub fn storage(ctx: &GpuContext, label: &str, bytes: u64) -> anyhow::Result<wgpu::Buffer> {
    let size = bytes.max(16).next_multiple_of(16);
    if size > ctx.limits.max_buffer_size {
        bail!(
            "{label}: {} MiB exceeds the adapter's largest buffer ({} MiB)",
            size >> 20,
            ctx.limits.max_buffer_size >> 20
        );
    }
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: STORAGE,
        mapped_at_creation: false,
    });
    if let Some(err) = pollster::block_on(scope.pop()) {
        bail!(
            "{label}: cannot allocate {} MiB on the GPU: {err}",
            size >> 20
        );
    }
    Ok(buffer)
}

/// A storage buffer holding `data`.
pub fn storage_init<T: bytemuck::Pod>(
    ctx: &GpuContext,
    label: &str,
    data: &[T],
) -> anyhow::Result<wgpu::Buffer> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let buffer = storage(ctx, label, bytes.len() as u64)?;
    if !bytes.is_empty() {
        ctx.queue.write_buffer(&buffer, 0, bytes);
    }
    Ok(buffer)
}

/// Uploads `data` at element offset `offset` (in `T` units).
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

/// Reads `len` elements of `T` starting at element `offset`, waiting for all submitted work first.
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
    ctx.queue.submit([enc.finish()]);
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
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

/// A row-major `rows × cols` f32 matrix split by rows over several buffers, each within the device's
/// storage binding limit. Kernels that touch arbitrary rows run once per chunk.
pub struct ChunkedTable {
    pub rows: usize,
    pub cols: usize,
    pub rows_per_chunk: usize,
    pub chunks: Vec<wgpu::Buffer>,
}

impl ChunkedTable {
    /// Rows per chunk for `cols`-wide f32 rows under a binding limit of `max_binding` bytes.
    pub fn rows_per_chunk(max_binding: u64, cols: usize) -> usize {
        let row_bytes = (cols * 4) as u64;
        ((max_binding / row_bytes) as usize).max(1)
    }

    pub fn new(
        ctx: &GpuContext,
        label: &str,
        rows: usize,
        cols: usize,
    ) -> anyhow::Result<ChunkedTable> {
        Self::with_chunk_rows(
            ctx,
            label,
            rows,
            cols,
            Self::rows_per_chunk(ctx.max_binding(), cols),
        )
    }

    /// As `new`, with an explicit chunk height (tests force several chunks on small tables).
    pub fn with_chunk_rows(
        ctx: &GpuContext,
        label: &str,
        rows: usize,
        cols: usize,
        rows_per_chunk: usize,
    ) -> anyhow::Result<ChunkedTable> {
        let rows_per_chunk = rows_per_chunk.max(1);
        let n_chunks = rows.div_ceil(rows_per_chunk).max(1);
        let mut chunks = Vec::with_capacity(n_chunks);
        for c in 0..n_chunks {
            let r = (rows - (c * rows_per_chunk).min(rows)).min(rows_per_chunk);
            chunks.push(storage(
                ctx,
                &format!("{label}[{c}]"),
                (r * cols * 4) as u64,
            )?);
        }
        Ok(ChunkedTable {
            rows,
            cols,
            rows_per_chunk,
            chunks,
        })
    }

    /// The row range `[start, end)` stored in chunk `c`.
    pub fn chunk_rows(&self, c: usize) -> (usize, usize) {
        let start = c * self.rows_per_chunk;
        (
            start.min(self.rows),
            ((c + 1) * self.rows_per_chunk).min(self.rows),
        )
    }

    /// Uploads the whole row-major matrix.
    pub fn upload(&self, ctx: &GpuContext, data: &[f32]) {
        assert_eq!(data.len(), self.rows * self.cols);
        for (c, buf) in self.chunks.iter().enumerate() {
            let (s, e) = self.chunk_rows(c);
            upload(ctx, buf, 0, &data[s * self.cols..e * self.cols]);
        }
    }

    /// Reads the whole matrix back.
    pub fn read(&self, ctx: &GpuContext) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for (c, buf) in self.chunks.iter().enumerate() {
            let (s, e) = self.chunk_rows(c);
            out.extend(read::<f32>(ctx, buf, 0, (e - s) * self.cols)?);
        }
        Ok(out)
    }

    pub fn bytes(&self) -> u64 {
        (self.rows * self.cols * 4) as u64
    }
}
