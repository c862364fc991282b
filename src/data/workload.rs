//! Built-in synthetic workloads with the shape of real datasets — the same numbers of users, items and
//! interactions, and close degree distributions on both sides — generated from a fixed seed with no
//! data file, so that two people on two GPUs can run the same benchmark (`bench --workload NAME`, or
//! `--workload NAME` wherever a dataset is read). The degree summaries are compiled in
//! (`workload_tables.rs`, printed by `examples/workload_tables.rs`); the real files stay out of the
//! repository.
//!
//! Generation uses integer arithmetic and the crate's own counter-based generator (SplitMix64) only,
//! so every machine and every build produces the same interaction matrix; [`Workload::hash`] (SHA-256
//! of the sorted pairs) proves it in every report.
//!
//! 1. Each side's degree sequence is expanded from its summary (the largest degrees exactly, the rest
//!    interpolated between evenly spaced ranks), then adjusted to sum to the interaction count
//!    exactly (each degree's excess over the smallest scaled, then single units spread).
//! 2. User and item ids are shuffled (so an id says nothing about its degree).
//! 3. A bipartite configuration model: one stub per interaction of every item, shuffled and dealt to
//!    the users in order of id, each user taking as many as its degree. A user dealt the same item
//!    twice trades the extra copy with a random other user for an item it lacks, so that both degree
//!    sequences are kept exactly and no pair repeats.

use sha2::{Digest, Sha256};

pub use super::degree_table::DegreeTable;
use super::workload_tables as tables;
use crate::util::splitmix64;

/// A built-in workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub user_degrees: DegreeTable,
    pub item_degrees: DegreeTable,
    /// Where the shape comes from.
    pub source: &'static str,
}

/// The seed of every workload (a workload is one matrix, not a family).
pub const SEED: u64 = 0x5eed_c0b7_a7a5_2025;

/// Every built-in workload.
pub const ALL: &[Workload] = &[
    Workload {
        name: "ml-1m",
        users: 6_040,
        items: 3_706,
        interactions: 1_000_209,
        user_degrees: tables::ML_1M_USERS,
        item_degrees: tables::ML_1M_ITEMS,
        source: "MovieLens 1M as distributed (all 1,000,209 user-item pairs), degrees measured from the file",
    },
    Workload {
        name: "amazon-baby",
        users: 19_440,
        items: 6_386,
        interactions: 138_821,
        user_degrees: tables::AMAZON_BABY_USERS,
        item_degrees: tables::AMAZON_BABY_ITEMS,
        source: "Amazon Baby (McAuley 2014 5-core, items with description and image; the study's \
                 published split), degrees measured from the file",
    },
    Workload {
        name: "ml-20m",
        users: 138_493,
        items: 26_744,
        interactions: 20_000_263,
        user_degrees: tables::ML_20M_USERS,
        item_degrees: tables::ML_20M_ITEMS,
        source: "MovieLens 20M as distributed; degrees constructed from published summaries (user \
                 activity log-normal fit and item Gini 0.903 from LensKit's description of ML-20M; \
                 largest degrees 9,254 and 67,310), not measured from the file",
    },
];

/// The workload called `name`, or one line naming the known ones.
pub fn find(name: &str) -> anyhow::Result<&'static Workload> {
    ALL.iter().find(|w| w.name == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|w| w.name).collect();
        anyhow::anyhow!(
            "--workload {name:?}: no such workload; workloads: {}",
            names.join(", ")
        )
    })
}

/// A counter-based stream of 64-bit values (SplitMix64 over a keyed counter).
struct Stream {
    key: u64,
    counter: u64,
}

impl Stream {
    fn new(key: u64) -> Stream {
        Stream { key, counter: 0 }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        splitmix64(self.key ^ splitmix64(self.counter))
    }

