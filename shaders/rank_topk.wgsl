// Full ranking with top-k selection: for each user of a tile, score every item, drop the user's
// training items, and keep the k best — only k ids and scores per user ever leave the workgroup.
//
// The score is the model's (override SCORER): 0 — max(cos(e_u, e_i), μ) with
// cos = e_u·e_i / (max(‖e_u‖, 1e-8) · max(‖e_i‖, 1e-8)), the clamped cosine of CoBraR and DeepMF;
// 1 — the dot product e_u·e_i (matrix factorisation, graph models, item priors). Order: score
// descending, then item index ascending (deterministic ties, e.g. every item whose cosine is below μ).
//
// Entry `main`: one workgroup of 128 invocations per user walks the catalogue in blocks of 128 items.
// Each block is skipped unless one of its items beats the current k-th best; otherwise it is
// bitonic-sorted in workgroup memory and merged into the running list (each element's merged position
// is its own index plus its rank in the other list — a permutation, since ties are broken by the unique
// item index). Suits GPUs: many invocations per user.
//
// Entry `serial`: one invocation per user scans the catalogue in order, skipping training items with
// a pointer that walks the user's sorted row, and keeps its top k by insertion in private memory. No
// barriers: suits CPU adapters (lavapipe), where a workgroup barrier is a context switch. Both entries
// compute every score with the same operations in the same order, so they return the same lists;
// `eval::ranking` times both once per device and keeps the faster.

override SCORER: u32 = 0u;

