// Column sums of up to two row blocks: out_z = Σ_{r < rows_z} in[off_z + r, :] for z = 0, 1. Used for the
// bias gradients of the sparse projections (d b_U = Σ over the user rows of dh, d b_T over the item
// rows, dh already masked by the projection's activation). Each invocation owns one vec4 column and
// sums its rows in order (deterministic).

struct Params {
    rows0: u32, rows1: u32,
    dh_off0: u32, dh_off1: u32,   // first row of each block in `grads_act`, vec4 units
    g_off0: u32, g_off1: u32,     // the sums of each block in `grads`, vec4 units
    d4: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> grads_act: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.d4) {
        return;
    }
    let seg = gid.z;
    let rows = select(p.rows0, p.rows1, seg == 1u);
    let dh_off = select(p.dh_off0, p.dh_off1, seg == 1u);
    let g_off = select(p.g_off0, p.g_off1, seg == 1u);
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < rows; r++) {
        s += grads_act[dh_off + r * p.d4 + c];
    }
    grads[g_off + c] = s;
}
