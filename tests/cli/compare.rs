//! `compare`: the Table 2 layout, significance marks, CSV, the run-directory files, and bad input.
//! Built on fake run directories in a temporary folder.

use std::path::{Path, PathBuf};

use cobrar_gpu::eval::metrics::{CutoffMetrics, PerUserMetrics};
use cobrar_gpu::report::table::{
    self, CSV_HEADER, Mark, read_user_metrics, render_csv, render_markdown, write_user_metrics,
};
use serde_json::json;

use cobrar_gpu::cli::compare;

const K: usize = 5;

/// Writes a run directory: `metrics.json` (means of the per-user values, plus fields `compare` must
/// ignore) and `user_metrics.tsv` through the same writer training uses.
#[allow(clippy::too_many_arguments)] // a test fixture: every argument is one field of the run
fn make_run(
    root: &Path,
    name: &str,
    dataset: &str,
    model: &str,
    label: Option<&str>,
    users: &[String],
    ndcg: &[f64],
    arp: &[f64],
) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cut = |k: usize, scale: f64| CutoffMetrics {
        k,
        ndcg: mean(ndcg) * scale,
        recall: 0.1,
        precision: 0.1,
        hit_rate: 0.5,
        mrr: 0.3,
        arp: mean(arp),
        coverage: 42,
        coverage_pct: 12.5,
        poprsp: 0.75,
    };
    let mut m = json!({
        "dataset": dataset,
        "model": model,
        "best_epoch": 7,
        "test": {"users": users.len(), "cutoffs": [cut(K, 1.0), cut(10, 1.1)]},
        "validation": {"users": users.len(), "cutoffs": [cut(K, 0.9)]},
        "hyperparameters": {"lr": 1e-5, "dims": [2048, 128]},
        "adapter": {"name": "fake", "backend": "none"},
        "split_hash": format!("split of {dataset}"),
    });
    if let Some(l) = label {
        m["label"] = json!(l);
    }
    std::fs::write(
        dir.join("metrics.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let per_user = PerUserMetrics {
        users: (0..users.len() as u32).collect(),
        values: vec![
            ("ndcg".into(), K, ndcg.to_vec()),
            ("arp".into(), K, arp.to_vec()),
            ("ndcg".into(), 10, ndcg.to_vec()),
            ("arp".into(), 10, arp.to_vec()),
        ],
    };
    write_user_metrics(&dir.join("user_metrics.tsv"), users, &per_user).unwrap();
    dir
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A deterministic spread of per-user values in [0, 1).
fn spread(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|u| ((u * 37 + seed * 11) % 101) as f64 / 101.0)
        .collect()
}

/// Three runs on ml-100k and one alone on ml-1m:
/// * A ("cobrar 2048,128 lr=1e-05", a label with a comma): best NDCG;
/// * B: A's NDCG − 0.0001 plus noise (no real difference), ARP as A's;
/// * C: NDCG 0.15 lower (significant), ARP far lower (~60 vs ~100) → C is ARP's best, and A and B
///   are significantly worse on ARP.
fn study(root: &Path) -> Vec<PathBuf> {
    let n = 60;
    let users = ids("u", n);
    let noise = spread(n, 3);
    let a_ndcg: Vec<f64> = spread(n, 1).iter().map(|v| 0.3 + 0.4 * v).collect();
    // B = A − 0.0001 + zero-mean noise of sd ≈ 0.003: t ≈ −0.3, nowhere near significant.
    let noise_mean = noise.iter().sum::<f64>() / n as f64;
    let b_ndcg: Vec<f64> = a_ndcg
        .iter()
        .zip(&noise)
        .map(|(v, e)| v - 0.0001 + 0.01 * (e - noise_mean))
        .collect();
    let c_ndcg: Vec<f64> = a_ndcg
        .iter()
        .zip(&noise)
        .map(|(v, e)| v - 0.15 + 0.05 * e)
        .collect();
    let a_arp: Vec<f64> = noise.iter().map(|e| 100.0 + 20.0 * e).collect();
    let c_arp: Vec<f64> = spread(n, 5).iter().map(|e| 60.0 + 20.0 * e).collect();
    vec![
        make_run(
            root,
            "a",
            "ml-100k",
            "cobrar",
            Some("cobrar 2048,128 lr=1e-05"),
            &users,
            &a_ndcg,
            &a_arp,
        ),
        make_run(
            root, "b", "ml-100k", "deepmf", None, &users, &b_ndcg, &a_arp,
        ),
        make_run(root, "c", "ml-100k", "pop", None, &users, &c_ndcg, &c_arp),
        make_run(
            root,
            "d",
            "ml-1m",
            "cobrar",
            None,
            &ids("x", 10),
            &spread(10, 2),
            &spread(10, 4),
        ),
    ]
}

