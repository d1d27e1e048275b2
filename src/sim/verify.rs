//! Spec-level checking: build the op's design from its spec, draw inputs, simulate, and compare
//! the outputs with the op's float64 reference under the bound documented in the op's module.

use super::inputs::InputGen;
use super::{HostData, SimError, SimOptions, SimRun};
use crate::ops::{attention, gelu, layernorm, matmul, mel, softmax};
use crate::spec::{Dtype, Spec, SpecError};

#[derive(thiserror::Error, Debug)]
pub enum VerifyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("spec `{spec}`: the simulator has no reference check for op `{op}`")]
    NoReference { spec: String, op: String },
}

/// How the outputs compare with the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub elements: usize,
    pub max_abs_error: f64,
    /// `||y - ref|| / ||ref||`.
    pub rel_l2_error: f64,
    /// For integer outputs: elements equal to the reference.
    pub exact_matches: Option<usize>,
    /// Elements outside the op's bound.
    pub violations: usize,
    /// The worst element relative to its bound: (index, simulated, reference).
    pub worst: Option<(usize, f64, f64)>,
    /// The bound, as documented in the op's module.
    pub bound: String,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.violations == 0
    }

    /// Compares `y` with `reference` element by element; `bound(reference)` is the allowed
    /// absolute error of each element.
    pub fn new(
        y: &[f64],
        reference: &[f64],
        integer: bool,
        bound: &str,
        allowed: impl Fn(usize, f64) -> f64,
    ) -> Self {
        let mut max_abs = 0f64;
        let (mut err2, mut ref2) = (0f64, 0f64);
        let mut exact = 0;
        let mut violations = 0;
        let mut worst: Option<(usize, f64, f64)> = None;
        let mut worst_ratio = 0f64;
        for (i, (&v, &r)) in y.iter().zip(reference).enumerate() {
            let e = (v - r).abs();
            let e = if e.is_nan() { f64::INFINITY } else { e };
            max_abs = max_abs.max(e);
            err2 += e * e;
            ref2 += r * r;
            if v == r {
                exact += 1;
            }
            let limit = allowed(i, r);
            if e > limit {
                violations += 1;
            }
            let ratio = if limit > 0.0 {
                e / limit
            } else if e > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            if ratio > worst_ratio || worst.is_none() {
                worst_ratio = ratio;
                worst = Some((i, v, r));
            }
        }
        Comparison {
            elements: y.len(),
            max_abs_error: max_abs,
            rel_l2_error: if ref2 > 0.0 {
                (err2 / ref2).sqrt()
            } else {
                err2.sqrt()
            },
            exact_matches: integer.then_some(exact),
            violations: violations + reference.len().abs_diff(y.len()),
            worst,
            bound: bound.to_string(),
        }
    }
}

/// Compares the drained outputs with the reference computed alongside the inputs.
type Judge = Box<dyn FnOnce(&[HostData]) -> Comparison>;

/// A simulated spec and its comparison.
#[derive(Debug, Clone)]
pub struct SpecCheck {
    pub run: SimRun,
    pub comparison: Comparison,
}

