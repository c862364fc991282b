//! The degree summary a synthetic workload is fitted to (`workload.rs`); the tables of real datasets'
//! summaries are in `workload_tables.rs`.

/// A side's degree summary: the sequence sorted in descending order, as its `top` values exactly and
/// the remainder at evenly spaced ranks (`rest[0]` the first rank after `top`, `rest[last]` the last).
#[derive(Debug, Clone, Copy)]
pub struct DegreeTable {
    pub top: &'static [u32],
    pub rest: &'static [u32],
}

impl DegreeTable {
    /// The `n` degrees (descending) the table describes: `top`, then the rest interpolated linearly
    /// between its points, rounded to the nearest integer (integer arithmetic only).
    pub fn expand(&self, n: usize) -> Vec<u32> {
        let mut out: Vec<u32> = self.top.iter().copied().take(n).collect();
        let r = n - out.len();
        let q = self.rest;
        match (r, q.len()) {
            (0, _) => {}
            (_, 0) => out.extend(std::iter::repeat_n(*self.top.last().unwrap_or(&1), r)),
            (1, _) | (_, 1) => out.extend(std::iter::repeat_n(q[0], r)),
            _ => {
                let (den, segs) = ((r - 1) as u64, (q.len() - 1) as u64);
                for k in 0..r as u64 {
                    let pos = k * segs;
                    let (j, rem) = ((pos / den) as usize, pos % den);
                    let next = q[(j + 1).min(q.len() - 1)] as u64;
                    let v = (q[j] as u64 * (den - rem) + next * rem + den / 2) / den;
                    out.push(v as u32);
                }
            }
        }
        out
    }
}

// ml-1m: 6040 users, 3706 items, 1000209 interactions
// ml-1m users: 6040 of them, 1000209 interactions, degrees 20..=2314, Gini 0.5286
