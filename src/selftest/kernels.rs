//! Every kernel against its CPU twin on fresh seeded inputs, over shapes with ragged edges, in every
//! override-constant variant the models use: one plan, run by the GPU executor and by the CPU executor.
//! Sums of n terms are compared with |gpu − cpu| ≤ atol + rtol·Σ|terms| (f32 on the GPU against f64
//! accumulation in the twins), where Σ|terms| is the same plan run on the inputs' magnitudes.
//! Each check's cases marked `true` form the quick set.

use rand::RngExt;

use super::harness::{
    Buffers, Harness, Rng, csr_rows, random_csr, relu_like, toy_data, toy_pairs, uniform,
};
use super::verdict::Verdict;
use crate::gpu::memory::Bind;
use crate::gpu::plan::PlanBuilder;
use crate::kernels::adam_dense::{self, AdamConfig};
use crate::kernels::{
    Activation, Dropout, adam_table, bpr_loss, column_sums, copy, dense_backward_data,
    dense_backward_weight, dense_forward, propagate, reduce, score_loss, spmm, spmm_transpose,
    strided_copy, vae,
};
use crate::models::multvae::VaeBatch;

type Result = anyhow::Result<()>;

fn b(pb: &PlanBuilder<'_, '_>, name: &str) -> Bind {
    pb.id(name).into()
}

/// Sparse row sums over a CSR, table in row chunks, every activation, row scale, bias, entry dropout.
pub fn spmm(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use Activation::*;
    // (entities, table rows, dim, batch rows, max row length, rows per chunk, activation, row scale,
    // bias, dropout on the entries)
    let cases = h.cases(&[
        (true, (10, 7, 4, 1, 7, 7, Relu, false, true, 0.0)),
        (false, (50, 300, 36, 20, 40, 300, Relu, false, true, 0.0)),
        (false, (200, 90, 2056, 64, 30, 90, Relu, false, true, 0.0)),
        (true, (80, 301, 12, 33, 60, 64, Relu, false, true, 0.0)),
        (true, (80, 301, 12, 33, 60, 64, Tanh, true, true, 0.0)),
        (true, (40, 120, 20, 17, 50, 50, Identity, true, false, 0.0)),
        (false, (40, 120, 20, 17, 50, 120, Tanh, false, false, 0.0)),
        (true, (80, 301, 600, 33, 60, 64, Tanh, true, true, 0.5)),
        (true, (40, 120, 20, 17, 50, 120, Relu, false, true, 0.3)),
    ]);
    for (n_ent, t_rows, dim, n_rows, max_len, chunk_rows, act, row_scale, bias, rate) in cases {
        let dropout = Dropout::new(rate, rng.random(), rng.random_range(1..1000), 0);
        let (ptr, idx) = random_csr(rng, n_ent, t_rows, max_len);
        let ids: Vec<u32> = (0..n_rows)
            .map(|_| rng.random_range(0..n_ent as u32))
            .collect();
        let bufs = Buffers::default()
            .table("table", dim, uniform(rng, t_rows * dim, -0.1, 0.1))
            .u32("ptr", ptr)
            .u32("idx", idx)
            .u32("batch", [vec![0u32; 5], ids].concat())
            .f32(
                "params",
                [vec![0f32; 4], uniform(rng, dim, -0.1, 0.1)].concat(),
            )
            .f32("acts", vec![f32::NAN; 8 + n_rows * dim]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let table = pb.id("table");
            let n = pb.layout.chunks(table);
            for c in 0..n {
                let launch = spmm::Launch {
                    n_rows,
                    ids_off: 5,
                    h_off: 8,
                    dim,
                    chunk: pb.layout.chunk_rows(table, c),
                    bias: bias.then_some(4),
                    first: c == 0,
                    last: c + 1 == n,
                    row_scale,
                    dropout,
                };
                let (p, grid) = launch.params(pb.max_per_dim);
                let binds = [
                    pb.layout.chunk(table, c),
                    b(pb, "ptr"),
                    b(pb, "idx"),
                    b(pb, "batch"),
                    b(pb, "params"),
                    b(pb, "acts"),
                ];
                pb.dispatch(spmm::def(act), &binds, &p, grid);
            }
        };
        let (g, c, s) = h.run_three(&bufs, Some(chunk_rows), &build)?;
        let what = format!(
            "spmm {n_rows} rows, dim {dim}, chunks of {chunk_rows}, {act:?}, scale {row_scale}, \
             dropout {rate}"
        );
        // tanh's slope is at most 1, so the sums' magnitudes still bound the error.
        v.close_scaled(
            &what,
            &g["acts"][8..],
            &c["acts"][8..],
            &s["acts"][8..],
            1e-7,
            2e-6,
        );
    }
    Ok(())
}

/// Column sums of two row blocks.
pub fn column_sums(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let cases = h.cases(&[
        (true, (1, 1, 4)),
        (true, (37, 250, 268)),
        (false, (300, 5, 2048)),
    ]);
    for (nu, ni, dim) in cases {
        let bufs = Buffers::default()
            .f32(
                "grads_act",
                [vec![0f32; 4], uniform(rng, (nu + ni) * dim, -1.0, 1.0)].concat(),
            )
            .f32("grads", vec![f32::NAN; 4 + 2 * dim]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = column_sums::params([(nu, 4, 4), (ni, 4 + nu * dim, 4 + dim)], dim);
            pb.dispatch(
                &column_sums::DEF,
                &[b(pb, "grads_act"), b(pb, "grads")],
                &p,
                grid,
            );
        };
        let (g, c, s) = h.run_three(&bufs, None, &build)?;
        let what = format!("column sums {nu}+{ni} rows dim {dim}");
        v.close_scaled(
            &what,
            &g["grads"][4..],
            &c["grads"][4..],
            &s["grads"][4..],
            1e-7,
            2e-6,
        );
    }
    Ok(())
}

