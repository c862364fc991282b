// Adam with coupled L2 (PyTorch `Adam(weight_decay=λ)`) over the dense parameter block: the projection
// biases and every branch layer's [W ; b]. Their gradients are fully rewritten every step, so the block
// needs no zeroing:
//   g ← g + λθ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
//   θ ← θ − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
// (The two big projection tables take the same step in adam_table.wgsl, fused with their gradient.)

struct Params {
    n4: u32,          // parameters / 4
    groups_x: u32,    // workgroups along x
    step_size: f32,   // lr / (1 − β1^t)
    bc2_sqrt: f32,    // √(1 − β2^t)
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<storage, read_write> theta: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> m1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m2: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wg.x + wg.y * p.groups_x) * 64u + lid.x;
    if (i >= p.n4) {
        return;
    }
    let th = theta[i];
    let g = grads[i] + p.weight_decay * th;
    let m = p.beta1 * m1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * m2[i] + (1.0 - p.beta2) * g * g;
    m1[i] = m;
    m2[i] = v;
    theta[i] = th - p.step_size * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}
