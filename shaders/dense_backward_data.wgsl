// Dense layer backward, input side: dX = (dZ · Wᵀ) ⊙ act'(X) · in_scale, for one or two row segments.
//
// dZ is the gradient with respect to this layer's pre-activation (already masked by the layer's own
// activation and dropout). The layer's input X is itself an activation output (the projection h or the
// previous layer's Y), so its derivative expressed through X — [X > 0] for ReLU, 1 − X² for tanh, 1 for
// identity (`IN_ACTIVATION`) — and the previous layer's dropout scale (`in_scale`; 1 without dropout)
// turn dX into the gradient with respect to the previous pre-activation: what the next kernel needs.
// (With tanh, X must be the activation's output itself: tanh layers take no dropout.)
// W is the top d_in rows of the stored [W ; b]; the bias row gets no input gradient.
//
// Tiling (lib/gemm_tile.wgsl) as dense_forward: 64×64 output tiles (rows × d_in), 8×8 invocations of 8×8 outputs, k-tiles of
// 16 over d_out; both operands are staged transposed through 4×4 register blocks.

override IN_ACTIVATION: u32 = 1u; // what produced X: 0 identity, 1 ReLU, 2 tanh

struct Params {
    rows0: u32, rows1: u32,
    dz_off0: u32, dz_off1: u32,   // dZ (rows × d_out) in `grads_act`, vec4 units
    dx_off0: u32, dx_off1: u32,   // dX (rows × d_in) in `grads_act`, vec4 units
    x_off0: u32, x_off1: u32,     // X (rows × d_in) in `acts`, vec4 units
    w_off0: u32, w_off1: u32,     // [W ; b] in `params`, vec4 units
    d_in: u32,
    d_out: u32,
    in_scale: f32,
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> acts: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads_act: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;

// The tile: As[k][m4] is dZ transposed, Bs[k][n4] W transposed.
//!include lib/gemm_tile.wgsl

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let seg = wg.z;
    let rows = select(p.rows0, p.rows1, seg == 1u);
    let dz_off = select(p.dz_off0, p.dz_off1, seg == 1u);
    let dx_off = select(p.dx_off0, p.dx_off1, seg == 1u);
    let x_off = select(p.x_off0, p.x_off1, seg == 1u);
    let w_off = select(p.w_off0, p.w_off1, seg == 1u);
    let m0 = wg.y * BM;
    let n0 = wg.x * BN;
    if (m0 >= rows) {
        return;
    }
    let tid = lid.y * 8u + lid.x;
    let in4 = p.d_in / 4u;
    let out4 = p.d_out / 4u;

    var acc: Tile;
    tile_clear(&acc);
    let g = tid / 4u;   // which group of 4 rows (A) or 4 input columns (B)
    let kq = tid % 4u;  // which vec4 of the k-tile

    for (var k0 = 0u; k0 < p.d_out; k0 += BK) {
        let kv = k0 / 4u + kq;
        var blk: array<vec4<f32>, 4>;
        // Stage dZ rows m0 + g*4 + i.
        for (var i = 0u; i < 4u; i++) {
            let r = m0 + g * 4u + i;
            var v = vec4<f32>(0.0);
            if (r < rows && kv < out4) {
                v = grads_act[dz_off + r * out4 + kv];
            }
            blk[i] = v;
        }
        for (var c = 0u; c < 4u; c++) {
            As[(kq * 4u + c) * 16u + g] = vec4<f32>(blk[0][c], blk[1][c], blk[2][c], blk[3][c]);
        }
        // Stage W rows (input columns) n0 + g*4 + i.
        for (var i = 0u; i < 4u; i++) {
            let c = n0 + g * 4u + i;
            var v = vec4<f32>(0.0);
            if (c < p.d_in && kv < out4) {
                v = params[w_off + c * out4 + kv];
            }
            blk[i] = v;
        }
        for (var c = 0u; c < 4u; c++) {
            Bs[(kq * 4u + c) * 16u + g] = vec4<f32>(blk[0][c], blk[1][c], blk[2][c], blk[3][c]);
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        let r = m0 + lid.y * TM + i;
        if (r >= rows) {
            break;
        }
        for (var h = 0u; h < 2u; h++) {
            let c4 = n0 / 4u + lid.x * 2u + h;
            if (c4 >= in4) {
                break;
            }
            let x = acts[x_off + r * in4 + c4];
            var d = vec4<f32>(p.in_scale);
            if (IN_ACTIVATION == 1u) {
                d = select(vec4<f32>(0.0), vec4<f32>(p.in_scale), x > vec4<f32>(0.0));
            } else if (IN_ACTIVATION == 2u) {
                d = (vec4<f32>(1.0) - x * x) * p.in_scale;
            }
            grads_act[dx_off + r * in4 + c4] = acc[i * 2u + h] * d;
        }
    }
}
