//! MultVAE's stages between its dense layers (`shaders/vae.wgsl`): the reparameterisation, the
//! multinomial log-likelihood over all items with its gradient (one launch per block of logit rows),
//! and the KL term with the reparameterisation's backward; CPU twins.

use super::{Dropout, Real, mix32, u32_of};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

crate::param_block! {
    pub struct Params {
        pub rows: u32, pub row0: u32, pub d: u32, pub m: u32, pub m4: u32, pub mulv_off: u32,
        pub z_off: u32, pub l_off: u32, pub ids_off: u32, pub groups_x: u32, pub seed: u32,
        pub salt: u32, pub sample: u32, pub beta: f32, pub inv_b: f32, pub _pad: u32,
    }
}

// Bindings: `acts` (read_write: z is written).
crate::kernel_def! { pub REPARAM = "vae.reparam", shaders::VAE, "reparam", Params, reparam_twin }
// Bindings: `acts`, `grads_act` (read_write: dz read, d[μ | logvar] written), `row_loss` (read_write).
crate::kernel_def! { pub KL = "vae.kl", shaders::VAE, "kl", Params, kl_twin }
// Bindings: `acts`, `grads_act`, `batch` (user ids), the training CSR by user (offsets, items),
// `row_loss`.
crate::kernel_def! { pub SOFTMAX = "vae.softmax_loss", shaders::VAE, "softmax_loss", Params, softmax_twin }

/// The key of a step's ε: (seed, salt) as the dropout hash takes them, distinct from every dropout
/// layer's.
pub fn noise_key(seed: u64, t: u64) -> (u32, u32) {
    let d = Dropout::new(0.5, seed, t, 0x4e0f_5e1d);
    (d.seed, d.salt)
}

/// A standard normal draw for (row, k) under `key`: Box–Muller over two 24-bit uniforms, as the
/// shader computes it (there in f32, from `counter_hash` of `shaders/lib/hash.wgsl`).
pub fn gauss(key: (u32, u32), row: u32, k: u32) -> f64 {
    let h1 = mix32(key.0 ^ mix32(key.1 ^ mix32(row ^ mix32(k))));
    let h2 = mix32(h1 ^ 0x9e37_79b9);
    let u1 = ((h1 >> 8) as f64 + 0.5) / 16_777_216.0;
    let u2 = (h2 >> 8) as f64 / 16_777_216.0;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Where a batch's VAE tensors lie (f32 elements in `acts`/`grads_act`; `ids_off` in `batch`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// Batch users (rows of the μ/logvar and z blocks).
    pub rows: usize,
    pub d: usize,
    pub mulv_off: usize,
    pub z_off: usize,
    pub ids_off: usize,
    pub n_items: usize,
}

impl Layout {
    fn base(&self) -> Params {
        Params {
            rows: u32_of(self.rows),
            d: u32_of(self.d),
            m: u32_of(self.n_items),
            m4: u32_of(self.n_items.next_multiple_of(4)),
            mulv_off: u32_of(self.mulv_off),
            z_off: u32_of(self.z_off),
            ids_off: u32_of(self.ids_off),
            inv_b: 1.0 / self.rows.max(1) as f32,
            ..Default::default()
        }
    }

    /// z from [μ | logvar]: with ε keyed by `noise` (training), or z = μ (`None`).
    pub fn reparam(&self, noise: Option<(u32, u32)>, max_per_dim: u32) -> (Params, [u32; 3]) {
        let grid = Grid::cover(self.rows * self.d, 64, max_per_dim);
        let (seed, salt) = noise.unwrap_or_default();
        let p = Params {
            groups_x: grid.groups_x,
            seed,
            salt,
            sample: noise.is_some() as u32,
            ..self.base()
        };
        (p, grid.workgroups)
    }

    /// The KL term at weight `beta` and the reparameterisation's backward (ε keyed by `noise`).
    pub fn kl(&self, noise: (u32, u32), beta: f32, max_per_dim: u32) -> (Params, [u32; 3]) {
        let grid = Grid::linear(self.rows, max_per_dim);
        let p = Params {
            groups_x: grid.groups_x,
            seed: noise.0,
            salt: noise.1,
            sample: 1,
            beta,
            ..self.base()
        };
        (p, grid.workgroups)
    }

