//! Compressed sparse rows over `u32`: the one index structure the engine uploads (training rows by user
//! and by item, validation/test truth). `u32` halves the memory and upload size of `usize` indices and is
//! what WGSL storage buffers hold natively.

use serde::Serialize;

/// A sparse binary matrix in compressed-row form.
///
/// Invariants (kept by every constructor here, checked by [`Csr::validate`]): `offsets` has
/// `n_rows + 1` entries, starts at 0 and never decreases, ends at `indices.len()`; each row's slice
/// `indices[offsets[r]..offsets[r+1]]` is sorted ascending without duplicates, so membership is a binary
/// search and the rows double as the "already interacted" sets negative sampling and ranking need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Csr {
    pub offsets: Vec<u32>,
    pub indices: Vec<u32>,
}

impl Csr {
    /// A matrix with `n_rows` empty rows.
    pub fn empty(n_rows: usize) -> Csr {
        Csr {
            offsets: vec![0; n_rows + 1],
            indices: Vec::new(),
        }
    }

    /// Builds from one sorted, duplicate-free column list per row (the pipeline's natural output).
    ///
    /// Panics if the total exceeds `u32::MAX` entries — callers check sizes on input (see
    /// [`check_nnz`]) so that never happens on user data.
    pub fn from_rows<R: AsRef<[u32]>>(rows: &[R]) -> Csr {
        let mut b =
            CsrBuilder::with_capacity(rows.len(), rows.iter().map(|r| r.as_ref().len()).sum());
        for r in rows {
            b.push_row(r.as_ref());
        }
        b.finish()
    }

    /// Builds from arbitrary `(row, col)` pairs: sorts them and drops duplicates. Pairs with
    /// `row >= n_rows` are a caller bug and panic.
    pub fn from_pairs(n_rows: usize, pairs: &[(u32, u32)]) -> Csr {
        let mut keys: Vec<u64> = pairs
            .iter()
            .map(|&(r, c)| ((r as u64) << 32) | c as u64)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Csr::from_sorted_keys(n_rows, &keys)
    }

    /// Builds from sorted, duplicate-free `row << 32 | col` keys (the pipeline's internal form).
    pub(crate) fn from_sorted_keys(n_rows: usize, keys: &[u64]) -> Csr {
        let mut offsets = vec![0u32; n_rows + 1];
        let mut indices = Vec::with_capacity(keys.len());
        for &k in keys {
            let r = (k >> 32) as usize;
            assert!(r < n_rows, "row {r} out of range {n_rows}");
            offsets[r + 1] += 1;
            indices.push(k as u32);
        }
        for r in 0..n_rows {
            offsets[r + 1] += offsets[r];
        }
        Csr { offsets, indices }
    }

    pub fn n_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The sorted column indices of row `r`.
    pub fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    /// Number of entries in row `r`.
    pub fn row_len(&self, r: usize) -> usize {
        (self.offsets[r + 1] - self.offsets[r]) as usize
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Whether `(r, c)` is stored: a binary search of row `r`.
    pub fn contains(&self, r: usize, c: u32) -> bool {
        self.row(r).binary_search(&c).is_ok()
    }

    /// Iterates rows as slices.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.n_rows()).map(move |r| self.row(r))
    }

