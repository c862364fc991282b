//! The CPU reference step: the kernels' CPU twins composed exactly as `engine` composes the shaders.
//! Generic over the float type — `f32` to check the GPU, `f64` for finite differences.

use super::StepConfig;
use super::params::ModelParams;
use crate::batch::HostBatch;
use crate::data::Csr;
use crate::kernels::{
    Real, adam_dense, adam_table, dense_backward_data, dense_backward_weight, score_loss,
    sparse_proj_bias_grad, sparse_proj_forward,
};

/// A row block of the stacked batch and the branch that embeds it.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    rows: usize,
    branch: usize,
}

fn segments(p: &ModelParams<impl Real>, batch: &HostBatch) -> Vec<Segment> {
    let (nu, ni) = (batch.n_users(), batch.n_items());
    if p.layout.kind.branches() == 1 {
        vec![Segment {
            start: 0,
            rows: nu + ni,
            branch: 0,
        }]
    } else {
        vec![
            Segment {
                start: 0,
                rows: nu,
                branch: 0,
            },
            Segment {
                start: nu,
                rows: ni,
                branch: 1,
            },
        ]
    }
}

/// Activations of the stacked batch: `acts[0]` = h (rows × d1), `acts[l + 1]` = output of layer l.
pub struct Forward<T> {
    pub acts: Vec<Vec<T>>,
}

/// Forward pass over the batch's unique users and items (training mode when `dropout_step` is given).
pub fn forward<T: Real>(
    p: &ModelParams<T>,
    batch: &HostBatch,
    by_user: &Csr,
    by_item: &Csr,
    cfg: &StepConfig,
    dropout_step: Option<u64>,
) -> Forward<T> {
    let arch = &p.layout.arch;
    let d1 = arch.d1();
    let mut h = sparse_proj_forward::cpu(
        &p.w_user,
        d1,
        &by_user.offsets,
        &by_user.indices,
        &batch.user_ids,
        p.bias_user(),
    );
    h.extend(sparse_proj_forward::cpu(
        &p.w_item,
        d1,
        &by_item.offsets,
        &by_item.indices,
        &batch.item_ids,
        p.bias_item(),
    ));
    let mut acts = vec![h];
    for (l, (d_in, d_out)) in arch.layers().enumerate() {
        let drop = match dropout_step {
            Some(t) => cfg.dropout_at(t, l),
            None => crate::kernels::Dropout::NONE,
        };
        let x = &acts[l];
        let mut y = Vec::with_capacity(batch.n_rows() * d_out);
        for s in segments(p, batch) {
            let xs = &x[s.start * d_in..(s.start + s.rows) * d_in];
            y.extend(crate::kernels::dense_forward::cpu(
                xs,
                s.rows,
                d_in,
                p.layer(s.branch, l),
                d_out,
                drop,
                s.start,
            ));
        }
        acts.push(y);
    }
    Forward { acts }
}

/// Loss and gradients of one step (gradients without the L2 term, which Adam adds).
pub struct StepGrads<T> {
    pub loss: f64,
    pub grads: ModelParams<T>,
}

