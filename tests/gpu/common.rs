//! Shared helpers: the GPU context (failing loudly when there is no adapter), fresh-but-reproducible
//! random inputs, tolerance checks, and the harness that runs one plan on both executors.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cobrar_gpu::gpu::GpuContext;
use cobrar_gpu::gpu::cpu::CpuExec;
use cobrar_gpu::gpu::exec::GpuExec;
use cobrar_gpu::gpu::executor::Executor;
use cobrar_gpu::gpu::memory::{BufferSpec, Elem, MemoryLayout, Role};
use cobrar_gpu::gpu::plan::PlanBuilder;
use cobrar_gpu::models::Weights;
use rand::{RngExt, SeedableRng};

/// The test adapter (`COBRAR_ADAPTER`, else auto), one device shared by the tests of this binary.
/// Panics with what to install when there is none: GPU tests never pass by skipping.
pub fn gpu() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(GpuContext::from_flag(None).unwrap_or_else(|e| {
            panic!(
                "GPU tests need a wgpu adapter: {e:#}\n\
                 On Linux without a GPU install the software Vulkan driver: \
                 apt-get install -y mesa-vulkan-drivers libvulkan1"
            )
        }))
    })
    .clone()
}

/// A generator seeded from `COBRAR_TEST_SEED`, else from the clock; the seed is printed so a failure
/// can be replayed.
pub fn rng(test: &str) -> rand_pcg::Pcg64Mcg {
    let seed = std::env::var("COBRAR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: COBRAR_TEST_SEED={seed}");
    rand_pcg::Pcg64Mcg::seed_from_u64(seed)
}

/// `n` values uniform in [lo, hi).
pub fn uniform(rng: &mut impl rand::Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Non-negative values with some exact zeros (what a ReLU layer produces).
pub fn relu_like(rng: &mut impl rand::Rng, n: usize) -> Vec<f32> {
    uniform(rng, n, -0.5, 1.0)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect()
}

pub fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Asserts |got − want| ≤ atol + rtol·scale[i] elementwise, where `scale` bounds the magnitude of the
/// terms that were summed (so long sums get a proportionate tolerance). Reports the worst element.
pub fn assert_close_scaled(
    what: &str,
    got: &[f32],
    want: &[f32],
    scale: &[f32],
    atol: f32,
    rtol: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(usize, f32)> = None;
    for i in 0..got.len() {
        let err = (got[i] - want[i]).abs();
        let tol = atol + rtol * scale[i];
        if err.is_nan() || err > tol {
            let excess = if err.is_nan() {
                f32::INFINITY
            } else {
                err / tol
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} differs: gpu {} vs cpu {} (tolerance {} + {}·{})",
            got[i], want[i], atol, rtol, scale[i]
        );
    }
}

/// Asserts |got − want| ≤ atol + rtol·|want| elementwise.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let scale: Vec<f32> = want.iter().map(|w| w.abs()).collect();
    assert_close_scaled(what, got, want, &scale, atol, rtol);
}

/// A random CSR with `rows` rows over `cols` columns, sorted and duplicate-free, row lengths in
/// `0..=max_len` (some rows empty).
pub fn random_csr(
    rng: &mut impl rand::Rng,
    rows: usize,
    cols: usize,
    max_len: usize,
) -> (Vec<u32>, Vec<u32>) {
    let mut ptr = vec![0u32];
    let mut idx = Vec::new();
    for _ in 0..rows {
        let len = rng.random_range(0..=max_len.min(cols));
        let mut row: Vec<u32> = rand::seq::index::sample(rng, cols, len)
            .into_iter()
            .map(|v| v as u32)
            .collect();
        row.sort_unstable();
        idx.extend(row);
        ptr.push(idx.len() as u32);
    }
    (ptr, idx)
}

/// Named buffers with initial contents, for a plan both executors run.
#[derive(Default, Clone)]
pub struct Buffers {
    specs: Vec<BufferSpec>,
    f: HashMap<String, Vec<f32>>,
    u: HashMap<String, Vec<u32>>,
}

impl Buffers {
    /// The f32 contents given for `name`.
    pub fn f32_of(&self, name: &str) -> &[f32] {
        &self.f[name]
    }

    pub fn f32(mut self, name: &str, data: Vec<f32>) -> Self {
        self.specs
            .push(BufferSpec::f32(name, data.len(), Role::Work));
        self.f.insert(name.into(), data);
        self
    }

    /// A row-chunkable table (`rows × cols`).
    pub fn table(mut self, name: &str, cols: usize, data: Vec<f32>) -> Self {
        self.specs.push(BufferSpec::table(
            name,
            data.len() / cols,
            cols,
            Role::Param,
        ));
        self.f.insert(name.into(), data);
        self
    }

    pub fn u32(mut self, name: &str, data: Vec<u32>) -> Self {
        self.specs
            .push(BufferSpec::u32(name, data.len(), Role::Input));
        self.u.insert(name.into(), data);
        self
    }

    /// The same buffers with every f32 value replaced by its magnitude (tolerance scales).
    pub fn abs(&self) -> Buffers {
        let mut b = self.clone();
        for v in b.f.values_mut() {
            *v = abs(v);
        }
        b
    }

    pub fn layout(&self, max_binding: u64, chunk_rows: Option<usize>) -> MemoryLayout {
        MemoryLayout::new(self.specs.clone(), max_binding, chunk_rows).unwrap()
    }
}

/// Every f32 buffer's contents after a run.
pub type Outputs = HashMap<String, Vec<f32>>;

