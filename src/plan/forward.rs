//! The Whisper forward as a list of tensor ops: which kernel each one needs (by shape), and
//! how often it runs per 30 s window and per decoder step. Everything follows from the dims.
//!
//! The decoder is planned as steps: every step (prompt tokens included) runs each beam's
//! next token, so its activations are `beams` rows, padded to the cores of a column (the
//! linear design splits rows over them). Each beam has its own self-attention KV cache; the
//! beams share the encoder output, so cross attention has `beams` query rows per head.
//!
//! int8 plans quantise every linear layer's input (bf16 rows -> int8 rows + f32 scale, the
//! `sa[row]` of the epilogue) with a `quantize` kernel: after each layernorm, after each
//! attention and after fc1's fused GELU. bf16 plans feed the bf16 rows straight in.
//!
//! Not fused, and why: the residual adds after out_proj and fc2. The linear op refuses
//! `residual` in its epilogue (a core's 2 input DMA channels carry A and B, with sa, sw and
//! bias riding inside them), so they run on the `add` kernel (two input streams), f32 like
//! the cpu path's residual stream: `enc_add` (also the encoder's positional embedding) and
//! `dec_add`. The decoder's token + position embedding is a host gather, not a kernel.

use aiec_runtime::model::WhisperDims;

use super::doc::{AttentionShape, DecodeShape};
use super::{PlanError, Precision};
use crate::ops::attention::kv_len_buckets;

/// The smallest self-attention KV bucket: two 32-row KV blocks. Buckets double from there
/// to n_text_ctx, so a step reads less than twice its valid length and a decoder compiles
/// four designs (64, 128, 256, 448), not one per length.
pub const FIRST_KV_BUCKET: usize = 64;

/// What a linear layer's epilogue does after dequantising the accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearEpilogue {
    /// `+ bias[col]`, bf16 out (q/v/out/fc; a fused qkv or kv has zero bias for k).
    Bias,
    /// `gelu(... + bias[col])`, bf16 out (fc1).
    BiasGelu,
    /// No bias, f32 out (the logits: the tied embedding has none).
    Logits,
}

/// The kernel a forward op needs, by shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `x[frames, n_mels]` log-mel of one window.
    Mel {
        frames: usize,
        n_mels: usize,
    },
    /// k = 3, pad 1 convolution with fused `gelu(acc + bias)`, `frames` input frames.
    Conv {
        c_in: usize,
        c_out: usize,
        frames: usize,
        stride: usize,
    },
    /// `[m x k] x [k x n]` linear layer with its epilogue.
    Linear {
        m: usize,
        k: usize,
        n: usize,
        epilogue: LinearEpilogue,
    },
    /// `heads` independent heads of `q_len` queries over `kv_len` keys; `token_major` host
    /// buffers for the cross attention (as the projections write them).
    Attention {
        shape: AttentionShape,
        token_major: bool,
    },
    /// One decoder step of self attention, reading `kv_len` (the bucket) of `n_ctx` rows.
    AttentionDecode(DecodeShape),
    Layernorm {
        rows: usize,
        cols: usize,
    },
    /// Per-row int8 quantisation of a linear layer's input.
    Quantize {
        rows: usize,
        cols: usize,
    },
    /// `x + r` over `rows x cols` f32 (the residual stream, positional embeddings).
    Add {
        rows: usize,
        cols: usize,
    },
}

impl Want {
    /// The shape as the plan's errors name it, e.g. `linear 1500x512x1536`.
    pub fn describe(&self) -> String {
        match *self {
            Want::Mel { frames, n_mels } => format!("mel {frames}x{n_mels}"),
            Want::Conv {
                c_in,
                c_out,
                frames,
                stride,
            } => format!("conv {frames}x{c_in} -> {c_out} stride {stride}"),
            Want::Linear { m, k, n, .. } => format!("linear {m}x{k}x{n}"),
            Want::Attention { shape: a, .. } => format!(
                "attention {}h {}x{}x{}",
                a.heads, a.q_len, a.kv_len, a.head_dim
            ),
            Want::AttentionDecode(a) => format!(
                "attention_decode {}b {}h 1x{}x{}",
                a.beams, a.heads, a.kv_len, a.head_dim
            ),
            Want::Layernorm { rows, cols } => format!("layernorm {rows}x{cols}"),
            Want::Quantize { rows, cols } => format!("quantize {rows}x{cols}"),
            Want::Add { rows, cols } => format!("add {rows}x{cols}"),
        }
    }
}

