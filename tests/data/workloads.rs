//! The built-in workloads: exactly their datasets' numbers of users, items and interactions, every
//! user and item used, no repeated pair, and the same matrix on every machine and every run — the
//! hashes below were recorded on the development machine; another machine (CI) computing the same
//! ones is the cross-machine determinism `bench` reports rely on.

use cobrar_gpu::data::workload::{self, degrees_of};
use cobrar_gpu::data::{LoadOptions, load};

/// SHA-256 of each workload's sorted pairs as `Workload::hash` computes them (recorded once with
/// `cargo run --release --example workload_tables -- check NAME`). A change to the generator or to the
/// tables changes them: then every bench report made before is no longer comparable, and they must be
/// re-recorded deliberately.
const RECORDED: &[(&str, &str)] = &[
    (
        "ml-1m",
        "4763006efdc48fe9d66c29432825f629e11d49242485ed202fa9df4a274fe781",
    ),
    (
        "amazon-baby",
        "0faffafd0852952f1826cda1a5db1d96116e7d2e59c9b781900d12ec71cc0e33",
    ),
    (
        "ml-20m",
        "2a5d2139b79d81a3cd3733f3e5e597b205c4747e8a6522fd06bc50573ce137df",
    ),
];

#[test]
fn every_workload_has_its_exact_counts_and_its_recorded_hash() {
    for w in workload::ALL {
        let keys = w.generate();
        assert_eq!(keys.len(), w.interactions, "{}", w.name);
        assert!(
            keys.windows(2).all(|p| p[0] < p[1]),
            "{}: sorted, distinct pairs",
            w.name
        );
        let (du, di) = degrees_of(&keys, w.users, w.items);
        assert!(
            du.iter().all(|&d| d > 0),
            "{}: a user without interactions",
            w.name
        );
        assert!(
            di.iter().all(|&d| d > 0),
            "{}: an item without interactions",
            w.name
        );
        // The generated degrees are the ones the tables describe, exactly.
        let mut want_u = w.user_degrees();
        let mut got_u = du.clone();
        want_u.sort_unstable();
        got_u.sort_unstable();
        assert_eq!(got_u, want_u, "{}: user degrees", w.name);
        assert_eq!(di, w.item_degrees(), "{}: item degrees", w.name);
        let recorded = RECORDED.iter().find(|r| r.0 == w.name).expect("recorded").1;
        assert_eq!(
            w.hash(&keys),
            recorded,
            "{}: not the recorded matrix",
            w.name
        );
    }
}

#[test]
fn a_workload_loads_through_the_pipeline_with_its_hash_and_refuses_ratings() {
    let opts = LoadOptions {
        workload: Some("amazon-baby".into()),
        ..Default::default()
    };
    let ds = load(&opts).unwrap();
    let w = ds.report.workload.as_ref().unwrap();
    assert_eq!((w.users, w.items, w.interactions), (19_440, 6_386, 138_821));
    assert_eq!(w.hash, RECORDED[1].1);
    assert_eq!(ds.report.raw.interactions, 138_821);
    assert!(
        ds.report.kcore.is_some(),
        "the study's 5-core runs on a workload too"
    );
    assert_eq!(ds.content_hash(), load(&opts).unwrap().content_hash());
    let err = load(&LoadOptions {
        min_rating: Some(4.0),
        ..opts.clone()
    })
    .unwrap_err();
    assert!(err.to_string().contains("no ratings"), "{err}");
    let err = load(&LoadOptions {
        workload: Some("ml-30m".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("ml-1m, amazon-baby, ml-20m"),
        "{err}"
    );
}
