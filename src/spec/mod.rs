//! Kernel specs: one TOML file per op (`op = "matmul" | "mel" | "attention" | "gelu" |
//! "layernorm" | "softmax"`), parsed strictly (unknown keys are errors) into typed structs,
//! then validated against a [`DeviceModel`]: field rules first (divisibility, dtypes, columns),
//! then the resources of the design the op builds (memory, locks, BDs, DMA channels).

mod resources;
mod validate;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::design::{Design, DesignError, ElemType};
use crate::device::{DeviceError, DeviceModel};

pub use resources::check_design_resources;

/// Element types a spec may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Int8,
    Bf16,
    F32,
}

impl Dtype {
    pub fn elem(self) -> ElemType {
        match self {
            Dtype::Int8 => ElemType::I8,
            Dtype::Bf16 => ElemType::Bf16,
            Dtype::F32 => ElemType::F32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::Int8 => "int8",
            Dtype::Bf16 => "bf16",
            Dtype::F32 => "f32",
        }
    }
}

/// Where the op runs: the first `columns` columns, `cores_per_column` cores in each (rows
/// 2..2+cores_per_column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArraySpec {
    pub columns: u32,
    pub cores_per_column: u32,
}

/// Matmul problem size `C[M x N] = A[M x K] * B[K x N]` (also used for per-core tiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulShape {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// int8 requantisation of the int32 accumulator:
/// `y = clamp((acc * scale + 2^(shift-1)) >> shift, -128, 127)` (round half up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requant {
    pub shift: u32,
    pub scale: i32,
}

fn default_depth() -> u32 {
    2
}

fn default_stack() -> usize {
    1024
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    /// `int8` (int32 accumulate, requantised int8 out) or `bf16` (f32 accumulate, bf16 out).
    pub dtype: Dtype,
    pub shape: MatmulShape,
    /// Per-core tile: each core computes `m x n` outputs from `m x k` and `k x n` blocks.
    pub tile: MatmulShape,
    pub array: ArraySpec,
    /// Object FIFO depth of the A/B/C streams (2 = double buffering).
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
    /// Required for int8, rejected for bf16.
    pub requant: Option<Requant>,
}

/// `rows x cols` row-major activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsShape {
    pub rows: usize,
    pub cols: usize,
}

/// GELU lookup table: `entries = (max - min) / step + 1` samples of erf-GELU on `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutSpec {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeluSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    pub dtype: Dtype,
    pub shape: RowsShape,
    /// Rows per FIFO buffer.
    pub tile_rows: usize,
    pub array: ArraySpec,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
    pub table: LutSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    pub dtype: Dtype,
    pub shape: RowsShape,
    pub tile_rows: usize,
    pub array: ArraySpec,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
    /// Row `r` only sees columns `0..=r` (the row index is the global row number).
    #[serde(default)]
    pub causal: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayernormSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    pub dtype: Dtype,
    pub shape: RowsShape,
    pub tile_rows: usize,
    pub array: ArraySpec,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
    pub epsilon: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    pub dtype: Dtype,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
    /// Query rows per step.
    pub q_tile: usize,
    /// Key/value rows per step (streamed; an online softmax carries max and sum).
    pub kv_tile: usize,
    pub array: ArraySpec,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
    #[serde(default)]
    pub causal: bool,
    /// Score scale; defaults to `1/sqrt(head_dim)`.
    pub scale: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelSpec {
    /// The `op` key (already used to pick this struct).
    #[serde(rename = "op", default)]
    #[doc(hidden)]
    pub _op: serde::de::IgnoredAny,
    pub name: String,
    pub device: String,
    pub dtype: Dtype,
    /// STFT frames (3000 for a 30 s window).
    pub frames: usize,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub sample_rate: u32,
    /// Frames per FIFO buffer.
    pub frame_tile: usize,
    pub array: ArraySpec,
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default = "default_stack")]
    pub stack_bytes: usize,
}

/// A parsed spec of any op.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Matmul(MatmulSpec),
    Mel(MelSpec),
    Attention(AttentionSpec),
    Gelu(GeluSpec),
    Layernorm(LayernormSpec),
    Softmax(SoftmaxSpec),
}

#[derive(thiserror::Error, Debug)]
pub enum SpecError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("spec `{spec}`: {source}")]
    Device {
        spec: String,
        #[source]
        source: DeviceError,
    },
    /// A field breaks a rule; `field` is its TOML path (`tile.m`, `array.columns`, ...).
    #[error("spec `{spec}`: field `{field}`: {message}")]
    Field {
        spec: String,
        field: String,
        message: String,
    },
    /// The built design needs more of a tile resource than the device has.
    #[error("spec `{spec}`: {resource} on tile ({col},{row}): need {need}, limit {limit} ({detail}); reduce {fields}")]
    Resource {
        spec: String,
        resource: String,
        col: u32,
        row: u32,
        need: usize,
        limit: usize,
        detail: String,
        fields: String,
    },
    #[error("spec `{spec}`: building the design: {source}")]
    Design {
        spec: String,
        #[source]
        source: DesignError,
    },
}

/// The op kinds a spec may name.
pub const OPS: &[&str] = &["matmul", "mel", "attention", "gelu", "layernorm", "softmax"];

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.op())
    }
}

