//! Paired significance tests between two models' per-user metric values (SPEC §4): a two-sided paired
//! t-test with the t distribution from `statrs`, and the Bonferroni correction the study applies when
//! one model is compared with several.

use anyhow::{bail, ensure};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The outcome of a paired t-test of `a` against `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct TTest {
    /// Number of pairs.
    pub n: usize,
    /// Mean of `a[i] - b[i]`: positive when `a` is larger on average.
    pub mean_diff: f64,
    /// The t statistic, `mean_diff / (sd / √n)`; ±∞ when every difference is the same non-zero value.
    pub t: f64,
    /// Degrees of freedom, `n − 1`.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Two-sided paired t-test of `a` against `b` (pairs `a[i]`, `b[i]`, e.g. two models' NDCG@5 for the
/// same user i).
///
/// The t distribution's upper tail (`sf`) is used rather than `1 − cdf`, so very small p-values keep
/// their precision instead of rounding to 0.
///
/// When all differences are equal the variance is 0 and t is undefined; the answer is then decided
/// by the mean: all differences 0 (the two models agree on every user) gives t = 0, p = 1; a constant
/// non-zero difference gives t = ±∞, p = 0 (the models differ, with no noise at all).
///
/// Errors on a length mismatch, fewer than 2 pairs, or a non-finite value.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> anyhow::Result<TTest> {
    ensure!(
        a.len() == b.len(),
        "paired t-test needs equally many values on both sides, got {} and {}",
        a.len(),
        b.len()
    );
    let n = a.len();
    ensure!(n >= 2, "paired t-test needs at least 2 pairs, got {n}");
    if let Some(i) = (0..n).find(|&i| !a[i].is_finite() || !b[i].is_finite()) {
        bail!("paired t-test: pair {i} is not finite ({}, {})", a[i], b[i]);
    }
    let nf = n as f64;
    let mean = a.iter().zip(b).map(|(x, y)| x - y).sum::<f64>() / nf;
    // Two passes: the centred sum of squares avoids the cancellation of Σd² − n·mean².
    let ss: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let e = (x - y) - mean;
            e * e
        })
        .sum();
    let df = nf - 1.0;
    let se = (ss / df).sqrt() / nf.sqrt();
    let (t, p) = if ss == 0.0 {
        if mean == 0.0 {
            (0.0, 1.0)
        } else {
            (f64::INFINITY.copysign(mean), 0.0)
        }
    } else {
        let t = mean / se;
        let dist = StudentsT::new(0.0, 1.0, df)?;
        (t, (2.0 * dist.sf(t.abs())).min(1.0))
    };
    Ok(TTest {
        n,
        mean_diff: mean,
        t,
        df,
        p,
    })
}

/// Bonferroni-corrected p-value for one of `comparisons` tests: `min(1, p · comparisons)`. Zero
/// comparisons is treated as one (nothing to correct for).
pub fn bonferroni(p: f64, comparisons: usize) -> f64 {
    (p * comparisons.max(1) as f64).min(1.0)
}
