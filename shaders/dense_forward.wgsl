// Dense layer forward (GEMM with a fused epilogue) for one or two row segments:
//   Y = act(dropout([X | 1] · [W ; b]))
// The activation (identity, ReLU, tanh) and whether dropout is compiled in are override constants.
//
// The bias is folded into the product: X gets an implicit constant column 1 at index d_in and the
// weights are stored as [W ; b] ((d_in + 1) × d_out, row-major), so the bias gradient later falls out of
// the weight-gradient kernel as its last row.  Segment z (workgroup_id.z) has its own rows, X/Y offsets
// and weights: CoBraR stacks user and item rows in one segment (one shared branch); DeepMF runs its two
// branches as two segments of one dispatch.
//
// Tiling: lib/gemm_tile.wgsl (64×64 output tiles, 8×8 invocations of 8×8 outputs, k-tiles of 16
// staged in workgroup memory as vec4).  d_in and d_out are multiples of 4, so a vec4 never straddles
// the edge of a row.  Every global access is guarded: audited for trusted modules.

//!include lib/activation.wgsl
override DROPOUT: bool = true;  // false: the dropout epilogue is compiled out

struct Params {
    rows0: u32, rows1: u32,         // rows per segment
    x_off0: u32, x_off1: u32,       // X offset of each segment, in vec4 units of `acts`
    y_off0: u32, y_off1: u32,       // Y offset of each segment, in vec4 units of `acts`
    w_off0: u32, w_off1: u32,       // [W ; b] offset of each segment, in vec4 units of `params`
    row_base0: u32, row_base1: u32, // first row's index in the stacked batch (dropout mask key)
    d_in: u32,
    d_out: u32,
    drop_threshold: u32,            // an element is dropped when hash < threshold (0: no dropout)
    drop_scale: f32,                // 1 / (1 - rate) for kept elements
    seed: u32,                      // run seed
    salt: u32,                      // hash of (step, layer): a fresh mask per step and layer
}

@group(0) @binding(0) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> acts: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

// The tile (As[k][m]: the X tile transposed; Bs[k][n]: the W tile) and the dropout hash.
//!include lib/gemm_tile.wgsl
//!include lib/hash.wgsl

// X's vec4 `kv` of row `r` (zero past the rows; the constant bias column at k = d_in).
fn x_vec4(x_off: u32, rows: u32, in4: u32, r: u32, kv: u32) -> vec4<f32> {
    if (r < rows) {
        if (kv < in4) {
            return acts[x_off + r * in4 + kv];
        } else if (kv == in4) {
            return vec4<f32>(1.0, 0.0, 0.0, 0.0);
        }
    }
    return vec4<f32>(0.0);
}

const OUTSIDE: u32 = 0xffffffffu;

// The vec4 index in `acts` of output (row r, vec4 column n4), or OUTSIDE past the segment's edges.
fn y_index(rows: u32, out4: u32, y_off: u32, r: u32, n4: u32) -> u32 {
    if (r >= rows || n4 >= out4) {
        return OUTSIDE;
    }
    return y_off + r * out4 + n4;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let seg = wg.z;
    let rows = select(p.rows0, p.rows1, seg == 1u);
    let x_off = select(p.x_off0, p.x_off1, seg == 1u);
    let y_off = select(p.y_off0, p.y_off1, seg == 1u);
    let w_off = select(p.w_off0, p.w_off1, seg == 1u);
    let row_base = select(p.row_base0, p.row_base1, seg == 1u);
    let m0 = wg.y * BM;
    let n0 = wg.x * BN;
    if (m0 >= rows) {
        return; // uniform per workgroup: the whole tile is past this segment's rows
    }
    let tid = lid.y * 8u + lid.x;
    let k_total = p.d_in + 1u;         // + the constant-1 bias column
    let in4 = p.d_in / 4u;             // vec4 per X row
    let out4 = p.d_out / 4u;           // vec4 per W / Y row

    var acc: Tile;
    tile_clear(&acc);

    // Loader roles: X — a 4×4 block (rows g*4.., k-vec4 kq) per invocation; W — 4 vec4 per invocation.
    let g = tid / 4u;
    let kq = tid % 4u;
    let wn4 = tid % 16u;
    let wk = tid / 16u;

    for (var k0 = 0u; k0 < k_total; k0 += BK) {
        // Stage X (transposed into As).
        let kv = k0 / 4u + kq; // global k-vec4 index
        // Four rows' vec4 at k-vec4 `kv`, transposed into four vec4 of As (unrolled: a dynamically
        // indexed private array costs lavapipe a round trip through memory).
        let b0 = x_vec4(x_off, rows, in4, m0 + g * 4u, kv);
        let b1 = x_vec4(x_off, rows, in4, m0 + g * 4u + 1u, kv);
        let b2 = x_vec4(x_off, rows, in4, m0 + g * 4u + 2u, kv);
        let b3 = x_vec4(x_off, rows, in4, m0 + g * 4u + 3u, kv);
        let a_base = kq * 4u * 16u + g;
        As[a_base] = vec4<f32>(b0.x, b1.x, b2.x, b3.x);
        As[a_base + 16u] = vec4<f32>(b0.y, b1.y, b2.y, b3.y);
        As[a_base + 32u] = vec4<f32>(b0.z, b1.z, b2.z, b3.z);
        As[a_base + 48u] = vec4<f32>(b0.w, b1.w, b2.w, b3.w);
        // Stage W.
        for (var j = 0u; j < 4u; j++) {
            let kk = wk + j * 4u;
            let k = k0 + kk;
            let n4 = n0 / 4u + wn4;
            var v = vec4<f32>(0.0);
            if (k < k_total && n4 < out4) {
                v = params[w_off + k * out4 + n4];
            }
            Bs[kk * 16u + wn4] = v;
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }

    // Epilogue. Store the raw products first, then apply dropout and the activation in a second pass
    // over this invocation's own outputs: hashing while all 16 accumulators are live made lavapipe's
    // compiler spill them (the dropout epilogue cost as much as the GEMM).
    for (var i = 0u; i < TM; i++) {
        for (var h = 0u; h < 2u; h++) {
            let at = y_index(rows, out4, y_off, m0 + lid.y * TM + i, n0 / 4u + lid.x * 2u + h);
            if (at != OUTSIDE) {
                acts[at] = acc[i * 2u + h];
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        let r = m0 + lid.y * TM + i;
        for (var h = 0u; h < 2u; h++) {
            let n4 = n0 / 4u + lid.x * 2u + h;
            let at = y_index(rows, out4, y_off, r, n4);
            if (at == OUTSIDE) {
                continue;
            }
            var z = acts[at];
            if (DROPOUT && p.drop_threshold != 0u) {
                let cols = vec4<u32>(n4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
                let keep = counter_hash4(p.seed, p.salt, row_base + r, cols) >= vec4<u32>(p.drop_threshold);
                z = select(vec4<f32>(0.0), z * p.drop_scale, keep);
            }
            acts[at] = activate(z);
        }
    }
}