    /// A value in `0..n` (Lemire's multiply-shift; its bias below 2⁻³² is irrelevant here and it is
    /// the same on every machine).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// A permutation of `0..n` from `key` (Fisher–Yates).
fn permutation(n: usize, key: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    let mut s = Stream::new(key);
    for i in (1..n).rev() {
        let j = s.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

impl Workload {
    /// User degrees (indexed by user id) summing to the interaction count exactly, each between the
    /// table's smallest and the number of items.
    pub fn user_degrees(&self) -> Vec<u32> {
        let d = fit(
            &self.user_degrees,
            self.users,
            self.items as u32,
            self.interactions,
        );
        by_shuffled_id(&d, SEED ^ 0x75)
    }

    /// Item degrees (indexed by item id), likewise, each at most the number of users.
    pub fn item_degrees(&self) -> Vec<u32> {
        let d = fit(
            &self.item_degrees,
            self.items,
            self.users as u32,
            self.interactions,
        );
        by_shuffled_id(&d, SEED ^ 0x17)
    }

    /// The interactions as sorted `user << 32 | item` keys: exactly `users`, `items` and
    /// `interactions`, every user and item with its degree.
    pub fn generate(&self) -> Vec<u64> {
        let user_deg = self.user_degrees();
        let item_deg = self.item_degrees();
        let mut stubs: Vec<u32> = Vec::with_capacity(self.interactions);
        for (i, &d) in item_deg.iter().enumerate() {
            stubs.extend(std::iter::repeat_n(i as u32, d as usize));
        }
        let mut s = Stream::new(SEED ^ 0x57);
        for k in (1..stubs.len()).rev() {
            let j = s.below(k as u64 + 1) as usize;
            stubs.swap(k, j);
        }
        // Deal: user u's slice of the shuffled stubs, sorted; repeated items become pending trades.
        let mut rows: Vec<Vec<u32>> = Vec::with_capacity(self.users);
        let mut pending: Vec<(u32, u32)> = Vec::new();
        let mut at = 0usize;
        for (u, &d) in user_deg.iter().enumerate() {
            let mut row = stubs[at..at + d as usize].to_vec();
            at += d as usize;
            row.sort_unstable();
            let mut unique = Vec::with_capacity(row.len());
            for i in row {
                if unique.last() == Some(&i) {
                    pending.push((u as u32, i));
                } else {
                    unique.push(i);
                }
            }
            rows.push(unique);
        }
        drop(stubs);
        trade_repeats(&mut rows, &pending, self.items, &mut s);
        let mut keys = Vec::with_capacity(self.interactions);
        for (u, row) in rows.iter().enumerate() {
            keys.extend(row.iter().map(|&i| ((u as u64) << 32) | i as u64));
        }
        keys.sort_unstable();
        keys
    }

    /// SHA-256 of the workload's name, counts and sorted pairs: two machines that report the same
    /// hash trained on the same interaction matrix.
    pub fn hash(&self, keys: &[u64]) -> String {
        let mut h = Sha256::new();
        h.update(b"cobrar-gpu workload v1\0");
        h.update(self.name.as_bytes());
        for n in [self.users, self.items, keys.len()] {
            h.update((n as u64).to_le_bytes());
        }
        for chunk in keys.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|k| k.to_le_bytes()).collect();
            h.update(&bytes);
        }
        crate::util::hex(&h.finalize())
    }
}

/// The degrees `table` describes for `n` entities, each between the table's smallest and `cap`,
/// summing to `total` exactly (descending order).
fn fit(table: &DegreeTable, n: usize, cap: u32, total: usize) -> Vec<u32> {
    let mut d = table.expand(n);
    let floor = d.iter().copied().min().unwrap_or(1).clamp(1, cap);
    for v in d.iter_mut() {
        *v = (*v).clamp(floor, cap);
    }
    let target = total as i64;
    let mut sum: i64 = d.iter().map(|&v| v as i64).sum();
    // A summary that does not sum to the count (rounding, or a fitted shape): scale each degree's
    // excess over the floor, in integers, then spread the rest one interaction at a time.
    let base = floor as i64 * d.len() as i64;
    if sum > base && (sum - target).abs() * 1000 > target {
        let (num, den) = ((target - base).max(0) as i128, (sum - base) as i128);
        for v in d.iter_mut() {
            let excess = (*v - floor) as i128;
            *v = (floor + ((excess * num + den / 2) / den) as u32).min(cap);
        }
        sum = d.iter().map(|&v| v as i64).sum();
    }
    let (mut k, mut stalled) = (0usize, 0usize);
    while sum != target && stalled < d.len() {
        let i = k % d.len();
        if sum < target && d[i] < cap {
            d[i] += 1;
            sum += 1;
            stalled = 0;
        } else if sum > target && d[i] > floor {
            d[i] -= 1;
            sum -= 1;
            stalled = 0;
        } else {
            stalled += 1;
        }
        k += 1;
    }
    d
}

/// `d` (by rank) assigned to ids in a shuffled order.
fn by_shuffled_id(d: &[u32], key: u64) -> Vec<u32> {
    let order = permutation(d.len(), key);
    let mut by_id = vec![0u32; d.len()];
    for (rank, &id) in order.iter().enumerate() {
        by_id[id as usize] = d[rank];
    }
    by_id
}

/// Resolves every repeated (user, item) of the deal: the user trades the extra copy with a random other
/// user that lacks the item, for one of that user's items it lacks (the first such one from a random
/// place in that user's row). Both sides keep their degrees; `rows` end sorted and duplicate-free.
fn trade_repeats(rows: &mut [Vec<u32>], pending: &[(u32, u32)], n_items: usize, s: &mut Stream) {
    let mut has = vec![0u64; n_items.div_ceil(64)];
    let bit = |has: &[u64], i: u32| has[i as usize / 64] >> (i % 64) & 1 == 1;
    let n_users = rows.len() as u64;
    let mut k = 0;
    while k < pending.len() {
        let u = pending[k].0 as usize;
        let end = k + pending[k..]
            .iter()
            .take_while(|p| p.0 as usize == u)
            .count();
        for &i in &rows[u] {
            has[i as usize / 64] |= 1 << (i % 64);
        }
        let mut added = Vec::new();
        for &(_, i) in &pending[k..end] {
            if !bit(&has, i) {
                // An earlier trade took this item away from u: the copy is no longer a repeat.
                has[i as usize / 64] |= 1 << (i % 64);
                added.push(i);
                continue;
            }
            loop {
                let v = s.below(n_users) as usize;
                let len = rows[v].len();
                if v == u || len == 0 || rows[v].binary_search(&i).is_ok() {
                    continue;
                }
                let start = s.below(len as u64) as usize;
                let Some(at) = (0..len)
                    .map(|o| (start + o) % len)
                    .find(|&p| !bit(&has, rows[v][p]))
                else {
                    continue;
                };
                let row = &mut rows[v];
                let j = row.remove(at);
                let to = row.binary_search(&i).expect_err("i is not in v's row");
                row.insert(to, i);
                has[j as usize / 64] |= 1 << (j % 64);
                added.push(j);
                break;
            }
        }
        let row = &mut rows[u];
        for &i in row.iter().chain(&added) {
            has[i as usize / 64] &= !(1 << (i % 64));
        }
        row.extend(added);
        row.sort_unstable();
        k = end;
    }
}

/// Degree statistics of one side, for comparing a workload with its dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DegreeStats {
    pub count: usize,
    pub min: u32,
    pub median: u32,
    pub mean: f64,
    pub max: u32,
    pub gini: f64,
}