/// One dense forward case: (rows per segment, d_in, d_out, dropout rate, activation).
#[allow(clippy::too_many_arguments)]
fn dense_forward_case(
    h: &Harness,
    rng: &mut Rng,
    v: &mut Verdict,
    rows: [usize; 2],
    d_in: usize,
    d_out: usize,
    rate: f32,
    act: Activation,
) -> Result {
    let segs = if rows[1] > 0 { 2 } else { 1 };
    let wlen = (d_in + 1) * d_out;
    let bound = (6.0 / (d_in + d_out) as f32).sqrt();
    // Params: a leading pad (offsets are exercised), then one [W ; b] per segment.
    let pad = 8;
    let mut params = vec![0f32; pad];
    let mut acts = vec![0f32; 4];
    let mut segments = Vec::new();
    let mut row_base = 0;
    for &r in &rows[..segs] {
        let w_off = params.len();
        params.extend(uniform(rng, wlen, -bound, bound));
        let x_off = acts.len();
        acts.extend(relu_like(rng, r * d_in));
        let y_off = acts.len();
        acts.extend(vec![f32::NAN; r * d_out]); // every output must be written
        segments.push(dense_forward::Segment {
            rows: r,
            x_off,
            y_off,
            w_off,
            row_base,
        });
        row_base += r;
    }
    let dropout = Dropout::new(rate, 7, 3, 1);
    let bufs = Buffers::default().f32("params", params).f32("acts", acts);
    let build = |pb: &mut PlanBuilder<'_, '_>| {
        let (p, grid) = dense_forward::params(&segments, d_in, d_out, dropout);
        let def = dense_forward::def(act, rate > 0.0);
        pb.dispatch(def, &[b(pb, "params"), b(pb, "acts")], &p, grid);
    };
    let (g, c, s) = h.run_three(&bufs, None, &build)?;
    for (k, seg) in segments.iter().enumerate() {
        let r = seg.y_off..seg.y_off + seg.rows * d_out;
        let what = format!(
            "dense forward rows {rows:?} {d_in}→{d_out} dropout {rate} {act:?} segment {k}"
        );
        let scale: Vec<f32> = s["acts"][r.clone()]
            .iter()
            .map(|x| x * dropout.scale)
            .collect();
        v.close_scaled(
            &what,
            &g["acts"][r.clone()],
            &c["acts"][r.clone()],
            &scale,
            1e-6,
            2e-6,
        );
        if rate > 0.0 {
            let out = &c["acts"][r];
            let zeros = out.iter().filter(|x| **x == 0.0).count() as f32 / out.len() as f32;
            v.ensure(zeros > rate * 0.5, || {
                format!("{what}: dropout seems inactive ({zeros} zeros)")
            });
        }
    }
    Ok(())
}

/// GEMM forward with every activation, dropout on and off, one or two segments.
pub fn dense_forward(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use Activation::*;
    let cases = h.cases(&[
        (true, ([1, 0], 4, 4, 0.0, Relu)),
        (false, ([1, 0], 132, 68, 0.0, Relu)),
        (true, ([37, 0], 12, 20, 0.0, Relu)),
        (false, ([64, 0], 64, 64, 0.0, Relu)),
        (false, ([300, 0], 260, 132, 0.0, Relu)),
        (true, ([129, 0], 512, 128, 0.5, Relu)),
        (true, ([70, 45], 68, 36, 0.0, Relu)),
        (false, ([3, 200], 16, 132, 0.1, Relu)),
        (true, ([90, 0], 40, 24, 0.0, Tanh)),
        (true, ([20, 33], 24, 16, 0.0, Identity)),
    ]);
    for (rows, d_in, d_out, rate, act) in cases {
        dense_forward_case(h, rng, v, rows, d_in, d_out, rate, act)?;
    }
    Ok(())
}

/// More rows than one dimension of 65,535 workgroups would cover with 1-row tiles: the 2-D grid
/// (64-row tiles) keeps large dispatches legal.
pub fn dense_forward_many_tiles(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    dense_forward_case(h, rng, v, [70_001, 0], 4, 8, 0.0, Activation::Relu)
}

/// GEMM backward to the input, through every activation's derivative.
pub fn dense_backward_data(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use Activation::*;
    // (rows per segment, d_in, d_out, in_scale, activation that produced X)
    let cases = h.cases(&[
        (true, ([1, 0], 4, 4, 1.0, Relu)),
        (true, ([37, 0], 20, 12, 1.0, Relu)),
        (false, ([300, 0], 132, 260, 2.0, Relu)),
        (true, ([70, 5], 68, 36, 1.0, Relu)),
        (true, ([50, 0], 36, 20, 1.0, Tanh)),
        (true, ([9, 14], 8, 12, 1.0, Identity)),
    ]);
    for (rows, d_in, d_out, in_scale, act) in cases {
        let segs = if rows[1] > 0 { 2 } else { 1 };
        let wlen = (d_in + 1) * d_out;
        let mut params = vec![0f32; 4];
        let mut acts = vec![0f32; 4];
        let mut grads_act = vec![0f32; 8];
        let mut segments = Vec::new();
        for &r in &rows[..segs] {
            let w_off = params.len();
            params.extend(uniform(rng, wlen, -0.3, 0.3));
            let x_off = acts.len();
            acts.extend(match act {
                Relu => relu_like(rng, r * d_in),
                Tanh => uniform(rng, r * d_in, -0.99, 0.99),
                Identity => uniform(rng, r * d_in, -1.0, 1.0),
            });
            let dz_off = grads_act.len();
            grads_act.extend(uniform(rng, r * d_out, -1.0, 1.0));
            let dx_off = grads_act.len();
            grads_act.extend(vec![f32::NAN; r * d_in]);
            segments.push(dense_backward_data::Segment {
                rows: r,
                dz_off,
                dx_off,
                x_off,
                w_off,
            });
        }
        let bufs = Buffers::default()
            .f32("params", params)
            .f32("acts", acts)
            .f32("grads_act", grads_act);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = dense_backward_data::params(&segments, d_in, d_out, in_scale);
            let binds = [b(pb, "params"), b(pb, "acts"), b(pb, "grads_act")];
            pb.dispatch(dense_backward_data::def(act), &binds, &p, grid);
        };
        let (g, c, s) = h.run_three(&bufs, None, &build)?;
        for (k, seg) in segments.iter().enumerate() {
            let r = seg.dx_off..seg.dx_off + seg.rows * d_in;
            let what =
                format!("dense backward data rows {rows:?} {d_in}→{d_out} {act:?} segment {k}");
            let (got, want) = (&g["grads_act"][r.clone()], &c["grads_act"][r.clone()]);
            v.close_scaled(&what, got, want, &s["grads_act"][r], 1e-6, 2e-6);
        }
    }
    Ok(())
}

