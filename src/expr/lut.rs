//! Lookup tables with linear interpolation: the kernel building block (shared by the GELU op
//! and LUT-form expressions), its f64 model, and its error bound.
//!
//! A table holds `f(min + i*step)` for `i = 0..entries` as an f32 `memref.global` constant
//! (one copy in each core's data memory). For `x` in `[min, max]` the kernel interpolates
//! linearly between the two nearest samples; below `min` / above `max` it returns the
//! caller's tail values (GELU: 0 and `x`).

use melior::ir::Value;
use serde::Deserialize;

use super::ast::{Expr, Func, U};
use super::eval::Env;
use super::parse::{parse, Decl, ExprError};
use crate::design::KernelCtx;
use crate::ops::kir::{add_f32_table, Cmp, Emit, KResult, Lanes};
use crate::spec::{Fields, SpecError};

/// A table's grid: `entries = (max - min) / step + 1` samples on `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutSpec {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

/// A table is f32 in core memory next to the buffers; it may take at most this much.
pub const MAX_TABLE_BYTES: usize = 16 * 1024;

impl LutSpec {
    /// The grid's field rules; `field` is where the grid sits in the spec (`table`, `lut`).
    pub fn check(&self, f: &Fields, field: &str) -> Result<(), SpecError> {
        let at = |name: &str| format!("{field}.{name}");
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(f.fail(&at("step"), format!("{} must be > 0", self.step)));
        }
        if !(self.min.is_finite() && self.max.is_finite() && self.max > self.min) {
            let (min, max) = (self.min, self.max);
            return Err(f.fail(&at("max"), format!("{max} must exceed {field}.min = {min}")));
        }
        let steps = (self.max - self.min) / self.step;
        if (steps - steps.round()).abs() > 1e-6 {
            return Err(f.fail(
                &at("step"),
                format!(
                    "{} does not divide the range {}..{} into whole steps ({steps:.3})",
                    self.step, self.min, self.max
                ),
            ));
        }
        let bytes = entries(self) * 4;
        if bytes > MAX_TABLE_BYTES {
            return Err(f.fail(
                &at("step"),
                format!(
                    "table needs {} entries = {bytes} bytes, limit {MAX_TABLE_BYTES} bytes",
                    bytes / 4
                ),
            ));
        }
        Ok(())
    }
}

/// Samples in the table for `grid`.
/// The work of a table-lookup row pass over `rows x cols`, per 16-lane chunk: load, the
/// index arithmetic (sub, mul, floor, clamp: 4), the `vector.gather` (the table read is one
/// lane a cycle: 16), the interpolation (sub, fma: 2), the range selects (2) and the store:
/// ~26 issues.
pub fn lookup_work(rows: usize, cols: usize) -> crate::design::KernelWork {
    crate::design::KernelWork::rows(rows, cols, 26.0)
}

pub fn entries(grid: &LutSpec) -> usize {
    ((grid.max - grid.min) / grid.step).round() as usize + 1
}

/// `f` sampled on `grid`, rounded to f32.
pub fn sample(grid: &LutSpec, f: impl Fn(f64) -> f64) -> Vec<f32> {
    (0..entries(grid))
        .map(|i| f(grid.min + i as f64 * grid.step) as f32)
        .collect()
}

/// What the kernel computes, in f64 on the same table (for tests of the table logic).
pub fn interpolate(grid: &LutSpec, table: &[f32], x: f64, below: f64, above: f64) -> f64 {
    if x < grid.min {
        return below;
    }
    if x > grid.max {
        return above;
    }
    let pos = (x - grid.min) / grid.step;
    let i0 = (pos.floor() as usize).min(table.len() - 2);
    let frac = pos - i0 as f64;
    table[i0] as f64 + frac * (table[i0 + 1] as f64 - table[i0] as f64)
}

/// Bound on `|interpolated - f|` inside `[min, max]`: `h^2/8 max|f''|` on each interval (f''
/// estimated by second differences at 9 points per interval, with 25% margin), the f32
/// rounding of the samples, and the f32 error of the position `(x - min) / step` (about
/// `2^-23 entries` of a step, times the largest slope).
pub fn interpolation_bound(grid: &LutSpec, f: impl Fn(f64) -> f64) -> f64 {
    let h = grid.step;
    let d = h / 8.0;
    let (mut curvature, mut slope, mut value) = (0f64, 0f64, 0f64);
    for i in 0..entries(grid) - 1 {
        for k in 0..=8 {
            let x = grid.min + (i as f64 + k as f64 / 8.0) * h;
            let (lo, mid, hi) = (f(x - d), f(x), f(x + d));
            curvature = curvature.max((hi - 2.0 * mid + lo).abs() / (d * d));
            slope = slope.max((hi - lo).abs() / (2.0 * d));
            value = value.max(mid.abs());
        }
    }
    1.25 * curvature * h * h / 8.0 + 2.0 * U * value + slope * h * 4.0 * U * entries(grid) as f64
}

