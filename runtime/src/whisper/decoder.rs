//! Whisper's text decoder with a self-attention KV cache. Cross-attention keys/values are
//! computed once per 30 s window ([`CrossKv`]) and shared by every hypothesis of the search.
//! A [`DecoderState`] holds a batch of hypotheses that advance in lock step; beam search
//! reorders it with [`DecoderState::reorder`].

use rayon::prelude::*;

use super::attend::{attend_rows, HeadKv};
use super::ops::{
    add_in_place, gelu_in_place, matmul_strided, softmax_in_place, LayerNorm, Linear,
};
use super::weights::{layer_norm, linear, WeightSource};
use crate::model::ModelError;

struct DecoderLayer {
    self_norm: LayerNorm,
    self_qkv: Linear,
    self_out: Linear,
    cross_norm: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    ffn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// Up to this many query rows, attention runs as direct per-row loops (decoder steps).
const FEW_ROWS: usize = 8;

pub struct Decoder {
    embeddings: Vec<f32>,
    positions: Vec<f32>,
    layers: Vec<DecoderLayer>,
    final_norm: LayerNorm,
    projection: Linear,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_ctx: usize,
    pub n_vocab: usize,
}

/// Cross-attention keys and values of one encoder output, per layer and head-major:
/// `kt[layer]` is `[n_heads, head_dim, t_audio]` (keys transposed), `v[layer]` is
/// `[n_heads, t_audio, head_dim]`: the layout [`attend_rows`] streams through.
pub struct CrossKv {
    kt: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pub t_audio: usize,
}

/// Per-hypothesis self-attention cache, per layer, in the layout of [`HeadKv`]: keys
/// transposed `[batch, n_heads, head_dim, n_ctx]`, values `[batch, n_heads, n_ctx, head_dim]`.
pub struct DecoderState {
    kt: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pub batch: usize,
    pub len: usize,
    n_ctx: usize,
    d: usize,
    n_heads: usize,
    /// A cache-sized buffer reused by [`DecoderState::reorder`].
    spare: Vec<f32>,
}

/// What one forward call returns: final-norm hidden states of every new position
/// `[batch, n_new, d]`, and the cross-attention weights of requested heads.
pub struct StepOutput {
    pub hidden: Vec<f32>,
    /// One `[batch, n_new, t_audio]` matrix per requested (layer, head).
    pub cross_weights: Vec<Vec<f32>>,
}

impl Decoder {
    pub fn load(
        w: &WeightSource,
        d: usize,
        ffn: usize,
        n_layers: usize,
        n_heads: usize,
        n_ctx: usize,
        n_vocab: usize,
    ) -> Result<Self, ModelError> {
        let layers = (0..n_layers)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_norm: layer_norm(w, &format!("{p}/self_attention/layer_norm"), d)?,
                    self_qkv: linear(w, &format!("{p}/self_attention/linear_0"), 3 * d, d)?,
                    self_out: linear(w, &format!("{p}/self_attention/linear_1"), d, d)?,
                    cross_norm: layer_norm(w, &format!("{p}/attention/layer_norm"), d)?,
                    cross_q: linear(w, &format!("{p}/attention/linear_0"), d, d)?,
                    cross_kv: linear(w, &format!("{p}/attention/linear_1"), 2 * d, d)?,
                    cross_out: linear(w, &format!("{p}/attention/linear_2"), d, d)?,
                    ffn_norm: layer_norm(w, &format!("{p}/ffn/layer_norm"), d)?,
                    fc1: linear(w, &format!("{p}/ffn/linear_0"), ffn, d)?,
                    fc2: linear(w, &format!("{p}/ffn/linear_1"), d, ffn)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let embeddings = w.f32("decoder/embeddings/weight", &[n_vocab, d])?;
        // Whisper ties the output projection to the token embeddings (an alias in model.bin).
        let projection = Linear {
            weight: if w.has("decoder/projection/weight") {
                w.f32("decoder/projection/weight", &[n_vocab, d])?
            } else {
                embeddings.clone()
            },
            bias: None,
            out_dim: n_vocab,
            in_dim: d,
        };
        Ok(Self {
            embeddings,
            positions: w.f32("decoder/position_encodings/encodings", &[n_ctx, d])?,
            layers,
            final_norm: layer_norm(w, "decoder/layer_norm", d)?,
            projection,
            d_model: d,
            n_heads,
            n_ctx,
            n_vocab,
        })
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Cross-attention K/V for one encoder output `[t_audio, d]`.
    pub fn cross_kv(&self, audio: &[f32]) -> CrossKv {
        let d = self.d_model;
        let hd = d / self.n_heads;
        let t = audio.len() / d;
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        for layer in &self.layers {
            let kv = layer.cross_kv.forward(audio, t); // [t, 2d]: keys | values
            let mut k = vec![0.0f32; t * d];
            let mut v = vec![0.0f32; t * d];
            for (ti, row) in kv.chunks_exact(2 * d).enumerate() {
                for h in 0..self.n_heads {
                    for j in 0..hd {
                        k[(h * hd + j) * t + ti] = row[h * hd + j];
                    }
                    let dst = (h * t + ti) * hd;
                    v[dst..dst + hd].copy_from_slice(&row[d + h * hd..d + (h + 1) * hd]);
                }
            }
            ks.push(k);
            vs.push(v);
        }
        CrossKv {
            kt: ks,
            v: vs,
            t_audio: t,
        }
    }

    pub fn new_state(&self, batch: usize) -> DecoderState {
        let size = batch * self.n_ctx * self.d_model;
        DecoderState {
            kt: (0..self.layers.len()).map(|_| vec![0.0; size]).collect(),
            v: (0..self.layers.len()).map(|_| vec![0.0; size]).collect(),
            batch,
            len: 0,
            n_ctx: self.n_ctx,
            d: self.d_model,
            n_heads: self.n_heads,
            spare: Vec::new(),
        }
    }

    /// Logits `[rows, n_vocab]` of final-norm hidden rows `[rows, d]`.
    pub fn logits(&self, hidden_rows: &[f32]) -> Vec<f32> {
        self.projection
            .forward(hidden_rows, hidden_rows.len() / self.d_model)
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
        let d = self.d_model;
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
        let mut x = vec![0.0f32; rows * d];
        for (bi, seq) in tokens.iter().enumerate() {
            for (i, &tok) in seq.iter().enumerate() {
                let row = &mut x[(bi * n + i) * d..(bi * n + i + 1) * d];
                let e = &self.embeddings[tok as usize * d..(tok as usize + 1) * d];
                let p = &self.positions[(past + i) * d..(past + i + 1) * d];
                for j in 0..d {
                    row[j] = e[j] + p[j];
                }
            }
        }
        let mut cross_weights: Vec<Vec<f32>> = vec![Vec::new(); capture.len()];
        for (li, layer) in self.layers.iter().enumerate() {
            // Self-attention with the cache.
            let hn = layer.self_norm.forward(&x);
            let qkv = layer.self_qkv.forward(&hn, rows);
            state.store(li, &qkv, b, n, past);
            let attn = self.self_attention(state, li, &qkv, b, n, past);
            add_in_place(&mut x, &layer.self_out.forward(&attn, rows));
            // Cross-attention on the encoder output.
            let hn = layer.cross_norm.forward(&x);
            let q = layer.cross_q.forward(&hn, rows);
            let heads: Vec<usize> = capture.iter().filter(|c| c.0 == li).map(|c| c.1).collect();
            let (attn, weights) =
                self.cross_attention(&q, &cross.kt[li], &cross.v[li], cross.t_audio, rows, &heads);
            for (head, wmat) in heads.iter().zip(weights) {
                let slot = capture
                    .iter()
                    .position(|c| *c == (li, *head))
                    .expect("captured head");
                cross_weights[slot] = wmat;
            }
            add_in_place(&mut x, &layer.cross_out.forward(&attn, rows));
            // Feed-forward.
            let hn = layer.ffn_norm.forward(&x);
            let mut f = layer.fc1.forward(&hn, rows);
            gelu_in_place(&mut f);
            add_in_place(&mut x, &layer.fc2.forward(&f, rows));
        }
        state.len = past + n;
        StepOutput {
            hidden: self.final_norm.forward(&x),
            cross_weights,
        }
    }

    /// Causal attention of the `n` new positions of each hypothesis over its cache.
    fn self_attention(
        &self,
        state: &DecoderState,
        li: usize,
        qkv: &[f32],
        b: usize,
        n: usize,
        past: usize,
    ) -> Vec<f32> {
        let d = self.d_model;
        let hd = d / self.n_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let total = past + n;
        let tasks: Vec<(usize, usize)> = (0..b)
            .flat_map(|bi| (0..self.n_heads).map(move |h| (bi, h)))
            .collect();
        let outs: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(bi, h)| {
                let q = &qkv[bi * n * 3 * d + h * hd..];
                let head = (bi * self.n_heads + h) * hd * state.n_ctx;
                let kc = &state.kt[li][head..head + hd * state.n_ctx];
                let vc = &state.v[li][head..head + state.n_ctx * hd];
                if n <= FEW_ROWS {
                    let mut out = vec![0.0f32; n * hd];
                    let kv = HeadKv {
                        kt: kc,
                        kt_stride: state.n_ctx,
                        v: vc,
                        len: total,
                    };
                    attend_rows(
                        q,
                        3 * d,
                        n,
                        hd,
                        &kv,
                        Some(&|i| past + i + 1),
                        scale,
                        &mut out,
                        hd,
                        false,
                    );
                    return out;
                }
                let mut scores = vec![0.0f32; n * total];
                matmul_strided(
                    n,
                    total,
                    hd,
                    q,
                    (3 * d, 1),
                    kc,
                    (state.n_ctx, 1),
                    &mut scores,
                    total,
                    scale,
                    false,
                );
                for i in 0..n {
                    let row = &mut scores[i * total..(i + 1) * total];
                    row[past + i + 1..].fill(f32::NEG_INFINITY);
                    softmax_in_place(row);
                }
                let mut out = vec![0.0f32; n * hd];
                matmul_strided(
                    n,
                    hd,
                    total,
                    &scores,
                    (total, 1),
                    vc,
                    (hd, 1),
                    &mut out,
                    hd,
                    1.0,
                    false,
                );
                out
            })
            .collect();
        gather_heads(&outs, &tasks, b, n, d, hd)
    }

