//! One module per WGSL stage: the launcher (parameter block, workgroup count) and its CPU twin side by
//! side. The CPU twins are the reference path: plain Rust, f64 accumulation where sums are long, the
//! same integer hashes as the shaders. `model::reference` composes them exactly as the GPU step
//! composes the kernels.

pub mod adam_dense;
pub mod adam_table;
pub mod dense_backward_data;
pub mod dense_backward_weight;
pub mod dense_forward;
pub mod score_loss;
pub mod sparse_proj_bias_grad;
pub mod sparse_proj_forward;

/// Marks an id that is not in the batch in the id → batch-row maps (`NONE` in the shaders).
pub const NOT_IN_BATCH: u32 = u32::MAX;

/// The float type of a CPU twin: `f32` to mirror the GPU, `f64` for finite-difference checks. Twins do
/// their arithmetic in f64 either way and round their outputs to `T`.
pub trait Real: Copy + Default + PartialOrd + Send + Sync + std::fmt::Debug + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// A 2-D grid for `n` workgroups (each dimension is limited to `max_per_dim`, 65,535 in WebGPU):
/// returns `[x, y, 1]`; kernels recover the index as `x + y * groups_x`.
pub fn grid_2d(n: usize, max_per_dim: u32) -> [u32; 3] {
    let max = max_per_dim.max(1) as usize;
    if n <= max {
        [n as u32, 1, 1]
    } else {
        [max as u32, n.div_ceil(max) as u32, 1]
    }
}

/// The 32-bit integer finaliser both the shaders and the CPU twins use for counter-based randomness
/// (dropout masks). Must stay bit-identical to `mix32` in the WGSL files.
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

    /// Whether element (`row`, `col`) is kept — the shader's `dropout_hash(...) >= threshold`.
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
        floats % 4 == 0,
        "offset {floats} is not a multiple of 4 floats"
    );
    u32::try_from(floats / 4).expect("offset exceeds u32")
}

pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).expect("size exceeds u32")
}
