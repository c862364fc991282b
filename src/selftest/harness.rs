//! What every check runs on: named buffers with initial contents, one plan run by the GPU executor and
//! by the CPU executor (and once more on the inputs' magnitudes, for tolerances of long sums), seeded
//! random inputs and small random interaction data.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngExt;

use crate::data::Csr;
use crate::gpu::GpuContext;
use crate::gpu::cpu::CpuExec;
use crate::gpu::exec::GpuExec;
use crate::gpu::executor::Executor;
use crate::gpu::memory::{BufferSpec, Elem, MemoryLayout, Role};
use crate::gpu::plan::PlanBuilder;
use crate::models::{Mode, Model, Weights};

/// The generator of every check's inputs.
pub type Rng = rand_pcg::Pcg64Mcg;

/// The device a check runs on, and whether it runs its quick cases only.
#[derive(Clone)]
pub struct Harness {
    pub ctx: Arc<GpuContext>,
    pub quick: bool,
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

    pub fn layout(
        &self,
        max_binding: u64,
        chunk_rows: Option<usize>,
    ) -> anyhow::Result<MemoryLayout> {
        Ok(MemoryLayout::new(
            self.specs.clone(),
            max_binding,
            chunk_rows,
        )?)
    }
}

/// Every buffer's contents after a run: `out["name"]` for f32 buffers, [`Outputs::u32`] for words.
#[derive(Debug, Default)]
pub struct Outputs {
    f: HashMap<String, Vec<f32>>,
    u: HashMap<String, Vec<u32>>,
}

impl Outputs {
    pub fn u32(&self, name: &str) -> &[u32] {
        &self.u[name]
    }
}

impl std::ops::Index<&str> for Outputs {
    type Output = Vec<f32>;
    fn index(&self, name: &str) -> &Vec<f32> {
        &self.f[name]
    }
}

/// A plan over [`Buffers`]: the closure records its dispatches.
pub type Build<'b> = &'b dyn Fn(&mut PlanBuilder<'_, '_>);

/// Fills `exec` from `bufs`, runs the plan `build` makes, and reads every buffer back.
fn run_on(
    mut exec: impl Executor<Real = f32>,
    bufs: &Buffers,
    build: Build<'_>,
) -> anyhow::Result<Outputs> {
    let layout = exec.layout().clone();
    for id in layout.ids() {
        let name = &layout.spec(id).name;
        match layout.spec(id).elem {
            Elem::F32 => exec.write(id, &bufs.f[name])?,
            Elem::U32 => exec.write_u32(id, &bufs.u[name])?,
        }
    }
    let mut pb = PlanBuilder::new(&layout, exec.max_per_dim());
    build(&mut pb);
    exec.run(&pb.finish())?;
    let mut out = Outputs::default();
    for id in layout.ids() {
        let name = layout.spec(id).name.clone();
        match layout.spec(id).elem {
            Elem::F32 => {
                out.f.insert(name, exec.read(id)?);
            }
            Elem::U32 => {
                out.u.insert(name, exec.read_u32(id)?);
            }
        }
    }
    Ok(out)
}

impl Harness {
    /// Runs the plan `build` makes on the CPU twins (f32) over `bufs`.
    pub fn run_cpu(
        &self,
        bufs: &Buffers,
        chunk_rows: Option<usize>,
        build: Build<'_>,
    ) -> anyhow::Result<Outputs> {
        let layout = bufs.layout(self.ctx.max_binding(), chunk_rows)?;
        run_on(CpuExec::<f32>::new(layout), bufs, build)
    }

    /// Runs the plan `build` makes on the GPU over `bufs`.
    pub fn run_gpu(
        &self,
        bufs: &Buffers,
        chunk_rows: Option<usize>,
        build: Build<'_>,
    ) -> anyhow::Result<Outputs> {
        let layout = bufs.layout(self.ctx.max_binding(), chunk_rows)?;
        run_on(GpuExec::new(self.ctx.clone(), layout)?, bufs, build)
    }

    /// The plan on the GPU, on the CPU twin, and on the CPU twin with every input's magnitude (the
    /// scale of each output's summed terms, for tolerances).
    pub fn run_three(
        &self,
        bufs: &Buffers,
        chunk_rows: Option<usize>,
        build: Build<'_>,
    ) -> anyhow::Result<(Outputs, Outputs, Outputs)> {
        Ok((
            self.run_gpu(bufs, chunk_rows, build)?,
            self.run_cpu(bufs, chunk_rows, build)?,
            self.run_cpu(&bufs.abs(), chunk_rows, build)?,
        ))
    }

