//! One output discipline for every command that writes a file or a folder the user names:
//!
//! - an existing path is refused unless `--overwrite`;
//! - even with `--overwrite`, anything that is not a regular file (or, for folders, a directory) is
//!   refused: devices, FIFOs, sockets (a symbolic link is followed and judged by its target, and a link
//!   loop is named as one);
//! - even with `--overwrite`, no file of any run directory (recognised by its `config.json` and
//!   `split/`, or `metrics.json`) is replaced, nor any of the command's own inputs;
//! - files are written through a temporary file and an atomic rename (`util::write_atomic`), into the
//!   resolved path, so a symbolic link keeps pointing at the new contents.
//!
//! [`file`] and [`dir`] return the path to write; commands check every output before they read or
//! compute anything, so a refused command changes nothing.

use std::path::{Component, Path, PathBuf};

use anyhow::bail;

use crate::rundir::{Existing, LOCK_FILE, RUN_ENTRIES};

/// `p` made absolute against the current directory, `.` and `..` removed lexically.
fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The path an output really is: symbolic links followed (a dangling link gives its target's path),
/// the parent resolved when the file does not exist yet.
pub fn resolve(path: &Path, flag: &str) -> anyhow::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(p) => return Ok(p),
        Err(e) if crate::util::is_link_loop(&e) => bail!(
            "{flag} {}: a loop of symbolic links; point it at a real file",
            path.display()
        ),
        Err(_) => {}
    }
    // Missing: a dangling symbolic link writes where it points; else the name under its (resolved)
    // parent.
    if let Ok(target) = std::fs::read_link(path) {
        let base = path.parent().unwrap_or(Path::new("."));
        return resolve(&base.join(target), flag);
    }
    let abs = absolute(path);
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => match std::fs::canonicalize(parent) {
            Ok(p) => Ok(p.join(name)),
            Err(e) if crate::util::is_link_loop(&e) => bail!(
                "{flag} {}: a loop of symbolic links in {}",
                path.display(),
                parent.display()
            ),
            Err(_) => Ok(abs),
        },
        _ => Ok(abs),
    }
}

/// What a path that exists and is not a regular file or directory is, for messages.
fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() || t.is_block_device() {
            return Some("device");
        }
        if t.is_fifo() {
            return Some("FIFO (named pipe)");
        }
        if t.is_socket() {
            return Some("socket");
        }
    }
    (!meta.is_file() && !meta.is_dir()).then_some("special file")
}

/// Whether `dir` is a run directory (a finished or unfinished run).
fn is_run_dir(dir: &Path) -> bool {
    dir.join("metrics.json").is_file()
        || (dir.join("config.json").is_file() && dir.join("split").is_dir())
}

/// The run directory whose own file `p` (resolved) is, if any.
pub fn run_owning(p: &Path) -> Option<PathBuf> {
    let mut child = p;
    while let Some(dir) = child.parent() {
        if is_run_dir(dir) {
            let first = child.file_name()?.to_string_lossy();
            let owned = RUN_ENTRIES.contains(&first.as_ref()) || first == LOCK_FILE;
            return owned.then(|| dir.to_path_buf());
        }
        child = dir;
    }
    None
}

/// Checks a file output named by `flag` (`--out`, `--csv`, `--json`, …): refused when it is a
/// directory or a special file, a file of a run directory, one of `inputs`, or (without `overwrite`)
/// any existing file. Returns the path to write.
pub fn file(path: &Path, flag: &str, overwrite: bool, inputs: &[&Path]) -> anyhow::Result<PathBuf> {
    let target = resolve(path, flag)?;
    let shown = if target == absolute(path) {
        path.display().to_string()
    } else {
        format!("{} (→ {})", path.display(), target.display())
    };
    if let Some(run) = run_owning(&target) {
        bail!(
            "{flag} {shown} is a file of the run directory {}; write the output elsewhere",
            run.display()
        );
    }
    for input in inputs {
        if resolve(input, flag).is_ok_and(|i| i == target) {
            bail!("{flag} {shown} is one of this command's inputs; write the output elsewhere");
        }
    }
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => bail!("{flag} {shown} is a directory; {flag} names a file"),
        Ok(meta) => {
            if let Some(kind) = special_kind(&meta) {
                bail!(
                    "{flag} {shown} is a {kind}, not a regular file: {flag} never replaces one, even \
                     with --overwrite"
                );
            }
            if !overwrite {
                bail!(
                    "{flag} {shown} exists; choose another file or pass --overwrite to replace it"
                );
            }
        }
        Err(_) => {}
    }
    Ok(target)
}

