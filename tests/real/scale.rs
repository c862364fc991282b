//! A catalog the size of ML-20M (the synthetic `ml-20m` workload: 138,493 users, 26,744 items, 20 M
//! interactions; ignored unless `--include-ignored`, about 10 minutes on a 2-core machine with the
//! software driver): the data pipeline, the memory plan with chunked tables, three training steps of
//! CoBraR 512,64 and of BPR-MF 64, a full test evaluation of every user, and `export`. The times it
//! prints are the figures of BENCHMARKS.md's ML-20M section.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cobrar_gpu::data::{LoadOptions, load};
use cobrar_gpu::models::{Mode, ModelKind, model_for, session::memory_plan};
use cobrar_gpu::sampler::{Sampler, SamplerKind};
use cobrar_gpu::train::TrainConfig;

const USERS: usize = 138_493;

fn cli(args: &[&str], out: &Path) -> String {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_cobrar-gpu"))
        .env("NODEVICE_SELECT", "1")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{args:?}: {err}");
    eprintln!(
        "ml-20m: {} in {:.1} s",
        args[..6].join(" "),
        t.elapsed().as_secs_f64()
    );
    err
}

/// Trains `model` for three steps on the workload (no validation: the test ranking is the full
/// evaluation), then exports its embeddings; checks the test metrics and the exported shapes.
fn train_and_export(tmp: &Path, model: &str, arch: &str, dim: usize) {
    let run = tmp.join(model);
    let args = [
        "train",
        "--workload",
        "ml-20m",
        "--model",
        model,
        "--arch",
        arch,
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "3",
        "--no-validation",
        "--quiet",
    ];
    cli(&args, &run);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    let users = m["test"]["users"].as_u64().unwrap() as usize;
    assert!(
        users > USERS * 9 / 10 && users <= USERS,
        "{model}: {users} test users"
    );
    let ndcg = m["test"]["cutoffs"][0]["ndcg"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&ndcg), "{model}: NDCG {ndcg}");
    let file = tmp.join(format!("{model}.safetensors"));
    let args = ["export", "--checkpoint", run.to_str().unwrap(), "--quiet"];
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_cobrar-gpu"))
        .env("NODEVICE_SELECT", "1")
        .args(&args[..3])
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!(
        "ml-20m: export {model} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("users").unwrap().shape(), &[USERS, dim]);
    let items = st.tensor("items").unwrap().shape().to_vec();
    assert!(items[0] > 20_000 && items[1] == dim, "{items:?}");
}

#[test]
#[ignore = "ten minutes on a 2-core machine; CI runs it"]
fn an_ml_20m_sized_catalog_trains_evaluates_and_exports() {
    pipeline_and_memory_plan();
    let tmp = tempfile::tempdir().unwrap();
    train_and_export(tmp.path(), "cobrar", "512,64", 64);
}

/// BPR-MF 64 the same way (its tables are smaller and unchunked, its evaluation is the same full
/// ranking): left out of CI's run to keep it under its time budget (`.ci/run` skips it); run it with
/// `cargo test --release --test real -- --ignored ml_20m_bpr`.
#[test]
#[ignore = "five minutes on a 2-core machine"]
fn ml_20m_bpr_trains_evaluates_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    train_and_export(tmp.path(), "bpr", "64", 64);
}

fn pipeline_and_memory_plan() {
    // The pipeline: generate, 5-core, split.
    let t = Instant::now();
    let ds = load(&LoadOptions {
        workload: Some("ml-20m".into()),
        ..LoadOptions::default()
    })
    .unwrap();
    eprintln!(
        "ml-20m: pipeline {:.1} s: {} users, {} items, {} train",
        t.elapsed().as_secs_f64(),
        ds.n_users(),
        ds.n_items(),
        ds.train.nnz()
    );
    assert_eq!(ds.n_users(), USERS);
    // The memory plan of CoBraR 512,64: W_T (one row per user, 512 wide: 283 MB) is split into row
    // chunks wherever it passes the adapter's binding limit (lavapipe: 128 MiB).
    let ctx = crate::gpu();
    let cfg = TrainConfig {
        model: ModelKind::Cobrar,
        arch: "512,64".parse().unwrap(),
        dropout: 0.1,
        lr: 1e-3,
        weight_decay: 1e-3,
        mu: 1e-4,
        negatives: 5,
        batch_size: 256,
        sampler: SamplerKind::Alg1,
        max_epochs: 1,
        patience: 0,
        seed: 1,
        cutoffs: vec![5],
        select_k: 5,
        log_every: 1,
        max_steps_per_epoch: Some(3),
        no_validation: true,
        batch_index: Default::default(),
        layers: 3,
        anneal_cap: 0.2,
        anneal_steps: 200_000,
        loss: Default::default(),
        temperature: 1.0,
        optimizer: Default::default(),
        modality_dropout: 0.0,
    };
    let sampler = Sampler::new(SamplerKind::Alg1, &ds.train, ds.n_items(), 256, 5, 1).unwrap();
    let model = model_for(&cfg, &ds, sampler.max_pairs(), Default::default());
    let plan = memory_plan(&model, Mode::Train, &ctx).unwrap();
    let w_t = plan.layout.id("W_T");
    let bytes = (USERS * 512 * 4) as u64;
    let chunks = plan.layout.chunks(w_t);
    eprintln!(
        "ml-20m: CoBraR 512,64 plan: {:.2} GB on the GPU, W_T {bytes} bytes in {chunks} chunk(s) (binding limit {})",
        plan.gpu_bytes as f64 / 1e9,
        ctx.max_binding()
    );
    let rows_per_chunk = (ctx.max_binding() / (512 * 4)) as usize;
    assert_eq!(chunks, USERS.div_ceil(rows_per_chunk));
    assert!(bytes <= ctx.max_binding() || chunks >= 2);
}
