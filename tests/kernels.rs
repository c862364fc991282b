//! Every GPU stage against its CPU twin on fresh random inputs (seed printed; replay with
//! COBRAR_TEST_SEED), over shapes with ragged edges. Tolerances are stated per test: sums of n terms are
//! compared with |gpu − cpu| ≤ atol + rtol·Σ|terms| (f32 on the GPU against f64 accumulation).

#![allow(clippy::needless_range_loop)] // segment loops index several parallel arrays

mod common;

use cobrar_gpu::gpu::buffers::{self, ChunkedTable};
use cobrar_gpu::kernels::adam_dense::{self, AdamConfig};
use cobrar_gpu::kernels::score_loss::{self, BatchRegions, Pairs};
use cobrar_gpu::kernels::{
    adam_table, dense_backward_data, dense_backward_weight, sparse_proj_bias_grad,
    sparse_proj_forward,
};
use common::{assert_close, assert_close_scaled, dispatch, gpu, random_csr, rng, uniform};
use rand::RngExt;

fn relu_like(rng: &mut rand_pcg::Pcg64Mcg, n: usize) -> Vec<f32> {
    uniform(rng, n, -0.5, 1.0)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

#[test]
fn dense_backward_data_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("dense_backward_data");
    let kernel = dense_backward_data::kernel(&ctx).unwrap();
    // (rows per segment, d_in, d_out, in_scale)
    let cases = [
        ([1, 0], 4, 4, 1.0),
        ([37, 0], 20, 12, 1.0),
        ([300, 0], 132, 260, 2.0),
        ([70, 5], 68, 36, 1.0),
    ];
    for (rows, d_in, d_out, in_scale) in cases {
        let segs = if rows[1] > 0 { 2 } else { 1 };
        let wlen = (d_in + 1) * d_out;
        let mut params = vec![0f32; 4];
        let mut acts = vec![0f32; 4];
        let mut grads_act = vec![0f32; 8];
        let mut segments = Vec::new();
        let mut inputs = Vec::new();
        for s in 0..segs {
            let w_off = params.len();
            params.extend(uniform(&mut rng, wlen, -0.3, 0.3));
            let x_off = acts.len();
            let x = relu_like(&mut rng, rows[s] * d_in);
            acts.extend(&x);
            let dz_off = grads_act.len();
            let dz = uniform(&mut rng, rows[s] * d_out, -1.0, 1.0);
            grads_act.extend(&dz);
            let dx_off = grads_act.len();
            grads_act.extend(vec![f32::NAN; rows[s] * d_in]);
            segments.push(dense_backward_data::Segment {
                rows: rows[s],
                dz_off,
                dx_off,
                x_off,
                w_off,
            });
            inputs.push((x, dz));
        }
        let pb = buffers::storage_init(&ctx, "params", &params).unwrap();
        let ab = buffers::storage_init(&ctx, "acts", &acts).unwrap();
        let gb = buffers::storage_init(&ctx, "grads_act", &grads_act).unwrap();
        let p = dense_backward_data::Params::new(&segments, d_in, d_out, in_scale);
        dispatch(&ctx, &kernel, &[&pb, &ab, &gb], &p, p.workgroups(&segments));
        let out = buffers::read::<f32>(&ctx, &gb, 0, grads_act.len()).unwrap();
        for (s, seg) in segments.iter().enumerate() {
            let (x, dz) = &inputs[s];
            let wb = &params[seg.w_off..seg.w_off + wlen];
            let want = dense_backward_data::cpu(dz, seg.rows, d_in, d_out, wb, x, in_scale);
            let scale =
                dense_backward_data::cpu(&abs(dz), seg.rows, d_in, d_out, &abs(wb), x, in_scale);
            let got = &out[seg.dx_off..seg.dx_off + seg.rows * d_in];
            let what = format!("dense backward data rows {rows:?} {d_in}→{d_out} segment {s}");
            assert_close_scaled(&what, got, &want, &scale, 1e-6, 2e-6);
        }
    }
}

