//! Adam with coupled L2 over the dense parameter block (`shaders/adam_dense.wgsl`), the hyper-parameters
//! shared with the table step, and the CPU twin of the update.

use bytemuck::{Pod, Zeroable};

use super::{Real, grid_2d, u32_of};
use crate::gpu::GpuContext;
use crate::gpu::pipelines::{Kernel, Slot};
use crate::gpu::shaders;

/// Adam's settings (PyTorch defaults for the betas and eps) with coupled L2 `weight_decay` (λ).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    pub fn new(lr: f64, weight_decay: f64) -> AdamConfig {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// The per-step constants of step `t` (1-based), as PyTorch computes them (in f64, then used in f32).
    pub fn at_step(&self, t: u64) -> AdamStep {
        assert!(t >= 1, "Adam steps count from 1");
        let bc1 = 1.0 - self.beta1.powf(t as f64);
        let bc2 = 1.0 - self.beta2.powf(t as f64);
        AdamStep {
            step_size: (self.lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.eps as f32,
            weight_decay: self.weight_decay as f32,
        }
    }
}

/// The constants of one Adam step, laid out as the shaders' trailing parameter fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct AdamStep {
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Params {
    n4: u32,
    groups_x: u32,
    step: AdamStep,
}

impl Params {
    pub fn new(ctx: &GpuContext, n: usize, step: AdamStep) -> Params {
        assert!(n % 4 == 0);
        Params {
            n4: u32_of(n / 4),
            groups_x: grid_2d(
                (n / 4).div_ceil(64),
                ctx.limits.max_compute_workgroups_per_dimension,
            )[0],
            step,
        }
    }

    pub fn workgroups(&self, ctx: &GpuContext) -> [u32; 3] {
        grid_2d(
            (self.n4 as usize).div_ceil(64),
            ctx.limits.max_compute_workgroups_per_dimension,
        )
    }
}

/// Bindings: 0 θ (read_write), 1 gradient (read), 2 m (read_write), 3 v (read_write), 4 uniform.
pub fn kernel(ctx: &GpuContext) -> anyhow::Result<Kernel> {
    Kernel::new(
        ctx,
        &shaders::ADAM_DENSE,
        "main",
        &[
            Slot::ReadWrite,
            Slot::Read,
            Slot::ReadWrite,
            Slot::ReadWrite,
            Slot::Uniform {
                size: std::mem::size_of::<Params>() as u64,
            },
        ],
    )
}

/// CPU twin of one Adam step with coupled L2, in place.
pub fn cpu<T: Real>(theta: &mut [T], grad: &[T], m: &mut [T], v: &mut [T], s: &AdamStep) {
    assert!(theta.len() == grad.len() && m.len() == grad.len() && v.len() == grad.len());
    let (b1, b2) = (s.beta1 as f64, s.beta2 as f64);
    for i in 0..theta.len() {
        let th = theta[i].to_f64();
        let g = grad[i].to_f64() + s.weight_decay as f64 * th;
        let mi = b1 * m[i].to_f64() + (1.0 - b1) * g;
        let vi = b2 * v[i].to_f64() + (1.0 - b2) * g * g;
        m[i] = T::from_f64(mi);
        v[i] = T::from_f64(vi);
        theta[i] = T::from_f64(
            th - s.step_size as f64 * mi / (vi.sqrt() / s.bc2_sqrt as f64 + s.eps as f64),
        );
    }
}
