//! Full ranking + top-k: the same ranking plans on the GPU and on the CPU executor (the kernels' CPU
//! twins), compared, in both ranking variants, over a model's embeddings from inference sessions
//! (clamped-cosine scorer, and DeepMF's) and over raw embeddings with the dot scorer at the widths the
//! models use (up to MultVAE's 604 and beyond). Both executors rank the same embeddings (the GPU
//! session's, written into the CPU one), and their output buffers are poisoned first, so a kernel that
//! writes nothing is caught. Several k, including lists shorter than k because a user has interacted
//! with most of the catalogue, and the empty exclusion CSR (`recommend --include-train`: every item
//! ranked); exact ties broken by item index. Tolerance: GPU scores within
//! 2e-6·max(|score|, 1)·max(dim/64, 1) of the f64 scores; a different item at a position is accepted
//! only when the two candidates' f64 scores are within that tolerance (f32 rounding may swap
//! near-ties).

use rand::RngExt;

use super::harness::{Harness, Rng};
use super::verdict::Verdict;
use crate::data::Csr;
use crate::eval::ranking::{self, Embeddings, NO_ITEM, RankVariant, Scorer, TopK};
use crate::gpu::cpu::CpuExec;
use crate::gpu::exec::GpuExec;
use crate::gpu::executor::Executor;
use crate::gpu::memory::{BufferSpec, MemoryLayout, Role};
use crate::gpu::twin::Real;
use crate::kernels::rank_topk::buffers as rank_buffers;
use crate::models::session::{cpu_session, gpu_session};
use crate::models::{Mode, Model, STUDY_PAIR, Side, Weights, buffers};

type Result = anyhow::Result<()>;

/// 90 users × 300 items; items 10 and 11 have the same users (identical embeddings: exact ties), item
/// 12 none, user 3 most of the catalogue.
pub fn catalogue(rng: &mut Rng) -> (Csr, Csr) {
    let (n, m) = (90, 300);
    let mut rows: Vec<Vec<u32>> = (0..n)
        .map(|u| {
            let len = if u == 3 { 285 } else { rng.random_range(1..30) };
            let mut r: Vec<u32> = rand::seq::index::sample(rng, m, len)
                .into_iter()
                .map(|v| v as u32)
                .collect();
            r.sort_unstable();
            r
        })
        .collect();
    for r in rows.iter_mut() {
        r.retain(|&i| i != 11 && i != 12);
        if r.contains(&10) {
            r.push(11);
            r.sort_unstable();
        }
    }
    let by_user = Csr::from_rows(&rows);
    let by_item = by_user.transpose(m);
    (by_user, by_item)
}

/// Overwrites the ranking's output buffers with what no ranking writes (out-of-range items, NaN scores),
/// so lists a kernel did not write cannot pass for an earlier ranking's.
pub fn poison_outputs<E: Executor>(exec: &mut E) -> Result {
    let items = exec.layout().id(rank_buffers::TOP_ITEMS);
    let scores = exec.layout().id(rank_buffers::TOP_SCORES);
    let n = exec.layout().spec(items).len();
    exec.write_u32(items, &vec![NO_ITEM - 1; n])?;
    let n = exec.layout().spec(scores).len();
    exec.write(scores, &vec![E::Real::from_f64(f64::NAN); n])
}

/// Ranks `users` with `variant` on the GPU and on the CPU executor, both poisoned first: (GPU, CPU).
fn rank_both(
    gpu: &mut GpuExec,
    cpu: &mut CpuExec<f32>,
    emb: &Embeddings,
    users: &[u32],
    k: usize,
    variant: RankVariant,
) -> anyhow::Result<(TopK, TopK)> {
    poison_outputs(gpu)?;
    poison_outputs(cpu)?;
    let got = ranking::rank_with(gpu, emb, users, k, variant)?;
    let want = ranking::rank_with(cpu, emb, users, k, variant)?;
    Ok((got, want))
}

