//! Reductions (`shaders/reduce.wgsl`): the count of non-finite values of a buffer, for the divergence
//! check of the parameters; CPU twin.

use super::{Real, u32_of};
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub n4: u32, pub groups_x: u32, pub slot: u32, pub _pad: u32,
    }
}

// Bindings: the buffer (read), the counts (read_write, u32).
crate::kernel_def! { pub COUNT_NONFINITE = "reduce.count_nonfinite", shaders::REDUCE, "count_nonfinite", Params, twin }

/// Counts the non-finite values among `n` (a multiple of 4) into slot `slot`.
pub fn params(n: usize, slot: usize, max_per_dim: u32) -> (Params, [u32; 3]) {
    let (n4, grid) = super::vec4_grid(n, 64, max_per_dim);
    let p = Params {
        n4,
        groups_x: grid.groups_x,
        slot: u32_of(slot),
        _pad: 0,
    };
    (p, grid.workgroups)
}

fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = p.n4 as usize * 4;
    let bad = c.f("data")[..n]
        .iter()
        .filter(|v| !v.to_f64().is_finite())
        .count() as u32;
    c.u_mut("counts")[p.slot as usize] += bad;
}