/// One forward op: the plan entry (kernel) it uses and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// Plan entry (and spec file) name, e.g. `enc_qkv`.
    pub entry: String,
    /// The forward op, e.g. `encoder.layers[*].self_attn.qkv`.
    pub forward: String,
    pub want: Want,
    pub per_window: usize,
    /// Launches per decoder step; for a length bucket, per step whose valid length is in
    /// `steps`.
    pub per_step: usize,
    /// The valid KV lengths (inclusive) of the steps that run this entry; `None`: every step.
    pub steps: Option<(usize, usize)>,
    /// Rows that carry data when the kernel's rows are padded (the live beams).
    pub live_rows: Option<usize>,
}

/// The shapes the plan is derived from.
#[derive(Debug, Clone, Copy)]
pub struct Shapes {
    pub dims: WhisperDims,
    /// Live beams of a decoder step.
    pub beams: usize,
    /// Decoder activation rows: `beams` padded to the cores of a column.
    pub rows: usize,
    pub precision: Precision,
}

/// An encoder-side use (per window).
fn window(entry: &str, forward: &str, want: Want, n: usize) -> Use {
    Use {
        entry: entry.to_string(),
        forward: forward.to_string(),
        want,
        per_window: n,
        per_step: 0,
        steps: None,
        live_rows: None,
    }
}

fn linear(m: usize, k: usize, n: usize, epilogue: LinearEpilogue) -> Want {
    Want::Linear { m, k, n, epilogue }
}

impl Shapes {
    pub fn new(
        dims: &WhisperDims,
        beams: usize,
        cores_per_column: usize,
        precision: Precision,
    ) -> Result<Self, PlanError> {
        let bad = |message: String| Err(PlanError::Dims { message });
        if beams == 0 {
            return bad("beams must be at least 1".into());
        }
        for (what, heads) in [("encoder", dims.n_heads_enc), ("decoder", dims.n_heads_dec)] {
            if heads == 0 || !dims.d_model.is_multiple_of(heads) {
                return bad(format!(
                    "{what} heads ({heads}) do not divide d_model ({})",
                    dims.d_model
                ));
            }
        }
        Ok(Shapes {
            dims: *dims,
            beams,
            rows: super::tiling::round_up(beams, cores_per_column),
            precision,
        })
    }

    /// Every forward op of the encoder (per window) and the decoder (per step).
    pub fn uses(&self) -> Vec<Use> {
        let mut v = self.encoder();
        v.extend(self.decoder());
        v
    }

    /// The quantize use before an int8 linear layer (none in a bf16 plan).
    fn quantize(&self, u: Use) -> Option<Use> {
        (self.precision == Precision::Int8).then_some(u)
    }

