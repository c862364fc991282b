//! What a session allocates: named buffers with a role, and tables split into row chunks when they
//! exceed one storage binding (lavapipe allows 128 MiB per binding; Amazon Baby's W_T at width 2048 is
//! 157 MB). Both executors allocate from the same [`MemoryLayout`], so the CPU executor mirrors the
//! GPU's chunking exactly, and the memory plan (bytes per role) is read from it before anything is
//! allocated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::GpuError;

/// Element type of a buffer (both 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    F32,
    U32,
}

/// What a buffer holds; inference sessions allocate no optimizer state or gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Trained parameters.
    Param,
    /// Optimizer state (Adam moments).
    OptState,
    /// Parameter gradients.
    Grad,
    /// Activations and their gradients, per-pair losses.
    Work,
    /// What a step uploads (the batch image).
    Input,
    /// Data uploaded once (the training CSRs).
    Resident,
    /// Results other stages read (embeddings of every user and item, the loss ring).
    Output,
}

/// One named buffer: `rows × cols` elements. A `table` may be split into row chunks; other buffers
/// must fit one binding.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferSpec {
    pub name: String,
    pub elem: Elem,
    pub rows: usize,
    pub cols: usize,
    pub table: bool,
    pub role: Role,
}

impl BufferSpec {
    /// A flat f32 buffer of `len` elements.
    pub fn f32(name: impl Into<String>, len: usize, role: Role) -> BufferSpec {
        BufferSpec {
            name: name.into(),
            elem: Elem::F32,
            rows: len,
            cols: 1,
            table: false,
            role,
        }
    }

    /// A flat u32 buffer of `len` elements.
    pub fn u32(name: impl Into<String>, len: usize, role: Role) -> BufferSpec {
        BufferSpec {
            elem: Elem::U32,
            ..BufferSpec::f32(name, len, role)
        }
    }

    /// A row-major f32 table that may be split into row chunks.
    pub fn table(name: impl Into<String>, rows: usize, cols: usize, role: Role) -> BufferSpec {
        BufferSpec {
            name: name.into(),
            elem: Elem::F32,
            rows,
            cols,
            table: true,
            role,
        }
    }

    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> u64 {
        self.len() as u64 * 4
    }
}

/// A buffer of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// One binding's worth of a buffer: a whole buffer, or one row chunk of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bind {
    pub buf: BufId,
    pub chunk: u32,
}

impl From<BufId> for Bind {
    fn from(buf: BufId) -> Bind {
        Bind { buf, chunk: 0 }
    }
}

/// Every buffer of a session, with the rows each chunk of each table holds.
#[derive(Debug, Clone)]
pub struct MemoryLayout {
    specs: Vec<BufferSpec>,
    rows_per_chunk: Vec<usize>,
    index: HashMap<String, BufId>,
}

/// The largest binding a layout uses: 4 GiB, what every Vulkan and D3D12 driver allows (Vulkan's
/// maxStorageBufferRange is a u32), also where an adapter reports more (Metal: its whole buffer size).
/// The kernels address elements with u32 arithmetic (row × width + column), which holds to 16 GiB of
/// f32; capping at 4 GiB keeps a margin and makes every backend chunk the same way. Larger tables are
/// split into row chunks; another buffer past 4 GiB is refused by the memory plan with its name.
pub const MAX_INDEXED_BINDING: u64 = (1 << 32) - 256;

/// The binding size a layout may use on an adapter with these limits.
pub fn binding_limit(max_storage_binding: u64, max_buffer: u64) -> u64 {
    max_storage_binding.min(max_buffer).min(MAX_INDEXED_BINDING)
}

/// Rows of `cols` f32 per chunk under a binding limit of `max_binding` bytes.
pub fn rows_per_chunk(max_binding: u64, cols: usize) -> usize {
    ((max_binding / (cols.max(1) as u64 * 4)) as usize).max(1)
}

