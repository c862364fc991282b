//! Composes the shaders and records the git revision the binary was built from.
//!
//! Shaders: every stage file `shaders/*.wgsl` with its `//!include lib/NAME.wgsl` lines expanded
//! (`src/gpu/shaders/compose.rs`, shared with the library, which tests it) is written to
//! `OUT_DIR/wgsl/`, and the shader table `OUT_DIR/shaders_table.rs` (one constant per stage, `ALL`,
//! each stage's line map) is generated from the folder itself for `src/gpu/shaders.rs` to include.
//! The script reruns when anything under `shaders/` changes (the folder and each file it read).
//!
//! Git revision (`metrics.json` and `config.json` carry it):
//! It never writes to the repository: `git status` would refresh `.git/index`, and a build script
//! that both touches the index and watches it recompiles the crate after every git command. The
//! revision is read with `git rev-parse`, the work tree compared with `git diff --quiet HEAD` under
//! `GIT_OPTIONAL_LOCKS=0` (no index refresh), and the script reruns only when HEAD moves (`.git/HEAD`,
//! the branch it points to, packed refs) or the sources it describes change.

use std::path::{Path, PathBuf};
use std::process::Command;

// The library uses the rest of it (error messages mapped through the line map).
#[allow(dead_code)]
#[path = "src/gpu/shaders/compose.rs"]
mod compose;

fn git(args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
}

fn main() {
    shaders();
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

/// Composes every stage of `shaders/` into `OUT_DIR/wgsl/` and writes the shader table.
fn shaders() {
    let dir = Path::new("shaders");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let wgsl = out.join("wgsl");
    let fail = |e: String| -> ! { panic!("composing the shaders: {e}") };
    let composed = compose::compose_dir(dir).unwrap_or_else(|e| fail(e));
    std::fs::create_dir_all(&wgsl).unwrap_or_else(|e| fail(e.to_string()));
    watch(dir);
    watch(&dir.join("lib"));
    let mut files: Vec<&String> = composed.iter().flat_map(|(_, c)| &c.files).collect();
    files.sort();
    files.dedup();
    for f in files {
        watch(&dir.join(f));
    }
    for (stage, c) in &composed {
        write_if_changed(&wgsl.join(stage), &c.source);
    }
    write_if_changed(
        &out.join("shaders_table.rs"),
        &compose::table(&composed, &wgsl),
    );
}

/// Writes `text` unless the file holds it already (an unchanged file keeps its time stamp).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A rerun trigger on `path` — only where it exists: Cargo treats a missing trigger as changed on
/// every build (a clone without `.git/packed-refs` would recompile the crate each time).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
