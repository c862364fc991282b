//! The tolerances of every GPU-against-CPU comparison, defined once: the selftest and the test suite
//! call the same checks, and each check records its comparisons in a [`Verdict`] instead of panicking.
//! A verdict keeps the comparison closest to (or furthest beyond) its tolerance — the "max error" and
//! "tolerance" a report shows — and the first message of every comparison that failed.

use std::fmt::Write as _;

/// What the check measured: its worst comparison and its failures.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    worst: Option<Worst>,
    failures: Vec<String>,
    comparisons: usize,
}

/// The comparison with the largest error relative to its tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Worst {
    /// |gpu − cpu| at the worst element.
    pub error: f64,
    /// The tolerance at that element.
    pub tolerance: f64,
    /// What was compared.
    pub what: String,
}

impl Worst {
    fn ratio(&self) -> f64 {
        if self.error.is_nan() {
            f64::INFINITY
        } else if self.tolerance > 0.0 {
            self.error / self.tolerance
        } else if self.error > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    pub fn worst(&self) -> Option<&Worst> {
        self.worst.as_ref()
    }

    /// Comparisons recorded (a check that compared nothing proves nothing).
    pub fn comparisons(&self) -> usize {
        self.comparisons
    }

    /// Records a failure that is not a numeric comparison.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.comparisons += 1;
        self.failures.push(message.into());
    }

    /// Records a condition that must hold.
    pub fn ensure(&mut self, ok: bool, message: impl FnOnce() -> String) {
        self.comparisons += 1;
        if !ok {
            self.failures.push(message());
        }
    }

    fn note(&mut self, w: Worst) {
        if self.worst.as_ref().is_none_or(|x| w.ratio() > x.ratio()) {
            self.worst = Some(w);
        }
    }

    /// |got − want| ≤ atol + rtol·scale[i] elementwise, where `scale` bounds the magnitude of the terms
    /// that were summed (long sums get a proportionate tolerance).
    pub fn close_scaled(
        &mut self,
        what: &str,
        got: &[f32],
        want: &[f32],
        scale: &[f32],
        atol: f32,
        rtol: f32,
    ) {
        self.comparisons += 1;
        if got.len() != want.len() || scale.len() != want.len() {
            self.failures.push(format!(
                "{what}: {} values against {} expected",
                got.len(),
                want.len()
            ));
            return;
        }
        let mut worst: Option<(usize, f64)> = None;
        let mut failing: Option<(usize, f64)> = None;
        for i in 0..got.len() {
            let err = (got[i] - want[i]).abs();
            let tol = atol + rtol * scale[i];
            let excess = if err.is_nan() || (got[i].is_nan() != want[i].is_nan()) {
                f64::INFINITY
            } else if want[i].is_nan() && got[i].is_nan() {
                0.0
            } else {
                err as f64 / tol as f64
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
            if (excess > 1.0) && failing.is_none_or(|(_, e)| excess > e) {
                failing = Some((i, excess));
            }
        }
        if let Some((i, _)) = worst {
            self.note(Worst {
                error: (got[i] - want[i]).abs() as f64,
                tolerance: (atol + rtol * scale[i]) as f64,
                what: what.to_string(),
            });
        }
        if let Some((i, _)) = failing {
            self.failures.push(format!(
                "{what}: element {i} differs: gpu {} vs cpu {} (tolerance {} + {}·{})",
                got[i], want[i], atol, rtol, scale[i]
            ));
        }
    }

    /// |got − want| ≤ atol + rtol·|want| elementwise.
    pub fn close(&mut self, what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
        let scale: Vec<f32> = want.iter().map(|w| w.abs()).collect();
        self.close_scaled(what, got, want, &scale, atol, rtol);
    }

    /// Exactly equal (bits of floats, or integers).
    pub fn identical<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: &[T], want: &[T]) {
        self.comparisons += 1;
        if got.len() != want.len() {
            self.failures.push(format!(
                "{what}: {} values against {} expected",
                got.len(),
                want.len()
            ));
            return;
        }
        match (0..got.len()).find(|&i| got[i] != want[i]) {
            Some(i) => {
                self.failures.push(format!(
                    "{what}: element {i} differs: gpu {:?} vs cpu {:?} (must be identical)",
                    got[i], want[i]
                ));
                self.note(Worst {
                    error: f64::INFINITY,
                    tolerance: 0.0,
                    what: what.to_string(),
                });
            }
            None => self.note(Worst {
                error: 0.0,
                tolerance: 0.0,
                what: what.to_string(),
            }),
        }
    }

