//! Data pipeline speed: read, implicit, 5-core, re-index and split.
//!
//! `COBRAR_DATA_DIR=../shared/data cargo bench --bench data_pipeline`
//!
//! The ML-1M case (1,000,209 lines, gzip) is the target (well under 2 s in release). Without
//! `COBRAR_DATA_DIR` only the embedded synthetic dataset is measured.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use cobrar_gpu::data::{LoadOptions, load};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));

    group.bench_function("embedded synthetic (50k)", |b| {
        b.iter(|| black_box(load(&LoadOptions::default()).expect("embedded dataset")))
    });

    match std::env::var_os("COBRAR_DATA_DIR").map(PathBuf::from) {
        None => {
            println!("COBRAR_DATA_DIR is not set: skipping the ML-1M and Amazon Baby benchmarks")
        }
        Some(dir) => {
            let named = |name: &str| LoadOptions {
                dataset: Some(name.into()),
                data_dir: Some(dir.clone()),
                ..Default::default()
            };
            let ml1m = named("ml-1m");
            group.bench_function("ml-1m load+5-core+split (1M lines, gzip)", |b| {
                b.iter(|| black_box(load(&ml1m).expect("ml-1m")))
            });
            let baby = named("amazon-baby");
            group.bench_function("amazon-baby pre-split (139k lines)", |b| {
                b.iter(|| black_box(load(&baby).expect("amazon-baby")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
