//! Row softmax with max subtraction: `y_j = exp(x_j - max) / sum_k exp(x_k - max)`, computed in
//! f32 (`math.exp`), stored as bf16 or f32. With `causal`, row `r` (its global row number)
//! only sees columns `0..=r`; masked outputs are 0. The causal kernel needs the absolute row,
//! so its step loop is unrolled (one kernel instance per step, each knowing its first row).

use crate::design::{Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::emit_kernel;
use crate::ops::kir::{Emit, KResult, Lanes};
use crate::ops::registry::OpSpec;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::TestCase;
use crate::spec::{Fields, RowsShape, SpecError};
use melior::ir::Value;

/// Absolute bound on each output (outputs are probabilities in [0, 1]): one bf16 rounding
/// (2^-8 relative, <= 2^-8 absolute) plus f32 exp/sum error (~1e-6). For f32 output the
/// same bound is loose but valid.
pub const TOLERANCE: f64 = 1.0 / 256.0 + 1e-5;

/// f64 softmax of one row; `visible` columns take part (the rest are 0).
pub fn reference_row(x: &[f64], visible: usize) -> Vec<f64> {
    let visible = visible.min(x.len());
    let mut out = vec![0.0; x.len()];
    if visible == 0 {
        return out;
    }
    let max = x[..visible]
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x[..visible].iter().map(|v| (v - max).exp()).sum();
    for j in 0..visible {
        out[j] = (x[j] - max).exp() / sum;
    }
    out
}

/// f64 softmax of a `rows x cols` matrix; causal row `r` sees columns `0..=r`.
pub fn reference(x: &[f64], rows: usize, cols: usize, causal: bool) -> Vec<f64> {
    (0..rows)
        .flat_map(|r| {
            let visible = if causal { r + 1 } else { cols };
            reference_row(&x[r * cols..(r + 1) * cols], visible)
        })
        .collect()
}

/// Emits a softmax over `rows x cols`; `first_row` is `Some(global row of row 0)` when causal.
///
/// The row is walked in [`Lanes`] of [`F32_LANES`](crate::ops::kir::F32_LANES) (scalars when
/// 16 does not divide `cols`): a lane-wise max then one `vector.reduction <maximumf>`, a
/// lane-wise sum of `exp(x - max)` then one `vector.reduction <add>`, and the output chunk
/// `exp(x - max) · (1 / sum)` (one divide per row: AIE-ML has no vector divide). A causal
/// row's max and sum passes stop at the chunk holding its last visible column, and lanes past
/// it are masked (`-inf` for the max, `0` for the sum and the output) by an iota comparison.
pub(crate) fn emit_rows<'c>(
    e: &Emit<'c, '_>,
    x: Value<'c, '_>,
    y: Value<'c, '_>,
    rows: usize,
    cols: usize,
    elem: ElemType,
    first_row: Option<usize>,
) -> KResult<()> {
    let lanes = Lanes::f32_row(cols);
    let neg_inf = lanes.splat(e, e.f32(f64::NEG_INFINITY)?)?;
    let zero = e.f32(0.0)?;
    let zeros = lanes.splat(e, zero)?;
    let one = e.f32(1.0)?;
    let ncols = e.index(cols)?;
    e.for_n(rows, |e, i| {
        // Columns this row sees (`hi`, all or 0..=global row), and the chunks that hold them.
        let (hi, chunks) = match first_row {
            Some(base) => {
                let r = e.addi(e.index(base)?, i)?;
                let hi = e.minsi(e.addi(r, e.index(1)?)?, ncols)?;
                (Some(hi), lanes.chunks_below(e, hi)?)
            }
            None => (None, e.index(cols / lanes.0)?),
        };
        // The max and sum passes stop at `hi`: only a vector's last chunk needs its mask.
        let partial = hi.filter(|_| lanes.is_vector());
        let max = lanes.fold_first_chunks(e, chunks, neg_inf, |e, c, m| {
            let v = visible(e, lanes, partial, c, lanes.load(e, x, &[i, c])?, neg_inf)?;
            e.maxf(m, v)
        })?;
        let max = lanes.splat(e, lanes.max(e, max)?)?;
        let sum = lanes.fold_first_chunks(e, chunks, zeros, |e, c, s| {
            let v = e.unary("math.exp", e.subf(lanes.load(e, x, &[i, c])?, max)?)?;
            e.addf(s, visible(e, lanes, partial, c, v, zeros)?)
        })?;
        let inv = lanes.splat(e, e.divf(one, lanes.sum(e, sum)?)?)?;
        lanes.for_chunks(e, cols, |e, c| {
            let v = e.unary("math.exp", e.subf(lanes.load(e, x, &[i, c])?, max)?)?;
            let p = visible(e, lanes, hi, c, e.mulf(v, inv)?, zeros)?;
            lanes.store(e, p, y, &[i, c], elem)
        })
    })
}