/// Fills `exec` from `bufs`, runs the plan `build` makes, and reads every f32 buffer back.
fn run_on(
    mut exec: impl Executor<Real = f32>,
    bufs: &Buffers,
    build: &dyn Fn(&mut PlanBuilder<'_, '_>),
) -> Outputs {
    let layout = exec.layout().clone();
    for id in layout.ids() {
        let name = &layout.spec(id).name;
        match layout.spec(id).elem {
            Elem::F32 => exec.write(id, &bufs.f[name]).unwrap(),
            Elem::U32 => exec.write_u32(id, &bufs.u[name]).unwrap(),
        }
    }
    let mut pb = PlanBuilder::new(&layout, exec.max_per_dim());
    build(&mut pb);
    exec.run(&pb.finish()).unwrap();
    layout
        .ids()
        .filter(|&id| layout.spec(id).elem == Elem::F32)
        .map(|id| (layout.spec(id).name.clone(), exec.read(id).unwrap()))
        .collect()
}

/// Runs the plan `build` makes on the CPU twins (f32) over `bufs`.
pub fn run_cpu(
    bufs: &Buffers,
    chunk_rows: Option<usize>,
    build: &dyn Fn(&mut PlanBuilder<'_, '_>),
) -> Outputs {
    let layout = bufs.layout(gpu().max_binding(), chunk_rows);
    run_on(CpuExec::<f32>::new(layout), bufs, build)
}

/// Runs the plan `build` makes on the GPU over `bufs`.
pub fn run_gpu(
    bufs: &Buffers,
    chunk_rows: Option<usize>,
    build: &dyn Fn(&mut PlanBuilder<'_, '_>),
) -> Outputs {
    let ctx = gpu();
    let layout = bufs.layout(ctx.max_binding(), chunk_rows);
    run_on(GpuExec::new(ctx, layout).unwrap(), bufs, build)
}

/// The plan on the GPU, on the CPU twin, and on the CPU twin with every input's magnitude (the scale of
/// each output's summed terms, for tolerances).
pub fn run_three(
    bufs: &Buffers,
    chunk_rows: Option<usize>,
    build: &dyn Fn(&mut PlanBuilder<'_, '_>),
) -> (Outputs, Outputs, Outputs) {
    (
        run_gpu(bufs, chunk_rows, build),
        run_cpu(bufs, chunk_rows, build),
        run_cpu(&bufs.abs(), chunk_rows, build),
    )
}

/// Marks, per parameter buffer, the parameters whose f64 gradient (the CPU twins' Check plan at the
/// step's weights) fell below 1e-8 in magnitude: there the f32 sum of its terms is rounding, its sign
/// arbitrary, and Adam (which moves every parameter by about ±lr whatever |g|) may take another path.
pub fn mark_cancelling<M: cobrar_gpu::models::Model>(
    marks: &mut Vec<Vec<bool>>,
    mdl: M,
    w: &Weights<f32>,
    batch: &M::Batch,
    t: u64,
    chunk_rows: Option<usize>,
) {
    use cobrar_gpu::models::Mode;
    use cobrar_gpu::models::session::cpu_session;
    let mut s = cpu_session(mdl, Mode::Check, &w.convert::<f64>(), 1 << 30, chunk_rows).unwrap();
    s.grad_step(batch, t).unwrap();
    let g = s.read_grads().unwrap();
    marks.resize(g.data.len(), Vec::new());
    for (m, gb) in marks.iter_mut().zip(&g.data) {
        m.resize(gb.len(), false);
        for (flag, v) in m.iter_mut().zip(gb) {
            *flag |= v.abs() < 1e-8;
        }
    }
}

/// The GPU's and the CPU's parameter changes from `w0` after `steps` Adam steps at `lr` agree. Adam
/// moves a parameter by about ±lr a step whatever its gradient's size, so a wrong gradient moves it ~lr
/// the other way. Parameters marked by [`mark_cancelling`] may take another path (within Adam's
/// reach, 2·lr a step); all others agree within 25% of lr, all but 0.5% of them within 1%; and
/// something moved.
pub fn assert_changes_agree(
    what: &str,
    w0: &Weights<f32>,
    (got, want): (&Weights<f32>, &Weights<f32>),
    lr: f32,
    steps: usize,
    cancelling: &[Vec<bool>],
) {
    for (b, spec) in w0.layout.buffers.iter().enumerate() {
        let change = |w: &Weights<f32>| -> Vec<f32> {
            w.data[b]
                .iter()
                .zip(&w0.data[b])
                .map(|(a, z)| a - z)
                .collect()
        };
        let (dg, dc) = (change(got), change(want));
        let name = format!("{what}: {} change", spec.name);
        assert_close(&name, &dg, &dc, 2.0 * lr * steps as f32, 0.0);
        let free = |k: usize| !cancelling.get(b).is_some_and(|m| m[k]);
        let beyond = |tol: f32| {
            (0..dg.len())
                .filter(|&k| free(k) && (dg[k] - dc[k]).abs() > tol + 1e-3 * dc[k].abs())
                .count()
        };
        let n = (0..dg.len()).filter(|&k| free(k)).count();
        assert_eq!(
            beyond(0.25 * lr),
            0,
            "{name}: changes differ by more than 25% of lr"
        );
        assert!(
            beyond(1e-2 * lr) as f64 <= 5e-3 * n as f64 + 1.0,
            "{name}: {} of {n} differ by more than 1% of lr",
            beyond(1e-2 * lr)
        );
        assert!(
            dc.iter().any(|d| d.abs() > 0.1 * lr),
            "{name}: nothing moved"
        );
    }
}
