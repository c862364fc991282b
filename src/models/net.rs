//! Every model the commands can train, evaluate and serve, as one type: the training loop, checkpoints
//! and the inference commands hold a `Net` and never name a model.

use std::sync::Arc;

use super::bpr::{Bpr, BprBatch};
use super::cobrar::TwoTower;
use super::lightgcn::LightGcn;
use super::mostpop::MostPop;
use super::multvae::{MultVae, VaeBatch};
use super::{Mode, Model, ModelKind, ParamLayout, Side, Weights};
use crate::batch::HostBatch;
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufferSpec, MemoryLayout};
use crate::gpu::plan::PlanBuilder;
use crate::sampler::Pair;

/// One of the models.
pub enum Net<'d> {
    /// CoBraR or DeepMF.
    TwoTower(TwoTower<'d>),
    Bpr(Bpr<'d>),
    LightGcn(LightGcn<'d>),
    MultVae(MultVae<'d>),
    MostPop(MostPop<'d>),
}

/// The batch of whichever model built it.
pub enum NetBatch {
    TwoTower(HostBatch),
    /// BPR-MF's and LightGCN's triples.
    Bpr(BprBatch),
    /// MultVAE's users.
    Vae(VaeBatch),
    None,
}

/// `$body` with `$m` bound to the model inside `$net`.
macro_rules! each {
    ($net:expr, $m:ident => $body:expr) => {
        match $net {
            Net::TwoTower($m) => $body,
            Net::Bpr($m) => $body,
            Net::LightGcn($m) => $body,
            Net::MultVae($m) => $body,
            Net::MostPop($m) => $body,
        }
    };
}

impl<'d> Net<'d> {
    /// The two-tower model, for what only CoBraR and DeepMF have (the GPU-built gradient index).
    pub fn two_tower(&self) -> Option<&TwoTower<'d>> {
        match self {
            Net::TwoTower(m) => Some(m),
            _ => None,
        }
    }
}

fn mismatch(model: &str) -> ! {
    panic!("a batch built by another model was given to {model}")
}

impl Model for Net<'_> {
    type Batch = NetBatch;

    fn label(&self) -> String {
        each!(self, m => m.label())
    }
    fn kind(&self) -> ModelKind {
        each!(self, m => m.kind())
    }
    fn params(&self) -> &Arc<ParamLayout> {
        each!(self, m => m.params())
    }
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        each!(self, m => m.buffers(mode))
    }
    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        each!(self, m => m.check_layout(layout))
    }
    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        each!(self, m => m.resident())
    }
    fn n_users(&self) -> usize {
        each!(self, m => m.n_users())
    }
    fn n_items(&self) -> usize {
        each!(self, m => m.n_items())
    }
    fn dim(&self) -> usize {
        each!(self, m => m.dim())
    }
    fn scorer(&self) -> Scorer {
        each!(self, m => m.scorer())
    }
    fn trains(&self) -> bool {
        each!(self, m => m.trains())
    }
    fn fitted(&self) -> Option<Weights<f32>> {
        each!(self, m => m.fitted())
    }

    fn build_batch(&self, pairs: &[Pair]) -> NetBatch {
        match self {
            Net::TwoTower(m) => NetBatch::TwoTower(m.build_batch(pairs)),
            Net::Bpr(m) => NetBatch::Bpr(m.build_batch(pairs)),
            Net::LightGcn(m) => NetBatch::Bpr(m.build_batch(pairs)),
            Net::MultVae(m) => NetBatch::Vae(m.build_batch(pairs)),
            Net::MostPop(_) => NetBatch::None,
        }
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        match (self, batch) {
            (Net::TwoTower(m), NetBatch::TwoTower(b)) => m.train_step(pb, b, t),
            (Net::Bpr(m), NetBatch::Bpr(b)) => m.train_step(pb, b, t),
            (Net::LightGcn(m), NetBatch::Bpr(b)) => m.train_step(pb, b, t),
            (Net::MultVae(m), NetBatch::Vae(b)) => m.train_step(pb, b, t),
            (Net::MostPop(m), NetBatch::None) => m.train_step(pb, &(), t),
            _ => mismatch(&self.label()),
        }
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        match (self, batch) {
            (Net::TwoTower(m), NetBatch::TwoTower(b)) => m.grad_step(pb, b, t),
            (Net::Bpr(m), NetBatch::Bpr(b)) => m.grad_step(pb, b, t),
            (Net::LightGcn(m), NetBatch::Bpr(b)) => m.grad_step(pb, b, t),
            (Net::MultVae(m), NetBatch::Vae(b)) => m.grad_step(pb, b, t),
            (Net::MostPop(m), NetBatch::None) => m.grad_step(pb, &(), t),
            _ => mismatch(&self.label()),
        }
    }

    fn embed_rows(&self, mode: Mode) -> usize {
        each!(self, m => m.embed_rows(mode))
    }

    fn embed_block<'a>(
        &'a self,
        pb: &mut PlanBuilder<'_, 'a>,
        side: Side,
        ids: &'a [u32],
        first: usize,
    ) {
        each!(self, m => m.embed_block(pb, side, ids, first))
    }
}
