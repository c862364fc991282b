//! The shader registry: every WGSL file under `shaders/` is embedded in the binary, validated by naga
//! (parse + validate) before wgpu sees it, and turned into a module (trusted — no runtime bounds checks
//! — unless `COBRAR_SHADER_CHECKS=1`).

use anyhow::bail;

use super::GpuContext;

/// One embedded WGSL file.
#[derive(Debug, Clone, Copy)]
pub struct ShaderSource {
    /// Stage name, the file stem (`dense_forward`).
    pub name: &'static str,
    /// Path relative to the repository, for error messages (`shaders/dense_forward.wgsl`).
    pub path: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($name:literal) => {
        ShaderSource {
            name: $name,
            path: concat!("shaders/", $name, ".wgsl"),
            source: include_str!(concat!("../../shaders/", $name, ".wgsl")),
        }
    };
}

pub const SPARSE_PROJ_FORWARD: ShaderSource = shader!("sparse_proj_forward");
pub const SPARSE_PROJ_BIAS_GRAD: ShaderSource = shader!("sparse_proj_bias_grad");
pub const DENSE_FORWARD: ShaderSource = shader!("dense_forward");
pub const DENSE_BACKWARD_DATA: ShaderSource = shader!("dense_backward_data");
pub const DENSE_BACKWARD_WEIGHT: ShaderSource = shader!("dense_backward_weight");
pub const SCORE_LOSS: ShaderSource = shader!("score_loss");
pub const ADAM_DENSE: ShaderSource = shader!("adam_dense");
pub const ADAM_TABLE: ShaderSource = shader!("adam_table");
pub const RANK_TOPK: ShaderSource = shader!("rank_topk");

/// Every shader of the engine (the naga test walks this list and the `shaders/` folder).
pub const ALL: &[ShaderSource] = &[
    SPARSE_PROJ_FORWARD,
    SPARSE_PROJ_BIAS_GRAD,
    DENSE_FORWARD,
    DENSE_BACKWARD_DATA,
    DENSE_BACKWARD_WEIGHT,
    SCORE_LOSS,
    ADAM_DENSE,
    ADAM_TABLE,
    RANK_TOPK,
];

/// Parses and validates WGSL with naga. The error carries naga's own message, with file and line.
pub fn validate_wgsl(path: &str, source: &str) -> anyhow::Result<naga::Module> {
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(m) => m,
        Err(e) => bail!("{}", e.emit_to_string_with_path(source, path)),
    };
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    if let Err(e) = validator.validate(&module) {
        bail!("{}", e.emit_to_string_with_path(source, path));
    }
    Ok(module)
}

impl ShaderSource {
    pub fn validate(&self) -> anyhow::Result<naga::Module> {
        validate_wgsl(self.path, self.source)
    }

    /// A shader module on `ctx`'s device. Validation happens first so a broken shader is reported by
    /// naga with its file and line rather than as a wgpu panic.
    pub fn module(&self, ctx: &GpuContext) -> anyhow::Result<wgpu::ShaderModule> {
        self.validate()?;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(self.name),
            source: wgpu::ShaderSource::Wgsl(self.source.into()),
        };
        Ok(if ctx.shader_checks {
            ctx.device.create_shader_module(desc)
        } else {
            // SAFETY: the engine's kernels guard every storage index against the sizes passed in their
            // uniforms (audited per shader; the GPU-vs-CPU tests also run with checks on). Runtime checks
            // cost up to 5x on lavapipe (BENCHMARKS.md).
            unsafe {
                ctx.device
                    .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        })
    }
}
