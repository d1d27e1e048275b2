//! The Whisper network in f32 on the host (the `cpu` device): fp16/int8 weights are upcast
//! at load; matrix products go through `gemm` on all cores.

pub mod attend;
pub mod decoder;
pub mod encoder;
pub mod ops;
pub mod vecmath;
pub mod weights;

use crate::model::{ModelError, WhisperModelFiles};
pub use decoder::{CrossKv, Decoder, DecoderState, StepOutput};
pub use encoder::Encoder;

/// The loaded network.
pub struct Whisper {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub n_mels: usize,
}

impl Whisper {
    pub fn load(files: &WhisperModelFiles) -> Result<Self, ModelError> {
        let dims = &files.dims;
        let w = weights::WeightSource { bin: &files.bin };
        let encoder = Encoder::load(
            &w,
            dims.n_mels,
            dims.d_model,
            dims.ffn_dim,
            dims.n_layers_enc,
            dims.n_heads_enc,
            dims.n_audio_ctx,
        )?;
        let decoder = Decoder::load(
            &w,
            dims.d_model,
            dims.ffn_dim,
            dims.n_layers_dec,
            dims.n_heads_dec,
            dims.n_text_ctx,
            dims.n_vocab,
        )?;
        Ok(Self {
            encoder,
            decoder,
            n_mels: dims.n_mels,
        })
    }

    /// Encodes one `[n_mels, 3000]` window; returns `[1500, d_model]`.
    pub fn encode(&self, mel_window: &[f32]) -> Vec<f32> {
        self.encoder.forward(mel_window, self.n_mels)
    }
}
