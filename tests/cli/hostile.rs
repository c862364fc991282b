//! The second hostile re-test (issue 18), one test per case it found: one output discipline for every
//! command that writes (a table of commands × cases), `compare` only across one split, timings that
//! survive resume, `reproduce`'s checks before training, the tab-separated reader, a full disk while a
//! run directory is created, and the smaller cases. Every refused command must leave the file system as
//! it was.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::common::{bin, error_line, run, snapshot, stderr, stdout, train_small};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn finished(dir: &Path, extra: &[&str]) {
    let o = train_small(dir, extra);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success(), "mkfifo {}", p.display());
}

fn is_fifo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

/// One output discipline: for every command that writes a file or a folder, every hostile target is
/// refused with one line naming why, and nothing anywhere changes.
#[test]
fn every_output_is_refused_on_every_hostile_target() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (a, b) = (t.join("run-a"), t.join("run-b"));
    finished(&a, &[]);
    finished(&b, &[]);
    let existing = t.join("existing.txt");
    std::fs::write(&existing, "the user's own file\n").unwrap();
    let mine = t.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.md"), "mine\n").unwrap();
    let fifo = t.join("fifo");
    mkfifo(&fifo);
    let link_file = t.join("link-to-b-model");
    std::os::unix::fs::symlink(b.join("model.safetensors"), &link_file).unwrap();
    let link_dir = t.join("link-to-b-ids");
    std::os::unix::fs::symlink(b.join("ids"), &link_dir).unwrap();
    // Inputs: a data file, a pre-split folder, a grid file in its own folder.
    let data = t.join("data.tsv");
    std::fs::write(&data, "u1\ti1\nu1\ti2\n").unwrap();
    let split = t.join("split");
    let o = run(&["data", "split", "--out", &s(&split)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid_dir = t.join("grids");
    std::fs::create_dir(&grid_dir).unwrap();
    let grid = grid_dir.join("g.toml");
    std::fs::write(
        &grid,
        "[train]\narch = \"16,8\"\nepochs = 1\n[grid]\nlr = [0.001]\n",
    )
    .unwrap();
    let repro = t.join("repro.toml");
    std::fs::write(
        &repro,
        "[train]\narch = \"16,8\"\nepochs = 1\n[models.cobrar]\nlr = [0.001]\n",
    )
    .unwrap();

    let (sa, sb) = (s(&a), s(&b));
    // Commands writing a file: OUT is the output.
    let file_commands: Vec<(&str, Vec<String>)> = vec![
        (
            "export",
            vec!["export", "--checkpoint", &sa, "--out", "OUT"],
        ),
        (
            "recommend",
            vec!["recommend", "--checkpoint", &sa, "--all", "--out", "OUT"],
        ),
        ("compare --csv", vec!["compare", &sa, &sb, "--csv", "OUT"]),
        (
            "compare --markdown",
            vec!["compare", &sa, &sb, "--markdown", "OUT"],
        ),
        (
            "bench --json",
            vec!["bench", "--arch", "16,8", "--steps", "1", "--json", "OUT"],
        ),
        (
            "selftest --json",
            vec!["selftest", "--quick", "--json", "OUT"],
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.into_iter().map(String::from).collect()))
    .collect();
    // Commands writing a folder.
    let dir_commands: Vec<(&str, Vec<String>)> = vec![
        (
            "train",
            vec!["train", "--arch", "16,8", "--epochs", "1", "--out", "OUT"],
        ),
        ("data split", vec!["data", "split", "--out", "OUT"]),
        ("grid", vec!["grid", "--config", &s(&grid), "--out", "OUT"]),
        (
            "reproduce",
            vec!["reproduce", "--grid", &s(&repro), "--out", "OUT"],
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.into_iter().map(String::from).collect()))
    .collect();

    // (case, target, --overwrite, what the line must say)
    let file_cases: Vec<(&str, PathBuf, bool, &[&str])> = vec![
        (
            "an existing file",
            existing.clone(),
            false,
            &["exists", "--overwrite"],
        ),
        ("a FIFO", fifo.clone(), true, &["FIFO"]),
        ("a device", PathBuf::from("/dev/null"), true, &["device"]),
        (
            "another run's file",
            b.join("model.safetensors"),
            true,
            &["run directory"],
        ),
        (
            "a link to another run's file",
            link_file.clone(),
            true,
            &["run directory"],
        ),
        ("a folder", mine.clone(), true, &["directory"]),
    ];
    let dir_cases: Vec<(&str, PathBuf, bool, &[&str])> = vec![
        (
            "a folder of the user's files",
            mine.clone(),
            false,
            &["--overwrite"],
        ),
        ("a file", existing.clone(), true, &["not a folder"]),
        ("a FIFO", fifo.clone(), true, &["FIFO"]),
        ("a device", PathBuf::from("/dev/null"), true, &["device"]),
        (
            "another run's folder",
            b.join("split"),
            true,
            &["run directory"],
        ),
        (
            "a link into another run",
            link_dir.clone(),
            true,
            &["run directory"],
        ),
    ];
    let before = snapshot(t);
    let mut checked = 0;
    let mut try_case =
        |name: &str, cmd: &[String], case: &str, target: &Path, ow: bool, says: &[&str]| {
            let mut args: Vec<String> = cmd
                .iter()
                .map(|a| if a == "OUT" { s(target) } else { a.clone() })
                .collect();
            if ow {
                args.push("--overwrite".into());
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&refs);
            let line = error_line(&o);
            for w in says {
                assert!(
                    line.contains(w),
                    "{name} onto {case}: {line:?} does not say {w:?}"
                );
            }
            assert_eq!(snapshot(t), before, "{name} onto {case} changed files");
            assert!(is_fifo(&fifo), "{name} onto {case} replaced the FIFO");
            assert!(
                std::fs::metadata("/dev/null")
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
            checked += 1;
        };
    for (name, cmd) in &file_commands {
        for (case, target, ow, says) in &file_cases {
            try_case(name, cmd, case, target, *ow, says);
        }
    }
    for (name, cmd) in &dir_commands {
        for (case, target, ow, says) in &dir_cases {
            try_case(name, cmd, case, target, *ow, says);
        }
    }
    // The command's own inputs, even with --overwrite.
    let own_inputs: Vec<(&str, Vec<String>)> = vec![
        (
            "bench's data file",
            vec![
                "bench",
                "--dataset",
                &s(&data),
                "--steps",
                "1",
                "--json",
                &s(&data),
            ],
        ),
        (
            "train's split folder",
            vec!["train", "--dataset", &s(&split), "--out", &s(&split)],
        ),
        (
            "data split's input folder",
            vec![
                "data",
                "split",
                "--dataset",
                &s(&split),
                "--out",
                &s(&split),
            ],
        ),
        (
            "grid's own folder",
            vec!["grid", "--config", &s(&grid), "--out", &s(&grid_dir)],
        ),
        (
            "compare's run",
            vec!["compare", &sa, &sb, "--csv", &s(&a.join("metrics.json"))],
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.into_iter().map(String::from).collect()))
    .collect();
    for (name, cmd) in &own_inputs {
        let mut args = cmd.clone();
        args.push("--overwrite".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = error_line(&run(&refs));
        assert!(
            line.contains("input") || line.contains("run directory"),
            "{name}: {line}"
        );
        assert_eq!(snapshot(t), before, "{name} changed files");
        checked += 1;
    }
    assert_eq!(checked, 6 * 6 + 4 * 6 + 5);
}

/// An output written through the discipline lands atomically where a link points, and a refused
/// `--json` is checked before any work (bench would otherwise measure first).
#[test]
fn outputs_follow_links_and_replace_only_with_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    finished(&a, &[]);
    finished(&b, &[]);
    let real = tmp.path().join("table.csv");
    std::fs::write(&real, "old\n").unwrap();
    let link = tmp.path().join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = run(&["compare", &s(&a), &s(&b), "--csv", &s(&link), "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&real).unwrap().contains("ndcg"));
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}

/// Paired t-tests need one test set: runs on different splits are refused, with the runs and the
/// difference named; `--allow-different-splits` prints the table without marks.
#[test]
fn compare_refuses_runs_made_on_different_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    finished(&a, &[]);
    finished(&b, &["--model", "deepmf"]);
    finished(&c, &["--model", "deepmf", "--split-seed", "7"]);
    let ok = run(&["compare", &s(&a), &s(&b)]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let line = error_line(&run(&["compare", &s(&a), &s(&c)]));
    assert!(
        line.contains("different splits")
            && line.contains(&s(&c))
            && line.contains("seed 7")
            && line.contains("--allow-different-splits"),
        "{line}"
    );
    let md = tmp.path().join("t.md");
    let o = run(&[
        "compare",
        &s(&a),
        &s(&c),
        "--allow-different-splits",
        "--markdown",
        &s(&md),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("Not tested") && !text.contains('*'), "{text}");
    // A run made before split hashes were recorded is hashed from its split/ folder.
    let m = c.join("metrics.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    assert!(
        v["split_hash"].is_string(),
        "metrics.json records the split"
    );
    v.as_object_mut().unwrap().remove("split_hash");
    std::fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    let line = error_line(&run(&["compare", &s(&a), &s(&c)]));
    assert!(line.contains("different splits"), "{line}");
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

/// A run killed and resumed reports its whole training time, not its last piece: the totals match an
/// uninterrupted run's within noise and the epochs' own times exactly.
#[test]
fn timings_add_up_across_a_kill_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--arch",
        "64,16",
        "--epochs",
        "6",
        "--max-steps-per-epoch",
        "25",
        "--patience",
        "0",
        "--quiet",
        "--out",
    ];
    let whole = tmp.path().join("whole");
    let o = bin().args(args).arg(&whole).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cut = tmp.path().join("cut");
    let o = bin()
        .env("COBRAR_KILL_AT", "epoch:3")
        .args(args)
        .arg(&cut)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = run(&["train", "--quiet", "--resume", &s(&cut)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, c) = (
        metrics(&whole)["timings"].clone(),
        metrics(&cut)["timings"].clone(),
    );
    assert_eq!(w["processes"], 1);
    assert_eq!(c["processes"], 2);
    // The totals are the sums of every epoch's own times (both processes' epochs).
    let log: Vec<serde_json::Value> = std::fs::read_to_string(cut.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 6);
    let sum = |k: &str| log.iter().map(|r| r[k].as_f64().unwrap()).sum::<f64>();
    let train = c["train_seconds"].as_f64().unwrap();
    assert!(
        (train - sum("seconds")).abs() < 1e-6 * train.max(1.0),
        "{train} vs {}",
        sum("seconds")
    );
    assert!((c["validation_seconds"].as_f64().unwrap() - sum("eval_seconds")).abs() < 1e-6);
    // Against the uninterrupted run (other tests share the CPU, so within a wide band): the last
    // piece alone would be about half; the exact sums above are what tells the two apart.
    let ratio = train / w["train_seconds"].as_f64().unwrap();
    assert!(
        (0.6..2.0).contains(&ratio),
        "resumed/uninterrupted training seconds {ratio}"
    );
    let total = c["total_seconds"].as_f64().unwrap();
    assert!(total >= train + c["validation_seconds"].as_f64().unwrap());
    let steps = c["mean_steps_per_s"].as_f64().unwrap();
    assert!(
        (steps - 150.0 / train).abs() < 1e-6 * steps,
        "{steps} vs {}",
        150.0 / train
    );
}

/// `reproduce` checks every entry before training anything, and never writes over files it did not
/// write; a grid too large to run is refused at once.
#[test]
fn reproduce_checks_the_whole_grid_and_its_folder_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    // The second entry cannot run (its table exceeds any binding); the first would train for minutes.
    let grid = tmp.path().join("bad.toml");
    std::fs::write(
        &grid,
        "[train]\nepochs = 30\n[models.cobrar]\narch = \"64,16\"\nlr = [0.001]\n\
         [models.deepmf]\narch = [\"16,8\", \"100000000,64\"]\n",
    )
    .unwrap();
    let o = run(&[
        "reproduce",
        "--grid",
        &s(&grid),
        "--out",
        &s(&out),
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = std::time::Instant::now();
    let line = error_line(&run(&["reproduce", "--grid", &s(&grid), "--out", &s(&out)]));
    assert!(
        line.contains("deepmf") && line.contains("100000000"),
        "{line}"
    );
    assert!(
        !out.join("runs").exists() || std::fs::read_dir(out.join("runs")).unwrap().count() == 0,
        "a run trained before the bad entry was found"
    );
    assert!(t.elapsed().as_secs() < 60, "found after {:?}", t.elapsed());
    // A folder holding the user's report is refused; with a manifest of its own files it is reused.
    let user = tmp.path().join("user");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("report.md"), "my report\n").unwrap();
    let good = tmp.path().join("good.toml");
    std::fs::write(
        &good,
        "[train]\nepochs = 1\nmax_steps_per_epoch = 3\n[models.mostpop]\n[models.bpr]\narch = \"16\"\n",
    )
    .unwrap();
    let line = error_line(&run(&[
        "reproduce",
        "--grid",
        &s(&good),
        "--out",
        &s(&user),
    ]));
    assert!(
        line.contains("did not write") && line.contains("report.md"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(user.join("report.md")).unwrap(),
        "my report\n"
    );
    let own = tmp.path().join("own");
    for _ in 0..2 {
        let o = run(&["reproduce", "--grid", &s(&good), "--out", &s(&own)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(own.join("report.md").is_file());
    // A million combinations: one line at once, not a minute of parsing.
    let huge = tmp.path().join("huge.toml");
    let list = (1..=100)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &huge,
        format!("[models.cobrar]\nseed = [{list}]\nbatch_size = [{list}]\nepochs = [{list}]\n"),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let line = error_line(&run(&[
        "reproduce",
        "--grid",
        &s(&huge),
        "--out",
        &s(&out),
        "--dry-run",
    ]));
    assert!(line.contains("more than 10000 runs"), "{line}");
    assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
}

/// The tab-separated reader checks what the others check: a numeric rating, a header on line 1 only.
#[test]
fn tab_separated_files_get_the_same_checks_as_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let mut body = String::from("user\titem\n");
    for u in 1..=6 {
        for i in 1..=6 {
            body.push_str(&format!("u{u}\ti{i}\n"));
        }
    }
    let header_again = tmp.path().join("twice.tsv");
    std::fs::write(&header_again, format!("{body}user\titem\nu9\ti1\n")).unwrap();
    let line = error_line(&run(&["data", "stats", &s(&header_again)]));
    assert!(
        line.contains("twice.tsv:38") && line.contains("header"),
        "{line}"
    );
    let rated = tmp.path().join("rated.tsv");
    std::fs::write(&rated, "u1\ti1\t5\nu1\ti2\t4\nu2\ti1\tgood\n").unwrap();
    let line = error_line(&run(&["data", "stats", &s(&rated)]));
    assert!(
        line.contains("rated.tsv:3") && line.contains("good"),
        "{line}"
    );
}

/// A full disk while the run directory is created leaves nothing a plain re-run refuses.
#[test]
fn a_full_disk_while_creating_a_run_leaves_it_reusable() {
    let tmp = tempfile::tempdir().unwrap();
    for n in 1..=4 {
        let dir = tmp.path().join(format!("new-{n}"));
        let o = bin()
            .env("COBRAR_INJECT_FAULT", format!("disk@write:{n}"))
            .args([
                "train", "--arch", "16,8", "--epochs", "1", "--quiet", "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        let line = error_line(&o);
        assert!(line.contains("No space left"), "{n}: {line}");
        assert!(
            !dir.exists(),
            "write {n}: a half-made run directory was left"
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "write {n} left {left:?}");
    }
    // A folder the user made first is filled in place: a fault leaves what the next run reuses.
    let made = tmp.path().join("made");
    std::fs::create_dir(&made).unwrap();
    let o = bin()
        .env("COBRAR_INJECT_FAULT", "disk@write:3")
        .args([
            "train", "--arch", "16,8", "--epochs", "1", "--quiet", "--out",
        ])
        .arg(&made)
        .output()
        .unwrap();
    error_line(&o);
    finished(&made, &[]);
    assert!(made.join("metrics.json").is_file());
}

/// The smaller cases: each ends with one line, or (for an unfinished run) a note.
#[test]
fn smaller_cases_each_get_a_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    // Flags a model ignores.
    for (flags, says) in [
        (
            &["--model", "bpr", "--negatives", "5"][..],
            "--negatives does not apply to bpr",
        ),
        (
            &["--model", "mostpop", "--lr", "0.01"],
            "--lr does not apply to mostpop",
        ),
        (
            &["--model", "multvae", "--anneal-cap", "1.5"],
            "--anneal-cap",
        ),
        (&["--model", "multvae", "--anneal-cap=-0.1"], "--anneal-cap"),
    ] {
        let dir = tmp.path().join("flags");
        let line = error_line(&train_small(&dir, flags));
        assert!(line.contains(says), "{flags:?}: {line}");
        assert!(!dir.exists());
    }
    // A killed run: evaluate/recommend say it is unfinished; --resume beside other flags names them
    // (no internal type names); a deleted progress file is an error, not a restart from epoch 0.
    let killed = tmp.path().join("killed");
    let o = bin()
        .env("COBRAR_KILL_AT", "epoch:1")
        .args([
            "train",
            "--arch",
            "16,8",
            "--epochs",
            "3",
            "--max-steps-per-epoch",
            "4",
            "-q",
            "--out",
        ])
        .arg(&killed)
        .output()
        .unwrap();
    assert!(!o.status.success());
    for cmd in [
        &["evaluate", "--checkpoint", &s(&killed)][..],
        &["recommend", "--checkpoint", &s(&killed), "--user", "u0001"],
    ] {
        let o = run(cmd);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("unfinished run") && stderr(&o).contains("--resume"),
            "{}",
            stderr(&o)
        );
    }
    let line = error_line(&run(&[
        "train",
        "--resume",
        &s(&killed),
        "--lr",
        "0.1",
        "--seed",
        "3",
    ]));
    assert!(
        line.contains("--lr") && line.contains("--seed") && !line.contains("Args"),
        "{line}"
    );
    std::fs::remove_file(killed.join("state").join("progress.safetensors")).unwrap();
    let line = error_line(&run(&["train", "--resume", &s(&killed)]));
    assert!(line.contains("progress"), "{line}");
    // A symbolic-link loop is named as one.
    let (x, y) = (tmp.path().join("x.tsv"), tmp.path().join("y.tsv"));
    std::os::unix::fs::symlink(&y, &x).unwrap();
    std::os::unix::fs::symlink(&x, &y).unwrap();
    let line = error_line(&run(&["data", "stats", &s(&x)]));
    assert!(line.contains("loop of symbolic links"), "{line}");
    // An empty COBRAR_DATA_DIR is no data directory, not an empty --data-dir.
    let o = bin()
        .env("COBRAR_DATA_DIR", "")
        .args(["data", "stats"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2,000") || stdout(&o).contains("2000"),
        "{}",
        stdout(&o)
    );
}

/// Hand-edited weights that overflow (1e38, checksum recomputed) are refused, not ranked as constants.
#[test]
fn overflowing_weights_are_refused() {
    use cobrar_gpu::checkpoint::st;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    finished(&dir, &[]);
    let model = dir.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    let file = st::File::parse(bytes.clone(), &model).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let meta: BTreeMap<String, String> = header["__metadata__"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut tensors = Vec::new();
    for name in header
        .as_object()
        .unwrap()
        .keys()
        .filter(|n| *n != "__metadata__")
    {
        let (shape, mut values) = file.tensor(name, &model).unwrap().unwrap();
        if name.contains("weight") {
            values.iter_mut().for_each(|v| *v = 1e38);
        }
        tensors.push((name.clone(), shape, values));
    }
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, shape, data)| st::Tensor {
            name: name.clone(),
            shape: shape.clone(),
            data: cobrar_gpu::checkpoint::st::Data::F32(data),
        })
        .collect();
    std::fs::write(&model, st::serialize(&views, &meta)).unwrap();
    for cmd in [
        &["evaluate", "--checkpoint", &s(&dir)][..],
        &["recommend", "--checkpoint", &s(&dir), "--user", "u0001"],
        &[
            "export",
            "--checkpoint",
            &s(&dir),
            "--out",
            &s(&tmp.path().join("e.safetensors")),
        ],
    ] {
        let line = error_line(&run(cmd));
        assert!(line.contains("non-finite"), "{cmd:?}: {line}");
    }
}

/// The README's first command stops by the embedded dataset's own rule (patience 5, at most 20
/// epochs) unless told otherwise; any other dataset keeps the study's (10 of at most 100).
#[test]
fn the_embedded_dataset_has_its_own_stopping_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let config = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(dir.join("config.json")).unwrap(),
        )
        .unwrap()["train"]
            .clone()
    };
    let embedded = tmp.path().join("embedded");
    let o = run(&[
        "train",
        "--arch",
        "16,8",
        "--max-steps-per-epoch",
        "2",
        "--epochs",
        "1",
        "--out",
        &s(&embedded),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("patience 5"), "{}", stderr(&o));
    assert_eq!(config(&embedded)["patience"], 5);
    assert_eq!(config(&embedded)["max_epochs"], 1);
    let told = tmp.path().join("told");
    finished(&told, &["--patience", "10"]);
    assert_eq!(config(&told)["patience"], 10);
    let split = tmp.path().join("split");
    assert!(
        run(&["data", "split", "--out", &s(&split)])
            .status
            .success()
    );
    let file = tmp.path().join("file");
    let o = run(&[
        "train",
        "--dataset",
        &s(&split),
        "--arch",
        "16,8",
        "--max-steps-per-epoch",
        "2",
        "--quiet",
        "--out",
        &s(&file),
    ]);
    // Two steps an epoch cannot improve for long: the study's rule stops it after 10 epochs.
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config(&file)["patience"], 10);
    assert_eq!(config(&file)["max_epochs"], 100);
}