struct Params {
    n_users: u32,     // users in this tile
    user_off: u32,    // first entry of the tile in `users`
    n_items: u32,
    d4: u32,          // embedding width / 4 (at most 256)
    k: u32,           // at most 128
    mu: f32,
    groups_x: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> user_emb: array<vec4<f32>>;  // all users × d
@group(0) @binding(1) var<storage, read> item_emb: array<vec4<f32>>;  // all items × d
@group(0) @binding(2) var<storage, read> train_ptr: array<u32>;
@group(0) @binding(3) var<storage, read> train_idx: array<u32>;
@group(0) @binding(4) var<storage, read> users: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_items: array<u32>;  // tile × k
@group(0) @binding(6) var<storage, read_write> out_scores: array<f32>; // tile × k
@group(0) @binding(7) var<uniform> p: Params;
@group(0) @binding(8) var<storage, read_write> item_norms: array<f32>; // max(‖e_i‖, 1e-8) per item

const WG: u32 = 128u;
const MAX_K: u32 = 128u;
const NONE: u32 = 0xffffffffu;
const NEG_INF: f32 = -3.4028235e38;

var<workgroup> u_vec: array<vec4<f32>, 256>;
var<workgroup> blk_s: array<f32, 128>;
var<workgroup> blk_i: array<u32, 128>;
var<workgroup> top_s: array<f32, 128>;
var<workgroup> top_i: array<u32, 128>;
var<workgroup> new_s: array<f32, 128>;
var<workgroup> new_i: array<u32, 128>;
var<workgroup> red: array<f32, 128>;
var<workgroup> hits: atomic<u32>;

// a ranks before b: higher score, then lower index.
fn better(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

// Number of the first `len` entries of the sorted block that rank before (s, i).
fn rank_in_block(s: f32, i: u32, len: u32) -> u32 {
    var lo = 0u;
    var hi = len;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (better(blk_s[mid], blk_i[mid], s, i)) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

fn rank_in_top(s: f32, i: u32, len: u32) -> u32 {
    var lo = 0u;
    var hi = len;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (better(top_s[mid], top_i[mid], s, i)) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

@compute @workgroup_size(128, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = wg.x + wg.y * p.groups_x;
    if (t >= p.n_users) {
        return;
    }
    let tid = lid.x;
    let u = users[p.user_off + t];
    let k = p.k;

    // The user's embedding, and its norm summed in column order (as `serial` does: both entries give
    // the same scores, hence the same lists).
    for (var c = tid; c < p.d4; c += WG) {
        u_vec[c] = user_emb[u * p.d4 + c];
    }
    workgroupBarrier();
    if (tid == 0u) {
        var sq = 0.0;
        for (var c = 0u; c < p.d4; c++) {
            sq += dot(u_vec[c], u_vec[c]);
        }
        red[0] = sq;
    }
    workgroupBarrier();
    let a = max(sqrt(red[0]), 1e-8);
    top_s[tid] = NEG_INF;
    top_i[tid] = NONE;
    let t_start = train_ptr[u];
    let t_end = train_ptr[u + 1u];
    workgroupBarrier();

    for (var j0 = 0u; j0 < p.n_items; j0 += WG) {
        let j = j0 + tid;
        var s = NEG_INF;
        var idx = NONE;
        if (j < p.n_items) {
            idx = j;
            // Training items are excluded (binary search in the user's sorted training row).
            var lo = t_start;
            var hi = t_end;
            while (lo < hi) {
                let mid = (lo + hi) / 2u;
                if (train_idx[mid] < j) {
                    lo = mid + 1u;
                } else {
                    hi = mid;
                }
            }
            let seen = lo < t_end && train_idx[lo] == j;
            if (!seen) {
                var d = 0.0;
                for (var c = 0u; c < p.d4; c++) {
                    d += dot(u_vec[c], item_emb[j * p.d4 + c]);
                }
                if (SCORER == 1u) {
                    s = d;
                } else {
                    let cos = d / (a * item_norms[j]);
                    s = max(cos, p.mu);
                }
            }
        }
        blk_s[tid] = s;
        blk_i[tid] = idx;
        if (tid == 0u) {
            atomicStore(&hits, 0u);
        }
        workgroupBarrier();
        if (idx != NONE && s > NEG_INF && better(s, idx, top_s[k - 1u], top_i[k - 1u])) {
            atomicAdd(&hits, 1u);
        }
        let any_hit = workgroupUniformLoad(&hits);
        if (any_hit == 0u) {
            continue;
        }
        // Bitonic sort of the block, best first.
        for (var size = 2u; size <= WG; size = size << 1u) {
            for (var stride = size >> 1u; stride > 0u; stride = stride >> 1u) {
                let partner = tid ^ stride;
                if (partner > tid) {
                    let first_better = better(blk_s[tid], blk_i[tid], blk_s[partner], blk_i[partner]);
                    let descending = (tid & size) == 0u;
                    if (first_better != descending) {
                        let ts = blk_s[tid];
                        let ti = blk_i[tid];
                        blk_s[tid] = blk_s[partner];
                        blk_i[tid] = blk_i[partner];
                        blk_s[partner] = ts;
                        blk_i[partner] = ti;
                    }
                }
                workgroupBarrier();
            }
        }
        // Merge the block's best k with the running top k.
        if (tid < k) {
            let pos_top = tid + rank_in_block(top_s[tid], top_i[tid], k);
            if (pos_top < k) {
                new_s[pos_top] = top_s[tid];
                new_i[pos_top] = top_i[tid];
            }
            let pos_blk = tid + rank_in_top(blk_s[tid], blk_i[tid], k);
            if (pos_blk < k) {
                new_s[pos_blk] = blk_s[tid];
                new_i[pos_blk] = blk_i[tid];
            }
        }
        workgroupBarrier();
        if (tid < k) {
            top_s[tid] = new_s[tid];
            top_i[tid] = new_i[tid];
        }
        workgroupBarrier();
    }

    if (tid < k) {
        var item = top_i[tid];
        if (top_s[tid] == NEG_INF) {
            item = NONE; // fewer than k candidates
        }
        out_items[t * k + tid] = item;
        out_scores[t * k + tid] = top_s[tid];
    }
}

@compute @workgroup_size(64, 1, 1)
fn serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = (wg.x + wg.y * p.groups_x) * 64u + lid.x;
    if (t >= p.n_users) {
        return;
    }
    let u = users[p.user_off + t];
    let k = p.k;
    var sq = 0.0;
    for (var c = 0u; c < p.d4; c++) {
        let v = user_emb[u * p.d4 + c];
        sq += dot(v, v);
    }
    let a = max(sqrt(sq), 1e-8);
    var best_s: array<f32, 128>;
    var best_i: array<u32, 128>;
    for (var r = 0u; r < k; r++) {
        best_s[r] = NEG_INF;
        best_i[r] = NONE;
    }
    var e = train_ptr[u];
    let e_end = train_ptr[u + 1u];
    for (var j = 0u; j < p.n_items; j++) {
        if (e < e_end && train_idx[e] == j) {
            e++;
            continue; // a training item
        }
        var d = 0.0;
        for (var c = 0u; c < p.d4; c++) {
            d += dot(user_emb[u * p.d4 + c], item_emb[j * p.d4 + c]);
        }
        var s = d;
        if (SCORER != 1u) {
            let cos = d / (a * item_norms[j]);
            s = max(cos, p.mu);
        }
        if (!better(s, j, best_s[k - 1u], best_i[k - 1u])) {
            continue;
        }
        // Insertion: items come in ascending order, so an equal score goes after the earlier ones.
        var r = k - 1u;
        while (r > 0u && better(s, j, best_s[r - 1u], best_i[r - 1u])) {
            best_s[r] = best_s[r - 1u];
            best_i[r] = best_i[r - 1u];
            r--;
        }
        best_s[r] = s;
        best_i[r] = j;
    }
    for (var r = 0u; r < k; r++) {
        var item = best_i[r];
        if (best_s[r] == NEG_INF) {
            item = NONE;
        }
        out_items[t * k + r] = item;
        out_scores[t * k + r] = best_s[r];
    }
}

// Every item's norm, once per ranking (the scoring entries divide by it): summed in column order.
@compute @workgroup_size(64, 1, 1)
fn norms(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wg.x + wg.y * p.groups_x) * 64u + lid.x;
    if (j >= p.n_items) {
        return;
    }
    var ii = 0.0;
    for (var c = 0u; c < p.d4; c++) {
        let v = item_emb[j * p.d4 + c];
        ii += dot(v, v);
    }
    item_norms[j] = max(sqrt(ii), 1e-8);
}
