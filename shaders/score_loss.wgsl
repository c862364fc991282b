// Cosine score + μ clamp + binary cross-entropy, and its gradient, gathered per embedding row.
//
// Entry `grad`: one workgroup per row r of the batch's stacked embeddings E (user rows first, then item
// rows). It walks the pairs that use r (a CSR the host builds: deterministic order, no atomics) and
// recomputes each pair's cosine — a dot product of two dL-wide rows is cheap next to everything else —
// so no per-pair gradient vectors are ever stored:
//   cos = e_u·e_i / (max(‖e_u‖, 1e-8) · max(‖e_i‖, 1e-8)),  ŷ = min(max(cos, μ), 1)
//   loss = −[y·max(ln ŷ, −100) + (1−y)·max(ln(1−ŷ), −100)]            (PyTorch BCELoss)
//   ∂loss/∂ŷ = (ŷ − y) / max(ŷ(1−ŷ), 1e-12), passed to cos only where μ ≤ cos ≤ 1
// The batch loss is the mean over its P pairs, so every gradient carries 1/P. dE is written already
// masked by E's ReLU and scaled by the last layer's dropout (the gradient of its pre-activation).
// User rows also write each of their pairs' loss.
//
// Entry `sum_loss`: one workgroup sums the P pair losses in a fixed order into one slot of the loss
// ring that the host reads back every few steps.
//
// The pairwise loss (`pairwise` = 1, `--loss bpr`): the pairs come as triples, pair 2t = (u, i, 1) and
// pair 2t+1 = (u, j, 0) (the bpr sampler's order), and the loss of triple t is
//   L_t = −ln σ(τ(ŷ_2t − ŷ_2t+1)) = softplus(−x),  x = τ(ŷ_2t − ŷ_2t+1),  mean over the T = P/2 triples:
//   ∂L/∂ŷ_2t = −τσ(−x)/T,  ∂L/∂ŷ_2t+1 = +τσ(−x)/T, passed to cos where μ ≤ cos ≤ 1 as above.
// A pair's gradient needs its partner's score, so the cosines come first: `pair_cosines` (one
// workgroup per pair) writes cos of every pair into `pair_loss`; `grad` reads them there (and writes
// no loss); `pair_losses` (one invocation per triple) then turns them into L_t, written to both pairs
// of the triple, so that `sum_loss`'s mean over pairs is the mean over triples.

struct Params {
    n_rows: u32,       // user rows + item rows
    n_users: u32,      // rows below this are users
    n_pairs: u32,
    d4: u32,           // embedding width / 4 (at most 256)
    e_off: u32,        // E in `acts`, vec4 units
    de_off: u32,       // dE in `grads_act`, vec4 units
    pair_user: u32,    // offsets in `batch` (u32 units): local user row of each pair
    pair_item: u32,    //   local item index of each pair (row n_users + index)
    pair_label: u32,   //   label of each pair, f32 bits
    row_ptr: u32,      //   n_rows + 1 offsets into row_pairs
    row_pairs: u32,    //   pair indices grouped by row
    ring_slot: u32,    // loss ring slot written by `sum_loss`
    mu: f32,
    out_scale: f32,    // last layer's dropout scale (1 without dropout)
    groups_x: u32,     // workgroups along x (rows = x + y * groups_x)
    pairwise: u32,     // 0: BCE per pair; 1: the pairwise loss over triples
    tau: f32,          // the pairwise loss's temperature τ
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> acts: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> grads_act: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> batch: array<u32>;
@group(0) @binding(3) var<storage, read_write> pair_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss_ring: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
const MAX_V: u32 = 4u; // vec4 per invocation: up to 4 * 64 * 4 = 1024 columns

//!include lib/reduce.wgsl

var<workgroup> bounds: vec2<u32>;

@compute @workgroup_size(64, 1, 1)
fn grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.x;
    let r = wg.x + wg.y * p.groups_x;
    if (r >= p.n_rows) {
        return; // uniform per workgroup
    }
    let is_user = r < p.n_users;
    // Own row, kept in registers.
    var own: array<vec4<f32>, 4>;
    var g: array<vec4<f32>, 4>;
    var own_sq = 0.0;
    for (var j = 0u; j < MAX_V; j++) {
        let c = tid + j * WG;
        own[j] = vec4<f32>(0.0);
        g[j] = vec4<f32>(0.0);
        if (c < p.d4) {
            own[j] = acts[p.e_off + r * p.d4 + c];
            own_sq += dot(own[j], own[j]);
        }
    }
    if (tid == 0u) {
        bounds = vec2<u32>(batch[p.row_ptr + r], batch[p.row_ptr + r + 1u]);
    }
    let range = workgroupUniformLoad(&bounds);
    let a_norm = sqrt(reduce_sum2(tid, vec2<f32>(own_sq, 0.0)).x);
    let a = max(a_norm, 1e-8);
    let inv_n = 1.0 / f32(p.n_pairs);

