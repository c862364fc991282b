//! Whole-model checks through the one step description: the model's gradient plan run by the CPU
//! executor in f64 against central finite differences; its training plan run by the GPU executor
//! against the same plan on the CPU twins (every parameter after Adam), for CoBraR and DeepMF, with and
//! without dropout, with tables split into several chunks; dispatch counts from the plan; and GPU
//! determinism.

use cobrar_gpu::batch::{HostBatch, IndexStrategy};
use cobrar_gpu::data::Csr;
use cobrar_gpu::gpu::executor::Executor;
use cobrar_gpu::kernels::adam_dense::AdamConfig;
use cobrar_gpu::kernels::score_loss::{self, Pairs};
use cobrar_gpu::models::cobrar::{StepConfig, TwoTower};
use cobrar_gpu::models::session::{cpu_session, gpu_session};
use cobrar_gpu::models::{Architecture, Mode, Model, ModelKind, Weights};
use rand::RngExt;

use crate::common::{assert_changes_agree, assert_close, gpu, mark_cancelling, rng};

/// A small random interaction matrix (every user and item has at least one interaction) and its
/// transpose.
pub fn toy_data(rng: &mut impl rand::Rng, n: usize, m: usize, density: f64) -> (Csr, Csr) {
    let mut rows: Vec<Vec<u32>> = (0..n)
        .map(|u| {
            let mut r: Vec<u32> = (0..m as u32).filter(|_| rng.random_bool(density)).collect();
            if r.is_empty() || u < m {
                r.push((u % m) as u32);
            }
            r.sort_unstable();
            r.dedup();
            r
        })
        .collect();
    for i in 0..m {
        if !rows.iter().any(|r| r.contains(&(i as u32))) {
            rows[i % n].push(i as u32);
            rows[i % n].sort_unstable();
        }
    }
    let by_user = Csr::from_rows(&rows);
    let by_item = by_user.transpose(m);
    (by_user, by_item)
}

/// `positives` training pairs with `neg` random negatives each.
pub fn toy_pairs(
    rng: &mut impl rand::Rng,
    by_user: &Csr,
    m: usize,
    positives: usize,
    neg: usize,
) -> Vec<(u32, u32, f32)> {
    let n = by_user.n_rows();
    let mut pairs = Vec::new();
    for _ in 0..positives {
        let u = rng.random_range(0..n);
        let row = by_user.row(u);
        pairs.push((u as u32, row[rng.random_range(0..row.len())], 1.0));
        for _ in 0..neg {
            pairs.push((u as u32, rng.random_range(0..m as u32), 0.0));
        }
    }
    pairs
}

fn config(dropout: f32) -> StepConfig {
    StepConfig {
        mu: 1e-4,
        dropout,
        adam: AdamConfig::new(1e-3, 1e-3),
        seed: 11,
    }
}

fn model<'d>(
    kind: ModelKind,
    arch: &str,
    dropout: f32,
    by_user: &'d Csr,
    by_item: &'d Csr,
    max_pairs: usize,
) -> TwoTower<'d> {
    let arch: Architecture = arch.parse().unwrap();
    TwoTower::new(kind, arch, config(dropout), by_user, by_item, max_pairs)
}

/// A model without dropout whose steps score up to `max_pairs` pairs.
pub fn model_with_pairs<'d>(
    kind: ModelKind,
    arch: &str,
    by_user: &'d Csr,
    by_item: &'d Csr,
    max_pairs: usize,
) -> TwoTower<'d> {
    model(kind, arch, 0.0, by_user, by_item, max_pairs)
}

/// A model for ranking tests (no dropout, small steps).
pub fn model_for_ranking<'d>(
    kind: ModelKind,
    arch: &str,
    by_user: &'d Csr,
    by_item: &'d Csr,
) -> TwoTower<'d> {
    model(kind, arch, 0.0, by_user, by_item, 40)
}

