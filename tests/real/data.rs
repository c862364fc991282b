//! The real datasets of `../shared/data` (see its README): the paper's Table 1 numbers and the split's
//! guarantees. Ignored by default; run with
//! `COBRAR_DATA_DIR=../shared/data cargo test --test data_real -- --include-ignored`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cobrar_gpu::data::{
    Counts, Dataset, LoadOptions, SplitConfig, formula_sizes, load, write_split,
};

/// The data folder. These tests are only run on purpose, so a missing variable is a loud failure,
/// not a silent pass.
fn data_dir() -> PathBuf {
    let dir = std::env::var_os("COBRAR_DATA_DIR").map(PathBuf::from).expect(
        "COBRAR_DATA_DIR is not set: point it at the shared data folder (e.g. ../shared/data beside the checkout) to run the real-data tests",
    );
    assert!(
        dir.is_dir(),
        "COBRAR_DATA_DIR={} is not a directory",
        dir.display()
    );
    dir
}

fn named(name: &str) -> LoadOptions {
    LoadOptions {
        dataset: Some(name.into()),
        data_dir: Some(data_dir()),
        ..Default::default()
    }
}

fn file(rel: &str) -> LoadOptions {
    LoadOptions {
        dataset: Some(data_dir().join(rel).to_string_lossy().into_owned()),
        ..Default::default()
    }
}

fn triple(c: &Counts) -> (usize, usize, usize) {
    (c.users, c.items, c.interactions)
}

