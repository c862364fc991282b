//! Instance, adapter choice and device creation.
//!
//! `--adapter auto|vulkan|metal|dx12|gl|<part of the adapter's name>` (or `COBRAR_ADAPTER`) picks the
//! adapter. `auto` prefers a discrete GPU, then integrated, virtual and finally CPU (software) adapters,
//! and among equals a native backend (Vulkan, Metal, DX12) over GL. The device is requested with the
//! adapter's own limits and the optional features the engine can use.

use std::fmt;
use std::str::FromStr;

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};

use super::error::{ErrorSink, GpuError};
use super::kernel::{Kernel, KernelDef};
use super::memory::MemoryStats;
use super::registry::KernelRegistry;

/// Environment variable that selects the adapter when `--adapter` is not given.
pub const ADAPTER_ENV: &str = "COBRAR_ADAPTER";

/// How the user asked for an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    Auto,
    /// Every adapter (`selftest` and `bench` only).
    All,
    Backend(wgpu::Backend),
    /// Case-insensitive substring of the adapter's name.
    Name(String),
    /// The adapter at this position in `cobrar-gpu adapters`' list (two identical GPUs share a name).
    Index(usize),
}

impl FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "" | "auto" => AdapterChoice::Auto,
            "all" => AdapterChoice::All,
            "vulkan" | "vk" => AdapterChoice::Backend(wgpu::Backend::Vulkan),
            "metal" => AdapterChoice::Backend(wgpu::Backend::Metal),
            "dx12" | "d3d12" => AdapterChoice::Backend(wgpu::Backend::Dx12),
            "gl" | "gles" | "opengl" => AdapterChoice::Backend(wgpu::Backend::Gl),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse()
                .map_or(AdapterChoice::Name(n.to_string()), AdapterChoice::Index),
            _ => AdapterChoice::Name(s.trim().to_string()),
        })
    }
}

impl fmt::Display for AdapterChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterChoice::Auto => f.write_str("auto"),
            AdapterChoice::All => f.write_str("all"),
            AdapterChoice::Backend(b) => write!(f, "{b}"),
            AdapterChoice::Name(n) => write!(f, "{n:?}"),
            AdapterChoice::Index(i) => write!(f, "{i}"),
        }
    }
}

impl AdapterChoice {
    /// The choice from `--adapter` if given, else from `COBRAR_ADAPTER`, else `auto`.
    pub fn resolve(flag: Option<&str>) -> AdapterChoice {
        let from_env = std::env::var(ADAPTER_ENV).ok();
        let s = flag.map(str::to_string).or(from_env).unwrap_or_default();
        s.parse().expect("infallible")
    }

    fn accepts(&self, info: &wgpu::AdapterInfo) -> bool {
        match self {
            AdapterChoice::Auto | AdapterChoice::All => true,
            AdapterChoice::Backend(b) => info.backend == *b,
            AdapterChoice::Name(n) => info.name.to_lowercase().contains(&n.to_lowercase()),
            // By position, in `select_adapter`.
            AdapterChoice::Index(_) => false,
        }
    }
}

/// Environment variable that creates devices under WebGPU's default limits (`webgpu`) instead of the
/// adapter's own (`adapter`, the default): the weakest GPUs the program targets, on any machine.
pub const LIMITS_ENV: &str = "COBRAR_LIMITS";

/// Which limits a device is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsChoice {
    /// Everything the adapter offers.
    Adapter,
    /// WebGPU's defaults (128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup
    /// memory, 256 invocations per workgroup, 8 storage buffers per stage), where the adapter offers
    /// at least that.
    Webgpu,
}

