//! Kernels: what a dispatch runs, described once ([`KernelDef`]) and compiled once per device
//! ([`Kernel`], built by the registry).
//!
//! A definition names a WGSL file, an entry point, override constants, its parameter block and its CPU
//! twin. The bind group layout is not written by hand: it comes from naga's reflection of the globals
//! the entry point actually uses (binding index, read or read-write storage, uniform), so a dispatch
//! binds exactly those, in binding order, and the CPU twin reads them by their WGSL names.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, bail};

use super::params::{ParamBlock, ParamInfo};
use super::shaders::ShaderSource;
use super::twin::Twin;

/// One kernel: shader, entry point, override constants, parameter block and CPU twin.
#[derive(Clone, Copy)]
pub struct KernelDef {
    /// Unique name (`dense_forward.relu`): the registry's key and the label in profiles.
    pub name: &'static str,
    pub shader: ShaderSource,
    pub entry: &'static str,
    /// Pipeline-overridable constants (`override NAME: T;` in the WGSL) and their values.
    pub constants: &'static [(&'static str, f64)],
    pub params: ParamInfo,
    pub twin: Twin,
}

impl std::fmt::Debug for KernelDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl KernelDef {
    /// A definition with the parameter block `P` (a `const fn` so kernels are `const` items).
    pub const fn new<P: ParamBlock>(
        name: &'static str,
        shader: ShaderSource,
        entry: &'static str,
        constants: &'static [(&'static str, f64)],
        twin: Twin,
    ) -> KernelDef {
        KernelDef {
            name,
            shader,
            entry,
            constants,
            params: P::INFO,
            twin,
        }
    }

    /// The value of override constant `name` (panics when the definition does not set it: a bug).
    pub fn constant(&self, name: &str) -> f64 {
        super::twin::constant(self.name, self.constants, name)
    }

    /// The entry point's bindings, from naga's reflection.
    pub fn bindings(&self) -> anyhow::Result<Vec<Binding>> {
        let (module, info) = self.shader.validate_with_info()?;
        entry_bindings(&module, &info, self.entry)
            .with_context(|| format!("kernel {} ({})", self.name, self.shader.path))
    }

    /// The WGSL names of the entry point's storage bindings, in binding order: the buffers a dispatch
    /// passes, which its CPU twin reads and writes by these names. Reflected once per shader and entry
    /// point in a process.
    pub fn storage_names(&self) -> anyhow::Result<&'static [&'static str]> {
        type Cache = HashMap<(&'static str, &'static str), &'static [&'static str]>;
        static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
        let key = (self.shader.path, self.entry);
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(names) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(names);
        }
        let names: Vec<&'static str> = self
            .bindings()?
            .iter()
            .filter(|b| !matches!(b.slot, Slot::Uniform { .. }))
            .map(|b| b.name)
            .collect();
        let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, names);
        Ok(names)
    }
}

/// Declares a kernel definition on one line:
/// `kernel_def! { pub NAME = "label", SHADER, "entry", Params, twin_fn, "CONSTANT" => value, … }`,
/// where `twin_fn` is generic over the twin's float type.
#[macro_export]
macro_rules! kernel_def {
    ($(#[$m:meta])* $vis:vis $name:ident = $label:literal, $shader:expr, $entry:literal, $params:ty,
     $twin:ident $(, $k:literal => $v:expr)* $(,)?) => {
        $(#[$m])*
        $vis const $name: $crate::gpu::kernel::KernelDef =
            $crate::gpu::kernel::KernelDef::new::<$params>(
                $label,
                $shader,
                $entry,
                &[$(($k, $v)),*],
                $crate::gpu::twin::Twin { f32: $twin::<f32>, f64: $twin::<f64> },
            );
    };
}

/// What one binding of an entry point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `var<uniform>`, bound with a dynamic offset into the uniform arena; `size` is the struct's size.
    Uniform { size: u64 },
}

/// A binding index of group 0 and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub index: u32,
    pub slot: Slot,
    pub name: &'static str,
}

