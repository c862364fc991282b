//! A plain copy (`shaders/copy.wgsl`): the adapter's memory bandwidth for `bench`'s roofline; CPU twin.

use super::{Real, u32_of};
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub n4: u32, pub groups_x: u32, pub per_thread: u32, pub _pad: u32,
    }
}

// Bindings: source (read), destination (read_write).
crate::kernel_def! { pub DEF = "copy", shaders::COPY, "main", Params, twin }

/// Copies `n` floats (a multiple of 4), `per_thread` vec4 per invocation (coalesced: consecutive
/// invocations touch consecutive vec4).
pub fn params(n: usize, per_thread: usize, max_per_dim: u32) -> (Params, [u32; 3]) {
    assert!(per_thread >= 1);
    let (n4, grid) = super::vec4_grid(n, 64 * per_thread, max_per_dim);
    let per_thread = u32_of(per_thread);
    let p = Params {
        n4,
        groups_x: grid.groups_x,
        per_thread,
        _pad: 0,
    };
    (p, grid.workgroups)
}

/// Bytes a copy of `n` floats moves (read + write).
pub fn bytes(n: usize) -> u64 {
    2 * 4 * n as u64
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = p.n4 as usize * 4;
    let src = c.f("src")[..n].to_vec();
    c.f_mut("dst")[..n].copy_from_slice(&src);
}
