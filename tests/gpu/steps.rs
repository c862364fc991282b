//! Whole-model checks through the one step description: the model's gradient plan run by the CPU
//! executor in f64 against central finite differences; the selftest's model checks (training plan on
//! the GPU against the CPU twins, every parameter after Adam, then the embedding step) for CoBraR and
//! DeepMF, with and without dropout, tables in chunks and the index built on the GPU; dispatch counts
//! from the plan; and GPU determinism.

use cobrar_gpu::batch::{HostBatch, IndexStrategy};
use cobrar_gpu::models::session::{cpu_session, gpu_session};
use cobrar_gpu::models::{Mode, Model, ModelKind, Weights};
use cobrar_gpu::selftest::models::two_tower;

use crate::common::{check, gpu, toy_data, toy_pairs};

/// A model without dropout whose steps score up to `max_pairs` pairs.
pub fn model_with_pairs<'d>(
    kind: ModelKind,
    arch: &str,
    by_user: &'d cobrar_gpu::data::Csr,
    by_item: &'d cobrar_gpu::data::Csr,
    max_pairs: usize,
) -> cobrar_gpu::models::cobrar::TwoTower<'d> {
    two_tower(kind, arch, 0.0, by_user, by_item, max_pairs)
}

#[test]
fn gradients_of_the_step_plan_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64Mcg::new(0x5eed_cafe);
    use cobrar_gpu::kernels::score_loss::Loss::{self, Bce, Bpr};
    let cases: [(ModelKind, f32, &str, Loss); 6] = [
        (ModelKind::Cobrar, 0.0, "8,4", Bce),
        (ModelKind::Cobrar, 0.3, "8,8,4", Bce),
        (ModelKind::Deepmf, 0.0, "8,8,4", Bce),
        // The pairwise loss over triples, at τ = 1 and τ = 4.
        (ModelKind::Cobrar, 0.0, "8,4", Bpr { tau: 1.0 }),
        (ModelKind::Cobrar, 0.3, "8,8,4", Bpr { tau: 4.0 }),
        (ModelKind::Deepmf, 0.0, "8,8,4", Bpr { tau: 1.0 }),
    ];
    for (kind, dropout, arch, loss) in cases {
        let (n, m) = (6, 9);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.4);
        let pairs = match loss {
            Bce => toy_pairs(&mut rng, &by_user, m, 4, 2),
            Bpr { .. } => cobrar_gpu::selftest::harness::toy_triples(&mut rng, &by_user, m, 6),
        };
        let mdl = two_tower(kind, arch, dropout, &by_user, &by_item, pairs.len()).with_loss(loss);
        let batch = mdl.build_batch(&pairs);
        let p0 = Weights::init(mdl.params(), 5).convert::<f64>();
        let what = format!("{kind} dropout {dropout} arch {arch} loss {loss:?}");
        let stride = |len: usize| 1 + len / 40;
        let g = crate::baselines::check_finite_differences(
            mdl,
            &batch,
            &p0,
            stride,
            (1e-6, 1e-4),
            &what,
        );
        assert!(g.values().any(|v| v.abs() > 1e-6), "gradients are all zero");
    }
}

