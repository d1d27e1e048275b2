//! The device seam: the Whisper forward ([`crate::whisper`]) calls a [`Backend`] for every
//! tensor op, and keeps on the host only audio decode, token embedding lookup + positions,
//! beam bookkeeping, logit filters and sampling, timestamp rules and text.
//!
//! Weights are handed over once at load ([`Backend::prepare_linear`],
//! [`Backend::prepare_layer_norm`]) and come back as opaque handles ([`AsAny`] gets a
//! backend its own type back), so each backend can quantise, pack or upload them its own way. Keys and values live in backend-owned
//! [`KvCache`]s: the decoder's self-attention cache persists across steps (the valid length
//! is passed with every call), and a window's cross-attention K/V are written once.
//!
//! Backends: [`cpu::CpuBackend`] here (f32, int8 and bf16 numerics); the simulator of
//! compiled AIE designs lives in the compiler crate and implements this same trait.

pub mod cpu;
pub mod stats;

use std::any::Any;

pub use stats::{OpKind, OpStats, OpTotals};

/// Number formats of the matrix products (everything else stays f32, see [`cpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 weights and activations (the reference numerics).
    #[default]
    F32,
    /// The NPU numerics ([`crate::quant`]): per-output-channel int8 weights, dynamic
    /// per-row int8 activations, int32 accumulation, f32 epilogue.
    Int8,
    /// bf16 weights, f32 activations and accumulation.
    Bf16,
}

impl Precision {
    /// The format of the two encoder convolutions. `Int8` runs them in bf16, as the NPU plan
    /// does (`kernel-specs/whisper-base/enc_conv*.toml`): quantising them was measured to cost
    /// 1.4 WER points on the dev set (greedy: int8 convs 11.90 %, f32 convs 10.50 %, all-f32
    /// 10.83 %), the convolutions are 2 of ~100 products a window, and their inputs (the
    /// log-mel, conv1's GELU) have per-frame ranges a single row scale serves badly.
    pub fn conv(self) -> Precision {
        match self {
            Precision::Int8 => Precision::Bf16,
            p => p,
        }
    }

