//! Helpers of the command tests: run the binary, read its output, find its one error line.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cobrar-gpu"));
    c.env("NODEVICE_SELECT", "1");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run cobrar-gpu")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The error line of a failed run (stderr may also carry driver noise on some systems).
pub fn error_line(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error: ") && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    lines[0].to_string()
}

/// A short training run on the embedded dataset.
pub fn train_small(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--arch",
        "32,16",
        "--epochs",
        "2",
        "--max-steps-per-epoch",
        "12",
        "--quiet",
        "--out",
    ];
    let d = dir.display().to_string();
    args.push(&d);
    args.extend(extra);
    run(&args)
}

/// Every file below `dir` with its bytes (the "file system as it was"); a special file (a FIFO, a
/// link) by its type. A missing `dir` is empty.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            } else {
                out.insert(p.clone(), format!("{t:?}").into_bytes());
            }
        }
    }
    out
}