    for (var e = range.x; e < range.y; e++) {
        let q = batch[p.row_pairs + e];
        let u = batch[p.pair_user + q];
        let i = p.n_users + batch[p.pair_item + q];
        let o = select(u, i, is_user); // the other row of the pair
        let y = bitcast<f32>(batch[p.pair_label + q]);
        var part = vec2<f32>(0.0);
        for (var j = 0u; j < MAX_V; j++) {
            let c = tid + j * WG;
            if (c < p.d4) {
                let ov = acts[p.e_off + o * p.d4 + c];
                part += vec2<f32>(dot(own[j], ov), dot(ov, ov));
            }
        }
        let s = reduce_sum2(tid, part);
        let b = max(sqrt(s.y), 1e-8);
        let cos = s.x / (a * b);
        var pred = min(max(cos, p.mu), 1.0);
        var dpred = (pred - y) / max(pred * (1.0 - pred), 1e-12) * inv_n;
        var in_range = cos >= p.mu && cos <= 1.0;
        if (p.pairwise == 1u) {
            // The triple's scores from `pair_cosines` (the same for every row that reads them).
            let cq = pair_loss[q];
            let sp = min(max(pair_loss[q & ~1u], p.mu), 1.0);
            let sn = min(max(pair_loss[q | 1u], p.mu), 1.0);
            let sig = 1.0 / (1.0 + exp(p.tau * (sp - sn))); // σ(−x)
            let sign = select(-1.0, 1.0, (q & 1u) == 1u);
            dpred = sign * p.tau * sig * 2.0 * inv_n;
            in_range = cq >= p.mu && cq <= 1.0;
        }
        let dcos = select(0.0, dpred, in_range);
        let coef_other = dcos / (a * b);
        let coef_own = select(0.0, dcos * cos / (a * a), a_norm >= 1e-8);
        for (var j = 0u; j < MAX_V; j++) {
            let c = tid + j * WG;
            if (c < p.d4) {
                let ov = acts[p.e_off + o * p.d4 + c];
                g[j] += coef_other * ov - coef_own * own[j];
            }
        }
        if (is_user && tid == 0u && p.pairwise == 0u) {
            let l = -(y * max(log(pred), -100.0) + (1.0 - y) * max(log(1.0 - pred), -100.0));
            pair_loss[q] = l;
        }
    }
    for (var j = 0u; j < MAX_V; j++) {
        let c = tid + j * WG;
        if (c < p.d4) {
            let mask = select(vec4<f32>(0.0), vec4<f32>(p.out_scale), own[j] > vec4<f32>(0.0));
            grads_act[p.de_off + r * p.d4 + c] = g[j] * mask;
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn sum_loss(@builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.x;
    var s = 0.0;
    for (var q = tid; q < p.n_pairs; q += WG) {
        s += pair_loss[q];
    }
    let total = reduce_sum2(tid, vec2<f32>(s, 0.0)).x;
    if (tid == 0u) {
        loss_ring[p.ring_slot] = total / f32(max(p.n_pairs, 1u));
    }
}

// One workgroup per pair: its cosine (unclamped) into `pair_loss`, for the pairwise loss.
@compute @workgroup_size(64, 1, 1)
fn pair_cosines(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.x;
    let q = wg.x + wg.y * p.groups_x;
    if (q >= p.n_pairs) {
        return; // uniform per workgroup
    }
    let u = batch[p.pair_user + q];
    let i = p.n_users + batch[p.pair_item + q];
    var part = vec2<f32>(0.0);
    var ii = 0.0;
    for (var j = 0u; j < MAX_V; j++) {
        let c = tid + j * WG;
        if (c < p.d4) {
            let a = acts[p.e_off + u * p.d4 + c];
            let b = acts[p.e_off + i * p.d4 + c];
            part += vec2<f32>(dot(a, b), dot(a, a));
            ii += dot(b, b);
        }
    }
    let s = reduce_sum2(tid, part);
    let bb = reduce_sum2(tid, vec2<f32>(ii, 0.0)).x;
    if (tid == 0u) {
        pair_loss[q] = s.x / (max(sqrt(s.y), 1e-8) * max(sqrt(bb), 1e-8));
    }
}

// One invocation per triple t: the cosines of its two pairs in `pair_loss` become its loss
// softplus(−x), x = τ(ŷ_2t − ŷ_2t+1), written to both pairs.
@compute @workgroup_size(64, 1, 1)
fn pair_losses(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.groups_x * WG;
    if (2u * t + 1u >= p.n_pairs) {
        return;
    }
    let sp = min(max(pair_loss[2u * t], p.mu), 1.0);
    let sn = min(max(pair_loss[2u * t + 1u], p.mu), 1.0);
    let x = p.tau * (sp - sn);
    let l = max(-x, 0.0) + log(1.0 + exp(-abs(x)));
    pair_loss[2u * t] = l;
    pair_loss[2u * t + 1u] = l;
}
