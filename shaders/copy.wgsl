// A plain copy, dst = src, in vec4: the adapter's own memory bandwidth, which `bench` reports as the
// roofline the memory-bound kernels are measured against. Each invocation copies `per_thread`
// consecutive vec4 (lavapipe moves more bytes per invocation than per workgroup lane).

struct Params {
    n4: u32,          // vec4 to copy
    groups_x: u32,    // workgroups along x
    per_thread: u32,  // consecutive vec4 per invocation
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let block = ((wg.x + wg.y * p.groups_x) * 64u) * p.per_thread;
    for (var j = 0u; j < p.per_thread; j++) {
        let i = block + j * 64u + lid.x;
        if (i < p.n4) {
            dst[i] = src[i];
        }
    }
}