    /// The GPU's and the CPU's parameter changes from `w0` after one Adam step at `lr` agree.
    /// Adam moves a parameter by about ±lr a step whatever its gradient's size, so a wrong gradient
    /// moves it ~lr the other way. Parameters marked in `cancelling` (their gradient is within f32
    /// rounding of zero, its sign arbitrary: [`super::harness::cancelling`]) may move anywhere within
    /// Adam's reach, 2·lr; all others agree within 25% of lr, all but 0.5% of them within 1%; and
    /// something moved.
    pub fn changes_agree(
        &mut self,
        what: &str,
        names: &[String],
        w0: &[Vec<f32>],
        (got, want): (&[Vec<f32>], &[Vec<f32>]),
        lr: f32,
        cancelling: &[Vec<bool>],
    ) {
        for (b, name) in names.iter().enumerate() {
            let change = |w: &[Vec<f32>]| -> Vec<f32> {
                w[b].iter().zip(&w0[b]).map(|(a, z)| a - z).collect()
            };
            let (dg, dc) = (change(got), change(want));
            let name = format!("{what}: {name} change");
            self.close(&name, &dg, &dc, 2.0 * lr, 0.0);
            let free = |k: usize| !cancelling.get(b).is_some_and(|m| m[k]);
            let beyond = |tol: f32| {
                (0..dg.len())
                    .filter(|&k| free(k) && (dg[k] - dc[k]).abs() > tol + 1e-3 * dc[k].abs())
                    .count()
            };
            let n = (0..dg.len()).filter(|&k| free(k)).count();
            let wide = beyond(0.25 * lr);
            self.ensure(wide == 0, || {
                format!("{name}: {wide} change(s) differ by more than 25% of lr")
            });
            let near = beyond(1e-2 * lr);
            self.ensure(near as f64 <= 5e-3 * n as f64 + 1.0, || {
                format!("{name}: {near} of {n} differ by more than 1% of lr")
            });
            self.ensure(dc.iter().any(|d| d.abs() > 0.1 * lr), || {
                format!("{name}: nothing moved")
            });
        }
    }

    /// Adds another verdict's comparisons.
    pub fn merge(&mut self, other: Verdict) {
        self.comparisons += other.comparisons;
        self.failures.extend(other.failures);
        if let Some(w) = other.worst {
            self.note(w);
        }
    }

    /// Every failure, one per line (for a panic message or a report).
    pub fn describe_failures(&self) -> String {
        let mut s = String::new();
        for f in &self.failures {
            let _ = writeln!(s, "  {f}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_keeps_the_worst_element_and_fails_beyond_tolerance() {
        let mut v = Verdict::default();
        v.close("a", &[1.0, 2.0], &[1.0, 2.001], 1e-6, 1e-3);
        assert!(v.passed(), "{:?}", v.failures());
        let w = v.worst().unwrap();
        assert!((w.error - 0.001).abs() < 1e-6 && w.tolerance > w.error);
        v.close("b", &[1.0, 5.0], &[1.0, 2.0], 1e-6, 1e-3);
        assert!(!v.passed());
        assert!(v.failures()[0].contains("b: element 1 differs"));
        assert_eq!(v.worst().unwrap().what, "b");
        v.close("c", &[f32::NAN], &[1.0], 1.0, 1.0);
        assert_eq!(v.failures().len(), 2);
        assert_eq!(v.comparisons(), 3);
    }

    #[test]
    fn identical_and_ensure_record_failures() {
        let mut v = Verdict::default();
        v.identical("ids", &[1u32, 2], &[1, 2]);
        v.ensure(true, || "never".into());
        assert!(v.passed());
        v.identical("ids", &[1u32, 3], &[1, 2]);
        v.ensure(false, || "condition".into());
        assert_eq!(v.failures().len(), 2);
    }

    #[test]
    fn changes_agree_fails_a_parameter_moved_the_other_way() {
        let names = vec!["w".to_string()];
        let w0 = vec![vec![0.0f32; 4]];
        let cpu = vec![vec![1e-3f32, -1e-3, 1e-3, 1e-3]];
        let mut v = Verdict::default();
        v.changes_agree("step", &names, &w0, (&cpu, &cpu), 1e-3, &[]);
        assert!(v.passed(), "{:?}", v.failures());
        let gpu = vec![vec![1e-3f32, 1e-3, 1e-3, 1e-3]];
        let mut v = Verdict::default();
        v.changes_agree("step", &names, &w0, (&gpu, &cpu), 1e-3, &[]);
        assert!(!v.passed());
        // Marked as cancelling, the same difference is within Adam's reach.
        let mut v = Verdict::default();
        let marks = vec![vec![false, true, false, false]];
        v.changes_agree("step", &names, &w0, (&gpu, &cpu), 1e-3, &marks);
        assert!(v.passed(), "{:?}", v.failures());
    }
}
