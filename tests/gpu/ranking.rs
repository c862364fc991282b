//! GPU full ranking + top-k against its CPU twin (the selftest's ranking checks: the same ranking plans
//! on a GPU and a CPU executor, both variants, the models' cosine scorer over session embeddings and the
//! dot scorer at every width); the evaluator on a CPU session as on the GPU; inference sessions
//! embed exactly as training sessions do, and the exported (normalised) embeddings rank by inner
//! product as the model does.

use cobrar_gpu::data::Csr;
use cobrar_gpu::eval::Evaluator;
use cobrar_gpu::eval::ranking::{self, Scorer, rank_cpu};
use cobrar_gpu::gpu::executor::Executor;
use cobrar_gpu::models::session::{cpu_session, gpu_session};
use cobrar_gpu::models::{Mode, Model, ModelKind, STUDY_PAIR, Side, Weights, buffers};
use cobrar_gpu::report::export;
use cobrar_gpu::selftest::ranking::catalogue;

use crate::common::{assert_close, check, gpu, rng, toy_data};
use crate::steps::model_with_pairs;

#[test]
fn gpu_topk_over_session_embeddings_matches_cpu_twin() {
    check("ranking:sessions");
}

#[test]
fn dot_scorer_ranks_raw_embeddings() {
    check("ranking:dot");
}

#[test]
fn inference_sessions_embed_exactly_as_training_sessions() {
    let mut rng = rng("inference embeddings");
    let (by_user, by_item) = toy_data(&mut rng, 300, 120, 0.05);
    for kind in [ModelKind::Cobrar, ModelKind::Deepmf] {
        // A training session with small batches embeds in many blocks; inference in one.
        let train = model_with_pairs(kind, "24,16,8", &by_user, &by_item, 12);
        let w = Weights::init(train.params(), 4);
        let mut t = gpu_session(gpu(), train, Mode::Train, &w, None).unwrap();
        let infer = model_with_pairs(kind, "24,16,8", &by_user, &by_item, 12);
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
    let mdl = model_with_pairs(ModelKind::Cobrar, "32,16", &by_user, &by_item, 40);
    let w = Weights::init(mdl.params(), 8);
    let mut s = gpu_session(gpu(), mdl, Mode::Infer, &w, None).unwrap();
    s.embed_all().unwrap();
    let dim = s.model.dim();
    let users: Vec<u32> = (0..90).collect();
    let k = 10;
    let emb = s.embeddings();
    let model_top = ranking::rank(&mut s.exec, &emb, &users, k).unwrap();
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

#[test]
fn the_evaluator_ranks_on_a_cpu_session_as_on_the_gpu() {
    let mut rng = rng("evaluator on the cpu executor");
    let (by_user, by_item) = catalogue(&mut rng);
    let mdl = || model_with_pairs(STUDY_PAIR[0], "32,16", &by_user, &by_item, 40);
    let w = Weights::init(mdl().params(), 5);
    let mut g = gpu_session(gpu(), mdl(), Mode::Infer, &w, None).unwrap();
    let mut c = cpu_session(mdl(), Mode::Infer, &w, g.ctx().max_binding(), None).unwrap();
    g.embed_all().unwrap();
    for side in [Side::Users, Side::Items] {
        let e = g.read_embeddings(side).unwrap();
        let name = match side {
            Side::Users => buffers::USER_EMBEDDINGS,
            Side::Items => buffers::ITEM_EMBEDDINGS,
        };
        let id = c.exec.layout().id(name);
        c.exec.write(id, &e).unwrap();
    }
    // One held-out item per user, outside its training items.
    let truth = Csr::from_rows(
        &(0..90)
            .map(|u| {
                let i = (0..300u32)
                    .map(|j| (j + 7 * u) % 300)
                    .find(|&i| !by_user.contains(u as usize, i))
                    .unwrap();
                vec![i]
            })
            .collect::<Vec<_>>(),
    );
    let popularity: Vec<u32> = (0..300).map(|i| by_item.row_len(i) as u32).collect();
    let mut ev = Evaluator::new(&[5, 20]).unwrap();
    let (ge, ce) = (g.embeddings(), c.embeddings());
    let on_gpu = ev
        .evaluate(&mut g.exec, &ge, &truth, &by_user, &popularity)
        .unwrap();
    let on_cpu = ev
        .evaluate(&mut c.exec, &ce, &truth, &by_user, &popularity)
        .unwrap();
    assert_eq!(on_gpu.top.users, on_cpu.top.users);
    assert_eq!(on_gpu.top.items, on_cpu.top.items, "the same lists");
    assert_close("scores", &on_gpu.top.scores, &on_cpu.top.scores, 1e-6, 1e-5);
}