/// The markdown table rows of the first table, as cells.
fn md_rows(md: &str) -> Vec<Vec<String>> {
    md.lines()
        .skip_while(|l| !l.starts_with("| Dataset"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Minimal RFC 4180 line parser (quoted fields with doubled quotes).
fn csv_line(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[test]
fn marks_exactly_where_the_best_run_is_significantly_better() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = study(tmp.path());
    let t = table::compare(&dirs, K).unwrap();
    let labels: Vec<&str> = t.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        ["cobrar 2048,128 lr=1e-05", "deepmf", "pop", "cobrar"]
    );
    let sig = |m: &Mark| m.significant();
    // NDCG: A best, B not different, C worse.
    assert_eq!(t.rows[0].ndcg, Mark::Best);
    assert!(!sig(&t.rows[1].ndcg));
    assert!(sig(&t.rows[2].ndcg));
    // ARP: lowest is best → C; A and B recommend far more popular items.
    assert_eq!(t.rows[2].arp, Mark::Best);
    assert!(sig(&t.rows[0].arp) && sig(&t.rows[1].arp));
    // The lone ml-1m run is compared with nothing.
    assert_eq!(
        (&t.rows[3].ndcg, &t.rows[3].arp),
        (&Mark::Alone, &Mark::Alone)
    );
    // Bonferroni over the 2 comparisons per metric in ml-100k.
    for r in &t.rows[..3] {
        for m in [&r.ndcg, &r.arp] {
            if let Mark::Tested(c) = m {
                assert_eq!((c.n, c.comparisons), (60, 2));
                assert_eq!(c.p, (c.p_raw * 2.0).min(1.0));
            }
        }
    }

    let md = render_markdown(&t);
    eprintln!("{md}\n{}", render_csv(&t));
    let rows = md_rows(&md);
    assert_eq!(rows.len(), 4, "{md}");
    assert!(md.contains("| Dataset | Model | NDCG@5 | ARP@5 | PopRSP@5 | Coverage@5 (%) |"));
    // Stars exactly: C's NDCG, A's and B's ARP; nowhere else (PopRSP/Coverage are not tested).
    let starred: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.iter()
                .enumerate()
                .filter(|(_, c)| c.ends_with('*'))
                .map(move |(j, _)| (i, j))
        })
        .collect();
    assert_eq!(starred, vec![(0, 3), (1, 3), (2, 2)], "{md}");
    assert_eq!(rows[0][0], "ml-100k");
    assert_eq!(rows[3][0], "ml-1m");
    assert_eq!(rows[0][4], "0.7500");
    assert_eq!(rows[0][5], "12.50");
    // The p-value table names the best runs.
    assert!(md.contains("| best |"), "{md}");
}

#[test]
fn identical_models_get_no_marks() {
    let tmp = tempfile::tempdir().unwrap();
    let users = ids("u", 30);
    let (ndcg, arp) = (spread(30, 1), spread(30, 2));
    let dirs = vec![
        make_run(tmp.path(), "a", "ds", "x", None, &users, &ndcg, &arp),
        make_run(tmp.path(), "b", "ds", "y", None, &users, &ndcg, &arp),
        make_run(tmp.path(), "c", "ds", "z", None, &users, &ndcg, &arp),
    ];
    let t = table::compare(&dirs, K).unwrap();
    for r in &t.rows {
        assert!(!r.ndcg.significant() && !r.arp.significant());
        if let Mark::Tested(c) = &r.ndcg {
            assert_eq!((c.p_raw, c.p), (1.0, 1.0));
        }
    }
    let md = render_markdown(&t);
    assert!(
        md_rows(&md).iter().flatten().all(|c| !c.ends_with('*')),
        "{md}"
    );
}

#[test]
fn runs_sharing_a_label_are_told_apart_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let users = ids("u", 30);
    let (ndcg, arp) = (spread(30, 1), spread(30, 2));
    let dirs = vec![
        make_run(
            tmp.path(),
            "run-001",
            "ds",
            "cobrar",
            Some("cobrar 512,64"),
            &users,
            &ndcg,
            &arp,
        ),
        make_run(
            tmp.path(),
            "run-002",
            "ds",
            "cobrar",
            Some("cobrar 512,64"),
            &users,
            &ndcg,
            &arp,
        ),
        make_run(
            tmp.path(),
            "dm",
            "ds",
            "deepmf",
            Some("deepmf 512,64"),
            &users,
            &ndcg,
            &arp,
        ),
    ];
    let t = table::compare(&dirs, K).unwrap();
    let labels: Vec<&str> = t.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "cobrar 512,64 (run-001)",
            "cobrar 512,64 (run-002)",
            "deepmf 512,64"
        ]
    );
}

