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

use crate::design::{BufferType, Design, DesignError};
use crate::device::DeviceModel;
use crate::expr::lut::LutDef;
use crate::expr::{self, Decl, Env, Expr, MapBody};
use crate::ops::gelu::{rounding_of, sanitize};
use crate::ops::registry::OpSpec;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{Fields, RowsShape, SpecError};

/// The name the expression reads its input element by.
pub const INPUT: &str = "x";

crate::op_spec! {
    pub struct ElementwiseSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
        /// `f(x)` as an expression; exactly one of `expr` and `lut`.
        pub expr: Option<String>,
        /// `f(x)` as an interpolated table.
        pub lut: Option<LutDef>,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

fn field(spec: &ElementwiseSpec, field: &str, message: String) -> SpecError {
    Fields::new(&spec.name).fail(field, message)
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

pub fn build(spec: &ElementwiseSpec) -> Result<Design, DesignError> {
    let body = body(spec).map_err(|e| DesignError::Invalid {
        design: spec.name.clone(),
        message: e.to_string(),
    })?;
    let ty = BufferType::new([spec.tile_rows, spec.shape.cols], spec.dtype.elem());
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        expr::map_kernel("elementwise", body.clone(), ty.clone())
    };
    let plan = RowwisePlan::new(spec.common(), spec.shape, spec.tile_rows, &kernel_for);
    rowwise::build(&plan)
}

impl OpSpec for ElementwiseSpec {
    /// Placement, depth, dtype, the row split, the table grid, and the body.
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.rowwise_op(
            "elementwise",
            self.common(),
            &self.shape,
            self.tile_rows,
            dev,
        )?;
        if let Some(def) = &self.lut {
            def.grid().check(f, "lut")?;
        }
        body(self).map(|_| ())
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    /// Inputs `x ~ N(0, 2^2)` (for GELU: across the table and both tails).
    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let n = self.shape.rows * self.shape.cols;
        let x = gen.normal_data(self.dtype.elem(), n, 0.0, 2.0);
        let spec = self.clone();
        let judge_x = x.clone();
        TestCase {
            inputs: vec![x],
            judge: crate::sim::verify::precomputed(move |out: &[HostData]| {
                compare(&spec, &judge_x, &out[0])
            }),
        }
    }
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
        let rounding = rounding_of(spec.dtype);
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

/// Compares the simulated output `y` with the reference for input `x` (of a checked spec:
/// an unchecked one whose body does not parse compares as all-violating).
pub fn compare(spec: &ElementwiseSpec, x: &HostData, y: &HostData) -> Comparison {
    let Ok(reference) = Reference::new(spec) else {
        return Comparison::new(&y.to_f64(), &[], false, TOLERANCE, |_, _| 0.0);
    };
    let refs: Vec<(f64, f64)> = x.to_f64().iter().map(|&v| reference.at(v)).collect();
    let want: Vec<f64> = refs.iter().map(|r| r.0).collect();
    Comparison::new(&y.to_f64(), &want, false, TOLERANCE, |i, _| refs[i].1)
}
