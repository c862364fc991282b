//! The study's ranking metrics, exactly as SPEC §4 defines them, computed on the CPU from the top-k
//! lists the ranking stage reads back.
//!
//! Accuracy (NDCG, Recall, Precision, HitRate, MRR) uses binary relevance against the evaluated
//! split; popularity bias is measured three ways: ARP (how popular the recommended items are),
//! Coverage (how much of the catalogue is ever recommended) and PopRSP (whether head and tail items
//! are recommended in proportion to their availability). Every cutoff is answered from one pass over
//! each user's list: prefix sums over the first `max(cutoffs)` positions make each cutoff O(1), so a
//! full ML-1M evaluation (6,040 users, k = 20) costs well under a millisecond per cutoff.
//!
//! All sums run in `f64`; a mean over zero users is reported as 0 rather than NaN, because the
//! results go to JSON, which has no NaN.

use serde::{Deserialize, Serialize};

use crate::data::Csr;

/// The cutoffs the study reports (k = 5 is the headline; 10 and 20 are kept for completeness).
pub const DEFAULT_CUTOFFS: [usize; 3] = [5, 10, 20];

/// Names of the user-level metrics kept per user, in the order [`PerUserMetrics::values`] lists
/// them within each cutoff. These are the names `user_metrics.tsv` uses.
pub const USER_METRICS: [&str; 6] = ["ndcg", "recall", "precision", "hit_rate", "mrr", "arp"];

/// The padding id for lists shorter than `k_max`, the same value as the ranking stage's
/// [`NO_ITEM`](crate::eval::ranking::NO_ITEM). Any id outside the catalogue (`>= popularity.len()`)
/// ends a list; this is the canonical one.
pub const PAD: u32 = u32::MAX;

/// Share of all training interactions the short head must reach (SPEC §4: 80%), as the exact
/// fraction `HEAD_NUM / HEAD_DEN` so the head/tail boundary is decided in integers, not floats.
const HEAD_NUM: u64 = 4;
const HEAD_DEN: u64 = 5;

/// The ranking stage's output for the evaluated users.
///
/// `items` is row-major, `users.len() × k_max`: row `i` is the ranked list of `users[i]`, best
/// first, with the user's training items already excluded and no item repeated. A user with fewer
/// than `k_max` candidate items has a shorter list, padded with [`PAD`] (any id outside the
/// catalogue ends the list; later entries are ignored). Ties were broken by the ranking stage.
#[derive(Debug, Clone, Copy)]
pub struct RankedLists<'a> {
    /// Dense user ids, one per list.
    pub users: &'a [u32],
    /// `users.len() * k_max` item ids.
    pub items: &'a [u32],
    /// Row length of `items`; cutoffs beyond it see at most `k_max` items (as a shorter list would).
    pub k_max: usize,
}

/// Every metric at one cutoff, averaged over the evaluated users (see [`evaluate`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CutoffMetrics {
    pub k: usize,
    pub ndcg: f64,
    pub recall: f64,
    pub precision: f64,
    pub hit_rate: f64,
    pub mrr: f64,
    /// Average recommendation popularity: mean training-interaction count of the recommended items.
    pub arp: f64,
    /// Distinct catalogue items in at least one evaluated user's top-k.
    pub coverage: usize,
    /// `coverage` as a percentage (0–100) of the whole catalogue.
    pub coverage_pct: f64,
    /// Popularity-based ranking-based statistical parity: 0 when head and tail items are recommended
    /// in proportion to their availability; lower is less biased.
    pub poprsp: f64,
}

/// Per-user values of the user-level metrics, kept for paired significance tests.
#[derive(Clone, Debug, PartialEq)]
pub struct PerUserMetrics {
    /// The evaluated users (dense ids), in list order; users skipped for lack of relevant items are
    /// not here.
    pub users: Vec<u32>,
    /// `(metric, k, values)` with one value per entry of `users`. Cutoff-major: for each requested
    /// cutoff in order, the metrics of [`USER_METRICS`] in order.
    pub values: Vec<(String, usize, Vec<f64>)>,
}

