//! The study's baselines on the runtime (SPEC §7): BPR-MF's and LightGCN's step plans against finite
//! differences (CPU executor, f64) and on the GPU against the CPU twins (the selftest's model checks,
//! MostPop's embedding step included); LightGCN's embeddings against
//! a dense Â computed here; both models' losses fall on the embedded data and they rank far better than
//! their untrained (random) embeddings; MostPop's lists and metrics on a hand-computed case.

use cobrar_gpu::data::{Csr, Dataset, LoadOptions, load};
use cobrar_gpu::eval::Evaluator;
use cobrar_gpu::eval::metrics::SplitMetrics;
use cobrar_gpu::models::bpr::{Bpr, BprConfig};
use cobrar_gpu::models::lightgcn::{LightGcn, LightGcnConfig};
use cobrar_gpu::models::session::{cpu_session, gpu_session};
use cobrar_gpu::models::{Mode, Model, ModelKind, Side, Weights};
use cobrar_gpu::sampler::{Sampler, SamplerKind};
use cobrar_gpu::train::{TrainConfig, train};

use crate::common::{assert_close, check, gpu, rng, toy_data};

fn bpr_config(dim: usize, lambda: f32) -> BprConfig {
    BprConfig {
        dim,
        lambda,
        lr: 1e-2,
        optimizer: Default::default(),
    }
}

/// Triples from the `bpr` sampler over `by_user`.
fn triples(by_user: &Csr, n_items: usize, batch: usize, seed: u64) -> Vec<(u32, u32, f32)> {
    let s = Sampler::new(SamplerKind::Bpr, by_user, n_items, batch, 0, seed).unwrap();
    s.epoch(1).next().unwrap()
}

/// Checks the gradient plan of `mdl` at `p0` on `batch` against central finite differences of its
/// loss (CPU executor, f64), every `stride(len)`-th parameter of each buffer of `len` values; returns
/// the gradients.
pub fn check_finite_differences<M: Model>(
    mdl: M,
    batch: &M::Batch,
    p0: &Weights<f64>,
    stride: impl Fn(usize) -> usize,
    (atol, rtol): (f64, f64),
    what: &str,
) -> Weights<f64> {
    let mut s = cpu_session(mdl, Mode::Check, p0, 1 << 30, None).unwrap();
    s.grad_step(batch, 1).unwrap();
    let g = s.read_grads().unwrap();
    let mut loss_at = |w: &Weights<f64>| {
        s.write_weights(w).unwrap();
        s.grad_step(batch, 1).unwrap();
        s.read_losses(1, 1).unwrap()[0]
    };
    let h = 1e-6;
    for part in 0..p0.data.len() {
        let len = p0.data[part].len();
        for k in (0..len).step_by(stride(len)) {
            let mut plus = p0.clone();
            plus.data[part][k] += h;
            let mut minus = p0.clone();
            minus.data[part][k] -= h;
            let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h);
            let an = g.data[part][k];
            assert!(
                (fd - an).abs() <= atol + rtol * fd.abs().max(an.abs()),
                "{what}: {} index {k}: finite difference {fd} vs analytic {an}",
                p0.layout.buffers[part].name
            );
        }
    }
    g
}

#[test]
fn bpr_gradients_of_the_step_plan_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64Mcg::new(0xb9b9);
    for (dim, lambda) in [(4, 0.0), (8, 0.05)] {
        let (n, m) = (6, 9);
        let (by_user, _) = toy_data(&mut rng, n, m, 0.4);
        let pairs = triples(&by_user, m, 7, 3);
        let mdl = Bpr::new(bpr_config(dim, lambda), &by_user, m, 7);
        let batch = mdl.build_batch(&pairs);
        // Larger than the initialisation, so that σ is away from ½ and λ's term is visible.
        let mut p0 = Weights::init(mdl.params(), 9).convert::<f64>();
        p0.data.iter_mut().flatten().for_each(|v| *v *= 4.0);
        let what = format!("bpr dim {dim} λ {lambda}");
        let g = check_finite_differences(mdl, &batch, &p0, |_| 1, (1e-7, 1e-5), &what);
        // Rows no triple uses have no gradient; the used ones do.
        let nonzero = g.values().filter(|v| v.abs() > 1e-9).count();
        assert!(nonzero >= dim * 2, "gradients are (nearly) all zero");
    }
}

#[test]
fn bpr_gpu_steps_and_embeddings_match_the_cpu_twins() {
    check("model:bpr");
}

#[test]
fn lazy_adam_steps_of_cobrar_deepmf_and_bpr_match_the_cpu_twins() {
    check("model:lazy-adam");
}

#[test]
fn mostpop_embeds_on_the_gpu_as_on_the_cpu() {
    check("model:mostpop");
}

