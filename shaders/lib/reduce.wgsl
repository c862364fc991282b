// Workgroup tree reductions over 64 invocations (every invocation calls them, in uniform control
// flow): halving strides, so the order of the operations is fixed (deterministic). Sums of vec2 sum
// each component on its own; the scalar forms are the x component of the same tree.

const REDUCE_WG: u32 = 64u;

var<workgroup> red: array<vec2<f32>, 64>;

// The sum (or with `take_max`, the maximum) of `v` over the workgroup, returned to every invocation.
fn reduce_tree(tid: u32, v: vec2<f32>, take_max: bool) -> vec2<f32> {
    red[tid] = v;
    workgroupBarrier();
    for (var s = REDUCE_WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            let a = red[tid];
            let b = red[tid + s];
            red[tid] = select(a + b, max(a, b), take_max);
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

fn reduce_sum2(tid: u32, v: vec2<f32>) -> vec2<f32> {
    return reduce_tree(tid, v, false);
}

fn reduce_sum(tid: u32, v: f32) -> f32 {
    return reduce_tree(tid, vec2<f32>(v, 0.0), false).x;
}

fn reduce_max(tid: u32, v: f32) -> f32 {
    return reduce_tree(tid, vec2<f32>(v, 0.0), true).x;
}
