// The sparse projection's weight gradient, fused into Adam with coupled L2, for one chunk of a table.
//
// Row t of W_U (an item) receives Σ over the batch's users u that interacted with t of dh_u; row t of
// W_T (a user) receives Σ over the batch's items i that t interacted with of dh_i. The host builds that
// transposed index of the batch (batch.rs: for every row, its contributing batch rows, ascending), so
// each row gathers exactly its contributions in a fixed order: deterministic, no atomics, and no
// table-sized gradient buffer to clear or store. Coupled L2 makes every row's gradient non-zero
// (g = gather + λθ), so every row takes the Adam step of adam_dense.wgsl.
//
// One workgroup of 64 invocations per table row; each owns up to 4 vec4 columns per pass.
//
// Entry `gather` computes the same gathered gradient (without λθ) and writes it to `grad_out` instead
// of stepping: the gradient checks and diagnostics read table gradients through it.
//
// Entry `lazy` is lazy Adam (`--optimizer lazy-adam`): only the rows the batch touches (a non-empty
// index range) step, with g = gather + λθ (the L2 term on those rows only) and each row's own step
// count n (`row_steps`, one per table row) for the bias corrections, read from the host's table
// `bias` = (f32(lr / (1 − β1ⁿ)), f32(√(1 − β2ⁿ))) at min(n, bias_rows) − 1 — the same f32 constants
// as the dense step's at t = n, and constant from bias_rows on. A row touched at every step therefore
// takes exactly the dense step's update. Untouched rows read three words and write nothing.

struct Params {
    rows: u32,        // rows in this chunk
    row0: u32,        // global index of the chunk's first row
    d4: u32,          // width / 4
    ptr_off: u32,     // the index's offsets over all table rows, in `batch` (u32 units)
    rows_off: u32,    // the index's contributing batch rows, in `batch` (u32 units)
    dh_off: u32,      // dh row 0 of the contributing side in `grads_act`, vec4 units
    groups_x: u32,
    bias_rows: u32,   // rows of `bias` (entry `lazy`)
    _pad0: u32, _pad1: u32,
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
@group(0) @binding(3) var<storage, read> batch: array<u32>;
@group(0) @binding(4) var<storage, read> grads_act: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> grad_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> row_steps: array<u32>;
@group(0) @binding(8) var<storage, read> bias: array<vec2<f32>>;

const WG: u32 = 64u;
const MAX_V: u32 = 4u;

// Σ of dh over the batch rows that contribute to table row `t`, for the columns `tid` owns in the
// pass starting at vec4 column `base` (contributions in index order: deterministic).
fn gathered(t: u32, base: u32, tid: u32) -> array<vec4<f32>, 4> {
    var g: array<vec4<f32>, 4>;
    for (var j = 0u; j < MAX_V; j++) {
        g[j] = vec4<f32>(0.0);
    }
    let start = batch[p.ptr_off + t];
    let end = batch[p.ptr_off + t + 1u];
    for (var e = start; e < end; e++) {
        let loc = batch[p.rows_off + e];
        let src = p.dh_off + loc * p.d4;
        for (var j = 0u; j < MAX_V; j++) {
            let c = base + tid + j * WG;
            if (c < p.d4) {
                g[j] += grads_act[src + c];
            }
        }
    }
    return g;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let tid = lid.x;
    for (var base = 0u; base < p.d4; base += WG * MAX_V) {
        let g = gathered(p.row0 + r, base, tid);
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

// The row's new step count (0: the batch does not touch it), read by invocation 0 for the workgroup.
var<workgroup> row_step: u32;

@compute @workgroup_size(64, 1, 1)
fn lazy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let t = p.row0 + r;
    let tid = lid.x;
    if (tid == 0u) {
        let touched = batch[p.ptr_off + t + 1u] > batch[p.ptr_off + t];
        row_step = select(0u, row_steps[t] + 1u, touched);
    }
    let n = workgroupUniformLoad(&row_step);
    if (n == 0u) {
        return;
    }
    let k = bias[min(n, p.bias_rows) - 1u];
    let step_size = k.x;
    let bc2_sqrt = k.y;
    for (var base = 0u; base < p.d4; base += WG * MAX_V) {
        let g = gathered(t, base, tid);
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
                theta[i] = th - step_size * m / (sqrt(v) / bc2_sqrt + p.eps);
            }
        }
    }
    if (tid == 0u) {
        row_steps[t] = n;
    }
}

@compute @workgroup_size(64, 1, 1)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let tid = lid.x;
    for (var base = 0u; base < p.d4; base += WG * MAX_V) {
        let g = gathered(p.row0 + r, base, tid);
        for (var j = 0u; j < MAX_V; j++) {
            let c = base + tid + j * WG;
            if (c < p.d4) {
                grad_out[r * p.d4 + c] = g[j];
            }
        }
    }
}
