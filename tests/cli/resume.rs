//! `train --resume`: a run killed at any point — mid-epoch, at an epoch's end, in the middle of a
//! checkpoint write, by a real SIGKILL at a random moment, by a lost GPU, a GPU out of memory or a full
//! disk — continues from its last completed epoch and ends with exactly the weights (same bytes) and
//! metrics of an uninterrupted run, with no stray temporary files left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{bin, error_line, stderr};

const ARGS: &[&str] = &[
    "train",
    "--arch",
    "32,16",
    "--epochs",
    "4",
    "--max-steps-per-epoch",
    "10",
    "--patience",
    "0",
    "--seed",
    "5",
    "--quiet",
];

fn train_cmd(out: &Path) -> Command {
    let mut c = bin();
    c.args(ARGS).arg("--out").arg(out);
    c
}

fn resume(dir: &Path) -> Output {
    bin()
        .args(["train", "--quiet", "--resume"])
        .arg(dir)
        .output()
        .unwrap()
}

/// The bytes of the weights and the metrics that must not depend on interruptions.
fn result(dir: &Path) -> (Vec<u8>, serde_json::Value) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    let keep = serde_json::json!({
        "validation": m["validation"],
        "test": m["test"],
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
    });
    (std::fs::read(dir.join("model.safetensors")).unwrap(), keep)
}

fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

fn stray_temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in [
        dir.to_path_buf(),
        dir.join("split"),
        dir.join("ids"),
        dir.join("state"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&d) {
            out.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp")),
            );
        }
    }
    out
}

fn reference(tmp: &Path) -> (Vec<u8>, serde_json::Value, Vec<f64>) {
    let dir = tmp.join("reference");
    let o = train_cmd(&dir).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, m) = result(&dir);
    (w, m, losses(&dir))
}

fn assert_same(dir: &Path, want: &(Vec<u8>, serde_json::Value, Vec<f64>), what: &str) {
    let (w, m) = result(dir);
    assert!(
        w == want.0,
        "{what}: the weights differ from an uninterrupted run"
    );
    assert_eq!(m, want.1, "{what}: metrics differ");
    assert_eq!(losses(dir), want.2, "{what}: the epochs' losses differ");
    assert!(
        stray_temporaries(dir).is_empty(),
        "{what}: {:?}",
        stray_temporaries(dir)
    );
    assert!(
        !dir.join("state").exists(),
        "{what}: a finished run keeps no state"
    );
}

/// Lazy Adam's per-row step counts are optimizer state: a killed run restores them (a resume that
/// started them at zero would take other bias corrections and end elsewhere).
#[test]
fn a_lazy_adam_run_killed_mid_training_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let lazy = |dir: &Path| {
        let mut c = train_cmd(dir);
        c.args(["--optimizer", "lazy-adam"]);
        c
    };
    let dir = tmp.path().join("lazy-reference");
    let o = lazy(&dir).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, m) = result(&dir);
    let want = (w, m, losses(&dir));
    let dense = reference(tmp.path());
    assert!(
        want.0 != dense.0,
        "lazy Adam trained the same weights as Adam"
    );
    for kill in ["step:17", "epoch:3"] {
        let dir = tmp.path().join(kill.replace(':', "-"));
        let o = lazy(&dir).env("COBRAR_KILL_AT", kill).output().unwrap();
        assert!(!o.status.success(), "{kill}: the run was not killed");
        let o = resume(&dir);
        assert!(o.status.success(), "{kill}: {}", stderr(&o));
        assert_same(&dir, &want, &format!("lazy-adam {kill}"));
    }
}