/// The chunk `v` from column `c`, its columns at or past `hi` (when causal) replaced by `fill`.
fn visible<'c, 'k>(
    e: &Emit<'c, 'k>,
    lanes: Lanes,
    hi: Option<Value<'c, '_>>,
    c: Value<'c, '_>,
    v: Value<'c, 'k>,
    fill: Value<'c, '_>,
) -> KResult<Value<'c, 'k>> {
    match hi {
        Some(hi) => e.select(lanes.below(e, c, hi)?, v, fill),
        None => Ok(v),
    }
}

pub fn build(spec: &SoftmaxSpec) -> Result<Design, DesignError> {
    let (tr, cols, elem, causal) = (
        spec.tile_rows,
        spec.shape.cols,
        spec.dtype.elem(),
        spec.causal,
    );
    let cores = spec.array.cores_per_column as usize;
    let rows_per_column = spec.shape.rows / spec.array.columns as usize;
    let kernel_for = move |core_index: usize, step: Option<usize>| {
        // Global first row of this core's tile at this step (see rowwise::RowwisePlan::first_row).
        let first_row = step.map(|s| {
            let (col, r) = (core_index / cores, core_index % cores);
            col * rows_per_column + s * tr * cores + r * tr
        });
        emit_kernel("softmax", 2, move |e, a| {
            emit_rows(e, a[0], a[1], tr, cols, elem, first_row)
        })
        // Three passes per 16-lane chunk: max (1), exp and sum (sub, exp, add), exp and
        // scale and store (sub, exp, mul, store). AIE-ML has no vector exp instruction: the
        // lowering's exp is a range reduction and polynomial, taken as ~8 issues. ~22 a chunk.
        .with_work(crate::design::KernelWork::rows(tr, cols, 22.0))
    };
    rowwise::build(&RowwisePlan::new(spec.common(), spec.shape, tr, &kernel_for).stepped(causal))
}

crate::op_spec! {
    pub struct SoftmaxSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
        /// Row `r` only sees columns `0..=r` (the row index is the global row number).
        #[serde(default)]
        pub causal: bool,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

impl OpSpec for SoftmaxSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.rowwise_op("softmax", self.common(), &self.shape, self.tile_rows, dev)
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (rows, cols) = (self.shape.rows, self.shape.cols);
        let x = gen.normal_data(self.dtype.elem(), rows * cols, 0.0, 3.0);
        let r = reference(&x.to_f64(), rows, cols, self.causal);
        TestCase::elementwise(vec![x], r, false, "|y - ref| <= TOLERANCE", |_, _| {
            TOLERANCE
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_match_hand_values() {
        let y = reference_row(&[0.0, (2f64).ln()], 2);
        // exp(0)=1, exp(ln 2)=2 -> 1/3, 2/3
        assert!((y[0] - 1.0 / 3.0).abs() < 1e-15);
        assert!((y[1] - 2.0 / 3.0).abs() < 1e-15);
        let x: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin() * 30.0).collect();
        let y = reference(&x, 3, 4, false);
        for r in 0..3 {
            let s: f64 = y[r * 4..r * 4 + 4].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn max_subtraction_keeps_large_inputs_finite() {
        let y = reference_row(&[1000.0, 1000.0], 2);
        assert_eq!(y, vec![0.5, 0.5]);
    }

    #[test]
    fn causal_rows_only_see_the_past() {
        let y = reference(&[1.0; 9], 3, 3, true);
        assert_eq!(&y[0..3], &[1.0, 0.0, 0.0]);
        assert!((y[3] - 0.5).abs() < 1e-15 && y[5] == 0.0);
        assert!((y[8] - 1.0 / 3.0).abs() < 1e-15);
    }
}
