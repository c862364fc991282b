//! Which adapter + driver + binary passed a selftest, remembered in the user's cache directory
//! (`$COBRAR_CACHE_DIR/selftest`, else `$XDG_CACHE_HOME/cobrar-gpu/selftest`, else
//! `~/.cache/cobrar-gpu/selftest`), so that `train` can record in `metrics.json` whether the adapter it
//! trained on was checked, without running the checks itself. The key hashes the adapter's identity
//! (name, vendor, device, backend, driver, driver version, limits), the program's version and git
//! revision, and the bytes of the running executable: a new driver or a new build is unchecked again.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AdapterIdentity, AdapterOutcome};

/// What `metrics.json` and the bench JSON say about the selftest of the adapter they ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestStatus {
    /// `passed`, `failed`, `not run` (never checked with this adapter, driver and binary) or `skipped`.
    pub status: String,
    /// Seconds since the Unix epoch when the checks ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<u64>,
    /// The quick set (`bench`) or the full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The failing checks, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
}

impl SelftestStatus {
    pub fn not_run() -> SelftestStatus {
        SelftestStatus {
            status: "not run".into(),
            checked_at: None,
            quick: None,
            seed: None,
            failed_checks: Vec::new(),
        }
    }

    pub fn skipped() -> SelftestStatus {
        SelftestStatus {
            status: "skipped".into(),
            ..SelftestStatus::not_run()
        }
    }

    pub fn of(outcome: &AdapterOutcome, quick: bool, seed: u64) -> SelftestStatus {
        SelftestStatus {
            status: if outcome.passed { "passed" } else { "failed" }.into(),
            checked_at: Some(now()),
            quick: Some(quick),
            seed: Some(seed),
            failed_checks: outcome.failed().map(|c| c.name.clone()).collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.status == "passed"
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SHA-256 of the running executable (once per process); empty when it cannot be read.
fn executable_digest() -> &'static str {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| {
        std::env::current_exe()
            .and_then(std::fs::read)
            .map(|bytes| crate::util::hex(&Sha256::digest(&bytes)))
            .unwrap_or_default()
    })
}

/// The cache key of `adapter` with this binary.
pub fn key(adapter: &AdapterIdentity) -> String {
    let mut h = Sha256::new();
    for part in [
        &adapter.name,
        &adapter.vendor,
        &adapter.device,
        &adapter.backend,
        &adapter.driver,
        &adapter.driver_info,
        &adapter.limits,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(crate::util::version().as_bytes());
    h.update([0]);
    h.update(crate::util::git_revision().as_bytes());
    h.update([0]);
    h.update(executable_digest().as_bytes());
    crate::util::hex(&h.finalize())
}

fn dir() -> Option<PathBuf> {
    crate::gpu::registry::cache_dir().map(|d| d.join("selftest"))
}

/// The remembered outcome for `adapter` with this binary, or `not run`.
pub fn lookup(adapter: &AdapterIdentity) -> SelftestStatus {
    let Some(path) = dir().map(|d| d.join(format!("{}.json", key(adapter)))) else {
        return SelftestStatus::not_run();
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(SelftestStatus::not_run)
}

/// Remembers `status` for `adapter` (best effort: an unwritable cache only loses the record).
pub fn store(adapter: &AdapterIdentity, status: &SelftestStatus) {
    let Some(d) = dir() else { return };
    let write = || -> anyhow::Result<()> {
        std::fs::create_dir_all(&d)?;
        crate::util::write_json(&d.join(format!("{}.json", key(adapter))), status)
    };
    let _ = write();
}
