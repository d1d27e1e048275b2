//! From a wanted kernel (op and shape) to the spec documents to try, in order of preference
//! (see [`super::tiling`]), each named and typed for the plan's device and precision.

use super::doc::{Array, Body, Mnk, Requant, Rows, SpecDoc, Table};
use super::forward::Want;
use super::tiling::{self, MatmulTiling};
use super::{PlanOptions, Precision};
use crate::device::DeviceModel;

/// Whisper's layernorm epsilon.
const LAYERNORM_EPSILON: f64 = 1e-5;
/// The GELU table of kernel-specs/gelu.toml: [-4, 4] in steps of 1/32 (error bound in
/// `ops::gelu::TOLERANCE`).
const GELU_TABLE: Table = Table {
    min: -4.0,
    max: 4.0,
    step: 0.03125,
};

/// Today's fixed-shift requantisation, sized so random int8 operands stay mostly inside the
/// int8 range: the sum of `k` products grows like `sqrt(k)`, `shift = ceil(log2 k) + 3`
/// (12 for k = 512, 14 for k = 2048).
fn placeholder_requant(k: usize) -> Requant {
    Requant {
        shift: k.next_power_of_two().trailing_zeros() + 3,
        scale: 3,
    }
}

/// The shared header of every spec the plan writes.
pub struct Namer<'a> {
    pub opts: &'a PlanOptions,
}

impl Namer<'_> {
    /// `wb_enc_fc1`, `wb_npu2_enc_fc1`, `wb_enc_out_proj_bf16`: model prefix, the device when
    /// it is not npu1, the entry, and the precision of matmuls that are not int8.
    fn name(&self, entry: &str, is_matmul: bool) -> String {
        let device = if self.opts.device == "npu1" {
            String::new()
        } else {
            format!("{}_", self.opts.device)
        };
        let precision = match (is_matmul, self.opts.precision) {
            (true, Precision::Bf16) => "_bf16",
            _ => "",
        };
        format!("{}_{device}{entry}{precision}", self.opts.spec_prefix)
    }

    fn doc(&self, entry: &str, dtype: &'static str, array: Array, body: Body) -> SpecDoc {
        SpecDoc {
            op: body.op(),
            name: self.name(entry, matches!(body, Body::Matmul { .. })),
            device: self.opts.device.clone(),
            dtype,
            array,
            depth: 2,
            body,
        }
    }
}

/// The matmul spec of one tiling at the plan's precision.
fn matmul_doc(namer: &Namer, entry: &str, t: MatmulTiling) -> SpecDoc {
    // TODO(epilogue, wt-mm): once matmul has its dequantising epilogue (acc x row scale x
    // column scale + bias, optional GELU / residual add), it replaces `requant` here, and the
    // GELU entries that follow fc1/conv fold into it.
    let (dtype, requant) = match namer.opts.precision {
        Precision::Int8 => ("int8", Some(placeholder_requant(t.shape.k))),
        Precision::Bf16 => ("bf16", None),
    };
    let body = Body::Matmul {
        shape: t.shape,
        tile: t.tile,
        requant,
    };
    namer.doc(entry, dtype, t.array, body)
}

/// The candidate specs for `want`, best first.
pub fn candidates(namer: &Namer, entry: &str, want: Want, dev: &DeviceModel) -> Vec<SpecDoc> {
    let rows = |rows, cols| Rows { rows, cols };
    match want {
        Want::Mel { frames, n_mels } => tiling::mel_candidates(frames, dev)
            .into_iter()
            .map(|(array, frame_tile)| {
                let body = Body::Mel {
                    frames,
                    n_fft: crate::ops::mel::N_FFT,
                    hop: crate::ops::mel::HOP,
                    n_mels,
                    sample_rate: crate::ops::mel::SAMPLE_RATE,
                    frame_tile,
                };
                namer.doc(entry, "f32", array, body)
            })
            .collect(),
        Want::Matmul { m, k, n } => tiling::matmul_candidates(m, k, n, dev)
            .into_iter()
            .map(|t| matmul_doc(namer, entry, t))
            .collect(),
        Want::Attention {
            heads,
            q_len,
            kv_len,
            head_dim,
        } => tiling::attention_candidates(heads, q_len, kv_len, dev)
            .into_iter()
            .map(|(array, q_tile, kv_tile)| {
                let body = Body::Attention {
                    heads,
                    q_len,
                    kv_len,
                    head_dim,
                    q_tile,
                    kv_tile,
                    causal: false,
                };
                namer.doc(entry, "bf16", array, body)
            })
            .collect(),
        Want::Layernorm { rows: r, cols } => tiling::rowwise_candidates(r, dev)
            .into_iter()
            .map(|(array, tile_rows)| {
                let body = Body::Layernorm {
                    shape: rows(r, cols),
                    tile_rows,
                    epsilon: LAYERNORM_EPSILON,
                };
                namer.doc(entry, "bf16", array, body)
            })
            .collect(),
        Want::Gelu { rows: r, cols } => tiling::rowwise_candidates(r, dev)
            .into_iter()
            .map(|(array, tile_rows)| {
                let body = Body::Gelu {
                    shape: rows(r, cols),
                    tile_rows,
                    table: GELU_TABLE,
                };
                namer.doc(entry, "bf16", array, body)
            })
            .collect(),
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
        (Want::Matmul { m, k, n }, Body::Matmul { shape: s, .. }) => {
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
        | (Want::Gelu { rows, .. }, Body::Gelu { shape, .. }) => {
            note("shape.rows", live_rows.unwrap_or(rows), shape.rows)
        }
        _ => {}
    }
    pads
}
