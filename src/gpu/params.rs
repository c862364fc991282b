//! Kernel parameter blocks, declared once.
//!
//! Every kernel reads its sizes and offsets from one uniform struct `Params`. The Rust side declares the
//! same struct with [`param_block!`], which also records each field's name and byte offset; a test
//! (`tests/gpu/shaders.rs`) compares that record with naga's reflection of the WGSL struct — names,
//! offsets and total size — so the two can never drift apart silently (padding included). A Rust array
//! field `rows: [u32; 2]` stands for the WGSL scalars `rows0`, `rows1` (WGSL uniforms cannot hold
//! tightly packed arrays).

/// Field names and byte offsets of a parameter block, and its size.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

/// A parameter block: plain old data with a recorded layout.
pub trait ParamBlock: bytemuck::Pod {
    const INFO: ParamInfo;
}

/// Declares a `#[repr(C)]` parameter struct mirroring a WGSL `Params` struct field by field (same
/// names, same order; every field a 4-byte scalar), and its [`ParamBlock`] layout record.
#[macro_export]
macro_rules! param_block {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),*
        }

        impl $crate::gpu::params::ParamBlock for $name {
            const INFO: $crate::gpu::params::ParamInfo = $crate::gpu::params::ParamInfo {
                size: std::mem::size_of::<$name>(),
                fields: &[$((stringify!($field), std::mem::offset_of!($name, $field))),*],
            };
        }
    };
}

/// The uniform `Params` struct of a WGSL module as naga lays it out: (field, offset) and total size.
pub fn reflect_uniform(module: &naga::Module) -> Option<(Vec<(String, usize)>, usize)> {
    for (_, var) in module.global_variables.iter() {
        if var.space != naga::AddressSpace::Uniform {
            continue;
        }
        let ty = &module.types[var.ty];
        if let naga::TypeInner::Struct { members, span } = &ty.inner {
            let fields = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect();
            return Some((fields, *span as usize));
        }
    }
    None
}

/// Compares a Rust block with the WGSL one; `Err` says what differs.
pub fn check_against(info: &ParamInfo, module: &naga::Module) -> Result<(), String> {
    let Some((fields, size)) = reflect_uniform(module) else {
        return if info.size == 0 {
            Ok(())
        } else {
            Err("the shader has no uniform Params struct".into())
        };
    };
    let mut rust: Vec<(String, usize)> = Vec::new();
    for (k, (name, off)) in info.fields.iter().enumerate() {
        let end = info.fields.get(k + 1).map_or(info.size, |f| f.1);
        match (end - off) / 4 {
            1 => rust.push((name.to_string(), *off)),
            n => rust.extend((0..n).map(|i| (format!("{name}{i}"), off + 4 * i))),
        }
    }
    if rust != fields {
        return Err(format!("fields differ: Rust {rust:?} vs WGSL {fields:?}"));
    }
    if size != info.size {
        return Err(format!(
            "size differs: Rust {} bytes vs WGSL {size} bytes",
            info.size
        ));
    }
    Ok(())
}
