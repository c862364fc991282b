//! Tests on the real datasets (`COBRAR_DATA_DIR`, ignored unless `--include-ignored`): the paper's
//! counts after preprocessing, and training on ML-1M and Amazon Baby.

mod data;
mod scale;
mod training;

/// The test adapter; GPU tests never pass by skipping.
pub fn gpu() -> std::sync::Arc<cobrar_gpu::gpu::GpuContext> {
    std::sync::Arc::new(
        cobrar_gpu::gpu::GpuContext::from_flag(None)
            .unwrap_or_else(|e| panic!("GPU tests need a wgpu adapter: {e:#}")),
    )
}