impl LimitsChoice {
    /// From `COBRAR_LIMITS` (unset or empty: the adapter's).
    pub fn from_env() -> anyhow::Result<LimitsChoice> {
        match std::env::var(LIMITS_ENV).unwrap_or_default().trim() {
            "" | "adapter" => Ok(LimitsChoice::Adapter),
            "webgpu" => Ok(LimitsChoice::Webgpu),
            other => bail!("{LIMITS_ENV}={other:?}: expected adapter or webgpu"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LimitsChoice::Adapter => "adapter",
            LimitsChoice::Webgpu => "webgpu",
        }
    }

    /// The limits to request on an adapter offering `offered`.
    pub fn limits(self, offered: &wgpu::Limits) -> wgpu::Limits {
        match self {
            LimitsChoice::Adapter => offered.clone(),
            LimitsChoice::Webgpu => wgpu::Limits::defaults().or_worse_values_from(offered),
        }
    }
}

/// Optional features the engine uses when the adapter has them.
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::SUBGROUP
        | wgpu::Features::PIPELINE_CACHE
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::all();
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see, over all backends.
pub fn enumerate_adapters() -> Vec<wgpu::Adapter> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()))
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    }
}

/// One line per adapter: `name (backend, device type)`.
pub fn describe_adapters(adapters: &[wgpu::Adapter]) -> String {
    if adapters.is_empty() {
        return "none".to_string();
    }
    adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Picks the adapter for `choice`, or explains which adapters exist.
pub fn select_adapter(choice: &AdapterChoice) -> anyhow::Result<wgpu::Adapter> {
    if *choice == AdapterChoice::All {
        bail!(
            "--adapter all runs every adapter in `selftest` and `bench` only; this command uses one: \
             auto, vulkan, metal, dx12, gl or part of a name (see `cobrar-gpu adapters`)"
        );
    }
    let adapters = enumerate_adapters();
    if adapters.is_empty() {
        bail!(
            "no GPU adapter found: install a GPU driver, or on Linux without a GPU the software Vulkan \
             driver (`apt-get install mesa-vulkan-drivers libvulkan1`)"
        );
    }
    let mut candidates: Vec<&wgpu::Adapter> = match choice {
        AdapterChoice::Index(i) => adapters.get(*i).into_iter().collect(),
        _ => adapters
            .iter()
            .filter(|a| choice.accepts(&a.get_info()))
            .collect(),
    };
    candidates.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), backend_rank(i.backend))
    });
    match candidates.first() {
        Some(a) => Ok((*a).clone()),
        None => bail!(
            "no adapter matches --adapter {choice}; adapters found: {}",
            describe_adapters(&adapters)
        ),
    }
}

/// A device and queue on the chosen adapter, with what the runtime needs to know about them: limits,
/// features, the kernels compiled on it, its buffer bytes, and the errors wgpu reported.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Whether `limits` are the adapter's or WebGPU's defaults (`COBRAR_LIMITS`).
    pub limits_choice: LimitsChoice,
    pub features: wgpu::Features,
    /// Runtime bounds checks in the engine's own (index-audited) shaders. Off by default: see
    /// BENCHMARKS.md for the measurement behind that choice. `COBRAR_SHADER_CHECKS=1` turns them on.
    pub shader_checks: bool,
    pub registry: KernelRegistry,
    pub memory: Arc<MemoryStats>,
    /// Choices measured once per device (which of equivalent kernels is faster here), by name.
    choices: Mutex<std::collections::HashMap<&'static str, u32>>,
    errors: ErrorSink,
    faults: Mutex<Vec<InjectedFault>>,
}

/// Where an injected fault fires (tests of the error paths; `COBRAR_INJECT_FAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The n-th storage buffer allocation.
    Allocation,
    /// The n-th submission.
    Submit,
}

/// `wrong@kernel:NAME`: the kernel(s) named NAME compute nothing (their dispatches are dropped), as a
/// miscompiled shader would leave wrong results behind without any error. NAME is a kernel's full name
/// (`spmm.relu`) or the part before a dot (`spmm`: every variant). `selftest` must catch it.
fn parse_wrong_kernel(s: &str) -> anyhow::Result<String> {
    let name = s.trim_start_matches("wrong@kernel:").trim();
    let known = crate::kernels::ALL
        .iter()
        .any(|d| super::kernel::name_matches(d.name, name));
    if !known {
        let mut names: Vec<&str> = crate::kernels::ALL.iter().map(|d| d.name).collect();
        names.sort_unstable();
        bail!(
            "COBRAR_INJECT_FAULT={s:?}: no kernel is named {name:?}; kernels: {}",
            names.join(", ")
        );
    }
    Ok(name.to_string())
}

