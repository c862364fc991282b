//! The kernels: one module per WGSL stage, each with its parameter block (declared once), its kernel
//! definitions, a launcher that fills the block, and its CPU twin side by side. They are general
//! building blocks that any model composes into a step plan: sparse row sums over a CSR (`spmm`), GEMM
//! forward and backward with activations and dropout (`dense_*`), column sums, row-gathered and dense
//! Adam, the cosine + BCE loss, and top-k ranking (`eval::ranking`).
//!
//! The CPU twins are the reference path: plain Rust, f64 accumulation where sums are long, the same
//! integer hashes as the shaders (`shaders/lib/hash.wgsl`); the CPU executor (`gpu::cpu`) runs them on a plan's host buffers.

pub mod adam_dense;
pub mod adam_table;
pub mod batch_index;
pub mod bpr_loss;
pub mod column_sums;
pub mod copy;
pub mod dense_backward_data;
pub mod dense_backward_weight;
pub mod dense_forward;
pub mod propagate;
pub mod rank_topk;
pub mod reduce;
pub mod score_loss;
pub mod spmm;
pub mod spmm_transpose;
pub mod strided_copy;
pub mod vae;

pub use crate::gpu::twin::Real;

/// Every kernel definition (the parameter-block and binding tests walk this list).
pub const ALL: &[&crate::gpu::kernel::KernelDef] = &[
    &spmm::RELU,
    &spmm::TANH,
    &spmm::IDENTITY,
    &column_sums::DEF,
    &dense_forward::RELU_DROPOUT,
    &dense_forward::RELU,
    &dense_forward::TANH,
    &dense_forward::IDENTITY,
    &dense_backward_data::RELU,
    &dense_backward_data::TANH,
    &dense_backward_data::IDENTITY,
    &dense_backward_weight::DEF,
    &score_loss::GRAD,
    &score_loss::SUM,
    &score_loss::COSINES,
    &score_loss::LOSSES,
    &adam_dense::DEF,
    &adam_table::STEP,
    &adam_table::GATHER,
    &adam_table::LAZY,
    &rank_topk::RANK_COSINE,
    &rank_topk::RANK_DOT,
    &rank_topk::RANK_NORMS,
    &rank_topk::RANK_COSINE_SERIAL,
    &rank_topk::RANK_DOT_SERIAL,
    &reduce::COUNT_NONFINITE,
    &copy::DEF,
    &batch_index::CLEAR,
    &batch_index::SCATTER,
    &batch_index::COUNT,
    &batch_index::SCAN,
    &batch_index::FILL,
    &bpr_loss::GRAD,
    &propagate::LAYER,
    &propagate::REGULARISE,
    &spmm_transpose::DEF,
    &vae::REPARAM,
    &vae::KL,
    &vae::SOFTMAX,
    &strided_copy::DEF,
];

/// Marks an id that is not in the batch in the id → batch-row maps (`NONE` in the shaders).
pub const NOT_IN_BATCH: u32 = u32::MAX;

/// An elementwise activation, chosen per pipeline by the `ACTIVATION` override constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Identity,
    Relu,
    Tanh,
}

impl Activation {
    /// The value of the shaders' `ACTIVATION` constant.
    pub const fn code(self) -> f64 {
        match self {
            Activation::Identity => 0.0,
            Activation::Relu => 1.0,
            Activation::Tanh => 2.0,
        }
    }

    pub fn from_code(c: f64) -> Activation {
        match c as u32 {
            0 => Activation::Identity,
            1 => Activation::Relu,
            2 => Activation::Tanh,
            other => panic!("unknown activation code {other}"),
        }
    }

    /// The activation of `z` (in f64, as the twins compute).
    #[inline]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Identity => z,
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
        }
    }

    /// Its derivative, expressed through the activation's output `y` (what the backward pass keeps).
    #[inline]
    pub fn derivative_from_output(self, y: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - y * y,
        }
    }
}

/// A vec4 offset of a parameter block, in f32 elements.
#[inline]
pub(crate) fn at4(v: u32) -> usize {
    v as usize * 4
}

/// The 32-bit integer finaliser both the shaders and the CPU twins use for counter-based randomness
/// (dropout masks, MultVAE's ε). Must stay bit-identical to `mix32` in `shaders/lib/hash.wgsl`, the one
/// WGSL copy every shader that hashes includes.
#[inline]
pub fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Dropout for one layer in one step: which elements are dropped, and the scale of the kept ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// An element is dropped when its hash is below this (0: nothing is dropped).
    pub threshold: u32,
    /// 1 / (1 − rate): inverted dropout keeps the expected activation.
    pub scale: f32,
    pub seed: u32,
    /// Distinguishes steps and layers: `dropout_salt(step, layer)`.
    pub salt: u32,
}

impl Dropout {
    pub const NONE: Dropout = Dropout {
        threshold: 0,
        scale: 1.0,
        seed: 0,
        salt: 0,
    };

    /// Dropout at `rate` in [0, 1) for `layer` at training `step` of a run seeded with `seed`.
    pub fn new(rate: f32, seed: u64, step: u64, layer: u32) -> Dropout {
        if rate <= 0.0 {
            return Dropout::NONE;
        }
        assert!(rate < 1.0, "dropout rate must be below 1");
        let threshold = ((rate as f64) * 4_294_967_296.0)
            .round()
            .min(u32::MAX as f64) as u32;
        let salt = mix32(
            (step as u32) ^ mix32((step >> 32) as u32 ^ mix32(layer.wrapping_add(0x5bd1_e995))),
        );
        Dropout {
            threshold,
            scale: 1.0 / (1.0 - rate),
            seed: (seed ^ (seed >> 32)) as u32,
            salt,
        }
    }

    /// Whether element (`row`, `col`) is kept — `kept` in `shaders/lib/hash.wgsl`.
    #[inline]
    pub fn keep(&self, row: u32, col: u32) -> bool {
        self.threshold == 0
            || mix32(self.seed ^ mix32(self.salt ^ mix32(row ^ mix32(col)))) >= self.threshold
    }

    /// Multiplier for element (`row`, `col`): `scale` if kept, else 0.
    #[inline]
    pub fn factor(&self, row: u32, col: u32) -> f32 {
        if self.threshold == 0 {
            1.0
        } else if self.keep(row, col) {
            self.scale
        } else {
            0.0
        }
    }
}

/// Converts an offset in f32 elements into vec4 units, checking alignment (kernels load vec4).
pub(crate) fn vec4_offset(floats: usize) -> u32 {
    assert!(
        floats.is_multiple_of(4),
        "offset {floats} is not a multiple of 4 floats"
    );
    u32::try_from(floats / 4).expect("offset exceeds u32")
}

pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).expect("size exceeds u32")
}

/// Elementwise kernels over `n` floats as vec4 (`n` a multiple of 4), `per_group` vec4 per workgroup:
/// the vec4 count and the grid.
pub fn vec4_grid(n: usize, per_group: usize, max_per_dim: u32) -> (u32, crate::gpu::grid::Grid) {
    assert!(n.is_multiple_of(4), "buffers hold whole vec4");
    let grid = crate::gpu::grid::Grid::cover(n / 4, per_group, max_per_dim);
    (u32_of(n / 4), grid)
}
