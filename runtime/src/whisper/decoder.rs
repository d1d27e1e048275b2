//! Whisper's text decoder with a self-attention KV cache. Cross-attention keys/values are
//! computed once per 30 s window ([`CrossKv`]) and shared by every hypothesis of the search.
//! A [`DecoderState`] holds a batch of hypotheses that advance in lock step; beam search
//! reorders it with [`DecoderState::reorder`]. Both live in backend-owned stores; the host
//! only looks up token embeddings and positions.

use std::sync::Arc;

use super::layers::{
    Block::{Cross, SelfAttention},
    Keys, Mlp, MultiHeadAttention,
};
use super::weights::{layer_norm, WeightSource};
use crate::backend::{Backend, KvCache, KvShape, PreparedLinear, PreparedNorm};
use crate::model::{ModelError, WhisperDims};

struct DecoderLayer {
    self_attention: MultiHeadAttention,
    cross_attention: MultiHeadAttention,
    mlp: Mlp,
}

/// The token embedding table `[n_vocab, d]`, in fp16 when every value is exactly an fp16 (an
/// fp16 model's: the same numbers in half the memory), in f32 otherwise.
enum TokenEmbeddings {
    F16(Vec<half::f16>, usize),
    F32(Vec<f32>, usize),
}

impl TokenEmbeddings {
    fn new(table: Vec<f32>, d: usize) -> Self {
        match super::stream::exact_f16(&table) {
            Some(half) => TokenEmbeddings::F16(half, d),
            None => TokenEmbeddings::F32(table, d),
        }
    }

    /// The whole table in f32.
    fn to_f32(&self) -> Vec<f32> {
        match self {
            TokenEmbeddings::F16(t, _) => t.iter().map(|v| v.to_f32()).collect(),
            TokenEmbeddings::F32(t, _) => t.clone(),
        }
    }

    /// Writes the embedding of token `tok` into `out` (`d` values).
    fn row(&self, tok: usize, out: &mut [f32]) {
        match self {
            TokenEmbeddings::F16(t, d) => {
                for (o, v) in out.iter_mut().zip(&t[tok * d..(tok + 1) * d]) {
                    *o = v.to_f32();
                }
            }
            TokenEmbeddings::F32(t, d) => out.copy_from_slice(&t[tok * d..(tok + 1) * d]),
        }
    }
}

pub struct Decoder {
    backend: Arc<dyn Backend>,
    embeddings: TokenEmbeddings,
    positions: Vec<f32>,
    layers: Vec<DecoderLayer>,
    final_norm: Box<dyn PreparedNorm>,
    projection: Box<dyn PreparedLinear>,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_ctx: usize,
    pub n_vocab: usize,
}

/// Cross-attention keys and values of one encoder output, every layer, in a backend store.
pub struct CrossKv {
    store: Box<dyn KvCache>,
    pub t_audio: usize,
}

/// Per-hypothesis self-attention cache, every layer, in a backend store.
pub struct DecoderState {
    backend: Arc<dyn Backend>,
    cache: Box<dyn KvCache>,
    pub batch: usize,
    pub len: usize,
}

/// What one forward call returns: final-norm hidden states of every new position
/// `[batch, n_new, d]`, and the cross-attention weights of requested heads.
pub struct StepOutput {
    pub hidden: Vec<f32>,
    /// One `[batch, n_new, t_audio]` matrix per requested (layer, head).
    pub cross_weights: Vec<Vec<f32>>,
}

