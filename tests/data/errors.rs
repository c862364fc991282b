//! Bad input: every case answers with one clear error line, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use cobrar_gpu::data::{Format, LoadOptions, SplitConfig, load};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/data")
        .join(name)
}

fn opts(path: &Path) -> LoadOptions {
    LoadOptions {
        dataset: Some(path.to_string_lossy().into_owned()),
        ..Default::default()
    }
}

/// Loads and returns the error as the binary prints it (anyhow's `{:#}`), checking it is one line.
fn error_of(o: &LoadOptions) -> String {
    let err = match load(o) {
        Ok(ds) => panic!("expected an error, loaded {} users", ds.n_users()),
        Err(e) => format!("{e:#}"),
    };
    assert!(!err.contains('\n'), "error must be one line: {err}");
    err
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn malformed_line_names_file_line_and_text() {
    let p = fixture("bad/ratings.dat");
    let err = error_of(&opts(&p));
    assert_eq!(
        err,
        format!(
            "{}:17: expected user::item::rating::timestamp, found \"abc\"",
            p.display()
        )
    );
}

#[test]
fn malformed_fields_say_which_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "u.data", b"1\t2\t3\t4\n1\t3\tfive\t5\n");
    let err = error_of(&opts(&p));
    assert!(
        err.ends_with(
            "u.data:2: expected user<TAB>item<TAB>rating<TAB>timestamp, found \"1\\t3\\tfive\\t5\" (rating \"five\" is not a number)"
        ),
        "{err}"
    );
    let p = write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,2,3.5,99\n1,,4,100\n",
    );
    let err = error_of(&opts(&p));
    assert!(err.ends_with("ratings.csv:3: expected userId,movieId,rating,timestamp, found \"1,,4,100\" (empty item id)"), "{err}");
}

#[test]
fn malformed_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "reviews.json",
        b"{\"reviewerID\": \"A1\", \"asin\": \"B1\", \"overall\": 5.0}\n{\"reviewerID\": \"A2\", \"overall\": 4.0}\n",
    );
    let err = error_of(&opts(&p));
    assert!(
        err.contains("reviews.json:2: expected a JSON object with"),
        "{err}"
    );
    assert!(err.contains("missing field `asin`"), "{err}");
}

#[test]
fn invalid_utf8_and_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x.tsv", b"a\tb\n\xff\xfe\tc\n");
    let err = error_of(&opts(&p));
    assert!(err.contains("x.tsv:2: expected UTF-8 text"), "{err}");

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&b"1::2::3::4\n".repeat(10_000)).unwrap();
    let mut gz = enc.finish().unwrap();
    let mid = gz.len() / 2;
    gz[mid..]
        .iter_mut()
        .for_each(|b| *b = b.wrapping_mul(31).wrapping_add(7));
    let p = write(dir.path(), "ratings.dat.gz", &gz);
    let err = error_of(&opts(&p));
    assert!(err.contains("ratings.dat.gz"), "{err}");
    let p = write(dir.path(), "truncated.dat.gz", &gz[..mid]);
    let err = error_of(&opts(&p));
    assert!(err.contains("truncated.dat.gz"), "{err}");
}

#[test]
fn empty_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.tsv", b"\n\n");
    assert_eq!(
        error_of(&opts(&p)),
        format!(
            "no interactions left after reading {} (the file has no records)",
            p.display()
        )
    );
    let p = write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n",
    );
    let err = error_of(&opts(&p));
    assert!(
        err.starts_with("no interactions left after reading"),
        "{err}"
    );
}

#[test]
fn empty_after_filtering() {
    let mut o = opts(&fixture("ratings.dat"));
    o.min_rating = Some(10.0);
    let err = error_of(&o);
    assert!(
        err.starts_with("no interactions left after --min-rating 10"),
        "{err}"
    );

    // The fixture has no 5-core at all.
    let err = error_of(&opts(&fixture("ratings.dat")));
    assert!(
        err.starts_with("no interactions left after the 5-core filter"),
        "{err}"
    );
    assert!(err.contains("--kcore"), "{err}");
}

#[test]
fn missing_file_and_unknown_name() {
    let err = error_of(&opts(Path::new("/no/such/ratings.dat")));
    assert_eq!(err, "/no/such/ratings.dat: no such file or directory");
    let o = LoadOptions {
        dataset: Some("movielens".into()),
        ..Default::default()
    };
    assert!(error_of(&o).starts_with("unknown dataset \"movielens\""));
}

#[test]
fn named_dataset_without_data_dir() {
    let o = LoadOptions {
        dataset: Some("amazon-baby".into()),
        data_dir: None,
        ..Default::default()
    };
    let err = error_of(&o);
    assert!(err.contains("set COBRAR_DATA_DIR"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let o = LoadOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..o
    };
    let err = error_of(&o);
    assert!(
        err.contains("dataset \"amazon-baby\" not found there"),
        "{err}"
    );
}

#[test]
fn directory_without_the_triple() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(&opts(dir.path()));
    assert!(
        err.contains("not a dataset directory: no train.tsv"),
        "{err}"
    );
    write(dir.path(), "train.tsv", b"a\tb\n");
    write(dir.path(), "val.tsv", b"a\tb\n");
    let err = error_of(&opts(dir.path()));
    assert!(err.contains("no test.tsv"), "{err}");
    // A directory with one ratings file and no triple, forced to pre-split.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("ratings.dat"), dir.path().join("ratings.dat")).unwrap();
    let mut o = opts(dir.path());
    o.kcore = 3;
    assert!(
        load(&o).is_ok(),
        "a directory with ratings.dat is read as that file"
    );
    o.format = Some(Format::PreSplit);
    let err = error_of(&o);
    assert!(err.contains("no train.tsv"), "{err}");
}

#[test]
fn pre_split_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.tsv", b"a\tb\nc\td\n");
    write(dir.path(), "val.tsv", b"a\td\n");
    write(dir.path(), "test.tsv", b"c\tb\nlonely\n");
    let err = error_of(&opts(dir.path()));
    assert!(
        err.ends_with("test.tsv:2: expected user<TAB>item[<TAB>rating], found \"lonely\""),
        "{err}"
    );
}

#[test]
fn options_that_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pairs.tsv", b"a\tb\nc\td\n");
    let mut o = opts(&p);
    o.min_rating = Some(3.0);
    let err = error_of(&o);
    assert!(err.contains("--min-rating needs a rating column"), "{err}");
    let mut o = opts(&p);
    o.split = SplitConfig {
        test_ratio: 1.5,
        ..Default::default()
    };
    assert!(error_of(&o).contains("--test-ratio must be at least 0 and below 1"));
    let mut o = opts(&p);
    o.format = Some(Format::PreSplit);
    assert!(error_of(&o).contains("needs a directory"));
    let o = LoadOptions {
        format: Some(Format::AmazonJson),
        ..Default::default()
    };
    assert!(error_of(&o).contains("and none was given"));
}