#[test]
fn a_run_killed_at_any_point_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    // Mid-epoch, at epoch ends (the last one included), in the middle of the progress file's write,
    // and in the middle of the 9th atomic write (epoch 1's checkpoint files).
    for kill in [
        "step:3",
        "step:17",
        "epoch:2",
        "epoch:4",
        "checkpoint:2",
        "write:9",
    ] {
        let dir = tmp.path().join(kill.replace(':', "-"));
        let o = train_cmd(&dir)
            .env("COBRAR_KILL_AT", kill)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{kill}: the run was not killed");
        if kill.starts_with("checkpoint") {
            assert!(
                !stray_temporaries(&dir).is_empty(),
                "the kill left no half-written file"
            );
        }
        let o = resume(&dir);
        assert!(o.status.success(), "{kill}: {}", stderr(&o));
        assert_same(&dir, &want, kill);
    }
    // Killed twice.
    let dir = tmp.path().join("twice");
    assert!(
        !train_cmd(&dir)
            .env("COBRAR_KILL_AT", "step:13")
            .output()
            .unwrap()
            .status
            .success()
    );
    let o = bin()
        .env("COBRAR_KILL_AT", "step:27")
        .args(["train", "--quiet", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(resume(&dir).status.success());
    assert_same(&dir, &want, "killed twice");
    // A finished run has nothing to resume.
    let line = error_line(&resume(&dir));
    assert!(line.contains("finished run"), "{line}");
    // --resume takes the run's own configuration.
    let line = error_line(
        &bin()
            .args(["train", "--resume"])
            .arg(&dir)
            .args(["--lr", "0.1"])
            .output()
            .unwrap(),
    );
    assert!(line.contains("drop --lr"), "{line}");
}

#[test]
fn a_sigkill_at_a_random_moment_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for (k, frac) in [(seed % 997) as f64 / 997.0, (seed % 991) as f64 / 991.0]
        .into_iter()
        .enumerate()
    {
        let dir = tmp.path().join(format!("sigkill{k}"));
        let mut child = train_cmd(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere between the start and the end of training (a run here takes a few seconds).
        let delay = std::time::Duration::from_millis(300 + (frac * 2500.0) as u64);
        eprintln!("SIGKILL after {delay:?}");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            assert_same(&dir, &want, "finished before the kill");
            continue;
        }
        let o = if dir.join("config.json").exists() {
            resume(&dir)
        } else {
            // Killed before the run directory was complete: start it over.
            train_cmd(&dir).arg("--overwrite").output().unwrap()
        };
        assert!(
            o.status.success(),
            "after SIGKILL at {delay:?}: {}",
            stderr(&o)
        );
        assert_same(&dir, &want, &format!("SIGKILL after {delay:?}"));
    }
}

#[test]
fn gpu_and_disk_faults_end_with_one_line_and_a_resumable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    for (fault, says) in [
        ("lost@submit:25", "GPU device was lost"),
        ("oom@submit:32", "GPU out of memory"),
        ("disk@write:13", "No space left on device"),
    ] {
        let dir = tmp.path().join(fault.replace([':', '@'], "-"));
        let o = train_cmd(&dir)
            .env("COBRAR_INJECT_FAULT", fault)
            .output()
            .unwrap();
        let line = error_line(&o);
        assert!(line.contains(says), "{fault}: {line}");
        assert!(line.contains("--resume"), "{fault}: no resume hint: {line}");
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        let o = resume(&dir);
        assert!(o.status.success(), "{fault}: {}", stderr(&o));
        assert_same(&dir, &want, fault);
    }
}

/// The training hooks' stop (the Python package's Ctrl-C): asked after every step, it ends training
/// before the next one with `Interrupted`, the run unlocked and resumable to the same result.
#[test]
fn a_stop_requested_by_the_hooks_ends_at_the_next_step_and_resumes_to_the_same_result() {
    use clap::Parser;
    use cobrar_gpu::train::{EpochRecord, Interrupted, TrainHooks, with_hooks};
    use std::sync::{Arc, Mutex};

    struct StopAt(usize, usize, Mutex<Vec<(usize, usize)>>);
    impl TrainHooks for StopAt {
        fn begin(&self, first: usize, max: usize, steps: usize) {
            assert_eq!((first, max, steps), (1, 4, 10));
        }
        fn step(&self, epoch: usize, step: usize, _: usize) -> bool {
            self.2.lock().unwrap().push((epoch, step));
            (epoch, step) == (self.0, self.1)
        }
        fn epoch(&self, _: &EpochRecord) -> anyhow::Result<()> {
            Ok(())
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    let dir = tmp.path().join("stopped");
    let hooks = Arc::new(StopAt(2, 3, Mutex::new(Vec::new())));
    let mut argv = vec!["cobrar-gpu".to_string()];
    argv.extend(ARGS.iter().map(|s| s.to_string()));
    argv.extend(["--out".to_string(), dir.display().to_string()]);
    let cli = cobrar_gpu::cli::Cli::try_parse_from(argv).unwrap();
    let err = with_hooks(Some(hooks.clone()), || cobrar_gpu::cli::run(cli)).unwrap_err();
    let stopped = err
        .downcast_ref::<Interrupted>()
        .expect("stopped by the hook");
    assert_eq!((stopped.epoch, stopped.step), (2, 3));
    // Nothing ran after the step that asked to stop.
    assert_eq!(hooks.2.lock().unwrap().last(), Some(&(2, 3)));
    assert!(dir.join("state").is_dir() && !dir.join("metrics.json").exists());
    assert!(
        !dir.join(".cobrar-gpu.lock").exists(),
        "the lock is released"
    );
    assert_eq!(losses(&dir).len(), 1, "epoch 1 was committed");
    let o = resume(&dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&dir, &want, "stopped by the hooks");
}
