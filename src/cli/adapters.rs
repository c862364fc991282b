//! `cobrar-gpu adapters`: what wgpu sees on this machine, one block per adapter.

use std::fmt::Write;

use crate::gpu::context::{AdapterChoice, enumerate_adapters, select_adapter, wanted_features};

pub fn run(json: bool, choice: Option<&str>) -> anyhow::Result<()> {
    let adapters = enumerate_adapters();
    // An explicit choice must match an adapter; report which one it selects.
    let selected = match choice {
        Some(c) => Some(select_adapter(&AdapterChoice::resolve(Some(c)))?.get_info()),
        None => None,
    };
    if json {
        let list: Vec<serde_json::Value> = adapters.iter().map(adapter_json).collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found: install a GPU driver, or on Linux without a GPU the software Vulkan \
             driver (`apt-get install mesa-vulkan-drivers libvulkan1`)"
        );
    }
    let mut out = String::new();
    for (i, a) in adapters.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&describe(a));
        let _ = writeln!(out, "  index:          {i} (--adapter {i})");
    }
    if let Some(info) = selected {
        let _ = writeln!(
            out,
            "\nselected: {} ({}, {:?})",
            info.name, info.backend, info.device_type
        );
    }
    out!("{out}");
    Ok(())
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB ({bytes} bytes)", bytes >> 20)
    }
}

fn feature_names(f: wgpu::Features) -> String {
    let mut names = Vec::new();
    for (flag, name) in [
        (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
        (
            wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
            "timestamp-query-inside-encoders",
        ),
        (wgpu::Features::SUBGROUP, "subgroups"),
    ] {
        if f.contains(flag) {
            names.push(name);
        }
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The block `adapters` prints for one adapter.
pub fn describe(a: &wgpu::Adapter) -> String {
    let i = a.get_info();
    let l = a.limits();
    let mut s = String::new();
    let _ = writeln!(s, "{}", i.name);
    let _ = writeln!(s, "  backend:        {}", i.backend);
    let _ = writeln!(s, "  device type:    {:?}", i.device_type);
    let _ = writeln!(s, "  driver:         {} ({})", i.driver, i.driver_info);
    let _ = writeln!(s, "  vendor/device:  {:#06x}/{:#06x}", i.vendor, i.device);
    let _ = writeln!(
        s,
        "  max storage binding:         {}",
        mib(l.max_storage_buffer_binding_size)
    );
    let _ = writeln!(
        s,
        "  max buffer:                  {}",
        mib(l.max_buffer_size)
    );
    let _ = writeln!(
        s,
        "  workgroup storage:           {} bytes",
        l.max_compute_workgroup_storage_size
    );
    let _ = writeln!(
        s,
        "  invocations per workgroup:   {}",
        l.max_compute_invocations_per_workgroup
    );
    let _ = writeln!(
        s,
        "  workgroups per dimension:    {}",
        l.max_compute_workgroups_per_dimension
    );
    let _ = writeln!(
        s,
        "  storage buffers per stage:   {}",
        l.max_storage_buffers_per_shader_stage
    );
    let _ = writeln!(
        s,
        "  subgroup size:               {}..{}",
        i.subgroup_min_size, i.subgroup_max_size
    );
    let _ = writeln!(
        s,
        "  engine features:             {}",
        feature_names(a.features() & wanted_features())
    );
    s
}

/// What `adapters --json` prints: one object per adapter wgpu sees.
pub fn list_json() -> Vec<serde_json::Value> {
    enumerate_adapters().iter().map(adapter_json).collect()
}

fn adapter_json(a: &wgpu::Adapter) -> serde_json::Value {
    let i = a.get_info();
    let l = a.limits();
    serde_json::json!({
        "name": i.name,
        "backend": i.backend.to_string(),
        "device_type": format!("{:?}", i.device_type),
        "driver": i.driver,
        "driver_info": i.driver_info,
        "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
        "max_buffer_size": l.max_buffer_size,
        "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
        "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
        "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
        "features": feature_names(a.features() & wanted_features()),
    })
}
