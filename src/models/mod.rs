//! Models over the runtime. A model declares its named parameter tensors (shape, initialisation,
//! storage), the buffers a session needs in each mode, builds its batch image from sampled pairs, emits
//! its training step and its embedding step as plans, and names its scorer. A [`Session`] ties a model
//! to an executor — the GPU, or the CPU twins — so every step is described once and checked against
//! itself. Each model also has a descriptor ([`ModelSpec`]): its flags and their defaults, sampler,
//! architecture checks, label, parameter counts and layout, how to build it, its benchmark shapes. The
//! commands, the training loop and the checkpoints ask `kind.spec()`; nothing outside this folder
//! matches on the model kind.
//!
//! # Adding a model
//! 1. Write `src/models/NAME.rs`: the model type and its `impl Model` (parameters through
//!    [`ParamLayout`], its buffers per [`Mode`], `build_batch`, `train_step`, `grad_step`,
//!    `embed_block`, its [`Scorer`]), and `pub static SPEC: ModelSpec` with its `build` function
//!    returning `Net::new(model)`. Reuse the kernels in `src/kernels` where they fit — and whole
//!    models: `cobrar_si.rs` is CoBraR (`cobrar::TwoTower`) over its own sparse inputs. Shapes that
//!    depend on the data beyond N and M (features) come from [`DataShape`]; data the model needs is
//!    checked by the descriptor's `check_data`; what it can score for users or items without
//!    training interactions (cold-start evaluation) is its `unseen` ([`spec::Unseen`]).
//! 2. Declare the file here (`pub mod NAME;`), add the variant to [`ModelKind`] (`kind.rs`: its doc
//!    comment is `--model`'s help) and its line `ModelKind::NAME => &NAME::SPEC` to
//!    [`ModelKind::spec`] (`registry.rs`). Nothing else names a model: `train`, `grid`, `reproduce`,
//!    `bench`, `evaluate`, `recommend`, `export` and the checkpoints take it from there.
//! 3. New kernels: one WGSL file per stage in `shaders/` (`build.rs` adds every file there to the
//!    shader table; shared code comes in with `//!include lib/NAME.wgsl`), and its module in
//!    `src/kernels` holding the `KernelDef`s and the stage's CPU twin, declared in `kernels/mod.rs`
//!    with its definitions in `kernels::ALL` (what the context compiles and the selftest checks).
//! 4. Tests: the model's GPU step against its CPU twin and its plan's gradients against finite
//!    differences (`tests/gpu/`), as every model has; `registry::tests` checks the descriptor's own
//!    consistency.

pub mod arch;
pub mod bpr;
pub mod cobrar;
pub mod cobrar_si;
pub mod kind;
pub mod lightgcn;
pub mod mostpop;
pub mod multvae;
pub mod net;
pub mod params;
pub mod registry;
pub mod session;
pub mod spec;

pub use arch::{Architecture, ParamCounts};
pub use kind::ModelKind;
pub use net::{Net, NetBatch};
pub use params::{Init, ParamLayout, TensorSpec, Weights};
pub use registry::{STUDY_PAIR, model_for, param_layout};
pub use session::{Executor, Session};
pub use spec::{DataShape, ModelSpec};

use crate::eval::ranking::Scorer;
use crate::gpu::memory::{BufId, BufferSpec, MemoryLayout};
use crate::gpu::plan::PlanBuilder;
use crate::sampler::Pair;

/// What a session is for; each mode allocates only what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: parameters, optimizer state, gradients, activations.
    Train,
    /// Gradient checks: parameters and every parameter's gradient, no optimizer state.
    Check,
    /// Inference: parameters, the embedding pass's activations and the embeddings; nothing else.
    Infer,
}

/// Users or items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Users,
    Items,
}

