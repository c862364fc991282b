//! `bench` on a built-in workload with no data directory, on every adapter in one process: each
//! adapter's selftest outcome, the workload's hash and the figures in one JSON; `bench-report` turns it
//! into the comparison (markdown, CSV, plots) and refuses to compare runs on different data.

use crate::common::{bin, error_line, stderr};

const QUICK: &[&str] = &[
    "--arch",
    "16,8",
    "--steps",
    "2",
    "--warmup",
    "1",
    "--profile-steps",
    "1",
    "--host-steps",
    "20",
    "--no-eval",
];

fn bench(dir: &std::path::Path, extra: &[&str], json: &std::path::Path) -> std::process::Output {
    bin()
        .env("COBRAR_CACHE_DIR", dir.join("cache"))
        .env_remove("COBRAR_DATA_DIR")
        .args(["bench", "--workload", "amazon-baby"])
        .args(QUICK)
        .args(extra)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

#[test]
fn bench_on_every_adapter_then_bench_report_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("all.json");
    let o = bench(dir.path(), &["--adapter", "all"], &json);
    assert!(o.status.success(), "{}", stderr(&o));
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(f["schema"], 2);
    assert_eq!(f["version"], env!("CARGO_PKG_VERSION"));
    let runs = f["runs"].as_array().unwrap();
    let adapters = bin().args(["adapters", "--json"]).output().unwrap();
    let n: serde_json::Value = serde_json::from_slice(&adapters.stdout).unwrap();
    assert_eq!(
        runs.len(),
        n.as_array().unwrap().len(),
        "one run per adapter"
    );
    for r in runs {
        assert_eq!(r["selftest"]["status"], "passed", "{r}");
        assert_eq!(r["selftest"]["quick"], true);
        assert_eq!(r["workload"]["name"], "amazon-baby");
        assert_eq!(r["workload"]["hash"], runs[0]["workload"]["hash"]);
        assert_eq!(r["data_hash"], runs[0]["data_hash"]);
        assert!(r["steps_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["gpu_steps_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["copy_gbps"].as_f64().unwrap() > 0.0);
        assert_eq!(r["model"], "cobrar");
        assert!(r["adapter"]["driver_info"].is_string());
    }
    // The comparison.
    let out = dir.path().join("report");
    let o = bin()
        .arg("bench-report")
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("amazon-baby · cobrar 16,8"), "{md}");
    for r in runs {
        let label = format!(
            "{} ({})",
            r["adapter"]["name"].as_str().unwrap(),
            r["adapter"]["backend"].as_str().unwrap()
        );
        assert!(md.contains(&label), "{label} missing: {md}");
    }
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), runs.len() + 1);
    for f in [
        "kernels.csv",
        "steps.svg",
        "steps.png",
        "roofline-amazon-baby-cobrar-16-8.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // A second file of the same adapters (another machine with the same GPUs): columns of their own.
    let twin = dir.path().join("twin.json");
    std::fs::copy(&json, &twin).unwrap();
    let o = bin()
        .arg("bench-report")
        .arg(&json)
        .arg(&twin)
        .arg("--out")
        .arg(dir.path().join("twins"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(dir.path().join("twins/runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2 * runs.len() + 1);
    assert!(csv.contains("[twin]"), "{csv}");
    // Not again into the same folder without --overwrite.
    let o = bin()
        .arg("bench-report")
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(error_line(&o).contains("--overwrite"));
    // A run on other data in the same row is refused, naming both.
    let mut other = f.clone();
    other["runs"][0]["workload"]["hash"] = "0000".into();
    other["runs"] = serde_json::Value::Array(vec![other["runs"][0].clone()]);
    other["runs"][0]["adapter"]["name"] = "Another GPU".into();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, serde_json::to_string(&other).unwrap()).unwrap();
    let o = bin()
        .arg("bench-report")
        .arg(&json)
        .arg(&other_path)
        .arg("--out")
        .arg(dir.path().join("mixed"))
        .output()
        .unwrap();
    let line = error_line(&o);
    assert!(
        line.contains("different workloads") && line.contains("Another GPU"),
        "{line}"
    );
}

#[test]
fn bench_refuses_bad_requests_and_a_failing_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("b.json");
    std::fs::write(&json, "keep me").unwrap();
    // An existing file is kept.
    let o = bench(dir.path(), &[], &json);
    assert!(error_line(&o).contains("--overwrite"));
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "keep me");
    let o = bin()
        .args(["bench", "--workload", "amazon-baby", "--steps", "0"])
        .output()
        .unwrap();
    assert!(error_line(&o).contains("--steps must be at least 1"));
    // A miscompiling adapter measures nothing: status 1, the check named, the file untouched.
    let o = bin()
        .env("COBRAR_CACHE_DIR", dir.path().join("cache"))
        .env("COBRAR_INJECT_FAULT", "wrong@kernel:column_sums")
        .args([
            "bench",
            "--workload",
            "amazon-baby",
            "--overwrite",
            "--json",
        ])
        .arg(&json)
        .args(QUICK)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("kernel:column_sums failed"));
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "keep me");
}
