//! Element-wise kernels from an expression: `y = f(x)` over `rows x cols` activations, on
//! the row-wise design ([`crate::ops::rowwise`]), with `f` given as
//! `expr = "x * 0.5 * (1 + erf(x * 0.7071067811865476))"` or as a table
//! `lut = { fn = "gelu", range = [-4, 4], step = 0.03125 }` ([`crate::expr`]).
//!
//! The reference is the expression evaluated in f64. The tolerance is per element:
//! - `expr`: the running f32 error bound of the lowered expression ([`Expr::eval_bound`]:
//!   roundings, erf's A&S 7.1.26 error, the platform's exp/sqrt ulps),
//! - `lut`: the table's interpolation / tail bound ([`crate::expr::lut::Lut::error_bound`]),
//!
//! plus, for bf16 output, `2^-8 (|ref| + that bound)` for the rounding of the stored value
//! (f32 output: `2^-23`).

use std::path::Path;

use serde::Deserialize;

use crate::design::{BufferType, Design, DesignError};
use crate::device::DeviceModel;
use crate::expr::lut::{self, LutDef};
use crate::expr::{self, Decl, Env, Expr, MapBody};
use crate::ops::gelu::sanitize;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::Comparison;
use crate::sim::HostData;
use crate::spec::{ArraySpec, Dtype, RowsShape, SpecError};

/// The name the expression reads its input element by.
pub const INPUT: &str = "x";

/// A table may take at most this much of a core's data memory (as GELU's).
pub const MAX_TABLE_BYTES: usize = 16 * 1024;

fn default_depth() -> u32 {
    2
}

