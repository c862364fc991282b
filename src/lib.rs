//! CoBraR and DeepMF recommenders trained and evaluated through WGSL compute shaders on any GPU `wgpu`
//! can drive. Data flows one way: `data` → `sampler`/`batch` → `model` (over `kernels` over `gpu`) →
//! `train` → `eval` → `report`. Every GPU stage in `kernels` has a plain-Rust CPU twin beside it.

pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod report;
pub mod sampler;
pub mod train;
pub mod util;
