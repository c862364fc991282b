// MultVAE's stages between the dense layers (Liang et al., WWW 2018; SPEC §7):
//   reparam      z = μ + exp(½·logvar) ⊙ ε in training (ε ~ N(0, I) from a counter-based hash),
//                z = μ at inference;
//   softmax_loss per batch user u with n_u training items: the multinomial log-likelihood over all M
//                items of one block of logit rows, −Σ_i x_ui·log_softmax(l_u)_i = n_u·lse(l_u) − Σ_{i∈u} l_ui,
//                into `row_loss`, and its gradient (n_u·softmax(l_u) − x_u) / B into `grads_act`;
//   kl           the KL term's and the reparameterisation's backward: from dz, the gradients of μ and
//                logvar with β·KL(q ‖ N(0, I)) / B added, and β·KL_u added to `row_loss`.
// The logits of a block are rows of m4 = M rounded up to 4 columns; the padding columns get a zero
// gradient and never enter the softmax. Sums over columns are tree reductions in workgroup memory
// (lib/reduce.wgsl: fixed order, deterministic).

struct Params {
    rows: u32,      // rows of this launch
    row0: u32,      // batch row of the first (softmax_loss: the block's first user)
    d: u32,         // latent width
    m: u32,         // items
    m4: u32,        // logit row stride (M rounded up to 4)
    mulv_off: u32,  // [μ | logvar] rows (2d wide) in `acts` / their gradient in `grads_act`, f32 units
    z_off: u32,     // z rows (d wide) in `acts` / dz in `grads_act`, f32 units
    l_off: u32,     // the block's logits in `acts` / their gradient in `grads_act`, f32 units
    ids_off: u32,   // user id of each batch row in `batch`
    groups_x: u32,  // workgroups along x
    seed: u32,      // ε's key: the run's seed and the step's salt
    salt: u32,
    sample: u32,    // 1: training (draw ε); 0: z = μ
    beta: f32,      // the KL weight of this step
    inv_b: f32,     // 1 / batch users
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> acts: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads_act: array<f32>;
@group(0) @binding(2) var<storage, read> batch: array<u32>;
@group(0) @binding(3) var<storage, read> csr_ptr: array<u32>;
@group(0) @binding(4) var<storage, read> csr_idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

//!include lib/hash.wgsl
//!include lib/reduce.wgsl

const WG: u32 = 64u;

// A standard normal draw for (row, k): Box–Muller over two 24-bit uniforms (kernels::vae::gauss).
fn gauss(row: u32, k: u32) -> f32 {
    let h1 = counter_hash(p.seed, p.salt, row, k);
    let h2 = mix32(h1 ^ 0x9e3779b9u);
    let u1 = (f32(h1 >> 8u) + 0.5) / 16777216.0;
    let u2 = f32(h2 >> 8u) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2);
}

@compute @workgroup_size(64, 1, 1)
fn reparam(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = (wg.x + wg.y * p.groups_x) * WG + lid.x;
    let r = g / p.d;
    if (r >= p.rows) {
        return;
    }
    let k = g - r * p.d;
    let row = p.row0 + r;
    var z = acts[p.mulv_off + row * 2u * p.d + k];
    if (p.sample == 1u) {
        let lv = acts[p.mulv_off + row * 2u * p.d + p.d + k];
        z += exp(0.5 * lv) * gauss(row, k);
    }
    acts[p.z_off + row * p.d + k] = z;
}

@compute @workgroup_size(64, 1, 1)
fn kl(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let tid = lid.x;
    let row = p.row0 + r;
    let at = p.mulv_off + row * 2u * p.d;
    var total = 0.0;
    for (var k = tid; k < p.d; k += WG) {
        let mu = acts[at + k];
        let lv = acts[at + p.d + k];
        let dz = grads_act[p.z_off + row * p.d + k];
        let var_ = exp(lv);
        var eps = 0.0;
        if (p.sample == 1u) {
            eps = gauss(row, k);
        }
        grads_act[at + k] = dz + p.beta * mu * p.inv_b;
        grads_act[at + p.d + k] = dz * 0.5 * exp(0.5 * lv) * eps
            + p.beta * 0.5 * (var_ - 1.0) * p.inv_b;
        total += 0.5 * (var_ - lv + mu * mu - 1.0);
    }
    let kl_u = reduce_sum(tid, total);
    if (tid == 0u) {
        row_loss[row] = row_loss[row] + p.beta * kl_u;
    }
}

// Whether item c is in the sorted training row [s, e).
fn in_row(s: u32, e: u32, c: u32) -> bool {
    var lo = s;
    var hi = e;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (csr_idx[mid] < c) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo < e && csr_idx[lo] == c;
}

@compute @workgroup_size(64, 1, 1)
fn softmax_loss(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let tid = lid.x;
    let row = p.row0 + r;
    let id = batch[p.ids_off + row];
    let s = csr_ptr[id];
    let e = csr_ptr[id + 1u];
    let n = f32(e - s);
    let base = p.l_off + r * p.m4;
    var mx = -3.4e38;
    for (var c = tid; c < p.m; c += WG) {
        mx = max(mx, acts[base + c]);
    }
    mx = reduce_max(tid, mx);
    var sum = 0.0;
    for (var c = tid; c < p.m; c += WG) {
        sum += exp(acts[base + c] - mx);
    }
    let lse = mx + log(reduce_sum(tid, sum));
    var picked = 0.0;
    for (var q = s + tid; q < e; q += WG) {
        picked += acts[base + csr_idx[q]];
    }
    picked = reduce_sum(tid, picked);
    for (var c = tid; c < p.m4; c += WG) {
        var g = 0.0;
        if (c < p.m) {
            g = n * exp(acts[base + c] - lse);
            if (in_row(s, e, c)) {
                g -= 1.0;
            }
            g *= p.inv_b;
        }
        grads_act[base + c] = g;
    }
    if (tid == 0u) {
        row_loss[row] = n * lse - picked;
    }
}
