//! SPEC §2 steps 1–3 over interned interactions: implicit conversion, iterative k-core, dense
//! re-indexing.
//!
//! Interactions travel as `user << 32 | item` keys in one `Vec<u64>`: sorting it groups by user and
//! orders items, `dedup` collapses duplicates, and a k-core pass is a `retain` — no hash sets, no
//! per-interaction allocation.

use serde::Serialize;

use super::intern::Interner;

/// Table 1 numbers for one stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Counts {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// `interactions / (users · items)`, 0 when either is 0.
    pub density: f64,
}

impl Counts {
    pub fn new(users: usize, items: usize, interactions: usize) -> Counts {
        let cells = users as f64 * items as f64;
        Counts {
            users,
            items,
            interactions,
            density: if cells > 0.0 {
                interactions as f64 / cells
            } else {
                0.0
            },
        }
    }
}

#[inline]
pub(crate) fn key(user: u32, item: u32) -> u64 {
    ((user as u64) << 32) | item as u64
}

#[inline]
pub(crate) fn user_of(key: u64) -> u32 {
    (key >> 32) as u32
}

#[inline]
pub(crate) fn item_of(key: u64) -> u32 {
    key as u32
}

/// Distinct users and items among `keys` (codes below `n_users` / `n_items`) and the key count.
pub(crate) fn count_keys(keys: &[u64], n_users: usize, n_items: usize) -> Counts {
    let mut seen_u = vec![false; n_users];
    let mut seen_i = vec![false; n_items];
    for &k in keys {
        seen_u[user_of(k) as usize] = true;
        seen_i[item_of(k) as usize] = true;
    }
    let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
    Counts::new(count(&seen_u), count(&seen_i), keys.len())
}

/// Step 1: every observed pair is one positive; duplicates collapse. Leaves `keys` sorted.
pub(crate) fn implicit(keys: &mut Vec<u64>) {
    keys.sort_unstable();
    keys.dedup();
}

/// Step 2: iterative k-core. Repeatedly drops every interaction whose user or item has fewer than `k`
/// interactions, until a pass removes nothing. Returns the number of passes, counting the final pass
/// that confirms stability (the convention of `shared/data/stats.py`, so the numbers agree). `k = 0`
/// (or 1) keeps everything. Order of `keys` is preserved.
pub(crate) fn kcore(keys: &mut Vec<u64>, n_users: usize, n_items: usize, k: u32) -> usize {
    if k <= 1 {
        return 0;
    }
    let mut deg_u = vec![0u32; n_users];
    let mut deg_i = vec![0u32; n_items];
    let mut passes = 0;
    loop {
        passes += 1;
        deg_u.fill(0);
        deg_i.fill(0);
        for &key in keys.iter() {
            deg_u[user_of(key) as usize] += 1;
            deg_i[item_of(key) as usize] += 1;
        }
        let before = keys.len();
        keys.retain(|&key| deg_u[user_of(key) as usize] >= k && deg_i[item_of(key) as usize] >= k);
        if keys.len() == before {
            return passes;
        }
    }
}

/// How original ids were ordered to give dense indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdOrder {
    /// Every id is an unsigned integer: ascending by value (ties between spellings such as `7`/`07`
    /// by text).
    Numeric,
    /// Otherwise: ascending by UTF-8 bytes.
    Lexicographic,
}

/// Sorts interned `codes` into dense order. Sorting (rather than order of first appearance) makes
/// the dense indices — and therefore the seeded split — independent of the order of lines in the file.
pub(crate) fn order_ids(codes: &mut [u32], names: &Interner) -> IdOrder {
    let numeric: Option<Vec<(u64, u32)>> = codes
        .iter()
        .map(|&c| names.name(c).parse::<u64>().ok().map(|v| (v, c)))
        .collect();
    match numeric {
        Some(mut pairs) => {
            pairs.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| names.name(a.1).cmp(names.name(b.1)))
            });
            for (slot, (_, c)) in codes.iter_mut().zip(pairs) {
                *slot = c;
            }
            IdOrder::Numeric
        }
        None => {
            codes.sort_unstable_by(|&a, &b| names.name(a).cmp(names.name(b)));
            IdOrder::Lexicographic
        }
    }
}

/// The dense index of one side (users or items): original ids in dense order and the map from
/// interned code to dense index (`u32::MAX` for codes that are not kept).
pub(crate) struct DenseIds {
    pub ids: Vec<String>,
    pub code_to_dense: Vec<u32>,
    pub order: IdOrder,
}

/// Step 3 for one side: the codes present (`present[code]`), sorted by [`order_ids`].
pub(crate) fn dense_ids(present: &[bool], names: &Interner) -> DenseIds {
    let mut codes: Vec<u32> = (0..present.len() as u32)
        .filter(|&c| present[c as usize])
        .collect();
    let order = order_ids(&mut codes, names);
    let mut code_to_dense = vec![u32::MAX; present.len()];
    for (dense, &c) in codes.iter().enumerate() {
        code_to_dense[c as usize] = dense as u32;
    }
    DenseIds {
        ids: codes.iter().map(|&c| names.name(c).to_string()).collect(),
        code_to_dense,
        order,
    }
}

