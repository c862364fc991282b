//! Output safety: nothing is overwritten silently, two processes never write one run directory, and
//! writes a killed process left half-done are swept away on the next start.
//!
//! - [`check_new_dir`] refuses an existing, non-empty folder unless `--overwrite`, and says what is
//!   there (a finished run, an unfinished one that `--resume` continues, other files); the rest of the
//!   output discipline (special files, other runs' files, a command's inputs) is `crate::output`'s.
//! - [`RunLock`] is an exclusive lock file in a run directory holding the owner's process id; a lock
//!   whose process is gone (killed) is taken over.

mod run;
pub use run::RunDir;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The run's configuration (`report::run::RunConfig`), written first: its presence makes a run.
pub const CONFIG_FILE: &str = "config.json";
/// The best epoch's weights (`checkpoint`).
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// One line per finished epoch.
pub const TRAIN_LOG_FILE: &str = "train_log.jsonl";
/// The finished run's metrics: its absence marks an unfinished run.
pub const METRICS_FILE: &str = "metrics.json";
pub const USER_METRICS_FILE: &str = "user_metrics.tsv";
pub const RECOMMENDATIONS_FILE: &str = "recommendations.tsv";
pub const CURVE_FILE: &str = "training_curve.svg";
/// The split the run trained on (`data::write_split`).
pub const SPLIT_DIR: &str = "split";
/// The original ids of the dense indices (`checkpoint`).
pub const IDS_DIR: &str = "ids";
/// The side information the run trained with, where it had any (`checkpoint::save_features`).
pub const FEATURES_DIR: &str = "features";
/// The last committed epoch's full state, for `--resume` (`checkpoint::state`).
pub const STATE_DIR: &str = "state";

/// The files and folders a run directory holds (what `--overwrite` replaces).
pub const RUN_ENTRIES: &[&str] = &[
    CONFIG_FILE,
    WEIGHTS_FILE,
    TRAIN_LOG_FILE,
    METRICS_FILE,
    USER_METRICS_FILE,
    RECOMMENDATIONS_FILE,
    CURVE_FILE,
    SPLIT_DIR,
    IDS_DIR,
    FEATURES_DIR,
    STATE_DIR,
];

pub const LOCK_FILE: &str = ".cobrar-gpu.lock";

/// What an existing directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Missing,
    Empty,
    /// A run whose creation was interrupted (a full disk, a kill): some of a run's own entries but
    /// no `config.json`. Reused by the next run as if empty.
    Unstarted,
    FinishedRun,
    UnfinishedRun,
    Other,
}

pub fn inspect(dir: &Path) -> anyhow::Result<Existing> {
    if !dir.exists() {
        return Ok(Existing::Missing);
    }
    if !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    if names.is_empty() {
        return Ok(Existing::Empty);
    }
    Ok(if dir.join("metrics.json").is_file() {
        Existing::FinishedRun
    } else if dir.join("config.json").is_file() && dir.join("split").is_dir() {
        Existing::UnfinishedRun
    } else if names.iter().all(|n| {
        (RUN_ENTRIES.contains(&n.as_str()) && n != "config.json") || crate::util::is_temporary(n)
    }) {
        Existing::Unstarted
    } else {
        Existing::Other
    })
}

/// Refuses an existing, non-empty `dir` unless `overwrite`, naming what it holds.
pub fn check_new_dir(dir: &Path, overwrite: bool, what: &str) -> anyhow::Result<Existing> {
    let e = inspect(dir)?;
    if overwrite {
        return Ok(e);
    }
    let d = dir.display();
    match e {
        Existing::Missing | Existing::Empty | Existing::Unstarted => Ok(e),
        Existing::FinishedRun => bail!(
            "{d} holds a finished run; choose another {what} or pass --overwrite to replace it"
        ),
        Existing::UnfinishedRun => bail!(
            "{d} holds an unfinished run: continue it with `cobrar-gpu train --resume {d}`, or pass \
             --overwrite to start over"
        ),
        Existing::Other => bail!(
            "{d} exists and is not empty; choose another {what} or pass --overwrite to replace \
             its contents"
        ),
    }
}

