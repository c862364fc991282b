// A strided copy into rows: for r < rows, k < width,
//   dst[dst_off + r·width + k] = src[src_off + r·row_stride + k·col_stride]   (k < n)
//                              = tail                                        (k = n)
//                              = 0                                           (k > n)
// MultVAE's embeddings: a user's is its decoder hidden row with a trailing 1, an item's is its column of
// the output layer's [W ; b] (stride M4), so the dot product of the two is the user's logit for the item.

struct Params {
    rows: u32,
    width: u32,
    n: u32,
    src_off: u32,
    row_stride: u32,
    col_stride: u32,
    dst_off: u32,
    groups_x: u32,
    tail: f32,
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = (wg.x + wg.y * p.groups_x) * 64u + lid.x;
    let r = g / p.width;
    if (r >= p.rows) {
        return;
    }
    let k = g - r * p.width;
    var v = 0.0;
    if (k < p.n) {
        v = src[p.src_off + r * p.row_stride + k * p.col_stride];
    } else if (k == p.n) {
        v = p.tail;
    }
    dst[p.dst_off + g] = v;
}
