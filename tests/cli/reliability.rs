//! The reliability contract (SPEC §8), one test per case a hostile tester found: rejected commands leave
//! the file system as it was, nothing is overwritten silently, divergence and corrupted or non-finite
//! weights are errors, oversized models get one line, a closed pipe ends quietly, degenerate settings
//! name their range, messages say what is really wrong, and Mesa's noise stays out of the output.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{bin, error_line, run, snapshot, stderr, train_small};

/// A finished run, the file system as it is now, and the run's path as text.
fn finished_run(tmp: &Path) -> (PathBuf, BTreeMap<PathBuf, Vec<u8>>, String) {
    let dir = tmp.join("run");
    let o = train_small(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = dir.display().to_string();
    (dir.clone(), snapshot(&dir), d)
}

#[test]
fn rejected_commands_leave_the_file_system_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, before, d) = finished_run(tmp.path());
    for bad in [
        &["--lr", "nan"][..],
        &["--epochs", "0"],
        &["--mu", "2"],
        &["--lr", "nan", "--overwrite"],
        &["--arch", "100000000,64", "--overwrite"],
    ] {
        let mut args = vec!["train", "--quiet", "--out", &d];
        args.extend(bad);
        let line = error_line(&run(&args));
        assert!(
            line.contains("must be") || line.contains("MiB"),
            "{bad:?}: {line}"
        );
        assert_eq!(snapshot(&dir), before, "{bad:?} changed the finished run");
    }
    // A fresh directory is not even created, and without --out no runs/ folder appears.
    let fresh = tmp.path().join("fresh");
    error_line(&train_small(&fresh, &["--lr", "-1"]));
    assert!(!fresh.exists(), "a rejected train created its --out");
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let o = bin()
        .current_dir(&cwd)
        .args(["train", "--negatives", "0"])
        .output()
        .unwrap();
    error_line(&o);
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "runs/ was created"
    );
}