/// Creates the run directory `dir` (what [`check_new_dir`] found there: `existing`), filling it with
/// `fill` — the files that make a run directory (`config.json` last) — and returns its lock.
///
/// A new directory is filled under a temporary sibling name and renamed into place, so a fault while
/// filling it (a full disk, a kill) leaves nothing behind. An existing one (empty, an interrupted
/// creation, or a run `--overwrite` replaces) is locked first, cleared of a run's entries and filled
/// in place; a fault then leaves an interrupted creation, which the next run reuses.
pub fn create_run(
    dir: &Path,
    existing: Existing,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<RunLock> {
    if existing == Existing::Missing {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let staging = parent.join(format!(".{name}.creating-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let filled = fill(&staging).and_then(|()| {
            std::fs::rename(&staging, dir)
                .with_context(|| format!("cannot create {}", dir.display()))
        });
        if let Err(e) = filled {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        return RunLock::acquire(dir);
    }
    let lock = RunLock::acquire(dir)?;
    clear_run_entries(dir)?;
    sweep_temporaries(dir);
    fill(dir)?;
    Ok(lock)
}

/// Removes a run's own files from `dir` (`--overwrite`), leaving anything else.
pub fn clear_run_entries(dir: &Path) -> anyhow::Result<()> {
    for name in RUN_ENTRIES {
        let p = dir.join(name);
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else if p.exists() {
            std::fs::remove_file(&p)
        } else {
            Ok(())
        };
        r.with_context(|| format!("cannot remove {}", p.display()))?;
    }
    Ok(())
}

/// Deletes the temporary files an interrupted atomic write left in `dir` and its run folders.
pub fn sweep_temporaries(dir: &Path) -> usize {
    let mut n = 0;
    for d in [
        dir.to_path_buf(),
        dir.join("state"),
        dir.join("split"),
        dir.join(IDS_DIR),
        dir.join(FEATURES_DIR),
    ] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if crate::util::is_temporary(&name) && std::fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
    }
    n
}

/// An exclusive lock on a run directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // cannot tell: treat the lock as held
    }
}

impl RunLock {
    /// Takes the lock of `dir` (created if needed), or says which process holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<RunLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid: Option<u32> = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    match pid {
                        Some(p) if p != std::process::id() && process_alive(p) => bail!(
                            "{} is in use by another cobrar-gpu process (pid {p}); wait for it to \
                             finish, or remove {} if that process is gone",
                            dir.display(),
                            path.display()
                        ),
                        // The owner is gone (killed): take the lock over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!("cannot take the lock {}", path.display())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_destinations_are_refused_with_what_they_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("run");
        assert_eq!(
            check_new_dir(&d, false, "--out").unwrap(),
            Existing::Missing
        );
        std::fs::create_dir_all(d.join("split")).unwrap();
        // A run's own entries without config.json: a creation that was interrupted, reusable.
        assert_eq!(inspect(&d).unwrap(), Existing::Unstarted);
        assert_eq!(
            check_new_dir(&d, false, "--out").unwrap(),
            Existing::Unstarted
        );
        std::fs::write(d.join("notes.txt"), "mine").unwrap();
        assert_eq!(inspect(&d).unwrap(), Existing::Other);
        std::fs::remove_file(d.join("notes.txt")).unwrap();
        std::fs::write(d.join("config.json"), "{}").unwrap();
        let e = check_new_dir(&d, false, "--out").unwrap_err().to_string();
        assert!(e.contains("--resume"), "{e}");
        std::fs::write(d.join("metrics.json"), "{}").unwrap();
        let e = check_new_dir(&d, false, "--out").unwrap_err().to_string();
        assert!(e.contains("finished run"), "{e}");
        assert!(check_new_dir(&d, true, "--out").is_ok());
        clear_run_entries(&d).unwrap();
        assert_eq!(inspect(&d).unwrap(), Existing::Empty);
    }

    #[test]
    fn a_lock_excludes_a_second_owner_and_a_dead_owners_lock_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(tmp.path()).unwrap();
        // Same process: a second acquire would take over its own lock; simulate another live owner.
        std::fs::write(tmp.path().join(LOCK_FILE), "1\n").unwrap(); // pid 1 is always alive
        if cfg!(target_os = "linux") {
            let e = RunLock::acquire(tmp.path()).unwrap_err().to_string();
            assert!(
                e.contains("in use by another cobrar-gpu process (pid 1)"),
                "{e}"
            );
        }
        // A pid that cannot exist: stale.
        std::fs::write(tmp.path().join(LOCK_FILE), "4294967295\n").unwrap();
        drop(lock);
        std::fs::write(tmp.path().join(LOCK_FILE), "4294967295\n").unwrap();
        let again = RunLock::acquire(tmp.path()).unwrap();
        drop(again);
        assert!(!tmp.path().join(LOCK_FILE).exists());
    }
}