/// Checks a folder output named by `flag`, whatever it holds: refused when it is a file or a special
/// file, or inside a run directory's own files. Returns the folder to write (which may not exist).
/// Commands that own what a folder holds in their own way (`reproduce`'s manifest, `bench-report`'s
/// report files) check its contents themselves; the others use [`dir`].
pub fn folder(path: &Path, flag: &str) -> anyhow::Result<PathBuf> {
    let target = resolve(path, flag)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        if let Some(kind) = special_kind(&meta) {
            bail!("{flag} {} is a {kind}, not a folder", path.display());
        }
        if meta.is_file() {
            bail!(
                "{flag} {} is a file, not a folder; choose a folder",
                path.display()
            );
        }
    }
    if let Some(run) = run_owning(&target) {
        bail!(
            "{flag} {} is inside the run directory {}; choose another folder",
            path.display(),
            run.display()
        );
    }
    Ok(target)
}

/// Checks a folder output named by `flag`: [`folder`]'s refusals, then one of `inputs` inside it, or
/// (without `overwrite`) a non-empty folder; says what an existing folder holds (a finished run, an
/// unfinished one that `--resume` continues). Returns the folder to write and what it holds.
pub fn dir(
    path: &Path,
    flag: &str,
    overwrite: bool,
    inputs: &[&Path],
) -> anyhow::Result<(PathBuf, Existing)> {
    let target = folder(path, flag)?;
    for input in inputs {
        if resolve(input, flag).is_ok_and(|i| i == target || i.starts_with(&target)) {
            bail!(
                "{flag} {} holds this command's input {}; choose another folder",
                path.display(),
                input.display()
            );
        }
    }
    let existing = crate::rundir::check_new_dir(&target, overwrite, flag)?;
    Ok((target, existing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_special_and_run_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("out.csv");
        assert_eq!(
            file(&f, "--csv", false, &[]).unwrap(),
            f.canonicalize().unwrap_or(f.clone())
        );
        std::fs::write(&f, "x").unwrap();
        assert!(
            file(&f, "--csv", false, &[])
                .unwrap_err()
                .to_string()
                .contains("--overwrite")
        );
        assert!(file(&f, "--csv", true, &[]).is_ok());
        assert!(
            file(&f, "--csv", true, &[&f])
                .unwrap_err()
                .to_string()
                .contains("inputs")
        );
        let e = file(Path::new("/dev/null"), "--out", true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("device"), "{e}");
        let run = tmp.path().join("run");
        std::fs::create_dir_all(run.join("split")).unwrap();
        std::fs::write(run.join("config.json"), "{}").unwrap();
        let e = file(&run.join("model.safetensors"), "--out", true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("run directory"), "{e}");
        assert!(file(&run.join("split/train.tsv"), "--out", true, &[]).is_err());
        assert!(file(&run.join("extra.tsv"), "--out", true, &[]).is_ok());
        assert!(file(&tmp.path().join("model.safetensors"), "--out", true, &[]).is_ok());
        // A link into a run directory is judged by its target.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(run.join("config.json"), &link).unwrap();
        assert!(file(&link, "--out", true, &[]).is_err());
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = file(&a, "--out", true, &[]).unwrap_err().to_string();
        assert!(e.contains("loop"), "{e}");
    }

    #[test]
    fn folders_are_refused_when_files_runs_or_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(
            dir(&f, "--out", true, &[])
                .unwrap_err()
                .to_string()
                .contains("is a file")
        );
        let d = tmp.path().join("d");
        assert_eq!(dir(&d, "--out", false, &[]).unwrap().1, Existing::Missing);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("data.tsv"), "1\t2\n").unwrap();
        assert!(dir(&d, "--out", true, &[&d.join("data.tsv")]).is_err());
    }
}
