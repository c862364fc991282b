//! Cold-start evaluation (`evaluate` on a `--cold-start` split): the test interactions are cut in two
//! and each part ranked over its own candidates —
//!
//! * items held out: **warm** = each user's test items that were not held out, ranked among all the
//!   items not held out (the user's training items excluded); **cold** = the held-out items in a user's
//!   test, ranked among the held-out items only (none can be a training item);
//! * users held out: **warm** = the other users' test items, ranked as usual; **cold** = the held-out
//!   users' test items, ranked among all items (they have no training items).
//!
//! Scores come from the model's embeddings on the host (the same scorer and tie rule as the GPU
//! ranking, `rank_cpu`, spread over the cores), so a protocol can rank any subset of the catalogue.
//! Two floors are scored
//! beside every model: **MostPop** (training popularity; every held-out item has none, so on cold
//! items it is the index order) and **feature popularity**, which never looks at an entity's own
//! interactions: score(u, i) = mean over u's groups f and i's groups g of C[f, g], the training
//! interactions between users of group f and items of group g, where users are grouped by their
//! features (all users one group where the data has none; a user without features counts in every
//! group alike) and items by their features when items are held out (an item without features
//! scores 0), else each item is its own group (the popularity of an item among users like u).
//! Coverage, ARP and PopRSP (with its short head) are over each half's candidates.

use crate::data::{Csr, Dataset, FeatureSide};
use crate::eval::metrics::{self, EvalResult, RankedLists};
use crate::eval::ranking::{Scorer, rank_cpu};

/// One half of a cold-start split's test, as a ranking problem over a subset of the items.
pub struct Protocol {
    /// "warm" or "cold".
    pub name: &'static str,
    /// Users with at least one relevant item in this half.
    pub users: Vec<u32>,
    /// The items ranked (dense ids, ascending); positions in this list are the protocol's item ids.
    pub candidates: Vec<u32>,
    /// By user, in candidate positions: the relevant items, and the items left out of the ranking.
    truth: Csr,
    exclude: Csr,
    /// Training popularity of each candidate.
    popularity: Vec<u32>,
}

impl Protocol {
    /// The warm and the cold half of `ds`'s test; `None` when `ds` is not a cold-start split.
    pub fn both(ds: &Dataset) -> Option<[Protocol; 2]> {
        let cold = ds.cold.as_ref()?;
        let all: Vec<u32> = (0..ds.n_items() as u32).collect();
        let (warm_items, cold_items) = match cold.side {
            FeatureSide::Items => all.iter().partition(|&&i| !cold.contains(i)),
            FeatureSide::Users => (all.clone(), all),
        };
        Some([
            Protocol::new(ds, "warm", ds.test_part(false), warm_items),
            Protocol::new(ds, "cold", ds.test_part(true), cold_items),
        ])
    }

    fn new(ds: &Dataset, name: &'static str, truth: Csr, candidates: Vec<u32>) -> Protocol {
        let mut pos = vec![u32::MAX; ds.n_items()];
        for (p, &i) in candidates.iter().enumerate() {
            pos[i as usize] = p as u32;
        }
        let remap = |part: &Csr| -> Csr {
            let mut pairs = Vec::new();
            for u in 0..part.n_rows() {
                for &i in part.row(u) {
                    if pos[i as usize] != u32::MAX {
                        pairs.push((u as u32, pos[i as usize]));
                    }
                }
            }
            Csr::from_pairs(part.n_rows(), &pairs)
        };
        let truth = remap(&truth);
        Protocol {
            name,
            users: super::Evaluator::users_of(&truth),
            exclude: remap(&ds.train),
            popularity: candidates
                .iter()
                .map(|&i| ds.item_popularity[i as usize])
                .collect(),
            truth,
            candidates,
        }
    }

    /// Relevant test interactions in this half.
    pub fn interactions(&self) -> usize {
        self.truth.nnz()
    }

