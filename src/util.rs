//! Small shared helpers: atomic file writes, seeded random generators.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename, so a
/// reader (or a crash) never sees a half-written file and an existing file is never corrupted.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
