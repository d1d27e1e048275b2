//! The dequantising epilogue: `y = f(acc, sa[row], sw[col], bias[col])` given as an
//! expression (`epilogue = "gelu(acc * sa[row] * sw[col] + bias[col])"`), its kernel, its f64
//! reference and its bound.
//!
//! The names the expression uses decide which vectors exist: `sa` (int8 only) travels in the
//! last 4 bytes of each A row, `sw` and `bias` in the trailer rows of each B block, in that
//! order (see [`super::layout`]). The kernel decodes them from those bytes.

use melior::ir::Value;

use crate::design::{DesignError, ElemType};
use crate::expr::{self, Axis, Decl, Env, Expr, LowerEnv};
use crate::ops::kir::{Emit, KResult, Lanes};
use crate::spec::Dtype;

/// The accumulator, as a scalar.
pub const ACC: &str = "acc";
/// Per-row activation scales (int8).
pub const SA: &str = "sa";
/// Per-column weight scales (int8).
pub const SW: &str = "sw";
/// Per-column bias.
pub const BIAS: &str = "bias";
/// A residual stream: declared only so its use gets the reason it cannot be fused here.
pub const RESIDUAL: &str = "residual";

/// f32 unit roundoff.
const U: f64 = 1.0 / 16_777_216.0;

/// A checked epilogue and the vectors it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Epilogue {
    pub expr: Expr,
    /// Whether `sa[row]` is read (A rows then carry their f32 scale).
    pub row_scale: bool,
    /// The column vectors read, in the order the B trailer holds them (`sw`, then `bias`).
    pub col_vectors: Vec<&'static str>,
}

impl Epilogue {
    /// Parses `text` for an op whose operands are `dtype` (int8 may read `sa`, `sw`, `bias`;
    /// bf16 only `bias`). Errors are the message for the `epilogue` field.
    pub fn parse(text: &str, dtype: Dtype) -> Result<Self, String> {
        let vectors: &[&str] = match dtype {
            Dtype::Int8 => &[SA, SW, BIAS],
            _ => &[BIAS],
        };
        let decl = Decl::scalars(&[ACC, RESIDUAL]).with_vectors(vectors);
        let expr = expr::parse(text, &decl).map_err(|e| e.to_string())?;
        if expr.uses(RESIDUAL) {
            return Err(format!(
                "`{RESIDUAL}` cannot be fused: a core has 2 input DMA channels, both taken by \
                 the A and B streams (which carry sa, sw and bias); add the residual with an \
                 elementwise op"
            ));
        }
        check_axes(&expr)?;
        Ok(Epilogue {
            row_scale: expr.uses(SA),
            col_vectors: [SW, BIAS].into_iter().filter(|v| expr.uses(v)).collect(),
            expr,
        })
    }

    /// The f64 value at one element and the bound on the kernel's distance to it, given the
    /// exact accumulator `acc` and the bound `acc_error` on the kernel's f32 accumulator.
    pub fn reference(&self, env: &Env, acc_error: f64) -> (f64, f64) {
        let (value, lowering) = self.expr.eval_bound(env);
        // The accumulator's own error, carried through the expression by evaluating it at
        // the ends of the interval (the epilogues are monotone in acc at this scale).
        let acc = env
            .scalars
            .iter()
            .find(|(n, _)| *n == ACC)
            .map_or(0.0, |v| v.1);
        let at = |a: f64| {
            let mut shifted = env.clone();
            shifted.scalars = vec![(ACC, a)];
            self.expr.eval(&shifted)
        };
        let carried = (at(acc + acc_error) - value)
            .abs()
            .max((at(acc - acc_error) - value).abs());
        (value, lowering + carried)
    }
}

/// `sa` is indexed by row, `sw` and `bias` by column.
fn check_axes(e: &Expr) -> Result<(), String> {
    if let Expr::Vector { name, axis } = e {
        let want = if name == SA { Axis::Row } else { Axis::Col };
        if *axis != want {
            return Err(format!(
                "`{name}` is indexed by {}, write `{name}[{}]`",
                want.name(),
                want.name()
            ));
        }
    }
    e.children().into_iter().try_for_each(check_axes)
}

/// The expression with every `v[row]` / `v[col]` read as the scalar `v` (the kernel decodes
/// the element into a scalar first).
fn scalarized(e: &Expr) -> Expr {
    match e {
        Expr::Vector { name, .. } => Expr::Var(name.clone()),
        Expr::Const(_) | Expr::Var(_) => e.clone(),
        Expr::Neg(a) => Expr::Neg(Box::new(scalarized(a))),
        Expr::Binary(op, a, b) => {
            Expr::Binary(*op, Box::new(scalarized(a)), Box::new(scalarized(b)))
        }
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(scalarized).collect()),
    }
}

/// Bound on `|f32(acc) - acc|` for the kernel's accumulator: int8 sums are exact in i32 and
/// only rounded once to f32; an f32 sum of `k` bf16 products adds `k 2^-24 sum|a b|`.
pub fn acc_error(acc: f64, k: usize, abs_sum: f64, dtype: Dtype) -> f64 {
    match dtype {
        Dtype::Int8 => U * acc.abs(),
        _ => U * acc.abs() + k as f64 * U * abs_sum,
    }
}

/// What the epilogue kernel needs to know about the buffers it reads.
#[derive(Debug, Clone)]
pub(crate) struct EpilogueKernel {
    pub epilogue: Epilogue,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// A's and B's element type (i8 or bf16).
    pub operand: ElemType,
    pub out: ElemType,
}

