//! Adam with coupled L2 over the dense parameter block (`shaders/adam_dense.wgsl`), the hyper-parameters
//! shared with the table step, and the CPU twin of the update.

use super::{Real, u32_of};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::twin::CpuCall;

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

    /// Rows of [`AdamConfig::bias_table`]: the first step count from which the f32 bias-corrected
    /// constants no longer change (f32(lr / (1 − β1ⁿ)) = f32(lr) and f32(√(1 − β2ⁿ)) = 1; both are
    /// monotone in n, so they stay there). About 16,600 with β2 = 0.999.
    pub fn bias_rows(&self) -> usize {
        let done = |n: u64| {
            let s = self.at_step(n);
            s.step_size == self.lr as f32 && s.bc2_sqrt == 1.0
        };
        // Monotone: double up to a step that is done, then bisect for the first one.
        let mut hi = 1u64;
        while !done(hi) {
            hi *= 2;
            assert!(
                hi < 1 << 30,
                "Adam's betas ({}, {}) are too close to 1",
                self.beta1,
                self.beta2
            );
        }
        let mut lo = hi / 2; // not done (or 0)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if done(mid) { hi = mid } else { lo = mid }
        }
        hi as usize
    }

    /// Lazy Adam's bias-correction table: row n − 1 holds step n's (step size, √(1 − β2ⁿ)) exactly
    /// as [`AdamConfig::at_step`] gives them, for n up to [`AdamConfig::bias_rows`] (the last row
    /// serves every later step). Flattened pairs.
    pub fn bias_table(&self) -> Vec<f32> {
        (1..=self.bias_rows() as u64)
            .flat_map(|n| {
                let s = self.at_step(n);
                [s.step_size, s.bc2_sqrt]
            })
            .collect()
    }
}

/// The constants of one Adam step (the shaders' trailing parameter fields).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

crate::param_block! {
    pub struct Params {
        pub n4: u32, pub groups_x: u32, pub step_size: f32, pub bc2_sqrt: f32, pub beta1: f32,
        pub beta2: f32, pub eps: f32, pub weight_decay: f32,
    }
}

// Bindings: θ (read_write), gradient (read), m (read_write), v (read_write).
crate::kernel_def! { pub DEF = "adam_dense", shaders::ADAM_DENSE, "main", Params, twin }

/// Parameters and grid for `n` parameters (64 vec4 per workgroup).
pub fn params(n: usize, step: AdamStep, max_per_dim: u32) -> (Params, [u32; 3]) {
    assert!(n.is_multiple_of(4));
    let grid = Grid::cover(n / 4, 64, max_per_dim);
    let p = Params {
        n4: u32_of(n / 4),
        groups_x: grid.groups_x,
        step_size: step.step_size,
        bc2_sqrt: step.bc2_sqrt,
        beta1: step.beta1,
        beta2: step.beta2,
        eps: step.eps,
        weight_decay: step.weight_decay,
    };
    (p, grid.workgroups)
}

impl Params {
    /// The Adam constants of the block.
    pub fn step(&self) -> AdamStep {
        AdamStep {
            step_size: self.step_size,
            bc2_sqrt: self.bc2_sqrt,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }
}

/// Bytes (θ, m, v read and written, the gradient read) and operations of a launch.
pub fn cost(p: &Params) -> Cost {
    let n = p.n4 as u64 * 4;
    Cost {
        bytes: 28 * n,
        flops: 12 * n,
    }
}
fn twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = p.n4 as usize * 4;
    let grad = c.f("grads")[..n].to_vec();
    let mut m = c.f("m1")[..n].to_vec();
    let mut v = c.f("m2")[..n].to_vec();
    cpu(&mut c.f_mut("theta")[..n], &grad, &mut m, &mut v, &p.step());
    c.f_mut("m1")[..n].copy_from_slice(&m);
    c.f_mut("m2")[..n].copy_from_slice(&v);
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
