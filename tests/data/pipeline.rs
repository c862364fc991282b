//! The SPEC §2 pipeline end to end on generated data: k-core against a naive reference, the split
//! formula per user, determinism, line-order independence, and the write/read round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cobrar_gpu::data::{Dataset, LoadOptions, SplitConfig, formula_sizes, load, write_split};
use cobrar_gpu::util::seeded_rng;
use rand::RngExt;
use rand::seq::SliceRandom;

/// Skewed random interactions: user activity and item popularity both decay, so a 5-core removes a
/// good share and needs several passes. Returns the lines (`user<TAB>item<TAB>rating`).
fn random_lines(seed: u64) -> Vec<String> {
    let mut rng = seeded_rng(seed, 1);
    let mut lines = Vec::new();
    for u in 0..400u32 {
        let n = 1 + (30.0 / (1.0 + u as f64 / 25.0)) as u32 + rng.random_range(0..4);
        for _ in 0..n {
            let x: f64 = rng.random_range(0.0..1.0);
            let item = (x * x * 300.0) as u32;
            lines.push(format!("user{u}\t{item}\t{}", rng.random_range(1..=5)));
        }
    }
    lines
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn opts(p: &Path) -> LoadOptions {
    LoadOptions {
        dataset: Some(p.to_string_lossy().into_owned()),
        ..Default::default()
    }
}

/// The k-core as its definition reads, on string pairs.
fn naive_kcore(mut pairs: BTreeSet<(String, String)>, k: usize) -> BTreeSet<(String, String)> {
    loop {
        let mut du: BTreeMap<&str, usize> = BTreeMap::new();
        let mut di: BTreeMap<&str, usize> = BTreeMap::new();
        for (u, i) in &pairs {
            *du.entry(u).or_default() += 1;
            *di.entry(i).or_default() += 1;
        }
        let next: BTreeSet<_> = pairs
            .iter()
            .filter(|(u, i)| du[u.as_str()] >= k && di[i.as_str()] >= k)
            .cloned()
            .collect();
        if next.len() == pairs.len() {
            return next;
        }
        pairs = next;
    }
}

fn all_pairs(ds: &Dataset) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for part in [&ds.train, &ds.val, &ds.test] {
        for (u, i) in part.iter() {
            let fresh = out.insert((
                ds.user_ids[u as usize].clone(),
                ds.item_ids[i as usize].clone(),
            ));
            assert!(fresh, "pair ({u}, {i}) is in two parts");
        }
    }
    out
}

#[test]
fn kcore_matches_the_naive_definition() {
    let dir = tempfile::tempdir().unwrap();
    let lines = random_lines(3);
    let p = write_lines(dir.path(), "log.tsv", &lines);
    let pairs: BTreeSet<(String, String)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    for k in [0usize, 2, 3, 5] {
        let ds = load(&LoadOptions {
            kcore: k as u32,
            ..opts(&p)
        })
        .unwrap();
        let expected = if k == 0 {
            pairs.clone()
        } else {
            naive_kcore(pairs.clone(), k)
        };
        assert_eq!(all_pairs(&ds), expected, "k = {k}");
        if k > 0 {
            let rep = ds.report.kcore.as_ref().unwrap();
            assert_eq!(rep.counts.interactions, expected.len());
            assert!(
                rep.passes >= 2 || expected.len() == pairs.len(),
                "k = {k}: {} passes",
                rep.passes
            );
        } else {
            assert!(ds.report.kcore.is_none());
        }
    }
    let k5 = load(&opts(&p)).unwrap();
    assert!(
        k5.report.kcore.as_ref().unwrap().passes >= 3,
        "the data should need cascading passes"
    );
}

