//! Evaluation: full ranking with top-k selection as plans on either executor (`ranking`), the study's
//! metrics (`metrics`), and paired significance tests (`significance`).

pub mod cold;
pub mod metrics;
pub mod ranking;
pub mod significance;

use std::time::Instant;

use crate::data::{Csr, Dataset};
use crate::gpu::executor::Executor;
use crate::models::{Model, Session};
use metrics::{EvalResult, RankedLists};
use ranking::{Embeddings, TopK};

/// One split's evaluation: the metrics and the ranked lists they came from.
pub struct Evaluation {
    pub result: EvalResult,
    pub top: TopK,
    pub seconds: f64,
}

/// Full-ranking evaluation of a model's embeddings at several cutoffs.
pub struct Evaluator {
    pub cutoffs: Vec<usize>,
}

impl Evaluator {
    pub fn new(cutoffs: &[usize]) -> anyhow::Result<Evaluator> {
        anyhow::ensure!(!cutoffs.is_empty(), "at least one cutoff is needed");
        let k_max = *cutoffs.iter().max().unwrap();
        anyhow::ensure!(
            cutoffs.iter().all(|&k| k >= 1) && k_max <= ranking::MAX_K,
            "cutoffs must be between 1 and {}",
            ranking::MAX_K
        );
        Ok(Evaluator {
            cutoffs: cutoffs.to_vec(),
        })
    }

    /// Largest cutoff: the length of the ranked lists.
    pub fn k_max(&self) -> usize {
        *self.cutoffs.iter().max().unwrap()
    }

    /// Users with at least one relevant item in `truth` (the users a split is evaluated on).
    pub fn users_of(truth: &Csr) -> Vec<u32> {
        (0..truth.n_rows() as u32)
            .filter(|&u| truth.row_len(u as usize) > 0)
            .collect()
    }

    /// Ranks every item for the users of `truth` on `exec` (the items `emb` excludes, the training
    /// items, left out) and computes the metrics.
    pub fn evaluate<E: Executor>(
        &mut self,
        exec: &mut E,
        emb: &Embeddings,
        truth: &Csr,
        train: &Csr,
        popularity: &[u32],
    ) -> anyhow::Result<Evaluation> {
        let start = Instant::now();
        let users = Self::users_of(truth);
        let top = ranking::rank(exec, emb, &users, self.k_max())?;
        let lists = RankedLists {
            users: &top.users,
            items: &top.items,
            k_max: top.k,
        };
        let result = metrics::evaluate(&lists, truth, train, popularity, &self.cutoffs);
        Ok(Evaluation {
            result,
            top,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Evaluates a session's current embeddings (call `embed_all` first) against `truth`, the
    /// training items of `ds` excluded, on the session's executor (the GPU, or the CPU twins).
    pub fn evaluate_session<E: Executor, M: Model>(
        &mut self,
        session: &mut Session<E, M>,
        truth: &Csr,
        ds: &Dataset,
    ) -> anyhow::Result<Evaluation> {
        let emb = session.embeddings();
        let (train, popularity) = (&ds.train, &ds.item_popularity);
        self.evaluate(&mut session.exec, &emb, truth, train, popularity)
    }
}
