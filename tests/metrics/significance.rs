//! The paired t-test against reference values computed independently.
//!
//! Every expected `t` and `p` below was computed once with SciPy 1.17.1 (Python 3,
//! `pip install scipy`), `scipy.stats.ttest_rel(a, b)` (two-sided), on exactly the vectors written
//! here; generated vectors use integer/rational formulas that evaluate bit-identically in Python and
//! Rust. E.g. for `small_positive`:
//!
//! ```text
//! python3 -c "from scipy import stats; r = stats.ttest_rel(
//!   [0.61, 0.42, 0.55, 0.73, 0.38, 0.49, 0.66, 0.52],
//!   [0.50, 0.40, 0.47, 0.61, 0.41, 0.39, 0.58, 0.45]); print(repr(r.statistic), repr(r.pvalue))"
//! 3.8684188386153413 0.006144229243087575
//! ```

use cobrar_gpu::eval::significance::{bonferroni, paired_t_test};

/// Asserts `got` matches `want` to 1e-10: absolutely for ordinary values, relatively for large ones
/// (t = 1659.8) and for tiny p-values, where an absolute bound would accept anything.
fn close(got: f64, want: f64, what: &str) {
    let scale = if want.abs() < 1e-3 {
        want.abs()
    } else {
        want.abs().max(1.0)
    };
    let tol = 1e-10 * scale;
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} (tol {tol:e})"
    );
}

fn check(a: &[f64], b: &[f64], t: f64, p: f64) {
    let r = paired_t_test(a, b).expect("valid input");
    assert_eq!(r.n, a.len());
    assert_eq!(r.df, (a.len() - 1) as f64);
    close(r.t, t, "t");
    close(r.p, p, "p");
}

#[test]
fn small_positive() {
    let a = [0.61, 0.42, 0.55, 0.73, 0.38, 0.49, 0.66, 0.52];
    let b = [0.50, 0.40, 0.47, 0.61, 0.41, 0.39, 0.58, 0.45];
    check(&a, &b, 3.8684188386153413, 0.006144229243087575);
    // numpy.mean(numpy.subtract(a, b)) = 0.06875
    let r = paired_t_test(&a, &b).unwrap();
    assert!((r.mean_diff - 0.06875).abs() < 1e-15);
}

#[test]
fn negative_t() {
    let a = [12.0, 15.5, 9.25, 20.0, 11.0, 14.75, 8.5, 17.0, 13.25, 10.0];
    let b = [14.0, 15.0, 12.5, 22.25, 13.0, 14.5, 11.0, 19.5, 13.0, 12.75];
    check(&a, &b, -3.6688113866960292, 0.005164362332732849);
    assert!(paired_t_test(&a, &b).unwrap().mean_diff < 0.0);
}

#[test]
fn large_n() {
    // Python: a = [((i*37) % 101) / 101 for i in range(2000)]
    //         b = [((i*53+7) % 97) / 97 - 0.02 for i in range(2000)]
    let a: Vec<f64> = (0..2000u64)
        .map(|i| ((i * 37) % 101) as f64 / 101.0)
        .collect();
    let b: Vec<f64> = (0..2000u64)
        .map(|i| ((i * 53 + 7) % 97) as f64 / 97.0 - 0.02)
        .collect();
    check(&a, &b, 2.29135048328791, 0.022046731957496766);
}

#[test]
fn near_zero_difference() {
    let a = [0.25, 0.5, 0.75, 0.125, 0.625, 0.375];
    let b = [
        0.25 + 1e-9,
        0.5 - 2e-9,
        0.75 + 1.5e-9,
        0.125 - 0.5e-9,
        0.625 + 0.25e-9,
        0.375 - 0.1e-9,
    ];
    check(&a, &b, -0.04977241452346699, 0.9622308281652389);
}

#[test]
fn very_strong_difference_keeps_tiny_p() {
    // Python: a = [1.0 + 0.01*i + 0.003*((i*7) % 5) for i in range(50)]; b = [0.01*i for i in range(50)]
    let a: Vec<f64> = (0..50u64)
        .map(|i| 1.0 + 0.01 * i as f64 + 0.003 * ((i * 7) % 5) as f64)
        .collect();
    let b: Vec<f64> = (0..50u64).map(|i| 0.01 * i as f64).collect();
    check(&a, &b, 1659.815317705216, 4.800828291056932e-118);
}

#[test]
fn two_pairs() {
    // stats.ttest_rel([1.0, 2.0], [0.5, 0.75]) → df = 1
    check(
        &[1.0, 2.0],
        &[0.5, 0.75],
        2.3333333333333335,
        0.2577621168183132,
    );
}

#[test]
fn swapping_sides_flips_t_keeps_p() {
    let a = [0.61, 0.42, 0.55, 0.73, 0.38];
    let b = [0.50, 0.40, 0.47, 0.61, 0.41];
    let ab = paired_t_test(&a, &b).unwrap();
    let ba = paired_t_test(&b, &a).unwrap();
    assert_eq!(ab.t, -ba.t);
    assert_eq!(ab.p, ba.p);
}

#[test]
fn zero_variance() {
    // Identical models: p = 1 (SciPy answers NaN here; we document p = 1).
    let a = [0.2, 0.4, 0.6];
    let r = paired_t_test(&a, &a).unwrap();
    assert_eq!((r.t, r.p, r.mean_diff), (0.0, 1.0, 0.0));
    // A constant non-zero difference: p = 0, t = ±∞ with the sign of the difference.
    let r = paired_t_test(&[1.0, 2.0, 3.0], &[0.5, 1.5, 2.5]).unwrap();
    assert_eq!((r.t, r.p), (f64::INFINITY, 0.0));
    let r = paired_t_test(&[0.5, 1.5, 2.5], &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!((r.t, r.p), (f64::NEG_INFINITY, 0.0));
}

#[test]
fn bad_input_is_an_error() {
    let e = paired_t_test(&[1.0, 2.0], &[1.0]).unwrap_err().to_string();
    assert!(e.contains("2 and 1"), "{e}");
    let e = paired_t_test(&[1.0], &[2.0]).unwrap_err().to_string();
    assert!(e.contains("at least 2"), "{e}");
    assert!(paired_t_test(&[], &[]).is_err());
    let e = paired_t_test(&[1.0, f64::NAN], &[1.0, 2.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("pair 1"), "{e}");
    assert!(paired_t_test(&[1.0, 2.0], &[f64::INFINITY, 2.0]).is_err());
}

#[test]
fn bonferroni_scales_and_caps() {
    assert_eq!(bonferroni(0.01, 3), 0.03);
    assert_eq!(bonferroni(0.4, 3), 1.0);
    assert_eq!(bonferroni(0.02, 1), 0.02);
    assert_eq!(bonferroni(0.02, 0), 0.02);
    assert_eq!(bonferroni(0.0, 5), 0.0);
}
