// Sparse row sums over a CSR (SpMM with a binary sparse operand):
//   h[r] = act(b + s_r · Σ_{j ∈ row(id_r)} W[j, :])
// for each batch row r, whose entity id_r is read from `batch`. A fully connected layer applied to a
// binary interaction vector is exactly this sum of weight rows; the dense row is never materialised.
// The bias is optional; s_r is 1, or 1/√|row| (the L2 normalisation of a binary row, `row_scale` = 1).
// With dropout (MultVAE's input), an entry (r, j) is dropped when its hash is below `drop_threshold`
// (lib/hash.wgsl, `Dropout::keep` in kernels/mod.rs) and s_r is multiplied by 1/(1 − rate).
//
// Tables larger than one storage binding are split into row chunks and this kernel runs once per chunk:
// the first chunk starts from the bias (or zero), later ones add to the partial sums, the last applies
// the row scale and the activation (fixed chunk order: deterministic). CSR rows are sorted, so each
// chunk's entries are a contiguous run found by binary search.
//
// One workgroup of 64 invocations per batch row; each invocation owns up to 4 vec4 columns per pass.

//!include lib/activation.wgsl
//!include lib/hash.wgsl

struct Params {
    n_rows: u32,     // batch rows of this launch
    ids_off: u32,    // entity ids in `batch` (u32 units)
    h_off: u32,      // h in `acts`, vec4 units
    d4: u32,         // width / 4
    chunk_lo: u32,   // table rows [chunk_lo, chunk_hi) live in `table`
    chunk_hi: u32,
    b_off: u32,      // bias in `params`, vec4 units
    first: u32,      // 1: start from the bias (without a row scale) or from zero
    last: u32,       // 1: apply the row scale, the bias (when scaled) and the activation
    groups_x: u32,   // workgroups along x (row = x + y * groups_x)
    has_bias: u32,   // 1: add the bias at b_off
    row_scale: u32,  // 0: none; 1: multiply the sum by 1/sqrt(row length)
    drop_threshold: u32, // 0: no dropout
    drop_seed: u32,
    drop_salt: u32,
    drop_scale: f32, // 1 / (1 − rate)
}

@group(0) @binding(0) var<storage, read> table: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> csr_ptr: array<u32>;
@group(0) @binding(2) var<storage, read> csr_idx: array<u32>;
@group(0) @binding(3) var<storage, read> batch: array<u32>;
@group(0) @binding(4) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> acts: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 64u;

const MAX_V: u32 = 4u;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.x + wg.y * p.groups_x;
    if (row >= p.n_rows) {
        return;
    }
    let tid = lid.x;
    let id = batch[p.ids_off + row];
    let end = csr_ptr[id + 1u];
    // First entry >= chunk_lo (entries are sorted ascending).
    var lo = csr_ptr[id];
    var hi = end;
    if (p.chunk_lo > 0u) {
        while (lo < hi) {
            let mid = (lo + hi) / 2u;
            if (csr_idx[mid] < p.chunk_lo) {
                lo = mid + 1u;
            } else {
                hi = mid;
            }
        }
    }
    let start = lo;
    let len = end - csr_ptr[id];
    var scale = 1.0;
    if (p.row_scale == 1u) {
        scale = select(0.0, inverseSqrt(f32(len)), len > 0u);
    }
    if (p.drop_threshold > 0u) {
        scale *= p.drop_scale;
    }
    let scaled = p.row_scale == 1u || p.drop_threshold > 0u;
    let bias_first = p.has_bias == 1u && !scaled;
    for (var base = 0u; base < p.d4; base += WG * MAX_V) {
        var acc: array<vec4<f32>, 4>;
        for (var j = 0u; j < MAX_V; j++) {
            let c = base + tid + j * WG;
            acc[j] = vec4<f32>(0.0);
            if (c < p.d4) {
                if (p.first == 0u) {
                    acc[j] = acts[p.h_off + row * p.d4 + c];
                } else if (bias_first) {
                    acc[j] = params[p.b_off + c];
                }
            }
        }
        for (var e = start; e < end; e++) {
            let t = csr_idx[e];
            if (t >= p.chunk_hi) {
                break;
            }
            if (!kept(p.drop_threshold, p.drop_seed, p.drop_salt, row, t)) {
                continue;
            }
            let src = (t - p.chunk_lo) * p.d4;
            for (var j = 0u; j < MAX_V; j++) {
                let c = base + tid + j * WG;
                if (c < p.d4) {
                    acc[j] += table[src + c];
                }
            }
        }
        for (var j = 0u; j < MAX_V; j++) {
            let c = base + tid + j * WG;
            if (c < p.d4) {
                var v = acc[j];
                if (p.last == 1u) {
                    if (scaled) {
                        v = v * scale;
                        if (p.has_bias == 1u) {
                            v = v + params[p.b_off + c];
                        }
                    }
                    v = activate(v);
                }
                acts[p.h_off + row * p.d4 + c] = v;
            }
        }
    }
}