/// Names of the buffers every session has beside the model's own.
pub mod buffers {
    /// The mean loss of each step, at slot (t − 1) mod [`super::LOSS_RING`].
    pub const LOSS_RING: &str = "loss_ring";
    /// Embeddings of every user / item (`n × dim`), written by the embedding pass.
    pub const USER_EMBEDDINGS: &str = "emb.users";
    pub const ITEM_EMBEDDINGS: &str = "emb.items";
    /// Non-finite values per parameter buffer (the divergence check).
    pub const NONFINITE: &str = "nonfinite";
    /// The exclusion CSR of the ranking (the training interactions by user).
    pub const EXCLUDE_PTR: &str = "train.by_user.ptr";
    pub const EXCLUDE_IDX: &str = "train.by_user.idx";
    /// Lazy Adam's bias-correction table (`AdamConfig::bias_table`), in training sessions whose tables
    /// step lazily.
    pub const ADAM_BIAS: &str = "adam.bias";
    /// The training interactions by item (resident where a model's kernels walk them).
    pub const BY_ITEM_PTR: &str = "train.by_item.ptr";
    pub const BY_ITEM_IDX: &str = "train.by_item.idx";

    /// The buffers the models' steps share by name: one step's batch image, its activations, their
    /// gradients, and one loss per sample (the loss ring's input).
    pub const BATCH: &str = "batch";
    pub const ACTS: &str = "acts";
    pub const GRADS_ACT: &str = "grads_act";
    pub const PAIR_LOSS: &str = "pair_loss";

    /// The buffer of the embeddings of `side`.
    pub fn embeddings(side: super::Side) -> &'static str {
        match side {
            super::Side::Users => USER_EMBEDDINGS,
            super::Side::Items => ITEM_EMBEDDINGS,
        }
    }

    /// The exclusion CSR as resident data: the training interactions by user.
    pub fn exclusion(by_user: &crate::data::Csr) -> Vec<(&'static str, &[u32])> {
        vec![
            (EXCLUDE_PTR, &by_user.offsets[..]),
            (EXCLUDE_IDX, &by_user.indices[..]),
        ]
    }
}

/// Steps whose losses the ring keeps between read-backs.
pub const LOSS_RING: usize = 512;

/// A model the runtime can train, check and serve.
pub trait Model: Sync {
    /// What one training step uploads, built in the producer thread.
    type Batch: Send;

    /// `cobrar 512,64`.
    fn label(&self) -> String;
    fn kind(&self) -> ModelKind;
    /// Named parameter tensors and where they live.
    fn params(&self) -> &std::sync::Arc<ParamLayout>;
    /// The model's own buffers in `mode` (work, input, resident data, gradients); the session adds the
    /// parameters, their optimizer state, the loss ring and the embeddings.
    fn buffers(&self, mode: Mode) -> Vec<BufferSpec>;
    /// Requirements on the laid-out memory beyond the adapter's limits (e.g. tables a kernel binds
    /// whole): one line when they are not met.
    fn check_layout(&self, _layout: &MemoryLayout) -> anyhow::Result<()> {
        Ok(())
    }
    /// Adam's settings when the model's tables step lazily (`--optimizer lazy-adam`): training sessions
    /// then hold each table's row step counts ([`row_steps_buffer`]) and the bias-correction table
    /// ([`buffers::ADAM_BIAS`]).
    fn lazy_adam(&self) -> Option<crate::kernels::adam_dense::AdamConfig> {
        None
    }
    /// Resident data uploaded once: (buffer, words). Must include the exclusion CSR
    /// ([`buffers::EXCLUDE_PTR`], [`buffers::EXCLUDE_IDX`]).
    fn resident(&self) -> Vec<(&'static str, &[u32])>;
    fn n_users(&self) -> usize;
    fn n_items(&self) -> usize;
    /// Embedding width.
    fn dim(&self) -> usize;
    fn scorer(&self) -> Scorer;
    /// Whether the model learns by steps; one that does not (MostPop) gives its [`Model::fitted`]
    /// parameters and runs no epoch of steps.
    fn trains(&self) -> bool {
        true
    }
    /// Parameters computed from the training data rather than initialised and learned.
    fn fitted(&self) -> Option<Weights<f32>> {
        None
    }

    /// The batch image of sampled (user, item, label) pairs.
    fn build_batch(&self, pairs: &[Pair]) -> Self::Batch;
    /// One training step at optimizer step `t` (1-based), its mean loss into the ring at `ring_slot`.
    fn train_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a Self::Batch, t: u64);
    /// Forward and backward of step `t` without the update: every parameter's gradient into its
    /// `<buffer>.grad` buffer (gradient checks; sessions in [`Mode::Check`]).
    fn grad_step<'a>(&self, pb: &mut PlanBuilder<'_, 'a>, batch: &'a Self::Batch, t: u64);
    /// Rows one embedding block holds in `mode`.
    fn embed_rows(&self, mode: Mode) -> usize;
    /// Evaluation embeddings (no dropout) of one block of ids into the side's embedding buffer.
    fn embed_block<'a>(&'a self, pb: &mut PlanBuilder<'_, 'a>, block: Block<'a>);
}