/// GEMM backward to the weights, fresh and accumulating onto the gradient already there.
pub fn dense_backward_weight(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let cases = h.cases(&[
        (true, ([1, 0], 4, 4)),
        (true, ([37, 0], 20, 12)),
        (false, ([1000, 0], 132, 68)),
        (true, ([70, 45], 64, 128)),
        (true, ([3, 1], 8, 4)),
    ]);
    for (rows, d_in, d_out) in cases {
        let segs = if rows[1] > 0 { 2 } else { 1 };
        let glen = (d_in + 1) * d_out;
        let mut acts = vec![0f32; 4];
        let mut grads_act = vec![0f32; 4];
        let mut segments = Vec::new();
        for (k, &r) in rows[..segs].iter().enumerate() {
            let x_off = acts.len();
            acts.extend(relu_like(rng, r * d_in));
            let dz_off = grads_act.len();
            grads_act.extend(uniform(rng, r * d_out, -1.0, 1.0));
            segments.push(dense_backward_weight::Segment {
                rows: r,
                x_off,
                dz_off,
                g_off: 4 + k * glen,
            });
        }
        let bufs = Buffers::default()
            .f32("acts", acts)
            .f32("grads_act", grads_act)
            .f32("grads", vec![f32::NAN; 4 + segs * glen]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = dense_backward_weight::params(&segments, d_in, d_out);
            let binds = [b(pb, "acts"), b(pb, "grads_act"), b(pb, "grads")];
            pb.dispatch(&dense_backward_weight::DEF, &binds, &p, grid);
        };
        let (g, c, s) = h.run_three(&bufs, None, &build)?;
        let what = format!("dense backward weight rows {rows:?} {d_in}→{d_out}");
        v.close_scaled(
            &what,
            &g["grads"][4..],
            &c["grads"][4..],
            &s["grads"][4..],
            1e-6,
            2e-6,
        );
    }
    let cases = h.cases(&[(true, (5, 8, 12)), (false, (130, 64, 1684))]);
    for (rows, d_in, d_out) in cases {
        let glen = (d_in + 1) * d_out;
        let segments = [dense_backward_weight::Segment {
            rows,
            x_off: 4,
            dz_off: 4,
            g_off: 4,
        }];
        let bufs = Buffers::default()
            .f32(
                "acts",
                [vec![0f32; 4], relu_like(rng, rows * d_in)].concat(),
            )
            .f32(
                "grads_act",
                [vec![0f32; 4], uniform(rng, rows * d_out, -1.0, 1.0)].concat(),
            )
            .f32(
                "grads",
                [vec![0f32; 4], uniform(rng, glen, -1.0, 1.0)].concat(),
            );
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (mut p, grid) = dense_backward_weight::params(&segments, d_in, d_out);
            p.accumulate = 1;
            let binds = [b(pb, "acts"), b(pb, "grads_act"), b(pb, "grads")];
            pb.dispatch(&dense_backward_weight::DEF, &binds, &p, grid);
        };
        let (g, c, s) = h.run_three(&bufs, None, &build)?;
        let what = format!("dense backward weight, accumulating, {rows} rows {d_in}→{d_out}");
        v.close_scaled(
            &what,
            &g["grads"][4..],
            &c["grads"][4..],
            &s["grads"][4..],
            1e-6,
            2e-6,
        );
        // The sum really was added: the twin's result is the old gradient plus a fresh one.
        let f64s = |x: &[f32]| x.iter().map(|&y| y as f64).collect::<Vec<_>>();
        let fresh = dense_backward_weight::cpu::<f64>(
            &f64s(&bufs.f32_of("acts")[4..]),
            &f64s(&bufs.f32_of("grads_act")[4..]),
            rows,
            d_in,
            d_out,
        );
        let start = bufs.f32_of("grads");
        let added = (0..glen)
            .all(|k| (c["grads"][4 + k] as f64 - (start[4 + k] as f64 + fresh[k])).abs() < 1e-4);
        v.ensure(added, || {
            format!("{what}: the twin's result is not the old gradient plus the new")
        });
    }
    Ok(())
}

/// The clamped-cosine + BCE loss: gradients, per-pair and mean losses into the ring.
pub fn score_loss(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (users, items, pairs, dim, out_scale)
    let cases = h.cases(&[
        (true, (1, 1, 1, 4, 1.0)),
        (true, (5, 17, 40, 12, 1.0)),
        (false, (60, 300, 360, 64, 1.0)),
        (true, (33, 80, 198, 132, 2.0)),
    ]);
    for (nu, ni, np, dim, out_scale) in cases {
        let rows = nu + ni;
        let mut e = relu_like(rng, rows * dim);
        if rows > 2 {
            e[dim..2 * dim].fill(0.0); // an all-zero embedding: the norm clamp path
        }
        let mut pu: Vec<u32> = (0..np).map(|_| rng.random_range(0..nu as u32)).collect();
        let pi: Vec<u32> = (0..np).map(|_| rng.random_range(0..ni as u32)).collect();
        pu[0] = 1.min(nu as u32 - 1);
        let labels: Vec<f32> = (0..np)
            .map(|q| match (q % 6, q % 7) {
                (0, _) => 1.0,
                (_, 0) => 0.6,
                _ => 0.0,
            })
            .collect();
        // Away from the loss's singularities (cos → 1, or cos at the clamp μ), where f32 rounding of the
        // gradient is unbounded for any implementation: redraw such pairs' items.
        let cos = |e: &[f32], u: usize, i: usize| {
            let (a, b) = (
                &e[u * dim..(u + 1) * dim],
                &e[(nu + i) * dim..(nu + i + 1) * dim],
            );
            let dot: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let n = |v: &[f32]| {
                v.iter()
                    .map(|x| (*x as f64).powi(2))
                    .sum::<f64>()
                    .sqrt()
                    .max(1e-8)
            };
            dot / (n(a) * n(b))
        };
        let singular = |c: f64| (c - 1.0).abs() < 1e-3 || (c - 1e-4).abs() < 1e-5;
        for q in 0..np {
            for _ in 0..100 {
                if !singular(cos(&e, pu[q] as usize, pi[q] as usize)) {
                    break;
                }
                e[(nu + pi[q] as usize) * dim..][..dim].copy_from_slice(&relu_like(rng, dim));
            }
        }
        let (ptr, idx) = crate::batch::pair_rows(nu, ni, &pu, &pi);
        let head = 3;
        let mut batch: Vec<u32> = vec![7; head];
        batch.extend(&pu);
        batch.extend(&pi);
        batch.extend(labels.iter().map(|l| l.to_bits()));
        batch.extend(&ptr);
        batch.extend(&idx);
        let launch = score_loss::Launch {
            n_users: nu,
            n_items: ni,
            n_pairs: np,
            dim,
            e_off: 8,
            de_off: 4,
            pair_user: head,
            pair_item: head + np,
            pair_label: head + 2 * np,
            row_ptr: head + 3 * np,
            row_pairs: head + 3 * np + ptr.len(),
            mu: 1e-4,
            out_scale,
            ring_slot: 3,
            loss: score_loss::Loss::Bce,
        };
        let bufs = Buffers::default()
            .f32("acts", [vec![0.0; 8], e].concat())
            .f32("grads_act", vec![f32::NAN; 4 + rows * dim])
            .u32("batch", batch)
            .f32("pair_loss", vec![f32::NAN; np])
            .f32("loss_ring", vec![-1f32; 8]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = launch.params(pb.max_per_dim);
            let binds = [
                b(pb, "acts"),
                b(pb, "grads_act"),
                b(pb, "batch"),
                b(pb, "pair_loss"),
            ];
            pb.dispatch(&score_loss::GRAD, &binds, &p, grid);
            let binds = [b(pb, "pair_loss"), b(pb, "loss_ring")];
            pb.dispatch(&score_loss::SUM, &binds, &p, [1, 1, 1]);
        };
        let g = h.run_gpu(&bufs, None, &build)?;
        let c = h.run_cpu(&bufs, None, &build)?;
        let what = format!("score/loss users {nu} items {ni} pairs {np} dim {dim}");
        // dE sums, per pair, |dcos|·|other|/(ab) and |dcos·cos|·|own|/a²: an element where they cancel
        // (a row with one non-zero entry has a cosine gradient orthogonal to it) keeps their f32
        // rounding. The tolerance scales with those terms' magnitudes, computed here in f64, and with
        // the largest gradient.
        let e = &bufs.f32_of("acts")[8..];
        let terms = cosine_gradient_terms(e, nu, dim, (&pu, &pi, &labels), 1e-4, out_scale);
        let want = &c["grads_act"][4..];
        let max = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let tol: Vec<f32> = terms.iter().map(|t| t + 1e-3 * max).collect();
        let got = &g["grads_act"][4..];
        v.close_scaled(&format!("{what}: dE"), got, want, &tol, 1e-6, 1e-4);
        v.close(
            &format!("{what}: pair loss"),
            &g["pair_loss"],
            &c["pair_loss"],
            1e-5,
            1e-4,
        );
        v.close(
            &format!("{what}: mean loss"),
            &g["loss_ring"],
            &c["loss_ring"],
            1e-6,
            1e-5,
        );
        v.ensure(g["loss_ring"][2] == -1.0, || {
            format!("{what}: another ring slot was written")
        });
        v.ensure(g["loss_ring"][3] >= 0.0, || {
            format!("{what}: no loss written")
        });
    }
    Ok(())
}

