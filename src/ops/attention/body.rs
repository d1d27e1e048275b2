//! The kernel bodies of an attention core, over the state FIFO described in the parent
//! module: `setup` (counters), `read_len` (the runtime length of a length-masked design),
//! `init` (reset `o`, `m`, `l`), `step` (one K/V block through the online softmax) and
//! `finish` (`o / l` into the output tile).
//!
//! # Vector shape
//! Every loop over `head_dim` walks the row in [`Lanes`](crate::ops::kir::Lanes) of 16 f32 (scalars when 16 does not
//! divide `head_dim`, with the same loops): bf16 Q/K/V rows load as `vector<16xbf16>` and
//! widen with `arith.extf`, as AIE-ML's vector unit computes bf16 with f32 accumulators of
//! 16 lanes (`v16accfloat`, one 512-bit register; also one AVX-512 register on the host).
//! - `Q·K_j`: a 16-lane `vector.fma` chain over the row's chunks, then one
//!   `vector.reduction <add>` (tree order, see [`Emit::vreduce`]).
//! - `P·V`: per chunk of the output row, `o = o * corr` then `o += splat(p_j) * V_j` for each
//!   visible column `j` (the outer-product form: no reduction across lanes at all).
//! - `init`/`finish` zero and divide whole chunks, and `finish` narrows them to bf16 as one
//!   `arith.truncf` of the vector.
//!
//! The scores and their `exp` stay scalar: a block has `kv_tile` of them per row (30 or 32
//! in Whisper's specs, and a runtime count under a length mask), against `head_dim` MACs
//! for each of them in both products.

use super::{Mask, Shape};
use crate::design::ElemType;
use crate::ops::kir::{Cmp, Emit, KResult};
use melior::ir::Value;

/// The lane count of the vectorised row loops.
pub(super) const LANES: usize = crate::ops::kir::F32_LANES;

/// Counters live in the state's last row: col 0 = kv block, col 1 = q block.
pub(super) fn emit_setup<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], s: Shape) -> KResult<()> {
    let zero = e.f32(0.0)?;
    let row = e.index(s.qt)?;
    e.store(zero, args[0], &[row, e.index(0)?])?;
    e.store(zero, args[0], &[row, e.index(1)?])
}

pub(super) fn emit_init<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], s: Shape) -> KResult<()> {
    let st = args[0];
    let lanes = s.lanes();
    let zero = e.f32(0.0)?;
    let zeros = lanes.splat(e, zero)?;
    let neg_inf = e.f32(f64::NEG_INFINITY)?;
    let m_col = e.index(s.d)?;
    let l_col = e.index(s.d + 1)?;
    e.for_n(s.qt, |e, i| {
        lanes.for_chunks(e, s.d, |e, x| {
            lanes.store(e, zeros, st, &[i, x], ElemType::F32)
        })?;
        e.store(neg_inf, st, &[i, m_col])?;
        e.store(zero, st, &[i, l_col])
    })?;
    e.store(zero, st, &[e.index(s.qt)?, e.index(0)?])
}

