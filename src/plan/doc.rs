//! The TOML documents a plan writes: serde mirrors of the spec fields each op reads
//! (`aiec::spec::Spec::parse` is the judge of what they mean). Serialising these instead of
//! formatting text keeps the field names and nesting in one place.

use serde::Serialize;

/// `m x k x n` (matmul shape and per-core tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mnk {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// `rows x cols` activations of the row-wise ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rows {
    pub rows: usize,
    pub cols: usize,
}

/// `heads` independent heads of `q_len` queries over `kv_len` keys: the shape a forward op
/// wants and its attention spec has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AttentionShape {
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
}

/// One decoder step of self attention for `beams` beams, reading `kv_len` (the bucket) of
/// the cache's `n_ctx` rows: the shape a forward op wants and its spec has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DecodeShape {
    pub beams: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub n_ctx: usize,
    pub kv_len: usize,
}

/// Columns and cores per column the op runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Array {
    pub columns: u32,
    pub cores_per_column: u32,
}

impl Array {
    pub fn cores(&self) -> usize {
        (self.columns * self.cores_per_column) as usize
    }
}

/// The op-specific fields of a spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    /// A linear layer with its epilogue expression.
    Linear {
        shape: Mnk,
        tile: Mnk,
        epilogue: String,
        out_dtype: &'static str,
    },
    /// k = 3, pad 1 convolution as im2col in the A access pattern.
    Conv {
        c_in: usize,
        c_out: usize,
        frames: usize,
        stride: usize,
        tile: Mnk,
        epilogue: String,
        out_dtype: &'static str,
    },
    Attention {
        #[serde(flatten)]
        shape: AttentionShape,
        q_tile: usize,
        kv_tile: usize,
        causal: bool,
        /// `token_major` for the cross attention (Q/O and KV as the projections write them).
        #[serde(skip_serializing_if = "Option::is_none")]
        layout: Option<&'static str>,
    },
    /// One decoder step of self attention over a persistent KV cache, `kv_len` the bucket.
    AttentionDecode {
        #[serde(flatten)]
        shape: DecodeShape,
        kv_tile: usize,
    },
    Layernorm {
        shape: Rows,
        tile_rows: usize,
        epsilon: f64,
    },
    /// bf16 rows -> int8 rows with their f32 scale (the int8 linear's A layout).
    Quantize { shape: Rows, tile_rows: usize },
    /// `x + r` on two input streams.
    Add { shape: Rows, tile_rows: usize },
    Mel {
        frames: usize,
        n_fft: usize,
        hop: usize,
        n_mels: usize,
        sample_rate: u32,
        frame_tile: usize,
    },
}

impl Body {
    /// The registry name of the op the body belongs to.
    pub fn op(&self) -> &'static str {
        match self {
            Body::Linear { .. } => "linear",
            Body::Conv { .. } => "conv",
            Body::Attention { .. } => "attention",
            Body::AttentionDecode { .. } => "attention_decode",
            Body::Layernorm { .. } => "layernorm",
            Body::Quantize { .. } => "quantize",
            Body::Add { .. } => "add",
            Body::Mel { .. } => "mel",
        }
    }

    /// The problem shape, as the plan table prints it.
    pub fn shape_text(&self) -> String {
        match self {
            Body::Linear { shape, .. } => format!("{}x{}x{}", shape.m, shape.k, shape.n),
            Body::Conv {
                c_in,
                c_out,
                frames,
                stride,
                ..
            } => format!("{frames}x{c_in} -> {c_out} s{stride}"),
            Body::Attention { shape: a, .. } => {
                format!("{}h {}x{}x{}", a.heads, a.q_len, a.kv_len, a.head_dim)
            }
            Body::AttentionDecode { shape: a, .. } => {
                format!("{}b x {}h 1x{}x{}", a.beams, a.heads, a.kv_len, a.head_dim)
            }
            Body::Layernorm { shape, .. }
            | Body::Quantize { shape, .. }
            | Body::Add { shape, .. } => {
                format!("{}x{}", shape.rows, shape.cols)
            }
            Body::Mel { frames, n_mels, .. } => format!("{frames}x{n_mels}"),
        }
    }
}

/// A whole spec document: the shared header, then the op's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecDoc {
    pub op: &'static str,
    pub name: String,
    pub device: String,
    pub dtype: &'static str,
    pub array: Array,
    pub depth: u32,
    #[serde(flatten)]
    pub body: Body,
}

impl SpecDoc {
    /// The TOML text of the spec.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