/// Per element of the cosine + BCE gradient (rows × dim), the sum over pairs of the magnitudes of the
/// two terms it adds (`score_loss::cpu`'s formula, in f64): a bound on what its rounding can be.
fn cosine_gradient_terms(
    e: &[f32],
    nu: usize,
    dim: usize,
    (users, items, labels): (&[u32], &[u32], &[f32]),
    mu: f64,
    out_scale: f32,
) -> Vec<f32> {
    let row = |r: usize| &e[r * dim..(r + 1) * dim];
    let norm = |r: usize| {
        row(r)
            .iter()
            .map(|x| (*x as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut t = vec![0f64; e.len()];
    let n = users.len().max(1) as f64;
    for q in 0..users.len() {
        let (u, i) = (users[q] as usize, nu + items[q] as usize);
        let (a, b) = (norm(u).max(1e-8), norm(i).max(1e-8));
        let dot: f64 = row(u)
            .iter()
            .zip(row(i))
            .map(|(x, y)| *x as f64 * *y as f64)
            .sum();
        let cos = dot / (a * b);
        let (pred, _) = score_loss::bce(cos, labels[q] as f64, mu);
        let dcos = ((pred - labels[q] as f64) / (pred * (1.0 - pred)).max(1e-12) / n).abs();
        for (me, other, my_norm) in [(u, i, a), (i, u, b)] {
            for k in 0..dim {
                t[me * dim + k] += dcos
                    * ((row(other)[k] as f64).abs() / (a * b)
                        + (cos * row(me)[k] as f64).abs() / (my_norm * my_norm));
            }
        }
    }
    t.iter().map(|x| (x * out_scale as f64) as f32).collect()
}

/// The BPR loss's per-row gradients with the regulariser on the scored rows or on others.
pub fn bpr_loss(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (users, items, triples, dim, λ, spread of the entries: small and large scores, σ both ways,
    // whether the scored rows are the regularised ones (BPR-MF) or not (LightGCN))
    let cases = h.cases(&[
        (true, (1, 2, 1, 4, 0.0, 0.5, true)),
        (true, (7, 19, 40, 12, 1e-2, 0.5, true)),
        (false, (60, 300, 256, 64, 1e-3, 0.2, true)),
        (true, (30, 50, 100, 128, 0.1, 2.0, true)),
        (true, (30, 50, 100, 16, 0.1, 1.0, false)),
    ]);
    for (nu, ni, n, dim, lambda, spread, reg_rows) in cases {
        let users = uniform(rng, nu * dim, -spread, spread);
        let items = uniform(rng, ni * dim, -spread, spread);
        let reg_users = uniform(rng, nu * dim, -spread, spread);
        let reg_items = uniform(rng, ni * dim, -spread, spread);
        let mut pick =
            |k: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(0..k as u32)).collect() };
        let (u, i, j) = (pick(nu), pick(ni), pick(ni));
        let head = 5;
        let batch = [vec![9u32; head], u, i, j].concat();
        let (gu_off, gi_off) = (4, 4 + n * dim);
        let launch = bpr_loss::Launch {
            n,
            dim,
            u_off: head,
            i_off: head + n,
            j_off: head + 2 * n,
            gu_off,
            gi_off,
            lambda,
            reg_rows,
        };
        let bufs = Buffers::default()
            .f32("users", users)
            .f32("items", items)
            .f32("reg_users", reg_users)
            .f32("reg_items", reg_items)
            .u32("batch", batch)
            .f32("grads_act", vec![f32::NAN; 4 + 3 * n * dim])
            .f32("pair_loss", vec![f32::NAN; n])
            .f32("loss_ring", vec![-1f32; 8]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = launch.params(pb.max_per_dim);
            let binds = [
                b(pb, "users"),
                b(pb, "items"),
                b(pb, "batch"),
                b(pb, "grads_act"),
                b(pb, "pair_loss"),
                b(pb, if reg_rows { "users" } else { "reg_users" }),
                b(pb, if reg_rows { "items" } else { "reg_items" }),
            ];
            pb.dispatch(&bpr_loss::GRAD, &binds, &p, grid);
            let sum = score_loss::Params {
                n_pairs: n as u32,
                ring_slot: 3,
                ..Default::default()
            };
            let binds = [b(pb, "pair_loss"), b(pb, "loss_ring")];
            pb.dispatch(&score_loss::SUM, &binds, &sum, [1, 1, 1]);
        };
        let g = h.run_gpu(&bufs, None, &build)?;
        let c = h.run_cpu(&bufs, None, &build)?;
        let what = format!(
            "bpr loss users {nu} items {ni} triples {n} dim {dim} λ {lambda} reg rows {reg_rows}"
        );
        // Each gradient element is σ(−s)·(a row difference)/B + λ·row/B: f32 rounding of s (a sum of
        // 2·dim products) moves σ by ~1e-7·Σ|products|; bounded relative to the largest element.
        let want = &c["grads_act"][4..];
        let max = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let tol: Vec<f32> = want.iter().map(|x| x.abs() + 1e-2 * max).collect();
        v.close_scaled(
            &format!("{what}: gradients"),
            &g["grads_act"][4..],
            want,
            &tol,
            1e-7,
            1e-4,
        );
        v.close(
            &format!("{what}: triple losses"),
            &g["pair_loss"],
            &c["pair_loss"],
            1e-6,
            1e-5,
        );
        v.close(
            &format!("{what}: mean loss"),
            &g["loss_ring"],
            &c["loss_ring"],
            1e-6,
            1e-5,
        );
        v.ensure(g["grads_act"][..4].iter().all(|x| x.is_nan()), || {
            format!("{what}: wrote before its rows")
        });
        v.ensure(g["loss_ring"][2] == -1.0, || {
            format!("{what}: another ring slot was written")
        });
    }
    Ok(())
}

/// LightGCN's propagation layer and its regulariser.
pub fn propagate(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (rows of this side, rows of the other side, dim, max row length, total scale)
    let cases = h.cases(&[
        (true, (1, 1, 4, 1, 1.0)),
        (true, (37, 23, 12, 9, 1.0)),
        (false, (300, 120, 64, 40, 0.25)),
        (true, (20, 70, 1028, 30, 0.5)),
    ]);
    for (rows, others, dim, max_len, total_scale) in cases {
        let (ptr, idx) = random_csr(rng, rows, others, max_len);
        let mut degree = |n: usize| -> Vec<u32> {
            (0..n)
                .map(|_| propagate::degree_scale(rng.random_range(0..50usize)).to_bits())
                .collect()
        };
        let (s_out, s_in) = (degree(rows), degree(others));
        // A fake gradient index over this side's rows, as a batch holds it after 5 words of other data.
        let counts: Vec<u32> = (0..rows).map(|_| rng.random_range(0..3u32)).collect();
        let mut batch = vec![7u32; 5];
        batch.push(0);
        for c in &counts {
            let last = *batch.last().expect("pushed");
            batch.push(last + c);
        }
        let bufs = Buffers::default()
            .u32("ptr", ptr)
            .u32("idx", idx)
            .u32("s_out", s_out)
            .u32("s_in", s_in)
            .f32("x", uniform(rng, others * dim, -1.0, 1.0))
            .f32("y", vec![f32::NAN; rows * dim])
            .f32("total", uniform(rng, rows * dim, -1.0, 1.0))
            .f32("e0", uniform(rng, rows * dim, -1.0, 1.0))
            .u32("batch", batch)
            .f32("grad", uniform(rng, rows * dim, -1.0, 1.0));
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = propagate::layer_params(rows, dim, total_scale, pb.max_per_dim);
            let binds = ["ptr", "idx", "s_out", "s_in", "x", "y", "total"].map(|n| b(pb, n));
            pb.dispatch(&propagate::LAYER, &binds, &p, grid);
            let (p, grid) = propagate::regularise_params(rows, dim, 5, 0.01, pb.max_per_dim);
            let binds = ["e0", "batch", "grad"].map(|n| b(pb, n));
            pb.dispatch(&propagate::REGULARISE, &binds, &p, grid);
        };
        let (g, c, scale) = h.run_three(&bufs, None, &build)?;
        let what = format!("propagate rows {rows} others {others} dim {dim}");
        // Sums of up to max_len terms in f32 against f64.
        for out in ["y", "total", "grad"] {
            v.close_scaled(
                &format!("{what}: {out}"),
                &g[out],
                &c[out],
                &scale[out],
                1e-6,
                1e-5,
            );
        }
    }
    Ok(())
}

/// Dense Adam with coupled L2.
pub fn adam_dense(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let cases = h.cases(&[
        (true, (4, 1, 1e-3, 0.0)),
        (true, (1000, 3, 1e-2, 1e-3)),
        (false, (70_000, 50, 1e-5, 1e-2)),
    ]);
    for (n, t, lr, wd) in cases {
        let bufs = Buffers::default()
            .f32("theta", uniform(rng, n, -0.5, 0.5))
            .f32("grad", uniform(rng, n, -1e-2, 1e-2))
            .f32("m", uniform(rng, n, -1e-3, 1e-3))
            .f32("v", uniform(rng, n, 0.0, 1e-5));
        let step = AdamConfig::new(lr, wd).at_step(t);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = adam_dense::params(n, step, pb.max_per_dim);
            let binds = [b(pb, "theta"), b(pb, "grad"), b(pb, "m"), b(pb, "v")];
            pb.dispatch(&adam_dense::DEF, &binds, &p, grid);
        };
        let g = h.run_gpu(&bufs, None, &build)?;
        let c = h.run_cpu(&bufs, None, &build)?;
        let what = format!("adam n {n} t {t}");
        v.close(
            &format!("{what}: theta"),
            &g["theta"],
            &c["theta"],
            1e-7,
            1e-6,
        );
        v.close(&format!("{what}: m"), &g["m"], &c["m"], 1e-9, 1e-5);
        v.close(&format!("{what}: v"), &g["v"], &c["v"], 1e-12, 1e-5);
    }
    Ok(())
}

