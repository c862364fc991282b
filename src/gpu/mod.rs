//! The GPU runtime, model-agnostic. A model describes each step once as a [`plan::Plan`] — uploads,
//! dispatches (kernel, bindings, parameter block, grid), copies and read-backs over the buffers of a
//! [`memory::MemoryLayout`] — and either executor runs it: [`exec::GpuExec`] on the device, or
//! [`cpu::CpuExec`] through every kernel's CPU twin on host buffers (f32 to check the GPU, f64 for
//! finite differences).
//!
//! - `context`: instance, adapter choice, device, the error sink, fault injection for tests.
//! - `registry` / `kernel`: kernels described once, compiled once per device; bindings from naga.
//! - `params`: parameter blocks declared once and checked against the WGSL structs.
//! - `grid`: launch grids within the per-dimension workgroup limit.
//! - `memory` / `buffers`: named buffers, row-chunked tables, byte accounting (`MemoryStats`), typed
//!   errors.
//! - `plan`, `executor`, `exec`, `cpu`: the step description, what an executor offers, and the two.
//! - `twin`: what kernel definitions and the CPU executor share (the twins' float type, a dispatch's
//!   view for its twin), below both.
//! - `readback`: non-blocking read-backs through a persistent staging pool.
//! - `recorder`, `uniforms`: command recording (with per-dispatch timestamps) and the uniform arena.

pub mod buffers;
pub mod context;
pub mod cpu;
pub mod error;
pub mod exec;
pub mod executor;
pub mod grid;
pub mod kernel;
pub mod memory;
pub mod params;
pub mod plan;
pub mod readback;
pub mod recorder;
pub mod registry;
pub mod shaders;
pub mod twin;
pub mod uniforms;

pub use context::{AdapterChoice, GpuContext};
pub use error::GpuError;