    /// The log-likelihood of batch rows `row0 .. row0 + rows` whose logits lie at `l_off`.
    pub fn softmax(
        &self,
        row0: usize,
        rows: usize,
        l_off: usize,
        max_per_dim: u32,
    ) -> (Params, [u32; 3]) {
        let grid = Grid::linear(rows, max_per_dim);
        let p = Params {
            rows: u32_of(rows),
            row0: u32_of(row0),
            l_off: u32_of(l_off),
            groups_x: grid.groups_x,
            ..self.base()
        };
        (p, grid.workgroups)
    }
}

/// Bytes and operations of a softmax launch over rows holding `entries` training items.
pub fn softmax_cost(p: &Params, entries: u64) -> Cost {
    let (rows, m4) = (p.rows as u64, p.m4 as u64);
    Cost {
        bytes: rows * m4 * 4 * 3 + entries * 12,
        flops: rows * m4 * 8,
    }
}

/// Bytes and operations of a reparameterisation or KL launch.
pub fn latent_cost(p: &Params) -> Cost {
    let n = p.rows as u64 * p.d as u64;
    Cost {
        bytes: n * 20,
        flops: n * 40,
    }
}

fn reparam_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (d, key) = (p.d as usize, (p.seed, p.salt));
    let acts = c.f_mut("acts");
    for r in 0..p.rows {
        let row = (p.row0 + r) as usize;
        for k in 0..d {
            let mu = acts[p.mulv_off as usize + row * 2 * d + k].to_f64();
            let lv = acts[p.mulv_off as usize + row * 2 * d + d + k].to_f64();
            let mut z = mu;
            if p.sample == 1 {
                z += (0.5 * lv).exp() * gauss(key, row as u32, k as u32);
            }
            acts[p.z_off as usize + row * d + k] = T::from_f64(z);
        }
    }
}

fn kl_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (d, key) = (p.d as usize, (p.seed, p.salt));
    let (beta, inv_b) = (p.beta as f64, p.inv_b as f64);
    let acts = c.f("acts").to_vec();
    let mut losses = Vec::with_capacity(p.rows as usize);
    {
        let grads = c.f_mut("grads_act");
        for r in 0..p.rows {
            let row = (p.row0 + r) as usize;
            let at = p.mulv_off as usize + row * 2 * d;
            let mut kl = 0.0;
            for k in 0..d {
                let (mu, lv) = (acts[at + k].to_f64(), acts[at + d + k].to_f64());
                let dz = grads[p.z_off as usize + row * d + k].to_f64();
                let eps = if p.sample == 1 {
                    gauss(key, row as u32, k as u32)
                } else {
                    0.0
                };
                grads[at + k] = T::from_f64(dz + beta * mu * inv_b);
                grads[at + d + k] = T::from_f64(
                    dz * 0.5 * (0.5 * lv).exp() * eps + beta * 0.5 * (lv.exp() - 1.0) * inv_b,
                );
                kl += 0.5 * (lv.exp() - lv + mu * mu - 1.0);
            }
            losses.push((row, beta * kl));
        }
    }
    let row_loss = c.f_mut("row_loss");
    for (row, v) in losses {
        row_loss[row] = T::from_f64(row_loss[row].to_f64() + v);
    }
}

fn softmax_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let (m, m4, inv_b) = (p.m as usize, p.m4 as usize, p.inv_b as f64);
    let acts = c.f("acts").to_vec();
    let (ids, ptr, idx) = (
        c.u("batch").to_vec(),
        c.u("csr_ptr").to_vec(),
        c.u("csr_idx").to_vec(),
    );
    let mut losses = Vec::with_capacity(p.rows as usize);
    {
        let grads = c.f_mut("grads_act");
        for r in 0..p.rows as usize {
            let row = p.row0 as usize + r;
            let id = ids[p.ids_off as usize + row] as usize;
            let items = &idx[ptr[id] as usize..ptr[id + 1] as usize];
            let n = items.len() as f64;
            let base = p.l_off as usize + r * m4;
            let l: Vec<f64> = acts[base..base + m].iter().map(|v| v.to_f64()).collect();
            let mx = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + l.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            let picked: f64 = items.iter().map(|&i| l[i as usize]).sum();
            for col in 0..m4 {
                let g = if col < m {
                    let x = if items.binary_search(&(col as u32)).is_ok() {
                        1.0
                    } else {
                        0.0
                    };
                    (n * (l[col] - lse).exp() - x) * inv_b
                } else {
                    0.0
                };
                grads[base + col] = T::from_f64(g);
            }
            losses.push((row, n * lse - picked));
        }
    }
    let row_loss = c.f_mut("row_loss");
    for (row, v) in losses {
        row_loss[row] = T::from_f64(v);
    }
}
