//! The host side of training: sampled pairs → batch images, off the GPU's critical path.
//!
//! One thread samples (the samplers' streams are sequential: batch k's negatives follow batch k−1's, so
//! sampling stays in one thread and the draws are those of a single-threaded run), a pool of builders
//! turns pair lists into batch images in parallel, and the consumer receives them in their original
//! order. The result is the same whatever the number of builders.
//!
//! [`probe_index`] decides who builds the tables' gradient index — the builders on the host, or the GPU
//! from the resident CSRs — by timing both on this machine (the two give the same bits).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;

use crate::batch::{HostBatch, IndexStrategy};
use crate::sampler::{Pair, Sampler};

/// What the consumer receives, in order.
pub enum Item<B> {
    Batch(B),
    /// Every batch of this epoch has been sent.
    EpochEnd(u64),
}

/// Batch builders for this machine: every core but the one the sampler (and the GPU submission) uses.
pub fn default_builders() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).clamp(1, 8)
}

/// The receiving end: reorders what the builders finish.
pub struct Pipeline<B> {
    rx: Receiver<(u64, Item<B>)>,
    pending: BTreeMap<u64, Item<B>>,
    next: u64,
}

impl<B> Pipeline<B> {
    /// The next item in sampling order.
    pub fn recv(&mut self) -> anyhow::Result<Item<B>> {
        loop {
            if let Some(item) = self.pending.remove(&self.next) {
                self.next += 1;
                return Ok(item);
            }
            let (seq, item) = self
                .rx
                .recv()
                .context("the batch pipeline stopped unexpectedly")?;
            self.pending.insert(seq, item);
        }
    }
}

enum Work {
    Pairs(Vec<Pair>),
    EpochEnd(u64),
}

/// Starts the sampler thread and `builders` builder threads in `scope`: epochs `epochs`, at most
/// `steps_per_epoch` batches each. Dropping the returned [`Pipeline`] stops them.
pub fn spawn<'scope, 'env, B, F>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    sampler: &'env Sampler<'env>,
    epochs: RangeInclusive<u64>,
    steps_per_epoch: usize,
    build: F,
    builders: usize,
) -> Pipeline<B>
where
    B: Send + 'scope,
    F: Fn(&[Pair]) -> B + Send + Sync + 'scope,
{
    let builders = builders.max(1);
    let (work_tx, work_rx) = sync_channel::<(u64, Work)>(2 * builders + 2);
    let (out_tx, out_rx) = sync_channel::<(u64, Item<B>)>(2 * builders + 2);
    scope.spawn(move || {
        let mut seq = 0u64;
        for epoch in epochs {
            for pairs in sampler.epoch(epoch).take(steps_per_epoch) {
                if work_tx.send((seq, Work::Pairs(pairs))).is_err() {
                    return; // the consumer stopped (early stopping or an error)
                }
                seq += 1;
            }
            if work_tx.send((seq, Work::EpochEnd(epoch))).is_err() {
                return;
            }
            seq += 1;
        }
    });
    let work_rx = Arc::new(Mutex::new(work_rx));
    let build = Arc::new(build);
    for _ in 0..builders {
        let (work_rx, out_tx, build): (_, SyncSender<(u64, Item<B>)>, _) =
            (work_rx.clone(), out_tx.clone(), build.clone());
        scope.spawn(move || {
            loop {
                let next = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((seq, work)) = next else { return };
                let item = match work {
                    Work::Pairs(pairs) => Item::Batch(build(&pairs)),
                    Work::EpochEnd(e) => Item::EpochEnd(e),
                };
                if out_tx.send((seq, item)).is_err() {
                    return;
                }
            }
        });
    }
    Pipeline {
        rx: out_rx,
        pending: BTreeMap::new(),
        next: 0,
    }
}

