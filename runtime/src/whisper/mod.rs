//! The Whisper network over a [`Backend`]: every tensor op of the encoder and decoder is a
//! backend call (the default backend is the host's f32, [`CpuBackend`]); the host keeps the
//! token embedding lookup and positions.

pub mod decoder;
pub mod encoder;
pub mod layers;
pub mod ops;
pub mod stream;
pub mod vecmath;
pub mod weights;

use std::sync::Arc;

use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::model::{ModelError, WhisperModelFiles};
pub use decoder::{CrossKv, Decoder, DecoderState, StepOutput};
pub use encoder::Encoder;

/// The loaded network.
pub struct Whisper {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub n_mels: usize,
    backend: Arc<dyn Backend>,
}

impl Whisper {
    /// On the host in f32.
    pub fn load(files: &WhisperModelFiles) -> Result<Self, ModelError> {
        Self::load_with(files, Arc::new(CpuBackend::default()))
    }

    /// With every tensor op on `backend`, which takes the weights now.
    pub fn load_with(
        files: &WhisperModelFiles,
        backend: Arc<dyn Backend>,
    ) -> Result<Self, ModelError> {
        let w = weights::WeightSource {
            bin: &files.bin,
            backend: backend.clone(),
        };
        Ok(Self {
            encoder: Encoder::load(&w, &files.dims)?,
            decoder: Decoder::load(&w, &files.dims)?,
            n_mels: files.dims.n_mels,
            backend,
        })
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Encodes one `[n_mels, 3000]` window; returns `[1500, d_model]`.
    pub fn encode(&self, mel_window: &[f32]) -> Vec<f32> {
        self.encoder.forward(mel_window, self.n_mels)
    }
}