pub fn bpr_train_config() -> TrainConfig {
    TrainConfig {
        model: ModelKind::Bpr,
        arch: "32".parse().unwrap(),
        dropout: 0.0,
        lr: 5e-3,
        weight_decay: 1e-4,
        mu: 1e-4,
        negatives: 5,
        batch_size: 256,
        sampler: SamplerKind::Bpr,
        max_epochs: 4,
        patience: 0,
        seed: 5,
        cutoffs: vec![5, 10],
        select_k: 5,
        log_every: 8,
        max_steps_per_epoch: None,
        no_validation: false,
        batch_index: Default::default(),
        layers: 3,
        anneal_cap: 0.2,
        anneal_steps: 200_000,
        loss: Default::default(),
        temperature: 1.0,
        optimizer: Default::default(),
        modality_dropout: 0.0,
    }
}

/// Trains `cfg` on the embedded dataset: the loss must fall by a fifth over the run (for the BPR loss,
/// the first epoch's mean at most ln 2, the loss of a model that cannot tell positives from
/// negatives), and the best validation NDCG@5 must beat three times that of the untrained model
/// (random initialisation: a random ranking) and 0.1.
pub fn loss_falls_and_beats_random(cfg: &TrainConfig) {
    let ds = load(&LoadOptions::default()).unwrap();
    let (mut session, _, _) = cobrar_gpu::train::setup(gpu(), &ds, cfg).unwrap();
    session.embed_all().unwrap();
    let mut ev = Evaluator::new(&cfg.cutoffs).unwrap();
    let random = SplitMetrics::from(
        &ev.evaluate_session(&mut session, &ds.val, &ds)
            .unwrap()
            .result,
    );
    let random = random.at(5).unwrap().ndcg;
    drop(session);

    let model = cfg.model;
    let out = train(gpu(), &ds, cfg, false, None, &mut |_| Ok(())).unwrap();
    let losses: Vec<f64> = out.history.iter().map(|r| r.loss).collect();
    let last = *losses.last().unwrap();
    assert!(
        last < 0.8 * losses[0],
        "{model}: loss did not fall: {losses:?}"
    );
    assert!(
        !cfg.sampler.pairwise() || losses[0] <= std::f64::consts::LN_2 + 1e-3,
        "{model}: {losses:?}"
    );
    let best = &out.history[out.best_epoch - 1];
    let ndcg = best.validation.as_ref().unwrap().at(5).unwrap().ndcg;
    assert!(
        ndcg > 3.0 * random && ndcg > 0.1,
        "{model}: validation NDCG@5 {ndcg} against {random} for its random initialisation"
    );
}

#[test]
fn bpr_loss_falls_and_it_beats_its_random_initialisation_on_the_embedded_dataset() {
    loss_falls_and_beats_random(&bpr_train_config());
}

/// Three users, four items. Training: u0 {0, 1}, u1 {0, 2}, u2 {0}; popularity 3, 1, 1, 0. Test:
/// u0 {2}, u1 {1}, u2 {3}.
fn popularity_case() -> Dataset {
    let train = Csr::from_rows(&[vec![0u32, 1], vec![0, 2], vec![0]]);
    let test = Csr::from_rows(&[vec![2u32], vec![1], vec![3]]);
    let ids = |p: &str, n: usize| (0..n).map(|k| format!("{p}{k}")).collect::<Vec<_>>();
    Dataset::from_parts("toy", ids("u", 3), ids("i", 4), train, test.clone(), test).unwrap()
}

#[test]
fn mostpop_ranks_by_training_popularity_with_hand_computed_metrics() {
    let ds = popularity_case();
    let cfg = TrainConfig {
        model: ModelKind::Mostpop,
        arch: ModelKind::Mostpop.default_arch(),
        max_epochs: 1,
        sampler: SamplerKind::Alg1,
        cutoffs: vec![1, 5],
        select_k: 5,
        ..bpr_train_config()
    };
    let out = train(gpu(), &ds, &cfg, false, None, &mut |_| Ok(())).unwrap();
    assert_eq!(
        (out.best_epoch, out.history.len(), out.history[0].steps),
        (1, 1, 0)
    );
    let mut session = out.session;
    let w = session.read_weights().unwrap();
    assert_eq!(w.data[0][..4], [3.0, 1.0, 1.0, 0.0], "item_popularity");
    let mut ev = Evaluator::new(&cfg.cutoffs).unwrap();
    let e = ev.evaluate_session(&mut session, &ds.test, &ds).unwrap();
    // Training items excluded; the tie between items 1 and 2 goes to the lower index.
    assert_eq!(e.top.list(0), &[2, 3]);
    assert_eq!(e.top.list(1), &[1, 3]);
    assert_eq!(e.top.list(2), &[1, 2, 3]);
    let m = SplitMetrics::from(&e.result);
    let (at1, at5) = (m.at(1).unwrap(), m.at(5).unwrap());
    // u0 and u1 hit at rank 1; u2's item is third: NDCG@5 = (1 + 1 + 1/log2 4) / 3.
    assert!((at1.ndcg - 2.0 / 3.0).abs() < 1e-9, "NDCG@1 {}", at1.ndcg);
    assert!((at5.ndcg - 2.5 / 3.0).abs() < 1e-9, "NDCG@5 {}", at5.ndcg);
    assert!((at5.recall - 1.0).abs() < 1e-9 && (at1.recall - 2.0 / 3.0).abs() < 1e-9);
    // MRR@5: 1, 1, 1/3.
    assert!(
        (at5.mrr - (7.0 / 3.0) / 3.0).abs() < 1e-9,
        "MRR@5 {}",
        at5.mrr
    );
}

