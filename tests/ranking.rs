//! GPU full ranking + top-k against its CPU twin: fresh random models, several k (incl. lists shorter
//! than k because a user has interacted with most of the catalogue), exact ties broken by item index.
//! Tolerance: GPU scores within 2e-6 of the f64 scores; a different item at a position is accepted only
//! when the two candidates' f64 scores are within that tolerance (f32 rounding may swap near-ties).

mod common;

use cobrar_gpu::data::Csr;
use cobrar_gpu::eval::ranking::{NO_ITEM, Ranker, rank_cpu, score};
use cobrar_gpu::kernels::adam_dense::AdamConfig;
use cobrar_gpu::model::engine::{Engine, EngineOptions};
use cobrar_gpu::model::{Architecture, Layout, ModelKind, ModelParams, StepConfig};
use common::{gpu, rng};
use rand::RngExt;

#[test]
fn gpu_topk_matches_cpu_twin() {
    let mut rng = rng("ranking");
    let (n, m) = (90, 300);
    let mut rows: Vec<Vec<u32>> = (0..n)
        .map(|u| {
            let len = if u == 3 { 285 } else { rng.random_range(1..30) };
            let mut r: Vec<u32> = rand::seq::index::sample(&mut rng, m, len)
                .into_iter()
                .map(|v| v as u32)
                .collect();
            r.sort_unstable();
            r
        })
        .collect();
    // Items 10 and 11 get the same users (identical embeddings: exact ties), item 12 none.
    for r in rows.iter_mut() {
        r.retain(|&i| i != 11 && i != 12);
        if r.contains(&10) {
            r.push(11);
            r.sort_unstable();
        }
    }
    let by_user = Csr::from_rows(&rows);
    let by_item = by_user.transpose(m);
    for (kind, arch) in [(ModelKind::Cobrar, "32,16"), (ModelKind::Deepmf, "16,12,8")] {
        let arch: Architecture = arch.parse().unwrap();
        let layout = Layout::new(kind, &arch, n, m);
        let params = ModelParams::init(&layout, rng.random_range(0..1000));
        let cfg = StepConfig {
            mu: 1e-4,
            dropout: 0.0,
            adam: AdamConfig::new(1e-3, 0.0),
            seed: 1,
        };
        let opts = EngineOptions {
            max_pairs: 40,
            chunk_rows: None,
        };
        let mut engine = Engine::new(gpu(), &params, &by_user, &by_item, cfg, opts).unwrap();
        engine.embed_all().unwrap();
        let all_users: Vec<u32> = (0..n as u32).collect();
        let all_items: Vec<u32> = (0..m as u32).collect();
        let ue = engine.embed(true, &all_users).unwrap();
        let ie = engine.embed(false, &all_items).unwrap();
        let dim = arch.embedding();
        assert_eq!(
            &ie[10 * dim..11 * dim],
            &ie[11 * dim..12 * dim],
            "tied items must embed identically"
        );
        let mut ranker = Ranker::new(&engine.ctx).unwrap();
        let users: Vec<u32> = (0..n as u32).rev().step_by(2).chain([3]).collect();
        for k in [1, 5, 20, 100, 128] {
            let got = ranker.rank(&engine, &users, k, cfg.mu).unwrap();
            let want = rank_cpu(&ue, &ie, dim, &by_user, &users, k, cfg.mu);
            for (row, &u) in users.iter().enumerate() {
                let g = &got.items[row * k..(row + 1) * k];
                let w = &want.items[row * k..(row + 1) * k];
                let ue_u = &ue[u as usize * dim..(u as usize + 1) * dim];
                let s = |i: u32| score(ue_u, &ie[i as usize * dim..(i as usize + 1) * dim], cfg.mu);
                for r in 0..k {
                    if w[r] == NO_ITEM {
                        assert_eq!(
                            g[r], NO_ITEM,
                            "user {u} k {k}: position {r} should be empty"
                        );
                        continue;
                    }
                    assert_ne!(
                        g[r], NO_ITEM,
                        "user {u} k {k}: position {r} is empty on the GPU"
                    );
                    assert!(
                        !by_user.contains(u as usize, g[r]),
                        "user {u}: training item {} ranked",
                        g[r]
                    );
                    let gs = got.scores[row * k + r] as f64;
                    assert!(
                        (gs - s(g[r])).abs() < 2e-6,
                        "user {u}: score of item {} {gs} vs {}",
                        g[r],
                        s(g[r])
                    );
                    if g[r] != w[r] {
                        assert!(
                            (s(g[r]) - s(w[r])).abs() < 2e-6,
                            "{kind} user {u} k {k} position {r}: gpu item {} ({}) vs cpu item {} ({})",
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
                        "user {u}: tie between items 10 and 11 not broken by index"
                    );
                }
            }
            // User 3 has 285 training items: only 300 − 285 (− ties removed) candidates remain.
            let short = got.list(users.len() - 1).len();
            assert_eq!(short, want.list(users.len() - 1).len());
            if k >= 100 {
                assert!(short < k, "user 3 should have a short list");
            }
        }
    }
}
