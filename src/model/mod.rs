//! The model: kind and architecture with exact parameter counts (`arch`), parameter layout and seeded
//! initialisation (`params`), the GPU step graph over the kernels (`engine`), and the CPU reference
//! step composed of the kernels' twins in the same order (`reference`).

pub mod arch;
pub mod engine;
pub mod params;
pub mod reference;

pub use arch::{Architecture, ModelKind, ParamCounts};
pub use params::{Layout, ModelParams};

/// Step-level settings shared by the GPU engine and the CPU reference.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepConfig {
    /// Lower clamp of the score before the loss.
    pub mu: f32,
    /// Dropout rate after every branch layer (CoBraR only; 0 disables).
    pub dropout: f32,
    pub adam: crate::kernels::adam_dense::AdamConfig,
    /// The run's seed (dropout masks are keyed by it).
    pub seed: u64,
}

impl StepConfig {
    /// Dropout of branch layer `l` (0-based) at optimizer step `t`.
    pub fn dropout_at(&self, t: u64, l: usize) -> crate::kernels::Dropout {
        crate::kernels::Dropout::new(self.dropout, self.seed, t, l as u32)
    }
}
