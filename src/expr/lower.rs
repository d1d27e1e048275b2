//! Checked tree -> f32 `arith` / `math` ops in a kernel body, through [`Emit`].
//!
//! Only ops both back ends lower are used: `arith`, and `math.exp` / `math.sqrt` /
//! `math.absf` as the softmax and layernorm kernels already use them. erf and tanh are not
//! left to `math.erf` / `math.tanh` (a libm call on the host, nothing on the AIE core): they
//! are expanded here, erf by Abramowitz & Stegun 7.1.26 and tanh through exp.

use melior::ir::Value;

use super::ast::{Axis, BinOp, Expr, Func};
use crate::ops::kir::{Cmp, Emit, KResult, Lanes};

/// SSA values for the names an expression may read, valid in the block being emitted.
#[derive(Default)]
pub struct LowerEnv<'c, 'v> {
    /// f32 scalars.
    pub scalars: Vec<(&'v str, Value<'c, 'v>)>,
    /// 1-D memrefs (f32 or bf16), read with `row` or `col`.
    pub vectors: Vec<(&'v str, Value<'c, 'v>)>,
    pub row: Option<Value<'c, 'v>>,
    pub col: Option<Value<'c, 'v>>,
    /// The shape of the values: f32 scalars, or chunks of f32 lanes (then `scalars` hold
    /// lanes, constants are splat vectors, `v[col]` loads the lanes from `col` and `v[row]`
    /// is one element broadcast).
    pub lanes: Lanes,
}

/// A_1..A_5 and p of A&S 7.1.26: erf(a) ~ 1 - t (A1 + t (A2 + ...)) exp(-a^2), t = 1/(1 + p a).
const ERF_P: f64 = 0.327_591_1;
const ERF_A: [f64; 5] = [
    0.254_829_592,
    -0.284_496_736,
    1.421_413_741,
    -1.453_152_027,
    1.061_405_429,
];

/// Emits `expr` in f32 and returns its value.
pub fn lower<'c, 'k, 'v: 'k>(
    e: &Emit<'c, 'k>,
    expr: &Expr,
    env: &LowerEnv<'c, 'v>,
) -> KResult<Value<'c, 'k>> {
    match expr {
        Expr::Const(c) => env.lanes.f32(e, *c),
        Expr::Var(name) => lookup(e, &env.scalars, name),
        Expr::Vector { name, axis } => {
            let memref = lookup(e, &env.vectors, name)?;
            let index = match axis {
                Axis::Row => env.row,
                Axis::Col => env.col,
            };
            let index = index
                .ok_or_else(|| e.err(format!("`{name}[{}]`: no {0} index here", axis.name())))?;
            match axis {
                Axis::Col => env.lanes.load(e, memref, &[index]),
                Axis::Row => env.lanes.splat(e, e.load_f32(memref, &[index])?),
            }
        }
        Expr::Neg(a) => e.unary("arith.negf", lower(e, a, env)?),
        Expr::Binary(op, a, b) => {
            let (a, b) = (lower(e, a, env)?, lower(e, b, env)?);
            match op {
                BinOp::Add => e.addf(a, b),
                BinOp::Sub => e.subf(a, b),
                BinOp::Mul => e.mulf(a, b),
                BinOp::Div => e.divf(a, b),
            }
        }
        Expr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| lower(e, a, env))
                .collect::<KResult<Vec<_>>>()?;
            call(e, *f, &vals)
        }
    }
}

fn lookup<'c, 'k, 'v: 'k>(
    e: &Emit<'c, 'k>,
    names: &[(&str, Value<'c, 'v>)],
    name: &str,
) -> KResult<Value<'c, 'k>> {
    names
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| e.err(format!("expression reads `{name}`, which is not bound")))
}

/// One function of f32 values (scalars or lanes, constants shaped like `x`).
pub fn call<'c, 'k>(e: &Emit<'c, 'k>, f: Func, a: &[Value<'c, 'k>]) -> KResult<Value<'c, 'k>> {
    let x = a[0];
    match f {
        Func::Erf => erf(e, x),
        Func::Exp => e.unary("math.exp", x),
        Func::Sqrt => e.unary("math.sqrt", x),
        Func::Rsqrt => e.divf(Lanes::of(x).f32(e, 1.0)?, e.unary("math.sqrt", x)?),
        Func::Abs => e.unary("math.absf", x),
        Func::Max => e.maxf(x, a[1]),
        Func::Min => e.minf(x, a[1]),
        Func::Relu => e.maxf(x, Lanes::of(x).f32(e, 0.0)?),
        Func::Tanh => {
            // 1 - 2 / (exp(2x) + 1): exact limits +-1 when exp overflows or underflows.
            let one = Lanes::of(x).f32(e, 1.0)?;
            let q = e.addf(
                e.unary("math.exp", e.mulf(x, Lanes::of(x).f32(e, 2.0)?)?)?,
                one,
            )?;
            e.subf(one, e.divf(Lanes::of(x).f32(e, 2.0)?, q)?)
        }
        Func::Sigmoid => sigmoid(e, x),
        Func::Silu => e.mulf(x, sigmoid(e, x)?),
        Func::Gelu => {
            let half_x = e.mulf(x, Lanes::of(x).f32(e, 0.5)?)?;
            let phi = erf(
                e,
                e.mulf(x, Lanes::of(x).f32(e, std::f64::consts::FRAC_1_SQRT_2)?)?,
            )?;
            e.mulf(half_x, e.addf(Lanes::of(x).f32(e, 1.0)?, phi)?)
        }
    }
}

fn sigmoid<'c, 'k>(e: &Emit<'c, 'k>, x: Value<'c, 'k>) -> KResult<Value<'c, 'k>> {
    let one = Lanes::of(x).f32(e, 1.0)?;
    let q = e.addf(one, e.unary("math.exp", e.unary("arith.negf", x)?)?)?;
    e.divf(one, q)
}

/// erf by A&S 7.1.26 on |x|, sign restored with a select.
fn erf<'c, 'k>(e: &Emit<'c, 'k>, x: Value<'c, 'k>) -> KResult<Value<'c, 'k>> {
    let one = Lanes::of(x).f32(e, 1.0)?;
    let a = e.unary("math.absf", x)?;
    let t = e.divf(one, e.addf(one, e.mulf(a, Lanes::of(x).f32(e, ERF_P)?)?)?)?;
    // Horner: t (A1 + t (A2 + t (A3 + t (A4 + t A5)))).
    let mut poly = Lanes::of(x).f32(e, ERF_A[4])?;
    for c in ERF_A[..4].iter().rev() {
        poly = e.addf(e.mulf(poly, t)?, Lanes::of(x).f32(e, *c)?)?;
    }
    poly = e.mulf(poly, t)?;
    let gauss = e.unary("math.exp", e.unary("arith.negf", e.mulf(a, a)?)?)?;
    let y = e.subf(one, e.mulf(poly, gauss)?)?;
    let negative = e.cmpf(Cmp::Lt, x, Lanes::of(x).f32(e, 0.0)?)?;
    e.select(negative, e.unary("arith.negf", y)?, y)
}
