//! The whole path from a file to a transcript: load once, then decode → log-mel → Whisper.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;

use crate::audio::{self, AudioError};
use crate::decode::{self, Context, DecodeError, DecodeOptions, OnSegment, Progress};
use crate::mel;
use crate::model::{ModelError, WhisperModelFiles};
use crate::transcript::Transcript;
use crate::whisper::Whisper;

#[derive(thiserror::Error, Debug)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A loaded model, ready to transcribe any number of inputs.
pub struct Transcriber {
    pub files: WhisperModelFiles,
    pub model: Whisper,
}

impl Transcriber {
    /// On the host in f32.
    pub fn load(model_dir: &Path) -> Result<Self, PipelineError> {
        Self::load_with(model_dir, Arc::new(CpuBackend::default()))
    }

    /// With every tensor op of the forward (and the log-mel kernel) on `backend`.
    pub fn load_with(model_dir: &Path, backend: Arc<dyn Backend>) -> Result<Self, PipelineError> {
        let files = WhisperModelFiles::load(model_dir)?;
        let model = Whisper::load_with(&files, backend)?;
        Ok(Self { files, model })
    }

    /// 16 kHz mono samples to a transcript.
    pub fn transcribe_samples(
        &self,
        samples: &[f32],
        opts: &DecodeOptions,
        progress: Option<Progress>,
    ) -> Result<Transcript, PipelineError> {
        let never = AtomicBool::new(false);
        self.transcribe_samples_streaming(samples, opts, progress, &mut |_| {}, &never)
    }

    /// [`Transcriber::transcribe_samples`], handing each segment to `on_segment` as soon as
    /// it is decoded, and stopping at the next window once `cancel` is set.
    pub fn transcribe_samples_streaming(
        &self,
        samples: &[f32],
        opts: &DecodeOptions,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        let features = mel::log_mel_with(self.model.backend(), samples, self.model.n_mels);
        let ctx = Context::new(&self.model, &self.files.tokenizer, &self.files.config)?;
        let mut t =
            decode::transcribe_streaming(&ctx, &features, opts, progress, on_segment, cancel)?;
        t.duration = samples.len() as f64 / audio::SAMPLE_RATE as f64;
        Ok(t)
    }

    /// An audio file (any format symphonia reads; `-` is stdin) to a transcript.
    pub fn transcribe_file(
        &self,
        path: &Path,
        opts: &DecodeOptions,
        progress: Option<Progress>,
    ) -> Result<Transcript, PipelineError> {
        let samples = audio::load(path)?;
        self.transcribe_samples(&samples, opts, progress)
    }
}
