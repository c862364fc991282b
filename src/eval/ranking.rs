//! Full ranking (`shaders/rank_topk.wgsl`) over any model's embeddings, as plans on either executor:
//! every item scored for each evaluated user with the model's scorer, the exclusion CSR's items (the
//! user's training items) dropped, and the top k kept with deterministic ties. Each tile of users is one
//! plan over the session's `rank.*` buffers (the item norms first, then the tile's top-k dispatch, then
//! reads of its k ids and scores per user); only those come back, through the executor's read-backs —
//! on the GPU the non-blocking ring, so memory is bounded by one tile and the host never waits for the
//! queue between tiles. The CPU executor runs the same plans through the kernels' CPU twins. The
//! scorers, the kernels, the buffers and the twin are in `kernels::rank_topk`.

use std::ops::Range;

use anyhow::{Context, ensure};

use crate::gpu::executor::Executor;
use crate::gpu::grid::Grid;
use crate::gpu::memory::{BufId, Elem};
use crate::gpu::plan::PlanBuilder;
pub use crate::kernels::rank_topk::{
    MAX_K, NO_ITEM, Params, RankVariant, Scorer, TILE_USERS, TopK, buffer_specs, rank_cpu,
};
use crate::kernels::rank_topk::{RANK_NORMS, buffers};
use crate::kernels::u32_of;

/// What the ranking reads: every user's and item's embedding (buffers bound whole), the scorer, and
/// the items to exclude per user (a CSR by user, usually the training interactions).
#[derive(Debug, Clone, Copy)]
pub struct Embeddings {
    pub users: BufId,
    pub items: BufId,
    pub n_users: usize,
    pub n_items: usize,
    pub dim: usize,
    pub scorer: Scorer,
    pub exclude_ptr: BufId,
    pub exclude_idx: BufId,
}

/// Top `k` items for each of `users` under `emb`, with the ranking variant measured fastest on this
/// executor's device (both give the same lists). The first call on a device times both variants on a
/// sample of `users` (each compiled and run once first) and remembers the faster.
pub fn rank<E: Executor>(
    exec: &mut E,
    emb: &Embeddings,
    users: &[u32],
    k: usize,
) -> anyhow::Result<TopK> {
    // The serial variant gave wrong lists for embeddings of several hundred floats on lavapipe
    // (MultVAE's 604, at k = 128 in the tests); it is used only as wide as it has been checked.
    if emb.dim > SERIAL_MAX_DIM {
        return rank_with(exec, emb, users, k, RankVariant::Workgroup);
    }
    let variant = match exec.choice(CHOICE) {
        Some(v) => variant_of(v),
        None => {
            let sample = &users[..users.len().min(256)];
            let mut best = (f64::INFINITY, RankVariant::Workgroup);
            for v in [RankVariant::Workgroup, RankVariant::Serial] {
                rank_with(exec, emb, sample, k, v)?;
                let t = std::time::Instant::now();
                rank_with(exec, emb, sample, k, v)?;
                let s = t.elapsed().as_secs_f64();
                if s < best.0 {
                    best = (s, v);
                }
            }
            exec.set_choice(CHOICE, best.1 as u32);
            best.1
        }
    };
    rank_with(exec, emb, users, k, variant)
}

/// The tags of the ranking's reads (apart from the loss reads, tagged by step).
const TAGS: Range<u64> = 1 << 62..u64::MAX;

