//! MultVAE (SPEC §7) on the runtime: its step plan against finite differences (CPU executor, f64) with
//! the KL term, input dropout and blocked softmax in play; GPU steps against the CPU twins, with the
//! input table in row chunks and the logits in blocks; its embeddings' dot products against the
//! decoder's logits computed here from the weights; loss falls and it beats its random initialisation.

use cobrar_gpu::models::multvae::MultVae;
use cobrar_gpu::models::session::gpu_session;
use cobrar_gpu::models::{Mode, Model, ModelKind, Side, Weights};
use cobrar_gpu::sampler::SamplerKind;
use cobrar_gpu::train::TrainConfig;

use crate::baselines::{bpr_train_config, check_finite_differences, loss_falls_and_beats_random};
use crate::common::{assert_close, check, gpu, rng, toy_data};
use cobrar_gpu::selftest::models::{multvae_config as config, users_batch};

#[test]
fn multvae_gradients_of_the_step_plan_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64Mcg::new(0x7ae);
    // (users, items, hidden, latent, logit rows per block): M not a multiple of 4 (padding rows),
    // and blocks of 2 rows over a batch of 5 (the output layer's gradient summed over 3 blocks).
    for (n, m, hidden, latent, block) in [(6, 9, 8, 4, None), (7, 10, 12, 4, Some(2))] {
        let (by_user, _) = toy_data(&mut rng, n, m, 0.4);
        let mdl = MultVae::new(config(hidden, latent, block), &by_user, m, 5);
        let batch = users_batch(&mdl, &by_user, 5, 3);
        // Larger than the initialisation, so that tanh and the softmax are away from linear.
        let mut p0 = Weights::init(mdl.params(), 9).convert::<f64>();
        p0.data
            .iter_mut()
            .flatten()
            .for_each(|v| *v = *v * 3.0 + 0.05);
        let what = format!("multvae {hidden},{latent} on {m} items, blocks {block:?}");
        let g = check_finite_differences(mdl, &batch, &p0, |_| 1, (1e-7, 1e-5), &what);
        let nonzero = g.values().filter(|v| v.abs() > 1e-9).count();
        assert!(
            nonzero > hidden * m / 2,
            "{what}: only {nonzero} non-zero gradients"
        );
    }
}

#[test]
fn multvae_gpu_steps_and_embeddings_match_the_cpu_twins_over_chunks_and_blocks() {
    check("model:multvae");
}

/// tanh(x) row by row for a dense layer y = x·W + b with W stored fan_in × fan_out.
fn layer(x: &[f64], w: &[f64], b: &[f64], d_in: usize, d_out: usize, tanh: bool) -> Vec<f64> {
    let mut y = b.to_vec();
    for (k, xv) in x.iter().enumerate().take(d_in) {
        for o in 0..d_out {
            y[o] += xv * w[k * d_out + o];
        }
    }
    if tanh {
        y.iter_mut().for_each(|v| *v = v.tanh());
    }
    y
}

#[test]
fn multvae_embeddings_score_the_decoders_logits_of_the_mean() {
    let mut rng = rng("multvae embeddings");
    let (n, m, h, d) = (11, 10, 600, 4);
    let (by_user, _) = toy_data(&mut rng, n, m, 0.3);
    // MultVAE's hidden width; blocks of 4 users: the embedding pass runs in three.
    let mdl = MultVae::new(config(h, d, None), &by_user, m, 4);
    let mut w = Weights::init(mdl.params(), 6);
    // Non-zero biases, so that each one's place is checked.
    for name in [
        "encoder.0.bias",
        "encoder.1.bias",
        "decoder.0.bias",
        "decoder.1.bias",
    ] {
        let len = w.tensor(name).len();
        let values: Vec<f32> = (0..len).map(|k| 0.1 * ((k % 5) as f32 - 2.0)).collect();
        w.set_tensor(name, &values);
    }
    let get = |name: &str| -> Vec<f64> { w.tensor(name).iter().map(|&v| v as f64).collect() };
    let stored = |name: &str| -> Vec<f64> { w.stored(name).iter().map(|&v| v as f64).collect() };
    let m4 = m.next_multiple_of(4);
    // Stored fan_in × fan_out ([W ; b] order), as the kernels read them.
    let (w_in, b_in) = (get("encoder.0.weight"), get("encoder.0.bias"));
    let (w1, b1) = (stored("encoder.1.weight"), get("encoder.1.bias"));
    let (w2, b2) = (stored("decoder.0.weight"), get("decoder.0.bias"));
    let (w3, b3) = (stored("decoder.1.weight"), get("decoder.1.bias"));
    let mut s = gpu_session(gpu(), mdl, Mode::Infer, &w, None).unwrap();
    s.embed_all().unwrap();
    let (ue, ie) = (
        s.read_embeddings(Side::Users).unwrap(),
        s.read_embeddings(Side::Items).unwrap(),
    );
    let dim = h + 4;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for u in 0..n {
        let row = by_user.row(u);
        let mut x = vec![0f64; m];
        for &i in row {
            x[i as usize] = 1.0 / (row.len() as f64).sqrt();
        }
        let h1 = layer(&x, &w_in, &b_in, m, h, true);
        let mulv = layer(&h1, &w1, &b1, h, 2 * d, false);
        let h2 = layer(&mulv[..d], &w2, &b2, d, h, true);
        let logits = layer(&h2, &w3, &b3, h, m4, false);
        for i in 0..m {
            let dot: f64 = (0..dim)
                .map(|k| ue[u * dim + k] as f64 * ie[i * dim + k] as f64)
                .sum();
            got.push(dot as f32);
            want.push(logits[i] as f32);
        }
    }
    assert_close("multvae user·item = logit", &got, &want, 1e-5, 1e-5);
}

#[test]
fn multvae_loss_falls_and_it_beats_its_random_initialisation_on_the_embedded_dataset() {
    loss_falls_and_beats_random(&TrainConfig {
        model: ModelKind::Multvae,
        arch: "200,32".parse().unwrap(),
        sampler: SamplerKind::Users,
        dropout: 0.5,
        batch_size: 100,
        max_epochs: 6,
        ..bpr_train_config()
    });
}
