//! What one CoBraR/DeepMF training step uploads, packed into one u32 image and uploaded with one write:
//! - the batch's unique users and items (ascending ids; their rows of the stacked embeddings);
//! - each scored pair as (local user row, local item index, label), and the pairs of every embedding
//!   row (the score kernel's gather order);
//! - the transposed index of the batch for the two projection tables' gradients: for every item j, the
//!   batch users that interacted with j (rows of W_U's gradient), and for every user u, the batch items
//!   u interacted with (rows of W_T's gradient), each list ascending — so the table step gathers
//!   exactly its contributions in a fixed order, with no atomics and no scan of the whole training data.

use crate::data::Csr;

/// Who builds the tables' gradient index of a batch. Both give the same lists, hence the same bits.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum IndexStrategy {
    /// The batch builder (host): a bigger image, no extra GPU work.
    #[default]
    Host,
    /// The GPU, from the resident CSRs: a small image, five more dispatches per step.
    Gpu,
}

/// Marks an id that is not in the batch in the id → batch-row maps.
const NOT_IN_BATCH: u32 = u32::MAX;

/// Where the pair data lives in the image (u32 offsets).
#[derive(Debug, Clone, Copy, Default)]
pub struct PairRegions {
    /// Local user row of each pair.
    pub pair_user: usize,
    /// Local item index of each pair (its embedding row is `n_users + index`).
    pub pair_item: usize,
    /// Label of each pair, as f32 bits.
    pub pair_label: usize,
    /// `rows + 1` offsets into `row_pairs`: the pairs of every embedding row (users, then items).
    pub row_ptr: usize,
    pub row_pairs: usize,
}

/// The pairs that touch each embedding row (user rows, then item rows), as a CSR over pair indices in
/// ascending order: the score kernel's gather order.
pub fn pair_rows(
    n_users: usize,
    n_items: usize,
    user: &[u32],
    item: &[u32],
) -> (Vec<u32>, Vec<u32>) {
    let n_rows = n_users + n_items;
    let mut ptr = vec![0u32; n_rows + 1];
    for q in 0..user.len() {
        ptr[user[q] as usize + 1] += 1;
        ptr[n_users + item[q] as usize + 1] += 1;
    }
    for r in 0..n_rows {
        ptr[r + 1] += ptr[r];
    }
    let mut fill = ptr.clone();
    let mut idx = vec![0u32; 2 * user.len()];
    for q in 0..user.len() {
        for row in [user[q] as usize, n_users + item[q] as usize] {
            idx[fill[row] as usize] = q as u32;
            fill[row] += 1;
        }
    }
    (ptr, idx)
}

/// Offsets (u32 units) of every region of a batch image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Regions {
    pub user_ids: usize,
    pub item_ids: usize,
    pub pairs: PairRegions,
    /// W_U gradient index: one offset per W_U row (an item, for CoBraR) and one more, then local user
    /// rows.
    pub user_table_ptr: usize,
    pub user_table_rows: usize,
    /// W_T gradient index: W_T's rows + 1 offsets, then local item indices.
    pub item_table_ptr: usize,
    pub item_table_rows: usize,
    pub len: usize,
}

/// One step's batch, built on the host (in the sampler thread) and uploaded as `image`.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Unique users of the batch, ascending (global ids).
    pub user_ids: Vec<u32>,
    /// Unique items of the batch, ascending (global ids).
    pub item_ids: Vec<u32>,
    /// Per pair: local user row, local item index, label.
    pub pair_user: Vec<u32>,
    pub pair_item: Vec<u32>,
    pub label: Vec<f32>,
    pub regions: Regions,
    pub image: Vec<u32>,
    /// Positives in the batch (for progress statistics).
    pub positives: usize,
}

/// Sorted unique values of `ids` and each id's rank among them (`local[id]`, `NOT_IN_BATCH` elsewhere).
fn unique_sorted(ids: impl Iterator<Item = u32>, n: usize) -> (Vec<u32>, Vec<u32>) {
    let mut local = vec![NOT_IN_BATCH; n];
    let mut unique = Vec::new();
    for id in ids {
        if local[id as usize] == NOT_IN_BATCH {
            local[id as usize] = 0;
            unique.push(id);
        }
    }
    unique.sort_unstable();
    for (k, &id) in unique.iter().enumerate() {
        local[id as usize] = k as u32;
    }
    (unique, local)
}

