//! The selftest's outputs: the table (one row per check, one column per adapter) and the JSON report
//! with the adapters, drivers, the binary's version and revision, and every check's numbers.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::AdapterOutcome;

/// Version of the JSON layout (bumped when a field changes meaning).
pub const SCHEMA: u32 = 1;

/// `selftest --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelftestReport {
    pub schema: u32,
    #[serde(flatten)]
    pub provenance: crate::report::run::Provenance,
    pub seed: u64,
    pub quick: bool,
    pub passed: bool,
    pub adapters: Vec<AdapterOutcome>,
}

impl SelftestReport {
    pub fn new(seed: u64, quick: bool, adapters: Vec<AdapterOutcome>) -> SelftestReport {
        SelftestReport {
            schema: SCHEMA,
            provenance: crate::report::run::Provenance::here(),
            seed,
            quick,
            passed: adapters.iter().all(|a| a.passed),
            adapters,
        }
    }
}

/// A number as the table shows it.
fn sci(x: Option<f64>) -> String {
    match x {
        Some(0.0) => "0".into(),
        Some(v) => format!("{v:.1e}"),
        None => "—".into(),
    }
}

/// One adapter's cell of a check's row: result, max error against tolerance, time.
fn cell(c: &super::CheckOutcome) -> String {
    format!(
        "{} {:>8} ≤ {:<8} {:>6.2}s",
        if c.passed { "pass" } else { "FAIL" },
        sci(c.max_error),
        sci(c.tolerance),
        c.seconds
    )
}

/// The table: check | per adapter "pass  max error ≤ tolerance  time".
pub fn table(adapters: &[AdapterOutcome]) -> String {
    let mut s = String::new();
    let width = 33;
    let col = 34;
    let _ = write!(s, "{:<width$}", "check");
    for a in adapters {
        let label = a.adapter.label();
        let label: String = label.chars().take(col - 1).collect();
        let _ = write!(s, " {label:<col$}");
    }
    let _ = writeln!(s);
    let _ = write!(s, "{:<width$}", "");
    for _ in adapters {
        let _ = write!(s, " {:<col$}", "result  max error ≤ tolerance  time");
    }
    let _ = writeln!(s);
    let names: Vec<&str> = adapters
        .first()
        .map(|a| a.checks.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    for name in names {
        let _ = write!(s, "{name:<width$}");
        for a in adapters {
            match a.checks.iter().find(|c| c.name == name) {
                Some(c) => {
                    let _ = write!(s, " {:<col$}", cell(c));
                }
                None => {
                    let _ = write!(s, " {:<col$}", "—");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = write!(s, "{:<width$}", "all");
    for a in adapters {
        let total = format!(
            "{} {} checks {:>13.1}s",
            if a.passed { "pass" } else { "FAIL" },
            a.checks.len(),
            a.seconds
        );
        let _ = write!(s, " {total:<col$}");
    }
    let _ = writeln!(s);
    s
}