#[test]
fn every_user_follows_the_formula() {
    let ds = load(&LoadOptions::default()).unwrap();
    let all = |u: usize| ds.train.row_len(u) + ds.val.row_len(u) + ds.test.row_len(u);
    for (test_ratio, val_ratio) in [(0.2, 0.125), (0.2, 0.1), (0.3, 0.0)] {
        let ds = load(&LoadOptions {
            split: SplitConfig {
                test_ratio,
                val_ratio,
                seed: 42,
            },
            ..Default::default()
        })
        .unwrap();
        for u in 0..ds.n_users() {
            let s = formula_sizes(all(u), test_ratio, val_ratio);
            assert_eq!(
                (ds.train.row_len(u), ds.val.row_len(u), ds.test.row_len(u)),
                (s.train, s.val, s.test),
                "user {u} with ratios {test_ratio}/{val_ratio}"
            );
            assert!(ds.train.row_len(u) >= 1);
        }
    }
    // Overall shares: 70/10/20 for large users; the floors round small users' training part down
    // (n = 12 gives 7/2/3), so the dataset-wide training share is somewhat below 70 %.
    let n = (ds.train.nnz() + ds.val.nnz() + ds.test.nnz()) as f64;
    let share = |x: usize| x as f64 / n;
    assert!(
        (0.62..=0.70).contains(&share(ds.train.nnz())),
        "train {}",
        share(ds.train.nnz())
    );
    assert!(
        (0.20..=0.25).contains(&share(ds.test.nnz())),
        "test {}",
        share(ds.test.nnz())
    );
}

#[test]
fn the_split_is_seeded() {
    let base = load(&LoadOptions::default()).unwrap();
    let again = load(&LoadOptions::default()).unwrap();
    assert_eq!(base.test, again.test);
    assert_eq!(base.val, again.val);
    let other = load(&LoadOptions {
        split: SplitConfig {
            seed: 43,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_ne!(base.test, other.test);
    assert_eq!(
        all_pairs(&base),
        all_pairs(&other),
        "a seed changes the split, not the data"
    );
}

#[test]
fn line_order_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = random_lines(5);
    let a = load(&opts(&write_lines(dir.path(), "a.tsv", &lines))).unwrap();
    lines.shuffle(&mut seeded_rng(9, 9));
    let b = load(&opts(&write_lines(dir.path(), "b.tsv", &lines))).unwrap();
    assert_eq!(a.user_ids, b.user_ids);
    assert_eq!(a.item_ids, b.item_ids);
    assert_eq!((&a.train, &a.val, &a.test), (&b.train, &b.val, &b.test));
    // Item ids are integers here: numeric order; user ids ("user12") are not: lexicographic.
    let items: Vec<u32> = a.item_ids.iter().map(|i| i.parse().unwrap()).collect();
    assert!(items.windows(2).all(|w| w[0] < w[1]));
    assert!(a.user_ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn structures_are_consistent() {
    let ds = load(&LoadOptions::default()).unwrap();
    assert_eq!(ds.train.n_rows(), ds.n_users());
    assert_eq!(ds.train_by_item.n_rows(), ds.n_items());
    assert_eq!(ds.train_by_item, ds.train.transpose(ds.n_items()));
    for c in [&ds.train, &ds.val, &ds.test] {
        c.validate(ds.n_items()).unwrap();
    }
    ds.train_by_item.validate(ds.n_users()).unwrap();
    for i in 0..ds.n_items() {
        assert_eq!(ds.item_popularity[i] as usize, ds.train_by_item.row_len(i));
    }
    let r = &ds.report;
    assert_eq!(r.split.train.interactions, ds.train.nnz());
    assert_eq!(
        r.preprocessed.interactions,
        ds.train.nnz() + ds.val.nnz() + ds.test.nnz()
    );
}

#[test]
fn written_split_reads_back_as_the_same_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let ds = load(&LoadOptions::default()).unwrap();
    let out = dir.path().join("split");
    write_split(&ds, &out).unwrap();
    let back = load(&opts(&out)).unwrap();
    assert_eq!(back.report.format, "pre-split");
    assert_eq!(back.user_ids, ds.user_ids);
    if ds.report.split.items_without_train == 0 {
        assert_eq!(back.item_ids, ds.item_ids);
        assert_eq!(
            (&back.train, &back.val, &back.test),
            (&ds.train, &ds.val, &ds.test)
        );
    }
    assert_eq!(back.report.pre_split.as_ref().unwrap().dropped as usize, {
        // Only pairs whose item has no training interaction can be dropped on the way back.
        let missing: BTreeSet<u32> = (0..ds.n_items() as u32)
            .filter(|&i| ds.item_popularity[i as usize] == 0)
            .collect();
        ds.val
            .iter()
            .chain(ds.test.iter())
            .filter(|(_, i)| missing.contains(i))
            .count()
    });
    // Writing again over the same directory gives the same bytes (atomic replace, deterministic).
    let first = std::fs::read(out.join("train.tsv")).unwrap();
    write_split(&ds, &out).unwrap();
    assert_eq!(first, std::fs::read(out.join("train.tsv")).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