/// Step 3: dense re-indexing of the users and items present in `keys`. Returns both sides and the
/// keys rewritten to dense indices, sorted (user-major, items ascending).
pub(crate) fn reindex(
    keys: &[u64],
    users: &Interner,
    items: &Interner,
) -> (DenseIds, DenseIds, Vec<u64>) {
    reindex_keeping(keys, users, items, &[], &[])
}

/// [`reindex`], also keeping the users and items of the interned codes `keep_users`, `keep_items`
/// that have no interaction in `keys` (a cold-start split's held-out entities).
pub(crate) fn reindex_keeping(
    keys: &[u64],
    users: &Interner,
    items: &Interner,
    keep_users: &[u32],
    keep_items: &[u32],
) -> (DenseIds, DenseIds, Vec<u64>) {
    let mut present_u = vec![false; users.len()];
    let mut present_i = vec![false; items.len()];
    for &c in keep_users {
        present_u[c as usize] = true;
    }
    for &c in keep_items {
        present_i[c as usize] = true;
    }
    for &k in keys {
        present_u[user_of(k) as usize] = true;
        present_i[item_of(k) as usize] = true;
    }
    let du = dense_ids(&present_u, users);
    let di = dense_ids(&present_i, items);
    let mut dense: Vec<u64> = keys
        .iter()
        .map(|&k| {
            key(
                du.code_to_dense[user_of(k) as usize],
                di.code_to_dense[item_of(k) as usize],
            )
        })
        .collect();
    dense.sort_unstable();
    (du, di, dense)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interner(names: &[&str]) -> Interner {
        let mut it = Interner::default();
        for n in names {
            it.intern(n);
        }
        it
    }

    #[test]
    fn implicit_collapses_duplicates() {
        let mut keys = vec![key(1, 2), key(0, 5), key(1, 2), key(0, 1)];
        implicit(&mut keys);
        assert_eq!(keys, vec![key(0, 1), key(0, 5), key(1, 2)]);
    }

    #[test]
    fn kcore_iterates_until_stable() {
        // Users 0..3 each rate items 0..3 (a 3-core block); user 3 rates item 0 and item 3, and item 3
        // is rated only by user 3. With k = 3, user 3 goes in pass 1 (2 < 3), item 3 too; pass 2 confirms.
        let mut keys = Vec::new();
        for u in 0..3 {
            for i in 0..3 {
                keys.push(key(u, i));
            }
        }
        keys.push(key(3, 0));
        keys.push(key(3, 3));
        implicit(&mut keys);
        let passes = kcore(&mut keys, 4, 4, 3);
        assert_eq!(keys.len(), 9);
        assert_eq!(passes, 2);
        assert_eq!(count_keys(&keys, 4, 4), Counts::new(3, 3, 9));
    }

    #[test]
    fn kcore_cascades() {
        // A chain: each pass starves the next user or item (k = 2), until nothing is left.
        let mut keys = vec![key(0, 0), key(0, 1), key(1, 1), key(1, 2), key(2, 2)];
        implicit(&mut keys);
        kcore(&mut keys, 3, 3, 2);
        assert!(keys.is_empty());
        let mut keep = vec![key(0, 0)];
        assert_eq!(kcore(&mut keep, 1, 1, 0), 0);
        assert_eq!(keep.len(), 1);
    }

    #[test]
    fn ids_sort_numerically_when_all_are_integers() {
        let names = interner(&["10", "9", "100", "09"]);
        let mut codes = vec![0, 1, 2, 3];
        assert_eq!(order_ids(&mut codes, &names), IdOrder::Numeric);
        let sorted: Vec<&str> = codes.iter().map(|&c| names.name(c)).collect();
        assert_eq!(sorted, vec!["09", "9", "10", "100"]);
        let names = interner(&["b", "10", "a", "9"]);
        let mut codes = vec![0, 1, 2, 3];
        assert_eq!(order_ids(&mut codes, &names), IdOrder::Lexicographic);
        let sorted: Vec<&str> = codes.iter().map(|&c| names.name(c)).collect();
        assert_eq!(sorted, vec!["10", "9", "a", "b"]);
    }

    #[test]
    fn reindex_keeps_original_ids_and_sorts() {
        let users = interner(&["30", "4", "gone"]);
        let items = interner(&["x", "b"]);
        let keys = vec![key(0, 0), key(1, 1), key(0, 1)];
        let (du, di, dense) = reindex(&keys, &users, &items);
        assert_eq!(du.ids, vec!["4", "30"]);
        assert_eq!(di.ids, vec!["b", "x"]);
        assert_eq!(du.code_to_dense, vec![1, 0, u32::MAX]);
        // (30,x) → (1,1); (4,b) → (0,0); (30,b) → (1,0)
        assert_eq!(dense, vec![key(0, 0), key(1, 0), key(1, 1)]);
    }

    #[test]
    fn density_is_safe_on_empty() {
        assert_eq!(Counts::new(0, 0, 0).density, 0.0);
        assert!((Counts::new(2, 5, 5).density - 0.5).abs() < 1e-12);
    }
}