/// The kernel side: the table global and the grid, for lookups of f32 scalars or of
/// [`Lanes`] of them.
///
/// A vector lookup computes the 16 table indices with lane-wise `arith` and reads both
/// neighbours with `vector.gather` from the table memref. Why a gather: the index of each
/// lane depends on its data, so no contiguous `vector.load` can serve it, and the
/// alternatives cost more on AIE-ML (a table in registers would need a 257-entry shuffle
/// tree; a piecewise polynomial changes the numerics and the stated bound). The host lowers
/// the gather to an LLVM masked gather (AVX-512 `vgatherdps`); mlir-aie's
/// `convert-vector-to-aievec` has no gather pattern (AIE-ML has no gather unit), so on the
/// device Peano scalarises that one op into 16 loads while the index and interpolation
/// arithmetic stays vectorised (see tests/mlir_aie_opt.rs).
pub struct LutLookup<'c, 'k> {
    table: Value<'c, 'k>,
    grid: LutSpec,
    /// The last valid lower index, `entries - 2`.
    last: i64,
}

impl<'c, 'k> LutLookup<'c, 'k> {
    /// Adds the table `values` on `grid` to the device as `name` and takes its memref.
    pub fn setup(
        ctx: &KernelCtx<'c, '_>,
        e: &Emit<'c, 'k>,
        name: &str,
        grid: &LutSpec,
        values: &[f32],
    ) -> KResult<Self> {
        let ty = add_f32_table(ctx, name, &[values.len()], values)?;
        Ok(LutLookup {
            table: e.get_global(name, ty)?,
            grid: *grid,
            last: values.len() as i64 - 2,
        })
    }

    /// The table at `v` (f32 scalar or f32 lanes), or `below` / `above` (same shape)
    /// outside it.
    pub fn lookup<'x>(
        &self,
        e: &Emit<'c, 'x>,
        v: Value<'c, 'x>,
        below: Value<'c, '_>,
        above: Value<'c, '_>,
    ) -> KResult<Value<'c, 'x>> {
        let lanes = Lanes::of(v);
        let min = lanes.f32(e, self.grid.min)?;
        let max = lanes.f32(e, self.grid.max)?;
        let i32_ty = lanes.ty(e, e.int_type(32));
        let int = |c: i64| -> KResult<Value<'c, 'x>> { lanes.splat(e, e.int(32, c)?) };
        // Index arithmetic on the clamped input so out-of-range values stay in the table.
        let vc = e.minf(e.maxf(v, min)?, max)?;
        let pos = e.mulf(e.subf(vc, min)?, lanes.f32(e, 1.0 / self.grid.step)?)?;
        let i0 = e.cast("arith.fptosi", pos, i32_ty)?;
        let i0 = e.minsi(e.maxsi(i0, int(0)?)?, int(self.last)?)?;
        let frac = e.subf(pos, e.cast("arith.sitofp", i0, lanes.ty(e, e.f32_type()))?)?;
        let i1 = e.addi(i0, int(1)?)?;
        let (l0, l1) = if lanes.is_vector() {
            (e.gather(self.table, i0)?, e.gather(self.table, i1)?)
        } else {
            let k0 = e.cast("arith.index_cast", i0, e.index_type())?;
            let k1 = e.cast("arith.index_cast", i1, e.index_type())?;
            (e.load(self.table, &[k0])?, e.load(self.table, &[k1])?)
        };
        let inside = e.addf(l0, e.mulf(frac, e.subf(l1, l0)?)?)?;
        let is_below = e.cmpf(Cmp::Lt, v, min)?;
        let is_above = e.cmpf(Cmp::Gt, v, max)?;
        let out = e.select(is_below, below, inside)?;
        e.select(is_above, above, out)
    }
}

/// The `lut = { fn = "gelu", range = [-4, 4], step = 0.03125 }` form of an element-wise
/// kernel. `fn` is an expression in `x` (a bare function name `f` means `f(x)`); `below` and
/// `above` are the values outside the range, expressions in `x` too. They default to the
/// function's limits where it has simple ones (gelu / relu / silu: 0 and `x`; sigmoid: 0 and
/// 1; tanh / erf: -1 and 1), else to the end samples.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutDef {
    #[serde(rename = "fn")]
    pub func: String,
    pub range: [f64; 2],
    pub step: f64,
    pub below: Option<String>,
    pub above: Option<String>,
}

/// A [`LutDef`] with its expressions parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Lut {
    /// The variable the expressions read.
    pub var: String,
    pub grid: LutSpec,
    pub func: Expr,
    pub below: Expr,
    pub above: Expr,
}

/// Samples of the tail error `|tail(x) - f(x)|` are taken this many range widths beyond each
/// end: the bound holds for inputs within that distance of the table.
pub const TAIL_WIDTHS: f64 = 4.0;

