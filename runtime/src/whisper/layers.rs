//! The two sub-layers of every Whisper block, on a [`Backend`]: pre-norm multi-head
//! attention (one implementation for encoder self, decoder causal self and cross
//! attention, as candle's `MultiHeadAttention`) and the pre-norm GELU MLP. Both add their
//! result into the residual stream through the output product's epilogue.

use crate::backend::{
    AttentionCall, Backend, Epilogue, KvCache, KvRows, KvSource, PreparedLinear, PreparedNorm,
    Queries,
};
use crate::model::ModelError;

use super::weights::{layer_norm, linear, WeightSource};

/// Where an attention sub-layer takes its keys and values from.
pub enum Keys<'a> {
    /// Its own rows (the encoder: one sequence, not causal).
    Own,
    /// Layer `layer` of a decoder cache holding `past` positions of each of `batch`
    /// sequences; the new positions' keys and values are appended first.
    Cache {
        cache: &'a mut dyn KvCache,
        layer: usize,
        batch: usize,
        past: usize,
    },
    /// Layer `layer` of a window's cross-attention store of `len` encoder frames.
    Cross {
        cache: &'a dyn KvCache,
        layer: usize,
        len: usize,
    },
}

/// The attention blocks of a CTranslate2 Whisper layer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `{layer}/self_attention`: `linear_0` is the fused q|k|v projection, `linear_1` the
    /// output.
    SelfAttention,
    /// `{layer}/attention`: `linear_0` is q, `linear_1` the fused k|v projection of the
    /// audio, `linear_2` the output.
    Cross,
}

pub struct MultiHeadAttention {
    norm: Box<dyn PreparedNorm>,
    /// Self attention: the fused q|k|v projection `[3d]`; cross attention: q `[d]`.
    query: Box<dyn PreparedLinear>,
    /// Cross attention: the fused k|v projection `[2d]` of the encoder output.
    cross_kv: Option<Box<dyn PreparedLinear>>,
    out: Box<dyn PreparedLinear>,
    heads: usize,
    d: usize,
}

impl MultiHeadAttention {
    /// `block` of the layer `layer` (e.g. `decoder/layer_3`): its `layer_norm` and
    /// projections (see [`Block`]), `d` wide in `heads` heads.
    pub fn load(
        w: &WeightSource,
        layer: &str,
        block: Block,
        d: usize,
        heads: usize,
    ) -> Result<Self, ModelError> {
        let cross = block == Block::Cross;
        let prefix = format!(
            "{layer}/{}",
            if cross { "attention" } else { "self_attention" }
        );
        let norm = layer_norm(w, &format!("{prefix}/layer_norm"), d)?;
        let query_width = if cross { d } else { 3 * d };
        let query = linear(w, &format!("{prefix}/linear_0"), query_width, d)?;
        let cross_kv = match cross {
            true => Some(linear(w, &format!("{prefix}/linear_1"), 2 * d, d)?),
            false => None,
        };
        let out_name = if cross { "linear_2" } else { "linear_1" };
        Ok(Self {
            norm,
            query,
            cross_kv,
            out: linear(w, &format!("{prefix}/{out_name}"), d, d)?,
            heads,
            d,
        })
    }

    /// Writes the keys and values of `audio` (`[t, d]` encoder output) into layer `layer`
    /// of `cache` (cross attention only; once per window).
    pub fn write_cross_kv(
        &self,
        be: &dyn Backend,
        audio: &[f32],
        cache: &mut dyn KvCache,
        layer: usize,
    ) {
        let proj = self
            .cross_kv
            .as_deref()
            .expect("cross keys/values need a cross-attention layer");
        let d = self.d;
        let t = audio.len() / d;
        let mut kv = vec![0.0f32; t * 2 * d];
        be.linear(proj, audio, Epilogue::NONE, &mut kv);
        let rows = KvRows {
            data: &kv,
            stride: 2 * d,
            k_offset: 0,
            v_offset: d,
            n_new: t,
        };
        be.kv_write(cache, layer, 0, rows);
    }

    /// `x += attention(layer_norm(x))` over `rows` rows; returns the softmax weights of the
    /// heads in `keep_heads`, each `[rows, keys]`.
    pub fn forward(
        &self,
        be: &dyn Backend,
        x: &mut [f32],
        rows: usize,
        keys: Keys,
        keep_heads: &[usize],
    ) -> Vec<Vec<f32>> {
        let d = self.d;
        let mut hn = vec![0.0f32; rows * d];
        be.layer_norm(&*self.norm, x, &mut hn);
        let width = self.query.out_dim();
        let mut q = vec![0.0f32; rows * width];
        be.linear(&*self.query, &hn, Epilogue::NONE, &mut q);
        let (batch, kv) = match keys {
            Keys::Own => (
                1,
                KvSource::Inline {
                    k_offset: d,
                    v_offset: 2 * d,
                },
            ),
            Keys::Cache {
                cache,
                layer,
                batch,
                past,
            } => {
                let rows_new = KvRows {
                    data: &q,
                    stride: width,
                    k_offset: d,
                    v_offset: 2 * d,
                    n_new: rows / batch,
                };
                be.kv_write(cache, layer, past, rows_new);
                let cache = &*cache;
                (batch, KvSource::Causal { cache, layer, past })
            }
            Keys::Cross { cache, layer, len } => (1, KvSource::Shared { cache, layer, len }),
        };
        let queries = Queries {
            data: &q,
            stride: width,
            offset: 0,
            batch,
            per_batch: rows / batch,
        };
        let mut attn = vec![0.0f32; rows * d];
        let call = AttentionCall {
            heads: self.heads,
            q: queries,
            kv,
            keep_heads,
        };
        let weights = be.attention(call, &mut attn);
        be.linear(&*self.out, &attn, Epilogue::RESIDUAL, x);
        weights
    }
}

/// `x += fc2(gelu(fc1(layer_norm(x))))`.
pub struct Mlp {
    norm: Box<dyn PreparedNorm>,
    fc1: Box<dyn PreparedLinear>,
    fc2: Box<dyn PreparedLinear>,
}

impl Mlp {
    /// `{prefix}/layer_norm`, `linear_0`, `linear_1`.
    pub fn load(w: &WeightSource, prefix: &str, d: usize, ffn: usize) -> Result<Self, ModelError> {
        Ok(Self {
            norm: layer_norm(w, &format!("{prefix}/layer_norm"), d)?,
            fc1: linear(w, &format!("{prefix}/linear_0"), ffn, d)?,
            fc2: linear(w, &format!("{prefix}/linear_1"), d, ffn)?,
        })
    }

    pub fn forward(&self, be: &dyn Backend, x: &mut [f32], rows: usize) {
        let mut hn = vec![0.0f32; x.len()];
        be.layer_norm(&*self.norm, x, &mut hn);
        let mut f = vec![0.0f32; rows * self.fc1.out_dim()];
        be.linear(&*self.fc1, &hn, Epilogue::GELU, &mut f);
        be.linear(&*self.fc2, &f, Epilogue::RESIDUAL, x);
    }
}
