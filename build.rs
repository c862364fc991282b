//! Records the git revision the binary was built from (`metrics.json` and `config.json` carry it).

use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let value = match (rev.is_empty(), dirty) {
        (true, _) => "unknown".to_string(),
        (false, true) => format!("{rev}-dirty"),
        (false, false) => rev,
    };
    println!("cargo:rustc-env=COBRAR_GIT_REV={value}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