/// A fault the runtime reports as if the device had: `error` at the `at`-th event of `point` (1-based).
#[derive(Debug, Clone)]
pub struct InjectedFault {
    pub point: FaultPoint,
    pub at: u64,
    pub error: GpuError,
    seen: u64,
}

impl InjectedFault {
    pub fn new(point: FaultPoint, at: u64, error: GpuError) -> InjectedFault {
        InjectedFault {
            point,
            at,
            error,
            seen: 0,
        }
    }

    /// Parses `oom@alloc:N`, `oom@submit:N` or `lost@submit:N`.
    pub fn parse(s: &str) -> anyhow::Result<InjectedFault> {
        let bad = || {
            anyhow::anyhow!(
                "COBRAR_INJECT_FAULT={s:?}: expected oom@alloc:N, oom@submit:N, lost@submit:N, \
                     wrong@kernel:NAME or disk@write:N"
            )
        };
        let (kind, rest) = s.split_once('@').ok_or_else(bad)?;
        let (point, n) = rest.split_once(':').ok_or_else(bad)?;
        let at: u64 = n.parse().map_err(|_| bad())?;
        let point = match point {
            "alloc" => FaultPoint::Allocation,
            "submit" => FaultPoint::Submit,
            _ => return Err(bad()),
        };
        let error = match kind {
            "oom" => GpuError::OutOfMemoryAsync {
                during: "an injected fault".into(),
            },
            "lost" => GpuError::DeviceLost {
                reason: "injected fault".into(),
            },
            _ => return Err(bad()),
        };
        Ok(InjectedFault::new(point, at, error))
    }
}

impl GpuContext {
    /// Creates a device on the adapter chosen by `choice`.
    pub fn new(choice: &AdapterChoice) -> anyhow::Result<GpuContext> {
        let adapter = select_adapter(choice)?;
        Self::from_adapter(&adapter)
    }

    /// `--adapter` value (or `COBRAR_ADAPTER`, or auto).
    pub fn from_flag(flag: Option<&str>) -> anyhow::Result<GpuContext> {
        Self::new(&AdapterChoice::resolve(flag))
    }

