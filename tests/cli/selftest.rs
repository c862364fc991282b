//! `selftest`: the quick set passes on the test adapter and its JSON names the adapter, the driver and
//! the binary; a kernel made to compute nothing (`COBRAR_INJECT_FAULT=wrong@kernel:NAME`) is caught
//! and named with the seed that replays it (exit status 1); `train` records whether its adapter passed
//! a selftest, and `train --selftest` refuses to train on an adapter that fails one.

use crate::common::{bin, error_line, stderr, stdout};

/// The command with its own cache directory (selftest records and pipeline caches).
fn cmd(cache: &std::path::Path) -> std::process::Command {
    let mut c = bin();
    c.env("COBRAR_CACHE_DIR", cache);
    c
}

#[test]
fn the_quick_selftest_passes_and_reports_the_adapter_and_binary() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("selftest.json");
    let o = cmd(dir.path())
        .args(["selftest", "--quick", "--seed", "7", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("kernel:spmm") && table.contains("model:multvae"),
        "{table}"
    );
    assert!(table.contains("pass") && !table.contains("FAIL"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["passed"], true);
    assert_eq!(r["seed"], 7);
    assert_eq!(r["quick"], true);
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert!(r["git_revision"].as_str().is_some_and(|s| !s.is_empty()));
    let a = &r["adapters"][0];
    for field in [
        "name",
        "vendor",
        "device",
        "backend",
        "driver",
        "driver_info",
        "limits",
    ] {
        assert!(a["adapter"][field].is_string(), "adapter.{field}: {a}");
    }
    let checks = a["checks"].as_array().unwrap();
    assert!(checks.len() > 20);
    for c in checks {
        assert_eq!(c["passed"], true, "{c}");
    }
    // An existing report is not replaced without --overwrite.
    let again = cmd(dir.path())
        .args(["selftest", "--quick", "--check", "kernel:copy", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn a_kernel_that_computes_nothing_is_caught_and_named_with_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    for (fault, check) in [
        ("dense_forward.tanh", "kernel:dense_forward"),
        ("rank_topk", "ranking:sessions"),
    ] {
        let o = cmd(dir.path())
            .env("COBRAR_INJECT_FAULT", format!("wrong@kernel:{fault}"))
            .args(["selftest", "--quick", "--seed", "11"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{fault}: {}", stderr(&o));
        let err = stderr(&o);
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("{check} failed on")))
            .unwrap_or_else(|| panic!("{fault}: no failure line for {check}: {err}"));
        assert!(
            line.contains(&format!("--check {check}")) && line.contains("--seed 11"),
            "{line}"
        );
        assert!(stdout(&o).contains("FAIL"));
    }
}

#[test]
fn unknown_checks_and_faults_are_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = cmd(dir.path())
        .args(["selftest", "--check", "kernel:nope"])
        .output()
        .unwrap();
    let line = error_line(&o);
    assert!(
        line.contains("kernel:nope") && line.contains("kernel:spmm"),
        "{line}"
    );
    let o = cmd(dir.path())
        .env("COBRAR_INJECT_FAULT", "wrong@kernel:nope")
        .args(["selftest", "--quick"])
        .output()
        .unwrap();
    assert!(error_line(&o).contains("no kernel is named"));
    let o = cmd(dir.path())
        .args(["train", "--adapter", "all"])
        .output()
        .unwrap();
    assert!(error_line(&o).contains("selftest"));
}

#[test]
fn train_records_the_selftest_and_train_selftest_refuses_a_failing_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let small = [
        "train",
        "--arch",
        "16,8",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "3",
        "--quiet",
    ];
    let status = |run: &str| -> serde_json::Value {
        let m = std::fs::read_to_string(dir.path().join(run).join("metrics.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&m).unwrap()["selftest"].clone()
    };
    // Never checked with this cache: "not run".
    let o = cmd(&cache)
        .args(small)
        .arg("--out")
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(status("a")["status"], "not run");
    // --selftest runs the checks first and the run records that they passed.
    let o = cmd(&cache)
        .args(small)
        .args(["--selftest", "--out"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("selftest on"));
    assert_eq!(status("b")["status"], "passed");
    assert_eq!(status("b")["quick"], false);
    // A failing adapter: status 1, nothing written.
    let o = cmd(&cache)
        .env("COBRAR_INJECT_FAULT", "wrong@kernel:adam_dense")
        .args(small)
        .args(["--selftest", "--out"])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("kernel:adam_dense failed"));
    assert!(!dir.path().join("c").exists());
}
