//! Dense layer forward: GPU kernel against its CPU twin on fresh random inputs, over shapes that are not
//! tile multiples, a single row, two segments (DeepMF) and dropout.
//! Tolerance: |gpu − cpu| ≤ 1e-6 + 2e-6·Σ_k |x_k·w_k| (f32 accumulation of d_in + 1 terms against f64).

mod common;

use cobrar_gpu::gpu::buffers;
use cobrar_gpu::gpu::uniforms::UniformArena;
use cobrar_gpu::kernels::Dropout;
use cobrar_gpu::kernels::dense_forward::{self, Params, Segment};
use common::{assert_close_scaled, gpu, rng, uniform};

/// Magnitude bound of each output's sum, for the tolerance.
fn abs_sums(x: &[f32], rows: usize, d_in: usize, wb: &[f32], d_out: usize) -> Vec<f32> {
    let xa: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let wa: Vec<f32> = wb.iter().map(|v| v.abs()).collect();
    dense_forward::cpu(&xa, rows, d_in, &wa, d_out, Dropout::NONE, 0)
}

struct Case {
    rows: [usize; 2],
    d_in: usize,
    d_out: usize,
    dropout: f32,
}

fn run_case(ctx: &cobrar_gpu::gpu::GpuContext, rng: &mut rand_pcg::Pcg64Mcg, case: &Case) {
    let segs = if case.rows[1] > 0 { 2 } else { 1 };
    let (d_in, d_out) = (case.d_in, case.d_out);
    let wlen = (d_in + 1) * d_out;
    let bound = (6.0 / (d_in + d_out) as f32).sqrt();
    // Params: a leading pad (offsets are exercised), then one [W ; b] per segment.
    let pad = 8;
    let mut params = vec![0f32; pad + segs * wlen];
    let mut acts_len = 4;
    let mut segments = Vec::new();
    let mut xs = Vec::new();
    let mut row_base = 0;
    for s in 0..segs {
        let rows = case.rows[s];
        let w = uniform(rng, wlen, -bound, bound);
        params[pad + s * wlen..pad + (s + 1) * wlen].copy_from_slice(&w);
        // Inputs are ReLU outputs in the model: non-negative with some exact zeros.
        let x: Vec<f32> = uniform(rng, rows * d_in, -0.5, 1.0)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let x_off = acts_len;
        acts_len += rows * d_in;
        let y_off = acts_len;
        acts_len += rows * d_out;
        segments.push(Segment {
            rows,
            x_off,
            y_off,
            w_off: pad + s * wlen,
            row_base,
        });
        row_base += rows;
        xs.push(x);
    }
    let mut acts = vec![f32::NAN; acts_len]; // Y regions start as NaN: every output must be written
    for (s, seg) in segments.iter().enumerate() {
        acts[seg.x_off..seg.x_off + xs[s].len()].copy_from_slice(&xs[s]);
    }
    let dropout = Dropout::new(case.dropout, 7, 3, 1);
    let params_buf = buffers::storage_init(ctx, "params", &params).unwrap();
    let acts_buf = buffers::storage_init(ctx, "acts", &acts).unwrap();
    let kernel = dense_forward::kernel(ctx).unwrap();
    let mut arena = UniformArena::new(ctx, 1);
    let p = Params::new(&segments, d_in, d_out, dropout);
    let off = arena.push(&p);
    arena.upload(ctx);
    let group = kernel.bind(ctx, &[&params_buf, &acts_buf, &arena.buffer]);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        kernel.dispatch(&mut pass, &group, off, p.workgroups(&segments));
    }
    ctx.queue.submit([enc.finish()]);
    let out = buffers::read::<f32>(ctx, &acts_buf, 0, acts_len).unwrap();
    for (s, seg) in segments.iter().enumerate() {
        let wb = &params[seg.w_off..seg.w_off + wlen];
        let want = dense_forward::cpu(&xs[s], seg.rows, d_in, wb, d_out, dropout, seg.row_base);
        let scale = abs_sums(&xs[s], seg.rows, d_in, wb, d_out);
        let got = &out[seg.y_off..seg.y_off + seg.rows * d_out];
        let what = format!(
            "dense forward rows {:?} {}→{} dropout {} segment {s}",
            case.rows, d_in, d_out, case.dropout
        );
        let scale: Vec<f32> = scale.iter().map(|v| v * dropout.scale).collect();
        assert_close_scaled(&what, got, &want, &scale, 1e-6, 2e-6);
        if case.dropout > 0.0 {
            let zeros = want.iter().filter(|v| **v == 0.0).count() as f32 / want.len() as f32;
            assert!(
                zeros > case.dropout * 0.5,
                "{what}: dropout seems inactive ({zeros} zeros)"
            );
        }
    }
}

#[test]
fn dense_forward_matches_cpu_twin() {
    let ctx = gpu();
    let mut rng = rng("dense_forward_matches_cpu_twin");
    let cases = [
        Case {
            rows: [1, 0],
            d_in: 4,
            d_out: 4,
            dropout: 0.0,
        },
        Case {
            rows: [1, 0],
            d_in: 132,
            d_out: 68,
            dropout: 0.0,
        },
        Case {
            rows: [37, 0],
            d_in: 12,
            d_out: 20,
            dropout: 0.0,
        },
        Case {
            rows: [64, 0],
            d_in: 64,
            d_out: 64,
            dropout: 0.0,
        },
        Case {
            rows: [300, 0],
            d_in: 260,
            d_out: 132,
            dropout: 0.0,
        },
        Case {
            rows: [129, 0],
            d_in: 512,
            d_out: 128,
            dropout: 0.5,
        },
        Case {
            rows: [70, 45],
            d_in: 68,
            d_out: 36,
            dropout: 0.0,
        },
        Case {
            rows: [3, 200],
            d_in: 16,
            d_out: 132,
            dropout: 0.1,
        },
    ];
    for case in &cases {
        run_case(&ctx, &mut rng, case);
    }
}

#[test]
fn dense_forward_many_row_tiles() {
    // More rows than one dimension of 65,535 workgroups would cover with 1-row tiles: the 2-D grid
    // (64-row tiles) keeps large dispatches legal.
    let ctx = gpu();
    let mut rng = rng("dense_forward_many_row_tiles");
    run_case(
        &ctx,
        &mut rng,
        &Case {
            rows: [70_001, 0],
            d_in: 4,
            d_out: 8,
            dropout: 0.0,
        },
    );
}
