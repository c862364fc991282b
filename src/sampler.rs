//! Training samplers, seeded per epoch so a run is reproducible whatever the thread timing.
//!
//! - `alg1` (the paper's Algorithm 1, default): an epoch visits every training positive (u, i) once in a
//!   fresh shuffle; each positive brings `n_neg` negatives drawn uniformly among the items u has no
//!   training interaction with; a batch is `batch_size` positives with their negatives.
//! - `authors` (the released code's sampler): each sample picks a user uniformly, then with probability
//!   1/(n_neg+1) one of its positives, else a uniform non-interacted item; a batch is `batch_size`
//!   samples and an epoch (1+n_neg)·|train| samples.
//! - `bpr` (BPR-MF and LightGCN, SPEC §7): each sample is a triple — a uniform user with training
//!   positives, one of its positives, one uniform non-interacted item — emitted as the two pairs
//!   (u, i, 1) and (u, j, 0), in that order; a batch is `batch_size` triples and an epoch |train|
//!   triples. `n_neg` does not apply.
//! - `users` (MultVAE, SPEC §7): an epoch visits every user with training interactions once, in a
//!   fresh shuffle; a batch is `batch_size` users, each emitted as (u, 0, 0) (the model reads the
//!   user's whole training row). `n_neg` does not apply.

use crate::data::{ColdSet, FeatureSide};
use anyhow::bail;
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::data::Csr;
use crate::util::{SeededRng, seeded_rng};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// The paper's Algorithm 1: every positive once per epoch, n_neg negatives each.
    Alg1,
    /// The authors' released code: uniform user, then a positive with probability 1/(n_neg+1).
    #[value(alias = "elliot")]
    Authors,
    /// Pairwise triples (u, i, j) for the BPR loss: uniform user, one positive, one negative.
    Bpr,
    /// Whole users (MultVAE): every user with training interactions once per epoch, shuffled.
    Users,
}

impl SamplerKind {
    /// Whether batches are (positive, negative) pair couples for a pairwise loss.
    pub fn pairwise(self) -> bool {
        self == SamplerKind::Bpr
    }
}

/// A scored pair: (user, item, label).
pub type Pair = (u32, u32, f32);

const SAMPLER_STREAM: u64 = 2;

pub struct Sampler<'a> {
    kind: SamplerKind,
    train: &'a Csr,
    n_items: u32,
    batch_size: usize,
    n_neg: usize,
    seed: u64,
    /// A cold-start split's held-out entities: never drawn (they do not exist at training time).
    cold: Option<&'a ColdSet>,
}