impl PerUserMetrics {
    /// The per-user values of `metric` at cutoff `k`, if computed.
    pub fn get(&self, metric: &str, k: usize) -> Option<&[f64]> {
        self.values
            .iter()
            .find(|(m, kk, _)| m == metric && *kk == k)
            .map(|(_, _, v)| v.as_slice())
    }
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Users the means are over: listed users with at least one relevant item.
    pub users: usize,
    /// Listed users without any relevant item in `truth`; excluded from every metric.
    pub skipped: usize,
    /// One entry per requested cutoff, in the requested order.
    pub cutoffs: Vec<CutoffMetrics>,
    pub per_user: PerUserMetrics,
}

impl EvalResult {
    /// The metrics at cutoff `k`, if it was requested.
    pub fn at(&self, k: usize) -> Option<&CutoffMetrics> {
        self.cutoffs.iter().find(|c| c.k == k)
    }
}

/// The serialised form of one split's metrics: the `test` and `validation` objects of
/// `metrics.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SplitMetrics {
    pub users: usize,
    pub cutoffs: Vec<CutoffMetrics>,
}

impl SplitMetrics {
    /// The metrics at cutoff `k`, if present.
    pub fn at(&self, k: usize) -> Option<&CutoffMetrics> {
        self.cutoffs.iter().find(|c| c.k == k)
    }
}

impl From<&EvalResult> for SplitMetrics {
    fn from(r: &EvalResult) -> Self {
        SplitMetrics {
            users: r.users,
            cutoffs: r.cutoffs.clone(),
        }
    }
}

/// Marks the short head: items sorted by training popularity descending (ties: lower index first);
/// the head is the shortest prefix whose popularity sum reaches 80% of all training interactions.
/// Returns the membership flags and the head size.
///
/// With no training interactions at all, the empty prefix already "reaches" 80% of zero, so every
/// item is tail.
pub fn short_head(popularity: &[u32]) -> (Vec<bool>, usize) {
    let total: u64 = popularity.iter().map(|&p| u64::from(p)).sum();
    let mut order: Vec<u32> = (0..popularity.len() as u32).collect();
    // Stable sort on the key alone keeps the lower index first among equal popularity.
    order.sort_by_key(|&i| std::cmp::Reverse(popularity[i as usize]));
    let mut is_head = vec![false; popularity.len()];
    let mut sum = 0u64;
    let mut n_head = 0;
    for &i in &order {
        // sum / total >= 4/5, in integers.
        if sum * HEAD_DEN >= total * HEAD_NUM {
            break;
        }
        sum += u64::from(popularity[i as usize]);
        is_head[i as usize] = true;
        n_head += 1;
    }
    (is_head, n_head)
}

