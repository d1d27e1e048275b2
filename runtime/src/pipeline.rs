//! The whole path from a file to a transcript: load once, then decode → log-mel → Whisper.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;

use crate::audio::{self, AudioError, InputLimits};
use crate::decode::{self, Context, DecodeError, DecodeOptions, OnSegment, Progress};
use crate::mel::{self, Features, MelStream, StreamedMel};
use crate::model::{ModelError, WhisperModelFiles};
use crate::transcript::{Segment, Transcript};
use crate::vad::{self, SpeechSpan, VadError, VadFilter};
use crate::whisper::Whisper;

#[derive(thiserror::Error, Debug)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Vad(#[from] VadError),
    /// The streamed log-mel could not be written to its temporary file.
    #[error("writing the log-mel to a temporary file")]
    Spill(#[source] std::io::Error),
    /// The two passes of the VAD filter over a file decoded to different lengths.
    #[error("{name}: the file changed while it was read ({first} samples, then {second})")]
    Changed {
        name: String,
        first: usize,
        second: usize,
    },
}

/// A loaded model, ready to transcribe any number of inputs.
pub struct Transcriber {
    /// The model's files; their tensors are released once `model` is loaded.
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
        let mut files = WhisperModelFiles::load(model_dir)?;
        let model = Whisper::load_with(&files, backend)?;
        // The network now holds its weights in the backend's form (packed, quantised, fp16);
        // the file's bytes (145 MB for whisper-base) would only add to the peak memory.
        files.bin.release_tensors();
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
        self.transcribe_filtered(samples, opts, None, progress, on_segment, cancel)
    }

    /// [`Transcriber::transcribe_samples_streaming`], decoding only the speech `vad` finds
    /// when given one (faster-whisper's `vad_filter`): the speech spans are glued together
    /// and decoded as one audio, and every segment and word time is moved back onto the
    /// original timeline before anyone sees it.
    pub fn transcribe_filtered(
        &self,
        samples: &[f32],
        opts: &DecodeOptions,
        vad: Option<&VadFilter>,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        let duration = samples.len() as f64 / audio::SAMPLE_RATE as f64;
        let Some(vad) = vad else {
            let mut t = self.decode(samples, opts, progress, on_segment, cancel)?;
            t.duration = duration;
            return Ok(t);
        };
        let vad_start = std::time::Instant::now();
        let spans = vad.spans(samples)?;
        let speech = vad::timeline::collect(samples, &spans);
        tracing::debug!(
            spans = spans.len(),
            kept_seconds = speech.len() as f64 / audio::SAMPLE_RATE as f64,
            vad_seconds = vad_start.elapsed().as_secs_f64(),
            "VAD filter"
        );
        let features = mel::log_mel_with(self.model.backend(), &speech, self.model.n_mels);
        let mut t = self.decode_speech(&features, &spans, opts, progress, on_segment, cancel)?;
        t.duration = duration;
        Ok(t)
    }

    /// Decodes the log-mel of the glued speech `spans`, every segment and word time moved
    /// back onto the original timeline before anyone sees it.
    fn decode_speech(
        &self,
        features: &dyn Features,
        spans: &[SpeechSpan],
        opts: &DecodeOptions,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        let timeline = vad::Timeline::new(spans);
        let mut restoring = |s: &Segment| {
            let mut s = s.clone();
            timeline.restore(&mut s);
            on_segment(&s);
        };
        let mut t = self.decode_features(features, opts, progress, &mut restoring, cancel)?;
        for s in &mut t.segments {
            timeline.restore(s);
        }
        Ok(t)
    }

    fn decode(
        &self,
        samples: &[f32],
        opts: &DecodeOptions,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        let features = mel::log_mel_with(self.model.backend(), samples, self.model.n_mels);
        self.decode_features(&features, opts, progress, on_segment, cancel)
    }

    fn decode_features(
        &self,
        features: &dyn Features,
        opts: &DecodeOptions,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        let ctx = Context::new(&self.model, &self.files.tokenizer, &self.files.config)?;
        Ok(decode::transcribe_streaming(
            &ctx, features, opts, progress, on_segment, cancel,
        )?)
    }

    /// An audio file (`-` is stdin) within `limits` to a transcript, decoded only where `vad`
    /// finds speech when given one. Without a VAD filter the file streams: its samples go
    /// through the log-mel kernel as they are decoded and are not kept, and the log-mel moves
    /// to a temporary file once it is a few minutes long, so memory does not grow with the
    /// file's length. The transcript is the one [`Transcriber::transcribe_filtered`] gives
    /// on the file's samples (the same log-mel values, bit for bit).
    #[allow(clippy::too_many_arguments)]
    pub fn transcribe_path(
        &self,
        path: &Path,
        limits: &InputLimits,
        opts: &DecodeOptions,
        vad: Option<&VadFilter>,
        progress: Option<Progress>,
        on_segment: OnSegment,
        cancel: &AtomicBool,
    ) -> Result<Transcript, PipelineError> {
        if let Some(vad) = vad {
            if path.as_os_str() == "-" {
                // Standard input can be read once: its samples are held for the two passes.
                let samples = audio::load_with(path, limits)?;
                let vad = Some(vad);
                return self.transcribe_filtered(&samples, opts, vad, progress, on_segment, cancel);
            }
            let (features, spans, n) = self.stream_speech(path, limits, vad)?;
            let mut t =
                self.decode_speech(&features, &spans, opts, progress, on_segment, cancel)?;
            t.duration = n as f64 / audio::SAMPLE_RATE as f64;
            return Ok(t);
        }
        let mut stream = MelStream::new(self.model.backend(), self.model.n_mels);
        let n = stream_file(path, limits, |chunk| {
            stream.push(chunk).map_err(PipelineError::Spill)
        })?;
        let features = stream.finish().map_err(PipelineError::Spill)?;
        let mut t = self.decode_features(&features, opts, progress, on_segment, cancel)?;
        t.duration = n as f64 / audio::SAMPLE_RATE as f64;
        Ok(t)
    }

    /// The VAD filter on a file in two passes over it, neither holding its samples: the
    /// first finds the speech spans, the second feeds only their samples, glued, to the
    /// log-mel. Gives [`Transcriber::transcribe_filtered`]'s log-mel values exactly.
    fn stream_speech(
        &self,
        path: &Path,
        limits: &InputLimits,
        vad: &VadFilter,
    ) -> Result<(StreamedMel, Vec<SpeechSpan>, usize), PipelineError> {
        let vad_start = std::time::Instant::now();
        let mut probs = vad.model.stream().map_err(VadError::from)?;
        let n = stream_file(path, limits, |chunk| {
            probs.push(chunk).map_err(|e| VadError::from(e).into())
        })?;
        let probs = probs.finish().map_err(VadError::from)?;
        let spans = vad::speech_spans(&probs, n, &vad.options);
        let mut stream = MelStream::new(self.model.backend(), self.model.n_mels);
        let (mut at, mut next) = (0usize, 0usize);
        let again = stream_file(path, limits, |chunk| {
            let end = at + chunk.len();
            // Spans are sorted and disjoint: each chunk feeds the parts of the spans in it.
            while let Some(span) = spans.get(next).filter(|s| s.start < end) {
                let (from, to) = (span.start.max(at) - at, span.end.min(end).max(at) - at);
                if from < to {
                    stream
                        .push(&chunk[from..to])
                        .map_err(PipelineError::Spill)?;
                }
                if span.end > end {
                    break;
                }
                next += 1;
            }
            at = end;
            Ok(())
        })?;
        if again != n {
            return Err(PipelineError::Changed {
                name: path.display().to_string(),
                first: n,
                second: again,
            });
        }
        let features = stream.finish().map_err(PipelineError::Spill)?;
        tracing::debug!(
            spans = spans.len(),
            kept_seconds = spans.iter().map(|s| s.end - s.start).sum::<usize>() as f64
                / audio::SAMPLE_RATE as f64,
            vad_seconds = vad_start.elapsed().as_secs_f64(),
            "VAD filter, streamed"
        );
        Ok((features, spans, n))
    }

    /// An audio file (any format symphonia reads; `-` is stdin) to a transcript.
    pub fn transcribe_file(
        &self,
        path: &Path,
        opts: &DecodeOptions,
        progress: Option<Progress>,
    ) -> Result<Transcript, PipelineError> {
        let never = AtomicBool::new(false);
        let limits = InputLimits::default();
        self.transcribe_path(path, &limits, opts, None, progress, &mut |_| {}, &never)
    }
}

/// Decodes the file at `path` into `push` chunk by chunk; the number of samples. After
/// `push` first fails it sees no more chunks, and its error is the result.
fn stream_file(
    path: &Path,
    limits: &InputLimits,
    mut push: impl FnMut(&[f32]) -> Result<(), PipelineError>,
) -> Result<usize, PipelineError> {
    let mut failed = None;
    let n = audio::stream_with(path, limits, &mut |chunk| {
        if failed.is_none() {
            failed = push(chunk).err();
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(n),
    }
}
