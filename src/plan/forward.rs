//! The Whisper forward as a list of tensor ops: which kernel each one needs (by shape), and
//! how often it runs per 30 s window and per decoder step. Everything follows from the dims.
//!
//! The decoder is planned as steps: every step (prompt tokens included) runs each beam's
//! next token, so its activations are `beams` rows, padded to the cores of a column (the
//! matmul splits rows over them). Each beam has its own self-attention KV cache; the beams
//! share the encoder output, so cross attention has `beams` query rows per head.

use aiec_runtime::model::WhisperDims;

use super::PlanError;

/// The kernel a forward op needs, by shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `x[frames, n_mels]` log-mel of one window.
    Mel {
        frames: usize,
        n_mels: usize,
    },
    /// `[m x k] x [k x n]` (a linear layer, or a convolution as im2col).
    Matmul {
        m: usize,
        k: usize,
        n: usize,
    },
    /// `heads` independent heads of `q_len` queries over `kv_len` keys.
    Attention {
        heads: usize,
        q_len: usize,
        kv_len: usize,
        head_dim: usize,
    },
    Layernorm {
        rows: usize,
        cols: usize,
    },
    Gelu {
        rows: usize,
        cols: usize,
    },
}

impl Want {
    /// The shape as the plan's errors name it, e.g. `matmul 1500x512x1536`.
    pub fn describe(&self) -> String {
        match *self {
            Want::Mel { frames, n_mels } => format!("mel {frames}x{n_mels}"),
            Want::Matmul { m, k, n } => format!("matmul {m}x{k}x{n}"),
            Want::Attention {
                heads,
                q_len,
                kv_len,
                head_dim,
            } => format!("attention {heads}h {q_len}x{kv_len}x{head_dim}"),
            Want::Layernorm { rows, cols } => format!("layernorm {rows}x{cols}"),
            Want::Gelu { rows, cols } => format!("gelu {rows}x{cols}"),
        }
    }
}

/// One forward op: the plan entry (kernel) it uses and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// Plan entry (and spec file) name, e.g. `enc_qkv`.
    pub entry: &'static str,
    /// The forward op, e.g. `encoder.layers[*].self_attn.qkv`.
    pub forward: String,
    pub want: Want,
    pub per_window: usize,
    pub per_step: usize,
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
}