    /// Attention of `rows` queries over one window's cross K/V; returns the `[rows, d]` output
    /// and, for each head in `keep`, its `[rows, t_audio]` weights.
    #[allow(clippy::too_many_arguments)]
    fn cross_attention(
        &self,
        q: &[f32],
        kt: &[f32],
        v: &[f32],
        t: usize,
        rows: usize,
        keep: &[usize],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let d = self.d_model;
        let hd = d / self.n_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let per_head: Vec<(Vec<f32>, Option<Vec<f32>>)> = (0..self.n_heads)
            .into_par_iter()
            .map(|h| {
                let wanted = keep.contains(&h);
                let kh = &kt[h * hd * t..(h + 1) * hd * t];
                let vh = &v[h * t * hd..(h + 1) * t * hd];
                if rows <= FEW_ROWS {
                    let mut out = vec![0.0f32; rows * hd];
                    let head = HeadKv {
                        kt: kh,
                        kt_stride: t,
                        v: vh,
                        len: t,
                    };
                    let w = attend_rows(
                        &q[h * hd..],
                        d,
                        rows,
                        hd,
                        &head,
                        None,
                        scale,
                        &mut out,
                        hd,
                        wanted,
                    );
                    return (out, w);
                }
                let mut scores = vec![0.0f32; rows * t];
                matmul_strided(
                    rows,
                    t,
                    hd,
                    &q[h * hd..],
                    (d, 1),
                    kh,
                    (t, 1),
                    &mut scores,
                    t,
                    scale,
                    false,
                );
                scores.chunks_exact_mut(t).for_each(softmax_in_place);
                let mut out = vec![0.0f32; rows * hd];
                matmul_strided(
                    rows,
                    hd,
                    t,
                    &scores,
                    (t, 1),
                    vh,
                    (hd, 1),
                    &mut out,
                    hd,
                    1.0,
                    false,
                );
                (out, wanted.then_some(scores))
            })
            .collect();
        let mut out = vec![0.0f32; rows * d];
        let mut weights = Vec::new();
        for (h, (o, w)) in per_head.into_iter().enumerate() {
            for r in 0..rows {
                out[r * d + h * hd..r * d + (h + 1) * hd].copy_from_slice(&o[r * hd..(r + 1) * hd]);
            }
            if let Some(w) = w {
                weights.push((h, w));
            }
        }
        let ordered = keep
            .iter()
            .map(|k| {
                weights
                    .iter()
                    .find(|(h, _)| h == k)
                    .map(|(_, w)| w.clone())
                    .unwrap_or_default()
            })
            .collect();
        (out, ordered)
    }
}

fn gather_heads(
    outs: &[Vec<f32>],
    tasks: &[(usize, usize)],
    b: usize,
    n: usize,
    d: usize,
    hd: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; b * n * d];
    for (o, &(bi, h)) in outs.iter().zip(tasks) {
        for i in 0..n {
            let row = bi * n + i;
            out[row * d + h * hd..row * d + (h + 1) * hd].copy_from_slice(&o[i * hd..(i + 1) * hd]);
        }
    }
    out
}