/// `c[i][j] = f(acc[i][j], sa[i], sw[j], bias[j])`, with `sa` decoded from bytes `k..k+4`
/// of row `i` of the last A block and the column vectors from B's trailer rows.
///
/// Each row runs in 16-column f32 chunks when 16 divides the block's width (every shipped
/// linear), scalars otherwise: the accumulators load as `vector<16xi32>` (or f32) and convert
/// lane-wise, the column vectors assemble lane-wise from their byte rows, `sa` is decoded
/// once per row and broadcast, and the expression lowers on the lanes.
pub(crate) fn emit_epilogue<'c>(
    e: &Emit<'c, '_>,
    args: &[Value<'c, '_>],
    ek: &EpilogueKernel,
) -> Result<(), DesignError> {
    let (acc, a, b, c) = (args[0], args[1], args[2], args[3]);
    let body = scalarized(&ek.epilogue.expr);
    let parts = 4 / ek.operand.bytes();
    let lanes = Lanes::f32_row(ek.n);
    e.for_n(ek.m, |e, i| {
        let row_scale = match ek.epilogue.row_scale {
            true => {
                let idx = (0..4)
                    .map(|p| Ok([i, e.index(ek.k + p)?]))
                    .collect::<KResult<Vec<_>>>()?;
                Some(decode_f32(e, a, &idx, ek.operand, Lanes(1))?)
            }
            false => None,
        };
        lanes.for_chunks(e, ek.n, |e, j| {
            let mut scalars = Vec::new();
            let sum = match lanes.is_vector() {
                true => e.vload(acc, &[i, j], lanes.0)?,
                false => e.load(acc, &[i, j])?,
            };
            let sum = match ek.operand {
                ElemType::I8 => e.cast("arith.sitofp", sum, lanes.ty(e, e.f32_type()))?,
                _ => sum,
            };
            scalars.push((ACC, sum));
            if let Some(sa) = row_scale {
                scalars.push((SA, lanes.splat(e, sa)?));
            }
            for (v, name) in ek.epilogue.col_vectors.iter().enumerate() {
                let idx = (0..parts)
                    .map(|p| Ok([e.index(ek.k + v * parts + p)?, j]))
                    .collect::<KResult<Vec<_>>>()?;
                scalars.push((name, decode_f32(e, b, &idx, ek.operand, lanes)?));
            }
            let env = LowerEnv {
                scalars,
                lanes,
                ..LowerEnv::default()
            };
            let y = expr::lower(e, &body, &env)?;
            lanes.store(e, y, c, &[i, j], ek.out)
        })
    })
}

/// The f32s whose little-endian parts (bytes of an i8 buffer, halves of a bf16 one) sit at
/// `idx[0]`, `idx[1]`, ... of `memref`: zero-extended, shifted into place, or-ed, bitcast.
/// With vector `lanes`, each part is the `lanes` consecutive elements from its index, so
/// lane `l` assembles the f32 of column `j + l`.
fn decode_f32<'c, 'x>(
    e: &Emit<'c, 'x>,
    memref: Value<'c, '_>,
    idx: &[[Value<'c, 'x>; 2]],
    elem: ElemType,
    lanes: Lanes,
) -> KResult<Value<'c, 'x>> {
    let bits = elem.bytes() * 8;
    let i32t = lanes.ty(e, e.int_type(32));
    let mut word: Option<Value<'c, 'x>> = None;
    for (p, at) in idx.iter().enumerate() {
        let mut part = match lanes.is_vector() {
            true => e.vload(memref, at, lanes.0)?,
            false => e.load(memref, at)?,
        };
        if elem == ElemType::Bf16 {
            part = e.cast("arith.bitcast", part, lanes.ty(e, e.int_type(16)))?;
        }
        let mut part = e.cast("arith.extui", part, i32t)?;
        if p > 0 {
            let shift = lanes.splat(e, e.int(32, (p * bits) as i64)?)?;
            part = e.bin("arith.shli", part, shift)?;
        }
        word = Some(match word {
            None => part,
            Some(w) => e.bin("arith.ori", w, part)?,
        });
    }
    let word = word.ok_or_else(|| e.err("an f32 of no parts"))?;
    e.cast("arith.bitcast", word, lanes.ty(e, e.f32_type()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_the_vectors_and_bad_uses_are_explained() {
        let ep = Epilogue::parse("gelu(acc * sa[row] * sw[col] + bias[col])", Dtype::Int8).unwrap();
        assert!(ep.row_scale);
        assert_eq!(ep.col_vectors, vec![SW, BIAS]);
        let ep = Epilogue::parse("acc + bias[col]", Dtype::Bf16).unwrap();
        assert!(!ep.row_scale);
        assert_eq!(ep.col_vectors, vec![BIAS]);
        let err = Epilogue::parse("acc * sa[col]", Dtype::Int8).unwrap_err();
        assert!(err.contains("sa[row]"), "{err}");
        let err = Epilogue::parse("acc + residual", Dtype::Int8).unwrap_err();
        assert!(err.contains("2 input DMA channels"), "{err}");
        assert!(Epilogue::parse("acc * sa[row]", Dtype::Bf16).is_err());
    }

    #[test]
    fn reference_carries_the_accumulator_error() {
        let ep = Epilogue::parse("acc * sw[col]", Dtype::Int8).unwrap();
        let sw = [0.5];
        let env = Env {
            scalars: vec![(ACC, 1000.0)],
            vectors: vec![(SW, &sw)],
            row: 0,
            col: 0,
        };
        let (v, b) = ep.reference(&env, 2.0);
        assert_eq!(v, 500.0);
        // 0.5 * 2 from the accumulator, plus one f32 rounding of 500.
        assert!((b - (1.0 + U * 500.0)).abs() < 1e-9, "{b}");
    }
}