pub(super) fn emit_step<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], s: Shape) -> KResult<()> {
    let (q, kv, st) = (args[0], args[1], args[2]);
    let lanes = s.lanes();
    let zero = e.f32(0.0)?;
    let zeros = lanes.splat(e, zero)?;
    let one = e.f32(1.0)?;
    let neg_inf = e.f32(f64::NEG_INFINITY)?;
    let very_neg = e.f32(-1e30)?;
    let scale = e.f32(s.scale)?;
    let m_col = e.index(s.d)?;
    let l_col = e.index(s.d + 1)?;
    let s0 = e.index(s.d + 2)?;
    let v0 = e.index(s.d)?;
    let cnt_row = e.index(s.qt)?;
    let kb_f = e.load(st, &[cnt_row, e.index(0)?])?;
    let qb_f = e.load(st, &[cnt_row, e.index(1)?])?;
    let kb_i = e.cast("arith.fptosi", kb_f, e.int_type(32))?;
    let qb_i = e.cast("arith.fptosi", qb_f, e.int_type(32))?;
    let kb = e.cast("arith.index_cast", kb_i, e.index_type())?;
    let qb = e.cast("arith.index_cast", qb_i, e.index_type())?;
    let kv_base = e.muli(kb, e.index(s.kt)?)?;
    let q_base = e.muli(qb, e.index(s.qt)?)?;
    let cols = match s.mask {
        Mask::Length => Some(visible_columns(e, st, cnt_row, kv_base, s.kt)?),
        Mask::None | Mask::Causal => None,
    };
    let width = e.index(lanes.0)?;
    e.for_n(s.qt, |e, i| {
        let row = e.addi(q_base, i)?;
        // Scores of this block, masked to -inf past the diagonal when causal.
        let m_old = e.load(st, &[i, m_col])?;
        let m_blk = fold_columns(e, cols, s.kt, m_old, |e, j, m| {
            let acc = e.fold_n(s.d / lanes.0, zeros, |e, c, acc| {
                let x = e.muli(c, width)?;
                let qx = lanes.load(e, q, &[i, x])?;
                let kx = lanes.load(e, kv, &[j, x])?;
                lanes.mul_add(e, qx, kx, acc)
            })?;
            let mut sc = e.mulf(lanes.sum(e, acc)?, scale)?;
            if s.mask == Mask::Causal {
                let col = e.addi(kv_base, j)?;
                let future = e.cmpi(Cmp::Gt, col, row)?;
                sc = e.select(future, neg_inf, sc)?;
            }
            let sj = e.addi(j, s0)?;
            e.store(sc, st, &[i, sj])?;
            e.maxf(m, sc)
        })?;
        // A row with nothing visible yet keeps m = -inf; use 0 as the shift so exp gives 0.
        let empty = e.cmpf(Cmp::Lt, m_blk, very_neg)?;
        let shift = e.select(empty, zero, m_blk)?;
        let corr = e.unary("math.exp", e.subf(m_old, shift)?)?;
        let psum = fold_columns(e, cols, s.kt, zero, |e, j, acc| {
            let sj = e.addi(j, s0)?;
            let p = e.unary("math.exp", e.subf(e.load(st, &[i, sj])?, shift)?)?;
            e.store(p, st, &[i, sj])?;
            e.addf(acc, p)
        })?;
        let l = e.load(st, &[i, l_col])?;
        e.store(e.addf(e.mulf(l, corr)?, psum)?, st, &[i, l_col])?;
        // o = o * corr + sum_j p_j V_j, one chunk of the row at a time.
        let corr = lanes.splat(e, corr)?;
        lanes.for_chunks(e, s.d, |e, x| {
            let vx = e.addi(x, v0)?;
            let o = e.mulf(lanes.load(e, st, &[i, x])?, corr)?;
            let o = fold_columns(e, cols, s.kt, o, |e, j, acc| {
                let p = lanes.splat(e, e.load(st, &[i, e.addi(j, s0)?])?)?;
                lanes.mul_add(e, p, lanes.load(e, kv, &[j, vx])?, acc)
            })?;
            lanes.store(e, o, st, &[i, x], ElemType::F32)
        })?;
        e.store(m_blk, st, &[i, m_col])
    })?;
    e.store(e.addf(kb_f, one)?, st, &[cnt_row, e.index(0)?])
}

/// Columns of this kv block below the runtime length: `clamp(valid - kv_base, 0, kt)`.
fn visible_columns<'c, 'k>(
    e: &Emit<'c, 'k>,
    st: Value<'c, '_>,
    cnt_row: Value<'c, '_>,
    kv_base: Value<'c, '_>,
    kt: usize,
) -> KResult<Value<'c, 'k>> {
    let valid_f = e.load(st, &[cnt_row, e.index(2)?])?;
    let valid_i = e.cast("arith.fptosi", valid_f, e.int_type(32))?;
    let valid = e.cast("arith.index_cast", valid_i, e.index_type())?;
    let left = e.maxsi(e.subi(valid, kv_base)?, e.index(0)?)?;
    e.minsi(left, e.index(kt)?)
}

/// A fold over the block's columns: all `kt`, or `0..cols` when a length mask bounds them.
fn fold_columns<'c, 'k, F>(
    e: &Emit<'c, 'k>,
    cols: Option<Value<'c, '_>>,
    kt: usize,
    init: Value<'c, '_>,
    body: F,
) -> KResult<Value<'c, 'k>>
where
    F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
{
    match cols {
        None => e.fold_n(kt, init, body),
        Some(hi) => e.fold_range(e.index(0)?, hi, init, body),
    }
}

/// Reads the runtime length from the first Q-stream buffer of a step (`LEN[0] * 256 +
/// LEN[1]`, two integers every element type holds exactly) into the state's counter row.
pub(super) fn emit_read_len<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], s: Shape) -> KResult<()> {
    let (len, st) = (args[0], args[1]);
    let row0 = e.index(0)?;
    let hi = e.load_f32(len, &[row0, e.index(0)?])?;
    let lo = e.load_f32(len, &[row0, e.index(1)?])?;
    let valid = e.addf(e.mulf(hi, e.f32(256.0)?)?, lo)?;
    e.store(valid, st, &[e.index(s.qt)?, e.index(2)?])
}

pub(super) fn emit_finish<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], s: Shape) -> KResult<()> {
    let (st, out) = (args[0], args[1]);
    let lanes = s.lanes();
    let l_col = e.index(s.d + 1)?;
    e.for_n(s.qt, |e, i| {
        let l = lanes.splat(e, e.load(st, &[i, l_col])?)?;
        lanes.for_chunks(e, s.d, |e, x| {
            let v = e.divf(lanes.load(e, st, &[i, x])?, l)?;
            lanes.store(e, v, out, &[i, x], s.elem)
        })
    })?;
    // Next q block, wrapping to 0 when the next head starts.
    let cnt = e.index(s.qt)?;
    let c1 = e.index(1)?;
    let next = e.addf(e.load(st, &[cnt, c1])?, e.f32(1.0)?)?;
    let more = e.cmpf(Cmp::Lt, next, e.f32(s.q_blocks as f64)?)?;
    let next = e.select(more, next, e.f32(0.0)?)?;
    e.store(next, st, &[cnt, c1])
}