/// Lazy Adam's step follows the gradient of L(θ) + (λ/2)·(‖dense‖² + Σ over the rows the batch
/// touches ‖θ_r‖²): Adam's first step from zero moments leaves m = (1 − β1)·g, so g is read back (f64)
/// from the step's moments and checked against central finite differences of L plus
/// that L2 term; rows the batch does not touch do not move at all (dense Adam moves every row by its
/// decay).
#[test]
fn lazy_adam_steps_along_finite_differences_of_the_loss_and_the_touched_rows_l2() {
    use cobrar_gpu::config::Optimizer;
    let mut rng = rand_pcg::Pcg64Mcg::new(0x1a2b);
    for (kind, arch) in [(ModelKind::Cobrar, "8,4"), (ModelKind::Deepmf, "8,8,4")] {
        let (n, m) = (9, 12);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.3);
        let pairs = toy_pairs(&mut rng, &by_user, m, 3, 2);
        let mdl = || {
            two_tower(kind, arch, 0.0, &by_user, &by_item, pairs.len())
                .with_optimizer(Optimizer::LazyAdam)
        };
        let batch = mdl().build_batch(&pairs);
        let p0 = Weights::init(mdl().params(), 3).convert::<f64>();
        // Step 1 from zero moments leaves m = (1 − β1)·g exactly (f64 twin, β1 as the step uses it).
        let k = mdl().cfg.adam.at_step(1);
        let (b1, lambda) = (k.beta1 as f64, k.weight_decay as f64);
        let mut train = cpu_session(mdl(), Mode::Train, &p0, 1 << 30, None).unwrap();
        train.step(&batch, false).unwrap();
        let p1 = train.read_weights().unwrap();
        let (m1, _) = train.read_moments().unwrap();
        // The rows each table's gradient reaches: W_U's (items) from the batch's users' rows, W_T's
        // (users) from the batch's items' rows.
        let reach = |ids: &[u32], csr: &cobrar_gpu::data::Csr, rows: usize| {
            let mut t = vec![false; rows];
            ids.iter().for_each(|&e| {
                csr.row(e as usize)
                    .iter()
                    .for_each(|&r| t[r as usize] = true)
            });
            t
        };
        let touched = |name: &str| match name {
            "W_U" => Some(reach(&batch.user_ids, &by_user, m)),
            "W_T" => Some(reach(&batch.item_ids, &by_item, n)),
            _ => None,
        };
        let mut check = cpu_session(mdl(), Mode::Check, &p0, 1 << 30, None).unwrap();
        let mut loss_at = |w: &Weights<f64>| {
            check.write_weights(w).unwrap();
            check.grad_step(&batch, 1).unwrap();
            check.read_losses(1, 1).unwrap()[0]
        };
        let h = 1e-6;
        let (mut moved, mut kept) = (0, 0);
        for (part, spec) in p0.layout.buffers.iter().enumerate() {
            let rows = touched(&spec.name);
            let len = p0.data[part].len();
            for k in (0..len).step_by(1 + len / 60) {
                let (th0, th1) = (p0.data[part][k], p1.data[part][k]);
                let on = rows.as_ref().is_none_or(|t| t[k / spec.cols]);
                let mut plus = p0.clone();
                plus.data[part][k] += h;
                let mut minus = p0.clone();
                minus.data[part][k] -= h;
                let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h);
                let what = format!("{kind} {} index {k}", spec.name);
                if !on {
                    assert_eq!(th1, th0, "{what}: an untouched row moved");
                    assert_eq!(
                        m1.data[part][k], 0.0,
                        "{what}: an untouched row has a moment"
                    );
                    assert!(
                        fd.abs() < 1e-9,
                        "{what}: an untouched row has gradient {fd}"
                    );
                    kept += 1;
                    continue;
                }
                let want = fd + lambda * th0;
                let got = m1.data[part][k] / (1.0 - b1);
                assert!(th1 != th0, "{what}: a touched row did not move");
                assert!(
                    (got - want).abs() <= 1e-7 + 1e-4 * want.abs(),
                    "{what}: the step's gradient {got} vs finite differences + λθ {want}"
                );
                moved += 1;
            }
        }
        assert!(moved > 20 && kept > 0, "{kind}: {moved} moved, {kept} kept");
    }
}

#[test]
fn gpu_steps_and_embeddings_match_cpu_cobrar() {
    check("model:cobrar");
}

#[test]
fn gpu_steps_and_embeddings_match_cpu_deepmf() {
    check("model:deepmf");
}

#[test]
fn gpu_steps_and_embeddings_match_cpu_cobrar_with_side_information() {
    check("model:cobrar-si");
}

/// CoBraR with side information: the whole plan's gradients (feature rows of both tables included)
/// against finite differences, without and with modality dropout (the batch then holds input variant
/// rows: interactions alone, features alone). The nets are wider than the smallest CoBraR case: with
/// 3-layer, 4-wide ReLU embeddings on this toy batch most embeddings die to one shared coordinate,
/// every cosine is 1, and a negative pair's BCE sits at the singularity `well_conditioned_batch`
/// documents (analytic gradients of rounding noise against a flat loss).
#[test]
fn side_information_gradients_match_finite_differences() {
    use cobrar_gpu::models::cobrar_si::SideInfo;
    use cobrar_gpu::selftest::models::{step_config, toy_features};
    let mut rng = rand_pcg::Pcg64Mcg::new(0x51de);
    for (md, dropout, arch) in [(0.0, 0.0, "8,4"), (0.7, 0.0, "16,8"), (0.7, 0.3, "16,8,8")] {
        let (n, m) = (6, 9);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.4);
        let (uf, itf) = (
            toy_features(&mut rng, n, 3, 0.5),
            toy_features(&mut rng, m, 4, 0.5),
        );
        let pairs = toy_pairs(&mut rng, &by_user, m, 4, 2);
        let arch_ = arch.parse().unwrap();
        let cfg = step_config(dropout);
        let mdl = SideInfo::new(
            arch_,
            cfg,
            &by_user,
            &by_item,
            Some(&uf),
            Some(&itf),
            md,
            64,
        );
        let batch = mdl.build_batch(&pairs);
        let variants = batch.user_ids.iter().filter(|&&u| u as usize >= n).count()
            + batch.item_ids.iter().filter(|&&i| i as usize >= m).count();
        assert_eq!(
            variants > 0,
            md > 0.0,
            "modality dropout {md}: {variants} variant rows in the batch"
        );
        let p0 = Weights::init(mdl.params(), 5).convert::<f64>();
        let (fu, fi) = (uf.n_features(), itf.n_features());
        assert_eq!(
            p0.layout
                .buffers
                .iter()
                .find(|b| b.name == "W_U")
                .unwrap()
                .rows,
            m + fu
        );
        assert_eq!(
            p0.layout
                .buffers
                .iter()
                .find(|b| b.name == "W_T")
                .unwrap()
                .rows,
            n + fi
        );
        let what = format!("cobrar-si modality dropout {md} dropout {dropout} arch {arch}");
        let stride = |len: usize| 1 + len / 60;
        let g = crate::baselines::check_finite_differences(
            mdl,
            &batch,
            &p0,
            stride,
            (1e-6, 1e-4),
            &what,
        );
        // The feature rows (after the interaction rows) of W_U take gradient.
        let w_u = g
            .layout
            .buffers
            .iter()
            .position(|b| b.name == "W_U")
            .unwrap();
        let d1 = g.layout.buffers[w_u].cols;
        assert!(
            g.data[w_u][m * d1..].iter().any(|v| v.abs() > 1e-9),
            "{what}: no user feature row has a gradient"
        );
    }
}