/// Row-gathered Adam on a table in chunks, and its gradient gather.
pub fn adam_table(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (table rows, batch rows, dim, max contributions per row, rows per chunk)
    let cases = h.cases(&[
        (true, (5, 3, 4, 3, 5)),
        (true, (301, 40, 36, 30, 64)),
        (false, (64, 100, 2056, 80, 64)),
    ]);
    for (rows, in_batch, dim, max_len, chunk_rows) in cases {
        // The transposed index: each table row's contributing batch rows, ascending (some rows none).
        let (ptr, idx) = random_csr(rng, rows, in_batch, max_len);
        let index = (2, 2 + ptr.len());
        let n = rows * dim;
        let bufs = Buffers::default()
            .table("theta", dim, uniform(rng, n, -0.1, 0.1))
            .table("m", dim, uniform(rng, n, -1e-3, 1e-3))
            .table("v", dim, uniform(rng, n, 0.0, 1e-5))
            .table("g", dim, vec![f32::NAN; n])
            .u32("batch", [vec![9u32; 2], ptr, idx].concat())
            .f32(
                "grads_act",
                [vec![0f32; 8], uniform(rng, in_batch * dim, -1.0, 1.0)].concat(),
            );
        let step = AdamConfig::new(1e-3, 1e-3).at_step(2);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (theta, m, vv, g) = (pb.id("theta"), pb.id("m"), pb.id("v"), pb.id("g"));
            for c in 0..pb.layout.chunks(theta) {
                let (p, grid) = adam_table::params(
                    pb.layout.chunk_rows(theta, c),
                    dim,
                    index,
                    8,
                    step,
                    pb.max_per_dim,
                );
                let (batch, dh) = (b(pb, "batch"), b(pb, "grads_act"));
                let ch = |id| pb.layout.chunk(id, c);
                pb.dispatch(&adam_table::GATHER, &[batch, dh, ch(g)], &p, grid);
                pb.dispatch(
                    &adam_table::STEP,
                    &[ch(theta), ch(m), ch(vv), batch, dh],
                    &p,
                    grid,
                );
            }
        };
        let (g, c, s) = h.run_three(&bufs, Some(chunk_rows), &build)?;
        let what = format!("adam table {rows}×{dim} in chunks of {chunk_rows}");
        v.close_scaled(
            &format!("{what}: gathered gradient"),
            &g["g"],
            &c["g"],
            &s["g"],
            1e-7,
            2e-6,
        );
        // θ moves by ≈ lr·m/√v: where v is tiny the step amplifies the gathered sum's f32 rounding, so
        // allow 0.1% of lr (a wrong gradient moves θ by ~lr).
        v.close(
            &format!("{what}: theta"),
            &g["theta"],
            &c["theta"],
            1e-6,
            1e-6,
        );
        // m and v carry the gathered sum: scale their tolerance by the sum's absolute terms.
        let m_scale: Vec<f32> = c["m"]
            .iter()
            .zip(&s["g"])
            .map(|(m, a)| m.abs() + 0.1 * a)
            .collect();
        let v_scale: Vec<f32> = c["v"]
            .iter()
            .zip(s["g"].iter().zip(&c["g"]))
            .map(|(x, (a, gr))| x.abs() + 2e-3 * a * gr.abs())
            .collect();
        v.close_scaled(
            &format!("{what}: m"),
            &g["m"],
            &c["m"],
            &m_scale,
            1e-9,
            2e-6,
        );
        v.close_scaled(
            &format!("{what}: v"),
            &g["v"],
            &c["v"],
            &v_scale,
            1e-12,
            2e-6,
        );
    }
    Ok(())
}