impl DegreeStats {
    pub fn of(degrees: &[u32]) -> DegreeStats {
        let mut s = degrees.to_vec();
        s.sort_unstable();
        let n = s.len();
        let total: f64 = s.iter().map(|&x| x as f64).sum();
        let weighted: f64 = s
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as f64 + 1.0) * x as f64)
            .sum();
        DegreeStats {
            count: n,
            min: s.first().copied().unwrap_or(0),
            median: s.get(n / 2).copied().unwrap_or(0),
            mean: total / n.max(1) as f64,
            max: s.last().copied().unwrap_or(0),
            gini: if n == 0 || total == 0.0 {
                0.0
            } else {
                2.0 * weighted / (n as f64 * total) - (n as f64 + 1.0) / n as f64
            },
        }
    }
}

/// The Kolmogorov–Smirnov distance between two samples of degrees (the largest gap between their
/// empirical distribution functions).
pub fn ks_distance(a: &[u32], b: &[u32]) -> f64 {
    let (mut x, mut y) = (a.to_vec(), b.to_vec());
    x.sort_unstable();
    y.sort_unstable();
    let (mut i, mut j, mut worst) = (0usize, 0usize, 0f64);
    while i < x.len() && j < y.len() {
        let v = x[i].min(y[j]);
        while i < x.len() && x[i] <= v {
            i += 1;
        }
        while j < y.len() && y[j] <= v {
            j += 1;
        }
        let gap = (i as f64 / x.len() as f64 - j as f64 / y.len() as f64).abs();
        worst = worst.max(gap);
    }
    worst
}

/// Degrees of the users and the items of sorted `keys`.
pub fn degrees_of(keys: &[u64], n_users: usize, n_items: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut du, mut di) = (vec![0u32; n_users], vec![0u32; n_items]);
    for &k in keys {
        du[(k >> 32) as usize] += 1;
        di[(k as u32) as usize] += 1;
    }
    (du, di)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_keeps_the_top_and_interpolates_the_rest() {
        let t = DegreeTable {
            top: &[100, 50],
            rest: &[10, 6, 2],
        };
        assert_eq!(t.expand(7), vec![100, 50, 10, 8, 6, 4, 2]);
        assert_eq!(t.expand(2), vec![100, 50]);
        assert_eq!(t.expand(3), vec![100, 50, 10]);
    }

    #[test]
    fn ks_distance_of_identical_and_disjoint_samples() {
        assert_eq!(ks_distance(&[1, 2, 3], &[3, 2, 1]), 0.0);
        assert_eq!(ks_distance(&[1, 1], &[5, 5]), 1.0);
        let s = DegreeStats::of(&[1, 1, 1, 1]);
        assert_eq!((s.gini, s.median, s.max), (0.0, 1, 1));
    }

    #[test]
    fn a_small_workload_has_its_exact_counts_and_the_same_hash_twice() {
        let w = Workload {
            name: "test",
            users: 300,
            items: 120,
            interactions: 6_000,
            user_degrees: DegreeTable {
                top: &[110, 90],
                rest: &[60, 30, 12, 5],
            },
            item_degrees: DegreeTable {
                top: &[280, 200],
                rest: &[120, 40, 5, 1],
            },
            source: "test",
        };
        let keys = w.generate();
        assert_eq!(keys.len(), 6_000);
        assert!(
            keys.windows(2).all(|p| p[0] < p[1]),
            "sorted, no duplicates"
        );
        let (du, di) = degrees_of(&keys, 300, 120);
        assert!(du.iter().all(|&d| d >= 5) && di.iter().all(|&d| d >= 1));
        assert_eq!(w.hash(&keys), w.hash(&w.generate()));
    }
}
