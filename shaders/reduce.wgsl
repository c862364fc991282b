// Reductions over f32 buffers. Entry `count_nonfinite` counts the elements that are NaN or ±∞ — their
// exponent bits are all ones; compared as bits, since WGSL lets compilers assume floats are finite —
// and adds the count to slot `slot` of `counts`: the divergence check of the parameters, run on the GPU
// at every validation so no weights need to come back to the host. Integer counts are exact whatever
// the order of the atomic additions.

struct Params {
    n4: u32,        // vec4 elements of this buffer (chunk)
    groups_x: u32,  // workgroups along x (index = (x + y * groups_x) * 64 + local)
    slot: u32,      // which count to add to
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 64u;
const EXPONENT: u32 = 0x7f800000u;

var<workgroup> red: array<u32, 64>;

@compute @workgroup_size(64, 1, 1)
fn count_nonfinite(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wg.x + wg.y * p.groups_x) * WG + lid.x;
    var n = 0u;
    if (i < p.n4) {
        let e = bitcast<vec4<u32>>(data[i]) & vec4<u32>(EXPONENT);
        // A bool vector converted, not `select` on integer vectors: GLSL 4.30 has no integer `mix`.
        n = dot(vec4<u32>(e == vec4<u32>(EXPONENT)), vec4<u32>(1u));
    }
    red[lid.x] = n;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid.x < s) {
            red[lid.x] = red[lid.x] + red[lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u && red[0] > 0u) {
        atomicAdd(&counts[p.slot], red[0]);
    }
}
