//! The binary end to end on the software (or real) adapter: `adapters`, adapter errors, a short `train`
//! on the embedded dataset and the run directory it writes, `evaluate`, `recommend`, `compare`, `grid`,
//! and one-line errors for bad input.

use crate::common::{bin, error_line, run, stderr, stdout, train_small};

#[test]
fn adapters_lists_and_selects() {
    let o = run(&["adapters"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("backend:") && text.contains("max storage binding:"),
        "{text}"
    );
    let o = run(&["adapters", "--adapter", "vulkan"]);
    assert!(
        o.status.success(),
        "a Vulkan adapter is required for the tests: {}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("selected: "), "{}", stdout(&o));
    let o = run(&["adapters", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(list.as_array().is_some_and(|a| !a.is_empty()));
    // By position in the list (identical GPUs share a name): the first is index 0.
    let o = run(&["adapters", "--adapter", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = list[0]["name"].as_str().unwrap();
    assert!(
        stdout(&o).contains(&format!("selected: {name}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("index:          0 (--adapter 0)"));
    let n = list.as_array().unwrap().len();
    let line = error_line(&run(&["adapters", "--adapter", &n.to_string()]));
    assert!(line.contains("no adapter matches --adapter"), "{line}");
}

#[test]
fn unknown_adapter_lists_the_real_ones() {
    let o = run(&["adapters", "--adapter", "nosuch"]);
    let line = error_line(&o);
    assert!(
        line.contains("no adapter matches --adapter \"nosuch\"")
            && line.contains("adapters found:"),
        "{line}"
    );
    assert_eq!(o.status.code(), Some(2));
    let o = bin()
        .args(["train", "--epochs", "1"])
        .env("COBRAR_ADAPTER", "nosuch")
        .output()
        .unwrap();
    assert!(error_line(&o).contains("adapters found:"));
}

#[test]
fn train_writes_a_complete_run_directory_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = train_small(&dir, &[]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("NDCG") && out.contains("best epoch"), "{out}");
    assert!(
        stderr(&o).contains("parameters: user projection"),
        "parameter counts are printed"
    );
    // Every entry a run directory documents is there (the resumable state goes when a run finishes;
    // `features/` is only a side-information run's).
    for f in cobrar_gpu::rundir::RUN_ENTRIES {
        let expected = !matches!(*f, "state" | "features");
        assert_eq!(dir.join(f).exists(), expected, "{f}");
    }
    for f in [
        "split/train.tsv",
        "split/val.tsv",
        "split/test.tsv",
        "ids/users.txt",
        "ids/items.txt",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(
        !dir.join(cobrar_gpu::rundir::LOCK_FILE).exists(),
        "the lock outlived the run"
    );
    let log = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["loss"].as_f64().unwrap() > 0.0 && first["steps_per_s"].as_f64().unwrap() > 0.0);
    assert!(first["validation"]["cutoffs"][0]["ndcg"].is_number());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["dataset"], "synthetic");
    assert_eq!(m["test"]["cutoffs"].as_array().unwrap().len(), 3);
    assert!(m["adapter"]["name"].is_string() && m["git_revision"].is_string());
    let recs = std::fs::read_to_string(dir.join("recommendations.tsv")).unwrap();
    assert!(recs.starts_with("user\trank\titem\tscore\n"));
    assert_eq!(recs.lines().nth(1).unwrap().split('\t').nth(1), Some("1"));

    // evaluate reproduces the test metrics from the saved weights and split.
    let d = dir.display().to_string();
    let o = run(&["evaluate", "--checkpoint", &d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, b) = (
        &e["test"]["cutoffs"][0]["ndcg"],
        &m["test"]["cutoffs"][0]["ndcg"],
    );
    assert!(
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
        "{a} vs {b}"
    );

    // recommend prints original ids, never a training item of the user.
    let o = run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--user",
        "u0001",
        "-k",
        "7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let train = std::fs::read_to_string(dir.join("split/train.tsv")).unwrap();
    let seen: Vec<&str> = train
        .lines()
        .filter_map(|l| l.strip_prefix("u0001\t"))
        .collect();
    let items: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(2).unwrap())
        .collect();
    assert_eq!(items.len(), 7);
    assert!(
        items
            .iter()
            .all(|i| i.starts_with('i') && !seen.contains(i))
    );
    let all = tmp.path().join("all.tsv");
    let o = run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--all",
        "-k",
        "3",
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&all).unwrap().lines().count(),
        1 + 3 * 2000
    );
    let line = error_line(&run(&["recommend", "--checkpoint", &d, "--user", "nobody"]));
    assert!(line.contains("\"nobody\""), "{line}");

    // export writes both sides' embeddings with their original ids, L2-normalised (cosine model).
    let emb = tmp.path().join("serve").join("emb.safetensors");
    let o = run(&["export", "--checkpoint", &d, "--out", emb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("L2-normalised"), "{}", stderr(&o));
    let serve = tmp.path().join("serve");
    let ids = std::fs::read_to_string(serve.join("emb.users.txt")).unwrap();
    assert_eq!(
        ids,
        std::fs::read_to_string(dir.join("ids/users.txt")).unwrap()
    );
    let npy = std::fs::read(serve.join("emb.items.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..80]).into_owned();
    assert!(header.contains("'shape': (999, 16)"), "{header}");
    let st = std::fs::read(&emb).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let head: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    assert_eq!(head["users"]["shape"], serde_json::json!([2000, 16]));
    assert_eq!(head["items"]["dtype"], "F32");

    // A DeepMF run on the same data, then the Table 2 comparison with both.
    let dir2 = tmp.path().join("deepmf");
    let o = train_small(&dir2, &["--model", "deepmf"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["compare", &d, dir2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("cobrar 32,16") && table.contains("deepmf 32,16"),
        "{table}"
    );
}

#[test]
fn baselines_train_evaluate_recommend_export_and_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let (bpr, pop) = (tmp.path().join("bpr"), tmp.path().join("mostpop"));
    let o = run(&[
        "train",
        "--model",
        "bpr",
        "--arch",
        "16",
        "--epochs",
        "2",
        "--lr",
        "5e-3",
        "--quiet",
        "--out",
        bpr.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lgcn = tmp.path().join("lightgcn");
    let o = run(&[
        "train",
        "--model",
        "lightgcn",
        "--arch",
        "8",
        "--layers",
        "2",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "10",
        "--quiet",
        "--out",
        lgcn.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let vae = tmp.path().join("multvae");
    let o = run(&[
        "train",
        "--model",
        "multvae",
        "--arch",
        "40,8",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        vae.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "train",
        "--model",
        "mostpop",
        "--quiet",
        "--out",
        pop.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("mostpop on synthetic: best epoch 1 of 1"),
        "{}",
        stdout(&o)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bpr.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["sampler"], "bpr");
    assert_eq!(config["parameters"]["total"], (2000 + 999) * 16);

    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vae.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["sampler"], "users");
    assert_eq!(config["train"]["dropout"], 0.5);
    // Encoder 999·40 + 40 and 40·16 + 16, decoder 8·40 + 40 and 40·999 + 999.
    let want = 999 * 40 + 40 + 40 * 16 + 16 + 8 * 40 + 40 + 40 * 999 + 999;
    assert_eq!(config["parameters"]["total"], want);

    for dir in [&bpr, &lgcn, &vae, &pop] {
        let d = dir.to_str().unwrap();
        // evaluate reproduces the run's own test metrics from the checkpoint.
        let o = run(&["evaluate", "--checkpoint", d, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
        let e: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let ndcg = |v: &serde_json::Value| v["test"]["cutoffs"][0]["ndcg"].as_f64().unwrap();
        assert!(
            (ndcg(&m) - ndcg(&e)).abs() < 1e-9,
            "{d}: {} vs {}",
            ndcg(&m),
            ndcg(&e)
        );
        let o = run(&["recommend", "--checkpoint", d, "--user", "u0001", "-k", "5"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 6, "{}", stdout(&o));
        // Dot-product models export their embeddings as they are.
        let out = dir.join("emb.safetensors");
        let o = run(&["export", "--checkpoint", d, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains("L2-normalised"), "{}", stderr(&o));
    }
    // MostPop's items are the most popular in training, for every user alike (minus their own).
    let o = run(&[
        "recommend",
        "--checkpoint",
        pop.to_str().unwrap(),
        "--user",
        "u0001",
        "-k",
        "3",
    ]);
    let text = stdout(&o);
    let train = std::fs::read_to_string(pop.join("split/train.tsv")).unwrap();
    let mut counts = std::collections::BTreeMap::<&str, i64>::new();
    let mut seen = Vec::new();
    for l in train.lines() {
        let mut f = l.split('\t');
        let (u, i) = (f.next().unwrap(), f.next().unwrap());
        *counts.entry(i).or_default() += 1;
        if u == "u0001" {
            seen.push(i);
        }
    }
    let mut by_pop: Vec<(i64, &str)> = counts
        .iter()
        .filter(|(i, _)| !seen.contains(i))
        .map(|(i, c)| (-c, *i))
        .collect();
    by_pop.sort();
    let got: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(2).unwrap())
        .collect();
    let want: Vec<&str> = by_pop.iter().take(3).map(|p| p.1).collect();
    assert_eq!(got, want, "{text}");
    let runs = [&pop, &bpr, &lgcn, &vae].map(|d| d.to_str().unwrap());
    let o = run(&[&["compare"][..], &runs[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("mostpop")
            && table.contains("bpr 16")
            && table.contains("lightgcn 8 K=2")
            && table.contains("multvae 40,8"),
        "{table}"
    );

    let line = error_line(&run(&["train", "--model", "bpr", "--arch", "512,64"]));
    assert!(line.contains("one width"), "{line}");
    let line = error_line(&run(&["train", "--model", "bpr", "--sampler", "alg1"]));
    assert!(line.contains("--sampler alg1"), "{line}");
    let line = error_line(&run(&["train", "--model", "cobrar", "--arch", "64"]));
    assert!(line.contains("projection width"), "{line}");
    let line = error_line(&run(&["train", "--model", "lightgcn", "--layers", "9"]));
    assert!(line.contains("--layers"), "{line}");
    let line = error_line(&run(&["train", "--model", "bpr", "--layers", "2"]));
    assert!(line.contains("--layers is LightGCN's"), "{line}");
    let line = error_line(&run(&["train", "--model", "multvae", "--arch", "64"]));
    assert!(line.contains("hidden layer and the latent size"), "{line}");
    let line = error_line(&run(&["train", "--model", "multvae", "--sampler", "bpr"]));
    assert!(line.contains("multvae on users"), "{line}");
    let line = error_line(&run(&["train", "--model", "bpr", "--anneal-cap", "0.1"]));
    assert!(line.contains("MultVAE's"), "{line}");
}

#[test]
fn bad_input_gives_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.dat");
    let line = error_line(&run(&["train", "--dataset", missing.to_str().unwrap()]));
    assert!(line.contains("missing.dat"), "{line}");
    let line = error_line(&run(&["train", "--arch", "100,50"]));
    assert!(line.contains("multiple of 4"), "{line}");
    let line = error_line(&run(&["train", "--model", "deepmf", "--dropout", "0.5"]));
    assert!(line.contains("without dropout"), "{line}");
    let line = error_line(&run(&[
        "evaluate",
        "--checkpoint",
        tmp.path().to_str().unwrap(),
    ]));
    assert!(line.contains("not a run directory"), "{line}");
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, "[grid]\nlr = [1e-3]\nnosuchflag = [1]\n").unwrap();
    let line = error_line(&run(&[
        "grid",
        "--config",
        grid.to_str().unwrap(),
        "--dry-run",
    ]));
    assert!(
        line.contains("grid.toml") && line.contains("nosuchflag"),
        "{line}"
    );
}

#[test]
fn grid_runs_every_combination_and_selects_on_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("grid.toml");
    std::fs::write(
        &grid,
        "[train]\narch = \"16,8\"\nepochs = 1\nmax-steps-per-epoch = 5\n\n[grid]\nlr = [1e-3, 1e-4]\ndropout = [0.0, 0.5]\n",
    )
    .unwrap();
    let out = tmp.path().join("g");
    let o = run(&[
        "grid",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("grid_results.md")).unwrap();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| run-")).count(),
        4,
        "{md}"
    );
    assert!(md.contains("selected (best validation NDCG@5)"));
    for n in 1..=4 {
        assert!(out.join(format!("run-{n:03}/metrics.json")).is_file());
    }
}

/// `--optimizer lazy-adam`: the models whose embedding tables take row-gathered Adam steps; one line
/// for the others, and for a value that is not an optimizer.
#[test]
fn the_optimizer_flag_is_checked() {
    for model in ["multvae", "lightgcn", "mostpop"] {
        let line = error_line(&run(&[
            "train",
            "--model",
            model,
            "--optimizer",
            "lazy-adam",
        ]));
        assert!(
            line.contains(&format!("--optimizer does not apply to {model}")),
            "{line}"
        );
    }
    let o = run(&["train", "--optimizer", "sgd"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("possible values: adam, lazy-adam"),
        "{}",
        stderr(&o)
    );
}

/// `--loss` and `--temperature`: CoBraR's and DeepMF's, with the bpr sampler; one line otherwise.
#[test]
fn the_pairwise_loss_flags_are_checked() {
    let line = error_line(&run(&["train", "--model", "bpr", "--loss", "bpr"]));
    assert!(line.contains("--loss does not apply to bpr"), "{line}");
    let line = error_line(&run(&["train", "--model", "cobrar", "--temperature", "2"]));
    assert!(
        line.contains("--temperature is the pairwise loss's"),
        "{line}"
    );
    let line = error_line(&run(&[
        "train",
        "--model",
        "cobrar",
        "--loss",
        "bpr",
        "--sampler",
        "alg1",
    ]));
    assert!(
        line.contains("--loss bpr trains on the bpr sampler's"),
        "{line}"
    );
    let line = error_line(&run(&[
        "train",
        "--model",
        "deepmf",
        "--loss",
        "bpr",
        "--temperature",
        "0",
    ]));
    assert!(
        line.contains("--temperature") && line.contains("(0, 100]"),
        "{line}"
    );
}