#[test]
fn gradients_of_the_step_plan_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64Mcg::new(0x5eed_cafe);
    for (kind, dropout, arch) in [
        (ModelKind::Cobrar, 0.0, "8,4"),
        (ModelKind::Cobrar, 0.3, "8,8,4"),
        (ModelKind::Deepmf, 0.0, "8,8,4"),
    ] {
        let (n, m) = (6, 9);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.4);
        let pairs = toy_pairs(&mut rng, &by_user, m, 4, 2);
        let mdl = model(kind, arch, dropout, &by_user, &by_item, pairs.len());
        let batch = mdl.build_batch(&pairs);
        let p0 = Weights::init(mdl.params(), 5).convert::<f64>();
        let what = format!("{kind} dropout {dropout} arch {arch}");
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

/// The cosines of `batch`'s pairs under `w` at step `t` (dropout included), through the model's own
/// gradient plan on the CPU twins.
fn cosines(mdl: &TwoTower<'_>, w: &Weights<f32>, batch: &HostBatch, t: u64) -> Vec<f64> {
    let (by_user, by_item) = mdl.training_split();
    let copy = TwoTower::new(
        mdl.kind,
        mdl.arch.clone(),
        mdl.cfg,
        by_user,
        by_item,
        mdl.max_pairs,
    )
    .with_index(mdl.index);
    let dim = copy.dim();
    let widths: usize = copy.arch.widths.iter().sum();
    let before_last: usize = copy.arch.widths[..copy.arch.n_layers()].iter().sum();
    let mut s = cpu_session(copy, Mode::Check, w, 1 << 30, None).unwrap();
    s.grad_step(batch, t).unwrap();
    let acts = s.exec.read(s.exec.layout().id("acts")).unwrap();
    let rows = acts.len() / widths;
    let e = &acts[rows * before_last..][..batch.n_rows() * dim];
    let pairs = Pairs {
        user: &batch.pair_user,
        item: &batch.pair_item,
        label: &batch.label,
    };
    score_loss::cpu(e, batch.n_users(), batch.n_items(), dim, pairs, 1e-4, 1.0).cos
}

/// A batch none of whose pairs sits at the loss's singularity. As cos → 1 (or → μ, where the clamp
/// switches on) the true gradient diverges (∂L/∂ŷ = 1/(1−ŷ), clamped only at 1e-12) while ∂cos/∂e
/// vanishes, and f32 rounding of their product is unbounded: PyTorch behaves the same. Tiny embeddings
/// hit exactly parallel vectors often, so such pairs are left out (and the batch checked again: with
/// dropout, a row's mask depends on its place in the batch).
fn well_conditioned_batch(
    rng: &mut impl rand::Rng,
    mdl: &TwoTower<'_>,
    w: &Weights<f32>,
    t: u64,
) -> HostBatch {
    let (by_user, by_item) = mdl.training_split();
    let near = |c: f64| (c - 1.0).abs() < 1e-3 || (c - 1e-4).abs() < 1e-5;
    for _ in 0..50 {
        let mut pairs = toy_pairs(rng, by_user, by_item.n_rows(), 20, 3);
        let full = pairs.len();
        for _ in 0..10 {
            let batch = mdl.build_batch(&pairs);
            let cos = cosines(mdl, w, &batch, t);
            if !cos.iter().any(|&c| near(c)) {
                return batch;
            }
            // Pair q of the batch is pairs[q]: the image keeps the pairs' order.
            let keep: Vec<_> = pairs
                .iter()
                .zip(&cos)
                .filter(|(_, c)| !near(**c))
                .map(|(p, _)| *p)
                .collect();
            if keep.len() < full / 2 {
                break;
            }
            pairs = keep;
        }
    }
    panic!("no well-conditioned batch found");
}

fn gpu_vs_cpu(kind: ModelKind, arch: &str, dropout: f32, steps: usize, chunk_rows: Option<usize>) {
    gpu_vs_cpu_with(kind, arch, dropout, steps, chunk_rows, IndexStrategy::Host);
}

