//! From a wanted kernel (op and shape) to the spec documents to try, in order of preference
//! (see [`super::tiling`]), each named and typed for the plan's device and precision.

use super::doc::{Array, Body, Mnk, Rows, SpecDoc};
use super::forward::{LinearEpilogue, Want};
use super::tiling::{self, MatmulTiling};
use super::{PlanOptions, Precision};
use crate::device::DeviceModel;

/// Whisper's layernorm epsilon.
const LAYERNORM_EPSILON: f64 = 1e-5;

/// The epilogue expression of a linear layer at `precision`: int8 dequantises with the
/// activation row scale and the weight column scale first.
fn linear_epilogue(epilogue: LinearEpilogue, precision: Precision) -> (String, &'static str) {
    let acc = match precision {
        Precision::Int8 => "acc * sa[row] * sw[col]",
        Precision::Bf16 => "acc",
    };
    match epilogue {
        LinearEpilogue::Bias => (format!("{acc} + bias[col]"), "bf16"),
        LinearEpilogue::BiasGelu => (format!("gelu({acc} + bias[col])"), "bf16"),
        LinearEpilogue::Logits => (acc.to_string(), "f32"),
    }
}

/// The shared header of every spec the plan writes.
pub struct Namer<'a> {
    pub opts: &'a PlanOptions,
}

impl Namer<'_> {
    /// `wb_enc_fc1`, `wb_npu2_enc_fc1`, `wb_enc_out_proj_bf16`: model prefix, the device when
    /// it is not npu1, the entry, and the precision of linear layers that are not int8.
    fn name(&self, entry: &str, is_linear: bool) -> String {
        let device = if self.opts.device == "npu1" {
            String::new()
        } else {
            format!("{}_", self.opts.device)
        };
        let precision = match (is_linear, self.opts.precision) {
            (true, Precision::Bf16) => "_bf16",
            _ => "",
        };
        format!("{}_{device}{entry}{precision}", self.opts.spec_prefix)
    }

    /// One spec per tiling, its array and body from `spec`.
    fn docs<T>(
        &self,
        entry: &str,
        dtype: &'static str,
        tilings: Vec<T>,
        spec: impl Fn(T) -> (Array, Body),
    ) -> Vec<SpecDoc> {
        tilings
            .into_iter()
            .map(|t| {
                let (array, body) = spec(t);
                self.doc(entry, dtype, array, body)
            })
            .collect()
    }

    fn doc(&self, entry: &str, dtype: &'static str, array: Array, body: Body) -> SpecDoc {
        SpecDoc {
            op: body.op(),
            name: self.name(entry, matches!(body, Body::Linear { .. })),
            device: self.opts.device.clone(),
            dtype,
            array,
            depth: 2,
            body,
        }
    }
}

/// The linear spec of one tiling at the plan's precision.
fn linear_doc(namer: &Namer, entry: &str, t: MatmulTiling, epilogue: LinearEpilogue) -> SpecDoc {
    let precision = namer.opts.precision;
    let dtype = match precision {
        Precision::Int8 => "int8",
        Precision::Bf16 => "bf16",
    };
    let (epilogue, out_dtype) = linear_epilogue(epilogue, precision);
    let body = Body::Linear {
        shape: t.shape,
        tile: t.tile,
        epilogue,
        out_dtype,
    };
    namer.doc(entry, dtype, t.array, body)
}