impl Decoder {
    pub fn load(w: &WeightSource, dims: &WhisperDims) -> Result<Self, ModelError> {
        let (d, heads) = (dims.d_model, dims.n_heads_dec);
        let layers = (0..dims.n_layers_dec)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_attention: MultiHeadAttention::load(w, &p, SelfAttention, d, heads)?,
                    cross_attention: MultiHeadAttention::load(w, &p, Cross, d, heads)?,
                    mlp: Mlp::load(w, &format!("{p}/ffn"), d, dims.ffn_dim)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        // The table goes to its stored form first, so that at most one f32 copy of the
        // vocabulary (100 MB for whisper-base) is alive at a time while loading.
        let embeddings =
            TokenEmbeddings::new(w.f32("decoder/embeddings/weight", &[dims.n_vocab, d])?, d);
        // Whisper ties the output projection to the token embeddings (an alias in model.bin).
        let projection = if w.has("decoder/projection/weight") {
            let weight = w.f32("decoder/projection/weight", &[dims.n_vocab, d])?;
            w.prepare_logits("decoder/projection", weight, dims.n_vocab, d)?
        } else {
            w.prepare_logits("decoder/projection", embeddings.to_f32(), dims.n_vocab, d)?
        };
        Ok(Self {
            backend: w.backend.clone(),
            embeddings,
            positions: w.positions("decoder", dims.n_text_ctx, d)?,
            layers,
            final_norm: layer_norm(w, "decoder/layer_norm", d)?,
            projection,
            d_model: d,
            n_heads: heads,
            n_ctx: dims.n_text_ctx,
            n_vocab: dims.n_vocab,
        })
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    fn kv_shape(&self, batch: usize, capacity: usize) -> KvShape {
        KvShape {
            layers: self.layers.len(),
            batch,
            capacity,
            heads: self.n_heads,
            head_dim: self.d_model / self.n_heads,
        }
    }

    /// Cross-attention K/V for one encoder output `[t_audio, d]`.
    pub fn cross_kv(&self, audio: &[f32]) -> CrossKv {
        let t = audio.len() / self.d_model;
        let mut store = self.backend.new_kv_cache(self.kv_shape(1, t));
        for (li, layer) in self.layers.iter().enumerate() {
            layer
                .cross_attention
                .write_cross_kv(&*self.backend, audio, &mut *store, li);
        }
        CrossKv { store, t_audio: t }
    }

    pub fn new_state(&self, batch: usize) -> DecoderState {
        DecoderState {
            backend: self.backend.clone(),
            cache: self.backend.new_kv_cache(self.kv_shape(batch, self.n_ctx)),
            batch,
            len: 0,
        }
    }

    /// Logits `[rows, n_vocab]` of final-norm hidden rows `[rows, d]`.
    pub fn logits(&self, hidden_rows: &[f32]) -> Vec<f32> {
        let rows = hidden_rows.len() / self.d_model;
        let mut out = vec![0.0f32; rows * self.n_vocab];
        self.backend
            .logits(&*self.projection, hidden_rows, &mut out);
        out
    }

    /// Token embeddings plus positions `past..` of `tokens` (`[batch][n_new]`): the host's part.
    fn embed(&self, tokens: &[Vec<u32>], past: usize) -> Vec<f32> {
        let d = self.d_model;
        let n = tokens[0].len();
        let mut x = vec![0.0f32; tokens.len() * n * d];
        for (bi, seq) in tokens.iter().enumerate() {
            for (i, &tok) in seq.iter().enumerate() {
                let row = &mut x[(bi * n + i) * d..(bi * n + i + 1) * d];
                self.embeddings.row(tok as usize, row);
                let p = &self.positions[(past + i) * d..(past + i + 1) * d];
                row.iter_mut().zip(p).for_each(|(v, p)| *v += p);
            }
        }
        x
    }

    /// Runs `tokens` (`[batch][n_new]`, all the same length) after the cached positions.
    /// `capture` names (layer, head) pairs whose cross-attention weights to return.
    pub fn forward(
        &self,
        state: &mut DecoderState,
        tokens: &[Vec<u32>],
        cross: &CrossKv,
        capture: &[(usize, usize)],
    ) -> StepOutput {
        let be = &*self.backend;
        let b = tokens.len();
        assert_eq!(b, state.batch, "token batch must match the decoder state");
        let n = tokens[0].len();
        let past = state.len;
        assert!(
            past + n <= self.n_ctx,
            "decoder context of {} positions exceeded",
            self.n_ctx
        );
        let rows = b * n;
        let mut x = self.embed(tokens, past);
        let mut cross_weights: Vec<Vec<f32>> = vec![Vec::new(); capture.len()];
        for (li, layer) in self.layers.iter().enumerate() {
            let own = Keys::Cache {
                cache: &mut *state.cache,
                layer: li,
                batch: b,
                past,
            };
            layer.self_attention.forward(be, &mut x, rows, own, &[]);
            let heads: Vec<usize> = capture.iter().filter(|c| c.0 == li).map(|c| c.1).collect();
            let audio = Keys::Cross {
                cache: &*cross.store,
                layer: li,
                len: cross.t_audio,
            };
            let weights = layer
                .cross_attention
                .forward(be, &mut x, rows, audio, &heads);
            for (head, wmat) in heads.iter().zip(weights) {
                let slot = capture
                    .iter()
                    .position(|c| *c == (li, *head))
                    .expect("captured head");
                cross_weights[slot] = wmat;
            }
            layer.mlp.forward(be, &mut x, rows);
        }
        state.len = past + n;
        let mut hidden = vec![0.0f32; x.len()];
        be.layer_norm(&*self.final_norm, &x, &mut hidden);
        StepOutput {
            hidden,
            cross_weights,
        }
    }
}

impl DecoderState {
    /// Keeps hypotheses `order[i]` as the new row `i` (beam search survivors; may repeat).
    pub fn reorder(&mut self, order: &[usize]) {
        self.backend.kv_reorder(&mut *self.cache, order, self.len);
        self.batch = order.len();
    }
}
