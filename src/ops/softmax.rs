//! Row softmax with max subtraction: `y_j = exp(x_j - max) / sum_k exp(x_k - max)`, computed in
//! f32 (`math.exp`), stored as bf16 or f32. With `causal`, row `r` (its global row number)
//! only sees columns `0..=r`; masked outputs are 0. The causal kernel needs the absolute row,
//! so its step loop is unrolled (one kernel instance per step, each knowing its first row).

use crate::design::{Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::emit_kernel;
use crate::ops::kir::{Cmp, Emit, KResult};
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
pub(crate) fn emit_rows<'c>(
    e: &Emit<'c, '_>,
    x: Value<'c, '_>,
    y: Value<'c, '_>,
    rows: usize,
    cols: usize,
    elem: ElemType,
    first_row: Option<usize>,
) -> KResult<()> {
    let neg_inf = e.f32(f64::NEG_INFINITY)?;
    let zero = e.f32(0.0)?;
    let one = e.index(1)?;
    let ncols = e.index(cols)?;
    e.for_n(rows, |e, i| {
        // Columns this row sees: all, or 0..=global row.
        let hi = match first_row {
            Some(base) => {
                let r = e.addi(e.index(base)?, i)?;
                e.minsi(e.addi(r, one)?, ncols)?
            }
            None => ncols,
        };
        let lo = e.index(0)?;
        let max = e.fold_range(lo, hi, neg_inf, |e, j, m| {
            e.maxf(m, e.load_f32(x, &[i, j])?)
        })?;
        let sum = e.fold_range(lo, hi, zero, |e, j, s| {
            let v = e.unary("math.exp", e.subf(e.load_f32(x, &[i, j])?, max)?)?;
            e.addf(s, v)
        })?;
        e.for_n(cols, |e, j| {
            let v = e.unary("math.exp", e.subf(e.load_f32(x, &[i, j])?, max)?)?;
            let p = e.divf(v, sum)?;
            let out = if first_row.is_some() {
                let seen = e.cmpi(Cmp::Lt, j, hi)?;
                e.select(seen, p, zero)?
            } else {
                p
            };
            e.store_f32(out, y, &[i, j], elem)
        })
    })
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
