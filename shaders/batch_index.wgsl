// The tables' gradient index of one batch, built on the GPU from the resident training CSRs (the
// host then uploads only the batch's ids and pairs). For every row t of W_U (an item): the local rows
// of the batch users that interacted with t; for every row t of W_T (a user): the local indices of the
// batch items t interacted with. Each list is ascending — exactly the index `batch.rs` builds on the
// host — so both strategies gather the same terms in the same order and give the same bits.
//
// `index` holds one exclusive prefix sum over the concatenated rows [W_U rows (M) | W_T rows (N)]:
// offsets index[0 ..= M + N], then the lists from index[M + N + 1]. W_U reads offsets from 0, W_T from
// M; both read lists from M + N + 1.
//
// Entries, one dispatch each: `clear` (maps ← NONE), `scatter` (maps[id] ← local row), `count` (entries
// per table row), `scan` (counts → offsets, one workgroup), `fill` (the lists).

struct Params {
    n_users: u32,       // N: users (W_T rows)
    n_items: u32,       // M: items (W_U rows)
    batch_users: u32,   // unique users of the batch
    batch_items: u32,   // unique items of the batch
    user_ids_off: u32,  // their ids in `batch`
    item_ids_off: u32,
    groups_x: u32,      // workgroups along x (index = (x + y * groups_x) * 64 + local)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> users_of_items_ptr: array<u32>;
@group(0) @binding(2) var<storage, read> users_of_items: array<u32>;
@group(0) @binding(3) var<storage, read> items_of_users_ptr: array<u32>;
@group(0) @binding(4) var<storage, read> items_of_users: array<u32>;
@group(0) @binding(5) var<storage, read_write> maps: array<u32>;   // [user → local (N) | item → local (M)]
@group(0) @binding(6) var<storage, read_write> index: array<u32>;
@group(0) @binding(7) var<uniform> p: Params;

const NONE: u32 = 0xffffffffu;
const SCAN_WG: u32 = 256u;

fn linear(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.x + wg.y * p.groups_x) * 64u + lid.x;
}

@compute @workgroup_size(64, 1, 1)
fn clear(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = linear(wg, lid);
    if (k < p.n_users + p.n_items) {
        maps[k] = NONE;
    }
}

@compute @workgroup_size(64, 1, 1)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = linear(wg, lid);
    if (k < p.batch_users) {
        maps[batch[p.user_ids_off + k]] = k;
    } else if (k < p.batch_users + p.batch_items) {
        let j = k - p.batch_users;
        maps[p.n_users + batch[p.item_ids_off + j]] = j;
    }
}

// Table row r of the concatenation: its training row (users of an item, or items of a user) and the
// map that turns a member of the batch into its local row.
fn row_range(r: u32) -> vec2<u32> {
    if (r < p.n_items) {
        return vec2<u32>(users_of_items_ptr[r], users_of_items_ptr[r + 1u]);
    }
    let t = r - p.n_items;
    return vec2<u32>(items_of_users_ptr[t], items_of_users_ptr[t + 1u]);
}

fn local_of(r: u32, e: u32) -> u32 {
    if (r < p.n_items) {
        return maps[users_of_items[e]];
    }
    return maps[p.n_users + items_of_users[e]];
}

@compute @workgroup_size(64, 1, 1)
fn count(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = linear(wg, lid);
    if (r >= p.n_items + p.n_users) {
        return;
    }
    let range = row_range(r);
    var n = 0u;
    for (var e = range.x; e < range.y; e++) {
        if (local_of(r, e) != NONE) {
            n += 1u;
        }
    }
    index[r] = n;
}

var<workgroup> partial: array<u32, 256>;

// Counts index[0 .. L) → exclusive offsets index[0 ..= L], L = M + N: each invocation sums a contiguous
// run, the runs' totals are scanned in workgroup memory, then each run is rewritten as offsets.
@compute @workgroup_size(256, 1, 1)
fn scan(@builtin(local_invocation_id) lid: vec3<u32>) {
    let total_len = p.n_items + p.n_users;
    let run = (total_len + SCAN_WG - 1u) / SCAN_WG;
    let lo = min(lid.x * run, total_len);
    let hi = min(lo + run, total_len);
    var s = 0u;
    for (var k = lo; k < hi; k++) {
        s += index[k];
    }
    partial[lid.x] = s;
    workgroupBarrier();
    // Inclusive Hillis–Steele scan of the 256 run totals.
    for (var d = 1u; d < SCAN_WG; d = d << 1u) {
        var v = partial[lid.x];
        if (lid.x >= d) {
            v += partial[lid.x - d];
        }
        workgroupBarrier();
        partial[lid.x] = v;
        workgroupBarrier();
    }
    var acc = partial[lid.x] - s; // exclusive start of this run
    for (var k = lo; k < hi; k++) {
        let c = index[k];
        index[k] = acc;
        acc += c;
    }
    if (lid.x == SCAN_WG - 1u) {
        index[total_len] = partial[SCAN_WG - 1u];
    }
}

@compute @workgroup_size(64, 1, 1)
fn fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = linear(wg, lid);
    let total_len = p.n_items + p.n_users;
    if (r >= total_len) {
        return;
    }
    let range = row_range(r);
    var at = total_len + 1u + index[r];
    for (var e = range.x; e < range.y; e++) {
        let k = local_of(r, e);
        if (k != NONE) {
            index[at] = k;
            at += 1u;
        }
    }
}