    /// The encoder's uses: the frontend, then every layer, then the final layer norm and the
    /// decoder's cross-attention K/V (computed once per window).
    fn encoder(&self) -> Vec<Use> {
        use LinearEpilogue::{Bias, BiasGelu};
        let d = &self.dims;
        let (dm, ctx, l) = (d.d_model, d.n_audio_ctx, d.n_layers_enc);
        let ln = Want::Layernorm {
            rows: ctx,
            cols: dm,
        };
        let q = |forward: &str, cols, n| {
            let entry = if cols == dm {
                "enc_quantize"
            } else {
                "enc_quantize_ffn"
            };
            self.quantize(window(
                entry,
                forward,
                Want::Quantize { rows: ctx, cols },
                n,
            ))
        };
        // Per layer: `l` uses of an op of `encoder.layers[*]`.
        let layer = |entry: &str, forward: &str, want| {
            Some(window(
                entry,
                &format!("encoder.layers[*].{forward}"),
                want,
                l,
            ))
        };
        let layer_q = |forward: &str, cols| q(&format!("encoder.layers[*].{forward}"), cols, l);
        let add = Want::Add {
            rows: ctx,
            cols: dm,
        };
        let attention = Want::Attention {
            shape: AttentionShape {
                heads: d.n_heads_enc,
                q_len: ctx,
                kv_len: ctx,
                head_dim: dm / d.n_heads_enc,
            },
            token_major: false,
        };
        let mut v = self.encoder_frontend();
        v.extend(
            [
                Some(window("enc_add", "encoder.positions", add, 1)),
                layer("enc_layernorm", "self_attn_layer_norm", ln),
                layer_q("self_attn_layer_norm.quantize", dm),
                layer("enc_qkv", "self_attn.qkv", linear(ctx, dm, 3 * dm, Bias)),
                layer("enc_attention", "self_attn", attention),
                layer_q("self_attn.quantize", dm),
                layer(
                    "enc_out_proj",
                    "self_attn.out_proj",
                    linear(ctx, dm, dm, Bias),
                ),
                layer("enc_add", "self_attn.residual", add),
                layer("enc_layernorm", "ffn_layer_norm", ln),
                layer_q("ffn_layer_norm.quantize", dm),
                layer(
                    "enc_fc1",
                    "ffn.fc1+gelu",
                    linear(ctx, dm, d.ffn_dim, BiasGelu),
                ),
                layer_q("ffn.gelu.quantize", d.ffn_dim),
                layer("enc_fc2", "ffn.fc2", linear(ctx, d.ffn_dim, dm, Bias)),
                layer("enc_add", "ffn.residual", add),
                Some(window("enc_layernorm", "encoder.layer_norm", ln, 1)),
                q("encoder.layer_norm.quantize", dm, 1),
                // Cross-attention K/V of every decoder layer: once per window, over the frames.
                Some(window(
                    "dec_cross_kv",
                    "decoder.layers[*].cross_attn.kv",
                    linear(ctx, dm, 2 * dm, Bias),
                    d.n_layers_dec,
                )),
            ]
            .into_iter()
            .flatten(),
        );
        v
    }

    /// Log-mel, then the two convolutions (conv2 reads conv1's 3000 frames with stride 2:
    /// 1500 out).
    fn encoder_frontend(&self) -> Vec<Use> {
        let d = &self.dims;
        let frames = 2 * d.n_audio_ctx;
        let conv = |c_in, stride| Want::Conv {
            c_in,
            c_out: d.d_model,
            frames,
            stride,
        };
        let mel = Want::Mel {
            frames,
            n_mels: d.n_mels,
        };
        vec![
            window("mel", "frontend.log_mel", mel, 1),
            window("enc_conv1", "encoder.conv1+gelu", conv(d.n_mels, 1), 1),
            window("enc_conv2", "encoder.conv2+gelu", conv(d.d_model, 2), 1),
        ]
    }

    /// The self-attention uses of a step: one entry per KV length bucket, each run by the
    /// steps whose valid length falls in it (the largest bucket keeps the plain name).
    fn self_attention(&self) -> Vec<Use> {
        let d = &self.dims;
        let buckets = kv_len_buckets(d.n_text_ctx, FIRST_KV_BUCKET);
        let mut low = 1;
        buckets
            .iter()
            .map(|&kv_len| {
                let entry = if kv_len == d.n_text_ctx {
                    "dec_step_self_attention".to_string()
                } else {
                    format!("dec_step_self_attention_kv{kv_len}")
                };
                let u = Use {
                    entry,
                    forward: "decoder.step.layers[*].self_attn".into(),
                    want: Want::AttentionDecode(DecodeShape {
                        beams: self.beams,
                        heads: d.n_heads_dec,
                        head_dim: d.d_model / d.n_heads_dec,
                        n_ctx: d.n_text_ctx,
                        kv_len,
                    }),
                    per_window: 0,
                    per_step: d.n_layers_dec,
                    steps: Some((low, kv_len)),
                    live_rows: None,
                };
                low = kv_len + 1;
                u
            })
            .collect()
    }