/// Lazy Adam on a table in chunks: only the rows with contributions step, each with its own step count
/// (counts below, at and past the end of the bias table), against the CPU twin; untouched rows keep
/// every bit; and a table whose rows are all touched at step count t − 1 takes exactly the dense
/// step t (the same f32 constants and arithmetic).
pub fn adam_table_lazy(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (table rows, batch rows, dim, max contributions per row, rows per chunk)
    let cases = h.cases(&[
        (true, (7, 3, 4, 3, 5)),
        (true, (301, 40, 36, 30, 64)),
        (false, (64, 100, 2056, 80, 64)),
    ]);
    let adam = AdamConfig::new(1e-3, 1e-3);
    let last = adam.bias_rows() as u32;
    for (rows, in_batch, dim, max_len, chunk_rows) in cases {
        let (ptr, idx) = random_csr(rng, rows, in_batch, max_len);
        let steps: Vec<u32> = (0..rows)
            .map(|_| [0, 1, 4, last - 1, last, last + 90][rng.random_range(0..6usize)])
            .collect();
        let index = (2, 2 + ptr.len());
        let n = rows * dim;
        let dh = [vec![0f32; 8], uniform(rng, in_batch * dim, -1.0, 1.0)].concat();
        let (theta, m, vv) = (
            uniform(rng, n, -0.1, 0.1),
            uniform(rng, n, -1e-3, 1e-3),
            uniform(rng, n, 0.0, 1e-5),
        );
        // The table and its moments, then the batch's index and the row step counts.
        let with = |batch: Vec<u32>, steps: Vec<u32>| {
            Buffers::default()
                .table("theta", dim, theta.clone())
                .table("m", dim, m.clone())
                .table("v", dim, vv.clone())
                .u32("batch", batch)
                .f32("grads_act", dh.clone())
                .u32("steps", steps)
                .f32("bias", adam.bias_table())
        };
        let bufs = with([vec![9u32; 2], ptr.clone(), idx].concat(), steps.clone());
        // The lazy step's plan over the table's chunks, with the batch's index at `index`.
        let lazy_at = |index: (usize, usize)| {
            move |pb: &mut PlanBuilder<'_, '_>| {
                let (theta, m, vv) = (pb.id("theta"), pb.id("m"), pb.id("v"));
                for c in 0..pb.layout.chunks(theta) {
                    let rows = pb.layout.chunk_rows(theta, c);
                    let (p, grid) =
                        adam_table::lazy_params(rows, dim, index, 8, &adam, pb.max_per_dim);
                    let ch = |id| pb.layout.chunk(id, c);
                    let (batch, dh) = (b(pb, "batch"), b(pb, "grads_act"));
                    let binds = [
                        ch(theta),
                        ch(m),
                        ch(vv),
                        batch,
                        dh,
                        b(pb, "steps"),
                        b(pb, "bias"),
                    ];
                    pb.dispatch(&adam_table::LAZY, &binds, &p, grid);
                }
            }
        };
        let lazy = lazy_at(index);
        let (g, c, s) = h.run_three(&bufs, Some(chunk_rows), &lazy)?;
        let what = format!("lazy adam table {rows}×{dim} in chunks of {chunk_rows}");
        let touched: Vec<bool> = ptr.windows(2).map(|w| w[1] > w[0]).collect();
        let want: Vec<u32> = steps
            .iter()
            .zip(&touched)
            .map(|(s, &t)| s + t as u32)
            .collect();
        v.identical(&format!("{what}: row step counts"), g.u32("steps"), &want);
        v.identical(
            &format!("{what}: row step counts (twin)"),
            c.u32("steps"),
            &want,
        );
        // Untouched rows keep every bit of θ, m and v.
        for name in ["theta", "m", "v"] {
            let input = bufs.f32_of(name);
            let kept = |o: &[f32]| -> Vec<u32> {
                (0..rows)
                    .filter(|&r| !touched[r])
                    .flat_map(|r| bits(&o[r * dim..(r + 1) * dim]))
                    .collect()
            };
            v.identical(
                &format!("{what}: untouched rows of {name}"),
                &kept(&g[name]),
                &kept(input),
            );
        }
        // The touched rows' update, as adam_table's (the same gathered sums): θ within 0.1% of lr,
        // m and v scaled by their terms' magnitudes (the twin on |inputs|: the gathered sum's
        // rounding, which v squares).
        v.close(
            &format!("{what}: theta"),
            &g["theta"],
            &c["theta"],
            1e-6,
            1e-6,
        );
        v.close_scaled(&format!("{what}: m"), &g["m"], &c["m"], &s["m"], 1e-9, 2e-6);
        v.close_scaled(
            &format!("{what}: v"),
            &g["v"],
            &c["v"],
            &s["v"],
            1e-12,
            4e-6,
        );

        // Every row touched, every count t − 1: exactly the dense step t.
        let t = 3u64;
        let full: Vec<u32> = (0..=rows as u32).collect();
        let one_each: Vec<u32> = (0..rows as u32).map(|r| r % in_batch as u32).collect();
        let dense = with(
            [vec![9u32; 2], full.clone(), one_each].concat(),
            vec![t as u32 - 1; rows],
        );
        let index = (2, 2 + full.len());
        let step_t = |pb: &mut PlanBuilder<'_, '_>| {
            let (theta, m, vv) = (pb.id("theta"), pb.id("m"), pb.id("v"));
            for c in 0..pb.layout.chunks(theta) {
                let rows = pb.layout.chunk_rows(theta, c);
                let (p, grid) =
                    adam_table::params(rows, dim, index, 8, adam.at_step(t), pb.max_per_dim);
                let ch = |id| pb.layout.chunk(id, c);
                let (batch, dh) = (b(pb, "batch"), b(pb, "grads_act"));
                pb.dispatch(
                    &adam_table::STEP,
                    &[ch(theta), ch(m), ch(vv), batch, dh],
                    &p,
                    grid,
                );
            }
        };
        let lazy_all = lazy_at(index);
        let d = h.run_gpu(&dense, Some(chunk_rows), &step_t)?;
        let l = h.run_gpu(&dense, Some(chunk_rows), &lazy_all)?;
        for name in ["theta", "m", "v"] {
            v.identical(
                &format!("{what}: every row touched: lazy {name} = dense step {t}'s"),
                &bits(&l[name]),
                &bits(&d[name]),
            );
        }
    }
    Ok(())
}