/// For every table row t (`n_rows` of them), the batch rows k whose entity `ids[k]` has t in its
/// training row — the transpose of the batch's slice of `csr`, rows ascending within each list.
fn transposed(ids: &[u32], csr: &Csr, n_rows: usize, ptr: &mut Vec<u32>, rows: &mut Vec<u32>) {
    let start = ptr.len();
    ptr.resize(start + n_rows + 1, 0);
    let counts = &mut ptr[start..];
    for &id in ids {
        for &t in csr.row(id as usize) {
            counts[t as usize + 1] += 1;
        }
    }
    for t in 0..n_rows {
        counts[t + 1] += counts[t];
    }
    let base = rows.len();
    rows.resize(base + counts[n_rows] as usize, 0);
    let mut fill: Vec<u32> = counts[..n_rows].to_vec();
    for (k, &id) in ids.iter().enumerate() {
        for &t in csr.row(id as usize) {
            rows[base + fill[t as usize] as usize] = k as u32;
            fill[t as usize] += 1;
        }
    }
}

impl HostBatch {
    /// Builds the batch for `pairs` = (user, item, label); `by_user` / `by_item` are the training
    /// interactions (N rows of items / M rows of users). With [`IndexStrategy::Gpu`] the tables'
    /// gradient index is left to the GPU.
    pub fn build(
        pairs: &[(u32, u32, f32)],
        by_user: &Csr,
        by_item: &Csr,
        index: IndexStrategy,
    ) -> HostBatch {
        let tables = (by_item.n_rows(), by_user.n_rows());
        Self::build_over(pairs, by_user, by_item, tables, index)
    }