    /// The format of the logits product (`d_model x vocab`). `Int8` runs it in bf16: with an
    /// int8 vocabulary matrix the greedy dev-set WER was 11.49 % against f32's 10.83 %, the
    /// argmax over 51865 classes being where a per-row activation scale shows first.
    pub fn logits(self) -> Precision {
        match self {
            Precision::Int8 => Precision::Bf16,
            p => p,
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum BackendError {
    #[error("{name}: weight has {got} values, expected {n} x {k} = {}", n * k)]
    WeightShape {
        name: String,
        got: usize,
        n: usize,
        k: usize,
    },
    #[error("{name}: bias has {got} values, expected {n}")]
    BiasShape { name: String, got: usize, n: usize },
    #[error("{name}: gamma/beta have {gamma}/{beta} values, expected equal non-zero lengths")]
    NormShape {
        name: String,
        gamma: usize,
        beta: usize,
    },
}

/// A dense layer's weights as the model stores them: `weight` is `[n, k]` row-major (one
/// row per output channel), `bias` is `[n]`. `name` is the tensor prefix in the model
/// (e.g. `encoder/layer_0/ffn/linear_0`), so a backend can map it to its kernel plan.
pub struct LinearWeights {
    pub name: String,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub n: usize,
    pub k: usize,
}

impl LinearWeights {
    /// Checks the lengths against `n` and `k`.
    pub fn validate(&self) -> Result<(), BackendError> {
        if self.weight.len() != self.n * self.k || self.n == 0 || self.k == 0 {
            return Err(BackendError::WeightShape {
                name: self.name.clone(),
                got: self.weight.len(),
                n: self.n,
                k: self.k,
            });
        }
        match &self.bias {
            Some(b) if b.len() != self.n => Err(BackendError::BiasShape {
                name: self.name.clone(),
                got: b.len(),
                n: self.n,
            }),
            _ => Ok(()),
        }
    }
}

/// A layer norm's weights as the model stores them: `gamma` and `beta`, one value per column.
pub struct NormWeights {
    pub name: String,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl NormWeights {
    /// Checks that `gamma` and `beta` have equal, non-zero lengths.
    pub fn validate(&self) -> Result<(), BackendError> {
        if self.gamma.is_empty() || self.gamma.len() != self.beta.len() {
            return Err(BackendError::NormShape {
                name: self.name.clone(),
                gamma: self.gamma.len(),
                beta: self.beta.len(),
            });
        }
        Ok(())
    }
}

/// Lets a backend get the concrete type back from a handle it made (every `'static` type has
/// it, so the handle traits need no `as_any` of their own).
pub trait AsAny: Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The widths of a dense layer: `k` inputs, `n` outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub n: usize,
    pub k: usize,
}

/// A backend's own form of a dense layer (packed, quantised, on the device...).
pub trait PreparedLinear: AsAny + Send + Sync {
    fn shape(&self) -> LinearShape;
    /// Input width `k`.
    fn in_dim(&self) -> usize {
        self.shape().k
    }
    /// Output width `n`.
    fn out_dim(&self) -> usize {
        self.shape().n
    }
    /// The number of rows of `x` (`[rows, k]`).
    fn rows_of(&self, x: &[f32]) -> usize {
        let k = self.in_dim();
        debug_assert_eq!(
            x.len() % k,
            0,
            "input is not a whole number of {k}-wide rows"
        );
        x.len() / k
    }
}

/// A backend's own form of a layer norm's `gamma` and `beta`.
pub trait PreparedNorm: AsAny + Send + Sync {
    fn dim(&self) -> usize;
}

/// What happens to a product `x Wᵀ + b` before it is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epilogue {
    /// Apply GELU (erf form) to the biased product.
    pub gelu: bool,
    /// Add the result into `out` (the residual stream) instead of overwriting it.
    pub accumulate: bool,
}

impl Epilogue {
    pub const NONE: Epilogue = Epilogue {
        gelu: false,
        accumulate: false,
    };
    pub const GELU: Epilogue = Epilogue {
        gelu: true,
        accumulate: false,
    };
    pub const RESIDUAL: Epilogue = Epilogue {
        gelu: false,
        accumulate: true,
    };
}

/// How a convolution's input is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvLayout {
    /// `[c_in, t_in]` (the log-mel window as it comes).
    ChannelMajor,
    /// `[t_in, c_in]` (the previous convolution's output).
    TimeMajor,
}

/// A convolution's input: `frames` time steps of `x` in `layout`, and the stride.
#[derive(Clone, Copy, Debug)]
pub struct ConvInput<'a> {
    pub x: &'a [f32],
    pub layout: ConvLayout,
    pub frames: usize,
    pub stride: usize,
}

/// Shape of a key/value store: `layers` independent caches, each holding `batch` sequences
/// of up to `capacity` positions of `heads × head_dim` keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub batch: usize,
    pub capacity: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// Backend-owned keys and values (device buffers that persist across calls).
pub trait KvCache: AsAny + Send + Sync {
    fn shape(&self) -> KvShape;
}

/// Rows holding new keys and values: row `r` of `data` starts at `r * stride`; its key is at
/// column `k_offset`, its value at `v_offset` (each `heads × head_dim` wide). Rows are
/// `batch × n_new`, batch-major.
#[derive(Clone, Copy, Debug)]
pub struct KvRows<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub k_offset: usize,
    pub v_offset: usize,
    pub n_new: usize,
}

/// Query rows: row `r` is `data[r * stride + offset..][..heads × head_dim]`, `batch × per_batch`
/// rows, batch-major.
#[derive(Clone, Copy, Debug)]
pub struct Queries<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub offset: usize,
    pub batch: usize,
    pub per_batch: usize,
}

impl Queries<'_> {
    pub fn rows(&self) -> usize {
        self.batch * self.per_batch
    }
}

/// Where the keys and values of one attention call come from.
#[derive(Clone, Copy)]
pub enum KvSource<'a> {
    /// In the query rows themselves, at these column offsets: self-attention over all rows
    /// of one sequence, not causal (the encoder). The query batch must be 1.
    Inline { k_offset: usize, v_offset: usize },
    /// Layer `layer` of a decoder cache: each sequence's queries are its positions
    /// `past .. past + per_batch`, and query `i` sees positions `..= past + i` (causal).
    Causal {
        cache: &'a dyn KvCache,
        layer: usize,
        past: usize,
    },
    /// Layer `layer` of a one-sequence store of `len` positions that every query row sees
    /// in full (cross attention over the encoder frames).
    Shared {
        cache: &'a dyn KvCache,
        layer: usize,
        len: usize,
    },
}

