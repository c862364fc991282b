//! Training behaviour on the embedded dataset: the loss falls over a short run, and validation improves
//! on an untrained model.

use cobrar_gpu::data::{LoadOptions, load};
use cobrar_gpu::models::ModelKind;
use cobrar_gpu::sampler::SamplerKind;
use cobrar_gpu::train::{TrainConfig, train};

fn config(model: ModelKind, sampler: SamplerKind) -> TrainConfig {
    TrainConfig {
        model,
        arch: "64,32".parse().unwrap(),
        dropout: 0.0,
        lr: 1e-3,
        weight_decay: 1e-4,
        mu: 1e-4,
        negatives: 5,
        batch_size: 128,
        sampler,
        max_epochs: 3,
        patience: 0,
        seed: 3,
        cutoffs: vec![5, 10],
        select_k: 5,
        log_every: 8,
        max_steps_per_epoch: Some(40),
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

#[test]
fn loss_falls_on_the_embedded_dataset() {
    let ds = load(&LoadOptions::default()).unwrap();
    for (model, sampler) in [
        (ModelKind::Cobrar, SamplerKind::Alg1),
        (ModelKind::Deepmf, SamplerKind::Authors),
    ] {
        let cfg = config(model, sampler);
        let out = train(
            crate::common::gpu(),
            &ds,
            &cfg,
            false,
            None,
            &mut |_| Ok(()),
        )
        .unwrap();
        let losses: Vec<f64> = out.history.iter().map(|r| r.loss).collect();
        assert_eq!(losses.len(), 3);
        assert!(
            losses[2] < 0.9 * losses[0],
            "{model}: loss did not fall: {losses:?}"
        );
        let ndcg: Vec<f64> = out
            .history
            .iter()
            .map(|r| r.validation.as_ref().unwrap().at(5).unwrap().ndcg)
            .collect();
        assert!(ndcg.iter().all(|v| *v > 0.0), "{model}: {ndcg:?}");
        assert_eq!(
            out.best_epoch,
            1 + ndcg
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > ndcg[b] { i } else { b })
        );
    }
}
