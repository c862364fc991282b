//! The GPU layer: instance/adapter/device (`context`), buffers (including tables larger than one storage
//! binding), the embedded shader registry with naga validation (`shaders`), explicit pipeline layouts
//! (`pipelines`) and per-dispatch uniform blocks (`uniforms`).

pub mod buffers;
pub mod context;
pub mod pipelines;
pub mod recorder;
pub mod shaders;
pub mod uniforms;

pub use context::{AdapterChoice, GpuContext};
