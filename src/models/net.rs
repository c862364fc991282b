//! Every model the commands can train, evaluate and serve, as one type: the training loop, checkpoints
//! and the inference commands hold a `Net` and never name a model. A model becomes a `Net` through
//! [`Net::new`]; its batches travel as [`NetBatch`] (type-erased) and come back to it as its own type.

use std::any::Any;
use std::sync::Arc;

use super::Block;
use super::{Mode, Model, ModelKind, ParamLayout, Weights};
use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufferSpec, MemoryLayout};
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::AdamConfig;
use crate::sampler::Pair;

/// The batch of whichever model built it.
pub type NetBatch = Box<dyn Any + Send>;

/// One of the models.
pub struct Net<'d>(Box<dyn ErasedModel + 'd>);

impl<'d> Net<'d> {
    pub fn new<M>(model: M) -> Net<'d>
    where
        M: Model + Send + 'd,
        M::Batch: 'static,
    {
        Net(Box::new(model))
    }
}

/// [`Model`] with its batch type erased, so that one `Net` holds any model.
trait ErasedModel: Send + Sync {
    fn model(&self) -> &dyn ModelInfo;
    fn build_batch(&self, pairs: &[Pair]) -> NetBatch;
    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64);
    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64);
    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>);
}

/// The methods of [`Model`] that do not name its batch.
trait ModelInfo {
    fn label(&self) -> String;
    fn kind(&self) -> ModelKind;
    fn params(&self) -> &Arc<ParamLayout>;
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec>;
    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()>;
    fn resident(&self) -> Vec<(&'static str, &[u32])>;
    fn lazy_adam(&self) -> Option<AdamConfig>;
    fn n_users(&self) -> usize;
    fn n_items(&self) -> usize;
    fn dim(&self) -> usize;
    fn scorer(&self) -> Scorer;
    fn trains(&self) -> bool;
    fn fitted(&self) -> Option<Weights<f32>>;
    fn embed_rows(&self, mode: Mode) -> usize;
}

impl<M: Model> ModelInfo for M {
    fn label(&self) -> String {
        Model::label(self)
    }
    fn kind(&self) -> ModelKind {
        Model::kind(self)
    }
    fn params(&self) -> &Arc<ParamLayout> {
        Model::params(self)
    }
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        Model::buffers(self, mode)
    }
    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        Model::check_layout(self, layout)
    }
    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        Model::resident(self)
    }
    fn lazy_adam(&self) -> Option<AdamConfig> {
        Model::lazy_adam(self)
    }
    fn n_users(&self) -> usize {
        Model::n_users(self)
    }
    fn n_items(&self) -> usize {
        Model::n_items(self)
    }
    fn dim(&self) -> usize {
        Model::dim(self)
    }
    fn scorer(&self) -> Scorer {
        Model::scorer(self)
    }
    fn trains(&self) -> bool {
        Model::trains(self)
    }
    fn fitted(&self) -> Option<Weights<f32>> {
        Model::fitted(self)
    }
    fn embed_rows(&self, mode: Mode) -> usize {
        Model::embed_rows(self, mode)
    }
}

impl<M> ErasedModel for M
where
    M: Model + Send,
    M::Batch: 'static,
{
    fn model(&self) -> &dyn ModelInfo {
        self
    }
    fn build_batch(&self, pairs: &[Pair]) -> NetBatch {
        Box::new(Model::build_batch(self, pairs))
    }
    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        Model::train_step(self, pb, own_batch::<M>(self, batch), t)
    }
    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        Model::grad_step(self, pb, own_batch::<M>(self, batch), t)
    }
    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        Model::embed_block(self, pb, block)
    }
}

/// `batch` as `M`'s own batch type; one built by another model is a bug.
fn own_batch<'a, M: Model>(model: &M, batch: &'a NetBatch) -> &'a M::Batch
where
    M::Batch: 'static,
{
    batch.downcast_ref().unwrap_or_else(|| {
        panic!(
            "a batch built by another model was given to {}",
            model.label()
        )
    })
}

impl Model for Net<'_> {
    type Batch = NetBatch;

    fn label(&self) -> String {
        self.0.model().label()
    }
    fn kind(&self) -> ModelKind {
        self.0.model().kind()
    }
    fn params(&self) -> &Arc<ParamLayout> {
        self.0.model().params()
    }
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec> {
        self.0.model().buffers(mode)
    }
    fn check_layout(&self, layout: &MemoryLayout) -> anyhow::Result<()> {
        self.0.model().check_layout(layout)
    }
    fn resident(&self) -> Vec<(&'static str, &[u32])> {
        self.0.model().resident()
    }
    fn lazy_adam(&self) -> Option<AdamConfig> {
        self.0.model().lazy_adam()
    }
    fn n_users(&self) -> usize {
        self.0.model().n_users()
    }
    fn n_items(&self) -> usize {
        self.0.model().n_items()
    }
    fn dim(&self) -> usize {
        self.0.model().dim()
    }
    fn scorer(&self) -> Scorer {
        self.0.model().scorer()
    }
    fn trains(&self) -> bool {
        self.0.model().trains()
    }
    fn fitted(&self) -> Option<Weights<f32>> {
        self.0.model().fitted()
    }

    fn build_batch(&self, pairs: &[Pair]) -> NetBatch {
        self.0.build_batch(pairs)
    }

    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        self.0.train_step(pb, batch, t)
    }

    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a NetBatch, t: u64) {
        self.0.grad_step(pb, batch, t)
    }

    fn embed_rows(&self, mode: Mode) -> usize {
        self.0.model().embed_rows(mode)
    }

    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>) {
        self.0.embed_block(pb, block)
    }
}
