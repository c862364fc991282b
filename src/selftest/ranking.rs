//! Full ranking + top-k on the GPU against the CPU top-k, in both ranking variants, over a model's
//! embeddings from an inference session (clamped-cosine scorer, and DeepMF's) and over raw embeddings
//! with the dot scorer at the widths the models use (up to MultVAE's 604 and beyond). Several k,
//! including lists shorter than k because a user has interacted with most of the catalogue; exact ties
//! broken by item index. Tolerance: GPU scores within 2e-6·max(|score|, 1)·max(dim/64, 1) of the f64
//! scores; a different item at a position is accepted only when the two candidates' f64 scores are
//! within that tolerance (f32 rounding may swap near-ties).

use rand::RngExt;

use super::harness::{Harness, Rng};
use super::verdict::Verdict;
use crate::data::Csr;
use crate::eval::ranking::{
    self, Embeddings, NO_ITEM, RankVariant, Ranker, Scorer, TopK, rank_cpu,
};
use crate::gpu::buffers;
use crate::models::session::gpu_session;
use crate::models::{Mode, Model, ModelKind, Side, Weights};

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

/// Checks `got` against the f64 ranking of the same embeddings.
#[allow(clippy::too_many_arguments)]
pub fn check_lists(
    v: &mut Verdict,
    what: &str,
    got: &TopK,
    ue: &[f32],
    ie: &[f32],
    dim: usize,
    exclude: &Csr,
    scorer: Scorer,
    k: usize,
) {
    let users = &got.users;
    let want = rank_cpu(ue, ie, dim, exclude, users, k, scorer);
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

/// Both variants over CoBraR's and DeepMF's session embeddings (clamped cosine).
pub fn session_embeddings(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (by_user, by_item) = catalogue(rng);
    for (kind, arch) in [(ModelKind::Cobrar, "32,16"), (ModelKind::Deepmf, "16,12,8")] {
        let mdl = super::models::two_tower(kind, arch, 0.0, &by_user, &by_item, 40);
        let w = Weights::init(mdl.params(), rng.random_range(0..1000));
        let mut s = gpu_session(h.ctx.clone(), mdl, Mode::Infer, &w, None)?;
        s.embed_all()?;
        let ue = s.read_embeddings(Side::Users)?;
        let ie = s.read_embeddings(Side::Items)?;
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
        for &k in ks {
            for variant in [RankVariant::Workgroup, RankVariant::Serial] {
                let got =
                    Ranker::new().rank_with(&s.exec.ctx, &s.embeddings(), &users, k, variant)?;
                let what = format!("{kind} top-{k} {variant:?}");
                check_lists(v, &what, &got, &ue, &ie, dim, &by_user, s.model.scorer(), k);
                // User 3 has 285 training items: fewer than 100 candidates remain.
                if k >= 100 {
                    let short = got.list(users.len() - 1).len();
                    v.ensure(short < k, || {
                        format!("{what}: user 3 should have a short list")
                    });
                }
            }
        }
    }
    Ok(())
}

/// The dot scorer over raw embeddings as wide as the models make them.
pub fn dot_widths(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (by_user, _) = catalogue(rng);
    let dims: &[usize] = if h.quick {
        &[8, 604]
    } else {
        &[8, 128, 604, 1024]
    };
    for &dim in dims {
        let ue: Vec<f32> = (0..90 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut ie: Vec<f32> = (0..300 * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        ie.copy_within(10 * dim..11 * dim, 11 * dim);
        let ctx = &h.ctx;
        let (ub, ib) = (
            buffers::storage_init(ctx, "users", &ue)?,
            buffers::storage_init(ctx, "items", &ie)?,
        );
        let ptr = buffers::storage_init(ctx, "ptr", &by_user.offsets)?;
        let idx = buffers::storage_init(ctx, "idx", &by_user.indices)?;
        let emb = Embeddings {
            users: &ub,
            items: &ib,
            n_users: 90,
            n_items: 300,
            dim,
            scorer: Scorer::Dot,
            exclude_ptr: &ptr,
            exclude_idx: &idx,
        };
        let users: Vec<u32> = (0..90).collect();
        for k in [1, 10, 128] {
            for variant in [RankVariant::Workgroup, RankVariant::Serial] {
                if variant == RankVariant::Serial && dim > ranking::SERIAL_MAX_DIM {
                    continue; // not used that wide (see `Ranker::rank`)
                }
                let got = Ranker::new().rank_with(ctx, &emb, &users, k, variant)?;
                let what = format!("dot top-{k} {variant:?} dim {dim}");
                check_lists(v, &what, &got, &ue, &ie, dim, &by_user, Scorer::Dot, k);
            }
        }
    }
    Ok(())
}
