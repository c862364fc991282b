//! Small shared helpers: atomic file writes, seeded random generators, and the test hooks that inject a
//! full disk or kill the process at a chosen point (`COBRAR_INJECT_FAULT`, `COBRAR_KILL_AT`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Whether `e` says a path is a loop of symbolic links (Linux's ELOOP, "too many levels of symbolic
/// links"), which a plain "no such file" would hide.
pub fn is_link_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(40)
}

/// Whether `name` is a temporary file of [`write_atomic`] (left behind by a killed process).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp")
}

/// `COBRAR_INJECT_FAULT=disk@write:N`: the N-th atomic write fails as on a full disk.
fn disk_fault(n: u64) -> bool {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("COBRAR_INJECT_FAULT")
            .ok()
            .and_then(|s| s.strip_prefix("disk@write:").and_then(|n| n.parse().ok()))
    });
    *at == Some(n)
}

/// A kill point reached: `COBRAR_KILL_AT=<point>:<n>` aborts the process here (as `kill -9` would: no
/// clean-up, no destructors), for the resume tests.
pub fn kill_point(point: &str, n: u64) {
    static AT: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let s = std::env::var("COBRAR_KILL_AT").ok()?;
        let (p, n) = s.split_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    });
    if let Some((p, k)) = at
        && p == point
        && *k == n
    {
        eprintln!("cobrar-gpu: killed at {point} {n} (COBRAR_KILL_AT)");
        std::process::abort();
    }
}

/// Whether `COBRAR_KILL_AT` names this point (callers that abort mid-way themselves).
pub fn kill_requested(point: &str, n: u64) -> bool {
    std::env::var("COBRAR_KILL_AT").is_ok_and(|s| s == format!("{point}:{n}"))
}

static WRITES: AtomicU64 = AtomicU64::new(0);
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename, so a
/// reader (or a crash) never sees a half-written file and an existing file is never corrupted.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let _serial = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let n = WRITES.fetch_add(1, Ordering::Relaxed) + 1;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        if disk_fault(n) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (injected by COBRAR_INJECT_FAULT)",
            ));
        }
        if kill_requested("write", n) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            f.sync_all()?;
            kill_point("write", n);
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// A seeded, portable random generator (PCG 64-bit MCG): the same seed gives the same stream on every
/// platform and build, which the split and the samplers promise.
pub type SeededRng = rand_pcg::Pcg64Mcg;

/// The generator for one purpose of one run: `stream` keeps independent uses (split, sampler, init…)
/// from sharing a sequence when they share the user's seed.
pub fn seeded_rng(seed: u64, stream: u64) -> SeededRng {
    use rand::SeedableRng;
    SeededRng::seed_from_u64(splitmix64(
        seed ^ splitmix64(stream.wrapping_add(0x9E37_79B9_7F4A_7C15)),
    ))
}

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash used to derive seeds.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a (64-bit) over `words`, each folded in whole: a cheap, stable key of a sequence.
pub fn fnv1a(words: impl IntoIterator<Item = u64>) -> u64 {
    words.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, w| {
        (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Lower-case hexadecimal of `bytes` (digests in reports and file names).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The program's version (Cargo's).
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The git revision the binary was built from (`build.rs`), `-dirty` when the tree differed.
pub fn git_revision() -> String {
    env!("COBRAR_GIT_REV").to_string()
}

/// Writes any serialisable value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}