#[test]
fn dense_backward_weight_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("dense_backward_weight");
    let kernel = dense_backward_weight::kernel(&ctx).unwrap();
    let cases = [
        ([1, 0], 4, 4),
        ([37, 0], 20, 12),
        ([1000, 0], 132, 68),
        ([70, 45], 64, 128),
        ([3, 1], 8, 4),
    ];
    for (rows, d_in, d_out) in cases {
        let segs = if rows[1] > 0 { 2 } else { 1 };
        let glen = (d_in + 1) * d_out;
        let mut acts = vec![0f32; 4];
        let mut grads_act = vec![0f32; 4];
        let mut grads = vec![f32::NAN; 4 + segs * glen];
        let mut segments = Vec::new();
        let mut inputs = Vec::new();
        for s in 0..segs {
            let x_off = acts.len();
            let x = relu_like(&mut rng, rows[s] * d_in);
            acts.extend(&x);
            let dz_off = grads_act.len();
            let dz = uniform(&mut rng, rows[s] * d_out, -1.0, 1.0);
            grads_act.extend(&dz);
            segments.push(dense_backward_weight::Segment {
                rows: rows[s],
                x_off,
                dz_off,
                g_off: 4 + s * glen,
            });
            inputs.push((x, dz));
        }
        grads[..4].fill(0.0);
        let ab = buffers::storage_init(&ctx, "acts", &acts).unwrap();
        let db = buffers::storage_init(&ctx, "grads_act", &grads_act).unwrap();
        let gb = buffers::storage_init(&ctx, "grads", &grads).unwrap();
        let p = dense_backward_weight::Params::new(&segments, d_in, d_out);
        dispatch(&ctx, &kernel, &[&ab, &db, &gb], &p, p.workgroups(&segments));
        let out = buffers::read::<f32>(&ctx, &gb, 0, grads.len()).unwrap();
        for (s, seg) in segments.iter().enumerate() {
            let (x, dz) = &inputs[s];
            let want = dense_backward_weight::cpu(x, dz, seg.rows, d_in, d_out);
            let scale = dense_backward_weight::cpu(x, &abs(dz), seg.rows, d_in, d_out);
            let what = format!("dense backward weight rows {rows:?} {d_in}→{d_out} segment {s}");
            assert_close_scaled(
                &what,
                &out[seg.g_off..seg.g_off + glen],
                &want,
                &scale,
                1e-6,
                2e-6,
            );
        }
    }
}

