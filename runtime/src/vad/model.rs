//! The Silero VAD network (ONNX, from the PyPI package `silero-vad`) run with tract.
//!
//! The network reads 512 new samples at a time, preceded by the last 64 samples of the chunk
//! before (zeros for the first), and carries its LSTM state (`h` and `c`, `[1, 1, 128]`
//! each) from chunk to chunk; it answers the probability that the chunk holds speech.
//!
//! The graph is `silero_vad_16k_sequence.onnx` (16 kHz only, inputs `input [n, 576]`, `h`,
//! `c`; outputs `speech_probs [n]`, `hn`, `cn`: the interface faster-whisper's
//! `silero_vad_v6.onnx` has). The package's other graphs select the sample rate and shapes
//! with ONNX `If` nodes whose branches disagree on output shapes, which tract cannot type.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use super::CHUNK_SAMPLES;

/// Samples of the previous chunk the network sees again before each new chunk.
pub const CONTEXT_SAMPLES: usize = 64;
const STATE_SHAPE: [usize; 3] = [1, 1, 128];

#[derive(thiserror::Error, Debug)]
pub enum VadModelError {
    #[error("cannot read the VAD model {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Silero VAD model tract can run: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("the VAD model failed on chunk {chunk}: {reason}")]
    Run { chunk: usize, reason: String },
}

type Plan = std::sync::Arc<TypedRunnableModel>;

/// A loaded, optimised Silero VAD; shareable between threads (each run has its own state).
pub struct SileroVad {
    plan: Plan,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SileroVad")
    }
}

impl SileroVad {
    /// Loads `path`, fixes its input shapes (one chunk of 576 samples, the state, the rate)
    /// and checks it on one chunk of silence, so a wrong file fails here and not mid-run.
    pub fn load(path: &Path) -> Result<SileroVad, VadModelError> {
        let bytes = std::fs::read(path).map_err(|source| VadModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |e: TractError| VadModelError::Invalid {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        };
        let model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(invalid)?;
        let inputs = model.input_outlets().map_err(invalid)?.len();
        if inputs != 3 {
            return Err(VadModelError::Invalid {
                path: path.to_path_buf(),
                reason: format!("it has {inputs} inputs, the Silero VAD graph has 3 (input, h, c)"),
            });
        }
        let plan = model
            .with_input_fact(0, f32::fact([1, CONTEXT_SAMPLES + CHUNK_SAMPLES]).into())
            .and_then(|m| m.with_input_fact(1, f32::fact(STATE_SHAPE).into()))
            .and_then(|m| m.with_input_fact(2, f32::fact(STATE_SHAPE).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(invalid)?;
        let vad = SileroVad { plan };
        vad.stream()
            .push(&[0.0; CHUNK_SAMPLES])
            .map_err(|e| VadModelError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(vad)
    }

    /// A fresh stream: zero state, zero context.
    pub fn stream(&self) -> VadStream<'_> {
        let zero = || Tensor::zero::<f32>(&STATE_SHAPE).ok();
        VadStream {
            vad: self,
            state: zero().zip(zero()),
            context: [0.0; CONTEXT_SAMPLES],
            chunks: 0,
        }
    }

    /// The speech probability of every 512-sample chunk of `samples` (16 kHz), the audio
    /// zero-padded to [`super::timestamps::chunk_count`] chunks.
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, VadModelError> {
        let n = super::timestamps::chunk_count(samples.len());
        let mut stream = self.stream();
        let mut chunk = [0.0f32; CHUNK_SAMPLES];
        (0..n)
            .map(|i| {
                let from = (i * CHUNK_SAMPLES).min(samples.len());
                let to = ((i + 1) * CHUNK_SAMPLES).min(samples.len());
                chunk.fill(0.0);
                chunk[..to - from].copy_from_slice(&samples[from..to]);
                stream.push(&chunk)
            })
            .collect()
    }
}

/// The network's state across the chunks of one audio.
pub struct VadStream<'a> {
    vad: &'a SileroVad,
    /// `(h, c)`; `None` only if allocating the zero state failed (reported on the push).
    state: Option<(Tensor, Tensor)>,
    context: [f32; CONTEXT_SAMPLES],
    chunks: usize,
}

impl VadStream<'_> {
    /// The speech probability of the next 512 samples.
    pub fn push(&mut self, chunk: &[f32; CHUNK_SAMPLES]) -> Result<f32, VadModelError> {
        let index = self.chunks;
        let fail = |reason: String| VadModelError::Run {
            chunk: index,
            reason,
        };
        let mut input = Vec::with_capacity(CONTEXT_SAMPLES + CHUNK_SAMPLES);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(chunk);
        let input = Tensor::from_shape(&[1, CONTEXT_SAMPLES + CHUNK_SAMPLES], &input)
            .map_err(|e| fail(e.to_string()))?;
        let (h, c) = self
            .state
            .take()
            .ok_or_else(|| fail("no recurrent state".into()))?;
        let out = self
            .vad
            .plan
            .run(tvec!(input.into(), h.into(), c.into()))
            .map_err(|e| fail(format!("{e:#}")))?;
        let [prob, h, c] = out.as_slice() else {
            return Err(fail(format!("{} outputs, expected 3", out.len())));
        };
        let prob = prob
            .to_plain_array_view::<f32>()
            .ok()
            .filter(|v| v.len() == 1)
            .and_then(|v| v.iter().next().copied())
            .ok_or_else(|| fail("the probability output is not one float".into()))?;
        for s in [h, c] {
            if s.shape() != STATE_SHAPE {
                return Err(fail(format!("a state output of shape {:?}", s.shape())));
            }
        }
        self.state = Some((h.clone().into_tensor(), c.clone().into_tensor()));
        self.context
            .copy_from_slice(&chunk[CHUNK_SAMPLES - CONTEXT_SAMPLES..]);
        self.chunks += 1;
        Ok(prob)
    }
}