impl<'a> Sampler<'a> {
    /// Fails when a user has interacted with every item (no negative exists for them).
    pub fn new(
        kind: SamplerKind,
        train: &'a Csr,
        n_items: usize,
        batch_size: usize,
        n_neg: usize,
        seed: u64,
    ) -> anyhow::Result<Sampler<'a>> {
        if batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if train.nnz() == 0 {
            bail!("the training split is empty");
        }
        if (n_neg > 0 || kind.pairwise())
            && kind != SamplerKind::Users
            && let Some(u) = (0..train.n_rows()).find(|&u| train.row_len(u) >= n_items)
        {
            bail!("user {u} has interacted with every item: no negative can be sampled for it");
        }
        Ok(Sampler {
            kind,
            train,
            n_items: n_items as u32,
            batch_size,
            n_neg,
            seed,
            cold: None,
        })
    }

    /// Never draws the entities of `cold` (a cold-start split's held-out items as negatives, or its
    /// held-out users): they do not exist at training time. Without a cold set nothing changes.
    pub fn without(mut self, cold: Option<&'a ColdSet>) -> anyhow::Result<Sampler<'a>> {
        if let Some(c) = cold
            && c.side == FeatureSide::Items
            && (self.n_neg > 0 || self.kind.pairwise())
            && self.kind != SamplerKind::Users
            && let Some(u) = (0..self.train.n_rows())
                .find(|&u| self.train.row_len(u) + c.len() >= self.n_items as usize)
        {
            bail!(
                "user {u} has interacted with every item that is not held out: no negative can be \
                 sampled for it"
            );
        }
        self.cold = cold;
        Ok(self)
    }

    fn is_cold(&self, side: FeatureSide, e: u32) -> bool {
        matches!(self.cold, Some(c) if c.side == side && c.contains(e))
    }

    /// Pairs one step scores at most.
    pub fn max_pairs(&self) -> usize {
        match self.kind {
            SamplerKind::Alg1 => self.batch_size * (1 + self.n_neg),
            SamplerKind::Authors => self.batch_size,
            SamplerKind::Bpr => 2 * self.batch_size,
            SamplerKind::Users => self.batch_size,
        }
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        match self.kind {
            SamplerKind::Alg1 => self.train.nnz().div_ceil(self.batch_size),
            SamplerKind::Authors => ((1 + self.n_neg) * self.train.nnz()).div_ceil(self.batch_size),
            SamplerKind::Bpr => self.train.nnz().div_ceil(self.batch_size),
            SamplerKind::Users => self.active_users().count().div_ceil(self.batch_size),
        }
    }

    /// Users with training interactions.
    fn active_users(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.train.n_rows() as u32).filter(|&u| self.train.row_len(u as usize) > 0)
    }

    /// The batches of epoch `epoch` (1-based), each a list of scored pairs.
    pub fn epoch(&self, epoch: u64) -> EpochBatches<'_, 'a> {
        let mut rng = seeded_rng(self.seed, SAMPLER_STREAM.wrapping_add(epoch << 8));
        let order = match self.kind {
            SamplerKind::Alg1 => {
                let mut all: Vec<(u32, u32)> = self.train.iter().collect();
                all.shuffle(&mut rng);
                all
            }
            SamplerKind::Users => {
                let mut users: Vec<(u32, u32)> = self.active_users().map(|u| (u, 0)).collect();
                users.shuffle(&mut rng);
                users
            }
            SamplerKind::Authors | SamplerKind::Bpr => Vec::new(),
        };
        let total = match self.kind {
            SamplerKind::Alg1 | SamplerKind::Users => order.len(),
            SamplerKind::Authors => (1 + self.n_neg) * self.train.nnz(),
            SamplerKind::Bpr => self.train.nnz(),
        };
        // Users a triple can start from (a user without training positives has no pair to rank).
        let users = match self.kind {
            SamplerKind::Bpr => self.active_users().collect(),
            _ => Vec::new(),
        };
        EpochBatches {
            sampler: self,
            rng,
            order,
            users,
            next: 0,
            total,
        }
    }

    /// A uniform item `u` has no training interaction with (rejection sampling).
    fn negative(&self, rng: &mut SeededRng, u: u32) -> u32 {
        loop {
            let i = rng.random_range(0..self.n_items);
            if !self.train.contains(u as usize, i) && !self.is_cold(FeatureSide::Items, i) {
                return i;
            }
        }
    }
}

pub struct EpochBatches<'s, 'a> {
    sampler: &'s Sampler<'a>,
    rng: SeededRng,
    order: Vec<(u32, u32)>,
    users: Vec<u32>,
    next: usize,
    total: usize,
}

impl Iterator for EpochBatches<'_, '_> {
    type Item = Vec<Pair>;