    fn decoder(&self) -> Vec<Use> {
        use LinearEpilogue::{Bias, BiasGelu, Logits};
        let d = &self.dims;
        let (dm, r, l, b) = (d.d_model, self.rows, d.n_layers_dec, self.beams);
        let s = |entry: &str, forward: &str, want, n| Use {
            per_window: 0,
            per_step: n,
            live_rows: Some(b),
            ..window(entry, &format!("decoder.step.{forward}"), want, 0)
        };
        let ln = Want::Layernorm { rows: r, cols: dm };
        let q = |forward: &str, cols, n| {
            let entry = if cols == dm {
                "dec_quantize"
            } else {
                "dec_quantize_ffn"
            };
            self.quantize(s(entry, forward, Want::Quantize { rows: r, cols }, n))
        };
        let cross = Want::Attention {
            shape: AttentionShape {
                heads: d.n_heads_dec,
                q_len: b,
                kv_len: d.n_audio_ctx,
                head_dim: dm / d.n_heads_dec,
            },
            token_major: true,
        };
        let proj = linear(r, dm, dm, Bias);
        let add = Want::Add { rows: r, cols: dm };
        let mut v: Vec<Use> = [
            Some(s("dec_layernorm", "layers[*].self_attn_layer_norm", ln, l)),
            q("layers[*].self_attn_layer_norm.quantize", dm, l),
            Some(s(
                "dec_qkv",
                "layers[*].self_attn.qkv",
                linear(r, dm, 3 * dm, Bias),
                l,
            )),
        ]
        .into_iter()
        .flatten()
        .collect();
        v.extend(self.self_attention());
        v.extend(
            [
                q("layers[*].self_attn.quantize", dm, l),
                Some(s("dec_proj", "layers[*].self_attn.out_proj", proj, l)),
                Some(s("dec_add", "layers[*].self_attn.residual", add, l)),
                Some(s("dec_layernorm", "layers[*].cross_attn_layer_norm", ln, l)),
                q("layers[*].cross_attn_layer_norm.quantize", dm, l),
                Some(s("dec_proj", "layers[*].cross_attn.q", proj, l)),
                Some(s(
                    "dec_step_cross_attention",
                    "layers[*].cross_attn",
                    cross,
                    l,
                )),
                q("layers[*].cross_attn.quantize", dm, l),
                Some(s("dec_proj", "layers[*].cross_attn.out_proj", proj, l)),
                Some(s("dec_add", "layers[*].cross_attn.residual", add, l)),
                Some(s("dec_layernorm", "layers[*].ffn_layer_norm", ln, l)),
                q("layers[*].ffn_layer_norm.quantize", dm, l),
                Some(s(
                    "dec_fc1",
                    "layers[*].ffn.fc1+gelu",
                    linear(r, dm, d.ffn_dim, BiasGelu),
                    l,
                )),
                q("layers[*].ffn.gelu.quantize", d.ffn_dim, l),
                Some(s(
                    "dec_fc2",
                    "layers[*].ffn.fc2",
                    linear(r, d.ffn_dim, dm, Bias),
                    l,
                )),
                Some(s("dec_add", "layers[*].ffn.residual", add, l)),
                Some(s("dec_layernorm", "layer_norm", ln, 1)),
                q("layer_norm.quantize", dm, 1),
            ]
            .into_iter()
            .flatten(),
        );
        let mut logits = s("dec_logits", "", linear(r, dm, d.n_vocab, Logits), 1);
        logits.forward = "logits".into();
        v.push(logits);
        v
    }
}
