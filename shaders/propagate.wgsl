// Graph propagation over the bipartite user–item graph (LightGCN, SPEC §7), one side per launch:
//   y[r] = s_r · Σ_{c ∈ row(r)} s_c · x[c],   total[r] = (total[r] + y[r]) · total_scale
// — one layer of E^{k+1} = Â·E^k with Â = D^{-1/2} A D^{-1/2} for the rows of one side, reading the
// other side's layer k through the training CSR of this side (s = (degree + 1e-7)^{-1/2}). `total`
// keeps the running sum of the layers; the last layer scales it by 1/(K+1), giving the layer mean.
// Â is symmetric, so the backward pass is the same launches applied to the loss's gradient.
// Deterministic: each row gathers its neighbours in CSR order (no atomics).
//
// Entry `regularise` adds the regulariser's gradient on the layer-0 rows a batch uses:
//   grad[r] += coef · count_r · e0[r],   count_r = ptr[r + 1] − ptr[r] of the batch's gradient index.
//
// `main`: one invocation per vec4 of the output; `regularise`: one workgroup of 64 per row.

struct Params {
    rows: u32,         // rows of this side
    d4: u32,           // width / 4
    groups_x: u32,
    ptr_off: u32,      // `regularise`: the side's gradient index offsets in `batch` (u32 units)
    total_scale: f32,  // `main`: 1, or 1/(K+1) on the last layer
    coef: f32,         // `regularise`: λ / B
    _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> csr_ptr: array<u32>;
@group(0) @binding(1) var<storage, read> csr_idx: array<u32>;
// The degree factors are resident data, stored as f32 bits in u32 buffers.
@group(0) @binding(2) var<storage, read> s_out: array<u32>;
@group(0) @binding(3) var<storage, read> s_in: array<u32>;
@group(0) @binding(4) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> total: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> p: Params;

@group(0) @binding(8) var<storage, read> e0: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> batch: array<u32>;
@group(0) @binding(10) var<storage, read_write> grad: array<vec4<f32>>;

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // One invocation per (row, vec4 column): consecutive invocations read consecutive columns of the
    // same neighbour row, and no lane idles when the width is small (64 wide: 16 vec4 per row).
    let g = (wg.x + wg.y * p.groups_x) * WG + lid.x;
    let r = g / p.d4;
    if (r >= p.rows) {
        return;
    }
    let col = g - r * p.d4;
    var acc = vec4<f32>(0.0);
    for (var e = csr_ptr[r]; e < csr_ptr[r + 1u]; e++) {
        let c = csr_idx[e];
        acc += bitcast<f32>(s_in[c]) * x[c * p.d4 + col];
    }
    let i = r * p.d4 + col;
    let v = bitcast<f32>(s_out[r]) * acc;
    y[i] = v;
    total[i] = (total[i] + v) * p.total_scale;
}

@compute @workgroup_size(64, 1, 1)
fn regularise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.rows) {
        return;
    }
    let count = f32(batch[p.ptr_off + r + 1u] - batch[p.ptr_off + r]);
    let k = p.coef * count;
    for (var col = lid.x; col < p.d4; col += WG) {
        let i = r * p.d4 + col;
        grad[i] += k * e0[i];
    }
}
