// The sparse projection's weight gradient (the transpose of spmm.wgsl):
//   dW[j, :] = Σ_{r : j ∈ row(id_r), (r, j) kept} s_r · dZ[r, :]
// for every table row j of one row chunk, where dZ holds the gradient of the projection's
// pre-activation for each batch row r and s_r is the forward pass's scale (1 or 1/√|row|, times
// 1/(1 − rate) under dropout). Rows no batch row touches get 0, so the whole chunk's gradient is
// written and a dense optimizer step can follow.
//
// The batch's transposed index (built on the host) lists, for each table row j, the batch rows whose
// entity has j in its row, ascending: the sum runs in that order (deterministic, no atomics). The
// dropout hash is spmm.wgsl's (lib/hash.wgsl, and `Dropout::keep`'s), keyed by (batch row, table row).
//
// One workgroup of 64 invocations per table row; each invocation owns vec4 columns tid, tid + 64, ….

struct Params {
    lo: u32,             // table rows [lo, hi) are this chunk (global row ids)
    hi: u32,
    d4: u32,             // width / 4
    ptr_off: u32,        // the index's row offsets in `batch`, indexed by global table row
    list_off: u32,       // the index's batch rows in `batch`
    ids_off: u32,        // entity id of each batch row in `batch` (for the row lengths)
    dz_off: u32,         // dZ in `grads_act`, vec4 units
    groups_x: u32,       // workgroups along x (row = x + y * groups_x)
    row_scale: u32,      // 1: s_r includes 1/sqrt(row length)
    drop_threshold: u32, // 0: no dropout
    drop_seed: u32,
    drop_salt: u32,
    drop_scale: f32,     // 1 / (1 − rate)
    _pad0: u32, _pad1: u32, _pad2: u32,
}

//!include lib/hash.wgsl

@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> csr_ptr: array<u32>;
@group(0) @binding(2) var<storage, read> grads_act: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 64u;

fn row_factor(r: u32) -> f32 {
    var s = 1.0;
    if (p.row_scale == 1u) {
        let id = batch[p.ids_off + r];
        s = inverseSqrt(f32(csr_ptr[id + 1u] - csr_ptr[id])); // r lists j, so its row is not empty
    }
    if (p.drop_threshold > 0u) {
        s *= p.drop_scale;
    }
    return s;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let local = wg.x + wg.y * p.groups_x;
    let j = p.lo + local;
    if (j >= p.hi) {
        return;
    }
    let start = batch[p.ptr_off + j];
    let end = batch[p.ptr_off + j + 1u];
    for (var c = lid.x; c < p.d4; c += WG) {
        var acc = vec4<f32>(0.0);
        for (var e = start; e < end; e++) {
            let r = batch[p.list_off + e];
            if (kept(p.drop_threshold, p.drop_seed, p.drop_salt, r, j)) {
                acc += row_factor(r) * grads_act[p.dz_off + r * p.d4 + c];
            }
        }
        grad[local * p.d4 + c] = acc;
    }
}