/// One block of an embedding pass: the entities `ids` of `side`, written into rows `first..` of the
/// side's embedding buffer.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    pub side: Side,
    pub ids: &'a [u32],
    pub first: usize,
}

/// Records the mean of the first `n` per-sample losses in `pair_loss` into the loss ring `ring` at
/// step `t`'s slot (the models whose loss kernel writes one loss per triple or user).
pub fn record_mean_loss(
    pb: &mut PlanBuilder<'_, '_>,
    pair_loss: BufId,
    ring: BufId,
    n: usize,
    t: u64,
) {
    use crate::kernels::score_loss;
    let sum = score_loss::Params {
        n_pairs: u32::try_from(n).expect("batch exceeds u32"),
        ring_slot: ring_slot(t) as u32,
        ..Default::default()
    };
    let binds = [pair_loss.into(), ring.into()];
    let (_, cost) = score_loss::cost(&sum);
    pb.dispatch_costed(&score_loss::SUM, &binds, &sum, [1, 1, 1], cost);
}

/// The ring slot of optimizer step `t`.
pub fn ring_slot(t: u64) -> usize {
    ((t - 1) as usize) % LOSS_RING
}

/// Name of the gradient buffer of parameter buffer `name`.
pub fn grad_buffer(name: &str) -> String {
    format!("{name}.grad")
}

/// Name of lazy Adam's per-row step counts of table buffer `name` (training sessions whose tables step
/// lazily).
pub fn row_steps_buffer(name: &str) -> String {
    format!("{name}.steps")
}

/// Names of Adam's first and second moment buffers of parameter buffer `name` (training sessions).
pub fn moment_buffers(name: &str) -> [String; 2] {
    [format!("{name}.m"), format!("{name}.v")]
}

/// Adam's moment buffers of one parameter buffer, resolved from a training session's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MomentIds {
    pub m: BufId,
    pub v: BufId,
}

impl MomentIds {
    pub fn of(layout: &MemoryLayout, name: &str) -> MomentIds {
        let [m, v] = moment_buffers(name);
        MomentIds {
            m: layout.id(&m),
            v: layout.id(&v),
        }
    }
}

/// A training plan's buffers: its step's (`S`) and the Adam moments of N parameter buffers.
pub(crate) struct WithMoments<S, const N: usize> {
    pub step: S,
    pub moments: [MomentIds; N],
}

impl<S, const N: usize> WithMoments<S, N> {
    pub fn resolve(layout: &MemoryLayout, step: S, params: [&str; N]) -> Self {
        WithMoments {
            step,
            moments: params.map(|p| MomentIds::of(layout, p)),
        }
    }
}

/// A gradient check's buffers: its step's (`S`) and the gradients of N parameter buffers.
pub(crate) struct WithGrads<S, const N: usize> {
    pub step: S,
    pub grads: [BufId; N],
}

impl<S, const N: usize> WithGrads<S, N> {
    pub fn resolve(layout: &MemoryLayout, step: S, params: [&str; N]) -> Self {
        WithGrads {
            step,
            grads: params.map(|p| layout.id(&grad_buffer(p))),
        }
    }
}

/// An embedding block's buffers: what its pass uses (`S`) and the side's embeddings.
pub(crate) struct Embedding<S> {
    pub fwd: S,
    pub dst: BufId,
}

impl<S> Embedding<S> {
    pub fn resolve(layout: &MemoryLayout, fwd: S, side: Side) -> Self {
        Embedding {
            fwd,
            dst: layout.id(buffers::embeddings(side)),
        }
    }
}
