//! Cold start (`--cold-start items|users --cold-ratio r`): a seeded fraction of the items (or users)
//! is held out entirely — every interaction of theirs goes to test, none to training or validation —
//! so that evaluation can ask how well a model ranks entities it never saw interact. The set is part
//! of the split: `data split` and a run's `split/` keep it as `cold_items.txt` / `cold_users.txt`
//! (original ids, one per line), and loading such a directory restores it.

use std::hash::Hasher;
use std::path::Path;

use serde::Serialize;

use super::error::DataError;
use super::features::FeatureSide;
use super::intern::FxHasher;
use super::split::floor_keep;

/// What `--cold-start` and `--cold-ratio` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdSpec {
    pub side: FeatureSide,
    /// Fraction of the side's entities held out (after the k-core filter).
    pub ratio: f64,
}

impl ColdSpec {
    pub fn validate(&self) -> Result<(), DataError> {
        if !(self.ratio > 0.0 && self.ratio < 1.0) {
            return Err(DataError::Invalid(format!(
                "--cold-ratio must be above 0 and below 1, got {}",
                self.ratio
            )));
        }
        Ok(())
    }
}

/// The entities of one side held out of training: dense ids, ascending, with a membership mask.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdSet {
    pub side: FeatureSide,
    /// The ratio that chose them (`None` when a split directory's `split.json` does not say).
    pub ratio: Option<f64>,
    pub ids: Vec<u32>,
    mask: Vec<bool>,
}

impl ColdSet {
    /// The set of dense `ids` (any order; repeats collapse) among `n` entities of `side`.
    ///
    /// # Panics
    /// If an id is `n` or more (the callers map ids from the dataset's own).
    pub fn new(side: FeatureSide, ratio: Option<f64>, mut ids: Vec<u32>, n: usize) -> ColdSet {
        ids.sort_unstable();
        ids.dedup();
        assert!(
            ids.last().is_none_or(|&e| (e as usize) < n),
            "cold {} id beyond the {n} of the dataset",
            side.noun()
        );
        let mut mask = vec![false; n];
        for &i in &ids {
            mask[i as usize] = true;
        }
        ColdSet {
            side,
            ratio,
            ids,
            mask,
        }
    }

    /// Whether entity `e` (of this set's side) is cold.
    pub fn contains(&self, e: u32) -> bool {
        self.mask.get(e as usize).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The whole mask (one flag per entity of the side).
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }

    /// Its file in a split directory.
    pub fn file_name(side: FeatureSide) -> &'static str {
        match side {
            FeatureSide::Users => "cold_users.txt",
            FeatureSide::Items => "cold_items.txt",
        }
    }

    /// The file's text: original ids (`ids` in dense order), one per line, in dense order.
    pub fn to_text(&self, ids: &[String]) -> String {
        let mut text = String::new();
        for &e in &self.ids {
            text.push_str(&ids[e as usize]);
            text.push('\n');
        }
        text
    }
}

/// Stream id of the cold draw (other uses of the seed draw other streams).
const COLD_STREAM: u64 = 0x434f_4c44_0000_0000; // "COLD"

/// The `n − floor((1 − ratio)·n)` entities of `ids` (original ids, dense order) with the smallest
/// seeded hash of their original id: which entity is cold depends only on the seed and its own id,
/// not on the others or the order of lines in the input. Refused when that holds out none or all.
pub fn choose(
    ids: &[String],
    side: FeatureSide,
    ratio: f64,
    seed: u64,
) -> Result<Vec<u32>, DataError> {
    let n = ids.len();
    let count = n - floor_keep(n, ratio);
    if count == 0 || count == n {
        return Err(DataError::Invalid(format!(
            "--cold-ratio {ratio} holds out {count} of the {n} {}: nothing would be {}",
            side.noun(),
            if count == 0 {
                "cold"
            } else {
                "left to train on"
            }
        )));
    }
    let mut keyed: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(e, id)| {
            let mut h = FxHasher::default();
            h.write(id.as_bytes());
            (
                crate::util::splitmix64(seed ^ COLD_STREAM ^ h.finish()),
                e as u32,
            )
        })
        .collect();
    keyed.sort_unstable();
    let mut out: Vec<u32> = keyed[..count].iter().map(|&(_, e)| e).collect();
    out.sort_unstable();
    Ok(out)
}

/// The cold ratio a split directory's `split.json` records (`--cold-ratio` of the split that wrote
/// it), if it does.
pub fn recorded_ratio(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("split.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["pipeline"]["split"]["cold_start"]["ratio"].as_f64()
}

/// Reads a split directory's cold file, if it has one: (side, original ids; blank lines and lines
/// starting with `#` skipped). Having both files, or an empty one, is refused.
pub fn read_file(dir: &Path) -> Result<Option<(FeatureSide, Vec<String>)>, DataError> {
    let mut found = None;
    for side in [FeatureSide::Users, FeatureSide::Items] {
        let path = dir.join(ColdSet::file_name(side));
        if !path.exists() {
            continue;
        }
        if found.is_some() {
            return Err(DataError::Invalid(format!(
                "{}: a split holds out users or items, not both (remove cold_users.txt or \
                 cold_items.txt)",
                dir.display()
            )));
        }
        let text = super::features::read_text(&path)?;
        let ids: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: names no {}; remove it for a split without cold start",
                path.display(),
                side.noun()
            )));
        }
        found = Some((side, ids));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_seeded_sized_and_keyed_by_id() {
        let ids: Vec<String> = (0..1000).map(|i| format!("e{i}")).collect();
        let draw =
            |ids: &[String], r: f64, seed: u64| choose(ids, FeatureSide::Items, r, seed).unwrap();
        let a = draw(&ids, 0.2, 42);
        assert_eq!(a.len(), 200);
        assert_eq!(a, draw(&ids, 0.2, 42));
        assert_ne!(a, draw(&ids, 0.2, 43));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        // n − floor(0.9·n) for n = 7: 7 − 6 = 1; none or all is refused.
        assert_eq!(draw(&ids[..7], 0.1, 1).len(), 1);
        assert!(choose(&ids, FeatureSide::Items, 1e-12, 1).is_err());
        assert!(choose(&ids[..3], FeatureSide::Users, 0.9, 1).is_err());
        // Dropping some other entity does not change whether one is cold: the draw is per id.
        let fewer: Vec<String> = ids.iter().filter(|s| *s != "e5").cloned().collect();
        let cold_named = |set: &[u32], ids: &[String]| -> Vec<String> {
            set.iter().map(|&e| ids[e as usize].clone()).collect()
        };
        let a_names = cold_named(&draw(&ids, 0.5, 9), &ids);
        let b_names = cold_named(&draw(&fewer, 0.5, 9), &fewer);
        let common = b_names.iter().filter(|n| a_names.contains(n)).count();
        assert!(common >= b_names.len() - 1, "{common} of {}", b_names.len());
    }

    #[test]
    fn set_membership_and_file_text() {
        let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let s = ColdSet::new(FeatureSide::Items, Some(0.5), vec![3, 1, 3], 4);
        assert_eq!(s.ids, vec![1, 3]);
        assert!(s.contains(1) && s.contains(3) && !s.contains(0) && !s.contains(9));
        assert_eq!(s.to_text(&ids), "b\nd\n");
        assert!(
            ColdSpec {
                side: FeatureSide::Items,
                ratio: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(
            ColdSpec {
                side: FeatureSide::Users,
                ratio: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
