// The sparse projection's weight gradient, fused into Adam with coupled L2, for one chunk of a table.
//
// Row t of W_U (an item) receives Σ over the batch's users u that interacted with t of dh_u; row t of
// W_T (a user) receives Σ over the batch's items i that t interacted with of dh_i. Each row gathers
// that sum itself by walking its own entity's training CSR row and looking each neighbour up in the
// batch's id → row map (u32::MAX: not in the batch): deterministic, no atomics, and no table-sized
// gradient buffer to clear or store. Coupled L2 makes every row's gradient non-zero (g = gather + λθ),
// so every row takes the Adam step of adam_dense.wgsl.
//
// One workgroup of 64 invocations per table row; each owns up to 4 vec4 columns per pass.

struct Params {
    rows: u32,        // rows in this chunk
    row0: u32,        // global index of the chunk's first row
    d4: u32,          // width / 4
    map_off: u32,     // neighbour id → batch row map in `batch` (u32 units)
    dh_off: u32,      // dh row 0 of the neighbours' side in `grads_act`, vec4 units
    groups_x: u32,
    step_size: f32,
    bc2_sqrt: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<storage, read_write> theta: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> m1: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> m2: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> csr_ptr: array<u32>;
@group(0) @binding(4) var<storage, read> csr_idx: array<u32>;
@group(0) @binding(5) var<storage, read> batch: array<u32>;
@group(0) @binding(6) var<storage, read> grads_act: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> p: Params;

const WG: u32 = 64u;
const MAX_V: u32 = 4u;
const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let tid = lid.x;
    let t = p.row0 + r;
    let start = csr_ptr[t];
    let end = csr_ptr[t + 1u];
    for (var base = 0u; base < p.d4; base += WG * MAX_V) {
        var g: array<vec4<f32>, 4>;
        for (var j = 0u; j < MAX_V; j++) {
            g[j] = vec4<f32>(0.0);
        }
        for (var e = start; e < end; e++) {
            let loc = batch[p.map_off + csr_idx[e]];
            if (loc == NONE) {
                continue;
            }
            let src = p.dh_off + loc * p.d4;
            for (var j = 0u; j < MAX_V; j++) {
                let c = base + tid + j * WG;
                if (c < p.d4) {
                    g[j] += grads_act[src + c];
                }
            }
        }
        for (var j = 0u; j < MAX_V; j++) {
            let c = base + tid + j * WG;
            if (c < p.d4) {
                let i = r * p.d4 + c;
                let th = theta[i];
                let gg = g[j] + p.weight_decay * th;
                let m = p.beta1 * m1[i] + (1.0 - p.beta1) * gg;
                let v = p.beta2 * m2[i] + (1.0 - p.beta2) * gg * gg;
                m1[i] = m;
                m2[i] = v;
                theta[i] = th - p.step_size * m / (sqrt(v) / p.bc2_sqrt + p.eps);
            }
        }
    }
}
