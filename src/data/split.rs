//! SPEC §2 step 4: the seeded per-user random split (`split_files.rs` writes one to disk).
//!
//! With `n` interactions, test = n − floor((1 − test_ratio)·n) and validation = r − floor((1 −
//! val_ratio)·r) where r = n − test; training keeps the rest. With the defaults (0.2, 0.125) that is
//! SPEC's test = n − floor(0.8·n), validation = r − floor(0.875·r): 70/10/20 overall.

use std::hash::Hasher;

use rand::seq::SliceRandom;
use serde::Serialize;

use super::cold::ColdSet;
use super::csr::{Csr, CsrBuilder};
use super::error::DataError;
use super::features::FeatureSide;
use super::intern::FxHasher;
use crate::util::seeded_rng;

/// The split's parameters (`--test-ratio`, `--val-ratio`, `--split-seed`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitConfig {
    /// Fraction of each user's interactions held out for test.
    pub test_ratio: f64,
    /// Fraction of the non-test rest held out for validation (0.125 of 80 % = 10 % overall).
    pub val_ratio: f64,
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            test_ratio: 0.2,
            val_ratio: 0.125,
            seed: 42,
        }
    }
}

impl SplitConfig {
    pub fn validate(&self) -> Result<(), DataError> {
        for (name, r) in [
            ("--test-ratio", self.test_ratio),
            ("--val-ratio", self.val_ratio),
        ] {
            if !(0.0..1.0).contains(&r) {
                return Err(DataError::Invalid(format!(
                    "{name} must be at least 0 and below 1, got {r}"
                )));
            }
        }
        Ok(())
    }
}

/// Ratios are resolved to billionths so that `floor((1 − ratio)·n)` is computed exactly in integers:
/// in floating point 0.8·5 may come out as 3.9999…, whose floor (3) would silently shift a user's
/// split. Any ratio written with up to nine decimals is represented exactly.
const SCALE: u128 = 1_000_000_000;

fn billionths(ratio: f64) -> u128 {
    (ratio * SCALE as f64).round().clamp(0.0, SCALE as f64) as u128
}

/// floor((1 − ratio)·n), exactly for ratios with up to nine decimals.
pub fn floor_keep(n: usize, ratio: f64) -> usize {
    ((SCALE - billionths(ratio)) * n as u128 / SCALE) as usize
}

/// One user's part sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSizes {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

/// The SPEC formula for a user with `n` interactions, before the at-least-one-training-item guard.
pub fn formula_sizes(n: usize, test_ratio: f64, val_ratio: f64) -> PartSizes {
    let test = n - floor_keep(n, test_ratio);
    let rest = n - test;
    let val = rest - floor_keep(rest, val_ratio);
    PartSizes {
        train: rest - val,
        val,
        test,
    }
}

/// The sizes the split uses: the formula, except that a user whose training part would be empty
/// (only possible with fewer than 3 interactions, i.e. without k-core) gets one item back, taken from
/// validation first, then test — SPEC: every user keeps at least one training interaction.
pub fn part_sizes(n: usize, test_ratio: f64, val_ratio: f64) -> PartSizes {
    let mut s = formula_sizes(n, test_ratio, val_ratio);
    if s.train == 0 && n > 0 {
        s.train = 1;
        if s.val > 0 {
            s.val -= 1;
        } else {
            s.test -= 1;
        }
    }
    s
}

/// The split of one dataset.
pub(crate) struct SplitParts {
    pub train: Csr,
    pub val: Csr,
    pub test: Csr,
    /// Users whose sizes differ from the bare formula (see [`part_sizes`]).
    pub users_clamped: usize,
}

/// Stream id of the split's random generators (other uses of the same seed draw other streams).
const SPLIT_STREAM: u64 = 0x5350_4c49_5400_0000; // "SPLIT"