    /// Iterates all entries as `(row, col)`, row-major.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.n_rows()).flat_map(move |r| self.row(r).iter().map(move |&c| (r as u32, c)))
    }

    /// The transpose, with `n_cols` rows: a counting sort, so each output row comes out sorted
    /// because input rows are visited in order. O(nnz + n_rows + n_cols).
    pub fn transpose(&self, n_cols: usize) -> Csr {
        let mut offsets = vec![0u32; n_cols + 1];
        for &c in &self.indices {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..n_cols {
            offsets[c + 1] += offsets[c];
        }
        let mut next: Vec<u32> = offsets[..n_cols].to_vec();
        let mut indices = vec![0u32; self.indices.len()];
        for r in 0..self.n_rows() {
            for &c in self.row(r) {
                let slot = &mut next[c as usize];
                indices[*slot as usize] = r as u32;
                *slot += 1;
            }
        }
        Csr { offsets, indices }
    }

    /// Checks the invariants against a column count; for structures that come from outside (a
    /// checkpoint, a hand-built test matrix).
    pub fn validate(&self, n_cols: usize) -> Result<(), String> {
        if self.offsets.first() != Some(&0) {
            return Err("offsets must start with 0".into());
        }
        if *self.offsets.last().unwrap_or(&0) as usize != self.indices.len() {
            return Err("last offset must equal the number of indices".into());
        }
        for r in 0..self.n_rows() {
            if self.offsets[r] > self.offsets[r + 1] {
                return Err(format!("offsets decrease at row {r}"));
            }
            let row = self.row(r);
            if row.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("row {r} is not strictly ascending"));
            }
            if let Some(&c) = row.last()
                && c as usize >= n_cols
            {
                return Err(format!("row {r} has column {c} >= {n_cols}"));
            }
        }
        Ok(())
    }
}

/// Appends rows one at a time; used where rows are produced in order (the split).
#[derive(Debug, Default)]
pub(crate) struct CsrBuilder {
    offsets: Vec<u32>,
    indices: Vec<u32>,
}

impl CsrBuilder {
    pub(crate) fn with_capacity(n_rows: usize, nnz: usize) -> Self {
        let mut offsets = Vec::with_capacity(n_rows + 1);
        offsets.push(0);
        CsrBuilder {
            offsets,
            indices: Vec::with_capacity(nnz),
        }
    }

    /// Appends a row that is already sorted and duplicate-free.
    pub(crate) fn push_row(&mut self, cols: &[u32]) {
        debug_assert!(cols.windows(2).all(|w| w[0] < w[1]));
        self.indices.extend_from_slice(cols);
        let end = u32::try_from(self.indices.len()).expect("more than u32::MAX entries");
        self.offsets.push(end);
    }

    pub(crate) fn finish(self) -> Csr {
        Csr {
            offsets: self.offsets,
            indices: self.indices,
        }
    }
}

/// Refuses inputs whose interaction count does not fit the `u32` offsets, before anything is built.
pub(crate) fn check_nnz(n: usize) -> anyhow::Result<()> {
    if n > u32::MAX as usize {
        anyhow::bail!(
            "{n} interactions exceed the supported maximum of {}",
            u32::MAX
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_and_dedups() {
        let m = Csr::from_pairs(3, &[(2, 5), (0, 3), (0, 1), (2, 5), (0, 3)]);
        assert_eq!(m.row(0), &[1, 3]);
        assert_eq!(m.row(1), &[] as &[u32]);
        assert_eq!(m.row(2), &[5]);
        assert_eq!(m.nnz(), 3);
        assert!(m.contains(0, 3) && !m.contains(0, 2) && !m.contains(1, 0));
        m.validate(6).unwrap();
    }

    #[test]
    fn transpose_twice_is_identity() {
        let m = Csr::from_rows(&[vec![0, 2, 3], vec![], vec![1, 2], vec![3]]);
        let t = m.transpose(4);
        assert_eq!(t.row(0), &[0]);
        assert_eq!(t.row(2), &[0, 2]);
        assert_eq!(t.row(3), &[0, 3]);
        t.validate(4).unwrap();
        assert_eq!(t.transpose(4), m);
    }

    #[test]
    fn validate_catches_broken_invariants() {
        let bad = Csr {
            offsets: vec![0, 2],
            indices: vec![3, 1],
        };
        assert!(bad.validate(4).is_err());
        let out_of_range = Csr {
            offsets: vec![0, 1],
            indices: vec![7],
        };
        assert!(out_of_range.validate(4).is_err());
        assert!(Csr::empty(3).validate(0).is_ok());
    }
}
