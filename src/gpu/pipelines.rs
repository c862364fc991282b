//! Compute pipelines with explicit bind group layouts (wgpu's automatic layout silently drops bindings a
//! shader does not use, and bind group creation then fails).

use super::GpuContext;
use super::shaders::ShaderSource;

/// What one binding of a kernel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `var<uniform>` with a dynamic offset into a [`super::uniforms::UniformArena`]; `size` is the
    /// byte size of the shader's parameter struct.
    Uniform { size: u64 },
}

/// A compute pipeline and the layout of its single bind group (group 0, bindings in `slots` order).
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    slots: Vec<Slot>,
}

impl Kernel {
    pub fn new(
        ctx: &GpuContext,
        shader: &ShaderSource,
        entry: &str,
        slots: &[Slot],
    ) -> anyhow::Result<Kernel> {
        let module = shader.module(ctx)?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match *slot {
                    Slot::Read | Slot::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *slot == Slot::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Slot::Uniform { size } => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: std::num::NonZeroU64::new(size),
                    },
                },
                count: None,
            })
            .collect();
        let layout = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(shader.name),
                entries: &entries,
            });
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(shader.name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = ctx
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        Ok(Kernel {
            name: shader.name,
            pipeline,
            layout,
            slots: slots.to_vec(),
        })
    }

    /// A bind group over `buffers`, one per slot, in order. Storage slots bind whole buffers;
    /// the uniform slot binds one parameter block of the arena's buffer (moved by the dynamic offset).
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        assert_eq!(
            buffers.len(),
            self.slots.len(),
            "kernel {} takes {} bindings",
            self.name,
            self.slots.len()
        );
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .zip(&self.slots)
            .enumerate()
            .map(|(i, (buf, slot))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: match *slot {
                    Slot::Uniform { size } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: 0,
                        size: std::num::NonZeroU64::new(size),
                    }),
                    _ => buf.as_entire_binding(),
                },
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records one dispatch. `uniform_offset` is the block's offset from [`super::uniforms::UniformArena::push`].
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        group: &wgpu::BindGroup,
        uniform_offset: u32,
        workgroups: [u32; 3],
    ) {
        if workgroups.contains(&0) {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        let has_uniform = self.slots.iter().any(|s| matches!(s, Slot::Uniform { .. }));
        if has_uniform {
            pass.set_bind_group(0, group, &[uniform_offset]);
        } else {
            pass.set_bind_group(0, group, &[]);
        }
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }
}

/// Workgroups needed to cover `n` items with `per_group` items each.
pub fn groups(n: usize, per_group: usize) -> u32 {
    n.div_ceil(per_group) as u32
}