/// Steps per second the host pipeline alone sustains (no GPU work): `steps` batches from epoch 1 on.
pub fn host_ceiling<B: Send, F>(
    sampler: &Sampler<'_>,
    steps: usize,
    build: F,
    builders: usize,
) -> anyhow::Result<f64>
where
    F: Fn(&[Pair]) -> B + Send + Sync,
{
    let per_epoch = sampler.steps_per_epoch();
    let epochs = steps.div_ceil(per_epoch.max(1)) as u64;
    std::thread::scope(|scope| {
        let mut p = spawn(
            scope,
            sampler,
            1..=epochs.max(1),
            per_epoch,
            build,
            builders,
        );
        let started = Instant::now();
        let mut n = 0;
        while n < steps {
            if let Item::Batch(b) = p.recv()? {
                std::hint::black_box(&b);
                n += 1;
            }
        }
        Ok(n as f64 / started.elapsed().as_secs_f64().max(1e-9))
    })
}

/// What the start-up measurement found, recorded in `metrics.json` and the bench report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexProbe {
    /// The strategy in use.
    pub strategy: IndexStrategy,
    /// How it was chosen: `measured`, or `requested` (`--batch-index host|gpu`).
    pub chosen_by: String,
    /// Host milliseconds per batch image, with and without the index.
    pub host_ms_with_index: f64,
    pub host_ms_without_index: f64,
    /// GPU milliseconds per step to build the index (0 when not measured).
    pub gpu_index_ms: f64,
    /// Parallel batch builders.
    pub builders: usize,
}

impl IndexProbe {
    /// The strategy that costs less time per step: the GPU's extra work against the host time it saves
    /// (spread over the builders).
    pub fn decide(
        host_with: f64,
        host_without: f64,
        gpu_index: f64,
        builders: usize,
    ) -> IndexStrategy {
        let saved = (host_with - host_without) / builders.max(1) as f64;
        if gpu_index < saved {
            IndexStrategy::Gpu
        } else {
            IndexStrategy::Host
        }
    }
}

/// Host milliseconds per batch image built from `pairs` with `index`.
pub fn time_builds(
    pairs: &[Vec<Pair>],
    by_user: &crate::data::Csr,
    by_item: &crate::data::Csr,
    index: IndexStrategy,
) -> f64 {
    let started = Instant::now();
    for p in pairs {
        std::hint::black_box(HostBatch::build(p, by_user, by_item, index));
    }
    started.elapsed().as_secs_f64() * 1e3 / pairs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Csr;
    use crate::sampler::SamplerKind;

    fn collect(sampler: &Sampler<'_>, builders: usize) -> Vec<String> {
        std::thread::scope(|scope| {
            let build = |p: &[Pair]| format!("{p:?}");
            let mut rx = spawn(scope, sampler, 1..=3, 4, build, builders);
            let mut out = Vec::new();
            for _ in 0..3 * 5 {
                out.push(match rx.recv().unwrap() {
                    Item::Batch(b) => b,
                    Item::EpochEnd(e) => format!("end {e}"),
                });
            }
            out
        })
    }

    #[test]
    fn batches_arrive_in_sampling_order_whatever_the_builders() {
        let rows: Vec<Vec<u32>> = (0..30u32)
            .map(|u| {
                let mut r = vec![u % 20, (u + 7) % 20];
                r.sort_unstable();
                r
            })
            .collect();
        let train = Csr::from_rows(&rows);
        let s = Sampler::new(SamplerKind::Alg1, &train, 20, 6, 3, 9).unwrap();
        let one = collect(&s, 1);
        assert_eq!(one[4], "end 1");
        assert_eq!(one[14], "end 3");
        // The same as sampling and building in one thread.
        let serial: Vec<String> = s.epoch(2).take(4).map(|p| format!("{p:?}")).collect();
        assert_eq!(&one[5..9], &serial[..]);
        for builders in [2, 3, 5] {
            assert_eq!(collect(&s, builders), one, "{builders} builders");
        }
    }

    #[test]
    fn the_cheaper_strategy_per_step_is_chosen() {
        // GPU-bound software adapter: the index costs the GPU 5 ms, saves the host 0.8 ms.
        assert_eq!(IndexProbe::decide(1.8, 0.2, 5.0, 2), IndexStrategy::Host);
        // A fast GPU: 0.05 ms against 1.6 ms of host time.
        assert_eq!(IndexProbe::decide(1.8, 0.2, 0.05, 1), IndexStrategy::Gpu);
    }
}
