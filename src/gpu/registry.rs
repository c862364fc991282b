//! The kernel registry: each (shader, entry point, override constants) is compiled once per device and
//! shared by every model, session and ranker on it.
//!
//! Shader modules are created once per WGSL file — trusted (no runtime bounds checks; every kernel guards
//! its own indices, audited per shader) unless `COBRAR_SHADER_CHECKS=1`. Where the adapter offers a
//! pipeline cache (Vulkan), compiled pipelines are cached on disk between runs under
//! `$COBRAR_CACHE_DIR`, else `$XDG_CACHE_HOME/cobrar-gpu`, else `~/.cache/cobrar-gpu`
//! (`COBRAR_PIPELINE_CACHE=0` turns that off).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::kernel::{Kernel, KernelDef};

/// Compiled kernels and shader modules of one device.
pub struct KernelRegistry {
    kernels: Mutex<HashMap<&'static str, Arc<Kernel>>>,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    cache: Option<DiskCache>,
    compiled: AtomicUsize,
    /// Kernels compiled to do nothing (`COBRAR_INJECT_FAULT=wrong@kernel:NAME`).
    wrong_kernel: Option<String>,
}

/// wgpu's pipeline cache and the file it persists to.
struct DiskCache {
    cache: wgpu::PipelineCache,
    path: PathBuf,
}

impl KernelRegistry {
    pub fn new(device: &wgpu::Device, info: &wgpu::AdapterInfo, features: wgpu::Features) -> Self {
        let cache = if features.contains(wgpu::Features::PIPELINE_CACHE) {
            DiskCache::open(device, info)
        } else {
            None
        };
        KernelRegistry {
            kernels: Mutex::default(),
            modules: Mutex::default(),
            cache,
            compiled: AtomicUsize::new(0),
            wrong_kernel: None,
        }
    }

    /// Makes the kernels named `name` drop their dispatches (fault injection: see `GpuContext`).
    pub fn set_wrong_kernel(&mut self, name: Option<String>) {
        self.wrong_kernel = name;
    }

    /// Pipelines compiled so far on this device (each kernel once).
    pub fn compiled(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The names of the kernels compiled so far on this device.
    pub fn compiled_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.lock_kernels().keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Whether pipelines go through wgpu's (disk-backed) pipeline cache.
    pub fn has_pipeline_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// The compiled kernel for `def`, compiling it on first use.
    pub fn get(
        &self,
        device: &wgpu::Device,
        shader_checks: bool,
        def: &KernelDef,
    ) -> anyhow::Result<Arc<Kernel>> {
        if let Some(k) = self.lock_kernels().get(def.name) {
            return Ok(k.clone());
        }
        let kernel = Arc::new(self.compile(device, shader_checks, def)?);
        self.lock_kernels().insert(def.name, kernel.clone());
        Ok(kernel)
    }

    fn lock_kernels(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Arc<Kernel>>> {
        self.kernels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn module(
        &self,
        device: &wgpu::Device,
        shader_checks: bool,
        def: &KernelDef,
    ) -> anyhow::Result<wgpu::ShaderModule> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(def.shader.name) {
            return Ok(m.clone());
        }
        def.shader.validate()?;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(def.shader.name),
            source: wgpu::ShaderSource::Wgsl(def.shader.source.into()),
        };
        let module = if shader_checks {
            device.create_shader_module(desc)
        } else {
            // SAFETY: the kernels guard every storage index against the sizes passed in their parameter
            // blocks (audited per shader). `.ci/run` runs the GPU-vs-CPU tests once with the runtime checks
            // on (`COBRAR_SHADER_CHECKS=1`). The checks cost up to 5x on lavapipe (BENCHMARKS.md).
            unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        };
        modules.insert(def.shader.name, module.clone());
        Ok(module)
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        shader_checks: bool,
        def: &KernelDef,
    ) -> anyhow::Result<Kernel> {
        let bindings = def.bindings()?;
        let (module_ir, _) = def.shader.validate_with_info()?;
        super::params::check_against(&def.params, &module_ir)
            .map_err(|e| anyhow::anyhow!("kernel {}: parameter block: {e}", def.name))?;
        let module = self.module(device, shader_checks, def)?;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(def.name),
            entries: &Kernel::layout_entries(&bindings),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(def.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(def.name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(def.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: def.constants,
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: self.cache.as_ref().map(|c| &c.cache),
        });
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let faulty = self
            .wrong_kernel
            .as_deref()
            .is_some_and(|n| super::kernel::name_matches(def.name, n));
        Ok(Kernel {
            def: *def,
            pipeline,
            layout,
            bindings,
            faulty,
        })
    }
}

impl Drop for KernelRegistry {
    fn drop(&mut self) {
        if self.compiled() > 0
            && let Some(c) = &self.cache
        {
            c.save();
        }
    }
}

/// The folder of the on-disk pipeline cache, or `None` when disabled.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var("COBRAR_PIPELINE_CACHE").as_deref() {
        Ok("0") | Ok("off") | Ok("false") => return None,
        _ => {}
    }
    if let Some(d) = std::env::var_os("COBRAR_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("cobrar-gpu"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("cobrar-gpu"))
}

impl DiskCache {
    fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<DiskCache> {
        let key = wgpu::util::pipeline_cache_key(info)?;
        let path = cache_dir()?.join(key);
        let data = std::fs::read(&path).ok();
        // SAFETY: the data was written by `PipelineCache::get_data` for an adapter with the same cache key
        // (the file name); wgpu and the driver validate it and fall back to an empty cache otherwise.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("cobrar-gpu pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(DiskCache { cache, path })
    }

    /// Best effort: a cache that cannot be written only costs compile time next run.
    fn save(&self) {
        let Some(data) = self.cache.get_data() else {
            return;
        };
        let write = || -> anyhow::Result<()> {
            let dir = self.path.parent().context("cache path")?;
            std::fs::create_dir_all(dir)?;
            crate::util::write_atomic(&self.path, &data)
        };
        let _ = write();
    }
}