/// Top `k` items for each of `users` under `emb` with `variant`.
pub fn rank_with<E: Executor>(
    exec: &mut E,
    emb: &Embeddings,
    users: &[u32],
    k: usize,
    variant: RankVariant,
) -> anyhow::Result<TopK> {
    ensure!(
        (1..=MAX_K).contains(&k),
        "k must be between 1 and {MAX_K}, got {k}"
    );
    ensure!(
        emb.dim.is_multiple_of(4),
        "embedding width must be a multiple of 4"
    );
    let mut top = TopK {
        users: users.to_vec(),
        k,
        items: Vec::with_capacity(users.len() * k),
        scores: Vec::with_capacity(users.len() * k),
    };
    if users.is_empty() {
        return Ok(top);
    }
    let layout = exec.layout();
    let id = |name: &str| {
        layout
            .try_id(name)
            .with_context(|| format!("this session has no ranking buffer {name}"))
    };
    let (users_id, items_id, scores_id, norms_id) = (
        id(buffers::USERS)?,
        id(buffers::TOP_ITEMS)?,
        id(buffers::TOP_SCORES)?,
        id(buffers::ITEM_NORMS)?,
    );
    let tile = TILE_USERS.min(users.len());
    ensure!(
        users.len() <= layout.spec(users_id).len()
            && tile * k <= layout.spec(items_id).len()
            && emb.n_items <= layout.spec(norms_id).len(),
        "{} users × {} items exceed the session's ranking buffers",
        users.len(),
        emb.n_items
    );
    for b in [emb.users, emb.items] {
        ensure!(
            layout.chunks(b) == 1 && layout.spec(b).elem == Elem::F32,
            "the ranking binds {} whole",
            layout.spec(b).name
        );
    }
    let max_dim = exec.max_per_dim();
    let kernel = emb.scorer.def(variant);
    let tiles: Vec<usize> = (0..users.len()).step_by(TILE_USERS).collect();
    let first = TAGS.start;
    let mut results: Vec<(u64, Vec<u32>)> = Vec::with_capacity(2 * tiles.len());
    for (t, &start) in tiles.iter().enumerate() {
        let n = tile.min(users.len() - start);
        let mut pb = PlanBuilder::new(exec.layout(), max_dim);
        if t == 0 {
            // The users and the item norms once, before the first tile.
            pb.upload(users_id, 0, users);
            let grid = Grid::cover(emb.n_items, 64, max_dim);
            let p = Params {
                n_items: u32_of(emb.n_items),
                d4: u32_of(emb.dim / 4),
                groups_x: grid.groups_x,
                ..Params::default()
            };
            pb.dispatch(
                &RANK_NORMS,
                &[emb.items.into(), norms_id.into()],
                &p,
                grid.workgroups,
            );
        }
        let grid = Grid::cover(n, variant.users_per_workgroup(), max_dim);
        let p = Params {
            n_users: u32_of(n),
            user_off: u32_of(start),
            n_items: u32_of(emb.n_items),
            d4: u32_of(emb.dim / 4),
            k: u32_of(k),
            mu: emb.scorer.mu(),
            groups_x: grid.groups_x,
            _pad: 0,
        };
        let binds = [
            emb.users,
            emb.items,
            emb.exclude_ptr,
            emb.exclude_idx,
            users_id,
            items_id,
            scores_id,
            norms_id,
        ]
        .map(Into::into);
        pb.dispatch(kernel, &binds, &p, grid.workgroups);
        let tag = first + 2 * t as u64;
        pb.read(items_id, 0, n * k, tag);
        pb.read(scores_id, 0, n * k, tag + 1);
        let plan = pb.finish();
        exec.run(&plan)?;
        results.extend(exec.take_reads(TAGS)?);
    }
    let last = first + 2 * tiles.len() as u64 - 1;
    exec.wait_read(last)?;
    results.extend(exec.take_reads(TAGS)?);
    results.sort_by_key(|r| r.0);
    ensure!(
        results.len() == 2 * tiles.len()
            && results
                .iter()
                .enumerate()
                .all(|(i, r)| r.0 == first + i as u64),
        "ranking read-backs incomplete"
    );
    for pair in results.chunks(2) {
        top.items.extend(&pair[0].1);
        top.scores
            .extend(pair[1].1.iter().map(|&w| f32::from_bits(w)));
    }
    Ok(top)
}

/// The device choice's name and its values.
const CHOICE: &str = "rank_topk.variant";

/// The widest embeddings the serial ranking variant is used for.
pub const SERIAL_MAX_DIM: usize = 128;

fn variant_of(v: u32) -> RankVariant {
    if v == RankVariant::Serial as u32 {
        RankVariant::Serial
    } else {
        RankVariant::Workgroup
    }
}
