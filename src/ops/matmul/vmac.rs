//! The vectorised MAC and zero kernels of matmul, at AIE-ML widths.
//!
//! Each row of the accumulator block is cut into `lanes`-wide slices (int8: 16 lanes of i32,
//! bf16: 16 lanes of f32). For a slice, the k-loop carries the accumulator vector and adds
//! `broadcast(a[i][l]) * b[l][j..j+lanes]`: the outer-product form of the AIE-ML `mmul`
//! (a 4x8 A block times an 8x8 B block is eight such rank-1 updates of four rows). int8 is
//! widened to i32 before the multiply, so every sum is exact and identical to the scalar
//! kernel; bf16 is extended to f32 and accumulated with `vector.fma` in the same k order as
//! the scalar kernel, one rounding per step instead of two.

use super::Tile;
use crate::design::ElemType;
use crate::ops::kir::{Emit, KResult};
use crate::spec::Dtype;
use melior::ir::Value;

/// The vector width used for the tile's accumulator rows, or `None` if `tile.n` is not a
/// multiple of any supported width (then the scalar kernels are emitted).
pub(super) fn lanes(t: &Tile) -> Option<usize> {
    let widths: &[usize] = match t.dtype {
        Dtype::Int8 => &[16, 8],
        _ => &[16, 8],
    };
    widths.iter().copied().find(|w| t.n % w == 0)
}

/// `acc = 0`, one vector store per `lanes`-wide row slice.
pub(super) fn emit_zero(e: &Emit<'_, '_>, acc: Value, t: Tile, lanes: usize) -> KResult<()> {
    let zero = match t.acc_elem() {
        ElemType::I32 => e.int(32, 0)?,
        _ => e.f32(0.0)?,
    };
    let zeros = e.splat(zero, lanes)?;
    e.for_n(t.m, |e, i| {
        e.for_n(t.n / lanes, |e, jb| {
            let j = e.muli(jb, e.index(lanes)?)?;
            e.vstore(zeros, acc, &[i, j])
        })
    })
}

/// `acc[i][j..j+lanes] += sum_l broadcast(a[i][l]) * b[l][j..j+lanes]`.
pub(super) fn emit_mac(
    e: &Emit<'_, '_>,
    [a, b, acc]: [Value; 3],
    t: Tile,
    lanes: usize,
) -> KResult<()> {
    let int = t.dtype == Dtype::Int8;
    e.for_n(t.m, |e, i| {
        e.for_n(t.n / lanes, |e, jb| {
            let j = e.muli(jb, e.index(lanes)?)?;
            let init = e.vload(acc, &[i, j], lanes)?;
            let sum = e.fold_n(t.k, init, |e, l, s| {
                if int {
                    let i32t = e.int_type(32);
                    let x = e.cast("arith.extsi", e.load(a, &[i, l])?, i32t)?;
                    let x = e.splat(x, lanes)?;
                    let y = e.vload(b, &[l, j], lanes)?;
                    let y = e.cast("arith.extsi", y, e.vector_type(lanes, i32t))?;
                    e.addi(s, e.muli(x, y)?)
                } else {
                    let f32t = e.f32_type();
                    let x = e.splat(e.load_f32(a, &[i, l])?, lanes)?;
                    let y = e.vload(b, &[l, j], lanes)?;
                    let y = e.cast("arith.extf", y, e.vector_type(lanes, f32t))?;
                    e.vfma(x, y, s)
                }
            })?;
            e.vstore(sum, acc, &[i, j])
        })
    })
}
