//! Per-dispatch parameter blocks. A step records many dispatches into one command buffer, each with its
//! own sizes and offsets; their parameter structs go into one uniform buffer at aligned offsets and are
//! uploaded with a single write before the submit.

use super::GpuContext;

pub struct UniformArena {
    pub buffer: wgpu::Buffer,
    align: usize,
    capacity: usize,
    bytes: Vec<u8>,
}

/// Largest parameter struct a block may hold.
pub const BLOCK_BYTES: usize = 256;

impl UniformArena {
    /// An arena for up to `blocks` dispatches per upload.
    pub fn new(ctx: &GpuContext, blocks: usize) -> UniformArena {
        let align = (ctx.limits.min_uniform_buffer_offset_alignment as usize).max(BLOCK_BYTES);
        let capacity = blocks.max(1) * align;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size: capacity as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        UniformArena {
            buffer,
            align,
            capacity,
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Blocks the arena holds.
    pub fn capacity(&self) -> usize {
        self.capacity / self.align
    }

    /// Appends one parameter block and returns its dynamic offset.
    pub fn push<T: bytemuck::Pod>(&mut self, value: &T) -> u32 {
        self.push_bytes(bytemuck::bytes_of(value))
    }

    /// Appends one parameter block given as bytes.
    pub fn push_bytes(&mut self, data: &[u8]) -> u32 {
        assert!(
            data.len() <= BLOCK_BYTES,
            "parameter block larger than {BLOCK_BYTES} bytes"
        );
        let offset = self.bytes.len();
        assert!(
            offset + self.align <= self.capacity,
            "uniform arena full ({} blocks)",
            self.capacity / self.align
        );
        self.bytes.extend_from_slice(data);
        self.bytes.resize(offset + self.align, 0);
        offset as u32
    }

    /// Uploads the blocks pushed since the last `clear`; ordered before the next submit.
    pub fn upload(&self, ctx: &GpuContext) {
        if !self.bytes.is_empty() {
            ctx.queue.write_buffer(&self.buffer, 0, &self.bytes);
        }
    }
}
