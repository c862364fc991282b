//! Cold start end to end on the embedded dataset with generic feature files: `data split
//! --cold-start items` (the cold set and the features kept in the split directory), cobrar-si and
//! CoBraR trained on it, `evaluate`'s warm and cold halves — the model's cold metrics recomputed here
//! from `export`'s embeddings, CoBraR reported as unable, the floors scored — and held-out users.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::common::{error_line, run, stderr, stdout, train_small};
use super::recommend::read_npy;
use super::side_info::feature_files;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `user<TAB>item` lines as pairs.
fn pairs(path: &Path) -> Vec<(String, String)> {
    lines(path)
        .iter()
        .map(|l| {
            let (u, i) = l.split_once('\t').unwrap();
            (u.to_string(), i.to_string())
        })
        .collect()
}

/// `data split --out dir` with `args`, which must succeed.
fn data_split(dir: &str, args: &[&str]) -> std::process::Output {
    let o = run(&[&["data", "split", "--out", dir][..], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

/// A half's row for `scorer` (its metrics, or its reason).
fn row<'a>(half: &'a serde_json::Value, scorer: &str) -> &'a serde_json::Value {
    half["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scorer"].as_str().unwrap().starts_with(scorer))
        .unwrap_or_else(|| panic!("no row {scorer} in {half}"))
}