#[test]
fn csv_parses_with_p_values() {
    let tmp = tempfile::tempdir().unwrap();
    let t = table::compare(&study(tmp.path()), K).unwrap();
    let csv = render_csv(&t);
    let lines: Vec<Vec<String>> = csv.lines().map(csv_line).collect();
    let header = &lines[0];
    assert_eq!(header.join(","), CSV_HEADER);
    assert_eq!(lines.len(), 5);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for l in &lines[1..] {
        assert_eq!(l.len(), header.len(), "{l:?}");
    }
    let a = &lines[1];
    assert_eq!(a[col("model")], "cobrar 2048,128 lr=1e-05");
    assert_eq!(a[col("k")], "5");
    assert_eq!(a[col("ndcg_best")], "true");
    assert_eq!(a[col("p_ndcg")], "");
    assert_eq!(a[col("arp_significant")], "true");
    let p_arp: f64 = a[col("p_arp")].parse().unwrap();
    let p_arp_raw: f64 = a[col("p_arp_raw")].parse().unwrap();
    assert!(p_arp < 0.05 && p_arp == (2.0 * p_arp_raw).min(1.0));
    let b = &lines[2];
    assert_eq!(b[col("ndcg_significant")], "false");
    assert!(b[col("p_ndcg")].parse::<f64>().unwrap() >= 0.05);
    assert_eq!(b[col("n_ndcg")], "60");
    let c = &lines[3];
    assert_eq!(c[col("ndcg_significant")], "true");
    assert_eq!(c[col("arp_best")], "true");
    // Full-precision numbers round-trip.
    let want = t.rows[2].metrics.ndcg;
    assert_eq!(c[col("ndcg")].parse::<f64>().unwrap(), want);
    assert_eq!(lines[4][col("dataset")], "ml-1m");
    assert_eq!(lines[4][col("p_arp")], "");
}

#[test]
fn command_writes_csv_and_markdown_files() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = study(tmp.path());
    let (csv, md) = (tmp.path().join("t.csv"), tmp.path().join("t.md"));
    compare::run(compare::CompareArgs {
        runs: runs.clone(),
        cutoff: 10,
        csv: Some(csv.clone()),
        markdown: Some(md.clone()),
        overwrite: false,
        allow_different_splits: false,
    })
    .unwrap();
    let t = table::compare(&runs, 10).unwrap();
    assert_eq!(std::fs::read_to_string(&md).unwrap(), render_markdown(&t));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), render_csv(&t));
    assert!(std::fs::read_to_string(&md).unwrap().contains("NDCG@10"));
}

/// The error's full chain on one line, as `main` prints it.
fn err_line(r: anyhow::Result<table::CompareTable>) -> String {
    let e = format!("{:#}", r.unwrap_err());
    eprintln!("error: {e}");
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn bad_input_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let runs = study(root);

    // A directory without metrics.json.
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = err_line(table::compare(&[runs[0].clone(), empty], K));
    assert!(e.contains("empty") && e.contains("no metrics.json"), "{e}");
    let e = err_line(table::compare(&[root.join("missing")], K));
    assert!(e.contains("not a run directory"), "{e}");

    // An unknown cutoff.
    let e = err_line(table::compare(&runs, 7));
    assert!(e.contains("cutoff 7") && e.contains("has 5, 10"), "{e}");

    // Runs whose user sets do not overlap.
    let n = 10;
    let x = make_run(
        root,
        "x",
        "ds",
        "x",
        None,
        &ids("p", n),
        &spread(n, 1),
        &spread(n, 2),
    );
    let y = make_run(
        root,
        "y",
        "ds",
        "y",
        None,
        &ids("q", n),
        &spread(n, 3),
        &spread(n, 4),
    );
    let e = err_line(table::compare(&[x.clone(), y], K));
    assert!(e.contains("share no evaluated users"), "{e}");
    // One common user is not enough for a t-test.
    let mut one = ids("q", n);
    one[0] = "p0".into();
    let z = make_run(
        root,
        "z",
        "ds",
        "z",
        None,
        &one,
        &spread(n, 3),
        &spread(n, 4),
    );
    let e = err_line(table::compare(&[x.clone(), z], K));
    assert!(e.contains("at least 2 pairs"), "{e}");

    // A run without per-user values, when a test needs them; fine alone in its dataset.
    std::fs::remove_file(runs[1].join("user_metrics.tsv")).unwrap();
    let e = err_line(table::compare(&runs, K));
    assert!(e.contains("user_metrics.tsv: missing"), "{e}");
    assert!(table::compare(&runs[1..2], K).is_ok());

    // Malformed metrics.json and user_metrics.tsv.
    std::fs::write(runs[2].join("metrics.json"), "{\"dataset\": 1}").unwrap();
    let e = err_line(table::compare(&runs[2..3], K));
    assert!(e.contains("not a valid metrics file"), "{e}");
    std::fs::write(
        runs[3].join("user_metrics.tsv"),
        "user\tmetric\tcutoff\tvalue\nx0\tndcg\t5\tabc\n",
    )
    .unwrap();
    let e = err_line(table::compare(&runs[3..4], K));
    assert!(e.contains("line 2") && e.contains("bad value"), "{e}");
    assert!(err_line(table::compare(&[], K)).contains("no run directories"));
}

