//! Whole steps of every model against the CPU executor: each model's training plan run by the GPU
//! executor and by the CPU twins from the same weights for a few Adam steps (losses and every
//! parameter's change must agree, see [`Verdict::changes_agree`]), then its embedding step from the
//! same weights on both (every user's and item's embedding). Tables in row chunks, the gradient index
//! built on the GPU, logits in blocks: the paths a model takes on a device with small bindings.

use rand::RngExt;
use rand::seq::SliceRandom;

use super::harness::{Harness, Rng, cancelling, toy_data, toy_pairs, toy_triples};
use super::verdict::Verdict;
use crate::batch::{HostBatch, IndexStrategy};
use crate::config::Optimizer;
use crate::data::Csr;
use crate::gpu::executor::Executor;
use crate::kernels::adam_dense::AdamConfig;
use crate::kernels::score_loss::{self, Pairs};
use crate::models::bpr::{Bpr, BprConfig};
use crate::models::cobrar::{StepConfig, TwoTower};
use crate::models::lightgcn::{LightGcn, LightGcnConfig};
use crate::models::mostpop::MostPop;
use crate::models::multvae::{MultVae, MultVaeConfig, VaeBatch};
use crate::models::session::{Session, cpu_session, gpu_session};
use crate::models::{Architecture, Mode, Model, ModelKind, STUDY_PAIR, Side, Weights};
use crate::sampler::{Sampler, SamplerKind};

type Result = anyhow::Result<()>;

/// The step configuration of the two-tower checks.
pub fn step_config(dropout: f32) -> StepConfig {
    StepConfig {
        mu: 1e-4,
        dropout,
        adam: AdamConfig::new(1e-3, 1e-3),
        seed: 11,
        loss: Default::default(),
        optimizer: Default::default(),
    }
}

/// CoBraR or DeepMF on toy data, scoring up to `max_pairs` pairs a step.
pub fn two_tower<'d>(
    kind: ModelKind,
    arch: &str,
    dropout: f32,
    by_user: &'d Csr,
    by_item: &'d Csr,
    max_pairs: usize,
) -> TwoTower<'d> {
    let arch: Architecture = arch.parse().expect("a valid architecture");
    TwoTower::new(
        kind,
        arch,
        step_config(dropout),
        by_user,
        by_item,
        max_pairs,
    )
}