impl DecoderState {
    /// Writes the keys and values of the new positions into the cache.
    fn store(&mut self, li: usize, qkv: &[f32], b: usize, n: usize, past: usize) {
        let (d, ctx) = (self.d, self.n_ctx);
        let hd = d / self.n_heads;
        for bi in 0..b {
            for i in 0..n {
                let src = &qkv[(bi * n + i) * 3 * d..(bi * n + i + 1) * 3 * d];
                let pos = past + i;
                for h in 0..self.n_heads {
                    let head = (bi * self.n_heads + h) * hd * ctx;
                    for j in 0..hd {
                        self.kt[li][head + j * ctx + pos] = src[d + h * hd + j];
                    }
                    let vdst = head + pos * hd;
                    self.v[li][vdst..vdst + hd]
                        .copy_from_slice(&src[2 * d + h * hd..2 * d + (h + 1) * hd]);
                }
            }
        }
    }

    /// Keeps hypotheses `order[i]` as the new row `i` (beam search survivors; may repeat).
    /// Only the filled positions are copied, into a buffer kept from the previous call.
    pub fn reorder(&mut self, order: &[usize]) {
        if order.len() == self.batch && order.iter().enumerate().all(|(i, &o)| i == o) {
            return;
        }
        let (ctx, len) = (self.n_ctx, self.len);
        let per_hyp = ctx * self.d;
        let hd = self.d / self.n_heads;
        // Keys: one run of `len` per (head, dimension) row; values: one run per head.
        let key_runs: Vec<(usize, usize)> = (0..self.d).map(|r| (r * ctx, len)).collect();
        let value_runs: Vec<(usize, usize)> = (0..self.n_heads)
            .map(|h| (h * ctx * hd, len * hd))
            .collect();
        for (cache, runs) in self
            .kt
            .iter_mut()
            .map(|c| (c, &key_runs))
            .chain(self.v.iter_mut().map(|c| (c, &value_runs)))
        {
            if self.spare.len() != order.len() * per_hyp {
                self.spare = vec![0.0f32; order.len() * per_hyp];
            }
            for (i, &src) in order.iter().enumerate() {
                for &(off, n) in runs {
                    let (to, from) = (i * per_hyp + off, src * per_hyp + off);
                    self.spare[to..to + n].copy_from_slice(&cache[from..from + n]);
                }
            }
            std::mem::swap(cache, &mut self.spare);
        }
        self.batch = order.len();
    }
}