    fn next(&mut self) -> Option<Vec<Pair>> {
        if self.next >= self.total {
            return None;
        }
        let s = self.sampler;
        let end = (self.next + s.batch_size).min(self.total);
        let mut pairs = Vec::with_capacity(s.max_pairs());
        match s.kind {
            SamplerKind::Alg1 => {
                let positives = &self.order[self.next..end];
                pairs.extend(positives.iter().map(|&(u, i)| (u, i, 1.0)));
                for &(u, _) in positives {
                    for _ in 0..s.n_neg {
                        let i = s.negative(&mut self.rng, u);
                        pairs.push((u, i, 0.0));
                    }
                }
            }
            SamplerKind::Authors => {
                let n_users = s.train.n_rows() as u32;
                let p_pos = 1.0 / (s.n_neg as f64 + 1.0);
                for _ in self.next..end {
                    let mut u = self.rng.random_range(0..n_users);
                    while s.is_cold(FeatureSide::Users, u) {
                        u = self.rng.random_range(0..n_users);
                    }
                    let row = s.train.row(u as usize);
                    if row.is_empty() || !self.rng.random_bool(p_pos) {
                        let i = s.negative(&mut self.rng, u);
                        pairs.push((u, i, 0.0));
                    } else {
                        let i = row[self.rng.random_range(0..row.len())];
                        pairs.push((u, i, 1.0));
                    }
                }
            }
            SamplerKind::Users => {
                pairs.extend(self.order[self.next..end].iter().map(|&(u, _)| (u, 0, 0.0)));
            }
            SamplerKind::Bpr => {
                for _ in self.next..end {
                    let u = self.users[self.rng.random_range(0..self.users.len())];
                    let row = s.train.row(u as usize);
                    let i = row[self.rng.random_range(0..row.len())];
                    let j = s.negative(&mut self.rng, u);
                    pairs.extend([(u, i, 1.0), (u, j, 0.0)]);
                }
            }
        }
        self.next = end;
        Some(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Csr {
        Csr::from_rows(&[
            vec![0u32, 3, 4],
            vec![1],
            vec![2, 3],
            vec![0, 1, 2, 3, 4, 5, 6, 7],
        ])
    }

    #[test]
    fn alg1_visits_every_positive_once_and_negatives_are_never_positives() {
        let train = Csr::from_rows(&[vec![0u32, 3, 4], vec![1], vec![2, 3], vec![0, 5, 6]]);
        let s = Sampler::new(SamplerKind::Alg1, &train, 9, 4, 5, 7).unwrap();
        assert_eq!(s.steps_per_epoch(), 3);
        for epoch in 1..=3 {
            let mut positives = Vec::new();
            let mut steps = 0;
            for batch in s.epoch(epoch) {
                steps += 1;
                let n_pos = batch.iter().filter(|p| p.2 == 1.0).count();
                assert_eq!(batch.len(), n_pos * 6);
                for &(u, i, y) in &batch {
                    if y == 1.0 {
                        positives.push((u, i));
                    } else {
                        assert!(
                            !train.contains(u as usize, i),
                            "negative ({u}, {i}) is a positive"
                        );
                    }
                }
            }
            assert_eq!(steps, 3);
            positives.sort_unstable();
            let mut all: Vec<(u32, u32)> = train.iter().collect();
            all.sort_unstable();
            assert_eq!(
                positives, all,
                "epoch {epoch} must visit each positive exactly once"
            );
        }
        let a: Vec<_> = s.epoch(1).collect();
        assert_eq!(a, s.epoch(1).collect::<Vec<_>>(), "same seed, same epoch");
        assert_ne!(
            a,
            s.epoch(2).collect::<Vec<_>>(),
            "a fresh shuffle each epoch"
        );
    }

    #[test]
    fn authors_sampler_has_the_right_size_and_mix() {
        let train = Csr::from_rows(&[vec![0u32, 3, 4], vec![1], vec![2, 3], vec![0, 5, 6]]);
        let s = Sampler::new(SamplerKind::Authors, &train, 50, 16, 5, 3).unwrap();
        let batches: Vec<_> = (1..=20).flat_map(|e| s.epoch(e)).collect();
        let per_epoch: usize = s.epoch(1).map(|b| b.len()).sum();
        assert_eq!(per_epoch, 6 * train.nnz());
        let all: Vec<Pair> = batches.into_iter().flatten().collect();
        let pos = all.iter().filter(|p| p.2 == 1.0).count() as f64 / all.len() as f64;
        assert!((pos - 1.0 / 6.0).abs() < 0.03, "positive share {pos}");
        for &(u, i, y) in &all {
            assert_eq!(y == 1.0, train.contains(u as usize, i));
        }
    }

    #[test]
    fn users_sampler_visits_every_active_user_once_per_epoch() {
        let train = Csr::from_rows(&[vec![0u32, 2], vec![], vec![1], vec![0, 1, 2], vec![2]]);
        let s = Sampler::new(SamplerKind::Users, &train, 3, 2, 0, 4).unwrap();
        assert_eq!(s.steps_per_epoch(), 2);
        assert_eq!(s.max_pairs(), 2);
        let mut orders = Vec::new();
        for epoch in 1..=6 {
            let batches: Vec<Vec<Pair>> = s.epoch(epoch).collect();
            assert_eq!(batches.len(), 2);
            assert!(batches.iter().all(|b| b.len() <= 2));
            let mut users: Vec<u32> = batches.iter().flatten().map(|p| p.0).collect();
            orders.push(users.clone());
            users.sort();
            assert_eq!(users, vec![0, 2, 3, 4], "user 1 has no training row");
        }
        orders.dedup();
        assert!(orders.len() > 1, "each epoch is a fresh shuffle");
    }

    #[test]
    fn bpr_sampler_emits_positive_negative_couples() {
        let train = Csr::from_rows(&[vec![0u32, 3, 4], vec![], vec![2, 3], vec![0, 5, 6]]);
        let s = Sampler::new(SamplerKind::Bpr, &train, 9, 4, 0, 5).unwrap();
        assert_eq!(s.steps_per_epoch(), 2); // 8 positives, 4 triples a batch
        assert_eq!(s.max_pairs(), 8);
        let batches: Vec<_> = s.epoch(1).collect();
        assert_eq!(batches.len(), 2);
        let triples: usize = batches.iter().map(|b| b.len() / 2).sum();
        assert_eq!(triples, train.nnz(), "an epoch is |train| triples");
        let mut seen_users = std::collections::BTreeSet::new();
        for b in (1..=30).flat_map(|e| s.epoch(e)) {
            assert!(b.len().is_multiple_of(2));
            for c in b.chunks(2) {
                let ((u, i, y1), (u2, j, y0)) = (c[0], c[1]);
                assert_eq!((u, y1, y0), (u2, 1.0, 0.0));
                assert!(
                    train.contains(u as usize, i),
                    "({u}, {i}) is not a positive"
                );
                assert!(!train.contains(u as usize, j), "({u}, {j}) is a positive");
                seen_users.insert(u);
            }
        }
        assert_eq!(
            seen_users,
            [0u32, 2, 3].into(),
            "users without positives are skipped"
        );
        assert_eq!(batches, s.epoch(1).collect::<Vec<_>>(), "seeded per epoch");
    }

    #[test]
    fn held_out_items_and_users_are_never_drawn() {
        let train = Csr::from_rows(&[vec![0u32, 3], vec![], vec![2, 3], vec![0, 5]]);
        let items = ColdSet::new(FeatureSide::Items, Some(0.3), vec![1, 4, 7], 9);
        let users = ColdSet::new(FeatureSide::Users, Some(0.25), vec![1], 4);
        for kind in [SamplerKind::Alg1, SamplerKind::Authors, SamplerKind::Bpr] {
            let plain = Sampler::new(kind, &train, 9, 4, 3, 5).unwrap();
            let drawn_plain: Vec<u32> = (1..=20)
                .flat_map(|e| plain.epoch(e))
                .flatten()
                .map(|p| p.1)
                .collect();
            assert!(
                drawn_plain.iter().any(|i| items.contains(*i)),
                "{kind:?}: the plain sampler draws them"
            );
            let s = Sampler::new(kind, &train, 9, 4, 3, 5)
                .unwrap()
                .without(Some(&items))
                .unwrap();
            for (u, i, _) in (1..=20).flat_map(|e| s.epoch(e)).flatten() {
                assert!(
                    !items.contains(i),
                    "{kind:?}: held-out item {i} drawn for user {u}"
                );
            }
            let s = Sampler::new(kind, &train, 9, 4, 3, 5)
                .unwrap()
                .without(Some(&users))
                .unwrap();
            for (u, _, _) in (1..=20).flat_map(|e| s.epoch(e)).flatten() {
                assert_ne!(u, 1, "{kind:?}: held-out user drawn");
            }
        }
        // Nothing changes without a cold set.
        let a = Sampler::new(SamplerKind::Authors, &train, 9, 4, 3, 5).unwrap();
        let b = Sampler::new(SamplerKind::Authors, &train, 9, 4, 3, 5)
            .unwrap()
            .without(None)
            .unwrap();
        assert_eq!(
            a.epoch(2).collect::<Vec<_>>(),
            b.epoch(2).collect::<Vec<_>>()
        );
        // A user who has every warm item has no negative.
        let full = Csr::from_rows(&[vec![0u32, 2, 3, 5, 6, 8]]);
        assert!(
            Sampler::new(SamplerKind::Alg1, &full, 9, 4, 3, 5)
                .unwrap()
                .without(Some(&items))
                .is_err()
        );
    }

    #[test]
    fn rejects_users_without_negatives() {
        let train = toy();
        let err = Sampler::new(SamplerKind::Alg1, &train, 8, 4, 5, 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("user 3"));
    }
}