#[test]
fn score_loss_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("score_loss");
    let grad = score_loss::grad_kernel(&ctx).unwrap();
    let sum = score_loss::sum_kernel(&ctx).unwrap();
    // (users, items, pairs, dim, out_scale)
    let cases = [
        (1, 1, 1, 4, 1.0),
        (5, 17, 40, 12, 1.0),
        (60, 300, 360, 64, 1.0),
        (33, 80, 198, 132, 2.0),
    ];
    for (nu, ni, np, dim, out_scale) in cases {
        let rows = nu + ni;
        let mut e = relu_like(&mut rng, rows * dim);
        if rows > 2 {
            e[dim..2 * dim].fill(0.0); // an all-zero embedding: the norm clamp path
        }
        let mut pu: Vec<u32> = (0..np).map(|_| rng.random_range(0..nu as u32)).collect();
        let pi: Vec<u32> = (0..np).map(|_| rng.random_range(0..ni as u32)).collect();
        pu[0] = 1.min(nu as u32 - 1);
        let labels: Vec<f32> = (0..np)
            .map(|q| {
                if q % 6 == 0 {
                    1.0
                } else if q % 7 == 0 {
                    0.6
                } else {
                    0.0
                }
            })
            .collect();
        let pairs = Pairs {
            user: &pu,
            item: &pi,
            label: &labels,
        };
        let (ptr, idx) = score_loss::pair_rows(nu, ni, pairs);
        let mut batch: Vec<u32> = vec![7; 3];
        let regions = BatchRegions {
            pair_user: batch.len(),
            pair_item: batch.len() + np,
            pair_label: batch.len() + 2 * np,
            row_ptr: batch.len() + 3 * np,
            row_pairs: batch.len() + 3 * np + ptr.len(),
        };
        batch.extend(&pu);
        batch.extend(&pi);
        batch.extend(labels.iter().map(|l| l.to_bits()));
        batch.extend(&ptr);
        batch.extend(&idx);
        let mu = 1e-4;
        let acts: Vec<f32> = [vec![0.0; 8], e.clone()].concat();
        let ab = buffers::storage_init(&ctx, "acts", &acts).unwrap();
        let gb = buffers::storage_init(&ctx, "grads_act", &vec![f32::NAN; 4 + rows * dim]).unwrap();
        let bb = buffers::storage_init(&ctx, "batch", &batch).unwrap();
        let lb = buffers::storage_init(&ctx, "pair_loss", &vec![f32::NAN; np]).unwrap();
        let rb = buffers::storage_init(&ctx, "loss_ring", &[0f32; 8]).unwrap();
        let p = score_loss::Params::new(&ctx, nu, ni, np, dim, 8, 4, regions, mu, out_scale, 3);
        dispatch(
            &ctx,
            &grad,
            &[&ab, &gb, &bb, &lb, &rb],
            &p,
            p.workgroups(&ctx),
        );
        dispatch(&ctx, &sum, &[&ab, &gb, &bb, &lb, &rb], &p, [1, 1, 1]);
        let want = score_loss::cpu(&e, nu, ni, dim, pairs, mu, out_scale);
        let what = format!("score/loss users {nu} items {ni} pairs {np} dim {dim}");
        let d_e = buffers::read::<f32>(&ctx, &gb, 4, rows * dim).unwrap();
        // dE sums pair terms of magnitude ≤ |dcos|·(|other|/(ab) + |own|/a²); bound by max |want| row-wise.
        let tol: Vec<f32> = want
            .d_e
            .iter()
            .map(|v| v.abs() + 1e-3 * want.d_e.iter().fold(0f32, |m, x| m.max(x.abs())))
            .collect();
        assert_close_scaled(&format!("{what}: dE"), &d_e, &want.d_e, &tol, 1e-7, 1e-4);
        let losses = buffers::read::<f32>(&ctx, &lb, 0, np).unwrap();
        let want_losses: Vec<f32> = want.pair_loss.iter().map(|v| *v as f32).collect();
        assert_close(
            &format!("{what}: pair loss"),
            &losses,
            &want_losses,
            1e-5,
            1e-4,
        );
        let ring = buffers::read::<f32>(&ctx, &rb, 0, 8).unwrap();
        assert_close(
            &format!("{what}: mean loss"),
            &ring[3..4],
            &[want.loss as f32],
            1e-6,
            1e-5,
        );
        assert_eq!(ring[2], 0.0, "{what}: other ring slots untouched");
    }
}

#[test]
fn sparse_proj_forward_matches_cpu_twin_over_chunks() {
    let ctx = gpu();
    let mut rng = rng("sparse_proj_forward");
    let kernel = sparse_proj_forward::kernel(&ctx).unwrap();
    // (entities, table rows, dim, batch rows, max row length, rows per chunk)
    let cases = [
        (10, 7, 4, 1, 7, 7),
        (50, 300, 36, 20, 40, 300),
        (200, 90, 2056, 64, 30, 90),
        (80, 301, 12, 33, 60, 64),
    ];
    for (n_entities, t_rows, dim, n_rows, max_len, chunk_rows) in cases {
        let (ptr, idx) = random_csr(&mut rng, n_entities, t_rows, max_len);
        let table = uniform(&mut rng, t_rows * dim, -0.1, 0.1);
        let bias = uniform(&mut rng, dim, -0.1, 0.1);
        let ids: Vec<u32> = (0..n_rows)
            .map(|_| rng.random_range(0..n_entities as u32))
            .collect();
        let t = ChunkedTable::with_chunk_rows(&ctx, "table", t_rows, dim, chunk_rows).unwrap();
        t.upload(&ctx, &table);
        let ptr_b = buffers::storage_init(&ctx, "ptr", &ptr).unwrap();
        let idx_b = buffers::storage_init(&ctx, "idx", &idx).unwrap();
        let batch: Vec<u32> = [vec![0u32; 5], ids.clone()].concat();
        let bb = buffers::storage_init(&ctx, "batch", &batch).unwrap();
        let params: Vec<f32> = [vec![0f32; 4], bias.clone()].concat();
        let pb = buffers::storage_init(&ctx, "params", &params).unwrap();
        let acts = buffers::storage_init(&ctx, "acts", &vec![f32::NAN; 8 + n_rows * dim]).unwrap();
        let n_chunks = t.chunks.len();
        for (c, chunk) in t.chunks.iter().enumerate() {
            let l = sparse_proj_forward::Launch {
                n_rows,
                ids_off: 5,
                h_off: 8,
                dim,
                chunk: t.chunk_rows(c),
                b_off: 4,
                first: c == 0,
                last: c + 1 == n_chunks,
            };
            let p = sparse_proj_forward::Params::new(&ctx, l);
            dispatch(
                &ctx,
                &kernel,
                &[chunk, &ptr_b, &idx_b, &bb, &pb, &acts],
                &p,
                p.workgroups(&ctx),
            );
        }
        let got = buffers::read::<f32>(&ctx, &acts, 8, n_rows * dim).unwrap();
        let want = sparse_proj_forward::cpu(&table, dim, &ptr, &idx, &ids, &bias);
        let scale = sparse_proj_forward::cpu(&abs(&table), dim, &ptr, &idx, &ids, &abs(&bias));
        let what = format!("sparse projection {n_rows} rows, dim {dim}, {n_chunks} chunk(s)");
        assert_close_scaled(&what, &got, &want, &scale, 1e-7, 2e-6);
    }
}