/// The candidate specs for `want`, best first.
pub fn candidates(namer: &Namer, entry: &str, want: Want, dev: &DeviceModel) -> Vec<SpecDoc> {
    let rowwise = |r, body: &dyn Fn(usize) -> Body| {
        let tilings = tiling::rowwise_candidates(r, dev);
        namer.docs(entry, "bf16", tilings, |(array, tile_rows)| {
            (array, body(tile_rows))
        })
    };
    match want {
        Want::Mel { frames, n_mels } => {
            let tilings = tiling::mel_candidates(frames, dev);
            namer.docs(entry, "f32", tilings, |(array, frame_tile)| {
                let body = Body::Mel {
                    frames,
                    n_fft: crate::ops::mel::N_FFT,
                    hop: crate::ops::mel::HOP,
                    n_mels,
                    sample_rate: crate::ops::mel::SAMPLE_RATE,
                    frame_tile,
                };
                (array, body)
            })
        }
        Want::Linear { m, k, n, epilogue } => tiling::matmul_candidates(m, k, n, dev)
            .into_iter()
            .map(|t| linear_doc(namer, entry, t, epilogue))
            .collect(),
        Want::Conv {
            c_in,
            c_out,
            frames,
            stride,
        } => {
            let tilings = tiling::conv_candidates((frames - 1) / stride + 1, c_in, c_out, dev);
            namer.docs(entry, "bf16", tilings, |t| {
                let body = Body::Conv {
                    c_in,
                    c_out,
                    frames,
                    stride,
                    tile: t.tile,
                    epilogue: "gelu(acc + bias[col])".into(),
                    out_dtype: "bf16",
                };
                (t.array, body)
            })
        }
        Want::Attention { shape, token_major } => {
            let tilings = tiling::attention_candidates(shape.heads, shape.q_len, shape.kv_len, dev);
            namer.docs(entry, "bf16", tilings, |(array, q_tile, kv_tile)| {
                let body = Body::Attention {
                    shape,
                    q_tile,
                    kv_tile,
                    causal: false,
                    layout: token_major.then_some("token_major"),
                };
                (array, body)
            })
        }
        Want::Layernorm { rows, cols } => rowwise(rows, &|tile_rows| Body::Layernorm {
            shape: Rows { rows, cols },
            tile_rows,
            epsilon: LAYERNORM_EPSILON,
        }),
        Want::Quantize { rows, cols } => rowwise(rows, &|tile_rows| Body::Quantize {
            shape: Rows { rows, cols },
            tile_rows,
        }),
        Want::Add { rows, cols } => {
            // f32: the residual stream keeps the cpu path's numerics.
            let tilings = tiling::add_candidates(rows, cols, 4, dev);
            namer.docs(entry, "f32", tilings, |(array, tile_rows)| {
                let body = Body::Add {
                    shape: Rows { rows, cols },
                    tile_rows,
                };
                (array, body)
            })
        }
        Want::AttentionDecode(shape) => {
            let tilings =
                tiling::attention_decode_candidates(shape.beams * shape.heads, shape.kv_len, dev);
            namer.docs(entry, "bf16", tilings, |(array, kv_tile)| {
                (array, Body::AttentionDecode { shape, kv_tile })
            })
        }
    }
}

/// The padded fields of a chosen spec against the shape the forward op has.
/// `live_rows` are the rows that carry data when the wanted rows are already padded.
pub fn padding_of(
    want: Want,
    live_rows: Option<usize>,
    body: &Body,
) -> Vec<(&'static str, usize, usize)> {
    let mut pads = Vec::new();
    let mut note = |field, from: usize, to: usize| {
        if from != to {
            pads.push((field, from, to));
        }
    };
    match (want, body) {
        (Want::Linear { m, k, n, .. }, Body::Linear { shape: s, .. }) => {
            let Mnk {
                m: pm,
                k: pk,
                n: pn,
            } = *s;
            note("shape.m", live_rows.unwrap_or(m), pm);
            note("shape.k", k, pk);
            note("shape.n", n, pn);
        }
        (Want::Layernorm { rows, .. }, Body::Layernorm { shape, .. })
        | (Want::Quantize { rows, .. }, Body::Quantize { shape, .. })
        | (Want::Add { rows, .. }, Body::Add { shape, .. }) => {
            note("shape.rows", live_rows.unwrap_or(rows), shape.rows)
        }
        _ => {}
    }
    pads
}
