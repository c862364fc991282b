//! Training steps per second on ML-1M (after 5-core) for the authors' released size (512/64) and the
//! paper's best ML-1M size (2048/128), with both samplers, on the adapter `COBRAR_ADAPTER` selects.
//! Batches are prepared before timing: this measures the GPU step (upload + all kernels + Adam).
//! `cobrar-gpu bench` measures the whole pipeline including the sampler thread.
//!
//!     COBRAR_DATA_DIR=/path/to/data cargo bench --bench train_steps

use std::time::{Duration, Instant};

use cobrar_gpu::batch::HostBatch;
use cobrar_gpu::data::{LoadOptions, load};
use cobrar_gpu::gpu::GpuContext;
use cobrar_gpu::kernels::adam_dense::AdamConfig;
use cobrar_gpu::model::engine::{Engine, EngineOptions};
use cobrar_gpu::model::{Architecture, Layout, ModelKind, ModelParams, StepConfig};
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
    for arch in ["512,64", "2048,128"] {
        for sampler_kind in [SamplerKind::Alg1, SamplerKind::Authors] {
            let arch: Architecture = arch.parse().unwrap();
            let layout = Layout::new(ModelKind::Cobrar, &arch, ds.n_users(), ds.n_items());
            let sampler = Sampler::new(sampler_kind, &ds.train, ds.n_items(), 256, 5, 1).unwrap();
            let batches: Vec<HostBatch> = sampler
                .epoch(1)
                .take(32)
                .map(|p| HostBatch::build(&p, &ds.train, &ds.train_by_item))
                .collect();
            let cfg = StepConfig {
                mu: 1e-4,
                dropout: 0.1,
                adam: AdamConfig::new(1e-4, 1e-3),
                seed: 1,
            };
            let ctx = GpuContext::from_flag(None).expect("a GPU adapter");
            let eopts = EngineOptions {
                max_pairs: sampler.max_pairs(),
                chunk_rows: None,
            };
            let mut engine = Engine::new(
                ctx,
                &ModelParams::init(&layout, 1),
                &ds.train,
                &ds.train_by_item,
                cfg,
                eopts,
            )
            .expect("engine");
            for b in &batches[..4] {
                engine.step(b).unwrap(); // shader compilation
            }
            engine.wait().unwrap();
            let name = format!("cobrar {arch} {sampler_kind:?}");
            group.bench_function(name, |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        engine.step(&batches[i % batches.len()]).unwrap();
                    }
                    engine.wait().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