    pub fn from_adapter(adapter: &wgpu::Adapter) -> anyhow::Result<GpuContext> {
        let info = adapter.get_info();
        let limits_choice = LimitsChoice::from_env()?;
        let limits = limits_choice.limits(&adapter.limits());
        let features = adapter.features() & wanted_features();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("cobrar-gpu"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| format!("cannot open a device on {} ({})", info.name, info.backend))?;
        let shader_checks = std::env::var("COBRAR_SHADER_CHECKS")
            .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        let errors = ErrorSink::default();
        errors.install(&device);
        let registry = KernelRegistry::new(&device, &info, features);
        let (faults, wrong_kernel) = match std::env::var("COBRAR_INJECT_FAULT") {
            Ok(s) if s.starts_with("wrong@kernel:") => (Vec::new(), Some(parse_wrong_kernel(&s)?)),
            Ok(s) if !s.is_empty() && !s.starts_with("disk@") => {
                (vec![InjectedFault::parse(&s)?], None)
            }
            _ => (Vec::new(), None),
        };
        let mut registry = registry;
        registry.set_wrong_kernel(wrong_kernel);
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            limits_choice,
            features,
            shader_checks,
            registry,
            memory: Arc::default(),
            choices: Mutex::default(),
            errors,
            faults: Mutex::new(faults),
        })
    }

    /// The compiled kernel for `def` (compiled on first use, then shared).
    pub fn kernel(&self, def: &KernelDef) -> anyhow::Result<Arc<Kernel>> {
        self.registry.get(&self.device, self.shader_checks, def)
    }

    /// A choice measured earlier on this device (`None`: not measured yet).
    pub fn choice(&self, name: &'static str) -> Option<u32> {
        self.choices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    pub fn set_choice(&self, name: &'static str, value: u32) {
        self.choices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, value);
    }

    /// The first error the device reported, if any, as a typed error.
    pub fn check(&self) -> Result<(), GpuError> {
        match self.errors.get() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reports `error` as if the device had (the runtime's own error path; fault-injection tests).
    pub fn report(&self, error: GpuError) {
        self.errors.record(error);
    }

    /// Arms a fault (tests of the error paths).
    pub fn inject_fault(&self, fault: InjectedFault) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault);
    }

    /// Counts one event at `point`; returns the error of a fault armed for it.
    pub fn take_injected_fault(&self, point: FaultPoint) -> Option<GpuError> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut hit = None;
        faults.retain_mut(|f| {
            if f.point != point {
                return true;
            }
            f.seen += 1;
            if f.seen == f.at {
                hit = Some(f.error.clone());
                false
            } else {
                true
            }
        });
        hit
    }

    /// `adapter` or `webgpu`: which limits the device was created with.
    pub fn limits_name(&self) -> &'static str {
        self.limits_choice.name()
    }

    /// `name (backend)` for logs and reports.
    pub fn adapter_label(&self) -> String {
        match self.limits_choice {
            LimitsChoice::Adapter => format!("{} ({})", self.info.name, self.info.backend),
            LimitsChoice::Webgpu => {
                format!(
                    "{} ({}, WebGPU default limits)",
                    self.info.name, self.info.backend
                )
            }
        }
    }

    /// Largest byte size one storage binding may have on this device (and that our kernels index).
    pub fn max_binding(&self) -> u64 {
        crate::gpu::memory::binding_limit(
            self.limits.max_storage_buffer_binding_size,
            self.limits.max_buffer_size,
        )
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> anyhow::Result<()> {
        self.poll(wgpu::PollType::wait_indefinitely())
    }

    /// Blocks until submission `index` (and those before it) is done; later ones keep running.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> anyhow::Result<()> {
        self.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        })
    }

    /// Runs ready callbacks (finished read-backs) without blocking.
    pub fn poll_ready(&self) -> anyhow::Result<()> {
        self.poll(wgpu::PollType::Poll)
    }

    fn poll(&self, how: wgpu::PollType) -> anyhow::Result<()> {
        let r = self.device.poll(how);
        self.check()?;
        match r {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Ok(()),
            Err(e) => Err(GpuError::Internal {
                message: e.to_string(),
            }
            .into()),
        }
    }
}

/// A serialisable summary of the adapter, written into metrics and benchmark files.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl From<&wgpu::AdapterInfo> for AdapterSummary {
    fn from(i: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: i.name.clone(),
            backend: i.backend.to_string(),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!(
            "auto".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Auto
        );
        assert_eq!(
            "Vulkan".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Backend(wgpu::Backend::Vulkan)
        );
        assert_eq!(
            "gl".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Backend(wgpu::Backend::Gl)
        );
        assert_eq!(
            "llvmpipe".parse::<AdapterChoice>().unwrap(),
            AdapterChoice::Name("llvmpipe".into())
        );
    }

    #[test]
    fn auto_prefers_discrete_then_native_backends() {
        assert!(
            type_rank(wgpu::DeviceType::DiscreteGpu) < type_rank(wgpu::DeviceType::IntegratedGpu)
        );
        assert!(type_rank(wgpu::DeviceType::IntegratedGpu) < type_rank(wgpu::DeviceType::Cpu));
        assert!(backend_rank(wgpu::Backend::Vulkan) < backend_rank(wgpu::Backend::Gl));
    }
}
