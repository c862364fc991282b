// BPR loss and its gradient per sampled triple (u, i, j), for models scored by the dot product.
//
// For triple b: s = e_u·e_i − e_u·e_j over the scored rows e; its loss is softplus(−s) = −ln σ(s) plus
// the regulariser (λ/2)(‖γ_u‖² + ‖γ_i‖² + ‖γ_j‖²) on the regularised rows γ it uses, so the batch mean
// (`score_loss.sum_loss`) is −mean ln σ(s) + (λ/2)·Σ‖γ‖²/B as SPEC §7 writes it. BPR-MF scores and
// regularises the same rows (its tables, bound twice), and `reg_rows` = 1 adds λγ/B to the gradient
// rows; LightGCN scores the propagated embeddings but regularises layer 0, so `reg_rows` = 0 leaves the
// rows with the score's gradient alone (its regulariser is added after the backward propagation).
// The gradients of the triple's three scored rows are written to their own rows of `grads_act` (one
// user row per triple, two item rows: 2b for i, 2b + 1 for j) — each table's Adam (or the backward
// propagation) then gathers them through the batch's transposed index, in a fixed order:
// deterministic, no atomics.
//
// One invocation per triple; widths are multiples of 4 (vec4 loads).

struct Params {
    n: u32,           // triples in the batch
    d4: u32,          // embedding width / 4
    u_off: u32,       // users of the triples in `batch` (u32 units)
    i_off: u32,       // positives
    j_off: u32,       // negatives
    gu_off: u32,      // gradient row of triple 0's user in `grads_act`, vec4 units
    gi_off: u32,      // gradient row of triple 0's positive item (its negative follows), vec4 units
    groups_x: u32,
    lambda: f32,      // λ of the regulariser
    inv_n: f32,       // 1 / B: the loss is a batch mean
    reg_rows: u32,    // 1: λγ/B joins the gradient rows (the scored rows are the regularised ones)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> users: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> items: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> batch: array<u32>;
@group(0) @binding(3) var<storage, read_write> grads_act: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pair_loss: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read> reg_users: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> reg_items: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = (wg.x + wg.y * p.groups_x) * 64u + lid.x;
    if (b >= p.n) {
        return;
    }
    let u = batch[p.u_off + b] * p.d4;
    let i = batch[p.i_off + b] * p.d4;
    let j = batch[p.j_off + b] * p.d4;
    var s = 0.0;
    var sq = 0.0;
    for (var c = 0u; c < p.d4; c++) {
        let gu = users[u + c];
        s += dot(gu, items[i + c] - items[j + c]);
        let ru = reg_users[u + c];
        let ri = reg_items[i + c];
        let rj = reg_items[j + c];
        sq += dot(ru, ru) + dot(ri, ri) + dot(rj, rj);
    }
    // softplus(−s) and σ(−s), both without overflow.
    let e = exp(-abs(s));
    let softplus = max(-s, 0.0) + log(1.0 + e);
    let sig = select(1.0 / (1.0 + e), e / (1.0 + e), s >= 0.0);
    pair_loss[b] = softplus + 0.5 * p.lambda * sq;
    let a = sig * p.inv_n;
    let r = select(0.0, p.lambda * p.inv_n, p.reg_rows == 1u);
    let ou = p.gu_off + b * p.d4;
    let oi = p.gi_off + 2u * b * p.d4;
    let oj = oi + p.d4;
    for (var c = 0u; c < p.d4; c++) {
        let gu = users[u + c];
        let gi = items[i + c];
        let gj = items[j + c];
        grads_act[ou + c] = -a * (gi - gj) + r * reg_users[u + c];
        grads_act[oi + c] = -a * gu + r * reg_items[i + c];
        grads_act[oj + c] = a * gu + r * reg_items[j + c];
    }
}
