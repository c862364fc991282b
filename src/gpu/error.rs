//! Typed GPU errors, and the sink that catches what wgpu reports asynchronously.
//!
//! wgpu reports most failures (out of memory, validation, a lost device) through callbacks rather than
//! return values, and by default turns them into panics. The context installs an uncaptured-error
//! handler and a device-lost callback that store the first error here; the runtime checks the sink
//! after every submit and every wait and returns it as a [`GpuError`] — one clear line, never a panic.

use std::sync::{Arc, Mutex};

/// What can go wrong on the GPU, as the commands report it. Wrapped in `anyhow::Error`, so callers that
/// care (the training loop keeps a resumable checkpoint) can `downcast_ref::<GpuError>()`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    #[error(
        "GPU out of memory while allocating {what} ({mib} MiB); try a smaller --arch or --batch-size"
    )]
    OutOfMemory { what: String, mib: u64 },
    #[error(
        "{what} would take {mib} MiB in one storage binding, above the adapter's {limit_mib} MiB limit"
    )]
    BindingLimit {
        what: String,
        mib: u64,
        limit_mib: u64,
    },
    #[error(
        "{what} needs a {mib} MiB buffer, above the adapter's largest buffer ({limit_mib} MiB)"
    )]
    BufferLimit {
        what: String,
        mib: u64,
        limit_mib: u64,
    },
    #[error("the GPU device was lost ({reason}); the run can be resumed from its last checkpoint")]
    DeviceLost { reason: String },
    #[error("GPU out of memory during {during}")]
    OutOfMemoryAsync { during: String },
    #[error("GPU validation error (a bug in cobrar-gpu, please report it): {message}")]
    Validation { message: String },
    #[error("internal GPU error: {message}")]
    Internal { message: String },
}

/// Where the callbacks put the first error they see (later ones are usually consequences).
#[derive(Clone, Default)]
pub struct ErrorSink {
    first: Arc<Mutex<Option<GpuError>>>,
}

impl ErrorSink {
    pub fn record(&self, err: GpuError) {
        let mut slot = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
    }

    /// The first error recorded, if any (it stays recorded: a broken device stays broken).
    pub fn get(&self) -> Option<GpuError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs the uncaptured-error handler and the device-lost callback on `device`.
    pub fn install(&self, device: &wgpu::Device) {
        let sink = self.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.record(match e {
                wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemoryAsync {
                    during: "a GPU operation".into(),
                },
                wgpu::Error::Validation { description, .. } => GpuError::Validation {
                    message: one_line(&description),
                },
                wgpu::Error::Internal { description, .. } => GpuError::Internal {
                    message: one_line(&description),
                },
            })
        }));
        let sink = self.clone();
        device.set_device_lost_callback(move |reason, message| {
            // Dropping the device at exit also reports "destroyed": that is not an error.
            if reason != wgpu::DeviceLostReason::Destroyed {
                sink.record(GpuError::DeviceLost {
                    reason: one_line(&format!("{reason:?}: {message}")),
                });
            }
        });
    }
}

/// wgpu's messages span several lines; the commands print one.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_error_and_prints_one_line() {
        let sink = ErrorSink::default();
        assert!(sink.get().is_none());
        sink.record(GpuError::Validation {
            message: one_line("bad\n  binding"),
        });
        sink.record(GpuError::DeviceLost { reason: "x".into() });
        let e = sink.get().unwrap();
        assert_eq!(
            e,
            GpuError::Validation {
                message: "bad binding".into()
            }
        );
        assert!(!e.to_string().contains('\n'));
    }
}
