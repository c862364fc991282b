//! The embedded shaders: every WGSL file under `shaders/` is compiled into the binary and validated by
//! naga (parse + validate) before wgpu sees it, so a broken shader is reported with its file and line.
//! The registry (`registry.rs`) turns them into modules and pipelines once per device.

use anyhow::bail;

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

pub const SPMM: ShaderSource = shader!("spmm");
pub const COLUMN_SUMS: ShaderSource = shader!("column_sums");
pub const DENSE_FORWARD: ShaderSource = shader!("dense_forward");
pub const DENSE_BACKWARD_DATA: ShaderSource = shader!("dense_backward_data");
pub const DENSE_BACKWARD_WEIGHT: ShaderSource = shader!("dense_backward_weight");
pub const SCORE_LOSS: ShaderSource = shader!("score_loss");
pub const ADAM_DENSE: ShaderSource = shader!("adam_dense");
pub const ADAM_TABLE: ShaderSource = shader!("adam_table");
pub const RANK_TOPK: ShaderSource = shader!("rank_topk");
pub const REDUCE: ShaderSource = shader!("reduce");
pub const COPY: ShaderSource = shader!("copy");
pub const BATCH_INDEX: ShaderSource = shader!("batch_index");
pub const BPR_LOSS: ShaderSource = shader!("bpr_loss");
pub const PROPAGATE: ShaderSource = shader!("propagate");
pub const SPMM_TRANSPOSE: ShaderSource = shader!("spmm_transpose");
pub const VAE: ShaderSource = shader!("vae");
pub const STRIDED_COPY: ShaderSource = shader!("strided_copy");

/// Every shader of the engine (the naga test walks this list and the `shaders/` folder).
pub const ALL: &[ShaderSource] = &[
    SPMM,
    COLUMN_SUMS,
    DENSE_FORWARD,
    DENSE_BACKWARD_DATA,
    DENSE_BACKWARD_WEIGHT,
    SCORE_LOSS,
    ADAM_DENSE,
    ADAM_TABLE,
    RANK_TOPK,
    REDUCE,
    COPY,
    BATCH_INDEX,
    BPR_LOSS,
    PROPAGATE,
    SPMM_TRANSPOSE,
    VAE,
    STRIDED_COPY,
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

    /// The module and naga's analysis of it (which globals each entry point uses).
    pub fn validate_with_info(&self) -> anyhow::Result<(naga::Module, naga::valid::ModuleInfo)> {
        let module = self.validate()?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| anyhow::anyhow!("{}", e.emit_to_string_with_path(self.source, self.path)))?;
        Ok((module, info))
    }
}
