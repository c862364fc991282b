//! Everything that runs on the GPU adapter (the software one in CI), in one test binary: each kernel
//! against its CPU twin, whole steps through both executors and finite differences, ranking, export,
//! the runtime's guarantees, and training on the embedded dataset. Shader and parameter-block checks
//! need no adapter.

mod baselines;
mod common;
mod kernels;
mod memory_plan;
mod multvae;
mod portability;
mod ranking;
mod runtime;
mod selftest;
mod shaders;
mod steps;
mod training;
