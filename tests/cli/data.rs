//! `cobrar-gpu data stats|split` through the built binary: output, files, and bad-input behaviour (one
//! error line on stderr, non-zero exit).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cobrar-gpu"))
        .args(args)
        .env_remove("COBRAR_DATA_DIR")
        // From a directory with no assets around: the default dataset is embedded.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run cobrar-gpu")
}

/// Asserts a failed run with exactly one stderr line, and returns that line.
fn one_error_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn malformed_line_is_one_error_line() {
    let p = fixture("bad/ratings.dat");
    let out = run(&["data", "stats", p.to_str().unwrap()]);
    let line = one_error_line(&out);
    assert_eq!(
        line,
        format!(
            "error: {}:17: expected user::item::rating::timestamp, found \"abc\"",
            p.display()
        )
    );
}

#[test]
fn missing_file_is_one_error_line() {
    let out = run(&["data", "stats", "--dataset", "/no/such/ratings.dat"]);
    assert_eq!(
        one_error_line(&out),
        "error: /no/such/ratings.dat: no such file or directory"
    );
}

#[test]
fn directory_without_triple_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["data", "split", dir.path().to_str().unwrap(), "--out", "x"]);
    assert!(one_error_line(&out).contains("not a dataset directory: no train.tsv"));
}

#[test]
fn empty_after_filter_and_missing_data_dir_are_one_error_line() {
    let out = run(&["data", "stats", fixture("ratings.dat").to_str().unwrap()]);
    assert!(one_error_line(&out).contains("no interactions left after the 5-core filter"));
    let out = run(&["data", "stats", "ml-1m"]);
    assert!(one_error_line(&out).contains("set COBRAR_DATA_DIR"));
}

#[test]
fn stats_prints_the_table_and_json() {
    let p = fixture("ratings.dat");
    let out = run(&["data", "stats", p.to_str().unwrap(), "--kcore", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "raw",
        "implicit",
        "3-core (2 passes)",
        "split train",
        "split validation",
        "split test",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in:\n{table}");
    }
    let out = run(&[
        "data",
        "stats",
        "--dataset",
        p.to_str().unwrap(),
        "--kcore",
        "3",
        "--json",
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kcore"]["counts"]["interactions"], 46);
    assert_eq!(json["raw"]["interactions"], 52);
    assert_eq!(json["split"]["seed"], 42);
}

#[test]
fn stats_of_the_embedded_dataset_from_any_directory() {
    let out = run(&["data", "stats", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dataset"], "synthetic");
    assert!(json["preprocessed"]["users"].as_u64().unwrap() > 1000);
}

#[test]
fn split_writes_files_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture("ratings.dat");
    let split = |out: &Path, seed: &str| {
        let o = run(&[
            "data",
            "split",
            p.to_str().unwrap(),
            "--kcore",
            "3",
            "--split-seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    split(&a, "42");
    split(&b, "42");
    split(&c, "7");
    for f in ["train.tsv", "val.tsv", "test.tsv", "split.json"] {
        let fa = std::fs::read(a.join(f)).unwrap();
        assert_eq!(
            fa,
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
    }
    assert_ne!(
        std::fs::read(a.join("test.tsv")).unwrap(),
        std::fs::read(c.join("test.tsv")).unwrap()
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("split.json")).unwrap()).unwrap();
    assert_eq!(json["seed"], 42);
    assert_eq!(json["test_ratio"], 0.2);
    assert_eq!(json["val_ratio"], 0.125);
    assert_eq!(json["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    let lines = |f: &str| std::fs::read_to_string(a.join(f)).unwrap().lines().count() as u64;
    assert_eq!(json["train"].as_u64().unwrap(), lines("train.tsv"));
    assert_eq!(
        lines("train.tsv") + lines("val.tsv") + lines("test.tsv"),
        46
    );
}
