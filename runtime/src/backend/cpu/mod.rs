//! The `cpu` backend: the Whisper tensor ops on the host's cores.
//!
//! Matrix products (linear layers, the im2col'd convolutions, the logits) run in the chosen
//! [`Precision`] (the convolutions in [`Precision::conv`]: bf16 under `Int8`):
//! - `F32`: the `gemm` crate for many rows, a streaming GEMV for decoder steps
//!   ([`crate::whisper::stream`]); weights that are exactly fp16 (an fp16 model's) are kept
//!   in fp16 and widened as they are read ([`narrow`]), bit-identical for half the bytes;
//! - `Int8`: the NPU numerics of [`crate::quant`] with AVX-512 VNNI / AVX2 / scalar kernels
//!   ([`int8`]), bit-identical int32 accumulators on all three;
//! - `Bf16`: bf16 weights widened to f32 in registers, f32 accumulation ([`bf16`], [`narrow`]).
//!
//! Layer norm, softmax, GELU and attention compute in f32. Under `Int8` their values pass
//! through bf16 where the NPU plan's kernels hold them in bf16 ([`CpuBackend::npu_bf16`]):
//! layer norm and unfused GELU outputs, attention's queries, keys and values (the KV caches
//! included) and its output. So `--precision int8` is the NPU's numerics, not int8 products
//! inside an otherwise f32 model. On the dev set that took its greedy WER from 11.82% to
//! 10.74% (f32 10.83%, sim 10.83%); `tests/int8_bf16_points.rs` checks each point.

pub mod attend;
mod attention;
pub mod bf16;
pub mod int8;
pub mod kv;
pub mod narrow;

use super::{
    AttentionCall, Backend, BackendError, ConvInput, ConvLayout, Epilogue, KvCache, KvRows,
    KvShape, LinearShape, LinearWeights, NormWeights, OpKind, OpStats, Precision, PreparedLinear,
    PreparedNorm,
};
use crate::whisper::ops::{self, LayerNorm, Linear};
use rayon::prelude::*;

/// The host backend in one precision.
#[derive(Default)]
pub struct CpuBackend {
    precision: Precision,
    stats: OpStats,
}

