//! Voice activity detection: Silero VAD run in Rust (tract), faster-whisper's rules for
//! turning its per-chunk probabilities into speech spans, and the timeline that lets the
//! decoder see only the speech while every timestamp stays on the original audio.
//!
//! - [`model`]: the network and its streaming state;
//! - [`timestamps`]: probabilities to speech spans (`get_speech_timestamps`);
//! - [`timeline`]: gluing the spans and mapping times back (`SpeechTimestampsMap`);
//! - [`options`]: the parameters, defaults and ranges (`VadOptions`).

pub mod model;
pub mod options;
pub mod timeline;
pub mod timestamps;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use model::{SileroVad, VadModelError};
pub use options::{BadVadOption, VadOptions};
pub use timeline::Timeline;
pub use timestamps::{speech_spans, SpeechSpan};

/// The only rate the VAD runs at (the Whisper front end's).
pub const SAMPLE_RATE: usize = crate::audio::SAMPLE_RATE as usize;
/// Samples per VAD decision at 16 kHz (32 ms).
pub const CHUNK_SAMPLES: usize = 512;

/// Name of the model in the cache (`aiec models install silero-vad`) and its file there.
pub const MODEL_NAME: &str = "silero-vad";
pub const MODEL_FILE: &str = "silero_vad.onnx";

#[derive(thiserror::Error, Debug)]
pub enum VadError {
    #[error("the VAD model is not installed (no {}); run `aiec models install {MODEL_NAME}`", path.display())]
    NotInstalled { path: PathBuf },
    #[error(transparent)]
    Model(#[from] VadModelError),
    #[error(transparent)]
    Option(#[from] BadVadOption),
}

/// `<models dir>/silero-vad/silero_vad.onnx`.
pub fn model_path(models_dir: &Path) -> PathBuf {
    models_dir.join(MODEL_NAME).join(MODEL_FILE)
}

/// Loads the installed model from `models_dir`, with the install hint when it is absent.
pub fn load_installed(models_dir: &Path) -> Result<SileroVad, VadError> {
    let path = model_path(models_dir);
    if !path.is_file() {
        return Err(VadError::NotInstalled { path });
    }
    Ok(SileroVad::load(&path)?)
}

/// A model with the options to run it with: what a transcription needs to skip silence.
#[derive(Debug, Clone)]
pub struct VadFilter {
    pub model: Arc<SileroVad>,
    pub options: VadOptions,
}

impl VadFilter {
    /// Checks the options once, so a bad value fails before any audio is read.
    pub fn new(model: Arc<SileroVad>, options: VadOptions) -> Result<VadFilter, VadError> {
        options.validate()?;
        Ok(VadFilter { model, options })
    }

    /// The speech spans of 16 kHz `samples`.
    pub fn spans(&self, samples: &[f32]) -> Result<Vec<SpeechSpan>, VadError> {
        let probs = self.model.probabilities(samples)?;
        Ok(speech_spans(&probs, samples.len(), &self.options))
    }
}