fn default_stack() -> usize {
    1024
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElementwiseSpec {
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
    /// `f(x)` as an expression; exactly one of `expr` and `lut`.
    pub expr: Option<String>,
    /// `f(x)` as an interpolated table.
    pub lut: Option<LutDef>,
}

/// Reads a spec from TOML text (`path` names it in errors).
pub fn from_toml(text: &str, path: &Path) -> Result<ElementwiseSpec, SpecError> {
    toml::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn field(spec: &ElementwiseSpec, field: &str, message: String) -> SpecError {
    SpecError::Field {
        spec: spec.name.clone(),
        field: field.into(),
        message,
    }
}

/// The checked kernel body (the expression or the table).
pub fn body(spec: &ElementwiseSpec) -> Result<MapBody, SpecError> {
    match (&spec.expr, &spec.lut) {
        (Some(text), None) => expr::parse(text, &Decl::scalars(&[INPUT]))
            .map(MapBody::Expr)
            .map_err(|e| field(spec, "expr", e.to_string())),
        (None, Some(def)) => def
            .compile(INPUT)
            .map(|lut| MapBody::Lut {
                lut,
                table_name: format!("lut_{}", sanitize(&spec.name)),
            })
            .map_err(|e| field(spec, "lut", e.to_string())),
        _ => Err(field(
            spec,
            "expr",
            "give exactly one of `expr` and `lut`".into(),
        )),
    }
}

/// Field rules against the device: placement, depth, dtype, the row split, and the body.
pub fn check(spec: &ElementwiseSpec, dev: &DeviceModel) -> Result<(), SpecError> {
    let a = &spec.array;
    if a.columns == 0 || a.columns > dev.columns {
        let m = format!(
            "{} columns requested, device {} has {}",
            a.columns, dev.name, dev.columns
        );
        return Err(field(spec, "array.columns", m));
    }
    if a.cores_per_column == 0 || a.cores_per_column > dev.cores_per_column() {
        let m = format!(
            "{} cores per column requested, device {} has {} core rows",
            a.cores_per_column,
            dev.name,
            dev.cores_per_column()
        );
        return Err(field(spec, "array.cores_per_column", m));
    }
    if !(1..=8).contains(&spec.depth) {
        return Err(field(
            spec,
            "depth",
            format!("{} is outside 1..=8", spec.depth),
        ));
    }
    if !matches!(spec.dtype, Dtype::Bf16 | Dtype::F32) {
        let m = format!(
            "elementwise does not support {}; supported: bf16, f32",
            spec.dtype.name()
        );
        return Err(field(spec, "dtype", m));
    }
    let split = spec.tile_rows * (a.columns * a.cores_per_column) as usize;
    if spec.shape.rows == 0
        || spec.shape.cols == 0
        || split == 0
        || !spec.shape.rows.is_multiple_of(split)
    {
        let m = format!(
            "{} rows do not split into tile_rows ({}) x columns x cores_per_column = {split}",
            spec.shape.rows, spec.tile_rows
        );
        return Err(field(spec, "shape.rows", m));
    }
    if let Some(def) = &spec.lut {
        check_grid(spec, def)?;
    }
    body(spec).map(|_| ())
}

fn check_grid(spec: &ElementwiseSpec, def: &LutDef) -> Result<(), SpecError> {
    let [min, max] = def.range;
    if !(def.step.is_finite() && def.step > 0.0) {
        return Err(field(spec, "lut.step", format!("{} must be > 0", def.step)));
    }
    if !(min.is_finite() && max.is_finite() && max > min) {
        return Err(field(
            spec,
            "lut.range",
            format!("[{min}, {max}]: the end must exceed the start"),
        ));
    }
    let steps = (max - min) / def.step;
    if (steps - steps.round()).abs() > 1e-6 {
        let m = format!(
            "{} does not divide [{min}, {max}] into whole steps ({steps:.3})",
            def.step
        );
        return Err(field(spec, "lut.step", m));
    }
    let bytes = lut::entries(&def.grid()) * 4;
    if bytes > MAX_TABLE_BYTES {
        let m = format!("table needs {bytes} bytes, limit {MAX_TABLE_BYTES}");
        return Err(field(spec, "lut.step", m));
    }
    Ok(())
}

pub fn build(spec: &ElementwiseSpec) -> Result<Design, DesignError> {
    let body = body(spec).map_err(|e| DesignError::Invalid {
        design: spec.name.clone(),
        message: e.to_string(),
    })?;
    let (tr, cols, elem) = (spec.tile_rows, spec.shape.cols, spec.dtype.elem());
    let ty = BufferType::new([tr, cols], elem);
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        expr::map_kernel("elementwise", body.clone(), ty.clone())
    };
    rowwise::build(&RowwisePlan {
        name: &spec.name,
        device: &spec.device,
        rows: spec.shape.rows,
        cols,
        tile_rows: tr,
        array: spec.array,
        depth: spec.depth,
        stack_bytes: spec.stack_bytes,
        elem,
        params: None,
        kernel_for: &kernel_for,
        needs_step: false,
    })
}

/// The f64 reference of a spec and its per-element bound (see the module docs).
pub struct Reference {
    pub body: MapBody,
    /// The table's bound, computed once (LUT form).
    lut_bound: f64,
    /// Relative rounding of the stored output.
    rounding: f64,
}

impl Reference {
    pub fn new(spec: &ElementwiseSpec) -> Result<Self, SpecError> {
        let body = body(spec)?;
        let lut_bound = match &body {
            MapBody::Lut { lut, .. } => lut.error_bound(),
            MapBody::Expr(_) => 0.0,
        };
        let rounding = match spec.dtype {
            Dtype::Bf16 => 2f64.powi(-8),
            _ => 2f64.powi(-23),
        };
        Ok(Reference {
            body,
            lut_bound,
            rounding,
        })
    }

    /// The function in f64 at input `x`, and the bound on the kernel's distance to it.
    pub fn at(&self, x: f64) -> (f64, f64) {
        let env = Env::with(INPUT, x);
        let (want, lowering) = match &self.body {
            MapBody::Expr(e) => e.eval_bound(&env),
            MapBody::Lut { lut, .. } => (lut.func.eval(&env), self.lut_bound),
        };
        (want, lowering + self.rounding * (want.abs() + lowering))
    }

    /// The checked expression of an `expr` spec, or the function a `lut` spec tabulates.
    pub fn function(&self) -> &Expr {
        match &self.body {
            MapBody::Expr(e) => e,
            MapBody::Lut { lut, .. } => &lut.func,
        }
    }
}

/// The tolerance as text, for reports.
pub const TOLERANCE: &str = "|y - ref| <= b + 2^-8 (|ref| + b), b = the f32 lowering bound of the expression (or the table's bound)";

/// Inputs for `aiec sim`: `x ~ N(0, 2^2)` (for GELU: across the table and both tails).
pub fn inputs(spec: &ElementwiseSpec, seed: u64) -> Vec<HostData> {
    let n = spec.shape.rows * spec.shape.cols;
    vec![InputGen::new(seed).normal_data(spec.dtype.elem(), n, 0.0, 2.0)]
}

/// Compares the simulated output `y` with the reference for input `x`.
pub fn compare(
    spec: &ElementwiseSpec,
    x: &HostData,
    y: &HostData,
) -> Result<Comparison, SpecError> {
    let reference = Reference::new(spec)?;
    let refs: Vec<(f64, f64)> = x.to_f64().iter().map(|&v| reference.at(v)).collect();
    let want: Vec<f64> = refs.iter().map(|r| r.0).collect();
    Ok(Comparison::new(
        &y.to_f64(),
        &want,
        false,
        TOLERANCE,
        |i, _| refs[i].1,
    ))
}