fn lightgcn_config(dim: usize, layers: usize, lambda: f32) -> LightGcnConfig {
    LightGcnConfig {
        dim,
        layers,
        lambda,
        lr: 1e-2,
    }
}

#[test]
fn lightgcn_embeddings_are_the_mean_of_dense_normalised_propagations() {
    let mut rng = rng("lightgcn embeddings");
    let (n, m, dim) = (13, 9, 8);
    let (by_user, by_item) = toy_data(&mut rng, n, m, 0.3);
    for layers in 1..=3 {
        let mdl = LightGcn::new(lightgcn_config(dim, layers, 0.0), &by_user, &by_item, 4);
        let w = Weights::init(mdl.params(), 6);
        // Â over the n + m nodes, dense, in f64: users first, then items.
        let nodes = n + m;
        let mut adj = vec![0f64; nodes * nodes];
        let mut deg = vec![0f64; nodes];
        for u in 0..n {
            for &i in by_user.row(u) {
                let i = n + i as usize;
                adj[u * nodes + i] = 1.0;
                adj[i * nodes + u] = 1.0;
                deg[u] += 1.0;
                deg[i] += 1.0;
            }
        }
        let s: Vec<f64> = deg.iter().map(|d| (d + 1e-7).powf(-0.5)).collect();
        let e0: Vec<f64> = w.data[0]
            .iter()
            .chain(&w.data[1])
            .map(|v| *v as f64)
            .collect();
        let mut layer = e0.clone();
        let mut mean = e0.clone();
        for _ in 0..layers {
            let mut next = vec![0f64; nodes * dim];
            for r in 0..nodes {
                for c in 0..nodes {
                    let a = adj[r * nodes + c] * s[r] * s[c];
                    if a != 0.0 {
                        for k in 0..dim {
                            next[r * dim + k] += a * layer[c * dim + k];
                        }
                    }
                }
            }
            mean.iter_mut().zip(&next).for_each(|(t, v)| *t += v);
            layer = next;
        }
        mean.iter_mut().for_each(|v| *v /= (layers + 1) as f64);
        let mut s = gpu_session(gpu(), mdl, Mode::Infer, &w, None).unwrap();
        s.embed_all().unwrap();
        let got: Vec<f32> = [Side::Users, Side::Items]
            .into_iter()
            .flat_map(|side| s.read_embeddings(side).unwrap())
            .collect();
        let want: Vec<f32> = mean.iter().map(|v| *v as f32).collect();
        assert_close(
            &format!("lightgcn K={layers} embeddings"),
            &got,
            &want,
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn lightgcn_gradients_of_the_step_plan_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64Mcg::new(0x1c9c);
    for (layers, lambda) in [(1, 0.0), (2, 0.05), (3, 0.01)] {
        let (n, m, dim) = (6, 9, 4);
        let (by_user, by_item) = toy_data(&mut rng, n, m, 0.4);
        let pairs = triples(&by_user, m, 7, layers as u64);
        let mdl = LightGcn::new(lightgcn_config(dim, layers, lambda), &by_user, &by_item, 7);
        let batch = mdl.build_batch(&pairs);
        let mut p0 = Weights::init(mdl.params(), 9).convert::<f64>();
        p0.data.iter_mut().flatten().for_each(|v| *v *= 4.0);
        let what = format!("lightgcn K={layers} λ {lambda}");
        let g = check_finite_differences(mdl, &batch, &p0, |_| 1, (1e-7, 1e-5), &what);
        // Propagation spreads the gradient beyond the rows the batch uses.
        let nonzero = g.values().filter(|v| v.abs() > 1e-9).count();
        assert!(
            nonzero > 3 * dim * 3,
            "lightgcn K={layers}: only {nonzero} non-zero gradients"
        );
    }
}

#[test]
fn lightgcn_gpu_steps_and_embeddings_match_the_cpu_twins() {
    check("model:lightgcn");
}

#[test]
fn lightgcn_loss_falls_and_it_beats_its_random_initialisation_on_the_embedded_dataset() {
    loss_falls_and_beats_random(&TrainConfig {
        model: ModelKind::Lightgcn,
        layers: 2,
        max_epochs: 3,
        ..bpr_train_config()
    });
}

/// CoBraR with the pairwise loss (`--loss bpr --temperature 5`) on the bpr sampler's triples: the
/// loss falls and the model beats its random initialisation, like every model.
#[test]
fn cobrar_with_the_pairwise_loss_falls_and_beats_its_random_initialisation() {
    loss_falls_and_beats_random(&TrainConfig {
        model: ModelKind::Cobrar,
        arch: "128,32".parse().unwrap(),
        lr: 1e-3,
        weight_decay: 1e-3,
        loss: cobrar_gpu::config::LossKind::Bpr,
        temperature: 5.0,
        optimizer: Default::default(),
        modality_dropout: 0.0,
        ..bpr_train_config()
    });
}
