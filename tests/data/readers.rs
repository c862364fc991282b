//! Every reader over the fixtures in `tests/fixtures/data/`: the same 52 ratings (9 users, 11 items,
//! one re-rated pair) written in each format, so every reader must give the same counts.

use std::io::Write;
use std::path::{Path, PathBuf};

use cobrar_gpu::data::{Counts, Dataset, DelimitedSpec, Format, LoadOptions, Separator, load};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/data")
        .join(name)
}

fn opts(path: &Path, kcore: u32) -> LoadOptions {
    LoadOptions {
        dataset: Some(path.to_string_lossy().into_owned()),
        kcore,
        ..Default::default()
    }
}

fn load_fixture(name: &str, kcore: u32) -> Dataset {
    load(&opts(&fixture(name), kcore)).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

/// Raw, implicit and 3-core counts of the fixture (computed independently with Python).
fn assert_fixture_counts(ds: &Dataset) {
    let r = &ds.report;
    assert_eq!(
        (r.raw.users, r.raw.items, r.raw.interactions),
        (9, 11, 52),
        "raw"
    );
    assert_eq!(
        (r.implicit.users, r.implicit.items, r.implicit.interactions),
        (9, 11, 51),
        "implicit"
    );
    let k = r.kcore.as_ref().expect("k-core ran");
    assert_eq!(
        (
            k.k,
            k.passes,
            k.counts.users,
            k.counts.items,
            k.counts.interactions
        ),
        (3, 2, 8, 9, 46)
    );
    assert_eq!((ds.n_users(), ds.n_items()), (8, 9));
    assert_eq!(ds.train.nnz() + ds.val.nnz() + ds.test.nnz(), 46);
}

#[test]
fn movielens_dat() {
    let ds = load_fixture("ratings.dat", 3);
    assert_eq!(ds.report.format, "movielens-dat");
    assert_fixture_counts(&ds);
    // Numeric ids sort numerically: users 1..8 (user 9 fell to the 3-core), items 1..10 minus the
    // dropped ones.
    assert_eq!(
        ds.user_ids,
        (1..=8).map(|u| u.to_string()).collect::<Vec<_>>()
    );
    assert!(
        ds.item_ids
            .windows(2)
            .all(|w| w[0].parse::<u32>().unwrap() < w[1].parse::<u32>().unwrap())
    );
    assert_eq!(
        ds.name, "data",
        "a generic stem is named after its directory"
    );
}

#[test]
fn movielens_100k() {
    let ds = load_fixture("u.data", 3);
    assert_eq!(ds.report.format, "movielens-100k");
    assert_fixture_counts(&ds);
}

#[test]
fn movielens_csv() {
    let ds = load_fixture("ratings.csv", 3);
    assert_eq!(ds.report.format, "movielens-csv");
    assert_fixture_counts(&ds);
}

#[test]
fn amazon_json_plain_and_gzip() {
    let ds = load_fixture("reviews.json", 3);
    assert_eq!(ds.report.format, "amazon-json");
    assert_fixture_counts(&ds);
    assert!(ds.user_ids.iter().all(|u| u.starts_with('A')));
    assert!(ds.item_ids.iter().all(|i| i.starts_with('B')));

    let dir = tempfile::tempdir().unwrap();
    let gz = gzip_copy(&fixture("reviews.json"), &dir.path().join("Baby_5.json.gz"));
    let ds_gz = load(&opts(&gz, 3)).unwrap();
    assert_same_dataset(&ds, &ds_gz);
    assert_eq!(ds_gz.name, "Baby_5");
}

#[test]
fn amazon_csv_has_the_item_first() {
    let ds = load_fixture("amazon_ratings.csv", 3);
    assert_eq!(ds.report.format, "amazon-csv");
    assert_fixture_counts(&ds);
    assert!(ds.user_ids.iter().all(|u| u.starts_with('A')));
    // Same original ids as the JSON file: the same dataset and the same split.
    assert_same_dataset(&ds, &load_fixture("reviews.json", 3));
}

#[test]
fn generic_delimited_with_flags() {
    // ts;score;movie;who — user in column 3, item in column 2, rating in column 1, with a header.
    let mut o = opts(&fixture("generic.txt"), 3);
    o.format = Some(Format::Delimited);
    o.delimited = DelimitedSpec {
        sep: Some(Separator::Semicolon),
        user_col: 3,
        item_col: 2,
        rating_col: Some(1),
        header: true,
    };
    let ds = load(&o).unwrap();
    assert_fixture_counts(&ds);
    assert!(ds.user_ids.iter().all(|u| u.starts_with("user")));
    o.min_rating = Some(4.0);
    o.kcore = 0;
    let ds = load(&o).unwrap();
    assert_eq!(ds.report.implicit.interactions, 24);
    assert_eq!(ds.report.inputs[0].below_min_rating, 28);
}

#[test]
fn generic_delimited_is_detected() {
    // Tab-separated pairs without a header, as the ML-1M pair file and the embedded dataset are.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pairs.tsv");
    std::fs::write(&p, "u1\ti1\nu1\ti2\nu2\ti1\n").unwrap();
    let ds = load(&opts(&p, 0)).unwrap();
    assert_eq!(ds.report.format, "delimited (tab)");
    assert_eq!(ds.report.raw, Counts::new(2, 2, 3));
    assert_eq!(ds.name, "pairs");
    // A comma file with a header named like the usual columns.
    let p = dir.path().join("log.csv");
    std::fs::write(&p, "user_id,item_id,rating\n1,10,4.5\n1,11,2\n2,10,5\n").unwrap();
    let mut o = opts(&p, 0);
    o.min_rating = Some(4.0);
    let ds = load(&o).unwrap();
    assert_eq!(ds.report.format, "delimited (comma)");
    assert_eq!(ds.report.raw.interactions, 3);
    assert_eq!(ds.report.implicit.interactions, 2);
}

#[test]
fn gzip_is_detected_by_magic_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // A gzip stream under the plain name.
    let disguised = gzip_copy(&fixture("ratings.dat"), &dir.path().join("ratings.dat"));
    let ds = load(&opts(&disguised, 3)).unwrap();
    assert_same_dataset(&ds, &load_fixture("ratings.dat", 3));
    // The hash is of the file's bytes as stored (compressed).
    let bytes = std::fs::read(&disguised).unwrap();
    assert_eq!(ds.report.inputs[0].bytes, bytes.len() as u64);
    assert_ne!(
        ds.report.inputs[0].sha256,
        load_fixture("ratings.dat", 3).report.inputs[0].sha256
    );
}

