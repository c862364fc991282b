//! What one training step uploads: the batch's unique users and items (sorted), each scored pair as
//! local rows, the pairs of every embedding row (the score kernel's gather order), and the id → batch-row
//! maps the table gradients look neighbours up in — all packed into one u32 image, uploaded with one write.

use crate::kernels::NOT_IN_BATCH;
use crate::kernels::score_loss::{self, BatchRegions, Pairs};

/// Offsets (u32 units) of every region of a batch image. The maps come first, at fixed offsets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Regions {
    /// user id → local user row (N entries, `NOT_IN_BATCH` elsewhere).
    pub user_map: usize,
    /// item id → local item index (M entries).
    pub item_map: usize,
    pub user_ids: usize,
    pub item_ids: usize,
    pub pairs: BatchRegions,
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

impl HostBatch {
    /// Builds the batch for `pairs` = (user, item, label) over a catalogue of `n_users` × `n_items`.
    pub fn build(pairs: &[(u32, u32, f32)], n_users: usize, n_items: usize) -> HostBatch {
        let mut image = vec![NOT_IN_BATCH; n_users + n_items];
        let (user_map, item_map) = (0, n_users);
        let mut user_ids = Vec::new();
        let mut item_ids = Vec::new();
        // Collect unique ids, using the maps themselves as the "seen" marks.
        for &(u, i, _) in pairs {
            let (u, i) = (u as usize, i as usize);
            if image[user_map + u] == NOT_IN_BATCH {
                image[user_map + u] = 0;
                user_ids.push(u as u32);
            }
            if image[item_map + i] == NOT_IN_BATCH {
                image[item_map + i] = 0;
                item_ids.push(i as u32);
            }
        }
        user_ids.sort_unstable();
        item_ids.sort_unstable();
        for (loc, &u) in user_ids.iter().enumerate() {
            image[user_map + u as usize] = loc as u32;
        }
        for (loc, &i) in item_ids.iter().enumerate() {
            image[item_map + i as usize] = loc as u32;
        }
        let pair_user: Vec<u32> = pairs
            .iter()
            .map(|&(u, _, _)| image[user_map + u as usize])
            .collect();
        let pair_item: Vec<u32> = pairs
            .iter()
            .map(|&(_, i, _)| image[item_map + i as usize])
            .collect();
        let label: Vec<f32> = pairs.iter().map(|p| p.2).collect();
        let positives = label.iter().filter(|&&l| l > 0.0).count();
        let view = Pairs {
            user: &pair_user,
            item: &pair_item,
            label: &label,
        };
        let (row_ptr, row_pairs) = score_loss::pair_rows(user_ids.len(), item_ids.len(), view);

        let np = pairs.len();
        let user_ids_off = image.len();
        let item_ids_off = user_ids_off + user_ids.len();
        let pair_user_off = item_ids_off + item_ids.len();
        let regions = Regions {
            user_map,
            item_map,
            user_ids: user_ids_off,
            item_ids: item_ids_off,
            pairs: BatchRegions {
                pair_user: pair_user_off,
                pair_item: pair_user_off + np,
                pair_label: pair_user_off + 2 * np,
                row_ptr: pair_user_off + 3 * np,
                row_pairs: pair_user_off + 3 * np + row_ptr.len(),
            },
            len: pair_user_off + 3 * np + row_ptr.len() + row_pairs.len(),
        };
        image.reserve(regions.len - image.len());
        image.extend(&user_ids);
        image.extend(&item_ids);
        image.extend(&pair_user);
        image.extend(&pair_item);
        image.extend(label.iter().map(|l| l.to_bits()));
        image.extend(&row_ptr);
        image.extend(&row_pairs);
        debug_assert_eq!(image.len(), regions.len);
        HostBatch {
            user_ids,
            item_ids,
            pair_user,
            pair_item,
            label,
            regions,
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

    pub fn pairs(&self) -> Pairs<'_> {
        Pairs {
            user: &self.pair_user,
            item: &self.pair_item,
            label: &self.label,
        }
    }

    /// The id → local row map of users (N entries) and of items (M entries).
    pub fn user_map(&self) -> &[u32] {
        &self.image[self.regions.user_map..self.regions.item_map]
    }

    pub fn item_map(&self) -> &[u32] {
        &self.image[self.regions.item_map..self.regions.user_ids]
    }
}

/// Largest number of embedding rows a batch of `pairs` pairs can have.
pub fn max_rows(pairs: usize, n_users: usize, n_items: usize) -> usize {
    pairs.min(n_users) + pairs.min(n_items)
}

/// Largest image length for batches of up to `pairs` pairs.
pub fn max_image_len(pairs: usize, n_users: usize, n_items: usize) -> usize {
    let rows = max_rows(pairs, n_users, n_items);
    n_users + n_items + rows + 3 * pairs + rows + 1 + 2 * pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_sorted_unique_rows_and_maps() {
        let pairs = [(5, 2, 1.0), (1, 2, 0.0), (5, 0, 0.0), (1, 3, 1.0)];
        let b = HostBatch::build(&pairs, 6, 4);
        assert_eq!(b.user_ids, vec![1, 5]);
        assert_eq!(b.item_ids, vec![0, 2, 3]);
        assert_eq!(b.pair_user, vec![1, 0, 1, 0]);
        assert_eq!(b.pair_item, vec![1, 1, 0, 2]);
        assert_eq!(b.user_map()[5], 1);
        assert_eq!(b.user_map()[0], NOT_IN_BATCH);
        assert_eq!(b.item_map()[3], 2);
        assert_eq!(b.positives, 2);
        assert!(b.image.len() <= max_image_len(4, 6, 4));
        // Row 0 (user 1) is in pairs 1 and 3; item row 2+1 (item 2) in pairs 0 and 1.
        let ptr = &b.image[b.regions.pairs.row_ptr..b.regions.pairs.row_pairs];
        let idx = &b.image[b.regions.pairs.row_pairs..];
        assert_eq!(&idx[ptr[0] as usize..ptr[1] as usize], &[1, 3]);
        assert_eq!(&idx[ptr[3] as usize..ptr[4] as usize], &[0, 1]);
    }
}