fn at(m: &serde_json::Value, k: u64, name: &str) -> f64 {
    m["metrics"]["cutoffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["k"] == k)
        .unwrap()[name]
        .as_f64()
        .unwrap()
}

#[test]
fn held_out_items_are_ranked_apart_and_only_a_feature_model_scores_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (users, items) = feature_files(tmp.path());
    let (split, s) = (
        tmp.path().join("split"),
        tmp.path().join("split").display().to_string(),
    );
    let o = data_split(
        &s,
        &[
            "--cold-start",
            "items",
            "--cold-ratio",
            "0.2",
            "--item-features",
            &items,
        ],
    );
    assert!(
        stdout(&o).contains("cold start: 200 items held out"),
        "{}",
        stdout(&o)
    );

    // 999 items after the 5-core: 999 − floor(0.8·999) = 200 held out, none in train or validation,
    // every interaction of theirs in test.
    let cold: HashSet<String> = lines(&split.join("cold_items.txt")).into_iter().collect();
    assert_eq!(cold.len(), 200);
    for part in ["train.tsv", "val.tsv"] {
        assert!(
            pairs(&split.join(part))
                .iter()
                .all(|(_, i)| !cold.contains(i)),
            "{part}"
        );
    }
    let test = pairs(&split.join("test.tsv"));
    let cold_test: Vec<&(String, String)> = test.iter().filter(|(_, i)| cold.contains(i)).collect();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(split.join("split.json")).unwrap()).unwrap();
    let recorded = &info["pipeline"]["split"]["cold_start"];
    assert_eq!(recorded["side"], "items");
    assert_eq!(recorded["entities"], 200);
    assert_eq!(recorded["ratio"], 0.2);
    assert_eq!(recorded["test_interactions"], cold_test.len());
    assert!(split.join("item_features.tsv").exists());

    // cobrar-si on the split directory: `builtin` reads the features data split kept.
    let si = tmp.path().join("si");
    let o = train_small(
        &si,
        &[
            "--dataset",
            &s,
            "--model",
            "cobrar-si",
            "--item-features",
            "builtin",
            "--user-features",
            &users,
            "--modality-dropout",
            "0.5",
            "--cutoffs",
            "5,20",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let sid = si.display().to_string();
    let e = json(&run(&["evaluate", "--checkpoint", &sid, "--json"]));
    let c = &e["cold_start"];
    assert_eq!(c["side"], "items");
    assert_eq!(c["entities"], 200);
    let (warm, coldh) = (&c["halves"][0], &c["halves"][1]);
    assert_eq!(
        (warm["name"].as_str(), coldh["name"].as_str()),
        (Some("warm"), Some("cold"))
    );
    assert_eq!(warm["candidates"], 799);
    assert_eq!(coldh["candidates"], 200);
    assert_eq!(coldh["interactions"], cold_test.len());
    assert_eq!(
        warm["interactions"].as_u64().unwrap() + coldh["interactions"].as_u64().unwrap(),
        test.len() as u64
    );

    // The cold half recomputed from the exported embeddings: each user with held-out test items ranks
    // the 200 held-out items by max(cos, μ) (ties: lower dense index), NDCG@5, Recall@20, Coverage@20.
    let emb = tmp.path().join("emb.safetensors");
    let o = run(&[
        "export",
        "--checkpoint",
        &sid,
        "--out",
        &emb.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, dim, ue) = read_npy(&tmp.path().join("emb.users.npy"));
    let (_, _, ie) = read_npy(&tmp.path().join("emb.items.npy"));
    let user_ids = lines(&tmp.path().join("emb.users.txt"));
    let item_ids = lines(&tmp.path().join("emb.items.txt"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(si.join("config.json")).unwrap()).unwrap();
    let mu = config["train"]["mu"].as_f64().unwrap();
    let uidx: HashMap<&str, usize> = user_ids
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k))
        .collect();
    let candidates: Vec<usize> = (0..item_ids.len())
        .filter(|&i| cold.contains(&item_ids[i]))
        .collect();
    let mut truth: HashMap<usize, HashSet<&str>> = HashMap::new();
    for (u, i) in &cold_test {
        truth
            .entry(uidx[u.as_str()])
            .or_default()
            .insert(i.as_str());
    }
    let (mut ndcg5, mut recall20) = (0.0, 0.0);
    let mut covered = HashSet::new();
    for (&u, rel) in &truth {
        let mut scored: Vec<(f64, usize)> = candidates
            .iter()
            .map(|&i| {
                let dot: f64 = (0..dim)
                    .map(|d| ue[u * dim + d] as f64 * ie[i * dim + d] as f64)
                    .sum();
                (dot.max(mu), i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let hit = |r: usize| rel.contains(item_ids[scored[r].1].as_str());
        let dcg: f64 = (0..5)
            .filter(|&r| hit(r))
            .map(|r| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        let idcg: f64 = (0..rel.len().min(5))
            .map(|r| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        ndcg5 += dcg / idcg;
        recall20 += (0..20).filter(|&r| hit(r)).count() as f64 / rel.len() as f64;
        covered.extend(scored[..20].iter().map(|s| s.1));
    }
    let n = truth.len() as f64;
    let model = row(coldh, "cobrar-si");
    assert_eq!(coldh["users"], truth.len());
    assert!(
        (at(model, 5, "ndcg") - ndcg5 / n).abs() < 1e-9,
        "{model} vs {}",
        ndcg5 / n
    );
    assert!(
        (at(model, 20, "recall") - recall20 / n).abs() < 1e-9,
        "{model}"
    );
    assert_eq!(at(model, 20, "coverage") as usize, covered.len());
    assert!(at(row(warm, "cobrar-si"), 5, "ndcg") > 0.0);
    // The floors are scored on both halves; the feature one from the items' features.
    for h in [warm, coldh] {
        for floor in ["mostpop (floor)", "feature popularity (floor)"] {
            assert!(row(h, floor)["metrics"].is_object(), "{floor} in {h}");
        }
    }
    let text = stdout(&run(&["evaluate", "--checkpoint", &sid]));
    assert!(
        text.contains("cold start: 200 items held out (ratio 0.2)"),
        "{text}"
    );
    assert!(text.contains("cold feature popularity (floor)"), "{text}");

    // CoBraR on the same split: warm scored, cold reported as impossible, not scored.
    let co = tmp.path().join("co");
    let o = train_small(&co, &["--dataset", &s, "--cutoffs", "5,20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = json(&run(&[
        "evaluate",
        "--checkpoint",
        &co.display().to_string(),
        "--json",
    ]));
    let coldh = &e["cold_start"]["halves"][1];
    let model = row(coldh, "cobrar");
    assert!(model["metrics"].is_null());
    assert!(
        model["not_scored"]
            .as_str()
            .unwrap()
            .contains("cannot embed them"),
        "{model}"
    );
    assert!(row(&e["cold_start"]["halves"][0], "cobrar")["metrics"].is_object());
    // Without features in the run, the feature floor says what it needs.
    assert!(
        row(coldh, "feature popularity")["not_scored"]
            .as_str()
            .unwrap()
            .contains("--item-features"),
        "{coldh}"
    );

    // A split directory is split already; ratios outside (0, 1) are refused.
    let o = run(&["data", "stats", "--dataset", &s, "--cold-start", "users"]);
    assert!(
        error_line(&o).contains("is already split"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "data",
        "stats",
        "--cold-start",
        "items",
        "--cold-ratio",
        "1",
    ]);
    assert!(
        error_line(&o).contains("--cold-ratio must be above 0 and below 1"),
        "{}",
        stderr(&o)
    );
}

/// A cold file must name entities of the split that have no training or validation record; a
/// rewritten split directory keeps no cold file of an earlier split.
#[test]
fn cold_files_are_checked_and_never_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (split, s) = (
        tmp.path().join("split"),
        tmp.path().join("split").display().to_string(),
    );
    data_split(&s, &["--cold-start", "users", "--cold-ratio", "0.1"]);
    let cold_users = split.join("cold_users.txt");
    let original = std::fs::read_to_string(&cold_users).unwrap();
    assert!(
        stdout(&run(&["data", "stats", "--dataset", &s]))
            .contains("users held out entirely (ratio 0.1)")
    );

    let trained_user = pairs(&split.join("train.tsv"))[0].0.clone();
    for (text, want) in [
        (
            format!("{original}nobody\n"),
            "held-out user \"nobody\" is in none of the split's three files",
        ),
        (
            format!("{original}{trained_user}\n"),
            "has training interactions",
        ),
        ("# nothing\n".to_string(), "names no users"),
    ] {
        std::fs::write(&cold_users, text).unwrap();
        let o = run(&["data", "stats", "--dataset", &s]);
        assert!(!o.status.success());
        let line = error_line(&o);
        assert!(
            line.contains("cold_users.txt") || line.contains("held-out"),
            "{line}"
        );
        assert!(line.contains(want), "{line}");
    }
    std::fs::write(&cold_users, &original).unwrap();
    std::fs::write(split.join("cold_items.txt"), "i0001\n").unwrap();
    assert!(error_line(&run(&["data", "stats", "--dataset", &s])).contains("not both"));

    // Rewriting the directory as an ordinary split removes both cold files.
    data_split(&s, &["--overwrite"]);
    assert!(!cold_users.exists() && !split.join("cold_items.txt").exists());
    let o = run(&["data", "stats", "--cold-ratio", "0.3"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--cold-start <items|users>"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn held_out_users_are_embedded_from_their_features() {
    let tmp = tempfile::tempdir().unwrap();
    let (users, _) = feature_files(tmp.path());
    let dir = tmp.path().join("u");
    let o = train_small(
        &dir,
        &[
            "--cold-start",
            "users",
            "--cold-ratio",
            "0.1",
            "--model",
            "cobrar-si",
            "--user-features",
            &users,
            "--cutoffs",
            "5,20",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cold = lines(&dir.join("split/cold_users.txt"));
    let train: HashSet<String> = pairs(&dir.join("split/train.tsv"))
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert!(cold.iter().all(|u| !train.contains(u)));
    let e = json(&run(&[
        "evaluate",
        "--checkpoint",
        &dir.display().to_string(),
        "--json",
    ]));
    let c = &e["cold_start"];
    assert_eq!(c["side"], "users");
    assert_eq!(c["entities"], cold.len());
    let coldh = &c["halves"][1];
    assert_eq!(
        coldh["users"],
        cold.len(),
        "every held-out user has test items"
    );
    assert_eq!(coldh["candidates"], c["halves"][0]["candidates"]);
    let m = row(coldh, "cobrar-si");
    assert!(at(m, 20, "recall") > 0.0, "{m}");
    assert!(row(coldh, "feature popularity")["metrics"].is_object());
}