/// Computes every SPEC §4 metric at each of `cutoffs` for the users of `lists`.
///
/// * `truth`: by dense user id, the relevant items of the evaluated split (validation or test).
/// * `train`: by dense user id, the training items (PopRSP counts a group's items a user could
///   have been recommended, i.e. not already trained on).
/// * `popularity`: training interactions per item; its length is the catalogue size M.
///
/// Definitions (binary relevance; `rel_u` = the user's relevant items; `m = min(k, list length)`):
/// * NDCG@k = DCG/IDCG with DCG = Σ_{r ≤ m} rel_r / log2(r+1) and IDCG the DCG of
///   `min(k, |rel_u|)` hits at the top.
/// * Recall@k = hits / |rel_u|; Precision@k = hits / k — divided by k even when the list is shorter
///   than k, because the user was owed k recommendations; HitRate@k = 1 if any hit;
///   MRR@k = 1 / rank of the first hit within k, 0 if none.
/// * ARP@k = mean popularity of the user's `m` recommended items (0 for an empty list).
/// * Coverage@k = distinct items in any evaluated user's top-k, and its percentage of M.
/// * PopRSP@k: with the head from [`short_head`], P(G) = Σ_u |topk_u ∩ G| / Σ_u |G \ train_u| for
///   G ∈ {head, tail} (0 when the denominator is 0), and PopRSP = population std / mean of
///   (P(head), P(tail)) = |P(head) − P(tail)| / (P(head) + P(tail)), 0 when the mean is 0.
///
/// The caller lists exactly the users with at least one relevant item. A listed user without any
/// (or with an id beyond `truth`'s rows) is skipped — excluded from every mean, from Coverage and
/// from PopRSP, as if not listed — and counted in [`EvalResult::skipped`], so a caller bug shows up
/// instead of silently pulling the means towards 0. Users beyond `train`'s rows have no training
/// items. A cutoff of 0 gives all-zero metrics.
///
/// # Panics
/// If `lists.items.len() != lists.users.len() * lists.k_max` — a malformed ranking-stage output is
/// a programming error, not input.
pub fn evaluate(
    lists: &RankedLists,
    truth: &Csr,
    train: &Csr,
    popularity: &[u32],
    cutoffs: &[usize],
) -> EvalResult {
    let k_max = lists.k_max;
    assert_eq!(
        lists.items.len(),
        lists.users.len() * k_max,
        "ranked lists: items must hold users × k_max ids"
    );
    let n_items = popularity.len();
    // Positions any cutoff looks at.
    let depth = cutoffs.iter().copied().max().unwrap_or(0).min(k_max);
    let max_k = cutoffs.iter().copied().max().unwrap_or(0);

    // idcg[j] = DCG of j hits at the top, for j up to the largest cutoff.
    let mut idcg = vec![0.0f64; max_k + 1];
    for j in 0..max_k {
        idcg[j + 1] = idcg[j] + discount(j);
    }

    let (is_head, n_head) = short_head(popularity);
    let n_tail = n_items - n_head;

    // Smallest 0-based position at which each item appears in any evaluated list: Coverage@k is
    // then the count of items with position < k, for every k at once.
    let mut first_pos = vec![u32::MAX; n_items];

    // Prefix sums over the first `depth` positions of one user's list (index j = first j items).
    let mut hits = vec![0u32; depth + 1];
    let mut dcg = vec![0.0f64; depth + 1];
    let mut pop = vec![0.0f64; depth + 1];
    let mut head = vec![0u32; depth + 1];

    let nc = cutoffs.len();
    let mut sums = vec![[0.0f64; 6]; nc];
    let mut head_recs = vec![0u64; nc];
    let mut tail_recs = vec![0u64; nc];
    let mut head_avail = 0u64;
    let mut tail_avail = 0u64;
    let mut per_user_users = Vec::with_capacity(lists.users.len());
    let mut per_user_vals: Vec<Vec<f64>> = (0..nc * USER_METRICS.len())
        .map(|_| Vec::with_capacity(lists.users.len()))
        .collect();
    let mut skipped = 0usize;

    for (i, &u) in lists.users.iter().enumerate() {
        let u = u as usize;
        let rel = if u < truth.n_rows() {
            truth.row(u)
        } else {
            &[]
        };
        if rel.is_empty() {
            skipped += 1;
            continue;
        }
        per_user_users.push(u as u32);

        let row = &lists.items[i * k_max..(i + 1) * k_max];
        let len = row
            .iter()
            .position(|&it| it as usize >= n_items)
            .unwrap_or(k_max);
        let seen = len.min(depth);
        let mut first_hit = usize::MAX;
        for (j, &it) in row[..seen].iter().enumerate() {
            let item = it as usize;
            let hit = rel.binary_search(&it).is_ok();
            if hit && first_hit == usize::MAX {
                first_hit = j;
            }
            hits[j + 1] = hits[j] + u32::from(hit);
            dcg[j + 1] = dcg[j] + if hit { discount(j) } else { 0.0 };
            pop[j + 1] = pop[j] + f64::from(popularity[item]);
            head[j + 1] = head[j] + u32::from(is_head[item]);
            let p = &mut first_pos[item];
            *p = (*p).min(j as u32);
        }

        // Items of each group this user could have been recommended (not trained on).
        let train_row = if u < train.n_rows() {
            train.row(u)
        } else {
            &[]
        };
        let (mut tr_head, mut tr_tail) = (0u64, 0u64);
        for &it in train_row {
            match is_head.get(it as usize) {
                Some(true) => tr_head += 1,
                Some(false) => tr_tail += 1,
                None => {}
            }
        }
        head_avail += n_head as u64 - tr_head.min(n_head as u64);
        tail_avail += n_tail as u64 - tr_tail.min(n_tail as u64);

        for (ci, &k) in cutoffs.iter().enumerate() {
            let m = k.min(seen);
            let h = f64::from(hits[m]);
            let ndcg = if k == 0 {
                0.0
            } else {
                dcg[m] / idcg[k.min(rel.len())]
            };
            let recall = h / rel.len() as f64;
            let precision = if k == 0 { 0.0 } else { h / k as f64 };
            let hit_rate = if hits[m] > 0 { 1.0 } else { 0.0 };
            let mrr = if first_hit < m {
                1.0 / (first_hit + 1) as f64
            } else {
                0.0
            };
            let arp = if m == 0 { 0.0 } else { pop[m] / m as f64 };
            let vals = [ndcg, recall, precision, hit_rate, mrr, arp];
            for (s, (acc, v)) in sums[ci].iter_mut().zip(vals).enumerate() {
                *acc += v;
                per_user_vals[ci * USER_METRICS.len() + s].push(v);
            }
            head_recs[ci] += u64::from(head[m]);
            tail_recs[ci] += (m as u64) - u64::from(head[m]);
        }
    }

    let n_users = per_user_users.len();
    let mean = |s: f64| {
        if n_users == 0 {
            0.0
        } else {
            s / n_users as f64
        }
    };
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let result_cutoffs = cutoffs
        .iter()
        .enumerate()
        .map(|(ci, &k)| {
            let coverage = first_pos.iter().filter(|&&p| (p as usize) < k).count();
            let p_head = ratio(head_recs[ci], head_avail);
            let p_tail = ratio(tail_recs[ci], tail_avail);
            let poprsp = if p_head + p_tail == 0.0 {
                0.0
            } else {
                (p_head - p_tail).abs() / (p_head + p_tail)
            };
            let s = &sums[ci];
            CutoffMetrics {
                k,
                ndcg: mean(s[0]),
                recall: mean(s[1]),
                precision: mean(s[2]),
                hit_rate: mean(s[3]),
                mrr: mean(s[4]),
                arp: mean(s[5]),
                coverage,
                coverage_pct: if n_items == 0 {
                    0.0
                } else {
                    100.0 * coverage as f64 / n_items as f64
                },
                poprsp,
            }
        })
        .collect();

    let mut vals = per_user_vals.into_iter();
    let values = cutoffs
        .iter()
        .flat_map(|&k| USER_METRICS.iter().map(move |&m| (m, k)))
        .map(|(m, k)| (m.to_string(), k, vals.next().unwrap_or_default()))
        .collect();

    EvalResult {
        users: n_users,
        skipped,
        cutoffs: result_cutoffs,
        per_user: PerUserMetrics {
            users: per_user_users,
            values,
        },
    }
}

/// The DCG discount of 0-based position `j` (rank j+1): 1 / log2(rank + 1).
fn discount(j: usize) -> f64 {
    1.0 / ((j + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_head_reaches_eighty_percent() {
        // total 10; sorted: item 1 (5), item 0 (3), item 2 (2). 5 < 8, 8 >= 8 → head {1, 0}.
        let (h, n) = short_head(&[3, 5, 2]);
        assert_eq!((h, n), (vec![true, true, false], 2));
        assert_eq!(short_head(&[0, 0]), (vec![false, false], 0));
    }

    #[test]
    fn discount_values() {
        assert_eq!(discount(0), 1.0);
        assert!((discount(2) - 0.5).abs() < 1e-15);
    }
}