/// Checks the GPU's lists `got` against the CPU executor's `want` (f64 scores of `ue` and `ie`, rounded
/// to f32) over the same embeddings.
#[allow(clippy::too_many_arguments)]
pub fn check_lists(
    v: &mut Verdict,
    what: &str,
    got: &TopK,
    want: &TopK,
    ue: &[f32],
    ie: &[f32],
    dim: usize,
    exclude: &Csr,
    scorer: Scorer,
    k: usize,
) {
    let users = &got.users;
    if want.users != *users || want.k != k || want.items.len() != users.len() * k {
        v.fail(format!(
            "{what}: the CPU executor ranked other users or another k"
        ));
        return;
    }
    // The score error closest to (or furthest beyond) its tolerance: (error, tolerance).
    let mut worst: Option<(f64, f64)> = None;
    let mut failures = Vec::new();
    for (row, &u) in users.iter().enumerate() {
        let g = &got.items[row * k..(row + 1) * k];
        let w = &want.items[row * k..(row + 1) * k];
        let ue_u = &ue[u as usize * dim..(u as usize + 1) * dim];
        let s = |i: u32| scorer.score(ue_u, &ie[i as usize * dim..(i as usize + 1) * dim]);
        for r in 0..k {
            if w[r] == NO_ITEM {
                if g[r] != NO_ITEM {
                    failures.push(format!("user {u} k {k}: position {r} should be empty"));
                }
                continue;
            }
            if g[r] == NO_ITEM || g[r] as usize >= ie.len() / dim {
                failures.push(format!(
                    "user {u} k {k}: position {r} is empty or out of range on the GPU ({})",
                    g[r]
                ));
                continue;
            }
            if exclude.contains(u as usize, g[r]) {
                failures.push(format!("user {u}: excluded item {} ranked", g[r]));
            }
            let gs = got.scores[row * k + r] as f64;
            // f32 sums of `dim` products: the error grows with the width.
            let tol = 2e-6 * s(g[r]).abs().max(1.0) * (dim as f64 / 64.0).max(1.0);
            let e = (gs - s(g[r])).abs();
            if worst.is_none_or(|(we, wt)| e.is_nan() || e / tol > we / wt) {
                worst = Some((e, tol));
            }
            if e.is_nan() || e >= tol {
                failures.push(format!(
                    "user {u}: score of item {} {gs} vs {}",
                    g[r],
                    s(g[r])
                ));
            }
            if g[r] != w[r] && (s(g[r]) - s(w[r])).abs() >= tol {
                failures.push(format!(
                    "user {u} k {k} position {r}: gpu item {} ({}) vs cpu item {} ({})",
                    g[r],
                    s(g[r]),
                    w[r],
                    s(w[r])
                ));
            }
        }
        // Exact ties keep the lower index first.
        if let (Some(a), Some(b)) = (
            g.iter().position(|&i| i == 10),
            g.iter().position(|&i| i == 11),
        ) && a > b
        {
            failures.push(format!(
                "user {u}: tie between items 10 and 11 not broken by index"
            ));
        }
    }
    // Recorded as one comparison: the worst score error against its tolerance, and the first failures.
    let mut one = Verdict::default();
    let (e, tol) = worst.unwrap_or((0.0, 0.0));
    one.close_scaled(what, &[e as f32], &[0.0], &[tol as f32], 0.0, 1.0);
    if failures.is_empty() {
        v.merge(one);
    } else {
        v.fail(format!(
            "{what}: {}",
            failures.into_iter().take(3).collect::<Vec<_>>().join("; ")
        ));
    }
}

/// Both variants over CoBraR's and DeepMF's session embeddings (clamped cosine): one inference session
/// on the GPU, one on the CPU executor holding the GPU's embeddings.
pub fn session_embeddings(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (by_user, by_item) = catalogue(rng);
    for (kind, arch) in STUDY_PAIR.into_iter().zip(["32,16", "16,12,8"]) {
        let mdl = || super::models::two_tower(kind, arch, 0.0, &by_user, &by_item, 40);
        let w = Weights::init(mdl().params(), rng.random_range(0..1000));
        let mut s = gpu_session(h.ctx.clone(), mdl(), Mode::Infer, &w, None)?;
        let mut c = cpu_session(mdl(), Mode::Infer, &w, h.ctx.max_binding(), None)?;
        s.embed_all()?;
        let ue = s.read_embeddings(Side::Users)?;
        let ie = s.read_embeddings(Side::Items)?;
        let l = c.exec.layout();
        anyhow::ensure!(
            l.specs() == s.exec.layout().specs(),
            "the sessions' layouts differ"
        );
        let (cu, ci) = (
            l.id(buffers::USER_EMBEDDINGS),
            l.id(buffers::ITEM_EMBEDDINGS),
        );
        c.exec.write(cu, &ue)?;
        c.exec.write(ci, &ie)?;
        let dim = s.model.dim();
        v.identical(
            "tied items' embeddings",
            &ie[10 * dim..11 * dim],
            &ie[11 * dim..12 * dim],
        );
        let users: Vec<u32> = (0..90u32).rev().step_by(2).chain([3]).collect();
        let ks: &[usize] = if h.quick {
            &[5, 128]
        } else {
            &[1, 5, 20, 100, 128]
        };
        let emb = s.embeddings();
        for &k in ks {
            for variant in [RankVariant::Workgroup, RankVariant::Serial] {
                let (got, want) = rank_both(&mut s.exec, &mut c.exec, &emb, &users, k, variant)?;
                let what = format!("{kind} top-{k} {variant:?}");
                let scorer = s.model.scorer();
                check_lists(v, &what, &got, &want, &ue, &ie, dim, &by_user, scorer, k);
                // User 3 has 285 training items: fewer than 100 candidates remain.
                if k >= 100 {
                    let short = got.list(users.len() - 1).len();
                    v.ensure(short < k, || {
                        format!("{what}: user 3 should have a short list")
                    });
                }
            }
        }
        // The empty exclusion CSR (`recommend --include-train`): every item is a candidate, so user
        // 3's list is full and training items are ranked.
        let every = s.embeddings_including_train();
        let none = Csr::empty(by_user.n_rows());
        let k = ranking::MAX_K;
        for variant in [RankVariant::Workgroup, RankVariant::Serial] {
            let (got, want) = rank_both(&mut s.exec, &mut c.exec, &every, &users, k, variant)?;
            let what = format!("{kind} top-{k} {variant:?} training items included");
            let scorer = s.model.scorer();
            check_lists(v, &what, &got, &want, &ue, &ie, dim, &none, scorer, k);
            let full = got.list(users.len() - 1).len();
            v.ensure(full == k, || {
                format!("{what}: user 3 has {full} items, not {k}")
            });
            let trained = users.iter().enumerate().any(|(row, &u)| {
                got.list(row)
                    .iter()
                    .any(|&i| by_user.contains(u as usize, i))
            });
            v.ensure(trained, || format!("{what}: no training item ranked"));
        }
    }
    Ok(())
}

