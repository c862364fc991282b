//! Instance, adapter choice and device creation.
//!
//! `--adapter auto|vulkan|metal|dx12|gl|<part of the adapter's name>` (or `COBRAR_ADAPTER`) picks the
//! adapter. `auto` prefers a discrete GPU, then integrated, virtual and finally CPU (software) adapters,
//! and among equals a native backend (Vulkan, Metal, DX12) over GL. The device is requested with the
//! adapter's own limits and the optional features the engine can use.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, bail};

/// Environment variable that selects the adapter when `--adapter` is not given.
pub const ADAPTER_ENV: &str = "COBRAR_ADAPTER";

/// How the user asked for an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    Auto,
    Backend(wgpu::Backend),
    /// Case-insensitive substring of the adapter's name.
    Name(String),
}

impl FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "" | "auto" => AdapterChoice::Auto,
            "vulkan" | "vk" => AdapterChoice::Backend(wgpu::Backend::Vulkan),
            "metal" => AdapterChoice::Backend(wgpu::Backend::Metal),
            "dx12" | "d3d12" => AdapterChoice::Backend(wgpu::Backend::Dx12),
            "gl" | "gles" | "opengl" => AdapterChoice::Backend(wgpu::Backend::Gl),
            _ => AdapterChoice::Name(s.trim().to_string()),
        })
    }
}

impl fmt::Display for AdapterChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterChoice::Auto => f.write_str("auto"),
            AdapterChoice::Backend(b) => write!(f, "{b}"),
            AdapterChoice::Name(n) => write!(f, "{n:?}"),
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
            AdapterChoice::Auto => true,
            AdapterChoice::Backend(b) => info.backend == *b,
            AdapterChoice::Name(n) => info.name.to_lowercase().contains(&n.to_lowercase()),
        }
    }
}

/// Optional features the engine uses when the adapter has them.
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::SUBGROUP
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
    let adapters = enumerate_adapters();
    if adapters.is_empty() {
        bail!(
            "no GPU adapter found: install a GPU driver, or on Linux without a GPU the software Vulkan \
             driver (`apt-get install mesa-vulkan-drivers libvulkan1`)"
        );
    }
    let mut candidates: Vec<&wgpu::Adapter> = adapters
        .iter()
        .filter(|a| choice.accepts(&a.get_info()))
        .collect();
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

/// A device and queue on the chosen adapter, with what the engine needs to know about them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Runtime bounds checks in the engine's own (index-audited) shaders. Off by default: see
    /// BENCHMARKS.md for the measurement behind that choice. `COBRAR_SHADER_CHECKS=1` turns them on.
    pub shader_checks: bool,
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
        let limits = adapter.limits();
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
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            shader_checks,
        })
    }

    /// `name (backend)` for logs and reports.
    pub fn adapter_label(&self) -> String {
        format!("{} ({})", self.info.name, self.info.backend)
    }

    /// Largest byte size one storage binding may have on this device.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> anyhow::Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("GPU wait failed: {e}"))
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