/// Splits every user's row of `all`. Each user's sorted items are shuffled by a generator seeded
/// from the seed and a hash of the user's *original* id, then the first `test` items go to test, the
/// next `val` to validation, the rest to training. A user's split therefore depends only on the seed,
/// their id and their own items — not on other users or the order of lines in the input.
///
/// With a cold set, its entities' interactions all go to test: a cold user's whole row, and each
/// user's cold items; the formula then splits the user's other (warm) items as above.
pub(crate) fn split(
    all: &Csr,
    user_ids: &[String],
    cfg: &SplitConfig,
    cold: Option<&ColdSet>,
) -> SplitParts {
    let n_users = all.n_rows();
    let nnz = all.nnz();
    let train_share = 1.0 - cfg.test_ratio;
    let mut train =
        CsrBuilder::with_capacity(n_users, (nnz as f64 * train_share) as usize + n_users);
    let mut val = CsrBuilder::with_capacity(n_users, (nnz as f64 * 0.15) as usize + n_users);
    let mut test =
        CsrBuilder::with_capacity(n_users, (nnz as f64 * cfg.test_ratio) as usize + n_users);
    let mut scratch: Vec<u32> = Vec::new();
    let mut held: Vec<u32> = Vec::new();
    let mut warm: Vec<u32> = Vec::new();
    let mut users_clamped = 0;
    for (u, id) in user_ids.iter().enumerate().take(n_users) {
        let full = all.row(u);
        held.clear();
        let row: &[u32] = match cold {
            None => full,
            Some(c) if c.side == FeatureSide::Users => {
                if c.contains(u as u32) {
                    held.extend_from_slice(full);
                    &[]
                } else {
                    full
                }
            }
            Some(c) => {
                held.extend(full.iter().copied().filter(|&i| c.contains(i)));
                warm.clear();
                warm.extend(full.iter().copied().filter(|&i| !c.contains(i)));
                &warm
            }
        };
        let sizes = part_sizes(row.len(), cfg.test_ratio, cfg.val_ratio);
        if sizes != formula_sizes(row.len(), cfg.test_ratio, cfg.val_ratio) {
            users_clamped += 1;
        }
        scratch.clear();
        scratch.extend_from_slice(row);
        let mut rng = seeded_rng(cfg.seed, SPLIT_STREAM ^ id_hash(id));
        scratch.shuffle(&mut rng);
        let (t, rest) = scratch.split_at_mut(sizes.test);
        let (v, tr) = rest.split_at_mut(sizes.val);
        for part in [&mut *v, &mut *tr] {
            part.sort_unstable();
        }
        val.push_row(v);
        train.push_row(tr);
        if held.is_empty() {
            t.sort_unstable();
            test.push_row(t);
        } else {
            held.extend_from_slice(t);
            held.sort_unstable();
            test.push_row(&held);
        }
    }
    SplitParts {
        train: train.finish(),
        val: val.finish(),
        test: test.finish(),
        users_clamped,
    }
}