/// One attention call: `heads` heads of the query rows `q` over the keys and values of `kv`;
/// the softmax weights of the heads in `keep_heads` come back.
#[derive(Clone, Copy)]
pub struct AttentionCall<'a> {
    pub heads: usize,
    pub q: Queries<'a>,
    pub kv: KvSource<'a>,
    pub keep_heads: &'a [usize],
}

/// The tensor ops of the Whisper forward. Every call is counted in [`Backend::stats`].
pub trait Backend: Send + Sync {
    /// Short name for messages (`cpu-f32`, `sim`, ...).
    fn name(&self) -> String;

    /// Takes a dense layer's weights once, at load.
    fn prepare_linear(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError>;

    /// Takes a convolution's weights once, at load (`[c_out, c_in · 3]`, the im2col product's
    /// layout). Apart from [`Backend::prepare_linear`] because a backend may run the
    /// convolutions in another number format than the dense layers ([`Precision::conv`]).
    fn prepare_conv(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        self.prepare_linear(w)
    }

    /// Takes the logits projection (`[n_vocab, d_model]`) once, at load; apart from
    /// [`Backend::prepare_linear`] for its number format ([`Precision::logits`]).
    fn prepare_logits(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        self.prepare_linear(w)
    }

    /// Takes a layer norm's `gamma` and `beta` once, at load.
    fn prepare_layer_norm(&self, w: NormWeights) -> Result<Box<dyn PreparedNorm>, BackendError>;

    /// log10 mel power of `n_frames` frames: frame `f` is the `N_FFT` samples of `signal`
    /// from `f * HOP` (the caller pads). Writes `out[f * n_mels + m]`. The file-wide
    /// dynamic-range clamp stays on the host: it needs every window's maximum.
    fn log_mel(&self, signal: &[f32], n_frames: usize, n_mels: usize, out: &mut [f32]);

    /// Kernel-3, padding-1 convolution with `w` (`[c_out, c_in × 3]`, the model's
    /// `[c_out, c_in, 3]` flattened) over `input`; writes `out`
    /// `[ceil(frames / stride), c_out]` through `epi`.
    fn conv1d(&self, w: &dyn PreparedLinear, input: ConvInput, epi: Epilogue, out: &mut [f32]);

    /// `out[rows, n] (=|+=) epi(x[rows, k] · Wᵀ + b)`; `rows` is `x.len() / k`.
    fn linear(&self, w: &dyn PreparedLinear, x: &[f32], epi: Epilogue, out: &mut [f32]);

    /// The vocabulary projection of final-norm rows: `out[rows, n_vocab] = x[rows, d] · Wᵀ`.
    fn logits(&self, w: &dyn PreparedLinear, x: &[f32], out: &mut [f32]);

    /// Layer norm (epsilon 1e-5) of each `dim`-wide row of `x` into `out`.
    fn layer_norm(&self, norm: &dyn PreparedNorm, x: &[f32], out: &mut [f32]);

    /// GELU (erf form) in place, where it is not fused into a product.
    fn gelu(&self, x: &mut [f32]);

    /// `x += y`, where the add is not fused into a product.
    fn add(&self, x: &mut [f32], y: &[f32]);

    /// A new, empty key/value store.
    fn new_kv_cache(&self, shape: KvShape) -> Box<dyn KvCache>;

    /// Writes `rows.n_new` positions from `pos` on, for every sequence of the cache, into
    /// layer `layer`.
    fn kv_write(&self, cache: &mut dyn KvCache, layer: usize, pos: usize, rows: KvRows);

    /// Keeps sequence `order[i]` as the new sequence `i` (beam survivors; may repeat or
    /// shrink the batch). Only the first `len` positions are valid.
    fn kv_reorder(&self, cache: &mut dyn KvCache, order: &[usize], len: usize);

    /// Scaled dot-product attention of `call.heads` heads: writes
    /// `out[rows, heads × head_dim]` and returns, for each head in `call.keep_heads`, its
    /// `[rows, len]` softmax weights.
    fn attention(&self, call: AttentionCall, out: &mut [f32]) -> Vec<Vec<f32>>;

    /// Launches and time per op kind since the backend was made (or last reset).
    fn stats(&self) -> &OpStats;
}