#[test]
fn both_index_strategies_train_to_the_same_bits() {
    let mut rng = rand_pcg::Pcg64Mcg::new(78);
    let (by_user, by_item) = toy_data(&mut rng, 90, 70, 0.1);
    let all_pairs: Vec<_> = (0..4)
        .map(|_| toy_pairs(&mut rng, &by_user, 70, 24, 5))
        .collect();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut results = Vec::new();
    for (index, chunk_rows) in [
        (IndexStrategy::Host, None),
        (IndexStrategy::Gpu, None),
        (IndexStrategy::Gpu, Some(20)),
    ] {
        let mdl = two_tower(
            ModelKind::Cobrar,
            "24,16,8",
            0.5,
            &by_user,
            &by_item,
            24 * 6,
        )
        .with_index(index);
        let batches: Vec<HostBatch> = all_pairs.iter().map(|p| mdl.build_batch(p)).collect();
        let w0 = Weights::init(mdl.params(), 4);
        let mut s = gpu_session(gpu(), mdl, Mode::Train, &w0, chunk_rows).unwrap();
        for b in &batches {
            s.step(b, false).unwrap();
        }
        let w = s.read_weights().unwrap();
        results.push((
            index,
            w.data.iter().map(|d| bits(d)).collect::<Vec<_>>(),
            bits(&s.read_losses(1, 4).unwrap()),
        ));
    }
    for r in &results[1..] {
        assert_eq!(r.2, results[0].2, "{:?}: losses differ", r.0);
        assert!(
            r.1 == results[0].1,
            "{:?}: weights differ between index strategies",
            r.0
        );
    }
}

#[test]
fn dispatch_counts_come_from_the_plan_and_both_executors_run_them() {
    let mut rng = rand_pcg::Pcg64Mcg::new(3);
    let (by_user, by_item) = toy_data(&mut rng, 40, 30, 0.1);
    let pairs = toy_pairs(&mut rng, &by_user, 30, 8, 3);
    for (kind, arch, chunk_rows, expect) in [
        // 2 projections + L forward + score + sum + 2L backward + column sums + dense Adam + 2 tables
        (ModelKind::Cobrar, "16,8", None, 2 + 1 + 2 + 2 + 1 + 1 + 2),
        (
            ModelKind::Deepmf,
            "16,12,8",
            None,
            2 + 2 + 2 + 4 + 1 + 1 + 2,
        ),
        // W_U (30 rows) and W_T (40 rows) in chunks of 16: 2 + 3 projection and table launches
        (
            ModelKind::Cobrar,
            "16,8",
            Some(16),
            5 + 1 + 2 + 2 + 1 + 1 + 5,
        ),
    ] {
        let mdl = two_tower(kind, arch, 0.0, &by_user, &by_item, pairs.len());
        let batch = mdl.build_batch(&pairs);
        let w = Weights::init(mdl.params(), 1);
        let mut s = cpu_session(mdl, Mode::Train, &w, 1 << 30, chunk_rows).unwrap();
        let plan = s.train_plan(&batch, 1);
        assert_eq!(
            plan.dispatch_count(),
            expect,
            "{kind} {arch} {chunk_rows:?}"
        );
        s.step(&batch, false).unwrap();
        assert_eq!(s.exec.dispatched(), expect);
    }
}

#[test]
fn gpu_training_is_deterministic() {
    let mut rng = rand_pcg::Pcg64Mcg::new(77);
    let (n, m) = (80, 60);
    let (by_user, by_item) = toy_data(&mut rng, n, m, 0.1);
    let all_pairs: Vec<_> = (0..5)
        .map(|_| toy_pairs(&mut rng, &by_user, m, 32, 5))
        .collect();
    let run = || {
        let mdl = two_tower(
            ModelKind::Cobrar,
            "32,16,8",
            0.5,
            &by_user,
            &by_item,
            32 * 6,
        );
        let batches: Vec<HostBatch> = all_pairs.iter().map(|p| mdl.build_batch(p)).collect();
        let w0 = Weights::init(mdl.params(), 9);
        let mut s = gpu_session(gpu(), mdl, Mode::Train, &w0, None).unwrap();
        for b in &batches {
            s.step(b, false).unwrap();
        }
        (s.read_weights().unwrap(), s.read_losses(1, 5).unwrap())
    };
    let (a, la) = run();
    let (b, lb) = run();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&la), bits(&lb));
    for (x, y) in a.data.iter().zip(&b.data) {
        assert_eq!(bits(x), bits(y), "weights differ between runs");
    }
}
