//! CoBraR and DeepMF recommenders trained and evaluated through WGSL compute shaders on any GPU `wgpu`
//! can drive. Data flows one way: `data` → `sampler`/`batch` → `models` (over `kernels` over the `gpu`
//! runtime) → `train` → `eval` → `report`. A model describes each step once as a plan that the GPU
//! executor runs, or the CPU executor through the kernels' plain-Rust twins.

pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod kernels;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod rundir;
pub mod sampler;
pub mod selftest;
pub mod train;
pub mod util;