impl Spec {
    /// Reads and parses a spec file; errors carry the path and TOML line/column.
    pub fn load(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(&text, path)
    }

    /// Parses spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Spec, SpecError> {
        let fail = |e: toml::de::Error| SpecError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        };
        // Two passes so that errors keep their line: read `op`, then deserialize the op's own
        // struct straight from the text (an internally tagged enum would buffer the document
        // and lose the spans).
        let table: toml::Table = toml::from_str(text).map_err(fail)?;
        let op = table
            .get("op")
            .and_then(|v| v.as_str())
            .ok_or_else(|| SpecError::Parse {
                path: origin.to_path_buf(),
                message: format!(
                    "missing string key `op`; expected one of {}",
                    OPS.join(", ")
                ),
            })?;
        Ok(match op {
            "matmul" => Spec::Matmul(toml::from_str(text).map_err(fail)?),
            "mel" => Spec::Mel(toml::from_str(text).map_err(fail)?),
            "attention" => Spec::Attention(toml::from_str(text).map_err(fail)?),
            "gelu" => Spec::Gelu(toml::from_str(text).map_err(fail)?),
            "layernorm" => Spec::Layernorm(toml::from_str(text).map_err(fail)?),
            "softmax" => Spec::Softmax(toml::from_str(text).map_err(fail)?),
            other => {
                return Err(SpecError::Parse {
                    path: origin.to_path_buf(),
                    message: format!("unknown op `{other}`; expected one of {}", OPS.join(", ")),
                })
            }
        })
    }

    pub fn op(&self) -> &'static str {
        match self {
            Spec::Matmul(_) => "matmul",
            Spec::Mel(_) => "mel",
            Spec::Attention(_) => "attention",
            Spec::Gelu(_) => "gelu",
            Spec::Layernorm(_) => "layernorm",
            Spec::Softmax(_) => "softmax",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Spec::Matmul(s) => &s.name,
            Spec::Mel(s) => &s.name,
            Spec::Attention(s) => &s.name,
            Spec::Gelu(s) => &s.name,
            Spec::Layernorm(s) => &s.name,
            Spec::Softmax(s) => &s.name,
        }
    }

    pub fn device_name(&self) -> &str {
        match self {
            Spec::Matmul(s) => &s.device,
            Spec::Mel(s) => &s.device,
            Spec::Attention(s) => &s.device,
            Spec::Gelu(s) => &s.device,
            Spec::Layernorm(s) => &s.device,
            Spec::Softmax(s) => &s.device,
        }
    }

    /// The device model the spec names.
    pub fn device(&self) -> Result<DeviceModel, SpecError> {
        DeviceModel::get(self.device_name()).map_err(|source| SpecError::Device {
            spec: self.name().to_string(),
            source,
        })
    }

    /// Checks every rule: field rules, then the resources of the design it builds.
    pub fn validate(&self, device: &DeviceModel) -> Result<(), SpecError> {
        validate::check_fields(self, device)?;
        let design = self.build_unchecked()?;
        check_design_resources(self, &design, device)
    }

    /// Validates against the named device and builds the design.
    pub fn build(&self) -> Result<Design, SpecError> {
        let device = self.device()?;
        validate::check_fields(self, &device)?;
        let design = self.build_unchecked()?;
        check_design_resources(self, &design, &device)?;
        Ok(design)
    }

    fn build_unchecked(&self) -> Result<Design, SpecError> {
        let built = match self {
            Spec::Matmul(s) => crate::ops::matmul::build(s),
            Spec::Mel(s) => crate::ops::mel::build(s),
            Spec::Attention(s) => crate::ops::attention::build(s),
            Spec::Gelu(s) => crate::ops::gelu::build(s),
            Spec::Layernorm(s) => crate::ops::layernorm::build(s),
            Spec::Softmax(s) => crate::ops::softmax::build(s),
        };
        built.map_err(|source| SpecError::Design {
            spec: self.name().to_string(),
            source,
        })
    }

    /// Bytes of constant tables (`memref.global`) every core of the design holds: the GELU
    /// lookup table, the mel window/DFT/filter-bank tables.
    pub fn core_table_bytes(&self) -> usize {
        match self {
            Spec::Gelu(s) => crate::ops::gelu::table(&s.table).len() * 4,
            Spec::Mel(s) => {
                let (_, band, _) = crate::ops::mel::banded_filter_bank(s.n_mels);
                (3 * crate::ops::mel::N_FFT + s.n_mels + s.n_mels * band) * 4
            }
            _ => 0,
        }
    }

    /// Which spec fields size the per-core buffers (named in resource errors).
    pub(crate) fn buffer_fields(&self) -> &'static str {
        match self {
            Spec::Matmul(_) => "tile.m/tile.k/tile.n, depth or stack_bytes",
            Spec::Mel(_) => "frame_tile, depth or stack_bytes",
            Spec::Attention(_) => "q_tile/kv_tile, depth or stack_bytes",
            Spec::Gelu(_) | Spec::Layernorm(_) | Spec::Softmax(_) => {
                "tile_rows, depth or stack_bytes"
            }
        }
    }
}