/// The tables' gradient index built on the GPU (membership, counts, scan, fill) is the host's.
pub fn batch_index(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    use crate::batch::{HostBatch, IndexStrategy};
    use crate::gpu::cpu::CpuExec;
    use crate::gpu::exec::GpuExec;
    use crate::gpu::executor::Executor;
    use crate::gpu::memory::MemoryLayout;
    use crate::models::Model;
    let (n, m) = if h.quick { (30, 25) } else { (70, 55) };
    let (by_user, by_item) = toy_data(rng, n, m, 0.12);
    let pairs = toy_pairs(rng, &by_user, m, 12, 4);
    let mdl = super::models::two_tower(
        crate::models::STUDY_PAIR[0], // CoBraR
        "8,4",
        0.0,
        &by_user,
        &by_item,
        pairs.len(),
    )
    .with_index(IndexStrategy::Gpu);
    let host = HostBatch::build(&pairs, &by_user, &by_item, IndexStrategy::Host);
    let batch = mdl.build_batch(&pairs);
    let on = |e: &mut dyn Executor<Real = f32>| -> anyhow::Result<Vec<u32>> {
        let layout = e.layout().clone();
        for (name, data) in mdl.resident() {
            e.write_u32(layout.id(name), data)?;
        }
        let mut pb = PlanBuilder::new(&layout, e.max_per_dim());
        mdl.index_plan(&mut pb, &batch);
        e.run(&pb.finish())?;
        e.read_u32(layout.id("batch_index"))
    };
    let layout = MemoryLayout::new(mdl.index_buffers(), 1 << 30, None)?;
    let gpu_index = on(&mut GpuExec::new(h.ctx.clone(), layout.clone())?)?;
    let cpu_index = on(&mut CpuExec::<f32>::new(layout))?;
    let rows = n + m + 1;
    for (who, index) in [("gpu", &gpu_index), ("cpu twin", &cpu_index)] {
        for (table, (ptr, list)) in [
            ("W_U", host.user_table_index()),
            ("W_T", host.item_table_index()),
        ] {
            let base = if table == "W_U" { 0 } else { m };
            for t in 0..ptr.len() - 1 {
                let want = &list[ptr[t] as usize..ptr[t + 1] as usize];
                let (a, bb) = (index[base + t] as usize, index[base + t + 1] as usize);
                let got = index.get(rows + a..rows + bb).unwrap_or(&[]);
                v.identical(&format!("{who} gradient index: {table} row {t}"), got, want);
            }
        }
    }
    Ok(())
}

/// The transposed sparse projection (MultVAE's input gradient) over chunks, scales and dropout.
pub fn spmm_transpose(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (entities, table rows, dim, batch rows, max row length, rows per chunk, row scale, dropout)
    let cases = h.cases(&[
        (true, (10, 7, 4, 3, 7, 7, false, 0.0)),
        (true, (80, 301, 12, 33, 60, 64, true, 0.0)),
        (false, (80, 301, 600, 33, 60, 100, true, 0.5)),
        (true, (40, 120, 20, 17, 50, 120, false, 0.3)),
    ]);
    for (n_ent, t_rows, dim, n_rows, max_len, chunk_rows, row_scale, rate) in cases {
        let csr = csr_rows(rng, n_ent, t_rows, max_len);
        let users: Vec<u32> = rand::seq::index::sample(rng, n_ent, n_rows)
            .into_iter()
            .map(|u| u as u32)
            .collect();
        let vb = VaeBatch::build(&users, &csr, t_rows);
        let dropout = Dropout::new(rate, rng.random(), rng.random_range(1..1000), 0);
        let bufs = Buffers::default()
            .u32("batch", vb.image.clone())
            .u32("ptr", csr.offsets.clone())
            .f32(
                "grads_act",
                [vec![0f32; 4], uniform(rng, n_rows * dim, -1.0, 1.0)].concat(),
            )
            .table("grad", dim, vec![f32::NAN; t_rows * dim]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let grad = pb.id("grad");
            for c in 0..pb.layout.chunks(grad) {
                let launch = spmm_transpose::Launch {
                    chunk: pb.layout.chunk_rows(grad, c),
                    dim,
                    ptr_off: vb.ptr_off,
                    list_off: vb.list_off,
                    ids_off: 0,
                    dz_off: 4,
                    row_scale,
                    dropout,
                };
                let (p, grid) = launch.params(pb.max_per_dim);
                let binds = [
                    b(pb, "batch"),
                    b(pb, "ptr"),
                    b(pb, "grads_act"),
                    pb.layout.chunk(grad, c),
                ];
                pb.dispatch(&spmm_transpose::DEF, &binds, &p, grid);
            }
        };
        let (g, c, s) = h.run_three(&bufs, Some(chunk_rows), &build)?;
        let what = format!(
            "spmm_transpose {n_rows} rows, dim {dim}, chunks of {chunk_rows}, scale {row_scale}, \
             dropout {rate}"
        );
        v.close_scaled(&what, &g["grad"], &c["grad"], &s["grad"], 1e-7, 2e-6);
        // Table rows no batch row holds are zero, every one written.
        v.ensure(g["grad"].iter().all(|x| x.is_finite()), || {
            format!("{what}: rows left unwritten")
        });
    }
    Ok(())
}