#[test]
fn explicit_format_overrides_detection() {
    // ratings.dat content, but named .txt: detection still sees `::`; the explicit format agrees.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("anything.txt");
    std::fs::copy(fixture("ratings.dat"), &p).unwrap();
    let mut o = opts(&p, 3);
    o.format = Some(Format::MovielensDat);
    assert_fixture_counts(&load(&o).unwrap());
    // Forcing a wrong format is an error naming the first line, not a panic.
    o.format = Some(Format::AmazonCsv);
    let err = format!("{:#}", load(&o).unwrap_err());
    assert!(
        err.contains("anything.txt:1: expected item,user,rating,timestamp"),
        "{err}"
    );
}

#[test]
fn pre_split_triple_is_used_as_published() {
    let ds = load_fixture("presplit", 5);
    assert_eq!(ds.report.format, "pre-split");
    assert_eq!(ds.name, "presplit");
    // Users and items are those of train.tsv: a b c / w x y z.
    assert_eq!(ds.user_ids, vec!["a", "b", "c"]);
    assert_eq!(ds.item_ids, vec!["w", "x", "y", "z"]);
    assert!(ds.report.kcore.is_none(), "no k-core on published splits");
    let p = ds.report.pre_split.as_ref().unwrap();
    assert_eq!(p.total_rows, 18);
    let (train, val, test) = (&p.files[0], &p.files[1], &p.files[2]);
    assert_eq!((train.rows, train.kept, train.duplicates), (8, 7, 1));
    // val: (a,w) ok, (b,z) ok, (d,x) unknown user, (c,v) unknown item, (a,y) already in train.
    assert_eq!(
        (
            val.kept,
            val.dropped_unknown_user,
            val.dropped_unknown_item,
            val.dropped_in_earlier_part
        ),
        (2, 1, 1, 1)
    );
    // test: (b,w) ok, (c,x) twice, (e,y) unknown user, (a,w) already in validation.
    assert_eq!(
        (
            test.kept,
            test.duplicates,
            test.dropped_unknown_user,
            test.dropped_in_earlier_part
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(p.dropped, 5);
    let a = ds.user_index("a").unwrap();
    let w = ds.item_index("w").unwrap() as u32;
    assert!(ds.val.contains(a, w) && !ds.test.contains(a, w));
    assert_eq!(ds.report.raw, Counts::new(5, 5, 18));
    assert_eq!(ds.report.preprocessed.interactions, 7 + 2 + 2);
}

fn gzip_copy(src: &Path, dst: &Path) -> PathBuf {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(src).unwrap()).unwrap();
    std::fs::write(dst, enc.finish().unwrap()).unwrap();
    dst.to_path_buf()
}

fn assert_same_dataset(a: &Dataset, b: &Dataset) {
    assert_eq!(a.user_ids, b.user_ids);
    assert_eq!(a.item_ids, b.item_ids);
    assert_eq!(a.train, b.train);
    assert_eq!(a.val, b.val);
    assert_eq!(a.test, b.test);
}
