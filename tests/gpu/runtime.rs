//! The runtime's guarantees: kernels compile once per device and are shared; losses come back through
//! the non-blocking read-back ring with the values a blocking read sees; device errors and injected
//! faults surface as typed errors, never panics; limits give typed errors.

use std::sync::Arc;

use cobrar_gpu::gpu::context::{FaultPoint, InjectedFault};
use cobrar_gpu::gpu::executor::Executor;
use cobrar_gpu::gpu::{GpuContext, GpuError, buffers};
use cobrar_gpu::models::session::gpu_session;
use cobrar_gpu::models::{Mode, Model, ModelKind, Weights};

use crate::common::{toy_data, toy_pairs};
use crate::steps::model_with_pairs;

/// A device of its own (these tests count compilations and break devices on purpose).
fn fresh() -> Arc<GpuContext> {
    Arc::new(GpuContext::from_flag(None).expect("a wgpu adapter"))
}

#[test]
fn kernels_compile_once_per_device_and_are_shared_by_sessions() {
    let ctx = fresh();
    let mut rng = rand_pcg::Pcg64Mcg::new(5);
    let (by_user, by_item) = toy_data(&mut rng, 30, 20, 0.2);
    let pairs = toy_pairs(&mut rng, &by_user, 20, 6, 2);
    let mut counts = Vec::new();
    for _ in 0..2 {
        let mdl = model_with_pairs(ModelKind::Cobrar, "16,8", &by_user, &by_item, pairs.len());
        let batch = mdl.build_batch(&pairs);
        let w = Weights::init(mdl.params(), 1);
        let mut s = gpu_session(ctx.clone(), mdl, Mode::Train, &w, None).unwrap();
        s.step(&batch, false).unwrap();
        s.step(&batch, false).unwrap();
        s.embed_all().unwrap();
        counts.push(ctx.registry.compiled());
    }
    // spmm, forward, score, sum, backward ×2, column sums, dense Adam, table Adam, forward w/o dropout.
    assert!(counts[0] >= 9, "{counts:?}");
    assert_eq!(counts[0], counts[1], "a second session recompiled kernels");
    assert_eq!(
        ctx.registry.has_pipeline_cache(),
        ctx.features.contains(wgpu::Features::PIPELINE_CACHE)
            && cobrar_gpu::gpu::registry::cache_dir().is_some()
    );
}

#[test]
fn losses_read_back_without_blocking_equal_a_blocking_read() {
    let ctx = fresh();
    let mut rng = rand_pcg::Pcg64Mcg::new(6);
    let (by_user, by_item) = toy_data(&mut rng, 40, 25, 0.2);
    let mdl = model_with_pairs(ModelKind::Cobrar, "16,8", &by_user, &by_item, 8 * 4);
    let batches: Vec<_> = (0..12)
        .map(|_| mdl.build_batch(&toy_pairs(&mut rng, &by_user, 25, 8, 3)))
        .collect();
    let w = Weights::init(mdl.params(), 2);
    let mut s = gpu_session(ctx, mdl, Mode::Train, &w, None).unwrap();
    let mut got = Vec::new();
    for (k, b) in batches.iter().enumerate() {
        s.step(b, (k + 1) % 4 == 0).unwrap();
        got.extend(s.exec.ready_reads().unwrap());
    }
    s.exec.wait_read(12).unwrap();
    got.extend(s.exec.ready_reads().unwrap());
    let tags: Vec<u64> = got.iter().map(|r| r.0).collect();
    assert_eq!(tags, vec![4, 8, 12], "one read per request, oldest first");
    let blocking = s.read_losses(1, 12).unwrap();
    let ring: &[f32] = bytemuck::cast_slice(&got[2].1);
    assert_eq!(
        &ring[..12],
        &blocking[..],
        "the last read holds every step's loss"
    );
    assert!(blocking.iter().all(|l| l.is_finite() && *l > 0.0));
}

#[test]
fn a_device_error_is_a_typed_error_not_a_panic() {
    let ctx = fresh();
    // An invalid buffer (mapped at creation with a size that is not a multiple of 4) is a validation
    // error wgpu reports asynchronously; the runtime turns it into one line.
    let _bad = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid"),
        size: 3,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: true,
    });
    let err = ctx.check().unwrap_err();
    assert!(matches!(err, GpuError::Validation { .. }), "{err}");
    assert!(!err.to_string().contains('\n'));
    // Later work on the broken device fails with the same error instead of running.
    let e = buffers::storage(&ctx, "after", 64).unwrap_err();
    assert!(e.downcast_ref::<GpuError>().is_some(), "{e:#}");
}

#[test]
fn injected_faults_surface_as_typed_errors() {
    let mut rng = rand_pcg::Pcg64Mcg::new(7);
    let (by_user, by_item) = toy_data(&mut rng, 20, 15, 0.2);
    let pairs = toy_pairs(&mut rng, &by_user, 15, 4, 2);

    // A lost device at the third submission: the first two steps run, the third reports it.
    let ctx = fresh();
    ctx.inject_fault(InjectedFault::parse("lost@submit:3").unwrap());
    let mdl = model_with_pairs(ModelKind::Deepmf, "8,4", &by_user, &by_item, pairs.len());
    let batch = mdl.build_batch(&pairs);
    let w = Weights::init(mdl.params(), 3);
    let mut s = gpu_session(ctx, mdl, Mode::Train, &w, None).unwrap();
    s.step(&batch, false).unwrap();
    s.step(&batch, false).unwrap();
    let e = s.step(&batch, false).unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<GpuError>(),
            Some(GpuError::DeviceLost { .. })
        ),
        "{e:#}"
    );

    // Out of memory while allocating a session's second buffer.
    let ctx = fresh();
    ctx.inject_fault(InjectedFault::new(
        FaultPoint::Allocation,
        2,
        GpuError::OutOfMemory {
            what: "injected".into(),
            mib: 1,
        },
    ));
    let mdl = model_with_pairs(ModelKind::Cobrar, "8,4", &by_user, &by_item, pairs.len());
    let w = Weights::init(mdl.params(), 3);
    let e = gpu_session(ctx, mdl, Mode::Train, &w, None).err().unwrap();
    assert!(
        matches!(
            e.downcast_ref::<GpuError>(),
            Some(GpuError::OutOfMemory { .. })
        ),
        "{e:#}"
    );
    assert!(InjectedFault::parse("oom@nowhere:1").is_err());
}

#[test]
fn limits_give_typed_errors() {
    let ctx = crate::common::gpu();
    let e = buffers::storage(&ctx, "huge", ctx.limits.max_buffer_size + 1).unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<GpuError>(),
            Some(GpuError::BufferLimit { .. })
        ),
        "{e:#}"
    );
    let specs = vec![cobrar_gpu::gpu::memory::BufferSpec::f32(
        "activations",
        (ctx.max_binding() / 4 + 1) as usize,
        cobrar_gpu::gpu::memory::Role::Work,
    )];
    let e = cobrar_gpu::gpu::memory::MemoryLayout::new(specs, ctx.max_binding(), None).unwrap_err();
    assert!(matches!(e, GpuError::BindingLimit { .. }), "{e}");
    assert!(e.to_string().contains("activations"));
}
