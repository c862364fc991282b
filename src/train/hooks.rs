//! Hooks for a program that embeds the library (the Python package): it watches training — a progress
//! bar, a per-epoch callback — and can stop it between two steps (Ctrl-C), without the training
//! functions' signatures knowing about it.

use std::sync::Arc;

use crate::report::run::EpochRecord;

/// What a program that embeds the library watches while a run trains (the Python package: its
/// progress bar, its `on_epoch` callback and Ctrl-C), installed for the calls made inside
/// [`with_hooks`] on the installing thread (and the threads `reproduce`'s workers start from it).
/// The training loop calls them; without hooks it behaves exactly as before.
pub trait TrainHooks: Send + Sync {
    /// Training begins at `first_epoch` (later than 1 for a resumed run), of at most `max_epochs`
    /// epochs of `steps_per_epoch` optimizer steps.
    fn begin(&self, first_epoch: usize, max_epochs: usize, steps_per_epoch: usize);
    /// After step `step` of `steps` in `epoch`: `true` stops training with [`Interrupted`] before the
    /// next step. The run keeps its last committed epoch, so `--resume` continues it exactly.
    fn step(&self, epoch: usize, step: usize, steps: usize) -> bool;
    /// After epoch `record` was handed to the epoch observer (the run directory committed it); an
    /// error stops training as the observer's would.
    fn epoch(&self, record: &EpochRecord) -> anyhow::Result<()>;
}

/// Shared hooks, as [`with_hooks`] installs them.
pub type Hooks = Arc<dyn TrainHooks>;

thread_local! {
    static HOOKS: std::cell::RefCell<Option<Hooks>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `hooks` installed on this thread (`None`: none), then restores what was installed.
pub fn with_hooks<R>(hooks: Option<Hooks>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Hooks>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOOKS.with(|h| *h.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(HOOKS.with(|h| std::mem::replace(&mut *h.borrow_mut(), hooks)));
    f()
}

/// The hooks installed on this thread, if any (a thread pool passes them on to its workers).
pub fn current_hooks() -> Option<Hooks> {
    HOOKS.with(|h| h.borrow().clone())
}

/// Training stopped because a [`TrainHooks::step`] asked it to (Ctrl-C in the Python package).
#[derive(Debug, thiserror::Error)]
#[error("training interrupted at step {step} of {steps} in epoch {epoch}")]
pub struct Interrupted {
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
}
