//! Element-wise expressions for kernel specs: `expr = "x * 0.5 * (1 + erf(x * 0.7071067811865476))"`,
//! `epilogue = "gelu(acc * sa[row] * sw[col] + bias[col]) + residual"`, or a table
//! `lut = { fn = "gelu", range = [-4, 4], step = 0.03125 }`.
//!
//! Grammar (`expr.pest`): numbers (`2`, `0.5`, `.5`, `1e-3`), names, `v[row]` / `v[col]`,
//! calls of a fixed set ([`Func`]: erf exp tanh sqrt rsqrt abs max min gelu relu silu
//! sigmoid), `+ - * /` left-associative with `* /` binding tighter, unary minus, parentheses.
//!
//! One checked tree ([`Expr`], after [`parse`] against the op's [`Decl`]) serves three uses:
//! [`Expr::eval`] is the float64 reference, [`Expr::eval_bound`] the documented tolerance of
//! the f32 kernel, and [`lower()`] emits the kernel body (`arith` / `math` through
//! [`crate::ops::kir::Emit`]); [`lut`] turns the same tree into an interpolated table.

mod ast;
mod eval;
mod lower;
pub mod lut;
mod parse;

pub use ast::{Axis, BinOp, Expr, Func, ERF_ERROR, FUNCS};
pub use eval::Env;
pub use lower::{lower, LowerEnv};
pub use parse::{parse, Decl, ExprError};

use melior::ir::{Block, Value};

use crate::design::{BufferType, DesignError, ElemType, Kernel, KernelCtx};
use crate::ops::kir::{Emit, KResult, Lanes};
use lut::{Lut, LutLookup};

/// What an element-wise kernel computes from its input element `x`.
#[derive(Debug, Clone, PartialEq)]
pub enum MapBody {
    Expr(Expr),
    /// A table (emitted as the device global `table_name`).
    Lut {
        lut: Lut,
        table_name: String,
    },
}

/// A kernel `y = f(x)` element by element over two buffers of type `ty` (1-D or 2-D, f32 or
/// bf16), with `f` an expression in `x`; e.g. `kernel("relu", "max(x, 0)", &chunk)`.
pub fn kernel(name: &str, src: &str, ty: &BufferType) -> Result<Kernel, ExprError> {
    let body = MapBody::Expr(parse(src, &Decl::scalars(&["x"]))?);
    Ok(map_kernel(name, body, ty.clone()))
}

/// The kernel for a checked body (see [`kernel`]); a table body reports its table's bytes
/// as the kernel's constant data.
pub fn map_kernel(name: &str, body: MapBody, ty: BufferType) -> Kernel {
    let kernel_name = name.to_string();
    let table_bytes = match &body {
        MapBody::Lut { lut, .. } => lut::entries(&lut.grid) * 4,
        MapBody::Expr(_) => 0,
    };
    let work = map_work(&body, &ty);
    crate::ops::kernel(name, move |ctx, block, args| {
        emit_map(ctx, block, args, &kernel_name, &body, &ty)
    })
    .with_const_bytes(table_bytes)
    .with_work(work)
}

/// The work of a map body over `ty` (see [`emit_map`] for when it vectorises): a table
/// lookup as [`lut::lookup_work`]; an expression one issue per node, plus a load and a
/// store, with a function call (erf, exp, tanh...) counted as ~20 issues (a range reduction
/// and polynomial, as AIE-ML has no instruction for any of them).
fn map_work(body: &MapBody, ty: &BufferType) -> crate::design::KernelWork {
    let (rows, cols) = match ty.shape.as_slice() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        _ => (1, ty.numel()),
    };
    match body {
        MapBody::Lut { .. } => lut::lookup_work(rows, cols),
        MapBody::Expr(expr) => {
            fn cost(e: &ast::Expr) -> f64 {
                let own = match e {
                    ast::Expr::Call(..) => 20.0,
                    _ => 1.0,
                };
                own + e.children().into_iter().map(cost).sum::<f64>()
            }
            let vector = ty.elem != ElemType::Bf16 && cols.is_multiple_of(16);
            crate::design::KernelWork::rows_vectorised(rows, cols, cost(expr) + 2.0, vector)
        }
    }
}

fn emit_map<'c>(
    ctx: &KernelCtx<'c, '_>,
    block: &Block<'c>,
    args: &[Value<'c, '_>],
    name: &str,
    body: &MapBody,
    ty: &BufferType,
) -> Result<(), DesignError> {
    crate::ops::expect_args(name, args, 2)?;
    let e = Emit::new(ctx, block, name);
    let (x, y, elem) = (args[0], args[1], ty.elem);
    if !matches!(elem, ElemType::F32 | ElemType::Bf16) {
        return Err(e.err(format!(
            "element-wise kernels take f32 or bf16, not {}",
            elem.mlir()
        )));
    }
    let table = match body {
        MapBody::Lut { lut, table_name } => Some(LutLookup::setup(
            ctx,
            &e,
            table_name,
            &lut.grid,
            &lut.table(),
        )?),
        MapBody::Expr(_) => None,
    };
    let table = table.as_ref();
    // Rows walk in 16 f32 lanes when 16 divides them, else in scalars; every function the
    // lowering emits is lane-wise, so one body serves both. Except an expression over bf16
    // data: its first op multiplies the widened bf16 input by an f32 constant, which
    // mlir-aie's AIE-ML vectoriser marks illegal and cannot rewrite, failing the whole
    // module (tests/mlir_aie_opt.rs pins it); those bodies stay scalar, which it accepts.
    let vectorise = !(matches!(body, MapBody::Expr(_)) && elem == ElemType::Bf16);
    let lanes_for = |len: usize| {
        if vectorise {
            Lanes::f32_row(len)
        } else {
            Lanes::default()
        }
    };
    match ty.shape.as_slice() {
        [n] => {
            let lanes = lanes_for(*n);
            lanes.for_chunks(&e, *n, |e, i| {
                let v = lanes.load(e, x, &[i])?;
                lanes.store(e, element(e, v, body, table)?, y, &[i], elem)
            })
        }
        [rows, cols] => {
            let lanes = lanes_for(*cols);
            e.for_n(*rows, |e, i| {
                lanes.for_chunks(e, *cols, |e, j| {
                    let v = lanes.load(e, x, &[i, j])?;
                    lanes.store(e, element(e, v, body, table)?, y, &[i, j], elem)
                })
            })
        }
        other => Err(e.err(format!(
            "element-wise kernels take 1-D or 2-D buffers, not {other:?}"
        ))),
    }
}

/// One output element from its input `v`.
fn element<'c, 'x>(
    e: &Emit<'c, 'x>,
    v: Value<'c, 'x>,
    body: &MapBody,
    table: Option<&LutLookup<'c, '_>>,
) -> KResult<Value<'c, 'x>> {
    match (body, table) {
        (MapBody::Expr(expr), _) => lower(e, expr, &scalar_env("x", v)),
        (MapBody::Lut { lut, .. }, Some(t)) => {
            let env = scalar_env(&lut.var, v);
            let below = lower(e, &lut.below, &env)?;
            let above = lower(e, &lut.above, &env)?;
            t.lookup(e, v, below, above)
        }
        (MapBody::Lut { .. }, None) => Err(e.err("table body without its table")),
    }
}

fn scalar_env<'c, 'v>(name: &'v str, v: Value<'c, 'v>) -> LowerEnv<'c, 'v> {
    LowerEnv {
        scalars: vec![(name, v)],
        lanes: Lanes::of(v),
        ..LowerEnv::default()
    }
}