    /// `cases` in full, or only those marked for the quick set.
    pub fn cases<T: Clone>(&self, cases: &[(bool, T)]) -> Vec<T> {
        cases
            .iter()
            .filter(|(quick, _)| *quick || !self.quick)
            .map(|(_, c)| c.clone())
            .collect()
    }
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

/// A CSR of `rows` random sorted rows over `cols`, each at least one long.
pub fn csr_rows(rng: &mut impl rand::Rng, rows: usize, cols: usize, max_len: usize) -> Csr {
    let (ptr, idx) = random_csr(rng, rows, cols, max_len);
    let rows: Vec<Vec<u32>> = ptr
        .windows(2)
        .map(|w| idx[w[0] as usize..w[1] as usize].to_vec())
        .map(|r| if r.is_empty() { vec![0] } else { r })
        .collect();
    Csr::from_rows(&rows)
}

/// A small random interaction matrix (every user and item has at least one interaction) and its
/// transpose.
pub fn toy_data(rng: &mut impl rand::Rng, n: usize, m: usize, density: f64) -> (Csr, Csr) {
    let mut rows: Vec<Vec<u32>> = (0..n)
        .map(|u| {
            let mut r: Vec<u32> = (0..m as u32).filter(|_| rng.random_bool(density)).collect();
            if r.is_empty() || u < m {
                r.push((u % m) as u32);
            }
            r.sort_unstable();
            r.dedup();
            r
        })
        .collect();
    for i in 0..m {
        if !rows.iter().any(|r| r.contains(&(i as u32))) {
            rows[i % n].push(i as u32);
            rows[i % n].sort_unstable();
        }
    }
    let by_user = Csr::from_rows(&rows);
    let by_item = by_user.transpose(m);
    (by_user, by_item)
}

/// `positives` training pairs with `neg` random negatives each.
pub fn toy_pairs(
    rng: &mut impl rand::Rng,
    by_user: &Csr,
    m: usize,
    positives: usize,
    neg: usize,
) -> Vec<(u32, u32, f32)> {
    let n = by_user.n_rows();
    let mut pairs = Vec::new();
    for _ in 0..positives {
        let u = rng.random_range(0..n);
        let row = by_user.row(u);
        pairs.push((u as u32, row[rng.random_range(0..row.len())], 1.0));
        for _ in 0..neg {
            pairs.push((u as u32, rng.random_range(0..m as u32), 0.0));
        }
    }
    pairs
}

/// `n` triples in the bpr sampler's order: (u, i, 1) then (u, j, 0), i a positive of u, j any item
/// other than i (the pairwise loss's batches).
pub fn toy_triples(
    rng: &mut impl rand::Rng,
    by_user: &Csr,
    m: usize,
    n: usize,
) -> Vec<(u32, u32, f32)> {
    let mut pairs = Vec::new();
    for _ in 0..n {
        let u = rng.random_range(0..by_user.n_rows());
        let row = by_user.row(u);
        let i = row[rng.random_range(0..row.len())];
        let j = loop {
            let j = rng.random_range(0..m as u32);
            if j != i {
                break j;
            }
        };
        pairs.extend([(u as u32, i, 1.0), (u as u32, j, 0.0)]);
    }
    pairs
}

/// Per parameter buffer, the parameters whose gradient as Adam steps on it (the CPU twins' Check plan
/// in f64 at the step's weights, plus coupled L2's `decay`·θ) is within the GPU's f32 error of zero:
/// below 1e-8 + 1e-4 × the buffer's largest. There the sign of the f32 gradient is arbitrary and
/// Adam, which moves every parameter by about ±lr whatever |g|, may take another path. The relative
/// part is measured on lavapipe: a cosine near 1 (down to 1 − 1e-3, see `well_conditioned_batch`)
/// amplifies f32 rounding by 1/(1 − ŷ), and a gradient whose terms of size ~1 cancel exactly came out
/// 1.7e-5 (seed 2000); a data gradient of −3.1543e-4 cancelled against λθ = 3.1545e-4 (seed 1038).
pub fn cancelling<M: Model>(
    mdl: M,
    w: &Weights<f32>,
    batch: &M::Batch,
    t: u64,
    chunk_rows: Option<usize>,
    decay: f64,
) -> anyhow::Result<Vec<Vec<bool>>> {
    use crate::models::session::cpu_session;
    let mut s = cpu_session(mdl, Mode::Check, &w.convert::<f64>(), 1 << 30, chunk_rows)?;
    s.grad_step(batch, t)?;
    let g = s.read_grads()?;
    Ok(g.data
        .iter()
        .zip(&w.data)
        .map(|(gb, wb)| {
            let stepped: Vec<f64> = gb
                .iter()
                .zip(wb)
                .map(|(g, th)| g + decay * f64::from(*th))
                .collect();
            let largest = stepped.iter().fold(0f64, |a, g| a.max(g.abs()));
            stepped
                .iter()
                .map(|g| g.abs() < 1e-8 + 1e-4 * largest)
                .collect()
        })
        .collect())
}