/// Builds `spec`'s design (after validating it against its device), simulates it on inputs
/// drawn from `seed`, and compares with the op's reference.
pub fn check_spec(spec: &Spec, seed: u64, options: &SimOptions) -> Result<SpecCheck, VerifyError> {
    let device = spec.device()?;
    spec.validate(&device)?;
    let design = spec.build()?;
    let mut gen = InputGen::new(seed);
    let (inputs, reference): (Vec<HostData>, Judge) = match spec {
        Spec::Matmul(s) => {
            let (m, k, n) = (s.shape.m, s.shape.k, s.shape.n);
            match (s.dtype, s.requant) {
                (Dtype::Int8, Some(rq)) => {
                    let (a, b) = (gen.int8(m * k), gen.int8(k * n));
                    let r: Vec<f64> = matmul::reference_int8(&a, &b, m, k, n, rq)
                        .iter()
                        .map(|&v| f64::from(v))
                        .collect();
                    let tol = f64::from(matmul::TOLERANCE_INT8);
                    (
                        vec![HostData::I8(a), HostData::I8(b)],
                        Box::new(move |out: &[HostData]| {
                            Comparison::new(
                                &out[0].to_f64(),
                                &r,
                                true,
                                "|y - ref| <= TOLERANCE_INT8 (bit-exact)",
                                |_, _| tol,
                            )
                        }),
                    )
                }
                _ => {
                    let elem = s.dtype.elem();
                    let a = gen.normal_data(elem, m * k, 0.0, 1.0);
                    let b = gen.normal_data(elem, k * n, 0.0, 1.0);
                    let (af, bf): (Vec<f32>, Vec<f32>) = (
                        a.to_f64().iter().map(|&v| v as f32).collect(),
                        b.to_f64().iter().map(|&v| v as f32).collect(),
                    );
                    let r = matmul::reference_f64(&af, &bf, m, k, n);
                    let abs_a: Vec<f32> = af.iter().map(|v| v.abs()).collect();
                    let abs_b: Vec<f32> = bf.iter().map(|v| v.abs()).collect();
                    let abs_sum = matmul::reference_f64(&abs_a, &abs_b, m, k, n);
                    (
                        vec![a, b],
                        Box::new(move |out: &[HostData]| {
                            Comparison::new(
                                &out[0].to_f64(),
                                &r,
                                false,
                                "|y - ref| <= TOLERANCE |ref| + K 2^-24 sum|a||b|",
                                |i, rv| matmul::bf16_bound(rv, abs_sum[i], k),
                            )
                        }),
                    )
                }
            }
        }
        Spec::Gelu(s) => {
            let (rows, cols) = (s.shape.rows, s.shape.cols);
            // Spread over the table and both tails.
            let x = gen.normal_data(s.dtype.elem(), rows * cols, 0.0, 2.0);
            let r: Vec<f64> = x.to_f64().iter().map(|&v| gelu::reference(v)).collect();
            let rel = if s.dtype == Dtype::F32 {
                2f64.powi(-23)
            } else {
                2f64.powi(-8)
            };
            (
                vec![x],
                Box::new(move |out: &[HostData]| {
                    Comparison::new(
                        &out[0].to_f64(),
                        &r,
                        false,
                        "|y - ref| <= TOLERANCE + 2^-8 |ref|",
                        |_, rv| gelu::TOLERANCE + rel * rv.abs(),
                    )
                }),
            )
        }
        Spec::Softmax(s) => {
            let (rows, cols) = (s.shape.rows, s.shape.cols);
            let x = gen.normal_data(s.dtype.elem(), rows * cols, 0.0, 3.0);
            let r = softmax::reference(&x.to_f64(), rows, cols, s.causal);
            (
                vec![x],
                Box::new(move |out: &[HostData]| {
                    Comparison::new(
                        &out[0].to_f64(),
                        &r,
                        false,
                        "|y - ref| <= TOLERANCE",
                        |_, _| softmax::TOLERANCE,
                    )
                }),
            )
        }
        Spec::Layernorm(s) => {
            let (rows, cols) = (s.shape.rows, s.shape.cols);
            let elem = s.dtype.elem();
            // Activations with a per-run offset and scale, gamma around 1, beta around 0.
            let x = gen.normal_data(elem, rows * cols, 0.5, 2.0);
            let gamma = gen.normal_data(elem, cols, 1.0, 0.5).to_f64();
            let beta = gen.normal_data(elem, cols, 0.0, 0.5).to_f64();
            let params: Vec<f64> = gamma.iter().chain(beta.iter()).copied().collect();
            let p = match elem {
                crate::design::ElemType::F32 => {
                    HostData::F32(params.iter().map(|&v| v as f32).collect())
                }
                _ => HostData::Bf16(params.iter().map(|&v| half::bf16::from_f64(v)).collect()),
            };
            let r = layernorm::reference(&x.to_f64(), rows, cols, &gamma, &beta, s.epsilon);
            (
                vec![x, p],
                Box::new(move |out: &[HostData]| {
                    Comparison::new(
                        &out[0].to_f64(),
                        &r,
                        false,
                        "|y - ref| <= TOLERANCE (1 + |ref|)",
                        |_, rv| layernorm::TOLERANCE * (1.0 + rv.abs()),
                    )
                }),
            )
        }
        Spec::Attention(s) => {
            let (h, ql, kl, d) = (s.heads, s.q_len, s.kv_len, s.head_dim);
            let elem = s.dtype.elem();
            let q = gen.normal_data(elem, h * ql * d, 0.0, 1.0);
            // Host layout KV[head, j] = K_j then V_j.
            let kv = gen.normal_data(elem, h * kl * 2 * d, 0.0, 1.0);
            let scale = s.scale.unwrap_or(1.0 / (d as f64).sqrt());
            let (qf, kvf) = (q.to_f64(), kv.to_f64());
            let mut r = Vec::with_capacity(h * ql * d);
            let mut bounds = Vec::with_capacity(h);
            for head in 0..h {
                let rows = &kvf[head * kl * 2 * d..(head + 1) * kl * 2 * d];
                let k: Vec<f64> = rows
                    .chunks(2 * d)
                    .flat_map(|row| row[..d].to_vec())
                    .collect();
                let v: Vec<f64> = rows
                    .chunks(2 * d)
                    .flat_map(|row| row[d..].to_vec())
                    .collect();
                let qh = &qf[head * ql * d..(head + 1) * ql * d];
                r.extend(attention::reference(qh, &k, &v, ql, kl, d, scale, s.causal));
                let max_v = v.iter().fold(0f64, |m, x| m.max(x.abs()));
                bounds.push(attention::TOLERANCE * max_v);
            }
            (
                vec![q, kv],
                Box::new(move |out: &[HostData]| {
                    Comparison::new(
                        &out[0].to_f64(),
                        &r,
                        false,
                        "|o - ref| <= TOLERANCE max|V| (per head)",
                        |i, _| bounds[i / (ql * d)],
                    )
                }),
            )
        }
        Spec::Mel(s) => {
            // Speech-like audio: a few harmonics with a slow envelope plus noise, sized so that
            // Whisper's padding gives exactly the design's input buffer.
            // Whisper keeps (len + 160) / 160 frames: `frames` frames need frames*160 - 160
            // samples; the design reads the padded signal up to the end of the last frame.
            let n = s.frames * mel::HOP - mel::HOP;
            let padded_len = design.sequence.args[0].ty.numel();
            let f0 = 120.0 + 80.0 * (gen.normal().abs().min(2.0));
            let audio: Vec<f32> = (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(mel::SAMPLE_RATE);
                    let env = 0.5 + 0.5 * (std::f64::consts::TAU * 3.0 * t).sin();
                    let voice: f64 = (1..=6)
                        .map(|h| (std::f64::consts::TAU * f0 * h as f64 * t).sin() / h as f64)
                        .sum();
                    (0.1 * env * voice + 0.01 * gen.normal()) as f32
                })
                .collect();
            let (mut padded, frames) = mel::pad_for_stft(&audio);
            padded.truncate(padded_len);
            let padded_f64: Vec<f64> = padded.iter().map(|&v| f64::from(v)).collect();
            let mut r = mel::reference(&padded_f64, frames, s.n_mels);
            let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for v in &mut r {
                *v = (v.max(max - 8.0) + 4.0) / 4.0;
            }
            (
                vec![HostData::F32(padded)],
                Box::new(move |out: &[HostData]| {
                    let mut y: Vec<f32> = out[0].to_f64().iter().map(|&v| v as f32).collect();
                    mel::finish_on_host(&mut y);
                    let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
                    Comparison::new(
                        &y,
                        &r,
                        false,
                        "|y - ref| <= TOLERANCE after the host clamp",
                        |_, _| mel::TOLERANCE,
                    )
                }),
            )
        }
    };
    let run = super::run_with(&design, inputs, options)?;
    let comparison = reference(&run.outputs);
    Ok(SpecCheck { run, comparison })
}