/// The dot scorer over raw embeddings as wide as the models make them, in a layout of the embeddings,
/// the exclusion CSR and the ranking's buffers on both executors.
pub fn dot_widths(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (by_user, _) = catalogue(rng);
    let dims: &[usize] = if h.quick {
        &[8, 604]
    } else {
        &[8, 128, 604, 1024]
    };
    let (n_users, n_items) = (90, 300);
    for &dim in dims {
        let ue: Vec<f32> = (0..n_users * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut ie: Vec<f32> = (0..n_items * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        ie.copy_within(10 * dim..11 * dim, 11 * dim);
        let mut specs = vec![
            BufferSpec::f32(buffers::USER_EMBEDDINGS, n_users * dim, Role::Output),
            BufferSpec::f32(buffers::ITEM_EMBEDDINGS, n_items * dim, Role::Output),
            BufferSpec::u32(buffers::EXCLUDE_PTR, by_user.offsets.len(), Role::Resident),
            BufferSpec::u32(buffers::EXCLUDE_IDX, by_user.indices.len(), Role::Resident),
        ];
        specs.extend(ranking::buffer_specs(n_users, n_items));
        let layout = MemoryLayout::new(specs, h.ctx.max_binding(), None)?;
        let emb = Embeddings {
            users: layout.id(buffers::USER_EMBEDDINGS),
            items: layout.id(buffers::ITEM_EMBEDDINGS),
            n_users,
            n_items,
            dim,
            scorer: Scorer::Dot,
            exclude_ptr: layout.id(buffers::EXCLUDE_PTR),
            exclude_idx: layout.id(buffers::EXCLUDE_IDX),
        };
        let mut gpu = GpuExec::new(h.ctx.clone(), layout.clone())?;
        let mut cpu = CpuExec::<f32>::new(layout);
        fill(&mut gpu, &emb, &ue, &ie, &by_user)?;
        fill(&mut cpu, &emb, &ue, &ie, &by_user)?;
        let users: Vec<u32> = (0..n_users as u32).collect();
        for k in [1, 10, 128] {
            for variant in [RankVariant::Workgroup, RankVariant::Serial] {
                if variant == RankVariant::Serial && dim > ranking::SERIAL_MAX_DIM {
                    continue; // not used that wide (see `ranking::rank`)
                }
                let (got, want) = rank_both(&mut gpu, &mut cpu, &emb, &users, k, variant)?;
                let what = format!("dot top-{k} {variant:?} dim {dim}");
                check_lists(
                    v,
                    &what,
                    &got,
                    &want,
                    &ue,
                    &ie,
                    dim,
                    &by_user,
                    Scorer::Dot,
                    k,
                );
            }
        }
    }
    Ok(())
}

/// Writes embeddings `ue`, `ie` and the exclusion CSR into `exec`'s buffers named by `emb`.
fn fill<E: Executor<Real = f32>>(
    exec: &mut E,
    emb: &Embeddings,
    ue: &[f32],
    ie: &[f32],
    exclude: &Csr,
) -> Result {
    exec.write(emb.users, ue)?;
    exec.write(emb.items, ie)?;
    exec.write_u32(emb.exclude_ptr, &exclude.offsets)?;
    exec.write_u32(emb.exclude_idx, &exclude.indices)
}
