//! The float64 reference: the checked tree evaluated in f64, and a running bound on how far
//! the lowered f32 kernel may be from it.

use super::ast::{Axis, BinOp, Expr, Func, U};

/// Values for one element: scalars by name, vectors by name with the element's row and column.
#[derive(Debug, Clone, Default)]
pub struct Env<'a> {
    pub scalars: Vec<(&'a str, f64)>,
    pub vectors: Vec<(&'a str, &'a [f64])>,
    pub row: usize,
    pub col: usize,
}

impl<'a> Env<'a> {
    /// One scalar variable.
    pub fn with(name: &'a str, value: f64) -> Self {
        Env {
            scalars: vec![(name, value)],
            ..Env::default()
        }
    }

    /// A name the environment does not hold reads as NaN, which no comparison accepts.
    fn scalar(&self, name: &str) -> f64 {
        self.scalars
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, v)| *v)
    }

    fn vector(&self, name: &str, axis: Axis) -> f64 {
        let i = match axis {
            Axis::Row => self.row,
            Axis::Col => self.col,
        };
        self.vectors
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.get(i).copied())
            .unwrap_or(f64::NAN)
    }
}

impl Expr {
    /// The expression in f64.
    pub fn eval(&self, env: &Env) -> f64 {
        match self {
            Expr::Const(c) => *c,
            Expr::Var(v) => env.scalar(v),
            Expr::Vector { name, axis } => env.vector(name, *axis),
            Expr::Neg(a) => -a.eval(env),
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                }
            }
            Expr::Call(f, args) => {
                let a: Vec<f64> = args.iter().map(|a| a.eval(env)).collect();
                f.eval(&a)
            }
        }
    }

    /// The f64 value and a bound on `|kernel - value|` for the lowered f32 kernel, with the
    /// inputs exact in f32 (f32 or bf16 data): first-order running error analysis. Each node
    /// carries the bound `e` of its operands; an arithmetic op adds its own f32 rounding
    /// (`2^-24 |result|`), a function propagates its argument's error by its slope and adds
    /// its lowering error ([`Func::lowering_error`]). A constant is off by its f32 rounding.
    pub fn eval_bound(&self, env: &Env) -> (f64, f64) {
        match self {
            Expr::Const(c) => (*c, (*c - *c as f32 as f64).abs()),
            Expr::Var(_) | Expr::Vector { .. } => (self.eval(env), 0.0),
            Expr::Neg(a) => {
                let (v, e) = a.eval_bound(env);
                (-v, e)
            }
            Expr::Binary(op, a, b) => {
                let ((a, ea), (b, eb)) = (a.eval_bound(env), b.eval_bound(env));
                let (v, e) = match op {
                    BinOp::Add => (a + b, ea + eb),
                    BinOp::Sub => (a - b, ea + eb),
                    BinOp::Mul => (a * b, a.abs() * eb + b.abs() * ea + ea * eb),
                    BinOp::Div if b.abs() > eb => {
                        let v = a / b;
                        (v, (ea + v.abs() * eb) / (b.abs() - eb))
                    }
                    BinOp::Div => (a / b, f64::INFINITY),
                };
                (v, e + U * (v.abs() + e))
            }
            Expr::Call(f, args) => {
                let parts: Vec<(f64, f64)> = args.iter().map(|a| a.eval_bound(env)).collect();
                let vals: Vec<f64> = parts.iter().map(|p| p.0).collect();
                let v = f.eval(&vals);
                let (x, ex) = parts[0];
                let propagated = match f {
                    Func::Max | Func::Min => parts.iter().map(|p| p.1).fold(0.0, f64::max),
                    // sqrt is 1/2-Hoelder: never worse than sqrt(e), whatever the slope.
                    Func::Sqrt => (f.slope(x) * ex).min(ex.sqrt()),
                    _ => {
                        let s = [x - ex, x, x + ex].map(|t| f.slope(t));
                        s.iter().copied().fold(0.0, f64::max) * ex
                    }
                };
                (v, propagated + f.lowering_error(x, v))
            }
        }
    }
}
