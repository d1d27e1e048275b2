//! Kernel specs: one TOML file per op (`op = "matmul"`, `"gelu"`, ...: the registry in
//! [`crate::ops::registry`] lists them), parsed strictly (unknown keys are errors) into the
//! op's own typed struct, then validated against a [`DeviceModel`]: field rules first
//! (divisibility, dtypes, columns), then the resources of the design the op builds (memory,
//! locks, BDs, DMA channels).

mod fields;
mod resources;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::design::{Design, DesignError, ElemType};
use crate::device::{DeviceError, DeviceModel};
use crate::ops::registry::{self, OpSpec};

pub(crate) use fields::check_positive;
pub use fields::Fields;
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

impl ArraySpec {
    pub fn cores(&self) -> usize {
        (self.columns * self.cores_per_column) as usize
    }
}

/// `rows x cols` row-major activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsShape {
    pub rows: usize,
    pub cols: usize,
}

pub(crate) fn default_depth() -> u32 {
    2
}

pub(crate) fn default_stack() -> usize {
    1024
}

#[derive(thiserror::Error, Debug)]
pub enum SpecError {
    #[error("{path}: cannot read")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    // The device and design errors are the whole message, so they are shown here rather
    // than left to `source()` (callers flatten these with `to_string`).
    #[error("spec `{spec}`: {error}")]
    Device { spec: String, error: DeviceError },
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
    #[error("spec `{spec}`: building the design: {error}")]
    Design { spec: String, error: DesignError },
}

/// A parsed spec of any registered op.
#[derive(Debug, Clone)]
pub struct Spec {
    op: &'static str,
    inner: Arc<dyn OpSpec>,
}

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
        let fail = |message: String| SpecError::Parse {
            path: origin.to_path_buf(),
            message,
        };
        let known = || registry::names().join(", ");
        // Two passes so that errors keep their line: read `op`, then deserialize the op's own
        // struct straight from the text (an internally tagged enum would buffer the document
        // and lose the spans).
        let table: toml::Table =
            toml::from_str(text).map_err(|e| fail(e.to_string().trim_end().to_string()))?;
        let op = table.get("op").and_then(|v| v.as_str()).ok_or_else(|| {
            fail(format!(
                "missing string key `op`; expected one of {}",
                known()
            ))
        })?;
        let entry = registry::lookup(op)
            .ok_or_else(|| fail(format!("unknown op `{op}`; expected one of {}", known())))?;
        let inner = (entry.parse)(text).map_err(|e| fail(e.to_string().trim_end().to_string()))?;
        Ok(Spec {
            op: entry.name,
            inner,
        })
    }

    /// The `op` key.
    pub fn op(&self) -> &'static str {
        self.op
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    pub fn device_name(&self) -> &str {
        self.inner.device()
    }

    /// The op's own view of the spec (its checks, design, reference).
    pub fn op_spec(&self) -> &dyn OpSpec {
        self.inner.as_ref()
    }

    /// The op's typed spec struct, if the spec is of that op.
    pub fn downcast<T: 'static>(&self) -> Option<&T> {
        self.inner.as_any().downcast_ref()
    }

    /// The device model the spec names.
    pub fn device(&self) -> Result<DeviceModel, SpecError> {
        DeviceModel::get(self.device_name()).map_err(|error| SpecError::Device {
            spec: self.name().to_string(),
            error,
        })
    }

    /// Checks every rule: field rules, then the resources of the design it builds.
    pub fn validate(&self, device: &DeviceModel) -> Result<(), SpecError> {
        self.check_and_build(device).map(|_| ())
    }

    /// Validates against the named device and builds the design.
    pub fn build(&self) -> Result<Design, SpecError> {
        self.check_and_build(&self.device()?)
    }

    fn check_and_build(&self, device: &DeviceModel) -> Result<Design, SpecError> {
        self.inner.check(&Fields::new(self.name()), device)?;
        let design = self.inner.build().map_err(|error| SpecError::Design {
            spec: self.name().to_string(),
            error,
        })?;
        check_design_resources(self, &design, device)?;
        Ok(design)
    }

    /// Which spec fields size the per-core buffers (named in resource errors).
    pub(crate) fn buffer_fields(&self) -> &'static str {
        self.inner.buffer_fields()
    }
}