fn gpu_vs_cpu_with(
    kind: ModelKind,
    arch: &str,
    dropout: f32,
    steps: usize,
    chunk_rows: Option<usize>,
    index: IndexStrategy,
) {
    let mut rng = rng(&format!(
        "train_step {kind} {arch} dropout {dropout} {index:?}"
    ));
    let (n, m) = (57, 43);
    let (by_user, by_item) = toy_data(&mut rng, n, m, 0.15);
    let max_pairs = 20 * 4;
    let mdl = || model(kind, arch, dropout, &by_user, &by_item, max_pairs).with_index(index);
    let seed = rng.random_range(0..1000);
    let w0 = Weights::init(mdl().params(), seed);
    let mut gpu_s = gpu_session(gpu(), mdl(), Mode::Train, &w0, chunk_rows).unwrap();
    let mut cpu_s = cpu_session(mdl(), Mode::Train, &w0, gpu().max_binding(), chunk_rows).unwrap();
    if let Some(r) = chunk_rows {
        let l = gpu_s.exec.layout();
        assert!(l.chunks(l.id("W_U")) > 1 && (r < n), "tables must be split");
    }
    let reference = mdl();
    let mut cancelling = Vec::new();
    for t in 1..=steps as u64 {
        let w = cpu_s.read_weights().unwrap();
        let batch = well_conditioned_batch(&mut rng, &reference, &w, t);
        mark_cancelling(&mut cancelling, mdl(), &w, &batch, t, chunk_rows);
        gpu_s.step(&batch, false).unwrap();
        cpu_s.step(&batch, false).unwrap();
    }
    let got = gpu_s.read_weights().unwrap();
    let want = cpu_s.read_weights().unwrap();
    let what = format!("{kind} {arch} dropout {dropout} after {steps} step(s)");
    // The first loss comes from identical weights; later ones from weights that may already differ
    // a little (see below), so they get a looser tolerance.
    let (gl, cl) = (
        gpu_s.read_losses(1, steps as u64).unwrap(),
        cpu_s.read_losses(1, steps as u64).unwrap(),
    );
    assert_close(
        &format!("{what}: first loss"),
        &gl[..1],
        &cl[..1],
        1e-6,
        1e-5,
    );
    assert_close(&format!("{what}: losses"), &gl, &cl, 1e-5, 1e-4);
    let lr = config(dropout).adam.lr as f32;
    assert_changes_agree(&what, &w0, (&got, &want), lr, steps, &cancelling);
}

#[test]
fn gpu_step_matches_cpu_cobrar() {
    gpu_vs_cpu(ModelKind::Cobrar, "16,8", 0.0, 1, None);
    gpu_vs_cpu(ModelKind::Cobrar, "16,12,8", 0.0, 3, None);
}

#[test]
fn gpu_step_matches_cpu_cobrar_dropout() {
    gpu_vs_cpu(ModelKind::Cobrar, "16,12,8", 0.5, 3, None);
}

#[test]
fn gpu_step_matches_cpu_deepmf() {
    gpu_vs_cpu(ModelKind::Deepmf, "16,8", 0.0, 1, None);
    gpu_vs_cpu(ModelKind::Deepmf, "20,12,8", 0.0, 3, None);
}

#[test]
fn gpu_step_matches_cpu_with_chunked_tables() {
    // W_U (43 rows) and W_T (57 rows) in chunks of 16 rows: the path of tables above the binding limit.
    gpu_vs_cpu(ModelKind::Cobrar, "16,8", 0.2, 2, Some(16));
    gpu_vs_cpu(ModelKind::Deepmf, "16,8", 0.0, 2, Some(16));
}

#[test]
fn gpu_step_matches_cpu_with_the_index_built_on_the_gpu() {
    // The index kernels' twins run in the CPU plan; tables chunked so every chunk reads the index.
    gpu_vs_cpu_with(
        ModelKind::Cobrar,
        "16,12,8",
        0.3,
        2,
        None,
        IndexStrategy::Gpu,
    );
    gpu_vs_cpu_with(
        ModelKind::Deepmf,
        "16,8",
        0.0,
        2,
        Some(16),
        IndexStrategy::Gpu,
    );
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
        let mdl = model(
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
        let mdl = model(kind, arch, 0.0, &by_user, &by_item, pairs.len());
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
        let mdl = model(
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
