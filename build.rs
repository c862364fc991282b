//! Records the git revision the binary was built from (`metrics.json` and `config.json` carry it).
//!
//! It never writes to the repository: `git status` would refresh `.git/index`, and a build script
//! that both touches the index and watches it recompiles the crate after every git command. The
//! revision is read with `git rev-parse`, the work tree compared with `git diff --quiet HEAD` under
//! `GIT_OPTIONAL_LOCKS=0` (no index refresh), and the script reruns only when HEAD moves (`.git/HEAD`,
//! the branch it points to, packed refs) or the sources it describes change.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
}

fn main() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    // Exit status 1: the tracked files differ from HEAD.
    let dirty = git(&["diff", "--quiet", "HEAD", "--"]).is_some_and(|o| o.status.code() == Some(1));
    let value = match (rev.is_empty(), dirty) {
        (true, _) => "unknown".to_string(),
        (false, true) => format!("{rev}-dirty"),
        (false, false) => rev,
    };
    println!("cargo:rustc-env=COBRAR_GIT_REV={value}");
    // HEAD lives in the git directory, the branches in the common one (they differ in a worktree).
    let dir_of = |flag: &str| {
        git(&["rev-parse", flag])
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let (Some(git_dir), Some(common)) = (dir_of("--git-dir"), dir_of("--git-common-dir")) {
        let (git_dir, common) = (Path::new(&git_dir), Path::new(&common));
        watch(&git_dir.join("HEAD"));
        watch(&common.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        {
            watch(&common.join(branch));
        }
    }
    // The files whose edits make the work tree dirty for this crate.
    for p in [
        "src",
        "shaders",
        "assets",
        "grids",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
    ] {
        watch(Path::new(p));
    }
}

/// A rerun trigger on `path` — only where it exists: Cargo treats a missing trigger as changed on
/// every build (a clone without `.git/packed-refs` would recompile the crate each time).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