fn id_hash(id: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_exact_where_floats_are_not() {
        // In f64, (1 - 0.9)·10 = 0.9999999999999998 and (1 - 0.3)·90 = 62.99999999999999: a naive
        // floor would give 0 and 62 instead of 1 and 63.
        assert_eq!(((1.0f64 - 0.9) * 10.0).floor(), 0.0);
        assert_eq!(floor_keep(10, 0.9), 1);
        assert_eq!(floor_keep(90, 0.3), 63);
        assert_eq!(floor_keep(5, 0.2), 4);
        assert_eq!(floor_keep(4, 0.125), 3);
        assert_eq!(floor_keep(8, 0.125), 7);
        assert_eq!(floor_keep(7, 0.1), 6);
        for n in 0..10_000usize {
            assert_eq!(floor_keep(n, 0.2), n * 4 / 5, "n = {n}");
            assert_eq!(floor_keep(n, 0.125), n * 7 / 8, "n = {n}");
            assert_eq!(floor_keep(n, 0.1), n * 9 / 10, "n = {n}");
        }
    }

    #[test]
    fn sizes_follow_the_spec_formula() {
        // n = 5: test = 5 - 4 = 1, rest 4, val = 4 - floor(3.5) = 1, train 3.
        assert_eq!(
            formula_sizes(5, 0.2, 0.125),
            PartSizes {
                train: 3,
                val: 1,
                test: 1
            }
        );
        // n = 100: 70/10/20; with the authors' 0.2/0.1: 72/8/20.
        assert_eq!(
            formula_sizes(100, 0.2, 0.125),
            PartSizes {
                train: 70,
                val: 10,
                test: 20
            }
        );
        assert_eq!(
            formula_sizes(100, 0.2, 0.1),
            PartSizes {
                train: 72,
                val: 8,
                test: 20
            }
        );
        for n in 0..500 {
            let s = part_sizes(n, 0.2, 0.125);
            assert_eq!(s.train + s.val + s.test, n);
            assert!(n == 0 || s.train >= 1);
            if n >= 3 {
                assert_eq!(s, formula_sizes(n, 0.2, 0.125), "n = {n}");
            }
        }
    }

    #[test]
    fn tiny_users_keep_a_training_item() {
        assert_eq!(
            part_sizes(1, 0.2, 0.125),
            PartSizes {
                train: 1,
                val: 0,
                test: 0
            }
        );
        assert_eq!(
            part_sizes(2, 0.2, 0.125),
            PartSizes {
                train: 1,
                val: 0,
                test: 1
            }
        );
        assert_eq!(
            part_sizes(0, 0.2, 0.125),
            PartSizes {
                train: 0,
                val: 0,
                test: 0
            }
        );
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let rows: Vec<Vec<u32>> = (0..50)
            .map(|u| (0..(5 + u % 17)).map(|i| i * 3).collect())
            .collect();
        let all = Csr::from_rows(&rows);
        let ids: Vec<String> = (0..50).map(|u| format!("u{u}")).collect();
        let cfg = SplitConfig::default();
        let a = split(&all, &ids, &cfg, None);
        let b = split(&all, &ids, &cfg, None);
        assert_eq!(a.train, b.train);
        assert_eq!(a.test, b.test);
        let c = split(&all, &ids, &SplitConfig { seed: 7, ..cfg }, None);
        assert_ne!(a.test, c.test);
        for (u, row) in rows.iter().enumerate() {
            let mut merged: Vec<u32> = [a.train.row(u), a.val.row(u), a.test.row(u)].concat();
            merged.sort_unstable();
            assert_eq!(&merged, row, "user {u}: parts must partition the row");
            let s = formula_sizes(row.len(), 0.2, 0.125);
            assert_eq!(
                (a.train.row_len(u), a.val.row_len(u), a.test.row_len(u)),
                (s.train, s.val, s.test)
            );
        }
        assert_eq!(a.users_clamped, 0);
        a.train.validate(61).unwrap();
    }

    #[test]
    fn cold_entities_are_all_in_test_and_the_rest_splits_as_before() {
        let rows: Vec<Vec<u32>> = (0..40)
            .map(|u| (0..(6 + u % 11)).map(|i| (i * 5 + u) % 60).collect())
            .map(|mut r: Vec<u32>| {
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect();
        let all = Csr::from_rows(&rows);
        let ids: Vec<String> = (0..40).map(|u| format!("u{u}")).collect();
        let cfg = SplitConfig::default();
        let warm = split(&all, &ids, &cfg, None);

        let items = ColdSet::new(FeatureSide::Items, Some(0.2), vec![0, 7, 13, 42], 60);
        let s = split(&all, &ids, &cfg, Some(&items));
        for (u, row) in rows.iter().enumerate() {
            let (cold, warm_items): (Vec<u32>, Vec<u32>) =
                row.iter().partition(|&&i| items.contains(i));
            for i in &cold {
                assert!(
                    s.test.row(u).contains(i),
                    "user {u}: cold item {i} not in test"
                );
            }
            assert!(
                s.train
                    .row(u)
                    .iter()
                    .chain(s.val.row(u))
                    .all(|&i| !items.contains(i))
            );
            let f = part_sizes(warm_items.len(), 0.2, 0.125);
            assert_eq!(
                (s.train.row_len(u), s.val.row_len(u), s.test.row_len(u)),
                (f.train, f.val, f.test + cold.len()),
                "user {u}"
            );
            let mut merged: Vec<u32> = [s.train.row(u), s.val.row(u), s.test.row(u)].concat();
            merged.sort_unstable();
            assert_eq!(&merged, row);
            if cold.is_empty() {
                assert_eq!(
                    s.train.row(u),
                    warm.train.row(u),
                    "user {u} without cold items"
                );
                assert_eq!(s.test.row(u), warm.test.row(u));
            }
        }

        let users = ColdSet::new(FeatureSide::Users, Some(0.1), vec![3, 17], 40);
        let s = split(&all, &ids, &cfg, Some(&users));
        for (u, row) in rows.iter().enumerate() {
            if users.contains(u as u32) {
                assert_eq!(s.test.row(u), &row[..]);
                assert_eq!(s.train.row_len(u) + s.val.row_len(u), 0);
            } else {
                assert_eq!(s.train.row(u), warm.train.row(u));
                assert_eq!(s.val.row(u), warm.val.row(u));
                assert_eq!(s.test.row(u), warm.test.row(u));
            }
        }
    }

    #[test]
    fn ratios_are_validated() {
        assert!(SplitConfig::default().validate().is_ok());
        let bad = SplitConfig {
            test_ratio: 1.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let nan = SplitConfig {
            val_ratio: f64::NAN,
            ..Default::default()
        };
        assert!(nan.validate().is_err());
    }
}
