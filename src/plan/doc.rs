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

/// int8 requantisation of the int32 accumulator (today's matmul field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Requant {
    pub shift: u32,
    pub scale: i32,
}

/// GELU lookup table grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Table {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

/// The op-specific fields of a spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Matmul {
        shape: Mnk,
        tile: Mnk,
        #[serde(skip_serializing_if = "Option::is_none")]
        requant: Option<Requant>,
    },
    Attention {
        heads: usize,
        q_len: usize,
        kv_len: usize,
        head_dim: usize,
        q_tile: usize,
        kv_tile: usize,
        causal: bool,
    },
    Layernorm {
        shape: Rows,
        tile_rows: usize,
        epsilon: f64,
    },
    Gelu {
        shape: Rows,
        tile_rows: usize,
        table: Table,
    },
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
            Body::Matmul { .. } => "matmul",
            Body::Attention { .. } => "attention",
            Body::Layernorm { .. } => "layernorm",
            Body::Gelu { .. } => "gelu",
            Body::Mel { .. } => "mel",
        }
    }

    /// The problem shape, as the plan table prints it.
    pub fn shape_text(&self) -> String {
        match self {
            Body::Matmul { shape, .. } => format!("{}x{}x{}", shape.m, shape.k, shape.n),
            Body::Attention {
                heads,
                q_len,
                kv_len,
                head_dim,
                ..
            } => format!("{heads}h {q_len}x{kv_len}x{head_dim}"),
            Body::Layernorm { shape, .. } | Body::Gelu { shape, .. } => {
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
