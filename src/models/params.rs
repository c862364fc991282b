//! A model's parameters, declared by name: each tensor has its exported shape (the checkpoint's), its
//! initialisation, and where it is stored — its own table buffer (row-chunked, gathered optimizer), or a
//! slot of the model's dense block (one buffer, one dense Adam dispatch). Checkpoints, exports and the
//! CPU reference all address parameters through these names.

use std::sync::Arc;

use rand::RngExt;

use crate::kernels::Real;

/// Name of the buffer holding every dense parameter.
pub const DENSE: &str = "dense";

/// How a tensor is initialised (in its stored order, from the run's seed, in declaration order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in (−bound, bound).
    Uniform(f64),
    Zeros,
}

impl Init {
    /// Xavier-uniform: bound √(6 / (fan_in + fan_out)).
    pub fn xavier(fan_in: usize, fan_out: usize) -> Init {
        Init::Uniform((6.0 / (fan_in + fan_out) as f64).sqrt())
    }

    /// PyTorch's default bias: uniform in ±1/√fan_in.
    pub fn bias(fan_in: usize) -> Init {
        Init::Uniform(1.0 / (fan_in as f64).sqrt())
    }
}

/// Where a tensor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Its own row-major table buffer of this name (rows × cols = the exported shape).
    Table(String),
    /// A slot of the dense block; `transposed`: a 2-D tensor exported as [a, b] is stored as [b, a]
    /// (the kernels' [W ; b] layout against PyTorch's `nn.Linear` weight).
    Dense { transposed: bool },
}

/// One named parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    /// Shape as exported (checkpoints, PyTorch).
    pub shape: Vec<usize>,
    pub storage: Storage,
    pub init: Init,
}

impl TensorSpec {
    pub fn table(name: &str, buffer: &str, rows: usize, cols: usize, init: Init) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            shape: vec![rows, cols],
            storage: Storage::Table(buffer.into()),
            init,
        }
    }

    pub fn dense(name: &str, shape: &[usize], transposed: bool, init: Init) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            shape: shape.to_vec(),
            storage: Storage::Dense { transposed },
            init,
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parameter buffer: a table, or the dense block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBuffer {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub table: bool,
}

impl ParamBuffer {
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tensors, the buffers they live in, and each tensor's place.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamLayout {
    pub tensors: Vec<TensorSpec>,
    pub buffers: Vec<ParamBuffer>,
    /// Per tensor: (buffer index, element offset).
    places: Vec<(usize, usize)>,
}

impl ParamLayout {
    /// Lays out `tensors`: tables get their own buffers (in declaration order), dense tensors are packed
    /// into the dense block in declaration order, each slot starting at a multiple of 4 elements (vec4).
    pub fn new(tensors: Vec<TensorSpec>) -> ParamLayout {
        let mut buffers = Vec::new();
        let mut places = Vec::with_capacity(tensors.len());
        let mut dense_len = 0usize;
        let mut dense_places = Vec::new();
        for (k, t) in tensors.iter().enumerate() {
            match &t.storage {
                Storage::Table(name) => {
                    assert_eq!(t.shape.len(), 2, "table {} must be 2-D", t.name);
                    buffers.push(ParamBuffer {
                        name: name.clone(),
                        rows: t.shape[0],
                        cols: t.shape[1],
                        table: true,
                    });
                    places.push((buffers.len() - 1, 0));
                }
                Storage::Dense { .. } => {
                    dense_places.push((k, dense_len));
                    places.push((usize::MAX, dense_len));
                    dense_len += t.len().next_multiple_of(4);
                }
            }
        }
        if !dense_places.is_empty() {
            buffers.push(ParamBuffer {
                name: DENSE.into(),
                rows: dense_len,
                cols: 1,
                table: false,
            });
            let b = buffers.len() - 1;
            for (k, off) in dense_places {
                places[k] = (b, off);
            }
        }
        ParamLayout {
            tensors,
            buffers,
            places,
        }
    }

    fn index(&self, name: &str) -> usize {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| panic!("no parameter tensor {name}"))
    }

    /// (buffer index, element offset) of tensor `name`.
    pub fn place(&self, name: &str) -> (usize, usize) {
        self.places[self.index(name)]
    }

    /// Element offset of tensor `name` in its buffer.
    pub fn offset(&self, name: &str) -> usize {
        self.place(name).1
    }

    pub fn spec(&self, name: &str) -> &TensorSpec {
        &self.tensors[self.index(name)]
    }

    /// Length of the dense block (0 when the model has none).
    pub fn dense_len(&self) -> usize {
        self.buffers
            .iter()
            .find(|b| b.name == DENSE)
            .map_or(0, |b| b.len())
    }

    /// Number of parameters (padding excluded).
    pub fn count(&self) -> u64 {
        self.tensors.iter().map(|t| t.len() as u64).sum()
    }
}

/// Parameter values (or gradients, or optimizer moments): one vector per parameter buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights<T> {
    pub layout: Arc<ParamLayout>,
    pub data: Vec<Vec<T>>,
}

/// Stream of the run's seed used for initialisation.
const INIT_STREAM: u64 = 1;

