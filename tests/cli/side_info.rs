//! CoBraR with side information (`--model cobrar-si`) end to end on the embedded dataset with generic
//! feature files: train (with modality dropout), the run directory's copy of the features, evaluate,
//! recommend and export from the directory alone, the checkpoint's shapes, and the errors.

use std::path::Path;

use crate::common::{error_line, run, stderr, stdout, train_small};

/// Feature files over the embedded ids (2000 users u0001…, 1000 items i0001…): users in 5 groups,
/// items in 7 categories and 3 tiers; a line for an id the data does not have, and a comment.
pub(crate) fn feature_files(dir: &Path) -> (String, String) {
    let users = dir.join("users.tsv");
    let items = dir.join("items.tsv");
    let mut u = String::from("# user<TAB>feature\n");
    for k in 1..=2000 {
        u.push_str(&format!("u{k:04}\tgroup={}\n", k % 5));
    }
    u.push_str("nobody\tgroup=9\n");
    let mut i = String::new();
    for k in 1..=1000 {
        i.push_str(&format!(
            "i{k:04}\tcat={}\ni{k:04}\ttier={}\n",
            k % 7,
            k % 3
        ));
    }
    std::fs::write(&users, u).unwrap();
    std::fs::write(&items, i).unwrap();
    (users.display().to_string(), items.display().to_string())
}

#[test]
fn cobrar_si_trains_on_feature_files_and_serves_from_its_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (users, items) = feature_files(tmp.path());
    let dir = tmp.path().join("si");
    let o = train_small(
        &dir,
        &[
            "--model",
            "cobrar-si",
            "--user-features",
            &users,
            "--item-features",
            &items,
            "--modality-dropout",
            "0.5",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = dir.display().to_string();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["model"], "cobrar-si");
    assert_eq!(config["train"]["modality_dropout"], 0.5);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    let ndcg = m["test"]["cutoffs"][0]["ndcg"].as_f64().unwrap();
    assert!(ndcg > 0.0, "test NDCG {ndcg}");

    // The run keeps its features: every item line (the data's 999 items after the 5-core), the users'
    // without the unknown id, each after its source line.
    let saved = std::fs::read_to_string(dir.join("features/items.tsv")).unwrap();
    assert!(saved.starts_with("# source: "), "{saved:.80}");
    assert_eq!(
        saved.lines().filter(|l| !l.starts_with('#')).count(),
        2 * 999
    );
    for f in cobrar_gpu::rundir::RUN_ENTRIES {
        assert_eq!(dir.join(f).exists(), *f != "state", "{f}");
    }
    let saved_users = std::fs::read_to_string(dir.join("features/users.tsv")).unwrap();
    assert!(!saved_users.contains("nobody"));

    // The checkpoint's projections: W_U over items + 5 user features, W_T over users + 10 item ones.
    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let head: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    let shape = |name: &str| -> Vec<u64> {
        head[name]["shape"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} in the checkpoint"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert!(
        shape("user_projection.weight").contains(&(999 + 5)),
        "{:?}",
        shape("user_projection.weight")
    );
    assert!(shape("item_projection.weight").contains(&(2000 + 10)));
    assert!(head.get("branch.0.weight").is_some());

    // evaluate, recommend and export rebuild the model from the directory alone.
    let o = run(&["evaluate", "--checkpoint", &d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let again = e["test"]["cutoffs"][0]["ndcg"].as_f64().unwrap();
    assert!((again - ndcg).abs() < 1e-9, "{again} vs {ndcg}");
    let o = run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--user",
        "u0001",
        "-k",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1 + 5);
    let emb = tmp.path().join("emb.safetensors");
    let o = run(&["export", "--checkpoint", &d, "--out", emb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = std::fs::read(&emb).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let head: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    assert_eq!(head["items"]["shape"], serde_json::json!([999, 16]));

    // The label names the modality dropout.
    let o = run(&["compare", &d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("cobrar-si 32,16 md=0.5"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn cobrar_si_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, items) = feature_files(tmp.path());
    let out = tmp.path().join("run");
    let o = out.display().to_string();
    let train = |extra: &[&str]| {
        let mut a = vec!["train", "--epochs", "1", "--quiet", "--out", &o];
        a.extend(extra);
        run(&a)
    };
    // No side information.
    let line = error_line(&train(&["--model", "cobrar-si"]));
    assert!(line.contains("--item-features"), "{line}");
    // builtin needs MovieLens's files beside the ratings.
    let line = error_line(&train(&[
        "--model",
        "cobrar-si",
        "--item-features",
        "builtin",
    ]));
    assert!(line.contains("--item-features builtin"), "{line}");
    // A malformed feature file: file and line.
    let bad = tmp.path().join("bad.tsv");
    std::fs::write(&bad, "i0001\tcat=1\ni0002 cat=2\n").unwrap();
    let b = bad.display().to_string();
    let line = error_line(&train(&["--model", "cobrar-si", "--item-features", &b]));
    assert!(
        line.contains("bad.tsv:2: expected item<TAB>feature"),
        "{line}"
    );
    // Modality dropout: a probability, and only cobrar-si's.
    let line = error_line(&train(&[
        "--model",
        "cobrar-si",
        "--item-features",
        &items,
        "--modality-dropout",
        "1.5",
    ]));
    assert!(line.contains("--modality-dropout"), "{line}");
    let line = error_line(&train(&["--model", "cobrar", "--modality-dropout", "0.3"]));
    assert!(line.contains("CoBraR+SI's"), "{line}");
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}