    /// Ranks this half's candidates with `scores`' embeddings for its users and computes the metrics
    /// at `cutoffs` (each at most the number of candidates' worth of list; shorter lists are padded).
    pub fn evaluate(&self, scores: &HostScores, cutoffs: &[usize]) -> EvalResult {
        let dim = scores.dim;
        let mut items = Vec::with_capacity(self.candidates.len() * dim);
        for &i in &self.candidates {
            items.extend_from_slice(&scores.items[i as usize * dim..(i as usize + 1) * dim]);
        }
        let k = cutoffs.iter().copied().max().unwrap_or(1);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.users.len().div_ceil(threads).max(1);
        let parts: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .users
                .chunks(chunk)
                .map(|users| {
                    let items = &items;
                    s.spawn(move || {
                        rank_cpu(
                            &scores.users,
                            items,
                            dim,
                            &self.exclude,
                            users,
                            k,
                            scores.scorer,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("ranking thread"))
                .collect()
        });
        let mut ranked_items = Vec::with_capacity(self.users.len() * k);
        for p in &parts {
            ranked_items.extend_from_slice(&p.items);
        }
        let lists = RankedLists {
            users: &self.users,
            items: &ranked_items,
            k_max: k,
        };
        metrics::evaluate(
            &lists,
            &self.truth,
            &self.exclude,
            &self.popularity,
            cutoffs,
        )
    }
}

/// Every user's and item's embedding on the host, and how they are scored.
pub struct HostScores {
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    pub dim: usize,
    pub scorer: Scorer,
}

impl HostScores {
    /// MostPop: e_u = 1, e_i = the item's training interactions.
    pub fn most_popular(ds: &Dataset) -> HostScores {
        HostScores {
            users: vec![1.0; ds.n_users()],
            items: ds.item_popularity.iter().map(|&p| p as f32).collect(),
            dim: 1,
            scorer: Scorer::Dot,
        }
    }

    /// Feature popularity (see the module's documentation), or why it cannot be computed: it needs
    /// the held-out side's features.
    pub fn feature_popularity(ds: &Dataset) -> Result<HostScores, String> {
        let cold = ds.cold.as_ref().ok_or("not a cold-start split")?;
        // A side whose feature set names no feature (every line an unknown id) has none.
        let features = |side| ds.features.side(side).filter(|f| f.n_features() > 0);
        if features(cold.side).is_none() {
            return Err(format!(
                "needs the held-out {}' features ({})",
                cold.side.noun(),
                cold.side.flag()
            ));
        }
        let (n, m) = (ds.n_users(), ds.n_items());
        // Groups of each user (features, or the one group 0) and of each item.
        let (user_groups, n_user_groups): (Csr, usize) = match features(FeatureSide::Users) {
            Some(f) => (f.rows.clone(), f.n_features()),
            None => (
                Csr::from_pairs(n, &(0..n as u32).map(|u| (u, 0)).collect::<Vec<_>>()),
                1,
            ),
        };
        let (item_groups, n_item_groups): (Csr, usize) =
            match (cold.side, features(FeatureSide::Items)) {
                (FeatureSide::Items, Some(f)) => (f.rows.clone(), f.n_features()),
                _ => (
                    Csr::from_pairs(m, &(0..m as u32).map(|i| (i, i)).collect::<Vec<_>>()),
                    m,
                ),
            };
        // C[g][f]: training interactions between user group f and item group g.
        let mut c = vec![0.0f64; n_item_groups * n_user_groups];
        for (u, i) in ds.train.iter() {
            for &g in item_groups.row(i as usize) {
                for &f in user_groups.row(u as usize) {
                    c[g as usize * n_user_groups + f as usize] += 1.0;
                }
            }
        }
        // A user without features is scored over every group alike.
        let mut users = vec![0.0f32; n * n_user_groups];
        for u in 0..n {
            let row = user_groups.row(u);
            let e = &mut users[u * n_user_groups..(u + 1) * n_user_groups];
            if row.is_empty() {
                e.fill(1.0 / n_user_groups as f32);
            }
            for &f in row {
                e[f as usize] = 1.0 / row.len() as f32;
            }
        }
        let mut items = vec![0.0f32; m * n_user_groups];
        for i in 0..m {
            let row = item_groups.row(i);
            for &g in row {
                for f in 0..n_user_groups {
                    items[i * n_user_groups + f] +=
                        (c[g as usize * n_user_groups + f] / row.len() as f64) as f32;
                }
            }
        }
        Ok(HostScores {
            users,
            items,
            dim: n_user_groups,
            scorer: Scorer::Dot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FeatureSet;

    /// 4 users, 6 items; items 4 and 5 held out.
    fn toy() -> Dataset {
        let ids = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let train = Csr::from_rows(&[vec![0u32, 1], vec![1, 2], vec![0, 3], vec![2]]);
        let val = Csr::from_rows(&[vec![], vec![], vec![], vec![3u32]]);
        let test = Csr::from_rows(&[vec![2u32, 4], vec![5], vec![1, 4, 5], vec![]]);
        let mut ds =
            Dataset::from_parts("toy", ids("u", 4), ids("i", 6), train, val, test).unwrap();
        let cold: Vec<String> = vec!["i4".into(), "i5".into()];
        ds.set_cold(FeatureSide::Items, Some(0.3), &cold).unwrap();
        ds
    }

    #[test]
    fn halves_split_the_test_and_rank_their_own_candidates() {
        let ds = toy();
        let [warm, cold] = Protocol::both(&ds).unwrap();
        assert_eq!(warm.candidates, vec![0, 1, 2, 3]);
        assert_eq!(cold.candidates, vec![4, 5]);
        assert_eq!(warm.users, vec![0, 2]);
        assert_eq!(cold.users, vec![0, 1, 2]);
        assert_eq!(warm.interactions() + cold.interactions(), ds.test.nnz());
        // Item i scores i + 1 for everyone (dot with e_u = 1): the best candidates are the last.
        let scores = HostScores {
            users: vec![1.0; 4],
            items: (1..=6).map(|v| v as f32).collect(),
            dim: 1,
            scorer: Scorer::Dot,
        };
        // Warm: user 0 (train 0, 1) ranks 3, 2 → its test item 2 at rank 2: NDCG@1 0, HR@2 1;
        // user 2 (train 0, 3) ranks 2, 1 → item 1 at rank 2.
        let r = warm.evaluate(&scores, &[1, 2]);
        assert_eq!(r.users, 2);
        assert_eq!(r.at(1).unwrap().hit_rate, 0.0);
        assert_eq!(r.at(2).unwrap().hit_rate, 1.0);
        // Cold: everyone ranks 5, 4. Users 1 and 2 have item 5 first; user 0's item 4 is second.
        let r = cold.evaluate(&scores, &[1]);
        assert_eq!(r.users, 3);
        assert!((r.at(1).unwrap().hit_rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            r.at(1).unwrap().coverage,
            1,
            "one of the two cold items is ever first"
        );
    }

    #[test]
    fn floors_score_what_they_say() {
        let mut ds = toy();
        let pop = HostScores::most_popular(&ds);
        assert_eq!(pop.items, vec![2.0, 2.0, 2.0, 1.0, 0.0, 0.0]);
        assert!(
            HostScores::feature_popularity(&ds).is_err(),
            "no item features"
        );
        // Items 0, 4 are "a"; 1, 2, 5 are "b"; 3 is "a" and "b". No user features: one group.
        let pairs: Vec<(String, String)> = [
            (0, "a"),
            (1, "b"),
            (2, "b"),
            (3, "a"),
            (3, "b"),
            (4, "a"),
            (5, "b"),
        ]
        .iter()
        .map(|&(i, f)| (format!("i{i}"), f.to_string()))
        .collect();
        let set = FeatureSet::from_pairs(&ds.item_ids, &pairs, "test".into());
        ds.features.set(FeatureSide::Items, set);
        let fp = HostScores::feature_popularity(&ds).unwrap();
        assert_eq!(fp.dim, 1);
        // Training interactions with "a": items 0 (2), 3 (1) → 3; with "b": 1 (2), 2 (2), 3 (1) → 5.
        // Item 3 is both: (3 + 5) / 2 = 4.
        assert_eq!(fp.items, vec![3.0, 5.0, 5.0, 4.0, 3.0, 5.0]);
    }
}
