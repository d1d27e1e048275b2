//! The Silero VAD network (ONNX, from the PyPI package `silero-vad`) run with tract.
//!
//! The network judges 512 new samples at a time (a window, 32 ms), each preceded by the last
//! 64 samples before it (zeros for the first), and carries its LSTM state (`h` and `c`,
//! `[1, 1, 128]` each) from window to window; it answers the probability that the window
//! holds speech.
//!
//! The graph is `silero_vad_16k_sequence.onnx` (16 kHz only, inputs `input [n, 576]`, `h`,
//! `c`; outputs `speech_probs [n]`, `hn`, `cn`): it runs the recurrence over the `n` windows
//! of one call itself, so a whole block of audio is one tract run. The package's other
//! graphs select the sample rate and shapes with ONNX `If` nodes whose branches disagree on
//! output shapes, which tract cannot type.

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
    #[error("the VAD model failed on the block from window {window}: {reason}")]
    Run { window: usize, reason: String },
}

type Plan = std::sync::Arc<TypedRunnableModel>;

/// Windows per network call. The graph runs its LSTM over all the windows of one call, so a
/// call per window would pay tract's per-run overhead thousands of times a minute of audio;
/// blocks bound the input at 512 x 576 floats (the package's sequence front end blocks the
/// same way), and the state carries from one block to the next.
pub const WINDOWS_PER_CALL: usize = 512;

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
    /// Loads `path`, fixes its input shapes (a symbolic number of 576-sample windows, the
    /// state), optimises it once, and checks it on a window of silence, so a wrong file fails
    /// here and not mid-run.
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
        let windows = model.sym("windows").to_dim();
        let window = (CONTEXT_SAMPLES + CHUNK_SAMPLES).to_dim();
        let plan = model
            .with_input_fact(0, f32::fact([windows, window]).into())
            .and_then(|m| m.with_input_fact(1, f32::fact(STATE_SHAPE).into()))
            .and_then(|m| m.with_input_fact(2, f32::fact(STATE_SHAPE).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(invalid)?;
        let vad = SileroVad { plan };
        vad.probabilities(&[0.0; CHUNK_SAMPLES])
            .map_err(|e| VadModelError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(vad)
    }

    /// The speech probability of every 512-sample window of `samples` (16 kHz), the last
    /// one zero-padded ([`super::timestamps::chunk_count`] windows). Each window is fed with
    /// the 64 samples before it (zeros before the first), as the package feeds it.
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, VadModelError> {
        let mut stream = self.stream()?;
        stream.push(samples)?;
        stream.finish()
    }

    /// [`SileroVad::probabilities`] of audio pushed in chunks of any size: the same blocks
    /// of windows, so the same numbers; only the samples of the block being filled are kept.
    pub fn stream(&self) -> Result<ProbabilityStream<'_>, VadModelError> {
        let zero = || {
            Tensor::zero::<f32>(&STATE_SHAPE).map_err(|e| VadModelError::Run {
                window: 0,
                reason: e.to_string(),
            })
        };
        Ok(ProbabilityStream {
            vad: self,
            buffer: Vec::new(),
            base: 0,
            received: 0,
            next_window: 0,
            state: (zero()?, zero()?),
            probs: Vec::new(),
        })
    }
}

/// Speech probabilities of audio arriving in chunks (see [`SileroVad::stream`]).
pub struct ProbabilityStream<'a> {
    vad: &'a SileroVad,
    /// Samples from `base` on.
    buffer: Vec<f32>,
    base: usize,
    received: usize,
    /// The first window not yet judged.
    next_window: usize,
    state: (Tensor, Tensor),
    probs: Vec<f32>,
}

impl ProbabilityStream<'_> {
    /// Appends samples; runs every block of windows they complete.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), VadModelError> {
        self.buffer.extend_from_slice(samples);
        self.received += samples.len();
        while self.received >= (self.next_window + WINDOWS_PER_CALL) * CHUNK_SAMPLES {
            self.run_block(WINDOWS_PER_CALL)?;
        }
        Ok(())
    }

    /// The remaining windows (the last one zero-padded); every window's probability.
    pub fn finish(mut self) -> Result<Vec<f32>, VadModelError> {
        let n = super::timestamps::chunk_count(self.received);
        while self.next_window < n {
            self.run_block(WINDOWS_PER_CALL.min(n - self.next_window))?;
        }
        Ok(self.probs)
    }

    fn run_block(&mut self, windows: usize) -> Result<(), VadModelError> {
        let first = self.next_window;
        let fail = |reason: String| VadModelError::Run {
            window: first,
            reason,
        };
        let width = CONTEXT_SAMPLES + CHUNK_SAMPLES;
        // Window w is samples [512 (first + w) - 64, 512 (first + w + 1)), zero outside.
        let mut input = vec![0.0f32; windows * width];
        for (w, row) in input.chunks_exact_mut(width).enumerate() {
            let end = (first + w + 1) * CHUNK_SAMPLES;
            let begin = end as isize - width as isize;
            for (k, x) in row.iter_mut().enumerate() {
                let at = begin + k as isize;
                if at >= 0 && (at as usize) < self.received {
                    *x = self.buffer[at as usize - self.base];
                }
            }
        }
        let input =
            Tensor::from_shape(&[windows, width], &input).map_err(|e| fail(e.to_string()))?;
        let zero = || Tensor::zero::<f32>(&STATE_SHAPE).map_err(|e| fail(e.to_string()));
        let (h, c) = std::mem::replace(&mut self.state, (zero()?, zero()?));
        let out = self
            .vad
            .plan
            .run(tvec!(input.into(), h.into(), c.into()))
            .map_err(|e| fail(format!("{e:#}")))?;
        let [p, h, c] = out.as_slice() else {
            return Err(fail(format!("{} outputs, expected 3", out.len())));
        };
        let p = p
            .to_plain_array_view::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if p.len() != windows {
            return Err(fail(format!(
                "{} probabilities for {windows} windows",
                p.len()
            )));
        }
        self.probs.extend(p.iter().copied());
        for s in [h, c] {
            if s.shape() != STATE_SHAPE {
                return Err(fail(format!("a state output of shape {:?}", s.shape())));
            }
        }
        self.state = (h.clone().into_tensor(), c.clone().into_tensor());
        self.next_window += windows;
        // The next window starts 64 samples before its own 512.
        let keep_from = (self.next_window * CHUNK_SAMPLES)
            .saturating_sub(CONTEXT_SAMPLES)
            .max(self.base);
        self.buffer
            .drain(..(keep_from - self.base).min(self.buffer.len()));
        self.base = keep_from;
        Ok(())
    }
}
