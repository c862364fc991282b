//! The tables' gradient index of a batch built on the GPU (`shaders/batch_index.wgsl`) from the
//! resident training CSRs and a batch-membership map — the same lists `batch.rs` builds on the host,
//! so the host uploads only ids and pairs. Five entries, with their CPU twins.

use super::{Real, u32_of};
use crate::gpu::grid::Grid;
use crate::gpu::plan::Cost;
use crate::gpu::shaders;
use crate::gpu::twin::CpuCall;

/// Marks an id that is not in the batch.
pub const NONE: u32 = u32::MAX;

crate::param_block! {
    pub struct Params {
        pub n_users: u32, pub n_items: u32, pub batch_users: u32, pub batch_items: u32,
        pub user_ids_off: u32, pub item_ids_off: u32, pub groups_x: u32, pub _pad: u32,
    }
}

// Bindings of `clear`: maps. Of `scatter`: batch, maps. Of `count` and `fill`: the CSR of users by item
// (offsets, indices), of items by user (offsets, indices), maps, index. Of `scan`: index.
crate::kernel_def! { pub CLEAR = "batch_index.clear", shaders::BATCH_INDEX, "clear", Params, clear_twin }
crate::kernel_def! { pub SCATTER = "batch_index.scatter", shaders::BATCH_INDEX, "scatter", Params, scatter_twin }
crate::kernel_def! { pub COUNT = "batch_index.count", shaders::BATCH_INDEX, "count", Params, count_twin }
crate::kernel_def! { pub SCAN = "batch_index.scan", shaders::BATCH_INDEX, "scan", Params, scan_twin }
crate::kernel_def! { pub FILL = "batch_index.fill", shaders::BATCH_INDEX, "fill", Params, fill_twin }

/// Offsets of the index in its buffer: W_U's offsets start at 0, W_T's at M, the lists at M + N + 1.
pub fn layout(n_users: usize, n_items: usize) -> (usize, usize, usize) {
    (0, n_items, n_users + n_items + 1)
}

/// Words of the index buffer for a training split with `nnz` interactions (every list at its longest).
pub fn index_len(n_users: usize, n_items: usize, nnz: usize) -> usize {
    n_users + n_items + 1 + 2 * nnz
}

/// The block and the grids of the five launches: (params, [clear, scatter, count/fill, scan]).
pub fn params(
    n_users: usize,
    n_items: usize,
    batch: (usize, usize),
    ids_off: (usize, usize),
    max_per_dim: u32,
) -> (Params, [[u32; 3]; 4]) {
    let rows = Grid::cover(n_users + n_items, 64, max_per_dim);
    let ids = Grid::cover(batch.0 + batch.1, 64, max_per_dim);
    // One block for all launches: groups_x must suit each grid, so every grid uses the same x extent.
    let gx = rows.groups_x.max(ids.groups_x);
    let fit = |n_groups: usize| {
        let y = n_groups.div_ceil(gx as usize).max(1) as u32;
        [gx.min(n_groups as u32).max(1), y, 1]
    };
    let (rows_n, ids_n) = (
        (n_users + n_items).div_ceil(64),
        (batch.0 + batch.1).div_ceil(64),
    );
    let p = Params {
        n_users: u32_of(n_users),
        n_items: u32_of(n_items),
        batch_users: u32_of(batch.0),
        batch_items: u32_of(batch.1),
        user_ids_off: u32_of(ids_off.0),
        item_ids_off: u32_of(ids_off.1),
        groups_x: gx,
        _pad: 0,
    };
    let ids_grid = if ids_n == 0 { [0, 1, 1] } else { fit(ids_n) };
    (p, [fit(rows_n), ids_grid, fit(rows_n), [1, 1, 1]])
}

/// Bytes of the five launches over a training split with `nnz` interactions (`count` and `fill` each
/// scan both CSRs and look every entry up in the maps).
pub fn cost(p: &Params, nnz: u64) -> [Cost; 5] {
    let rows = (p.n_users + p.n_items) as u64;
    let ids = (p.batch_users + p.batch_items) as u64;
    let scan_both = 4 * (2 * rows + 2 * nnz + 2 * nnz);
    [
        Cost {
            bytes: 4 * rows,
            flops: 0,
        },
        Cost {
            bytes: 8 * ids,
            flops: 0,
        },
        Cost {
            bytes: scan_both + 4 * rows,
            flops: 0,
        },
        Cost {
            bytes: 8 * rows,
            flops: rows,
        },
        Cost {
            bytes: scan_both + 4 * rows,
            flops: 0,
        },
    ]
}
fn clear_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = (p.n_users + p.n_items) as usize;
    c.u_mut("maps")[..n].fill(NONE);
}

fn scatter_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let batch = c.u("batch").to_vec();
    let maps = c.u_mut("maps");
    for k in 0..p.batch_users as usize {
        maps[batch[p.user_ids_off as usize + k] as usize] = k as u32;
    }
    for j in 0..p.batch_items as usize {
        maps[(p.n_users + batch[p.item_ids_off as usize + j]) as usize] = j as u32;
    }
}

/// The local rows of table row `r` (W_U rows first, then W_T rows), in CSR order.
fn lists(c: &CpuCall<'_, impl Real>, p: &Params) -> Vec<Vec<u32>> {
    let (uptr, uidx, iptr, iidx, maps) = (
        c.u("users_of_items_ptr"),
        c.u("users_of_items"),
        c.u("items_of_users_ptr"),
        c.u("items_of_users"),
        c.u("maps"),
    );
    let n_items = p.n_items as usize;
    (0..n_items + p.n_users as usize)
        .map(|r| {
            let (range, members, base) = if r < n_items {
                (uptr[r] as usize..uptr[r + 1] as usize, uidx, 0)
            } else {
                let t = r - n_items;
                (iptr[t] as usize..iptr[t + 1] as usize, iidx, p.n_users)
            };
            members[range]
                .iter()
                .map(|&m| maps[(base + m) as usize])
                .filter(|&k| k != NONE)
                .collect()
        })
        .collect()
}

fn count_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let counts: Vec<u32> = lists(c, &p).iter().map(|l| l.len() as u32).collect();
    c.u_mut("index")[..counts.len()].copy_from_slice(&counts);
}

fn scan_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let n = (p.n_users + p.n_items) as usize;
    let index = c.u_mut("index");
    let mut acc = 0u32;
    for v in index[..n].iter_mut() {
        let count = *v;
        *v = acc;
        acc += count;
    }
    index[n] = acc;
}

fn fill_twin<T: Real>(c: &mut CpuCall<'_, T>) {
    let p: Params = c.params();
    let lists = lists(c, &p);
    let n = lists.len();
    let index = c.u_mut("index");
    for (r, l) in lists.iter().enumerate() {
        let at = n + 1 + index[r] as usize;
        index[at..at + l.len()].copy_from_slice(l);
    }
}
