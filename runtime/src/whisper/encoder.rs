//! Whisper's audio encoder: two 1-D convolutions (the second with stride 2) with GELU, sinusoidal
//! positions, pre-norm transformer layers, a final layer norm. Input `[n_mels, 3000]` log-mel,
//! output `[1500, d_model]`.

use rayon::prelude::*;

use super::ops::{
    add_in_place, gelu_in_place, matmul_strided, softmax_in_place, LayerNorm, Linear,
};
use super::weights::{layer_norm, linear, WeightSource};
use crate::model::ModelError;

/// A 1-D convolution with kernel 3 and padding 1, computed as im2col + one matrix product.
pub struct Conv1d {
    /// `[out, in * 3]`, exactly CTranslate2's `[out, in, 3]` flattened.
    pub linear: Linear,
    pub stride: usize,
}

impl Conv1d {
    /// `x` is time-major `[t_in, c_in]`; returns `[t_out, c_out]` with `t_out = ceil(t_in / stride)`.
    pub fn forward(&self, x: &[f32], t_in: usize) -> (Vec<f32>, usize) {
        let c_in = self.linear.in_dim / 3;
        let t_out = t_in.div_ceil(self.stride);
        let mut cols = vec![0.0f32; t_out * c_in * 3];
        cols.par_chunks_mut(c_in * 3)
            .enumerate()
            .for_each(|(t, row)| {
                for j in 0..3 {
                    let src = (t * self.stride + j) as isize - 1;
                    if src < 0 || src as usize >= t_in {
                        continue;
                    }
                    let xr = &x[src as usize * c_in..(src as usize + 1) * c_in];
                    for c in 0..c_in {
                        row[c * 3 + j] = xr[c];
                    }
                }
            });
        (self.linear.forward(&cols, t_out), t_out)
    }
}

pub struct EncoderLayer {
    attn_norm: LayerNorm,
    qkv: Linear,
    out: Linear,
    ffn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Vec<f32>,
    layers: Vec<EncoderLayer>,
    final_norm: LayerNorm,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_ctx: usize,
}

impl Encoder {
    pub fn load(
        w: &WeightSource,
        n_mels: usize,
        d: usize,
        ffn: usize,
        n_layers: usize,
        n_heads: usize,
        n_ctx: usize,
    ) -> Result<Self, ModelError> {
        let conv = |name: &str, c_in: usize, stride| -> Result<Conv1d, ModelError> {
            let weight = w.f32(&format!("encoder/{name}/weight"), &[d, c_in, 3])?;
            let bias = w.f32(&format!("encoder/{name}/bias"), &[d])?;
            Ok(Conv1d {
                linear: Linear {
                    weight,
                    bias: Some(bias),
                    out_dim: d,
                    in_dim: c_in * 3,
                },
                stride,
            })
        };
        let layers = (0..n_layers)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    attn_norm: layer_norm(w, &format!("{p}/self_attention/layer_norm"), d)?,
                    qkv: linear(w, &format!("{p}/self_attention/linear_0"), 3 * d, d)?,
                    out: linear(w, &format!("{p}/self_attention/linear_1"), d, d)?,
                    ffn_norm: layer_norm(w, &format!("{p}/ffn/layer_norm"), d)?,
                    fc1: linear(w, &format!("{p}/ffn/linear_0"), ffn, d)?,
                    fc2: linear(w, &format!("{p}/ffn/linear_1"), d, ffn)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Self {
            conv1: conv("conv1", n_mels, 1)?,
            conv2: conv("conv2", d, 2)?,
            positions: w.f32("encoder/position_encodings/encodings", &[n_ctx, d])?,
            layers,
            final_norm: layer_norm(w, "encoder/layer_norm", d)?,
            d_model: d,
            n_heads,
            n_ctx,
        })
    }

    /// `mel` is `[n_mels, frames]` row-major (frames = 2 · n_ctx); returns `[n_ctx, d_model]`.
    pub fn forward(&self, mel: &[f32], n_mels: usize) -> Vec<f32> {
        let frames = mel.len() / n_mels;
        // Time-major copy of the input for the im2col of the first convolution.
        let mut x = vec![0.0f32; frames * n_mels];
        for c in 0..n_mels {
            for t in 0..frames {
                x[t * n_mels + c] = mel[c * frames + t];
            }
        }
        let (mut h, t1) = self.conv1.forward(&x, frames);
        gelu_in_place(&mut h);
        let (mut h, t2) = self.conv2.forward(&h, t1);
        gelu_in_place(&mut h);
        let t = t2.min(self.n_ctx);
        h.truncate(t * self.d_model);
        add_in_place(&mut h, &self.positions[..t * self.d_model]);
        for layer in &self.layers {
            layer.forward(&mut h, t, self.d_model, self.n_heads);
        }
        self.final_norm.forward(&h)
    }
}

impl EncoderLayer {
    fn forward(&self, x: &mut [f32], t: usize, d: usize, n_heads: usize) {
        let hn = self.attn_norm.forward(x);
        let qkv = self.qkv.forward(&hn, t);
        let attn = self_attention_full(&qkv, t, d, n_heads);
        let o = self.out.forward(&attn, t);
        add_in_place(x, &o);
        let hn = self.ffn_norm.forward(x);
        let mut f = self.fc1.forward(&hn, t);
        gelu_in_place(&mut f);
        let o = self.fc2.forward(&f, t);
        add_in_place(x, &o);
    }
}

/// Non-causal multi-head attention over a fused `[t, 3d]` q|k|v matrix; returns `[t, d]`.
/// Heads run in parallel, each as two single-threaded products.
fn self_attention_full(qkv: &[f32], t: usize, d: usize, n_heads: usize) -> Vec<f32> {
    let hd = d / n_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let heads: Vec<Vec<f32>> = (0..n_heads)
        .into_par_iter()
        .map(|h| {
            let q = &qkv[h * hd..];
            let k = &qkv[d + h * hd..];
            let v = &qkv[2 * d + h * hd..];
            let mut scores = vec![0.0f32; t * t];
            // scores = scale · Q_h[t,hd] · K_hᵀ[hd,t]; Kᵀ(i, j) = K[j*3d + i].
            matmul_strided(
                t,
                t,
                hd,
                q,
                (3 * d, 1),
                k,
                (1, 3 * d),
                &mut scores,
                t,
                scale,
                false,
            );
            scores.chunks_exact_mut(t).for_each(softmax_in_place);
            let mut out = vec![0.0f32; t * hd];
            matmul_strided(
                t,
                hd,
                t,
                &scores,
                (t, 1),
                v,
                (3 * d, 1),
                &mut out,
                hd,
                1.0,
                false,
            );
            out
        })
        .collect();
    let mut out = vec![0.0f32; t * d];
    for (h, head) in heads.iter().enumerate() {
        for r in 0..t {
            out[r * d + h * hd..r * d + (h + 1) * hd].copy_from_slice(&head[r * hd..(r + 1) * hd]);
        }
    }
    out
}