/// The cosine of each of `batch`'s pairs under `w` at step `t` (dropout included), through the
/// model's own gradient plan on the CPU twins, and the smaller of its two embeddings' norms.
fn cosines(
    mdl: &TwoTower<'_>,
    w: &Weights<f32>,
    batch: &HostBatch,
    t: u64,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let copy = mdl.clone();
    let dim = copy.dim();
    let widths: usize = copy.arch.widths.iter().sum();
    let before_last: usize = copy.arch.widths[..copy.arch.n_layers()].iter().sum();
    let mut s = cpu_session(copy, Mode::Check, w, 1 << 30, None)?;
    s.grad_step(batch, t)?;
    let acts = s.exec.read(s.exec.layout().id("acts"))?;
    let rows = acts.len() / widths;
    let e = &acts[rows * before_last..][..batch.n_rows() * dim];
    let pairs = Pairs {
        user: &batch.pair_user,
        item: &batch.pair_item,
        label: &batch.label,
    };
    let cos = score_loss::cpu(
        e,
        batch.n_users(),
        batch.n_items(),
        dim,
        pairs,
        1e-4,
        1.0,
        score_loss::Loss::Bce,
    )
    .cos;
    let norm = |r: usize| {
        let row = &e[r * dim..(r + 1) * dim];
        row.iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let nu = batch.n_users();
    Ok(cos
        .into_iter()
        .enumerate()
        .map(|(q, c)| {
            let (u, i) = (
                batch.pair_user[q] as usize,
                nu + batch.pair_item[q] as usize,
            );
            (c, norm(u).min(norm(i)))
        })
        .collect())
}

/// A batch none of whose pairs sits at the loss's singularity. As cos → 1 (or → μ, where the clamp
/// switches on) the true gradient diverges (∂L/∂ŷ = 1/(1−ŷ), clamped only at 1e-12) while ∂cos/∂e
/// vanishes, and f32 rounding of their product is unbounded: PyTorch behaves the same. Tiny embeddings
/// hit exactly parallel vectors often, so such pairs are left out (and the batch checked again: with
/// dropout, a row's mask depends on its place in the batch). So are pairs with a nearly vanished
/// embedding (norm in (0, 1e-2): most of its ReLU units dead; an embedding of exactly 0 has no
/// gradient, every unit dead, and is kept): ∂cos/∂e is two terms of size ~1/‖e‖ whose difference is
/// the gradient, and their f32 rounding is as large as it (seen: a user embedding of one coordinate,
/// 1.9e-4, whose true gradient along it is 0 came out −2.4e-4 on the GPU; seed 1060).
fn well_conditioned_batch(
    rng: &mut Rng,
    mdl: &TwoTower<'_>,
    w: &Weights<f32>,
    t: u64,
) -> anyhow::Result<HostBatch> {
    let (by_user, by_item) = mdl.training_split();
    let m = by_item.n_rows();
    well_conditioned_batch_of(rng, mdl, |p| mdl.build_batch(p), (by_user, m), w, t)
}

/// [`well_conditioned_batch`] of a model built on `mdl` whose batches `build` makes, sampled from the
/// training interactions `(by_user, items)`.
fn well_conditioned_batch_of(
    rng: &mut Rng,
    mdl: &TwoTower<'_>,
    build: impl Fn(&[crate::sampler::Pair]) -> HostBatch,
    (by_user, m): (&Csr, usize),
    w: &Weights<f32>,
    t: u64,
) -> anyhow::Result<HostBatch> {
    let near = |(c, norm): (f64, f64)| {
        (c - 1.0).abs() < 1e-3 || (c - 1e-4).abs() < 1e-5 || (norm > 0.0 && norm < 1e-2)
    };
    // The pairwise loss's batches are triples (two pairs each), kept or dropped whole.
    let group = if mdl.pairwise() { 2 } else { 1 };
    for _ in 0..50 {
        let mut pairs = match group {
            2 => toy_triples(rng, by_user, m, 30),
            _ => toy_pairs(rng, by_user, m, 20, 3),
        };
        let full = pairs.len();
        for _ in 0..10 {
            let batch = build(&pairs);
            let cos = cosines(mdl, w, &batch, t)?;
            if !cos.iter().any(|&c| near(c)) {
                return Ok(batch);
            }
            // Pair q of the batch is pairs[q]: the image keeps the pairs' order.
            let keep: Vec<_> = pairs
                .chunks(group)
                .zip(cos.chunks(group))
                .filter(|(_, c)| !c.iter().any(|c| near(*c)))
                .flat_map(|(p, _)| p.iter().copied())
                .collect();
            if keep.len() < full / 2 {
                break;
            }
            pairs = keep;
        }
    }
    anyhow::bail!("no well-conditioned batch found")
}

/// Trains `mdl()` on the GPU and on the CPU twins, one batch per step from
/// `batch_at(model, step, current CPU weights)`, and compares every step's parameter changes; then both
/// embed every user and item from the GPU's final weights.
///
/// Each step starts both sides from the CPU's state (weights, Adam's moments and step count, lazy
/// Adam's row counts): a near-cancelling gradient legitimately moves its parameter by up to ±lr
/// differently on each side, and left alone that difference shifts the next step's activations by
/// ~lr, its gradients by a few percent (seen: 4 of W_T's 571 entries 1–3 % of lr apart after 3 steps,
/// seed 56940274167), which a comparison of whole paths must then forgive. From one shared state, a
/// step's changes agree but for that step's own cancelling gradients, at every step count.
#[allow(clippy::too_many_arguments)]
fn steps_then_embeddings<M: Model>(
    h: &Harness,
    v: &mut Verdict,
    what: &str,
    mdl: impl Fn() -> M,
    steps: u64,
    adam: AdamConfig,
    chunk_rows: Option<usize>,
    seed: u64,
    mut batch_at: impl FnMut(&M, u64, &Weights<f32>) -> anyhow::Result<M::Batch>,
) -> Result {
    let w0 = Weights::init(mdl().params(), seed);
    let mut gpu_s = gpu_session(h.ctx.clone(), mdl(), Mode::Train, &w0, chunk_rows)?;
    let mut cpu_s = cpu_session(mdl(), Mode::Train, &w0, h.ctx.max_binding(), chunk_rows)?;
    if let Some(r) = chunk_rows {
        let l = gpu_s.exec.layout();
        let chunked = l.ids().any(|id| l.chunks(id) > 1);
        v.ensure(chunked, || {
            format!("{what}: no table was split into chunks of {r} rows")
        });
    }
    let reference = mdl();
    let names: Vec<String> = w0.layout.buffers.iter().map(|b| b.name.clone()).collect();
    let mut w = w0;
    for t in 1..=steps {
        if t > 1 {
            gpu_s.write_weights(&w)?;
            let (m, s) = cpu_s.read_moments()?;
            gpu_s.write_moments(&m, &s, t - 1)?;
            gpu_s.write_row_steps(&cpu_s.read_row_steps()?)?;
        }
        let batch = batch_at(&reference, t, &w)?;
        let cancelling = cancelling(mdl(), &w, &batch, t, chunk_rows, adam.weight_decay)?;
        gpu_s.step(&batch, false)?;
        cpu_s.step(&batch, false)?;
        let (got, want) = (gpu_s.read_weights()?, cpu_s.read_weights()?);
        v.changes_agree(
            &format!("{what} step {t}"),
            &names,
            &w.data,
            (&got.data, &want.data),
            adam.lr as f32,
            &cancelling,
        );
        w = want;
    }
    // Every step's loss comes from the same weights on both sides.
    let (gl, cl) = (gpu_s.read_losses(1, steps)?, cpu_s.read_losses(1, steps)?);
    v.close(&format!("{what}: losses"), &gl, &cl, 1e-6, 1e-5);
    let got = gpu_s.read_weights()?;
    // The embedding step of the training session (validation's), from the same weights on both.
    cpu_s.write_weights(&got)?;
    let abs = Weights {
        layout: got.layout.clone(),
        data: got.data.iter().map(|b| super::harness::abs(b)).collect(),
    };
    let scale_s = cpu_session(mdl(), Mode::Infer, &abs, h.ctx.max_binding(), chunk_rows)?;
    compare_embeddings(v, what, &mut gpu_s, &mut cpu_s, scale_s)
}

/// Every embedding of `gpu_s` against `cpu_s`, each within 1e-6 + 1e-5·(the same embedding computed
/// from the parameters' magnitudes: a bound on its summed terms, activations having slopes ≤ 1).
fn compare_embeddings<
    E1: Executor<Real = f32>,
    E2: Executor<Real = f32>,
    E3: Executor<Real = f32>,
    M: Model,
>(
    v: &mut Verdict,
    what: &str,
    gpu_s: &mut Session<E1, M>,
    cpu_s: &mut Session<E2, M>,
    mut scale_s: Session<E3, M>,
) -> Result {
    gpu_s.embed_all()?;
    cpu_s.embed_all()?;
    scale_s.embed_all()?;
    for side in [Side::Users, Side::Items] {
        let (g, c, s) = (
            gpu_s.read_embeddings(side)?,
            cpu_s.read_embeddings(side)?,
            scale_s.read_embeddings(side)?,
        );
        let s = super::harness::abs(&s);
        v.close_scaled(
            &format!("{what}: {side:?} embeddings"),
            &g,
            &c,
            &s,
            1e-6,
            1e-5,
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn two_tower_case(
    h: &Harness,
    rng: &mut Rng,
    v: &mut Verdict,
    kind: ModelKind,
    arch: &str,
    dropout: f32,
    steps: u64,
    chunk_rows: Option<usize>,
    index: IndexStrategy,
    loss: score_loss::Loss,
    optimizer: Optimizer,
) -> Result {
    let (n, m) = (57, 43);
    let (by_user, by_item) = toy_data(rng, n, m, 0.15);
    let mdl = || {
        two_tower(kind, arch, dropout, &by_user, &by_item, 20 * 4)
            .with_index(index)
            .with_loss(loss)
            .with_optimizer(optimizer)
    };
    let seed = rng.random_range(0..1000);
    let what = format!(
        "{kind} {arch} dropout {dropout} chunks {chunk_rows:?} index {index:?} loss {loss:?} \
         optimizer {optimizer:?}"
    );
    let adam = step_config(dropout).adam;
    let mut batch_rng = Rng::new(rng.random());
    steps_then_embeddings(
        h,
        v,
        &what,
        mdl,
        steps,
        adam,
        chunk_rows,
        seed,
        |m, t, w| well_conditioned_batch(&mut batch_rng, m, w, t),
    )
}

/// CoBraR: without and with dropout, tables in chunks, the gradient index built on the GPU.
pub fn cobrar(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use score_loss::Loss::{Bce, Bpr};
    let cases = h.cases(&[
        (true, ("16,8", 0.0, 1, None, IndexStrategy::Host, Bce)),
        (false, ("16,12,8", 0.0, 3, None, IndexStrategy::Host, Bce)),
        (true, ("16,12,8", 0.5, 3, None, IndexStrategy::Host, Bce)),
        (true, ("16,8", 0.2, 2, Some(16), IndexStrategy::Host, Bce)),
        (true, ("16,12,8", 0.3, 2, None, IndexStrategy::Gpu, Bce)),
        // The pairwise loss (`--loss bpr`), at τ = 1 and a sharper τ = 5.
        (
            true,
            ("16,8", 0.0, 2, None, IndexStrategy::Host, Bpr { tau: 1.0 }),
        ),
        (
            true,
            (
                "16,12,8",
                0.3,
                2,
                Some(16),
                IndexStrategy::Gpu,
                Bpr { tau: 5.0 },
            ),
        ),
    ]);
    for (arch, dropout, steps, chunks, index, loss) in cases {
        two_tower_case(
            h,
            rng,
            v,
            STUDY_PAIR[0], // CoBraR
            arch,
            dropout,
            steps,
            chunks,
            index,
            loss,
            Optimizer::Adam,
        )?;
    }
    Ok(())
}

/// Features of `n` entities over `f` features, each present with probability `density` (some entities
/// get none), as a dataset's side information would be.
pub fn toy_features(
    rng: &mut impl rand::Rng,
    n: usize,
    f: usize,
    density: f64,
) -> crate::data::FeatureSet {
    let ids: Vec<String> = (0..n).map(|e| e.to_string()).collect();
    let pairs: Vec<(String, String)> = (0..n)
        .flat_map(|e| (0..f).map(move |k| (e, k)))
        .filter(|_| rng.random_bool(density))
        .map(|(e, k)| (e.to_string(), format!("f{k:02}")))
        .collect();
    crate::data::FeatureSet::from_pairs(&ids, &pairs, "toy".into())
}

/// CoBraR with side information: features on both sides (some entities without any), the modality
/// dropout's input variants, dropout, tables in chunks.
pub fn cobrar_si(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use crate::models::cobrar_si::SideInfo;
    let cases = h.cases(&[
        (true, ("16,8", 0.0, 0.0, 1, None)),
        (true, ("16,12,8", 0.3, 0.5, 2, None)),
        (true, ("16,8", 0.2, 0.8, 2, Some(16))),
    ]);
    for (arch, dropout, md, steps, chunks) in cases {
        let (n, m) = (57, 43);
        let (by_user, by_item) = toy_data(rng, n, m, 0.15);
        let (uf, itf) = (toy_features(rng, n, 6, 0.3), toy_features(rng, m, 9, 0.3));
        let mdl = || {
            let arch: Architecture = arch.parse().expect("a valid architecture");
            let cfg = step_config(dropout);
            SideInfo::new(arch, cfg, &by_user, &by_item, Some(&uf), Some(&itf), md, 80)
        };
        let seed = rng.random_range(0..1000);
        let what =
            format!("cobrar-si {arch} dropout {dropout} modality dropout {md} chunks {chunks:?}");
        let adam = step_config(dropout).adam;
        let mut batch_rng = Rng::new(rng.random());
        steps_then_embeddings(h, v, &what, mdl, steps, adam, chunks, seed, |s, t, w| {
            let build = |p: &[crate::sampler::Pair]| s.build_batch(p);
            well_conditioned_batch_of(&mut batch_rng, s.tower(), build, (&by_user, m), w, t)
        })?;
    }
    Ok(())
}

/// DeepMF: one and two layers, tables in chunks with the index built on the GPU.
pub fn deepmf(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use score_loss::Loss::{Bce, Bpr};
    let cases = h.cases(&[
        (true, ("16,8", 1, None, IndexStrategy::Host, Bce)),
        (true, ("20,12,8", 3, None, IndexStrategy::Host, Bce)),
        (false, ("16,8", 2, Some(16), IndexStrategy::Host, Bce)),
        (true, ("16,8", 2, Some(16), IndexStrategy::Gpu, Bce)),
        (
            true,
            ("20,12,8", 2, None, IndexStrategy::Host, Bpr { tau: 2.0 }),
        ),
    ]);
    for (arch, steps, chunks, index, loss) in cases {
        two_tower_case(
            h,
            rng,
            v,
            STUDY_PAIR[1], // DeepMF
            arch,
            0.0,
            steps,
            chunks,
            index,
            loss,
            Optimizer::Adam,
        )?;
    }
    Ok(())
}

/// Triples from the `bpr` sampler over `by_user`.
fn triples(
    by_user: &Csr,
    n_items: usize,
    batch: usize,
    seed: u64,
) -> anyhow::Result<Vec<(u32, u32, f32)>> {
    let s = Sampler::new(SamplerKind::Bpr, by_user, n_items, batch, 0, seed)?;
    s.epoch(1)
        .next()
        .ok_or_else(|| anyhow::anyhow!("the bpr sampler gave no batch"))
}

/// Four steps of `bpr` triples (the last a smaller remainder batch).
#[allow(clippy::too_many_arguments)]
fn triple_steps<M: Model<Batch = crate::models::bpr::BprBatch>>(
    h: &Harness,
    rng: &mut Rng,
    v: &mut Verdict,
    what: &str,
    by_user: &Csr,
    m: usize,
    mdl: impl Fn() -> M,
    chunk_rows: Option<usize>,
) -> Result {
    let seed: u64 = rng.random_range(0..1000);
    // BPR-MF and LightGCN: L2 is in the loss (so in the gradient), Adam has no decay.
    let adam = AdamConfig::new(1e-2, 0.0);
    steps_then_embeddings(h, v, what, mdl, 4, adam, chunk_rows, seed, |mdl, t, _| {
        let size = if t == 4 { 13 } else { 32 };
        Ok(mdl.build_batch(&triples(by_user, m, size, seed + t)?))
    })
}

/// BPR-MF: the BPR loss and the tables' row-gathered Adam.
pub fn bpr(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    bpr_with(h, rng, v, Optimizer::Adam)
}

fn bpr_with(h: &Harness, rng: &mut Rng, v: &mut Verdict, optimizer: Optimizer) -> Result {
    let (n, m) = (57, 43);
    let (by_user, _) = toy_data(rng, n, m, 0.15);
    let cfg = BprConfig {
        dim: 16,
        lambda: 1e-2,
        lr: 1e-2,
        optimizer,
    };
    // (BPR-MF binds each table whole: its tables are never chunked.)
    let mdl = || Bpr::new(cfg, &by_user, m, 32);
    let what = format!("bpr optimizer {optimizer:?}");
    triple_steps(h, rng, v, &what, &by_user, m, mdl, None)
}

/// Lazy Adam (`--optimizer lazy-adam`) in the models whose tables step by it: CoBraR (tables in
/// chunks, the index built on the GPU), DeepMF and BPR-MF, several steps (each row's own count).
pub fn lazy_adam(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use score_loss::Loss::Bce;
    // CoBraR and DeepMF one step, BPR-MF four (triple_steps); the kernel check covers every step
    // count bit for bit and the resume test whole runs. (The one step dates from when the steps'
    // paths could part, which `steps_then_embeddings` now prevents by re-syncing every step.)
    let cases = h.cases(&[
        (
            true,
            (STUDY_PAIR[0], "16,8", 0.0, 1, None, IndexStrategy::Host),
        ),
        (
            true,
            (
                STUDY_PAIR[0],
                "16,12,8",
                0.3,
                1,
                Some(16),
                IndexStrategy::Gpu,
            ),
        ),
        (
            true,
            (STUDY_PAIR[1], "16,8", 0.0, 1, Some(16), IndexStrategy::Host),
        ),
    ]);
    for (kind, arch, dropout, steps, chunks, index) in cases {
        let lazy = Optimizer::LazyAdam;
        two_tower_case(
            h, rng, v, kind, arch, dropout, steps, chunks, index, Bce, lazy,
        )?;
    }
    bpr_with(h, rng, v, Optimizer::LazyAdam)
}

/// LightGCN: propagation over the training graph, forward and backward.
pub fn lightgcn(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (n, m) = (57, 43);
    let (by_user, by_item) = toy_data(rng, n, m, 0.15);
    for layers in h.cases(&[(true, 3), (false, 1)]) {
        let cfg = LightGcnConfig {
            dim: 16,
            layers,
            lambda: 1e-2,
            lr: 1e-2,
        };
        let mdl = || LightGcn::new(cfg, &by_user, &by_item, 32);
        triple_steps(
            h,
            rng,
            v,
            &format!("lightgcn K={layers}"),
            &by_user,
            m,
            mdl,
            None,
        )?;
    }
    Ok(())
}

/// A batch of `size` distinct users with training rows, drawn with `seed`.
pub fn users_batch(mdl: &MultVae<'_>, by_user: &Csr, size: usize, seed: u64) -> VaeBatch {
    let mut users: Vec<u32> = (0..by_user.n_rows() as u32)
        .filter(|&u| by_user.row_len(u as usize) > 0)
        .collect();
    users.shuffle(&mut Rng::new(seed as u128 + 1));
    users.truncate(size);
    VaeBatch::build(&users, by_user, mdl.n_items())
}

/// The MultVAE configuration of the checks: β at its cap from the first step, so the KL term counts.
pub fn multvae_config(hidden: usize, latent: usize, logit_rows: Option<usize>) -> MultVaeConfig {
    MultVaeConfig {
        hidden,
        latent,
        dropout: 0.5,
        anneal_cap: 0.2,
        anneal_steps: 0,
        adam: AdamConfig::new(1e-2, 1e-3),
        seed: 11,
        logit_rows,
    }
}

/// MultVAE: logits in one block or in blocks, the input table whole or in chunks.
pub fn multvae(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (n, m) = (57, 43);
    let (by_user, _) = toy_data(rng, n, m, 0.15);
    for (block, chunk_rows) in h.cases(&[(true, (None, None)), (true, (Some(7), Some(10)))]) {
        let cfg = multvae_config(40, 8, block);
        let mdl = || MultVae::new(cfg, &by_user, m, 32);
        let what = format!("multvae, blocks {block:?}, chunks {chunk_rows:?}");
        let seed: u64 = rng.random_range(0..1000);
        let adam = cfg.adam;
        steps_then_embeddings(h, v, &what, mdl, 4, adam, chunk_rows, seed, |mdl, t, _| {
            let size = if t == 4 { 13 } else { 32 };
            Ok(users_batch(mdl, &by_user, size, seed + t))
        })?;
    }
    Ok(())
}

/// MostPop: nothing to train; its embedding step on both executors from its fitted counts.
pub fn mostpop(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let (by_user, by_item) = toy_data(rng, 57, 43, 0.15);
    let mdl = || MostPop::new(&by_user, &by_item);
    let w = mdl()
        .fitted()
        .ok_or_else(|| anyhow::anyhow!("mostpop has no fitted weights"))?;
    let mut g = gpu_session(h.ctx.clone(), mdl(), Mode::Infer, &w, None)?;
    let mut c = cpu_session(mdl(), Mode::Infer, &w, h.ctx.max_binding(), None)?;
    g.embed_all()?;
    c.embed_all()?;
    for side in [Side::Users, Side::Items] {
        let bits = |x: Vec<f32>| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
        let (a, b) = (
            bits(g.read_embeddings(side)?),
            bits(c.read_embeddings(side)?),
        );
        v.identical(&format!("mostpop {side:?} embeddings"), &a, &b);
    }
    Ok(())
}