#[test]
fn sparse_proj_bias_grad_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("sparse_proj_bias_grad");
    let kernel = sparse_proj_bias_grad::kernel(&ctx).unwrap();
    for (nu, ni, dim) in [(1, 1, 4), (37, 250, 268), (300, 5, 2048)] {
        let dh = uniform(&mut rng, (nu + ni) * dim, -1.0, 1.0);
        let gab = buffers::storage_init(&ctx, "grads_act", &[vec![0f32; 4], dh.clone()].concat())
            .unwrap();
        let gb = buffers::storage_init(&ctx, "grads", &vec![f32::NAN; 4 + 2 * dim]).unwrap();
        let p = sparse_proj_bias_grad::Params::new([(nu, 4, 4), (ni, 4 + nu * dim, 4 + dim)], dim);
        dispatch(&ctx, &kernel, &[&gab, &gb], &p, p.workgroups());
        let got = buffers::read::<f32>(&ctx, &gb, 4, 2 * dim).unwrap();
        let (du, di) = dh.split_at(nu * dim);
        let want = [
            sparse_proj_bias_grad::cpu(du, nu, dim),
            sparse_proj_bias_grad::cpu(di, ni, dim),
        ]
        .concat();
        let scale = [
            sparse_proj_bias_grad::cpu(&abs(du), nu, dim),
            sparse_proj_bias_grad::cpu(&abs(di), ni, dim),
        ]
        .concat();
        assert_close_scaled(
            &format!("bias grad {nu}+{ni} rows dim {dim}"),
            &got,
            &want,
            &scale,
            1e-7,
            2e-6,
        );
    }
}

#[test]
fn adam_dense_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("adam_dense");
    let kernel = adam_dense::kernel(&ctx).unwrap();
    for (n, t, lr, wd) in [
        (4, 1, 1e-3, 0.0),
        (1000, 3, 1e-2, 1e-3),
        (70_000, 50, 1e-5, 1e-2),
    ] {
        let theta = uniform(&mut rng, n, -0.5, 0.5);
        let grad = uniform(&mut rng, n, -1e-2, 1e-2);
        let m = uniform(&mut rng, n, -1e-3, 1e-3);
        let v = uniform(&mut rng, n, 0.0, 1e-5);
        let step = AdamConfig::new(lr, wd).at_step(t);
        let tb = buffers::storage_init(&ctx, "theta", &theta).unwrap();
        let gb = buffers::storage_init(&ctx, "grad", &grad).unwrap();
        let mb = buffers::storage_init(&ctx, "m", &m).unwrap();
        let vb = buffers::storage_init(&ctx, "v", &v).unwrap();
        let p = adam_dense::Params::new(&ctx, n, step);
        dispatch(&ctx, &kernel, &[&tb, &gb, &mb, &vb], &p, p.workgroups(&ctx));
        let (mut th_c, mut m_c, mut v_c) = (theta.clone(), m.clone(), v.clone());
        adam_dense::cpu(&mut th_c, &grad, &mut m_c, &mut v_c, &step);
        let what = format!("adam n {n} t {t}");
        assert_close(
            &format!("{what}: theta"),
            &buffers::read(&ctx, &tb, 0, n).unwrap(),
            &th_c,
            1e-7,
            1e-6,
        );
        assert_close(
            &format!("{what}: m"),
            &buffers::read(&ctx, &mb, 0, n).unwrap(),
            &m_c,
            1e-9,
            1e-5,
        );
        assert_close(
            &format!("{what}: v"),
            &buffers::read(&ctx, &vb, 0, n).unwrap(),
            &v_c,
            1e-12,
            1e-5,
        );
    }
}