impl LutDef {
    pub fn grid(&self) -> LutSpec {
        LutSpec {
            min: self.range[0],
            max: self.range[1],
            step: self.step,
        }
    }

    /// Parses `fn` and the tails as expressions in the single variable `var`.
    pub fn compile(&self, var: &str) -> Result<Lut, ExprError> {
        let decl = Decl::scalars(&[var]);
        let bare = Func::by_name(self.func.trim()).filter(|f| f.arity() == 1);
        let func = match bare {
            Some(f) => Expr::Call(f, vec![Expr::Var(var.into())]),
            None => parse(&self.func, &decl)?,
        };
        let grid = self.grid();
        let at = |x: f64| func.eval(&Env::with(var, x));
        let limits = bare.and_then(|f| limits(f, var));
        let tail = |given: &Option<String>, x: f64, pick: fn((Expr, Expr)) -> Expr| match given {
            Some(text) => parse(text, &decl),
            None => Ok(limits.clone().map_or(Expr::Const(at(x)), pick)),
        };
        Ok(Lut {
            below: tail(&self.below, grid.min, |l| l.0)?,
            above: tail(&self.above, grid.max, |l| l.1)?,
            func,
            grid,
            var: var.into(),
        })
    }
}

/// `(limit at -inf, limit at +inf)` of functions whose limits are 0, 1, -1 or the identity.
fn limits(f: Func, var: &str) -> Option<(Expr, Expr)> {
    let x = Expr::Var(var.into());
    Some(match f {
        Func::Gelu | Func::Relu | Func::Silu => (Expr::Const(0.0), x),
        Func::Sigmoid => (Expr::Const(0.0), Expr::Const(1.0)),
        Func::Tanh | Func::Erf => (Expr::Const(-1.0), Expr::Const(1.0)),
        _ => return None,
    })
}

impl Lut {
    fn at(&self, e: &Expr, x: f64) -> f64 {
        e.eval(&Env::with(&self.var, x))
    }

    pub fn table(&self) -> Vec<f32> {
        sample(&self.grid, |x| self.at(&self.func, x))
    }

    /// The f64 model of the kernel.
    pub fn model(&self, table: &[f32], x: f64) -> f64 {
        let (b, a) = (self.at(&self.below, x), self.at(&self.above, x));
        interpolate(&self.grid, table, x, b, a)
    }

    /// Bound on `|kernel - fn|` for inputs within [`TAIL_WIDTHS`] range widths of the table:
    /// the interpolation bound, or the largest sampled tail error if that is larger.
    pub fn error_bound(&self) -> f64 {
        let g = &self.grid;
        let interp = interpolation_bound(g, |x| self.at(&self.func, x));
        let reach = TAIL_WIDTHS * (g.max - g.min);
        let n = (reach / g.step * 4.0).ceil() as usize;
        let mut tails = 0f64;
        for k in 0..=n {
            let d = reach * k as f64 / n as f64;
            for (tail, x) in [(&self.below, g.min - d), (&self.above, g.max + d)] {
                tails = tails.max((self.at(tail, x) - self.at(&self.func, x)).abs());
            }
        }
        interp.max(tails) + 1e-7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_bound_covers_and_is_close_to_the_measured_error() {
        // exp on [0, 2] in steps of 1/16: the error peaks mid-interval near 2 at
        // h^2/8 e^2 = 3.6e-3.
        let grid = LutSpec {
            min: 0.0,
            max: 2.0,
            step: 1.0 / 16.0,
        };
        let table = sample(&grid, f64::exp);
        assert_eq!(table.len(), 33);
        let bound = interpolation_bound(&grid, f64::exp);
        let worst = (0..=20_000)
            .map(|i| 2.0 * i as f64 / 20_000.0)
            .map(|x| (interpolate(&grid, &table, x, 0.0, 0.0) - x.exp()).abs())
            .fold(0.0, f64::max);
        assert!(worst <= bound, "worst {worst} bound {bound}");
        assert!(worst > bound / 1.5, "worst {worst} bound {bound}");
    }

    #[test]
    fn bare_names_get_their_limits_and_expressions_their_end_samples() {
        let def = |f: &str| LutDef {
            func: f.into(),
            range: [-4.0, 4.0],
            step: 0.5,
            below: None,
            above: None,
        };
        let gelu = def("gelu").compile("x").unwrap();
        assert_eq!(gelu.below, Expr::Const(0.0));
        assert_eq!(gelu.above, Expr::Var("x".into()));
        let square = def("x * x").compile("x").unwrap();
        assert_eq!(
            (square.below.clone(), square.above.clone()),
            (Expr::Const(16.0), Expr::Const(16.0))
        );
        let table = square.table();
        assert_eq!(square.model(&table, -9.0), 16.0);
        assert_eq!(square.model(&table, 0.25), 0.125);
        let e = def("x + y").compile("x").unwrap_err();
        assert_eq!((e.column, e.text.as_str()), (5, "y"));
    }
}
