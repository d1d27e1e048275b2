//! The checked expression tree. Every name in it was resolved against the op's declared
//! environment, so evaluation and lowering cannot meet an unknown variable or a call with the
//! wrong number of arguments.

use std::f64::consts::{FRAC_2_SQRT_PI, SQRT_2};

/// A checked element-wise expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal, kept in f64 (the kernel rounds it to f32).
    Const(f64),
    /// A scalar variable the op declares (`x`, `acc`, `residual`).
    Var(String),
    /// A vector the op declares, read at the current row or column (`bias[col]`).
    Vector {
        name: String,
        axis: Axis,
    },
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

/// What indexes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Row,
    Col,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Row => "row",
            Axis::Col => "col",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// The fixed function set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Erf,
    Exp,
    Tanh,
    Sqrt,
    Rsqrt,
    Abs,
    Max,
    Min,
    Gelu,
    Relu,
    Silu,
    Sigmoid,
}

/// Every function, for lookup by name and for error messages.
pub const FUNCS: &[Func] = &[
    Func::Erf,
    Func::Exp,
    Func::Tanh,
    Func::Sqrt,
    Func::Rsqrt,
    Func::Abs,
    Func::Max,
    Func::Min,
    Func::Gelu,
    Func::Relu,
    Func::Silu,
    Func::Sigmoid,
];

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Erf => "erf",
            Func::Exp => "exp",
            Func::Tanh => "tanh",
            Func::Sqrt => "sqrt",
            Func::Rsqrt => "rsqrt",
            Func::Abs => "abs",
            Func::Max => "max",
            Func::Min => "min",
            Func::Gelu => "gelu",
            Func::Relu => "relu",
            Func::Silu => "silu",
            Func::Sigmoid => "sigmoid",
        }
    }

    pub fn by_name(name: &str) -> Option<Func> {
        FUNCS.iter().copied().find(|f| f.name() == name)
    }

    pub fn arity(self) -> usize {
        match self {
            Func::Max | Func::Min => 2,
            _ => 1,
        }
    }

    /// The function in f64 (the reference).
    pub fn eval(self, a: &[f64]) -> f64 {
        let x = a[0];
        match self {
            Func::Erf => libm::erf(x),
            Func::Exp => x.exp(),
            Func::Tanh => x.tanh(),
            Func::Sqrt => x.sqrt(),
            Func::Rsqrt => 1.0 / x.sqrt(),
            Func::Abs => x.abs(),
            Func::Max => x.max(a[1]),
            Func::Min => x.min(a[1]),
            Func::Gelu => 0.5 * x * (1.0 + libm::erf(x / SQRT_2)),
            Func::Relu => x.max(0.0),
            Func::Silu => x / (1.0 + (-x).exp()),
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }

    /// `|f'(x)|` of a one-argument function, for propagating an argument's error. `max`/`min`
    /// are 1-Lipschitz in each argument and handled by the caller.
    pub fn slope(self, x: f64) -> f64 {
        let phi = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let sig = |t: f64| 1.0 / (1.0 + (-t).exp());
        match self {
            Func::Erf => FRAC_2_SQRT_PI * (-x * x).exp(),
            Func::Exp => x.exp(),
            Func::Tanh => 1.0 - x.tanh().powi(2),
            Func::Sqrt => 0.5 / x.sqrt(),
            Func::Rsqrt => 0.5 / (x * x * x).sqrt(),
            Func::Abs | Func::Relu | Func::Max | Func::Min => 1.0,
            Func::Gelu => (0.5 * (1.0 + libm::erf(x / SQRT_2)) + x * phi(x)).abs(),
            Func::Silu => (sig(x) * (1.0 + x * (1.0 - sig(x)))).abs(),
            Func::Sigmoid => sig(x) * (1.0 - sig(x)),
        }
        .abs()
    }

    /// Bound on `|lowered(x) - f(x)|` for an exact f32 argument `x` (`fx = f(x)`): the
    /// approximation the lowering uses (see lower.rs) plus the f32 rounding of its steps.
    pub fn lowering_error(self, x: f64, fx: f64) -> f64 {
        match self {
            Func::Erf => ERF_ERROR,
            // 0.5 x (1 + erf(x / sqrt 2)): erf's error scaled by |x|/2. Beyond |x| = 8 the f32
            // erf is exactly +-1 and the result x or 0, within 1e-14 of GELU.
            Func::Gelu => 0.5 * x.abs().min(8.0) * ERF_ERROR + 4.0 * U * fx.abs(),
            // exp / sqrt are the platform's (libm on the host): a few ulp.
            Func::Exp | Func::Sqrt => 4.0 * U * fx.abs(),
            Func::Rsqrt => 6.0 * U * fx.abs(),
            // 1 - 2 / (exp(2x) + 1) and 1 / (1 + exp(-x)): exp's relative error is damped by
            // the slope of q -> 1/(1+q) (at most 1/4 of it), plus three roundings of values <= 2.
            Func::Tanh | Func::Sigmoid => 8.0 * U + 4.0 * U * fx.abs(),
            // x * sigmoid(x): the sigmoid bound scaled by |x|, one more rounding.
            Func::Silu => 12.0 * U * x.abs() + 2.0 * U * fx.abs(),
            Func::Abs | Func::Max | Func::Min | Func::Relu => 0.0,
        }
    }
}

/// f32 unit roundoff, 2^-24.
pub(crate) const U: f64 = 1.0 / 16_777_216.0;

/// Bound on the lowered erf: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7 in exact
/// arithmetic) plus about a dozen f32 roundings of values below 1.5 and one exp.
pub const ERF_ERROR: f64 = 1.5e-7 + 8.0 * U;

impl Expr {
    /// The sub-expressions, for walks.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Const(_) | Expr::Var(_) | Expr::Vector { .. } => vec![],
            Expr::Neg(a) => vec![a],
            Expr::Binary(_, a, b) => vec![a, b],
            Expr::Call(_, args) => args.iter().collect(),
        }
    }

    /// Whether the expression reads `name` (as a scalar variable or a vector).
    pub fn uses(&self, name: &str) -> bool {
        match self {
            Expr::Var(v) | Expr::Vector { name: v, .. } if v == name => true,
            _ => self.children().iter().any(|c| c.uses(name)),
        }
    }
}