#[test]
fn adam_table_matches_cpu_twin_over_chunks() {
    let ctx = gpu();
    let mut rng = rng("adam_table");
    let kernel = adam_table::kernel(&ctx).unwrap();
    // (table rows, batch rows, dim, max contributions per row, rows per chunk)
    for (rows, in_batch, dim, max_len, chunk_rows) in [
        (5, 3, 4, 3, 5),
        (301, 40, 36, 30, 64),
        (64, 100, 2056, 80, 64),
    ] {
        // The transposed index: each table row's contributing batch rows, ascending (some rows none).
        let (ptr, idx) = random_csr(&mut rng, rows, in_batch, max_len);
        let dh = uniform(&mut rng, in_batch * dim, -1.0, 1.0);
        let theta = uniform(&mut rng, rows * dim, -0.1, 0.1);
        let m = uniform(&mut rng, rows * dim, -1e-3, 1e-3);
        let v = uniform(&mut rng, rows * dim, 0.0, 1e-5);
        let step = AdamConfig::new(1e-3, 1e-3).at_step(2);
        let tables: Vec<ChunkedTable> = ["theta", "m", "v"]
            .iter()
            .map(|l| ChunkedTable::with_chunk_rows(&ctx, l, rows, dim, chunk_rows).unwrap())
            .collect();
        tables[0].upload(&ctx, &theta);
        tables[1].upload(&ctx, &m);
        tables[2].upload(&ctx, &v);
        let batch: Vec<u32> = [vec![9u32; 2], ptr.clone(), idx.clone()].concat();
        let bb = buffers::storage_init(&ctx, "batch", &batch).unwrap();
        let db = buffers::storage_init(&ctx, "grads_act", &[vec![0f32; 8], dh.clone()].concat())
            .unwrap();
        for c in 0..tables[0].chunks.len() {
            let index = (2, 2 + ptr.len());
            let p = adam_table::Params::new(&ctx, tables[0].chunk_rows(c), dim, index, 8, step);
            let bufs = [
                &tables[0].chunks[c],
                &tables[1].chunks[c],
                &tables[2].chunks[c],
                &bb,
                &db,
            ];
            dispatch(&ctx, &kernel, &bufs, &p, p.workgroups(&ctx));
        }
        let grad = adam_table::grad_cpu(&ptr, &idx, &dh, dim);
        let (mut th_c, mut m_c, mut v_c) = (theta.clone(), m.clone(), v.clone());
        adam_dense::cpu(&mut th_c, &grad, &mut m_c, &mut v_c, &step);
        let what = format!(
            "adam table {rows}×{dim} in {} chunk(s)",
            tables[0].chunks.len()
        );
        assert_close(
            &format!("{what}: theta"),
            &tables[0].read(&ctx).unwrap(),
            &th_c,
            1e-7,
            1e-6,
        );
        // m and v carry the gathered sum: scale their tolerance by the sum's absolute terms.
        let abs_grad = adam_table::grad_cpu(&ptr, &idx, &abs(&dh), dim);
        let m_scale: Vec<f32> = m_c
            .iter()
            .zip(&abs_grad)
            .map(|(m, g)| m.abs() + 0.1 * g)
            .collect();
        let v_scale: Vec<f32> = v_c
            .iter()
            .zip(abs_grad.iter().zip(&grad))
            .map(|(v, (a, g))| v.abs() + 2e-3 * a * g.abs())
            .collect();
        let got_m = tables[1].read(&ctx).unwrap();
        let got_v = tables[2].read(&ctx).unwrap();
        assert_close_scaled(&format!("{what}: m"), &got_m, &m_c, &m_scale, 1e-9, 2e-6);
        assert_close_scaled(&format!("{what}: v"), &got_v, &v_c, &v_scale, 1e-12, 2e-6);
    }
}
