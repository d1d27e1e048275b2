//! Whisper's audio encoder: two 1-D convolutions (the second with stride 2) with GELU, sinusoidal
//! positions, pre-norm transformer layers, a final layer norm. Input `[n_mels, 3000]` log-mel,
//! output `[1500, d_model]`. Every tensor op runs on the backend.

use std::sync::Arc;

use super::layers::{Block::SelfAttention, Keys, Mlp, MultiHeadAttention};
use super::weights::{layer_norm, WeightSource};
use crate::backend::{Backend, ConvInput, ConvLayout, Epilogue, PreparedLinear, PreparedNorm};
use crate::model::{ModelError, WhisperDims};

struct EncoderLayer {
    attention: MultiHeadAttention,
    mlp: Mlp,
}

pub struct Encoder {
    backend: Arc<dyn Backend>,
    /// `[d, n_mels × 3]` and `[d, d × 3]`: the model's `[out, in, 3]` flattened.
    conv1: Box<dyn PreparedLinear>,
    conv2: Box<dyn PreparedLinear>,
    positions: Vec<f32>,
    layers: Vec<EncoderLayer>,
    final_norm: Box<dyn PreparedNorm>,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_ctx: usize,
}

impl Encoder {
    pub fn load(w: &WeightSource, dims: &WhisperDims) -> Result<Self, ModelError> {
        let d = dims.d_model;
        let conv = |name: &str, c_in: usize| w.prepare_conv(&format!("encoder/{name}"), c_in, d);
        let layers = (0..dims.n_layers_enc)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    attention: MultiHeadAttention::load(w, &p, SelfAttention, d, dims.n_heads_enc)?,
                    mlp: Mlp::load(w, &format!("{p}/ffn"), d, dims.ffn_dim)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Self {
            backend: w.backend.clone(),
            conv1: conv("conv1", dims.n_mels)?,
            conv2: conv("conv2", d)?,
            positions: w.positions("encoder", dims.n_audio_ctx, d)?,
            layers,
            final_norm: layer_norm(w, "encoder/layer_norm", d)?,
            d_model: d,
            n_heads: dims.n_heads_enc,
            n_ctx: dims.n_audio_ctx,
        })
    }

    /// `mel` is `[n_mels, frames]` row-major (frames = 2 · n_ctx); returns `[n_ctx, d_model]`.
    pub fn forward(&self, mel: &[f32], n_mels: usize) -> Vec<f32> {
        let be = &*self.backend;
        let d = self.d_model;
        let frames = mel.len() / n_mels;
        let mut h1 = vec![0.0f32; frames * d];
        let input = ConvInput {
            x: mel,
            layout: ConvLayout::ChannelMajor,
            frames,
            stride: 1,
        };
        be.conv1d(&*self.conv1, input, Epilogue::GELU, &mut h1);
        let t2 = frames.div_ceil(2);
        let mut h = vec![0.0f32; t2 * d];
        let input = ConvInput {
            x: &h1,
            layout: ConvLayout::TimeMajor,
            frames,
            stride: 2,
        };
        be.conv1d(&*self.conv2, input, Epilogue::GELU, &mut h);
        let t = t2.min(self.n_ctx);
        h.truncate(t * d);
        be.add(&mut h, &self.positions[..t * d]);
        for layer in &self.layers {
            layer.attention.forward(be, &mut h, t, Keys::Own, &[]);
            layer.mlp.forward(be, &mut h, t);
        }
        let mut out = vec![0.0f32; h.len()];
        be.layer_norm(&*self.final_norm, &h, &mut out);
        out
    }
}