#[test]
fn existing_outputs_are_never_overwritten_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, before, d) = finished_run(tmp.path());

    // Over a finished run.
    let line = error_line(&train_small(&dir, &[]));
    assert!(
        line.contains("finished run") && line.contains("--overwrite"),
        "{line}"
    );
    // Into the run's own files.
    let model = dir.join("model.safetensors");
    let line = error_line(&run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--all",
        "--out",
        model.to_str().unwrap(),
        "--overwrite",
    ]));
    assert!(line.contains("is a file of the run directory"), "{line}");
    let emb = dir.join("split").join("emb.safetensors");
    let line = error_line(&run(&[
        "export",
        "--checkpoint",
        &d,
        "--out",
        emb.to_str().unwrap(),
    ]));
    assert!(line.contains("is a file of the run directory"), "{line}");
    assert_eq!(snapshot(&dir), before);

    // An existing output file needs --overwrite.
    let recs = tmp.path().join("recs.tsv");
    std::fs::write(&recs, "mine\n").unwrap();
    let line = error_line(&run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--all",
        "--out",
        recs.to_str().unwrap(),
    ]));
    assert!(line.contains("--overwrite"), "{line}");
    assert_eq!(std::fs::read_to_string(&recs).unwrap(), "mine\n");
    let o = run(&[
        "recommend",
        "--checkpoint",
        &d,
        "--all",
        "-k",
        "2",
        "--out",
        recs.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A folder holding the user's own files, and an existing split folder.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(mine.join("split")).unwrap();
    std::fs::write(mine.join("config.json"), "my config").unwrap();
    std::fs::write(mine.join("split/train.tsv"), "my data").unwrap();
    let line = error_line(&train_small(&mine, &[]));
    assert!(line.contains("--overwrite"), "{line}");
    assert_eq!(
        std::fs::read_to_string(mine.join("config.json")).unwrap(),
        "my config"
    );
    let line = error_line(&run(&["data", "split", "--out", mine.to_str().unwrap()]));
    assert!(
        line.contains("not empty") || line.contains("unfinished"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("split/train.tsv")).unwrap(),
        "my data"
    );

    // A killed run is not restarted over: --resume continues it.
    let killed = tmp.path().join("killed");
    let o = bin()
        .env("COBRAR_KILL_AT", "step:3")
        .args([
            "train",
            "--arch",
            "16,8",
            "--epochs",
            "2",
            "--max-steps-per-epoch",
            "5",
            "-q",
            "--out",
        ])
        .arg(&killed)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let line = error_line(&train_small(&killed, &[]));
    assert!(line.contains("--resume"), "{line}");
}

#[test]
fn two_processes_never_write_one_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    let mut first = bin()
        .args([
            "train",
            "--arch",
            "32,16",
            "--epochs",
            "50",
            "--max-steps-per-epoch",
            "20",
            "-q",
            "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first one owns the directory.
    let t0 = std::time::Instant::now();
    while !dir.join("config.json").exists() {
        assert!(
            t0.elapsed().as_secs() < 120,
            "the first training never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let line = error_line(&train_small(&dir, &["--overwrite"]));
    assert!(
        line.contains("in use by another cobrar-gpu process"),
        "{line}"
    );
    let line = error_line(&run(&["train", "--resume", dir.to_str().unwrap()]));
    assert!(line.contains("in use"), "{line}");
    first.kill().unwrap();
    first.wait().unwrap();
    // The lock of a killed owner is taken over.
    let o = run(&["train", "--resume", dir.to_str().unwrap(), "--quiet"]);
    assert!(!stderr(&o).contains("in use"), "{}", stderr(&o));
}

#[test]
fn divergence_is_an_error_and_never_a_saved_result() {
    let tmp = tempfile::tempdir().unwrap();
    for flags in [
        &["--lr", "1e30"][..],
        &["--lr", "1e30", "--model", "deepmf"],
    ] {
        let dir = tmp.path().join(format!("div{}", flags.len()));
        let line = error_line(&train_small(&dir, flags));
        assert!(
            line.contains("diverged") && line.contains("epoch"),
            "{line}"
        );
        assert!(!dir.join("metrics.json").exists());
        if dir.join("model.safetensors").exists() {
            // Whatever was saved is a finite epoch's.
            let o = run(&["evaluate", "--checkpoint", dir.to_str().unwrap()]);
            assert!(!stderr(&o).contains("non-finite"), "{}", stderr(&o));
        }
    }
}

#[test]
fn corrupted_or_non_finite_weights_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, d) = finished_run(tmp.path());
    let model = dir.join("model.safetensors");
    let good = std::fs::read(&model).unwrap();
    // 100 flipped bytes in the data.
    let mut bad = good.clone();
    let n = bad.len();
    for k in 0..100 {
        bad[n - 1 - 37 * k] ^= 0x5a;
    }
    std::fs::write(&model, &bad).unwrap();
    let line = error_line(&run(&["evaluate", "--checkpoint", &d]));
    assert!(line.contains("corrupted"), "{line}");
    // A valid file (checksum and all) whose weights are NaN.
    let file = cobrar_gpu::checkpoint::st::File::parse(good.clone(), &model).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&good[8..8 + header_len]).unwrap();
    let mut tensors = Vec::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let (shape, mut values) = file.tensor(name, &model).unwrap().unwrap();
        if name == "branch.0.bias" {
            values[3] = f32::NAN;
        }
        assert_eq!(info["dtype"], "F32");
        tensors.push((name.clone(), shape, values));
    }
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, shape, values)| cobrar_gpu::checkpoint::st::Tensor {
            name: name.clone(),
            shape: shape.clone(),
            data: cobrar_gpu::checkpoint::st::Data::F32(values),
        })
        .collect();
    std::fs::write(
        &model,
        cobrar_gpu::checkpoint::st::serialize(&views, &BTreeMap::new()),
    )
    .unwrap();
    for cmd in [
        &["evaluate", "--checkpoint", &d][..],
        &["recommend", "--checkpoint", &d, "--user", "u0001"],
    ] {
        let line = error_line(&run(cmd));
        assert!(
            line.contains("non-finite") && line.contains("branch.0.bias"),
            "{line}"
        );
    }
    // The same weights give the same bytes.
    std::fs::write(&model, &good).unwrap();
    let again = tmp.path().join("again");
    let o = train_small(&again, &[]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(again.join("model.safetensors")).unwrap(),
        good
    );
}

#[test]
fn a_config_that_does_not_match_the_weights_says_what_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, _) = finished_run(tmp.path());
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"32,16\"", "\"32,8\"");
    std::fs::write(&cfg, text).unwrap();
    let line = error_line(&run(&["evaluate", "--checkpoint", dir.to_str().unwrap()]));
    assert!(
        line.contains("shape") && line.contains("config.json"),
        "{line}"
    );
    assert!(!line.contains("split"), "{line}");
}