impl MemoryLayout {
    /// Lays out `specs` for a device whose bindings hold at most `max_binding` bytes; `force_chunk_rows`
    /// splits every table into chunks of that many rows (tests of the chunked path on small tables).
    pub fn new(
        specs: Vec<BufferSpec>,
        max_binding: u64,
        force_chunk_rows: Option<usize>,
    ) -> Result<MemoryLayout, GpuError> {
        let mut index = HashMap::new();
        let mut rows_per = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            assert!(
                index.insert(s.name.clone(), BufId(i as u32)).is_none(),
                "buffer {} declared twice",
                s.name
            );
            if s.table {
                if s.cols as u64 * 4 > max_binding {
                    return Err(GpuError::BindingLimit {
                        what: format!("one row of {} ({} floats)", s.name, s.cols),
                        mib: (s.cols as u64 * 4).div_ceil(1 << 20),
                        limit_mib: max_binding >> 20,
                    });
                }
                let natural = rows_per_chunk(max_binding, s.cols);
                rows_per.push(force_chunk_rows.unwrap_or(natural).clamp(1, natural));
            } else {
                if s.bytes() > max_binding {
                    return Err(GpuError::BindingLimit {
                        what: s.name.clone(),
                        mib: s.bytes().div_ceil(1 << 20),
                        limit_mib: max_binding >> 20,
                    });
                }
                rows_per.push(s.rows.max(1));
            }
        }
        Ok(MemoryLayout {
            specs,
            rows_per_chunk: rows_per,
            index,
        })
    }

    /// The buffer called `name` (a missing name is a bug in the model).
    pub fn id(&self, name: &str) -> BufId {
        *self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("no buffer named {name} in this session"))
    }

    /// The buffer called `name`, if the session has it (inference sessions lack optimizer state).
    pub fn try_id(&self, name: &str) -> Option<BufId> {
        self.index.get(name).copied()
    }

    pub fn spec(&self, id: BufId) -> &BufferSpec {
        &self.specs[id.0 as usize]
    }

    pub fn specs(&self) -> &[BufferSpec] {
        &self.specs
    }

    pub fn ids(&self) -> impl Iterator<Item = BufId> + '_ {
        (0..self.specs.len() as u32).map(BufId)
    }

    /// Number of chunks (bindings) buffer `id` is split into (1 for non-tables).
    pub fn chunks(&self, id: BufId) -> usize {
        let s = self.spec(id);
        s.rows.div_ceil(self.rows_per_chunk[id.0 as usize]).max(1)
    }

    /// Rows `[lo, hi)` of chunk `c`.
    pub fn chunk_rows(&self, id: BufId, c: usize) -> (usize, usize) {
        let per = self.rows_per_chunk[id.0 as usize];
        let rows = self.spec(id).rows;
        ((c * per).min(rows), ((c + 1) * per).min(rows))
    }

    /// Elements of chunk `c`.
    pub fn chunk_len(&self, id: BufId, c: usize) -> usize {
        let (lo, hi) = self.chunk_rows(id, c);
        (hi - lo) * self.spec(id).cols
    }

    /// Chunk `c` of `id`, as a binding.
    pub fn chunk(&self, id: BufId, c: usize) -> Bind {
        Bind {
            buf: id,
            chunk: c as u32,
        }
    }

    /// Bytes per role (the memory plan).
    pub fn bytes_by_role(&self) -> Vec<(Role, u64)> {
        let mut by: Vec<(Role, u64)> = Vec::new();
        for s in &self.specs {
            match by.iter_mut().find(|(r, _)| *r == s.role) {
                Some((_, b)) => *b += s.bytes(),
                None => by.push((s.role, s.bytes())),
            }
        }
        by.sort();
        by
    }

    /// Bytes of every buffer.
    pub fn total_bytes(&self) -> u64 {
        self.specs.iter().map(BufferSpec::bytes).sum()
    }
}

/// Live and peak bytes of the storage buffers of one device.
#[derive(Debug, Default)]
pub struct MemoryStats {
    live: AtomicU64,
    peak: AtomicU64,
}

impl MemoryStats {
    pub(super) fn add(&self, bytes: u64) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn sub(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_split_into_chunks_and_flat_buffers_must_fit() {
        let specs = vec![
            BufferSpec::table("W", 10, 4, Role::Param),
            BufferSpec::f32("acts", 8, Role::Work),
        ];
        let l = MemoryLayout::new(specs.clone(), 64, None).unwrap();
        let w = l.id("W");
        assert_eq!(l.chunks(w), 3); // 4 rows of 16 bytes per 64-byte binding
        assert_eq!(l.chunk_rows(w, 2), (8, 10));
        assert_eq!(l.chunk_len(w, 2), 8);
        assert_eq!(l.chunks(l.id("acts")), 1);
        let forced = MemoryLayout::new(specs.clone(), 1 << 20, Some(3)).unwrap();
        assert_eq!(forced.chunks(forced.id("W")), 4);
        let err = MemoryLayout::new(specs, 16, None).unwrap_err();
        assert!(matches!(err, GpuError::BindingLimit { .. }), "{err}");
        assert_eq!(l.total_bytes(), 40 * 4 + 8 * 4);
    }

    /// A table past 4 GiB (CoBraR 8192,64's user projection over a 163,840-item catalog: 5 GiB) on an
    /// adapter that would bind 16 GiB whole: chunks under 4 GiB, every row in exactly one, every
    /// kernel offset (row0, elements per chunk) within u32, byte counts in u64.
    #[test]
    fn a_table_past_4_gib_is_chunked_under_4_gib_even_where_the_adapter_binds_more() {
        let (rows, cols) = (163_840usize, 8192usize);
        let limit = binding_limit(16 << 30, 16 << 30);
        assert_eq!(limit, MAX_INDEXED_BINDING);
        let specs = vec![BufferSpec::table("W_U", rows, cols, Role::Param)];
        let l = MemoryLayout::new(specs, limit, None).unwrap();
        let w = l.id("W_U");
        assert_eq!(l.total_bytes(), 5 << 30);
        assert_eq!(l.chunks(w), 2);
        let mut next = 0;
        for c in 0..l.chunks(w) {
            let (lo, hi) = l.chunk_rows(w, c);
            assert_eq!(lo, next, "chunk {c} does not start where the last ended");
            next = hi;
            let bytes = l.chunk_len(w, c) as u64 * 4;
            assert!(bytes <= MAX_INDEXED_BINDING, "chunk {c}: {bytes} bytes");
            assert!(u32::try_from(lo).is_ok() && u32::try_from(l.chunk_len(w, c)).is_ok());
        }
        assert_eq!(next, rows);
        // Adapters with smaller limits keep theirs (lavapipe: 128 MiB; WebGPU: 128 MiB bindings).
        assert_eq!(binding_limit(128 << 20, 256 << 20), 128 << 20);
    }
}
