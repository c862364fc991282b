//! GPU full ranking + top-k against its CPU twin over a model's embeddings from an inference session:
//! fresh random models, several k (incl. lists shorter than k because a user has interacted with most of
//! the catalogue), exact ties broken by item index, both scorers. Inference sessions embed exactly as
//! training sessions do, and the exported (normalised) embeddings rank by inner product as the model
//! does. Tolerance: GPU scores within 2e-6 of the f64 scores; a different item at a position is accepted
//! only when the two candidates' f64 scores are within that tolerance (f32 rounding may swap near-ties).

use cobrar_gpu::data::Csr;
use cobrar_gpu::eval::ranking::{
    self, Embeddings, NO_ITEM, RankVariant, Ranker, Scorer, TopK, rank_cpu,
};
use cobrar_gpu::gpu::buffers;
use cobrar_gpu::gpu::executor::Executor;
use cobrar_gpu::models::session::gpu_session;
use cobrar_gpu::models::{Mode, Model, ModelKind, Side, Weights};
use cobrar_gpu::report::export;
use rand::RngExt;

use crate::common::{gpu, rng};
use crate::steps::toy_data;

/// 90 users × 300 items; items 10 and 11 have the same users (identical embeddings: exact ties), item
/// 12 none, user 3 most of the catalogue.
fn catalogue(rng: &mut impl rand::Rng) -> (Csr, Csr) {
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
fn check_lists(
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
    for (row, &u) in users.iter().enumerate() {
        let g = &got.items[row * k..(row + 1) * k];
        let w = &want.items[row * k..(row + 1) * k];
        let ue_u = &ue[u as usize * dim..(u as usize + 1) * dim];
        let s = |i: u32| scorer.score(ue_u, &ie[i as usize * dim..(i as usize + 1) * dim]);
        for r in 0..k {
            if w[r] == NO_ITEM {
                assert_eq!(
                    g[r], NO_ITEM,
                    "{what} user {u} k {k}: position {r} should be empty"
                );
                continue;
            }
            assert_ne!(
                g[r], NO_ITEM,
                "{what} user {u} k {k}: position {r} is empty on the GPU"
            );
            assert!(
                !exclude.contains(u as usize, g[r]),
                "{what} user {u}: excluded item {} ranked",
                g[r]
            );
            let gs = got.scores[row * k + r] as f64;
            // f32 sums of `dim` products: the error grows with the width.
            let tol = 2e-6 * s(g[r]).abs().max(1.0) * (dim as f64 / 64.0).max(1.0);
            assert!(
                (gs - s(g[r])).abs() < tol,
                "{what} user {u}: score of item {} {gs} vs {}",
                g[r],
                s(g[r])
            );
            if g[r] != w[r] {
                assert!(
                    (s(g[r]) - s(w[r])).abs() < tol,
                    "{what} user {u} k {k} position {r}: gpu item {} ({}) vs cpu item {} ({})",
                    g[r],
                    s(g[r]),
                    w[r],
                    s(w[r])
                );
            }
        }
        // Exact ties keep the lower index first.
        if let (Some(a), Some(b)) = (
            g.iter().position(|&i| i == 10),
            g.iter().position(|&i| i == 11),
        ) {
            assert!(
                a < b,
                "{what} user {u}: tie between items 10 and 11 not broken by index"
            );
        }
    }
}

#[test]
fn gpu_topk_over_session_embeddings_matches_cpu_twin() {
    let mut rng = rng("ranking");
    let (by_user, by_item) = catalogue(&mut rng);
    for (kind, arch) in [(ModelKind::Cobrar, "32,16"), (ModelKind::Deepmf, "16,12,8")] {
        let mdl = crate::steps::model_for_ranking(kind, arch, &by_user, &by_item);
        let w = Weights::init(mdl.params(), rng.random_range(0..1000));
        let mut s = gpu_session(gpu(), mdl, Mode::Infer, &w, None).unwrap();
        s.embed_all().unwrap();
        let ue = s.read_embeddings(Side::Users).unwrap();
        let ie = s.read_embeddings(Side::Items).unwrap();
        let dim = s.model.dim();
        assert_eq!(
            &ie[10 * dim..11 * dim],
            &ie[11 * dim..12 * dim],
            "tied items must embed identically"
        );
        let users: Vec<u32> = (0..90u32).rev().step_by(2).chain([3]).collect();
        for k in [1, 5, 20, 100, 128] {
            let got = Ranker::new()
                .rank(&s.exec.ctx, &s.embeddings(), &users, k)
                .unwrap();
            let what = format!("{kind}");
            check_lists(&what, &got, &ue, &ie, dim, &by_user, s.model.scorer(), k);
            // User 3 has 285 training items: only 300 − 285 (− ties removed) candidates remain.
            let short = got.list(users.len() - 1).len();
            if k >= 100 {
                assert!(short < k, "user 3 should have a short list");
            }
        }
    }
}

#[test]
fn dot_scorer_ranks_raw_embeddings() {
    let mut rng = rng("ranking dot");
    let (by_user, _) = catalogue(&mut rng);
    // Widths up to the largest: MultVAE's embeddings are its hidden width + 4 (604).
    for dim in [8, 604, 1024] {
        let ue: Vec<f32> = (0..90 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut ie: Vec<f32> = (0..300 * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        ie.copy_within(10 * dim..11 * dim, 11 * dim);
        let ctx = gpu();
        let b = |name: &str, v: &[u32]| buffers::storage_init(&ctx, name, v).unwrap();
        let (ub, ib) = (
            buffers::storage_init(&ctx, "users", &ue).unwrap(),
            buffers::storage_init(&ctx, "items", &ie).unwrap(),
        );
        let (ptr, idx) = (b("ptr", &by_user.offsets), b("idx", &by_user.indices));
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
                let got = Ranker::new()
                    .rank_with(&ctx, &emb, &users, k, variant)
                    .unwrap();
                check_lists(
                    &format!("dot {variant:?} dim {dim}"),
                    &got,
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
}

#[test]
fn inference_sessions_embed_exactly_as_training_sessions() {
    let mut rng = rng("inference embeddings");
    let (by_user, by_item) = toy_data(&mut rng, 300, 120, 0.05);
    for kind in [ModelKind::Cobrar, ModelKind::Deepmf] {
        // A training session with small batches embeds in many blocks; inference in one.
        let train = crate::steps::model_with_pairs(kind, "24,16,8", &by_user, &by_item, 12);
        let w = Weights::init(train.params(), 4);
        let mut t = gpu_session(gpu(), train, Mode::Train, &w, None).unwrap();
        let infer = crate::steps::model_with_pairs(kind, "24,16,8", &by_user, &by_item, 12);
        let mut i = gpu_session(gpu(), infer, Mode::Infer, &w, None).unwrap();
        let roles = |l: &cobrar_gpu::gpu::memory::MemoryLayout| l.bytes_by_role();
        let (ri, rt) = (roles(i.exec.layout()), roles(t.exec.layout()));
        use cobrar_gpu::gpu::memory::Role;
        let of = |r: &[(Role, u64)], role| r.iter().find(|x| x.0 == role).map_or(0, |x| x.1);
        assert_eq!(
            of(&rt, Role::OptState),
            2 * of(&rt, Role::Param),
            "training holds Adam's moments"
        );
        assert_eq!(
            (of(&ri, Role::OptState), of(&ri, Role::Grad)),
            (0, 0),
            "inference: {ri:?}"
        );
        assert_eq!(of(&ri, Role::Param), of(&rt, Role::Param));
        t.embed_all().unwrap();
        i.embed_all().unwrap();
        for side in [Side::Users, Side::Items] {
            let (a, b) = (
                t.read_embeddings(side).unwrap(),
                i.read_embeddings(side).unwrap(),
            );
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{kind} {side:?}: embeddings differ between training and inference sessions"
            );
        }
    }
}

#[test]
fn exported_embeddings_rank_by_inner_product_as_the_model_does() {
    let mut rng = rng("export inner product");
    let (by_user, by_item) = catalogue(&mut rng);
    let mdl = crate::steps::model_for_ranking(ModelKind::Cobrar, "32,16", &by_user, &by_item);
    let w = Weights::init(mdl.params(), 8);
    let mut s = gpu_session(gpu(), mdl, Mode::Infer, &w, None).unwrap();
    s.embed_all().unwrap();
    let dim = s.model.dim();
    let users: Vec<u32> = (0..90).collect();
    let k = 10;
    let model_top = Ranker::new()
        .rank(&s.exec.ctx, &s.embeddings(), &users, k)
        .unwrap();
    let ids = |n: usize| (0..n).map(|i| format!("id{i}")).collect::<Vec<_>>();
    let (uids, iids) = (ids(90), ids(300));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emb.safetensors");
    let mut tables = [
        export::Table {
            name: "users",
            ids: &uids,
            values: s.read_embeddings(Side::Users).unwrap(),
            dim,
        },
        export::Table {
            name: "items",
            ids: &iids,
            values: s.read_embeddings(Side::Items).unwrap(),
            dim,
        },
    ];
    let paths = export::write(&out, &mut tables, s.model.scorer(), &[]).unwrap();
    assert_eq!(paths.len(), 5);
    // Read the rows back from the .npy files, as a serving system would.
    let npy = |p: &std::path::Path| -> Vec<f32> {
        let bytes = std::fs::read(p).unwrap();
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        bytemuck::pod_collect_to_vec(&bytes[10 + hlen..])
    };
    let (ue, ie) = (npy(&paths[1]), npy(&paths[3]));
    assert_eq!(
        std::fs::read_to_string(&paths[4]).unwrap().lines().count(),
        300
    );
    for row in ue.chunks(dim).chain(ie.chunks(dim)) {
        let n: f64 = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        assert!(n == 0.0 || (n - 1.0).abs() < 1e-6, "row norm {n}");
    }
    // An inner-product index over the exported rows (training items filtered, as the model does).
    let index_top = rank_cpu(&ue, &ie, dim, &by_user, &users, k, Scorer::Dot);
    let model_scorer = s.model.scorer();
    let (mu_e, mi_e) = (
        s.read_embeddings(Side::Users).unwrap(),
        s.read_embeddings(Side::Items).unwrap(),
    );
    for (r, &u) in users.iter().enumerate() {
        for p in 0..k {
            let (a, b) = (index_top.items[r * k + p], model_top.items[r * k + p]);
            if a != b {
                let su = &mu_e[u as usize * dim..(u as usize + 1) * dim];
                let sc = |i: u32| {
                    model_scorer.score(su, &mi_e[i as usize * dim..(i as usize + 1) * dim])
                };
                assert!(
                    (sc(a) - sc(b)).abs() < 2e-6,
                    "user {u} position {p}: index item {a} vs model item {b}"
                );
            }
        }
    }
}
