// The GEMM tile of the dense kernels (dense_forward, dense_backward_data, dense_backward_weight):
// a 64×64 output tile per workgroup of 8×8 invocations, each owning 8 rows × 8 columns held as
// 16 vec4 (row i, column vec4 h at acc[i * 2 + h]); k-tiles of 16 staged in workgroup memory as vec4
// (vec4 loads, many outputs per invocation and small workgroups were fastest on lavapipe:
// BENCHMARKS.md). Each kernel stages its operands into As[k][m4] (the left operand, transposed: vec4
// over 4 consecutive rows) and Bs[k][n4] (the right one, vec4 over 4 consecutive columns), then
// calls tile_multiply between two barriers.

const BM: u32 = 64u; // output rows per tile
const BN: u32 = 64u; // output columns per tile
const BK: u32 = 16u; // k per staged tile
const TM: u32 = 8u;  // output rows per invocation

var<workgroup> As: array<vec4<f32>, 256>; // BK * BM / 4
var<workgroup> Bs: array<vec4<f32>, 256>; // BK * BN / 4

alias Tile = array<vec4<f32>, 16>; // 8 rows × 2 vec4 (8 columns)

fn tile_clear(acc: ptr<function, Tile>) {
    for (var i = 0u; i < 16u; i++) {
        (*acc)[i] = vec4<f32>(0.0);
    }
}

// acc += the staged k-tile's product for invocation `lid`: rows lid.y * 8 .. + 8, vec4 columns
// lid.x * 2, lid.x * 2 + 1, one fma per element and k in k order.
fn tile_multiply(acc: ptr<function, Tile>, lid: vec3<u32>) {
    for (var kk = 0u; kk < BK; kk++) {
        let a0 = As[kk * 16u + lid.y * 2u];
        let a1 = As[kk * 16u + lid.y * 2u + 1u];
        let b0 = Bs[kk * 16u + lid.x * 2u];
        let b1 = Bs[kk * 16u + lid.x * 2u + 1u];
        for (var i = 0u; i < 4u; i++) {
            (*acc)[i * 2u] = fma(vec4<f32>(a0[i]), b0, (*acc)[i * 2u]);
            (*acc)[i * 2u + 1u] = fma(vec4<f32>(a0[i]), b1, (*acc)[i * 2u + 1u]);
            (*acc)[(i + 4u) * 2u] = fma(vec4<f32>(a1[i]), b0, (*acc)[(i + 4u) * 2u]);
            (*acc)[(i + 4u) * 2u + 1u] = fma(vec4<f32>(a1[i]), b1, (*acc)[(i + 4u) * 2u + 1u]);
        }
    }
}