/// Forward and backward pass of one training step at optimizer step `t`.
pub fn forward_backward<T: Real>(
    p: &ModelParams<T>,
    batch: &HostBatch,
    by_user: &Csr,
    by_item: &Csr,
    cfg: &StepConfig,
    t: u64,
) -> StepGrads<T> {
    let arch = &p.layout.arch;
    let layers: Vec<(usize, usize)> = arch.layers().collect();
    let n_layers = layers.len();
    let fwd = forward(p, batch, by_user, by_item, cfg, Some(t));
    let scale = |l: usize| cfg.dropout_at(t, l).scale;
    let dim = arch.embedding();
    let score = score_loss::cpu(
        &fwd.acts[n_layers],
        batch.n_users(),
        batch.n_items(),
        dim,
        batch.pairs(),
        cfg.mu,
        scale(n_layers - 1),
    );
    let mut grads = p.zeros_like();
    let mut dz = score.d_e; // gradient of layer (n_layers − 1)'s pre-activation
    for l in (0..n_layers).rev() {
        let (d_in, d_out) = layers[l];
        let x = &fwd.acts[l];
        let in_scale = if l == 0 { 1.0 } else { scale(l - 1) };
        let mut dx = Vec::with_capacity(batch.n_rows() * d_in);
        let segs = segments(p, batch);
        if segs.len() == 1 {
            let s = segs[0];
            let g = dense_backward_weight::cpu(x, &dz, s.rows, d_in, d_out);
            let off = p.layout.layers[s.branch][l];
            grads.dense[off..off + g.len()].copy_from_slice(&g);
        } else {
            for s in &segs {
                let xs = &x[s.start * d_in..(s.start + s.rows) * d_in];
                let dzs = &dz[s.start * d_out..(s.start + s.rows) * d_out];
                let g = dense_backward_weight::cpu(xs, dzs, s.rows, d_in, d_out);
                let off = p.layout.layers[s.branch][l];
                grads.dense[off..off + g.len()].copy_from_slice(&g);
            }
        }
        for s in &segs {
            let xs = &x[s.start * d_in..(s.start + s.rows) * d_in];
            let dzs = &dz[s.start * d_out..(s.start + s.rows) * d_out];
            dx.extend(dense_backward_data::cpu(
                dzs,
                s.rows,
                d_in,
                d_out,
                p.layer(s.branch, l),
                xs,
                in_scale,
            ));
        }
        dz = dx;
    }
    // dz is now dh: the gradient of the projections' pre-activations (users, then items).
    let d1 = arch.d1();
    let nu = batch.n_users();
    let (dh_user, dh_item) = dz.split_at(nu * d1);
    let bu = sparse_proj_bias_grad::cpu(dh_user, nu, d1);
    let bi = sparse_proj_bias_grad::cpu(dh_item, batch.n_items(), d1);
    let (ou, oi) = (p.layout.b_user, p.layout.b_item);
    grads.dense[ou..ou + d1].copy_from_slice(&bu);
    grads.dense[oi..oi + d1].copy_from_slice(&bi);
    // W_U row j (item j) gathers dh of the batch users who interacted with j, and W_T row u (user u)
    // gathers dh of the batch items u interacted with.
    let (ptr, rows) = batch.user_table_index();
    grads.w_user = adam_table::grad_cpu(ptr, rows, dh_user, d1);
    let (ptr, rows) = batch.item_table_index();
    grads.w_item = adam_table::grad_cpu(ptr, rows, dh_item, d1);
    StepGrads {
        loss: score.loss,
        grads,
    }
}

/// The batch loss alone (for finite differences).
pub fn loss<T: Real>(
    p: &ModelParams<T>,
    batch: &HostBatch,
    by_user: &Csr,
    by_item: &Csr,
    cfg: &StepConfig,
    t: u64,
) -> f64 {
    let fwd = forward(p, batch, by_user, by_item, cfg, Some(t));
    let n_layers = p.layout.arch.n_layers();
    let e = &fwd.acts[n_layers];
    let dim = p.layout.arch.embedding();
    score_loss::cpu(
        e,
        batch.n_users(),
        batch.n_items(),
        dim,
        batch.pairs(),
        cfg.mu,
        1.0,
    )
    .loss
}

/// Adam state on the host: first and second moments shaped like the parameters.
pub struct AdamState<T> {
    pub m: ModelParams<T>,
    pub v: ModelParams<T>,
}

impl<T: Real> AdamState<T> {
    pub fn new(p: &ModelParams<T>) -> AdamState<T> {
        AdamState {
            m: p.zeros_like(),
            v: p.zeros_like(),
        }
    }
}

/// One full reference training step: forward, backward, Adam (step `t`, 1-based). Returns the loss.
pub fn step<T: Real>(
    p: &mut ModelParams<T>,
    state: &mut AdamState<T>,
    batch: &HostBatch,
    by_user: &Csr,
    by_item: &Csr,
    cfg: &StepConfig,
    t: u64,
) -> f64 {
    let StepGrads { loss, grads } = forward_backward(p, batch, by_user, by_item, cfg, t);
    let s = cfg.adam.at_step(t);
    let [m0, m1, m2] = state.m.parts_mut();
    let [v0, v1, v2] = state.v.parts_mut();
    let [g0, g1, g2] = grads.parts();
    let [p0, p1, p2] = p.parts_mut();
    adam_dense::cpu(p0, g0, m0, v0, &s);
    adam_dense::cpu(p1, g1, m1, v1, &s);
    adam_dense::cpu(p2, g2, m2, v2, &s);
    loss
}