impl Weights<f32> {
    /// Seeded initialisation, tensor by tensor in declaration order.
    pub fn init(layout: &Arc<ParamLayout>, seed: u64) -> Weights<f32> {
        let mut rng = crate::util::seeded_rng(seed, INIT_STREAM);
        let mut w = Weights::zeros(layout);
        for (k, t) in layout.tensors.iter().enumerate() {
            let (b, off) = layout.places[k];
            let out = &mut w.data[b][off..off + t.len()];
            match t.init {
                Init::Zeros => {}
                Init::Uniform(bound) => {
                    let b = bound as f32;
                    for v in out {
                        *v = if b > 0.0 {
                            rng.random_range(-b..b)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        w
    }
}

impl<T: Real> Weights<T> {
    /// All zeros (optimizer state, gradients).
    pub fn zeros(layout: &Arc<ParamLayout>) -> Weights<T> {
        Weights {
            layout: layout.clone(),
            data: layout
                .buffers
                .iter()
                .map(|b| vec![T::default(); b.len()])
                .collect(),
        }
    }

    /// The same values in another float type.
    pub fn convert<U: Real>(&self) -> Weights<U> {
        Weights {
            layout: self.layout.clone(),
            data: self
                .data
                .iter()
                .map(|v| v.iter().map(|x| U::from_f64(x.to_f64())).collect())
                .collect(),
        }
    }

    /// Buffer `name`'s values.
    pub fn buffer(&self, name: &str) -> &[T] {
        let b = self
            .layout
            .buffers
            .iter()
            .position(|b| b.name == name)
            .unwrap_or_else(|| panic!("no parameter buffer {name}"));
        &self.data[b]
    }

    /// Tensor `name` as stored (a slice of its buffer).
    pub fn stored(&self, name: &str) -> &[T] {
        let (b, off) = self.layout.place(name);
        &self.data[b][off..off + self.layout.spec(name).len()]
    }

    /// Tensor `name` in its exported layout.
    pub fn tensor(&self, name: &str) -> Vec<T> {
        let spec = self.layout.spec(name);
        let stored = self.stored(name);
        match spec.storage {
            Storage::Dense { transposed: true } => {
                let (a, b) = (spec.shape[0], spec.shape[1]);
                let mut out = vec![T::default(); a * b];
                for r in 0..b {
                    for c in 0..a {
                        out[c * b + r] = stored[r * a + c];
                    }
                }
                out
            }
            _ => stored.to_vec(),
        }
    }

    /// Sets tensor `name` from values in its exported layout.
    pub fn set_tensor(&mut self, name: &str, values: &[T]) {
        let spec = self.layout.spec(name).clone();
        assert_eq!(values.len(), spec.len(), "tensor {name}: length");
        let (b, off) = self.layout.place(name);
        let out = &mut self.data[b][off..off + spec.len()];
        match spec.storage {
            Storage::Dense { transposed: true } => {
                let (a, bb) = (spec.shape[0], spec.shape[1]);
                for r in 0..bb {
                    for c in 0..a {
                        out[r * a + c] = values[c * bb + r];
                    }
                }
            }
            _ => out.copy_from_slice(values),
        }
    }

    /// Every value (for finiteness checks and flat comparisons).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.data.iter().flatten()
    }

    /// The first non-finite value: (tensor name, index in its stored order).
    pub fn first_non_finite(&self) -> Option<(String, usize)> {
        for t in &self.layout.tensors {
            if let Some(i) = self
                .stored(&t.name)
                .iter()
                .position(|v| !v.to_f64().is_finite())
            {
                return Some((t.name.clone(), i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Arc<ParamLayout> {
        Arc::new(ParamLayout::new(vec![
            TensorSpec::table("emb.weight", "E", 5, 4, Init::xavier(5, 4)),
            TensorSpec::dense("a.bias", &[6], false, Init::bias(3)),
            TensorSpec::dense("lin.weight", &[3, 2], true, Init::xavier(2, 3)),
            TensorSpec::dense("lin.bias", &[3], false, Init::Zeros),
        ]))
    }

    #[test]
    fn packs_dense_slots_on_vec4_boundaries_and_inits_by_seed() {
        let l = layout();
        assert_eq!(l.buffers.len(), 2);
        assert_eq!(l.place("emb.weight"), (0, 0));
        assert_eq!(l.offset("a.bias"), 0);
        assert_eq!(l.offset("lin.weight"), 8);
        assert_eq!(l.offset("lin.bias"), 16);
        assert_eq!(l.dense_len(), 20);
        assert_eq!(l.count(), 20 + 6 + 6 + 3);
        let w = Weights::init(&l, 3);
        assert_eq!(w, Weights::init(&l, 3));
        assert_ne!(w, Weights::init(&l, 4));
        assert!(w.stored("lin.bias").iter().all(|v| *v == 0.0));
        let bound = (6.0f32 / 9.0).sqrt();
        assert!(w.stored("emb.weight").iter().all(|v| v.abs() <= bound));
    }

    #[test]
    fn transposed_tensors_export_in_their_declared_shape() {
        let l = layout();
        let mut w = Weights::<f32>::zeros(&l);
        // Exported [3, 2] row-major: row r = output r.
        let exported = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        w.set_tensor("lin.weight", &exported);
        // Stored [2, 3]: stored[in][out] = exported[out][in].
        assert_eq!(w.stored("lin.weight"), &[1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        assert_eq!(w.tensor("lin.weight"), exported.to_vec());
        assert!(w.first_non_finite().is_none());
        w.set_tensor("lin.bias", &[0.0, f32::NAN, 0.0]);
        assert_eq!(w.first_non_finite(), Some(("lin.bias".into(), 1)));
    }
}
