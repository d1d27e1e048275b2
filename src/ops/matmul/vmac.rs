//! The MAC and zero kernels of matmul, vectorised at AIE-ML `mmul` shapes.
//!
//! The accumulator tile is cut into blocks of `mmul` shape: int8 `4x8 · 8x8 -> 4x8` (i8
//! widened to i32), bf16 `4x8 · 8x4 -> 4x4` (bf16 extended to f32). Each block is a
//! `vector.contract` of two `vector.transfer_read`s into the accumulator block, which the k
//! loop carries; mlir-aie's convert-vector-to-aievec turns exactly this into
//! `aievec.matmul` (the `mmul` intrinsics), and the host JIT lowers it to SIMD code. Rows
//! past the last full block of 4 (e.g. `tile.m = 25`) and tiles whose k or n are not
//! multiples of the block are done by scalar loops, chosen at emit time.
//!
//! int8 sums are exact, so the result is bit-identical to the scalar kernel. bf16 products
//! are exact in f32; only the f32 summation order changes, which the `K * 2^-24 * sum|a||b|`
//! term of [`super::TOLERANCE`]'s bound covers for any order.

use super::Tile;
use crate::design::ElemType;
use crate::ops::kir::{Emit, KResult};
use crate::spec::Dtype;
use melior::ir::Value;

/// The AIE generation whose `mmul` shapes the blocks follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    /// AIE-ML (npu1): int8 `4x8x8`, bf16 `4x8x4`.
    AieMl,
    /// AIE-MLv2 (npu2): `8x8x8` for both.
    AieMl2,
}

impl Arch {
    /// The generation of a named device (`npu2*` is AIE-MLv2, the rest AIE-ML).
    pub(crate) fn of_device(device: &str) -> Arch {
        if device.starts_with("npu2") {
            Arch::AieMl2
        } else {
            Arch::AieMl
        }
    }
}

/// The `[m, k, n]` block of the `mmul` for the tile's dtype on `arch`.
fn mmul_block(t: &Tile, arch: Arch) -> [usize; 3] {
    match (arch, t.dtype) {
        (Arch::AieMl2, _) => [8, 8, 8],
        (Arch::AieMl, Dtype::Int8) => [4, 8, 8],
        (Arch::AieMl, _) => [4, 8, 4],
    }
}

/// The block shape when the tile's k and n are multiples of it and it has at least one full
/// row block; `None` selects the scalar kernels.
fn blocks(t: &Tile, arch: Arch) -> Option<[usize; 3]> {
    let [bm, bk, bn] = mmul_block(t, arch);
    (t.m >= bm && t.k.is_multiple_of(bk) && t.n.is_multiple_of(bn)).then_some([bm, bk, bn])
}

/// What one MAC call computes, for the performance model: the tile's MACs in the `mmul`
/// blocks [`emit_mac`] uses (rows past the last full block, done by scalar loops, are
/// counted at the block rate: at most `bm - 1` rows of a tile).
pub(crate) fn mac_work(t: &Tile) -> crate::design::KernelWork {
    crate::design::KernelWork::mac(crate::design::MacWork {
        m: t.m,
        k: t.k,
        n: t.n,
        int8: t.dtype == Dtype::Int8,
        block: blocks(t, t.arch),
    })
}

/// `acc = 0`: vector stores of 16 (or 8, 4) lanes per row, scalar stores otherwise.
pub(super) fn emit_zero(e: &Emit<'_, '_>, acc: Value, t: Tile) -> KResult<()> {
    let zero = match t.acc_elem() {
        ElemType::I32 => e.int(32, 0)?,
        _ => e.f32(0.0)?,
    };
    let Some(lanes) = [16, 8, 4].into_iter().find(|w| t.n.is_multiple_of(*w)) else {
        return e.for_n(t.m, |e, i| e.for_n(t.n, |e, j| e.store(zero, acc, &[i, j])));
    };
    let zeros = e.splat(zero, lanes)?;
    e.for_n(t.m, |e, i| {
        e.for_n(t.n / lanes, |e, jb| {
            let j = e.muli(jb, e.index(lanes)?)?;
            e.vstore(zeros, acc, &[i, j])
        })
    })
}

/// `acc[i][j] += sum_l a[i][l] * b[l][j]`.
pub(super) fn emit_mac(e: &Emit<'_, '_>, abc: [Value; 3], t: Tile) -> KResult<()> {
    let Some(block) = blocks(&t, t.arch) else {
        return scalar_rows(e, abc, t, 0);
    };
    let full_rows = t.m / block[0] * block[0];
    mmul_blocks(e, abc, t, block)?;
    if full_rows < t.m {
        scalar_rows(e, abc, t, full_rows)?;
    }
    Ok(())
}

/// The full `bm`-row blocks: for each `bm x bn` accumulator block, carry it through the k
/// loop adding `a[bm x bk] · b[bk x bn]`.
fn mmul_blocks(
    e: &Emit<'_, '_>,
    [a, b, acc]: [Value; 3],
    t: Tile,
    bmkn: [usize; 3],
) -> KResult<()> {
    let [bm, bk, bn] = bmkn;
    let wide = match t.dtype {
        Dtype::Int8 => ("arith.extsi", e.int_type(32)),
        _ => ("arith.extf", e.f32_type()),
    };
    e.for_n(t.m / bm, |e, ib| {
        let i = e.muli(ib, e.index(bm)?)?;
        e.for_n(t.n / bn, |e, jb| {
            let j = e.muli(jb, e.index(bn)?)?;
            let init = e.read_block(acc, [i, j], [bm, bn])?;
            let sum = e.fold_n(t.k / bk, init, |e, lb, s| {
                let l = e.muli(lb, e.index(bk)?)?;
                let x = e.read_block(a, [i, l], [bm, bk])?;
                let y = e.read_block(b, [l, j], [bk, bn])?;
                let x = e.cast(
                    wide.0,
                    x,
                    melior::ir::Type::vector(&[bm as u64, bk as u64], wide.1),
                )?;
                let y = e.cast(
                    wide.0,
                    y,
                    melior::ir::Type::vector(&[bk as u64, bn as u64], wide.1),
                )?;
                e.contract_mm(x, y, s)
            })?;
            e.write_block(sum, acc, [i, j])
        })
    })
}

/// Scalar loops over rows `first..tile.m` (int8 widened to i32, bf16 to f32).
fn scalar_rows(e: &Emit<'_, '_>, [a, b, acc]: [Value; 3], t: Tile, first: usize) -> KResult<()> {
    let int = t.dtype == Dtype::Int8;
    let (lo, hi) = (e.index(first)?, e.index(t.m)?);
    e.for_range(lo, hi, |e, i| {
        e.for_n(t.n, |e, j| {
            let init = e.load(acc, &[i, j])?;
            let sum = e.fold_n(t.k, init, |e, l, s| {
                if int {
                    let i32t = e.int_type(32);
                    let x = e.cast("arith.extsi", e.load(a, &[i, l])?, i32t)?;
                    let y = e.cast("arith.extsi", e.load(b, &[l, j])?, i32t)?;
                    e.addi(s, e.muli(x, y)?)
                } else {
                    let x = e.load_f32(a, &[i, l])?;
                    let y = e.load_f32(b, &[l, j])?;
                    e.addf(s, e.mulf(x, y)?)
                }
            })?;
            e.store(sum, acc, &[i, j])
        })
    })
}