#[test]
fn oversized_models_get_one_line_with_the_numbers() {
    for arch in ["100000000,64", "4000000,64"] {
        let o = run(&["train", "--arch", arch, "--out", "/nonexistent/never"]);
        let line = error_line(&o);
        assert!(line.contains("MiB") && line.contains("--arch"), "{line}");
        assert_eq!(o.status.code(), Some(2));
        assert!(!stderr(&o).contains("panicked") && !stderr(&o).contains("memory allocation"));
    }
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, _) = finished_run(tmp.path());
    let mut child = bin()
        .args(["evaluate", "--checkpoint", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // … | head -1: the reader goes away
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("validation"), "{first}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn degenerate_settings_are_rejected_with_their_range() {
    for (flags, names) in [
        (&["--mu", "2"][..], "--mu must be in [0, 1)"),
        (&["--mu", "-1"], "--mu must be in [0, 1)"),
        (&["--negatives", "0"], "--negatives must be at least 1"),
        (
            &["--max-steps-per-epoch", "0"],
            "--max-steps-per-epoch must be at least 1",
        ),
        (&["--select-k", "0"], "--select-k must be between 1 and 128"),
        (
            &["--weight-decay", "inf"],
            "--weight-decay must be a finite number",
        ),
        (&["--dropout", "1"], "--dropout must be in [0, 1)"),
    ] {
        let mut args = vec!["train"];
        args.extend(flags);
        let line = error_line(&run(&args));
        assert!(line.contains(names), "{flags:?}: {line}");
    }
}

#[test]
fn empty_evaluation_splits_are_refused_unless_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let line = error_line(&train_small(&tmp.path().join("a"), &["--val-ratio", "0"]));
    assert!(
        line.contains("validation split") && line.contains("--no-validation"),
        "{line}"
    );
    let line = error_line(&train_small(&tmp.path().join("b"), &["--test-ratio", "0"]));
    assert!(line.contains("test split"), "{line}");
    let o = train_small(
        &tmp.path().join("c"),
        &["--val-ratio", "0", "--no-validation"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn dropped_records_are_reported_and_negative_ratings_are_not_positives() {
    let tmp = tempfile::tempdir().unwrap();
    // Generic text with ratings: two negative ones.
    let f = tmp.path().join("feedback.tsv");
    let mut text = String::new();
    for u in 0..12 {
        for i in 0..12 {
            let r = if (u, i) == (0, 0) || (u, i) == (3, 5) {
                -1
            } else {
                4
            };
            text.push_str(&format!("u{u}\ti{i}\t{r}\n"));
        }
    }
    std::fs::write(&f, text).unwrap();
    let o = run(&["data", "stats", f.to_str().unwrap(), "--kcore", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("2 records with a negative rating dropped"),
        "{out}"
    );
    // A published split whose validation/test rows name users unknown to training.
    let pre = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/presplit");
    let o = run(&["data", "stats", pre.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("with a user unknown to training"), "{out}");
}

#[test]
fn messages_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    // Data piped through /dev/stdin is read once.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/ratings.dat");
    let o = bin()
        .args(["data", "stats", "/dev/stdin", "--kcore", "0"])
        .stdin(std::fs::File::open(&data).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("movielens"));
    // A file without newlines stops at the line cap instead of running forever.
    let o = run(&["data", "stats", "/dev/zero"]);
    let line = error_line(&o);
    assert!(
        line.contains("/dev/zero:1: line longer than 1 MiB"),
        "{line}"
    );
    // One cause, printed once.
    let dir = tmp.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let line = error_line(&run(&[
        "data",
        "stats",
        dir.join("missing.dat").to_str().unwrap(),
    ]));
    assert_eq!(
        line.matches("No such file").count() + line.matches("no such file").count(),
        1,
        "{line}"
    );
}

#[test]
fn mesa_device_select_noise_stays_out_of_the_output() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cobrar-gpu"))
        .env_remove("NODEVICE_SELECT")
        .env_remove("XDG_RUNTIME_DIR")
        .arg("adapters")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR"),
        "{}",
        stderr(&o)
    );
}