    /// The batch over any sparse projection inputs: `users` / `items` give each (input row) id's
    /// entries, which are rows of the tables of `table_rows` = (W_U's rows, W_T's rows).
    pub fn build_over(
        pairs: &[(u32, u32, f32)],
        users: &Csr,
        items: &Csr,
        table_rows: (usize, usize),
        index: IndexStrategy,
    ) -> HostBatch {
        let (u_table, i_table) = table_rows;
        let (user_ids, user_local) = unique_sorted(pairs.iter().map(|p| p.0), users.n_rows());
        let (item_ids, item_local) = unique_sorted(pairs.iter().map(|p| p.1), items.n_rows());
        let pair_user: Vec<u32> = pairs
            .iter()
            .map(|&(u, _, _)| user_local[u as usize])
            .collect();
        let pair_item: Vec<u32> = pairs
            .iter()
            .map(|&(_, i, _)| item_local[i as usize])
            .collect();
        let label: Vec<f32> = pairs.iter().map(|p| p.2).collect();
        let positives = label.iter().filter(|&&l| l > 0.0).count();
        let (row_ptr, row_pairs) =
            pair_rows(user_ids.len(), item_ids.len(), &pair_user, &pair_item);

        let np = pairs.len();
        let mut r = Regions {
            user_ids: 0,
            item_ids: user_ids.len(),
            ..Regions::default()
        };
        let pair_user_off = r.item_ids + item_ids.len();
        r.pairs = PairRegions {
            pair_user: pair_user_off,
            pair_item: pair_user_off + np,
            pair_label: pair_user_off + 2 * np,
            row_ptr: pair_user_off + 3 * np,
            row_pairs: pair_user_off + 3 * np + row_ptr.len(),
        };
        let mut image: Vec<u32> =
            Vec::with_capacity(r.pairs.row_pairs + row_pairs.len() + u_table + i_table + 2);
        image.extend(&user_ids);
        image.extend(&item_ids);
        image.extend(&pair_user);
        image.extend(&pair_item);
        image.extend(label.iter().map(|l| l.to_bits()));
        image.extend(&row_ptr);
        image.extend(&row_pairs);
        if index == IndexStrategy::Host {
            // The transposed indices: offsets of both tables first, then both row lists.
            let mut ptrs = Vec::with_capacity(u_table + i_table + 2);
            let mut rows = Vec::new();
            transposed(&user_ids, users, u_table, &mut ptrs, &mut rows);
            let user_rows_len = rows.len();
            transposed(&item_ids, items, i_table, &mut ptrs, &mut rows);
            r.user_table_ptr = image.len();
            r.item_table_ptr = r.user_table_ptr + u_table + 1;
            r.user_table_rows = r.item_table_ptr + i_table + 1;
            r.item_table_rows = r.user_table_rows + user_rows_len;
            image.extend(&ptrs);
            image.extend(&rows);
        }
        r.len = image.len();
        HostBatch {
            user_ids,
            item_ids,
            pair_user,
            pair_item,
            label,
            regions: r,
            image,
            positives,
        }
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Embedding rows of the step: unique users, then unique items.
    pub fn n_rows(&self) -> usize {
        self.user_ids.len() + self.item_ids.len()
    }

    pub fn n_pairs(&self) -> usize {
        self.label.len()
    }

    /// W_U's gradient index: (offsets over the items, local user rows).
    pub fn user_table_index(&self) -> (&[u32], &[u32]) {
        let r = &self.regions;
        (
            &self.image[r.user_table_ptr..r.item_table_ptr],
            &self.image[r.user_table_rows..r.item_table_rows],
        )
    }

    /// W_T's gradient index: (offsets over the users, local item indices).
    pub fn item_table_index(&self) -> (&[u32], &[u32]) {
        let r = &self.regions;
        (
            &self.image[r.item_table_ptr..r.user_table_rows],
            &self.image[r.item_table_rows..r.len],
        )
    }
}

/// Largest number of embedding rows a batch of `pairs` pairs can have.
pub fn max_rows(pairs: usize, n_users: usize, n_items: usize) -> usize {
    pairs.min(n_users) + pairs.min(n_items)
}

/// Largest image length for batches of up to `pairs` pairs over training data with `nnz` interactions.
pub fn max_image_len(
    pairs: usize,
    n_users: usize,
    n_items: usize,
    nnz: usize,
    index: IndexStrategy,
) -> usize {
    let entities = (n_users, n_items);
    max_image_len_over(pairs, entities, (n_items, n_users), (nnz, nnz), index)
}

/// Largest image length over any projection inputs ([`HostBatch::build_over`]): `entities` = (users,
/// items), `table_rows` = (W_U's, W_T's), `nnz` = the most input entries of the users' (items') own
/// rows together.
pub fn max_image_len_over(
    pairs: usize,
    entities: (usize, usize),
    table_rows: (usize, usize),
    nnz: (usize, usize),
    index: IndexStrategy,
) -> usize {
    let rows = max_rows(pairs, entities.0, entities.1);
    let ids_and_pairs = rows + 3 * pairs + rows + 1 + 2 * pairs;
    match index {
        IndexStrategy::Host => ids_and_pairs + table_rows.0 + table_rows.1 + 2 + nnz.0 + nnz.1,
        IndexStrategy::Gpu => ids_and_pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_sorted_unique_rows_and_transposed_indices() {
        // 6 users × 4 items.
        let by_user = Csr::from_rows(&[
            vec![0u32],
            vec![2, 3],
            vec![1],
            vec![0],
            vec![3],
            vec![0, 2],
        ]);
        let by_item = by_user.transpose(4);
        let pairs = [(5, 2, 1.0), (1, 2, 0.0), (5, 1, 0.0), (1, 3, 1.0)];
        let b = HostBatch::build(&pairs, &by_user, &by_item, IndexStrategy::Host);
        assert_eq!(b.user_ids, vec![1, 5]);
        assert_eq!(b.item_ids, vec![1, 2, 3]);
        assert_eq!(b.pair_user, vec![1, 0, 1, 0]);
        assert_eq!(b.pair_item, vec![1, 1, 0, 2]);
        assert_eq!(b.positives, 2);
        assert!(b.image.len() <= max_image_len(4, 6, 4, by_user.nnz(), IndexStrategy::Host));
        let g = HostBatch::build(&pairs, &by_user, &by_item, IndexStrategy::Gpu);
        assert_eq!(
            &g.image[..],
            &b.image[..g.image.len()],
            "the same image without the index"
        );
        assert!(g.image.len() <= max_image_len(4, 6, 4, by_user.nnz(), IndexStrategy::Gpu));
        // Row 0 (user 1) is in pairs 1 and 3; item row 2 + 1 (item 2) in pairs 0 and 1.
        let ptr = &b.image[b.regions.pairs.row_ptr..b.regions.pairs.row_pairs];
        let idx = &b.image[b.regions.pairs.row_pairs..];
        assert_eq!(&idx[ptr[0] as usize..ptr[1] as usize], &[1, 3]);
        assert_eq!(&idx[ptr[3] as usize..ptr[4] as usize], &[0, 1]);
        // W_U rows (items): item 0 ← user 5 (local 1); item 2 ← users 1, 5 (0, 1); item 3 ← user 1.
        let (p, rows) = b.user_table_index();
        let list = |t: usize| &rows[p[t] as usize..p[t + 1] as usize];
        assert_eq!(
            (list(0), list(1), list(2), list(3)),
            (&[1u32][..], &[][..], &[0, 1][..], &[0][..])
        );
        // W_T rows (users): user 1 ← items 2, 3 (local 1, 2); user 2 ← item 1 (0); user 5 ← item 2 (1).
        let (p, rows) = b.item_table_index();
        let list = |t: usize| &rows[p[t] as usize..p[t + 1] as usize];
        assert_eq!(
            (list(0), list(1), list(2), list(5)),
            (&[][..], &[1u32, 2][..], &[0][..], &[1][..])
        );
    }
}