/// Every (user, item) pair is in exactly one part, every user keeps a training item, and each user's
/// part sizes follow the SPEC formula.
fn check_split(ds: &Dataset, cfg: &SplitConfig) {
    let mut seen = HashSet::with_capacity(ds.train.nnz() + ds.val.nnz() + ds.test.nnz());
    for part in [&ds.train, &ds.val, &ds.test] {
        for pair in part.iter() {
            assert!(seen.insert(pair), "pair {pair:?} in two parts");
        }
    }
    for u in 0..ds.n_users() {
        let n = ds.train.row_len(u) + ds.val.row_len(u) + ds.test.row_len(u);
        let s = formula_sizes(n, cfg.test_ratio, cfg.val_ratio);
        assert_eq!(
            (ds.train.row_len(u), ds.val.row_len(u), ds.test.row_len(u)),
            (s.train, s.val, s.test),
            "user {} with {n} interactions",
            ds.user_ids[u]
        );
        assert!(
            ds.train.row_len(u) >= 1,
            "user {} has no training item",
            ds.user_ids[u]
        );
    }
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_1m_pairs_after_5_core() {
    let ds = load(&named("ml-1m")).unwrap();
    let r = &ds.report;
    assert_eq!(triple(&r.raw), (6_040, 3_706, 1_000_209));
    let k = r.kcore.as_ref().unwrap();
    assert_eq!(triple(&k.counts), (6_040, 3_416, 999_611));
    assert_eq!(k.passes, 2);
    assert_eq!((ds.n_users(), ds.n_items()), (6_040, 3_416));
    assert_eq!(ds.train.nnz() + ds.val.nnz() + ds.test.nnz(), 999_611);
    check_split(&ds, &SplitConfig::default());
    // Ids are MovieLens integers: dense order is numeric.
    assert_eq!(ds.user_ids[0], "1");
    assert_eq!(ds.user_ids[6_039], "6040");
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_1m_split_files_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |seed: u64, dir: &str| -> PathBuf {
        let mut o = named("ml-1m");
        o.split.seed = seed;
        let ds = load(&o).unwrap();
        let out = tmp.path().join(dir);
        write_split(&ds, &out).unwrap();
        out
    };
    let (a, b, c) = (write(42, "a"), write(42, "b"), write(7, "c"));
    for f in ["train.tsv", "val.tsv", "test.tsv", "split.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
    }
    for f in ["train.tsv", "val.tsv", "test.tsv"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() != std::fs::read(c.join(f)).unwrap(),
            "{f} is the same for another seed"
        );
    }
    let count = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(
        count(&a.join("train.tsv")) + count(&a.join("val.tsv")) + count(&a.join("test.tsv")),
        999_611
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("split.json")).unwrap()).unwrap();
    // The sha256 of interactions_all.tsv.gz recorded in ml-1m/SOURCE.md.
    assert_eq!(
        json["inputs"][0]["sha256"],
        "3360854ec569827b5493d822ad9833afece80357cac9b78aee2898ceb279a6f4"
    );
    assert_eq!(json["seed"], 42);
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_1m_authors_ratios_give_72_8_20() {
    let mut o = named("ml-1m");
    o.split = SplitConfig {
        test_ratio: 0.2,
        val_ratio: 0.1,
        seed: 42,
    };
    let ds = load(&o).unwrap();
    check_split(&ds, &o.split);
    let n = 999_611.0;
    let share = |x: usize| x as f64 / n;
    assert!(
        (share(ds.train.nnz()) - 0.72).abs() < 0.005,
        "{}",
        share(ds.train.nnz())
    );
    assert!(
        (share(ds.val.nnz()) - 0.08).abs() < 0.005,
        "{}",
        share(ds.val.nnz())
    );
    assert!(
        (share(ds.test.nnz()) - 0.20).abs() < 0.005,
        "{}",
        share(ds.test.nnz())
    );
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_100k_after_5_core() {
    let ds = load(&named("ml-100k")).unwrap();
    assert_eq!(ds.report.format, "movielens-100k");
    assert_eq!(triple(&ds.report.raw), (943, 1_682, 100_000));
    assert_eq!(
        triple(&ds.report.kcore.as_ref().unwrap().counts),
        (943, 1_349, 99_287)
    );
    check_split(&ds, &SplitConfig::default());
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn amazon_baby_pre_split() {
    let ds = load(&named("amazon-baby")).unwrap();
    assert_eq!((ds.n_users(), ds.n_items()), (19_181, 6_366));
    let p = ds.report.pre_split.as_ref().unwrap();
    assert_eq!(p.total_rows, 138_821, "interactions in all three files");
    let rows: Vec<u64> = p.files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, vec![83_416, 20_973, 34_432]);
    assert_eq!(ds.train.nnz(), 83_416);
    // Validation/test rows whose user or item is not in train.tsv: 258 + 322.
    println!(
        "amazon-baby: dropped {} validation/test rows (val: {} unknown users, {} unknown items; test: {} / {})",
        p.dropped,
        p.files[1].dropped_unknown_user,
        p.files[1].dropped_unknown_item,
        p.files[2].dropped_unknown_user,
        p.files[2].dropped_unknown_item
    );
    assert_eq!(p.dropped, 580);
    assert_eq!(ds.val.nnz() + ds.test.nnz(), 20_973 + 34_432 - 580);
    assert!((0..ds.n_users()).all(|u| ds.train.row_len(u) >= 1));
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn amazon_reviews_5_core_as_in_the_data_readme() {
    // The whole Baby reviews file as generic tab-separated text (user, item, rating).
    let ds = load(&file("amazon-baby/reviews.tsv")).unwrap();
    assert_eq!(ds.report.format, "delimited (tab)");
    assert_eq!(ds.name, "amazon-baby");
    assert_eq!(triple(&ds.report.raw), (19_440, 6_386, 138_821));
    let k = ds.report.kcore.as_ref().unwrap();
    assert_eq!(triple(&k.counts), (15_293, 5_860, 121_620));
    assert_eq!(k.passes, 10);
    let music = load(&file("amazon-music-mmb/reviews.tsv")).unwrap();
    assert_eq!(
        triple(&music.report.kcore.as_ref().unwrap().counts),
        (4_086, 2_330, 47_115)
    );
    let music_split = load(&named("amazon-music-mmb")).unwrap();
    assert_eq!(
        (music_split.n_users(), music_split.n_items()),
        (5_159, 2_467)
    );
    assert_eq!(
        music_split.report.pre_split.as_ref().unwrap().total_rows,
        51_937
    );
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_latest_small_ratings_csv() {
    let ds = load(&named("ml-latest-small")).unwrap();
    assert_eq!(ds.report.format, "movielens-csv");
    assert_eq!(triple(&ds.report.raw), (610, 9_724, 100_836));
    assert_eq!(
        triple(&ds.report.kcore.as_ref().unwrap().counts),
        (610, 3_650, 90_274)
    );
    check_split(&ds, &SplitConfig::default());
    // Half-star ratings parse: keeping 4.0 and above drops a known share.
    let mut o = named("ml-latest-small");
    o.min_rating = Some(4.0);
    o.kcore = 0;
    let hi = load(&o).unwrap();
    assert!(hi.report.implicit.interactions < 100_836 && hi.report.implicit.interactions > 40_000);
}

#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn ml_1m_partial_ratings_dat() {
    let mut o = file("ml-1m/ratings_users_0001-2999.dat.gz");
    o.kcore = 0;
    let ds = load(&o).unwrap();
    assert_eq!(ds.report.format, "movielens-dat");
    assert_eq!(triple(&ds.report.raw), (2_999, 3_615, 487_650));
    assert_eq!(ds.report.implicit.interactions, 487_650);
    o.min_rating = Some(4.0);
    let hi = load(&o).unwrap();
    assert_eq!(hi.report.implicit.interactions, 170_579 + 108_545);
    // Every pair of the original ratings.dat is in the complete pair file.
    let all = load(&LoadOptions {
        kcore: 0,
        ..named("ml-1m")
    })
    .unwrap();
    let pairs: HashSet<(&str, &str)> = [&all.train, &all.val, &all.test]
        .into_iter()
        .flat_map(|c| c.iter())
        .map(|(u, i)| {
            (
                all.user_ids[u as usize].as_str(),
                all.item_ids[i as usize].as_str(),
            )
        })
        .collect();
    for part in [&ds.train, &ds.val, &ds.test] {
        for (u, i) in part.iter() {
            assert!(pairs.contains(&(
                ds.user_ids[u as usize].as_str(),
                ds.item_ids[i as usize].as_str()
            )));
        }
    }
}

/// Each workload's degree distributions against its real file's: the numbers of users, items and
/// interactions exactly, and both degree distributions within a Kolmogorov–Smirnov distance of 0.005
/// with the same Gini coefficient to 0.002 (BENCHMARKS.md reports the figures).
#[test]
#[ignore = "needs COBRAR_DATA_DIR"]
fn workloads_match_their_datasets_degree_distributions() {
    use cobrar_gpu::data::workload::{self, DegreeStats, degrees_of, ks_distance};
    for (name, rel) in [
        ("ml-1m", "ml-1m/interactions_all.tsv.gz"),
        ("amazon-baby", "amazon-baby/reviews.tsv"),
    ] {
        let real = load(&LoadOptions {
            kcore: 0,
            ..file(rel)
        })
        .unwrap();
        let raw = real.report.raw;
        let w = workload::find(name).unwrap();
        assert_eq!(
            (
                real.report.implicit.users,
                real.report.implicit.items,
                real.report.implicit.interactions
            ),
            (w.users, w.items, w.interactions),
            "{name}: the workload's counts are the file's (raw {raw:?})"
        );
        // The real degrees over all three parts of the (unfiltered) split.
        let (mut ru, mut ri) = (vec![0u32; real.n_users()], vec![0u32; real.n_items()]);
        for part in [&real.train, &real.val, &real.test] {
            for (u, deg) in ru.iter_mut().enumerate() {
                *deg += part.row_len(u) as u32;
                for &i in part.row(u) {
                    ri[i as usize] += 1;
                }
            }
        }
        let keys = w.generate();
        let (gu, gi) = degrees_of(&keys, w.users, w.items);
        for (side, g, r) in [("users", &gu, &ru), ("items", &gi, &ri)] {
            let ks = ks_distance(g, r);
            let (sg, sr) = (DegreeStats::of(g), DegreeStats::of(r));
            eprintln!("{name} {side}: KS {ks:.4}; generated {sg:?}; real {sr:?}");
            assert!(ks < 0.005, "{name} {side}: KS distance {ks}");
            assert!(
                (sg.gini - sr.gini).abs() < 0.002,
                "{name} {side}: Gini {sg:?} vs {sr:?}"
            );
            assert_eq!(sg.median, sr.median, "{name} {side}: median");
        }
    }
}
