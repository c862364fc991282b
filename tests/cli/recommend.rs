//! `recommend --include-train`: every item ranked, a user's training items included, with the lists
//! and scores a plain CPU ranking of `export`'s embeddings gives under the model's scorer (a cosine
//! model exports L2-normalised rows: its score is their inner product, clamped at μ); without the flag
//! the same ranking minus the training items, which never appear.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::common::{run, stderr, stdout, train_small};

/// A `.npy` file of float32 rows: (rows, columns, values).
pub(crate) fn read_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let (len, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(&b[start..start + len]).into_owned();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let dims: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let values: Vec<f32> = b[start + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), dims[0] * dims[1]);
    (dims[0], dims[1], values)
}

/// `recommend`'s TSV as (user, [(item, score)]) in file order.
fn lists(tsv: &str) -> Vec<(String, Vec<(String, f64)>)> {
    let mut out: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (user, rank, item, score) = (f[0], f[1], f[2], f[3].parse::<f64>().unwrap());
        if rank == "1" {
            out.push((user.to_string(), Vec::new()));
        }
        let last = out.last_mut().unwrap();
        assert_eq!(last.0, user);
        assert_eq!(rank, (last.1.len() + 1).to_string());
        last.1.push((item.to_string(), score));
    }
    out
}

/// Checks `run_dir`'s `recommend --all -k K` with and without `--include-train` against a CPU ranking
/// of its exported embeddings; returns how many training items the unfiltered lists hold.
fn check_run(run_dir: &Path, cosine: bool) -> usize {
    let d = run_dir.to_str().unwrap();
    let k = 20;
    let emb = run_dir.join("export").join("emb.safetensors");
    let o = run(&["export", "--checkpoint", d, "--out", emb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = emb.parent().unwrap();
    let (n_users, dim, ue) = read_npy(&dir.join("emb.users.npy"));
    let (n_items, dim2, ie) = read_npy(&dir.join("emb.items.npy"));
    assert_eq!(dim, dim2);
    let ids = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (user_ids, item_ids) = (ids("emb.users.txt"), ids("emb.items.txt"));
    assert_eq!((user_ids.len(), item_ids.len()), (n_users, n_items));
    let user_of: HashMap<&str, usize> = user_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let item_of: HashMap<&str, usize> = item_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("config.json")).unwrap()).unwrap();
    let mu = if cosine {
        config["train"]["mu"]
            .as_f64()
            .expect("config.json: train.mu")
    } else {
        f64::NEG_INFINITY
    };
    if cosine {
        // The export of a cosine model: unit rows, whose inner product is the model's cosine.
        let norm = (ue[..dim].iter().map(|x| (*x as f64).powi(2)).sum::<f64>()).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    let score = |u: usize, i: usize| -> f64 {
        let dot: f64 = ue[u * dim..(u + 1) * dim]
            .iter()
            .zip(&ie[i * dim..(i + 1) * dim])
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        dot.max(mu)
    };
    let mut train: HashSet<(usize, usize)> = HashSet::new();
    for l in std::fs::read_to_string(run_dir.join("split/train.tsv"))
        .unwrap()
        .lines()
    {
        let mut f = l.split('\t');
        if let (Some(u), Some(i)) = (f.next(), f.next())
            && let (Some(&u), Some(&i)) = (user_of.get(u), item_of.get(i))
        {
            train.insert((u, i));
        }
    }
    assert!(!train.is_empty());

    let mut trained_in_lists = 0;
    for include in [true, false] {
        let out = run_dir.join(format!("all-{include}.tsv"));
        let mut args = vec![
            "recommend",
            "--checkpoint",
            d,
            "--all",
            "-k",
            "20",
            "--out",
            out.to_str().unwrap(),
        ];
        if include {
            args.push("--include-train");
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = lists(&std::fs::read_to_string(&out).unwrap());
        assert_eq!(got.len(), n_users);
        let mut cand: Vec<(f64, usize)> = Vec::with_capacity(n_items);
        for (user, list) in &got {
            let u = user_of[user.as_str()];
            cand.clear();
            cand.extend(
                (0..n_items)
                    .filter(|&i| include || !train.contains(&(u, i)))
                    .map(|i| (score(u, i), i)),
            );
            // Best first, ties by lower item index: the ranking's rule.
            cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(list.len(), k.min(cand.len()), "user {user}");
            for (r, (item, s)) in list.iter().enumerate() {
                let i = item_of[item.as_str()];
                let (want_s, want_i) = cand[r];
                // Scores printed to 6 decimals; f32 rounding on the GPU may swap near-ties only.
                let tol = 2e-5;
                assert!(
                    (s - score(u, i)).abs() < tol,
                    "user {user} rank {}: item {item} score {s} vs {}",
                    r + 1,
                    score(u, i)
                );
                assert!(
                    i == want_i || (score(u, i) - want_s).abs() < tol,
                    "user {user} rank {}: item {item} ({s}) where the CPU ranks {} ({want_s})",
                    r + 1,
                    item_ids[want_i]
                );
                if train.contains(&(u, i)) {
                    assert!(include, "user {user}: training item {item} recommended");
                    trained_in_lists += 1;
                }
            }
        }
    }
    trained_in_lists
}

#[test]
fn include_train_ranks_every_item_as_the_exported_embeddings_do() {
    let tmp = tempfile::tempdir().unwrap();
    let cobrar = tmp.path().join("cobrar");
    let o = train_small(&cobrar, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bpr = tmp.path().join("bpr");
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
    for (dir, cosine) in [(&cobrar, true), (&bpr, false)] {
        let trained = check_run(dir, cosine);
        assert!(
            trained > 0,
            "{}: no training item among the unfiltered lists",
            dir.display()
        );
    }

    // One user: the flag changes the list only by the training items it lets in.
    let d = cobrar.to_str().unwrap();
    let one = |extra: &[&str]| {
        let mut args = vec![
            "recommend",
            "--checkpoint",
            d,
            "--user",
            "u0001",
            "-k",
            "10",
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        lists(&stdout(&o)).remove(0).1
    };
    let (all, filtered) = (one(&["--include-train"]), one(&[]));
    let train = std::fs::read_to_string(cobrar.join("split/train.tsv")).unwrap();
    let seen: HashSet<&str> = train
        .lines()
        .filter_map(|l| l.strip_prefix("u0001\t"))
        .collect();
    let kept: Vec<&(String, f64)> = all
        .iter()
        .filter(|(i, _)| !seen.contains(i.as_str()))
        .collect();
    assert_eq!(
        kept,
        filtered.iter().take(kept.len()).collect::<Vec<_>>(),
        "without training items the unfiltered list is the filtered one"
    );
}
