//! Training steps per second on ML-1M (after 5-core) for the authors' released size (512/64) and the
//! paper's best ML-1M size (2048/128), with both samplers, on the adapter `COBRAR_ADAPTER` selects.
//! Batches are prepared before timing: this measures the GPU step (upload + all kernels + Adam).
//! `cobrar-gpu bench` measures the whole pipeline including the sampler thread.
//!
//!     COBRAR_DATA_DIR=/path/to/data cargo bench --bench train_steps

use std::time::{Duration, Instant};

use std::sync::Arc;

use cobrar_gpu::batch::HostBatch;
use cobrar_gpu::data::{LoadOptions, load};
use cobrar_gpu::gpu::GpuContext;
use cobrar_gpu::kernels::adam_dense::AdamConfig;
use cobrar_gpu::models::cobrar::{StepConfig, TwoTower};
use cobrar_gpu::models::session::gpu_session;
use cobrar_gpu::models::{Architecture, Mode, Model, ModelKind, Weights};
use cobrar_gpu::sampler::{Sampler, SamplerKind};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

fn train_steps(c: &mut Criterion) {
    let Some(data_dir) = std::env::var_os("COBRAR_DATA_DIR") else {
        eprintln!("train_steps: set COBRAR_DATA_DIR to the datasets folder to run this benchmark");
        return;
    };
    let opts = LoadOptions {
        dataset: Some("ml-1m".into()),
        data_dir: Some(data_dir.into()),
        ..LoadOptions::default()
    };
    let ds = load(&opts).expect("ML-1M");
    let mut group = c.benchmark_group("ml-1m train step");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let ctx = Arc::new(GpuContext::from_flag(None).expect("a GPU adapter"));
    for arch in ["512,64", "2048,128"] {
        for sampler_kind in [SamplerKind::Alg1, SamplerKind::Authors] {
            let arch: Architecture = arch.parse().unwrap();
            let sampler = Sampler::new(sampler_kind, &ds.train, ds.n_items(), 256, 5, 1).unwrap();
            let cfg = StepConfig {
                mu: 1e-4,
                dropout: 0.1,
                adam: AdamConfig::new(1e-4, 1e-3),
                seed: 1,
                loss: Default::default(),
                optimizer: Default::default(),
            };
            let model = TwoTower::new(
                ModelKind::Cobrar,
                arch.clone(),
                cfg,
                &ds.train,
                &ds.train_by_item,
                sampler.max_pairs(),
            );
            let batches: Vec<HostBatch> = sampler
                .epoch(1)
                .take(32)
                .map(|p| model.build_batch(&p))
                .collect();
            let w = Weights::init(model.params(), 1);
            let mut session =
                gpu_session(ctx.clone(), model, Mode::Train, &w, None).expect("session");
            for b in &batches[..4] {
                session.step(b, false).unwrap(); // shader compilation
            }
            session.exec.wait().unwrap();
            let name = format!("cobrar {arch} {sampler_kind:?}");
            group.bench_function(name, |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        session.step(&batches[i % batches.len()], false).unwrap();
                    }
                    session.exec.wait().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