#[test]
fn user_metrics_round_trip_and_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("user_metrics.tsv");
    let per_user = PerUserMetrics {
        users: vec![2, 0],
        values: vec![
            ("ndcg".into(), 5, vec![0.1 + 0.2, 1.0 / 3.0]),
            ("arp".into(), 5, vec![123.456, 1e-17]),
            ("ndcg".into(), 10, vec![0.5, 0.25]),
        ],
    };
    let user_ids: Vec<String> = ["1", "x y", "42"].map(String::from).to_vec();
    write_user_metrics(&path, &user_ids, &per_user).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("user\tmetric\tcutoff\tvalue\n42\tndcg\t5\t"));
    let all = read_user_metrics(&path, None).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[&("ndcg".into(), 5)]["42"], 0.1 + 0.2);
    assert_eq!(all[&("ndcg".into(), 5)]["1"], 1.0 / 3.0);
    assert_eq!(all[&("arp".into(), 5)]["1"], 1e-17);
    let at10 = read_user_metrics(&path, Some(10)).unwrap();
    assert_eq!(at10.len(), 1);

    // Columns found by name: another order, an extra column, CRLF line ends.
    std::fs::write(
        &path,
        "metric\tuser\textra\tvalue\tcutoff\r\nndcg\tu1\t?\t0.5\t5\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        read_user_metrics(&path, None).unwrap()[&("ndcg".into(), 5)]["u1"],
        0.5
    );

    // Bad files and bad writes.
    std::fs::write(&path, "user\tvalue\n").unwrap();
    assert!(read_user_metrics(&path, None).is_err());
    std::fs::write(
        &path,
        "user\tmetric\tcutoff\tvalue\na\tndcg\t5\t1\na\tndcg\t5\t2\n",
    )
    .unwrap();
    let e = read_user_metrics(&path, None).unwrap_err().to_string();
    assert!(e.contains("twice") && e.contains("line 3"), "{e}");
    std::fs::write(&path, "user\tmetric\tcutoff\tvalue\na\tndcg\t5\tNaN\n").unwrap();
    assert!(read_user_metrics(&path, None).is_err());
    let bad_id = vec!["a\tb".to_string()];
    let one = PerUserMetrics {
        users: vec![0],
        values: vec![("ndcg".into(), 5, vec![0.5])],
    };
    assert!(write_user_metrics(&path, &bad_id, &one).is_err());
    assert!(write_user_metrics(&path, &[], &one).is_err());
    let ragged = PerUserMetrics {
        users: vec![0],
        values: vec![("ndcg".into(), 5, vec![])],
    };
    assert!(write_user_metrics(&path, &["a".into()], &ragged).is_err());
}

#[test]
fn command_line_parses() {
    use clap::{CommandFactory, Parser};
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: compare::CompareArgs,
    }
    Cli::command().debug_assert();
    let c = Cli::try_parse_from(["compare", "r1", "r2", "--csv", "t.csv"]).unwrap();
    assert_eq!(c.args.runs, [PathBuf::from("r1"), PathBuf::from("r2")]);
    assert_eq!((c.args.cutoff, c.args.markdown), (5, None));
    assert_eq!(c.args.csv, Some(PathBuf::from("t.csv")));
    let c = Cli::try_parse_from(["compare", "r", "--cutoff", "10", "--markdown", "t.md"]).unwrap();
    assert_eq!(c.args.cutoff, 10);
    assert!(
        Cli::try_parse_from(["compare"]).is_err(),
        "a run directory is required"
    );
    assert!(Cli::try_parse_from(["compare", "r", "--cutoff", "x"]).is_err());
}
