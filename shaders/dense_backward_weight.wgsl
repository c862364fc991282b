// Dense layer backward, weight side: d[W ; b] = [X | 1]ᵀ · dZ, for one or two row segments.
//
// The implicit constant column of the forward pass makes the last output row (index d_in) the bias
// gradient Σ_r dZ[r, :], so one kernel writes the whole gradient block of the layer, matching the
// [W ; b] parameter layout. The reduction runs over the segment's rows inside each invocation, in row
// order: deterministic, no atomics. CoBraR puts user and item rows in one segment (both feed the one
// shared branch); DeepMF gives each branch its own segment and gradient block.
//
// Tiling (lib/gemm_tile.wgsl): 64×64 output tiles ((d_in + 1) × d_out), 8×8 invocations of 8×8 outputs, k-tiles of 16 rows.
// X and dZ are both row-major with the reduction dimension (rows) outermost, so no transposes are needed.

struct Params {
    rows0: u32, rows1: u32,
    x_off0: u32, x_off1: u32,     // X (rows × d_in) in `acts`, vec4 units
    dz_off0: u32, dz_off1: u32,   // dZ (rows × d_out) in `grads_act`, vec4 units
    g_off0: u32, g_off1: u32,     // d[W ; b] ((d_in + 1) × d_out) in `grads`, vec4 units
    d_in: u32,
    d_out: u32,
    accumulate: u32,              // 1: add to the gradient there (a later row block of one batch)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> acts: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grads_act: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;

// The tile: As[row][k4] is the X tile, Bs[row][n4] the dZ tile.
//!include lib/gemm_tile.wgsl

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let seg = wg.z;
    let rows = select(p.rows0, p.rows1, seg == 1u);
    let x_off = select(p.x_off0, p.x_off1, seg == 1u);
    let dz_off = select(p.dz_off0, p.dz_off1, seg == 1u);
    let g_off = select(p.g_off0, p.g_off1, seg == 1u);
    let m0 = wg.y * BM; // first output row (input feature, or d_in for the bias)
    let n0 = wg.x * BN; // first output column
    let tid = lid.y * 8u + lid.x;
    let in4 = p.d_in / 4u;
    let out4 = p.d_out / 4u;

    var acc: Tile;
    tile_clear(&acc);
    let lc = tid % 16u; // vec4 column within the tile
    let lr = tid / 16u; // first row within the k-tile (then +4, +8, +12)

    for (var r0 = 0u; r0 < rows; r0 += BK) {
        for (var j = 0u; j < 4u; j++) {
            let rr = lr + j * 4u;
            let r = r0 + rr;
            let kv = m0 / 4u + lc;
            var a = vec4<f32>(0.0);
            if (r < rows) {
                if (kv < in4) {
                    a = acts[x_off + r * in4 + kv];
                } else if (kv == in4) {
                    a = vec4<f32>(1.0, 0.0, 0.0, 0.0); // the constant bias column
                }
            }
            As[rr * 16u + lc] = a;
            let nv = n0 / 4u + lc;
            var b = vec4<f32>(0.0);
            if (r < rows && nv < out4) {
                b = grads_act[dz_off + r * out4 + nv];
            }
            Bs[rr * 16u + lc] = b;
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        let k = m0 + lid.y * TM + i;
        if (k > p.d_in) {
            break;
        }
        for (var h = 0u; h < 2u; h++) {
            let n4 = n0 / 4u + lid.x * 2u + h;
            if (n4 >= out4) {
                break;
            }
            let at = g_off + k * out4 + n4;
            if (p.accumulate == 1u) {
                grads[at] = grads[at] + acc[i * 2u + h];
            } else {
                grads[at] = acc[i * 2u + h];
            }
        }
    }
}
