//! MostPop (SPEC §7): every item scored by its training popularity, the floor every model must beat.
//! Nothing is trained: the one parameter tensor, `item_popularity`, holds the training counts, and the
//! ranking scores e_u · e_i with e_u = (1, 0, 0, 0) and e_i = (count_i, 0, 0, 0) — the dot scorer, so
//! ties fall to the lower item index as for every model.

use std::sync::Arc;

use super::Block;
use super::arch::{Architecture, ParamCounts};
use super::net::Net;
use super::params::{Init, ParamLayout, TensorSpec, Weights};
use super::spec::{self, ModelSpec};
use super::{Mode, Model, ModelKind, Side, buffers};
use crate::batch::IndexStrategy;
use crate::config::TrainConfig;
use crate::data::Csr;
use crate::data::Dataset;
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufferSpec, Role};
use crate::gpu::plan::PlanBuilder;
use crate::sampler::Pair;

/// Width of the embeddings the ranking reads (its kernels load vec4).
const DIM: usize = 4;

/// The one tensor: each item's training count.
pub fn param_layout(n_items: usize) -> ParamLayout {
    ParamLayout::new(vec![TensorSpec::dense(
        "item_popularity",
        &[n_items],
        false,
        Init::Zeros,
    )])
}

/// MostPop on a training split.
pub struct MostPop<'d> {
    by_user: &'d Csr,
    /// Training interactions of each item.
    counts: Vec<u32>,
    /// The ranking's embeddings (f32 bits): users (1, 0, 0, 0), items (count, 0, 0, 0).
    user_rows: Vec<u32>,
    item_rows: Vec<u32>,
    params: Arc<ParamLayout>,
}

impl<'d> MostPop<'d> {
    pub fn new(by_user: &'d Csr, by_item: &Csr) -> MostPop<'d> {
        let counts: Vec<u32> = (0..by_item.n_rows())
            .map(|i| by_item.row_len(i) as u32)
            .collect();
        let rows = |vals: &mut dyn Iterator<Item = f32>| -> Vec<u32> {
            vals.flat_map(|v| [v.to_bits(), 0, 0, 0]).collect()
        };
        let user_rows = rows(&mut (0..by_user.n_rows()).map(|_| 1.0));
        let item_rows = rows(&mut counts.iter().map(|&c| c as f32));
        let params = Arc::new(param_layout(counts.len()));
        MostPop {
            by_user,
            counts,
            user_rows,
            item_rows,
            params,
        }
    }
}

impl Model for MostPop<'_> {
    /// Never trained: no batches.
    type Batch = ();

    fn label(&self) -> String {
        "mostpop".into()
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Mostpop
    }

    fn params(&self) -> &Arc<ParamLayout> {
        &self.params
    }

    fn buffers(&self, _mode: Mode) -> Vec<BufferSpec> {
        self.resident()
            .into_iter()
            .map(|(name, data)| BufferSpec::u32(name, data.len(), Role::Resident))
            .collect()
    }

    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        buffers::exclusion(self.by_user)
    }

    fn n_users(&self) -> usize {
        self.by_user.n_rows()
    }

    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn scorer(&self) -> Scorer {
        Scorer::Dot
    }

    fn trains(&self) -> bool {
        false
    }

    fn fitted(&self) -> Option<Weights<f32>> {
        let mut w = Weights::init(&self.params, 0);
        let dense = &mut w.data[0];
        for (o, &c) in dense.iter_mut().zip(&self.counts) {
            *o = c as f32;
        }
        Some(w)
    }

    fn build_batch(&self, _pairs: &[Pair]) {}

    fn train_step<'a>(&self, _pb: &mut PlanBuilder<'_, 'a>, _batch: &'a (), _t: u64) {}

    fn grad_step<'a>(&self, _pb: &mut PlanBuilder<'_, 'a>, _batch: &'a (), _t: u64) {}

    fn embed_rows(&self, _mode: Mode) -> usize {
        self.n_users().max(self.n_items())
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        let Block { side, ids, first } = block;
        let rows = match side {
            Side::Users => &self.user_rows,
            Side::Items => &self.item_rows,
        };
        let dst = pb.id(buffers::embeddings(side));
        let at = first * DIM;
        pb.upload(dst, at, &rows[at..at + ids.len() * DIM]);
    }
}

/// MostPop's descriptor: nothing learned, fitted from the training counts.
pub static SPEC: ModelSpec = ModelSpec {
    title: "MostPop",
    // No architecture: a placeholder width the kernels accept.
    default_arch: &[4],
    check_arch,
    check: spec::no_check,
    check_data: spec::no_data_check,
    flags: &[],
    why_not: "mostpop is fitted from training counts: nothing is learned",
    dropout: None,
    samplers: &[],
    trains: false,
    branches: 0,
    label: |cfg| cfg.model.to_string(),
    counts: |_, _| ParamCounts {
        user_projection: 0,
        item_projection: 0,
        branches: 0,
        branch_weights: 0,
        total: 0,
    },
    describe: spec::plain_counts,
    counts_note: None,
    param_layout: |_, s| param_layout(s.items),
    build,
    index_probe: None,
    bench_archs: &[],
    unseen: spec::Unseen::Popularity,
};

fn check_arch(_: ModelKind, arch: &Architecture) -> anyhow::Result<()> {
    anyhow::ensure!(
        arch.widths == [4],
        "mostpop has no architecture; drop --arch"
    );
    Ok(())
}

fn build<'d>(_: &TrainConfig, ds: &'d Dataset, _: usize, _: IndexStrategy) -> Net<'d> {
    Net::new(MostPop::new(&ds.train, &ds.train_by_item))
}
