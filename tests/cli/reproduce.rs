//! `reproduce`: a small grid over every model on the embedded dataset writes Table 2, the parameter
//! counts, the timing table, Figure 2 and the report; a second call trains nothing; a study killed mid-run
//! continues where it stopped.

use std::path::Path;

use crate::common::{bin, error_line, run, stderr, stdout};

const GRID: &str = r#"
[train]
epochs = 2
max-steps-per-epoch = 4
patience = 0

[models.mostpop]

[models.bpr]
arch = "8"
weight-decay = [1e-3, 1e-2]

[models.lightgcn]
arch = "8"
layers = 1

[models.multvae]
arch = "40,8"
epochs = 1

[models.cobrar]
arch = ["16,8"]

[models.deepmf]
arch = ["16,8"]
"#;

fn reproduce(grid: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "reproduce",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    run(&args)
}

fn mtimes(out: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().join("metrics.json");
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p.display().to_string(), t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn reproduce_runs_every_model_once_and_writes_the_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID).unwrap();
    let out = tmp.path().join("study");
    let o = reproduce(&grid, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("7 runs (0 finished, 7 to train)"), "{err}");
    assert!(err.contains("run 7/7") && err.contains("ETA"), "{err}");
    let table2 = std::fs::read_to_string(out.join("table2.md")).unwrap();
    for label in [
        "mostpop",
        "bpr 8",
        "lightgcn 8 K=1",
        "multvae 40,8",
        "cobrar 16,8",
        "deepmf 16,8",
    ] {
        assert!(
            table2.contains(&format!("| {label} |")),
            "{label} missing:\n{table2}"
        );
    }
    assert_eq!(stdout(&o).trim(), table2.trim());
    assert!(
        std::fs::read_to_string(out.join("table2.csv"))
            .unwrap()
            .lines()
            .count()
            >= 7
    );
    let params = std::fs::read_to_string(out.join("parameters.md")).unwrap();
    // CoBraR 16,8 on 2000 users and 999 items: W_U 999·16 + 16, W_T 2000·16 + 16, branch 16·8 + 8.
    assert!(params.contains("| cobrar 16,8 | 48,152 |"), "{params}");
    let timing = std::fs::read_to_string(out.join("timing.md")).unwrap();
    assert!(
        timing.contains("| 16,8 | cobrar |") && timing.contains("| 16,8 | deepmf |"),
        "{timing}"
    );
    assert!(
        timing.contains("CoBraR's best epoch came after"),
        "{timing}"
    );
    let runs = std::fs::read_to_string(out.join("runs.md")).unwrap();
    assert_eq!(
        runs.lines().filter(|l| l.contains("✓")).count(),
        6,
        "{runs}"
    );
    let svg = std::fs::read_to_string(out.join("figure2.svg")).unwrap();
    assert!(svg.contains("16,8") && svg.contains("cobrar") && svg.contains("deepmf"));
    assert_eq!(
        &std::fs::read(out.join("figure2.png")).unwrap()[1..4],
        b"PNG"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("![Figure 2](figure2.svg)"), "{report}");
    assert!(
        report.contains("## Table 2") && report.contains("open question"),
        "{report}"
    );
    assert!(!report.contains("Beside the paper"), "{report}");

    // Everything is finished: nothing is trained again, the reports are rewritten the same.
    let before = mtimes(&out);
    let o = reproduce(&grid, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("7 runs (7 finished, 0 to train)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(mtimes(&out), before, "finished runs were trained again");
    assert_eq!(
        std::fs::read_to_string(out.join("table2.md")).unwrap(),
        table2
    );

    // --models selects; --dry-run lists.
    let o = reproduce(&grid, &out, &["--models", "bpr", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.contains("finished"))
            .count(),
        2
    );
}

#[test]
fn an_interrupted_study_continues_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID).unwrap();
    let out = tmp.path().join("study");
    let args = [
        "reproduce",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    // Killed at the end of the second epoch of the first trained run (BPR-MF, after MostPop).
    let o = bin()
        .args(args)
        .args(["--models", "bpr,cobrar"])
        .env("COBRAR_KILL_AT", "epoch:2")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = run(&[&args[..], &["--models", "bpr,cobrar"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("3 runs (0 finished, 3 to train)"), "{err}");
    assert!(
        err.contains("run 1/3: bpr weight-decay=0.001 · resuming"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.join("runs")).unwrap().count(), 3);

    let line = error_line(&run(&[
        "reproduce",
        "--grid",
        "nosuch",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(line.contains("not a built-in grid"), "{line}");
    std::fs::write(&grid, "[models.nosuch]\n").unwrap();
    let line = error_line(&run(&args));
    assert!(line.contains("unknown model [models.nosuch]"), "{line}");
}

/// On one of the paper's datasets (found by its folder name, here a small stand-in for Amazon Baby's
/// published split) the report puts the paper's Table 2 rows beside ours, with the protocol.
#[test]
fn reproduce_on_a_paper_dataset_prints_the_papers_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let baby = tmp.path().join("data").join("amazon-baby");
    std::fs::create_dir_all(&baby).unwrap();
    let mut files = [String::new(), String::new(), String::new()];
    for u in 0..40 {
        for i in 0..30 {
            if (u * 7 + i * 3) % 4 == 0 {
                let f = match (u + i) % 10 {
                    0 | 1 => 2,
                    2 => 1,
                    _ => 0,
                };
                files[f].push_str(&format!("U{u}\tI{i}\t5.0\n"));
            }
        }
    }
    for (name, text) in ["train.tsv", "val.tsv", "test.tsv"].iter().zip(&files) {
        std::fs::write(baby.join(name), text).unwrap();
    }
    let grid = tmp.path().join("grid.toml");
    std::fs::write(
        &grid,
        "[train]\nepochs = 1\nmax-steps-per-epoch = 2\nseed = 3\n\n[models.mostpop]\n\n[models.bpr]\narch = \"8\"\n",
    )
    .unwrap();
    let out = tmp.path().join("study");
    let o = reproduce(
        &grid,
        &out,
        &[
            "--dataset",
            "amazon-baby",
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let section = report
        .split("## Beside the paper")
        .nth(1)
        .unwrap_or_else(|| panic!("no paper section:\n{report}"));
    // BPR's published Baby row (NDCG@5 0.0113, ARP@5 111.0 marked, PopRSP 0.9886, coverage 38.6 %)
    // on our bpr row; the paper's models we did not run are listed as such; MostPop has no paper row.
    let bpr = section
        .lines()
        .find(|l| l.starts_with("| bpr 8 |"))
        .unwrap();
    assert!(
        bpr.contains("| 0.0113 |") && bpr.contains("| 111.0* |") && bpr.contains("| 38.6 |"),
        "{bpr}"
    );
    assert!(
        section.contains("| mostpop | ") && section.contains("| cobrar (not run) |"),
        "{section}"
    );
    assert!(
        section.contains("published one") && section.contains("grid `"),
        "{section}"
    );
    assert!(
        section.contains("seed 3") && section.contains("max epochs 1, patience"),
        "{section}"
    );
}

/// The tiny grid studied by one process: (its folder, the grid file, the study's output).
fn one_process_study() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID).unwrap();
    let one = tmp.path().join("one");
    let o = reproduce(&grid, &one, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    (tmp, grid, one)
}

/// A study's `table2.csv` with its output folder written as OUT (to compare studies).
fn table(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("table2.csv"))
        .unwrap()
        .replace(dir.to_str().unwrap(), "OUT")
}

/// `--shard I/N` over one shared folder (two processes at once, as a job array would run them) and
/// `--collect` give the same Table 2 as one process; a partial grid is collected with its missing runs
/// listed.
#[test]
fn shards_in_parallel_and_collect_match_one_process() {
    let (tmp, grid, one) = one_process_study();

    let shared = tmp.path().join("shared");
    let workers: Vec<_> = ["1/2", "2/2"]
        .iter()
        .map(|s| {
            bin()
                .args(["reproduce", "--grid", grid.to_str().unwrap()])
                .args(["--out", shared.to_str().unwrap(), "--shard", s])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in workers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("of the grid's runs"), "{}", stderr(&o));
    }
    let o = reproduce(&grid, &shared, &["--collect"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(table(&shared), table(&one));
    assert!(
        stderr(&o).contains("reports of 7 finished run(s) of 7"),
        "{}",
        stderr(&o)
    );

    // Two workers in one process on this machine's adapter (by index), each taking the next run.
    let jobs = tmp.path().join("jobs");
    let o = reproduce(&grid, &jobs, &["--devices", "0", "--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 workers (0, 0)"), "{}", stderr(&o));
    assert_eq!(table(&jobs), table(&one));
    let line = error_line(&reproduce(&grid, &jobs, &["--devices", "0,nosuch"]));
    assert!(
        line.contains("--devices nosuch") && line.contains("no adapter matches"),
        "{line}"
    );

    // Half a grid: collected, with the other half listed as missing.
    let half = tmp.path().join("half");
    let o = reproduce(&grid, &half, &["--shard", "2/2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("4 of the grid's 7 runs are not finished"),
        "{}",
        stderr(&o)
    );
    assert!(!half.join("table2.md").exists());
    let o = reproduce(&grid, &half, &["--collect"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("reproduce: missing (new)").count(),
        4,
        "{}",
        stderr(&o)
    );
    let report = std::fs::read_to_string(half.join("report.md")).unwrap();
    assert!(
        report.contains("## Not finished") && report.contains("4 of the grid's 7 runs"),
        "{report}"
    );

    let line = error_line(&reproduce(&grid, &half, &["--shard", "3/2"]));
    assert!(line.contains("expected I/N with 1 ≤ I ≤ N"), "{line}");
    let empty = tmp.path().join("empty");
    let line = error_line(&reproduce(&grid, &empty, &["--collect"]));
    assert!(line.contains("none of the grid's 7 runs"), "{line}");
}

/// `--emit slurm` on a real Slurm (a one-node cluster on this machine, started by
/// `tests/slurm/start.sh`, which `.ci/run` runs first): `sbatch --test-only` accepts the script, the
/// two-task array trains the grid, and `--collect` gives one process's `table2.csv`.
#[test]
#[ignore = "needs a running Slurm: tests/slurm/start.sh, then SLURM_CONF as it prints"]
fn an_emitted_slurm_array_trains_the_grid_like_one_process() {
    let (tmp, grid, one) = one_process_study();

    let array = tmp.path().join("array");
    let o = reproduce(
        &grid,
        &array,
        &[
            "--emit",
            "slurm",
            "--shards",
            "2",
            "--gpus-per-task",
            "0",
            "--time",
            "30:00",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("7 run(s) to train in 2 array task(s)"),
        "{}",
        stderr(&o)
    );
    let script = array.join("reproduce.sbatch");
    let sbatch = |args: &[&str]| {
        std::process::Command::new("sbatch")
            .args(args)
            .arg(&script)
            .output()
            .expect("sbatch (slurm-client) must be installed for this test")
    };
    let o = sbatch(&["--test-only"]);
    assert!(o.status.success(), "sbatch --test-only: {}", stderr(&o));
    let o = sbatch(&["--wait"]);
    let logs: String = std::fs::read_dir(array.join("slurm"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(o.status.success(), "sbatch --wait: {}\n{logs}", stderr(&o));
    assert!(
        logs.contains("shard 1/2") && logs.contains("shard 2/2"),
        "{logs}"
    );
    let o = reproduce(&grid, &array, &["--collect"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(table(&array), table(&one));
}