/// MultVAE's reparameterisation, KL and blocked softmax.
pub fn vae(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (users in the batch, items, latent width, logit rows per block)
    let cases = h.cases(&[
        (true, (1, 5, 4, 1)),
        (true, (9, 43, 8, 4)),
        (false, (33, 1683, 64, 33)),
    ]);
    for (n, m, d, block) in cases {
        let csr = csr_rows(rng, n + 3, m, 40);
        let users: Vec<u32> = (0..n as u32).map(|u| u + 3).collect();
        let m4 = m.next_multiple_of(4);
        let (mulv, z, logits) = (4, 4 + n * 2 * d, 4 + n * 3 * d);
        let len = logits + block * m4;
        let mut acts = vec![0f32; len];
        // Logits of one block; padding columns hold a large value the softmax must ignore.
        for (k, x) in acts[logits..].iter_mut().enumerate() {
            *x = if k % m4 >= m {
                50.0
            } else {
                rng.random_range(-3.0..3.0)
            };
        }
        for r in 0..n {
            for k in 0..d {
                acts[mulv + r * 2 * d + k] = rng.random_range(-1.0..1.0);
                acts[mulv + r * 2 * d + d + k] = rng.random_range(-2.0..1.0);
            }
        }
        let bufs = Buffers::default()
            .f32("acts", acts)
            .f32("grads_act", uniform(rng, len, -1.0, 1.0))
            .u32("batch", users)
            .u32("ptr", csr.offsets.clone())
            .u32("idx", csr.indices.clone())
            .f32("row_loss", vec![f32::NAN; n]);
        let lay = vae::Layout {
            rows: n,
            d,
            mulv_off: mulv,
            z_off: z,
            ids_off: 0,
            n_items: m,
        };
        let noise = vae::noise_key(7, 3);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let max = pb.max_per_dim;
            let (p, grid) = lay.reparam(Some(noise), max);
            pb.dispatch(&vae::REPARAM, &[b(pb, "acts")], &p, grid);
            for row0 in (0..n).step_by(block) {
                let rows = block.min(n - row0);
                let (p, grid) = lay.softmax(row0, rows, logits, max);
                let binds =
                    ["acts", "grads_act", "batch", "ptr", "idx", "row_loss"].map(|x| b(pb, x));
                pb.dispatch(&vae::SOFTMAX, &binds, &p, grid);
            }
            let (p, grid) = lay.kl(noise, 0.15, max);
            let binds = [b(pb, "acts"), b(pb, "grads_act"), b(pb, "row_loss")];
            pb.dispatch(&vae::KL, &binds, &p, grid);
        };
        let (g, c) = (
            h.run_gpu(&bufs, None, &build)?,
            h.run_cpu(&bufs, None, &build)?,
        );
        let what = format!("vae stages, {n} users, {m} items, d {d}, blocks of {block}");
        v.close(&format!("{what}: z"), &g["acts"], &c["acts"], 1e-5, 1e-5);
        v.close(
            &format!("{what}: gradients"),
            &g["grads_act"],
            &c["grads_act"],
            1e-6,
            1e-4,
        );
        v.close(
            &format!("{what}: row losses"),
            &g["row_loss"],
            &c["row_loss"],
            1e-4,
            1e-5,
        );
        // The last block's padding columns get no gradient.
        let last = logits + (n - 1) % block * m4;
        v.ensure(
            g["grads_act"][last + m..last + m4]
                .iter()
                .all(|&x| x == 0.0),
            || format!("{what}: padding columns got a gradient"),
        );
    }
    Ok(())
}

/// The strided copy that lays out MultVAE's item embeddings.
pub fn strided_copy(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    // (rows, width, values, row stride, column stride, tail)
    let cases = h.cases(&[
        (true, (3, 8, 5, 5, 1, 1.0)),
        (true, (17, 604, 601, 1, 1003, 0.0)),
    ]);
    for (rows, width, n, rs, cs, tail) in cases {
        let src_len = 4 + rows * rs + n * cs;
        let bufs = Buffers::default()
            .f32("src", uniform(rng, src_len, -1.0, 1.0))
            .f32("dst", vec![f32::NAN; 8 + rows * width]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let launch = strided_copy::Launch {
                rows,
                width,
                n,
                src_off: 4,
                row_stride: rs,
                col_stride: cs,
                dst_off: 8,
                tail,
            };
            let (p, grid) = launch.params(pb.max_per_dim);
            pb.dispatch(&strided_copy::DEF, &[b(pb, "src"), b(pb, "dst")], &p, grid);
        };
        let (g, c) = (
            h.run_gpu(&bufs, None, &build)?,
            h.run_cpu(&bufs, None, &build)?,
        );
        let what = format!("strided copy {rows}×{width}");
        v.identical(&what, &bits(&g["dst"][8..]), &bits(&c["dst"][8..]));
        let src = bufs.f32_of("src");
        v.ensure(
            c["dst"][8 + width + 1] == src[4 + rs + cs] && c["dst"][8 + n] == tail,
            || format!("{what}: the twin copied the wrong elements"),
        );
    }
    Ok(())
}

/// The count of non-finite parameters (the divergence check) and the plain copy (the bandwidth probe).
pub fn reduce_and_copy(h: &Harness, rng: &mut Rng, v: &mut Verdict) -> Result {
    let cases = h.cases(&[(true, 8), (true, 4100), (false, 300_000)]);
    for n in cases {
        let mut x = uniform(rng, n, -1.0, 1.0);
        let bad = rng.random_range(0..=n.min(7));
        for k in 0..bad {
            let at = rng.random_range(0..n);
            x[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][k % 3];
        }
        let bufs = Buffers::default()
            .f32("x", x)
            .f32("y", vec![f32::NAN; n])
            .u32("counts", vec![3, 0]);
        let build = |pb: &mut PlanBuilder<'_, '_>| {
            let (p, grid) = reduce::params(n, 1, pb.max_per_dim);
            pb.dispatch(
                &reduce::COUNT_NONFINITE,
                &[b(pb, "x"), b(pb, "counts")],
                &p,
                grid,
            );
            let (p, grid) = copy::params(n, 4, pb.max_per_dim);
            pb.dispatch(&copy::DEF, &[b(pb, "x"), b(pb, "y")], &p, grid);
        };
        let (g, c) = (
            h.run_gpu(&bufs, None, &build)?,
            h.run_cpu(&bufs, None, &build)?,
        );
        v.identical(
            &format!("non-finite count of {n} values"),
            g.u32("counts"),
            c.u32("counts"),
        );
        v.identical(
            &format!("copy of {n} values"),
            &bits(&g["y"]),
            &bits(&c["y"]),
        );
        let counted = c.u32("counts")[1] as usize;
        let truth = bufs.f32_of("x").iter().filter(|x| !x.is_finite()).count();
        v.ensure(counted == truth, || {
            format!("non-finite count: the twin counted {counted}, there are {truth}")
        });
    }
    Ok(())
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
