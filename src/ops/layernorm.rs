//! Layer normalisation over each row: `y = (x - mean) / sqrt(var + eps) * gamma + beta`, with
//! the biased variance (as PyTorch/CTranslate2 compute it), in f32, stored as bf16 or f32.
//! gamma and beta arrive as one `2 x cols` parameter buffer (row 0 gamma, row 1 beta) on a
//! broadcast FIFO, acquired once per core and held for the whole run (host argument 2).

use crate::design::{BufferType, Design, DesignError, ElemType, KernelCtx};
use crate::ops::kir::{Emit, KResult};
use crate::ops::rowwise::{self, RowwisePlan};
use crate::ops::{expect_args, kernel};
use crate::spec::LayernormSpec;
use melior::ir::{Block, Value};

/// Mixed bound: one bf16 rounding of the output is 2^-8 relative to |y|, and the f32
/// mean/variance over <= 4096 columns adds < 1e-4 relative to the normalised scale (~1).
/// Check `|y - ref| <= TOLERANCE * (1 + |ref|)`.
pub const TOLERANCE: f64 = 1.0 / 256.0 + 1e-4;

/// f64 layernorm of a `rows x cols` matrix.
pub fn reference(
    x: &[f64],
    rows: usize,
    cols: usize,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / cols as f64;
        let inv = 1.0 / (var + eps).sqrt();
        out.extend((0..cols).map(|j| (row[j] - mean) * inv * gamma[j] + beta[j]));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn emit<'c>(
    ctx: &KernelCtx<'c, '_>,
    block: &Block<'c>,
    args: &[Value<'c, '_>],
    rows: usize,
    cols: usize,
    elem: ElemType,
    eps: f64,
) -> KResult<()> {
    expect_args("layernorm", args, 3)?;
    let e = Emit::new(ctx, block, "layernorm");
    let (x, y, p) = (args[0], args[1], args[2]);
    let zero = e.f32(0.0)?;
    let inv_n = e.f32(1.0 / cols as f64)?;
    let eps = e.f32(eps)?;
    let one = e.f32(1.0)?;
    let g_row = e.index(0)?;
    let b_row = e.index(1)?;
    e.for_n(rows, |e, i| {
        let sum = e.fold_n(cols, zero, |e, j, s| e.addf(s, e.load_f32(x, &[i, j])?))?;
        let mean = e.mulf(sum, inv_n)?;
        let sq = e.fold_n(cols, zero, |e, j, s| {
            let d = e.subf(e.load_f32(x, &[i, j])?, mean)?;
            e.addf(s, e.mulf(d, d)?)
        })?;
        let var = e.mulf(sq, inv_n)?;
        let inv = e.divf(one, e.unary("math.sqrt", e.addf(var, eps)?)?)?;
        e.for_n(cols, |e, j| {
            let d = e.subf(e.load_f32(x, &[i, j])?, mean)?;
            let g = e.load_f32(p, &[g_row, j])?;
            let b = e.load_f32(p, &[b_row, j])?;
            let v = e.addf(e.mulf(e.mulf(d, inv)?, g)?, b)?;
            e.store_f32(v, y, &[i, j], elem)
        })
    })
}

pub fn build(spec: &LayernormSpec) -> Result<Design, DesignError> {
    let (tr, cols, elem, eps) = (
        spec.tile_rows,
        spec.shape.cols,
        spec.dtype.elem(),
        spec.epsilon,
    );
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        kernel("layernorm", move |c, b, a| {
            emit(c, b, a, tr, cols, elem, eps)
        })
    };
    rowwise::build(&RowwisePlan {
        name: &spec.name,
        device: &spec.device,
        rows: spec.shape.rows,
        cols,
        tile_rows: tr,
        array: spec.array,
        depth: spec.depth,
        stack_bytes: spec.stack_bytes,
        elem,
        params: Some(BufferType::new([2, cols], elem)),
        kernel_for: &kernel_for,
        needs_step: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_a_hand_computed_row() {
        // Row [1, 2, 3, 4]: mean 2.5, biased var 1.25.
        let y = reference(&[1., 2., 3., 4.], 1, 4, &[1.0; 4], &[0.0; 4], 0.0);
        let s = 1.25f64.sqrt();
        for (j, v) in y.iter().enumerate() {
            assert!((v - (j as f64 + 1.0 - 2.5) / s).abs() < 1e-12);
        }
        // gamma 2, beta 1: 2*y + 1; eps shrinks the scale.
        let y2 = reference(&[1., 2., 3., 4.], 1, 4, &[2.0; 4], &[1.0; 4], 0.0);
        assert!((y2[0] - (2.0 * y[0] + 1.0)).abs() < 1e-12);
        let y3 = reference(&[1., 2., 3., 4.], 1, 4, &[1.0; 4], &[0.0; 4], 1.0);
        assert!((y3[3] - 1.5 / 2.25f64.sqrt()).abs() < 1e-12);
    }
}