impl Shapes {
    pub fn new(
        dims: &WhisperDims,
        beams: usize,
        cores_per_column: usize,
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
        })
    }

    /// Every forward op of the encoder (per window) and the decoder (per step).
    pub fn uses(&self) -> Vec<Use> {
        let mut v = self.encoder();
        v.extend(self.decoder());
        v
    }

    fn encoder(&self) -> Vec<Use> {
        let d = &self.dims;
        let (dm, frames, ctx, l) = (d.d_model, 2 * d.n_audio_ctx, d.n_audio_ctx, d.n_layers_enc);
        let w = |entry, forward: &str, want, n| Use {
            entry,
            forward: forward.to_string(),
            want,
            per_window: n,
            per_step: 0,
            live_rows: None,
        };
        let mm = |m, k, n| Want::Matmul { m, k, n };
        let rows = |rows, cols| (rows, cols);
        let ln = |(rows, cols)| Want::Layernorm { rows, cols };
        let gelu = |(rows, cols)| Want::Gelu { rows, cols };
        vec![
            w(
                "mel",
                "frontend.log_mel",
                Want::Mel {
                    frames,
                    n_mels: d.n_mels,
                },
                1,
            ),
            // Convolutions as im2col matmuls (k = 3, pad 1; conv2 has stride 2).
            w("conv1", "encoder.conv1", mm(frames, 3 * d.n_mels, dm), 1),
            w(
                "conv1_gelu",
                "encoder.conv1.gelu",
                gelu(rows(frames, dm)),
                1,
            ),
            w("conv2", "encoder.conv2", mm(ctx, 3 * dm, dm), 1),
            w("conv2_gelu", "encoder.conv2.gelu", gelu(rows(ctx, dm)), 1),
            w(
                "enc_layernorm",
                "encoder.layers[*].self_attn_layer_norm",
                ln(rows(ctx, dm)),
                l,
            ),
            w(
                "enc_qkv",
                "encoder.layers[*].self_attn.qkv",
                mm(ctx, dm, 3 * dm),
                l,
            ),
            w(
                "enc_attention",
                "encoder.layers[*].self_attn",
                Want::Attention {
                    heads: d.n_heads_enc,
                    q_len: ctx,
                    kv_len: ctx,
                    head_dim: dm / d.n_heads_enc,
                },
                l,
            ),
            w(
                "enc_out_proj",
                "encoder.layers[*].self_attn.out_proj",
                mm(ctx, dm, dm),
                l,
            ),
            w(
                "enc_layernorm",
                "encoder.layers[*].ffn_layer_norm",
                ln(rows(ctx, dm)),
                l,
            ),
            w(
                "enc_fc1",
                "encoder.layers[*].ffn.fc1",
                mm(ctx, dm, d.ffn_dim),
                l,
            ),
            w(
                "enc_gelu",
                "encoder.layers[*].ffn.gelu",
                gelu(rows(ctx, d.ffn_dim)),
                l,
            ),
            w(
                "enc_fc2",
                "encoder.layers[*].ffn.fc2",
                mm(ctx, d.ffn_dim, dm),
                l,
            ),
            w("enc_layernorm", "encoder.layer_norm", ln(rows(ctx, dm)), 1),
            // Cross-attention K/V of every decoder layer: once per window, over the frames.
            w(
                "dec_cross_kv",
                "decoder.layers[*].cross_attn.kv",
                mm(ctx, dm, 2 * dm),
                d.n_layers_dec,
            ),
        ]
    }

    fn decoder(&self) -> Vec<Use> {
        let d = &self.dims;
        let (dm, r, l, b) = (d.d_model, self.rows, d.n_layers_dec, self.beams);
        let s = |entry, forward: &str, want, n| Use {
            entry,
            forward: forward.to_string(),
            want,
            per_window: 0,
            per_step: n,
            live_rows: Some(b),
        };
        let mm = |m, k, n| Want::Matmul { m, k, n };
        let ln = Want::Layernorm { rows: r, cols: dm };
        let head_dim = dm / d.n_heads_dec;
        vec![
            s(
                "dec_layernorm",
                "decoder.step.layers[*].self_attn_layer_norm",
                ln,
                l,
            ),
            s(
                "dec_qkv",
                "decoder.step.layers[*].self_attn.qkv",
                mm(r, dm, 3 * dm),
                l,
            ),
            s(
                "dec_self_attention",
                "decoder.step.layers[*].self_attn",
                // Each beam attends over its own cache: beams x heads independent heads.
                Want::Attention {
                    heads: d.n_heads_dec * b,
                    q_len: 1,
                    kv_len: d.n_text_ctx,
                    head_dim,
                },
                l,
            ),
            s(
                "dec_proj",
                "decoder.step.layers[*].self_attn.out_proj",
                mm(r, dm, dm),
                l,
            ),
            s(
                "dec_layernorm",
                "decoder.step.layers[*].cross_attn_layer_norm",
                ln,
                l,
            ),
            s(
                "dec_proj",
                "decoder.step.layers[*].cross_attn.q",
                mm(r, dm, dm),
                l,
            ),
            s(
                "dec_cross_attention",
                "decoder.step.layers[*].cross_attn",
                Want::Attention {
                    heads: d.n_heads_dec,
                    q_len: b,
                    kv_len: d.n_audio_ctx,
                    head_dim,
                },
                l,
            ),
            s(
                "dec_proj",
                "decoder.step.layers[*].cross_attn.out_proj",
                mm(r, dm, dm),
                l,
            ),
            s(
                "dec_layernorm",
                "decoder.step.layers[*].ffn_layer_norm",
                ln,
                l,
            ),
            s(
                "dec_fc1",
                "decoder.step.layers[*].ffn.fc1",
                mm(r, dm, d.ffn_dim),
                l,
            ),
            s(
                "dec_gelu",
                "decoder.step.layers[*].ffn.gelu",
                Want::Gelu {
                    rows: r,
                    cols: d.ffn_dim,
                },
                l,
            ),
            s(
                "dec_fc2",
                "decoder.step.layers[*].ffn.fc2",
                mm(r, d.ffn_dim, dm),
                l,
            ),
            s("dec_layernorm", "decoder.step.layer_norm", ln, 1),
            s("dec_logits", "logits", mm(r, dm, d.n_vocab), 1),
        ]
    }
}