/// The group-0 globals `entry` uses, ordered by binding index.
pub fn entry_bindings(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry: &str,
) -> anyhow::Result<Vec<Binding>> {
    let Some(ep_index) = module.entry_points.iter().position(|e| e.name == entry) else {
        bail!("no entry point {entry}");
    };
    let uses = info.get_entry_point(ep_index);
    let mut out = Vec::new();
    for (handle, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        if uses[handle].is_empty() {
            continue;
        }
        if rb.group != 0 {
            bail!("binding group {} (only group 0 is used)", rb.group);
        }
        let slot = match var.space {
            naga::AddressSpace::Storage { access } => {
                if access.contains(naga::StorageAccess::STORE) {
                    Slot::ReadWrite
                } else {
                    Slot::Read
                }
            }
            naga::AddressSpace::Uniform => {
                let size = module.types[var.ty].inner.size(module.to_ctx()) as u64;
                Slot::Uniform { size }
            }
            other => bail!("unsupported address space {other:?}"),
        };
        let name: &'static str = Box::leak(var.name.clone().unwrap_or_default().into_boxed_str());
        out.push(Binding {
            index: rb.binding,
            slot,
            name,
        });
    }
    out.sort_by_key(|b| b.index);
    Ok(out)
}

/// A compiled kernel on one device: the pipeline and its bind group layout.
pub struct Kernel {
    pub def: KernelDef,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub bindings: Vec<Binding>,
    /// An injected fault: the kernel's dispatches are dropped (`COBRAR_INJECT_FAULT=wrong@kernel:…`).
    pub faulty: bool,
}

/// Whether kernel `name` is the one `pattern` names: the full name, or its part before a dot.
pub fn name_matches(name: &str, pattern: &str) -> bool {
    name == pattern
        || name
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Kernel {
    /// Whether the entry point reads a parameter block (bound with a dynamic offset).
    pub fn has_uniform(&self) -> bool {
        self.bindings
            .iter()
            .any(|b| matches!(b.slot, Slot::Uniform { .. }))
    }

    /// The bind group layout entries of `bindings`.
    pub fn layout_entries(bindings: &[Binding]) -> Vec<wgpu::BindGroupLayoutEntry> {
        bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.index,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match b.slot {
                    Slot::Read | Slot::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: b.slot == Slot::Read,
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
            .collect()
    }

    /// A bind group over `buffers` (one per storage binding, in binding order) and the uniform arena.
    pub fn bind(
        &self,
        device: &wgpu::Device,
        buffers: &[&wgpu::Buffer],
        uniforms: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        let storage = self.storage_bindings();
        assert_eq!(
            buffers.len(),
            storage,
            "kernel {} takes {storage} storage bindings",
            self.def.name
        );
        let mut next = buffers.iter();
        let entries: Vec<wgpu::BindGroupEntry> = self
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupEntry {
                binding: b.index,
                resource: match b.slot {
                    Slot::Uniform { size } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: uniforms,
                        offset: 0,
                        size: std::num::NonZeroU64::new(size),
                    }),
                    _ => next.next().expect("counted").as_entire_binding(),
                },
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.def.name),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records one dispatch (skipped when a dimension is 0).
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        group: &wgpu::BindGroup,
        uniform_offset: u32,
        workgroups: [u32; 3],
    ) {
        if workgroups.contains(&0) || self.faulty {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        if self.has_uniform() {
            pass.set_bind_group(0, group, &[uniform_offset]);
        } else {
            pass.set_bind_group(0, group, &[]);
        }
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// Storage bindings a dispatch passes (the uniform is the runtime's).
    pub fn storage_bindings(&self) -> usize {
        self.bindings
            .iter()
            .filter(|b| !matches!(b.slot, Slot::Uniform { .. }))
            .count()
    }
}