impl CpuBackend {
    pub fn new(precision: Precision) -> Self {
        Self {
            precision,
            stats: OpStats::default(),
        }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether values pass through bf16 where the NPU plan holds them in bf16 (its
    /// layernorm, GELU and attention kernels take and give bf16; the matmul epilogues and
    /// the softmax inside attention stay f32, as on the device).
    fn npu_bf16(&self) -> bool {
        self.precision == Precision::Int8
    }

    /// `x` rounded to bf16 in place when [`Self::npu_bf16`].
    fn through_bf16(&self, x: &mut [f32]) {
        if self.npu_bf16() {
            bf16::round_in_place(x);
        }
    }
}

/// A dense layer in the backend's precision.
enum Weights {
    F32(Linear),
    /// f32 numerics on weights that are exactly fp16 (an fp16 model's): half the bytes.
    F16(narrow::NarrowLinear<half::f16>),
    Int8(int8::PackedI8),
    Bf16(narrow::NarrowLinear<half::bf16>),
}

struct CpuLinear {
    weights: Weights,
    shape: LinearShape,
}

impl PreparedLinear for CpuLinear {
    fn shape(&self) -> LinearShape {
        self.shape
    }
}

impl PreparedNorm for LayerNorm {
    fn dim(&self) -> usize {
        self.gamma.len()
    }
}

fn cpu_linear(w: &dyn PreparedLinear) -> &CpuLinear {
    w.as_any()
        .downcast_ref()
        .expect("a linear layer prepared by another backend was passed to the cpu backend")
}

impl CpuLinear {
    /// `y[rows, n] = x Wᵀ + b` in the layer's precision.
    fn product(&self, x: &[f32], y: &mut [f32]) {
        let rows = self.rows_of(x);
        match &self.weights {
            Weights::F32(l) => l.forward_into(x, rows, y),
            Weights::F16(l) => l.forward(x, rows, y),
            Weights::Int8(p) => int8::forward(p, x, rows, y),
            Weights::Bf16(b) => b.forward(x, rows, y),
        }
    }

    /// The product through `epi` into `out`.
    fn apply(&self, x: &[f32], epi: Epilogue, out: &mut [f32]) {
        if epi.accumulate {
            // A separate product and add keeps the f32 results bit-identical to the unfused
            // order (bias first, then the residual).
            let mut y = vec![0.0f32; out.len()];
            self.product(x, &mut y);
            if epi.gelu {
                ops::gelu_in_place(&mut y);
            }
            ops::add_in_place(out, &y);
        } else {
            self.product(x, out);
            if epi.gelu {
                ops::gelu_in_place(out);
            }
        }
    }
}

/// im2col of a kernel-3, padding-1 convolution: row `t` of the result is
/// `[x(c, t·stride + j - 1) for c, j]` (channel-major, as the weights are flattened).
pub fn im2col(input: ConvInput, c_in: usize) -> Vec<f32> {
    let ConvInput {
        x,
        layout,
        frames: t_in,
        stride,
    } = input;
    let t_out = t_in.div_ceil(stride);
    let mut cols = vec![0.0f32; t_out * c_in * 3];
    cols.par_chunks_mut(c_in * 3)
        .enumerate()
        .for_each(|(t, row)| {
            for j in 0..3 {
                let src = (t * stride + j) as isize - 1;
                if src < 0 || src as usize >= t_in {
                    continue;
                }
                let src = src as usize;
                match layout {
                    ConvLayout::TimeMajor => {
                        let xr = &x[src * c_in..(src + 1) * c_in];
                        for c in 0..c_in {
                            row[c * 3 + j] = xr[c];
                        }
                    }
                    ConvLayout::ChannelMajor => {
                        for c in 0..c_in {
                            row[c * 3 + j] = x[c * t_in + src];
                        }
                    }
                }
            }
        });
    cols
}

/// A dense layer's weights in `precision`.
fn prepare(
    w: LinearWeights,
    precision: Precision,
) -> Result<Box<dyn PreparedLinear>, BackendError> {
    w.validate()?;
    let (n, k) = (w.n, w.k);
    let weights = match precision {
        Precision::F32 => match narrow::exact_f16(&w.weight) {
            Some(half) => Weights::F16(narrow::NarrowLinear::new(half, w.bias, n, k)),
            None => Weights::F32(Linear {
                weight: w.weight,
                bias: w.bias,
                out_dim: n,
                in_dim: k,
            }),
        },
        Precision::Int8 => Weights::Int8(int8::PackedI8::new(&w.weight, w.bias, n, k)),
        Precision::Bf16 => Weights::Bf16(bf16::linear(&w.weight, w.bias, n, k)),
    };
    let shape = LinearShape { n, k };
    Ok(Box::new(CpuLinear { weights, shape }))
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        let p = match self.precision {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::Bf16 => "bf16",
        };
        format!("cpu-{p}")
    }

    fn prepare_linear(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        prepare(w, self.precision)
    }

    fn prepare_conv(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        prepare(w, self.precision.conv())
    }

    fn prepare_logits(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        prepare(w, self.precision.logits())
    }

    fn prepare_layer_norm(&self, w: NormWeights) -> Result<Box<dyn PreparedNorm>, BackendError> {
        w.validate()?;
        let NormWeights { gamma, beta, .. } = w;
        Ok(Box::new(LayerNorm { gamma, beta }))
    }

    fn log_mel(&self, signal: &[f32], n_frames: usize, n_mels: usize, out: &mut [f32]) {
        self.stats.time(OpKind::LogMel, || {
            crate::mel::log10_mel_frames(signal, n_frames, n_mels, out)
        })
    }

    fn conv1d(&self, w: &dyn PreparedLinear, input: ConvInput, epi: Epilogue, out: &mut [f32]) {
        self.stats.time(OpKind::Conv, || {
            let w = cpu_linear(w);
            let cols = im2col(input, w.in_dim() / 3);
            w.apply(&cols, epi, out);
        })
    }

    fn linear(&self, w: &dyn PreparedLinear, x: &[f32], epi: Epilogue, out: &mut [f32]) {
        self.stats
            .time(OpKind::Linear, || cpu_linear(w).apply(x, epi, out))
    }

    fn logits(&self, w: &dyn PreparedLinear, x: &[f32], out: &mut [f32]) {
        self.stats.time(OpKind::Logits, || {
            cpu_linear(w).apply(x, Epilogue::NONE, out)
        })
    }

    fn layer_norm(&self, norm: &dyn PreparedNorm, x: &[f32], out: &mut [f32]) {
        self.stats.time(OpKind::LayerNorm, || {
            let norm: &LayerNorm = norm
                .as_any()
                .downcast_ref()
                .expect("a layer norm prepared by another backend was passed to the cpu backend");
            norm.forward_into(x, out);
            self.through_bf16(out);
        })
    }

    fn gelu(&self, x: &mut [f32]) {
        self.stats.time(OpKind::Gelu, || {
            ops::gelu_in_place(x);
            self.through_bf16(x);
        })
    }

    fn add(&self, x: &mut [f32], y: &[f32]) {
        self.stats.time(OpKind::Add, || ops::add_in_place(x, y))
    }

    fn new_kv_cache(&self, shape: KvShape) -> Box<dyn KvCache> {
        if self.npu_bf16() {
            // The device's caches are bf16 buffers.
            Box::new(kv::CpuKv::<half::bf16>::new(shape))
        } else {
            Box::new(kv::CpuKv::<f32>::new(shape))
        }
    }

    fn kv_write(&self, cache: &mut dyn KvCache, layer: usize, pos: usize, rows: KvRows) {
        self.stats.time(OpKind::KvWrite, || {
            kv::cpu_kv_mut(cache).write(layer, pos, rows)
        })
    }

    fn kv_reorder(&self, cache: &mut dyn KvCache, order: &[usize], len: usize) {
        self.stats.time(OpKind::KvReorder, || {
            kv::cpu_kv_mut(cache).reorder(order, len)
        })
    }

    fn attention(&self, call: AttentionCall, out: &mut [f32]) -> Vec<Vec<f32>> {
        self.stats.time(OpKind::Attention, || {
            if !self.npu_bf16() {
                return attention::attend(call, out);
            }
            // The query rows (and, for the encoder, the keys and values beside them) as the
            // device's bf16 attention kernel reads them.
            let rows = bf16::rounded(call.q.data);
            let q = super::Queries {
                data: &rows,
                ..call.q
            };
            let weights = attention::attend(AttentionCall { q, ..call }, out);
            bf16::round_in_place(out);
            weights
        })
    }

    fn stats(&self) -> &OpStats {
        &self.stats
    }
}
