//! Binary element-wise add: `y = x + r` over `rows x cols` activations (Whisper's residual
//! adds and the encoder's positional embedding), on the row-wise design
//! ([`crate::ops::rowwise`]) with a second streamed input: `X` and `R` each arrive on their own
//! object FIFO (a core's two input DMA channels), split by rows through the column's memtile
//! like the unary row-wise ops, and `Y` is joined back. Host arguments: `X, R, Y`.
//!
//! Why a separate op: the linear epilogue cannot fuse the residual (its core's two input
//! channels carry A and B, see [`crate::ops::linear`]), and `elementwise` is unary.
//!
//! The body is vectorised at 16 lanes (`vector.load` of a row slice, `arith.addf`,
//! `vector.store`), with a scalar tail for the last `cols % 16` columns of a row. On AIE-ML
//! the vector unit has no f32 (or bf16) adder in its vector registers: a 16-lane f32 add runs
//! in a 512-bit accumulator register. mlir-aie's `convert-vector-to-aievec{aie-target=aie2}`
//! turns the f32 body into `aievec.cast {isResAcc = true}` (vector to accumulator),
//! `aievec.add_elem` and a cast back, and the bf16 body into `aievec.ups` (bf16 into the f32
//! accumulator), `aievec.add_elem` and `aievec.srs` (back to bf16); `tests/mlir_aie_opt.rs`
//! checks both against the real aie-opt.
//!
//! Tolerance, against the f64 sum of the stored inputs ([`reference`]):
//! - `f32`: one rounding, `|y - ref| <= 2^-24 |ref|` (correctly rounded f32 add);
//! - `bf16`: the sum is formed in f32 (`<= 2^-24` relative) and rounded to bf16 on store
//!   (`<= 2^-8` relative, round to nearest: `arith.truncf`, the core's `srs` rounding mode
//!   on the device), so `|y - ref| <= (2^-8 + 2^-23) |ref|`. Input rounding is not in the
//!   bound because the reference reads the bf16 inputs as stored; a caller holding f32 values
//!   adds `2^-8 (|x| + |r|)` for narrowing them (why the sim backend runs residuals in f32).
//!
//! Memtile channels: a column's memtile sends `2 x cores_per_column + 1` streams (X and R
//! split, Y joined), so `cores_per_column <= (MM2S channels - 1) / 2` (2 on AIE-ML).

use crate::design::{Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::emit_kernel;
use crate::ops::kir::{Emit, KResult};
use crate::ops::registry::OpSpec;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::TestCase;
use crate::spec::{Dtype, Fields, RowsShape, SpecError};
use melior::ir::Value;

/// Vector width of the body: one 512-bit accumulator register of f32.
pub const LANES: usize = 16;

/// One AIE-ML core data memory bank (the 64 KiB are 4 of them); aie-opt's bank-aware
/// allocator places each buffer inside one bank.
pub const BANK_BYTES: usize = 16 * 1024;

crate::op_spec! {
    pub struct AddSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer (of X, R and Y alike).
        pub tile_rows: usize,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

/// The bound on `|y - ref|` relative to `|ref|` (see the module docs).
pub fn relative_bound(dtype: Dtype) -> f64 {
    match dtype {
        Dtype::F32 => 2f64.powi(-24),
        _ => 2f64.powi(-8) + 2f64.powi(-23),
    }
}

/// The tolerance as text, for reports.
pub fn tolerance(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::F32 => "|y - ref| <= 2^-24 |ref| (one f32 rounding)",
        _ => "|y - ref| <= (2^-8 + 2^-23) |ref| (f32 sum, one bf16 rounding)",
    }
}

/// The f64 sum `x + r`, element by element.
pub fn reference(x: &[f64], r: &[f64]) -> Vec<f64> {
    x.iter().zip(r).map(|(a, b)| a + b).collect()
}

/// The most cores per column the memtile's outgoing channels feed: two splits of
/// `cores_per_column` streams and one joined output.
pub fn max_cores_per_column(dev: &DeviceModel) -> u32 {
    (dev.memtile.mm2s_channels.saturating_sub(1)) / 2
}

/// `y[i, j] = x[i, j] + r[i, j]` over a `rows x cols` tile: 16-lane vectors, then a scalar
/// tail; the sum in f32 (bf16 widened and narrowed back).
fn emit_add<'c>(
    e: &Emit<'c, '_>,
    [x, r, y]: [Value<'c, '_>; 3],
    rows: usize,
    cols: usize,
    elem: ElemType,
) -> KResult<()> {
    let blocks = cols / LANES;
    let f32v = e.vector_type(LANES, e.f32_type());
    let storev = e.vector_type(LANES, e.elem_type(elem));
    e.for_n(rows, |e, i| {
        if blocks > 0 {
            e.for_n(blocks, |e, jb| {
                let j = e.muli(jb, e.index(LANES)?)?;
                let (a, b) = (e.vload(x, &[i, j], LANES)?, e.vload(r, &[i, j], LANES)?);
                let sum = match elem {
                    ElemType::F32 => e.addf(a, b)?,
                    _ => {
                        let a = e.cast("arith.extf", a, f32v)?;
                        let b = e.cast("arith.extf", b, f32v)?;
                        e.cast("arith.truncf", e.addf(a, b)?, storev)?
                    }
                };
                e.vstore(sum, y, &[i, j])
            })?;
        }
        if blocks * LANES < cols {
            let (lo, hi) = (e.index(blocks * LANES)?, e.index(cols)?);
            e.for_range(lo, hi, |e, j| {
                let sum = e.addf(e.load_f32(x, &[i, j])?, e.load_f32(r, &[i, j])?)?;
                e.store_f32(sum, y, &[i, j], elem)
            })?;
        }
        Ok(())
    })
}

pub fn build(spec: &AddSpec) -> Result<Design, DesignError> {
    let (tr, cols, elem) = (spec.tile_rows, spec.shape.cols, spec.dtype.elem());
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        emit_kernel("add", 3, move |e, a| {
            emit_add(e, [a[0], a[1], a[2]], tr, cols, elem)
        })
        // Per 16-lane chunk: two loads (one per load unit), the add, the store: ~2 issues.
        .with_work(crate::design::KernelWork::rows(tr, cols, 2.0))
    };
    let plan = RowwisePlan::new(spec.common(), spec.shape, tr, &kernel_for).with_second_input();
    rowwise::build(&plan)
}

impl OpSpec for AddSpec {
    /// The row-wise rules, whole 32-bit words per row, and the memtile's channel budget.
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.rowwise_op("add", self.common(), &self.shape, self.tile_rows, dev)?;
        let bytes = self.dtype.elem().bytes();
        if !(self.shape.cols * bytes).is_multiple_of(4) {
            return Err(f.fail(
                "shape.cols",
                format!(
                    "{} {} columns are {} bytes a row; DMAs move whole 32-bit words (use an even count)",
                    self.shape.cols,
                    self.dtype.name(),
                    self.shape.cols * bytes
                ),
            ));
        }
        let most = max_cores_per_column(dev);
        if self.array.cores_per_column > most {
            return Err(f.fail(
                "array.cores_per_column",
                format!(
                    "{} cores per column need {} memtile MM2S channels (X and R split to every core, Y joined), {} has {}: at most {most}",
                    self.array.cores_per_column,
                    2 * self.array.cores_per_column + 1,
                    dev.name,
                    dev.memtile.mm2s_channels
                ),
            ));
        }
        Ok(())
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    /// `x ~ N(0, 2^2)` and `r ~ N(0, 8^2)`: sums that cancel and sums across magnitudes,
    /// so roundings of both kinds occur.
    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let n = self.shape.rows * self.shape.cols;
        let x = gen.normal_data(self.dtype.elem(), n, 0.0, 2.0);
        let r = gen.normal_data(self.dtype.elem(), n, 0.0, 8.0);
        let want = reference(&x.to_f64(), &r.to_f64());
        let rel = relative_bound(self.dtype);
        TestCase::elementwise(
            vec![x, r],
            want,
            false,
            tolerance(self.dtype),
            move |_, rv| rel * rv.abs(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_one_rounding_of_each_format() {
        // The f32 sum of two f32 values rounds once: 1 + 2^-24 is a tie that rounds to 1,
        // exactly the bound's size.
        let (a, b) = (1.0f32, 2f32.powi(-24));
        let want = reference(&[a as f64], &[b as f64])[0];
        assert!(((a + b) as f64 - want).abs() <= relative_bound(Dtype::F32) * want.abs());
        // A bf16 result of 1 + 2^-8 + 2^-12 rounds to 1 + 2^-7 (distance just under 2^-8).
        let s = 1.0 + 2f64.powi(-8) + 2f64.powi(-12);
        let y = half::bf16::from_f64(s).to_f64();
        assert!((y - s).abs() <= relative_bound(Dtype::Bf16) * s);
        assert!((y - s).abs() > relative_bound(Dtype::F32) * s);
    }

    #[test]
    fn memtile_channels_allow_two_cores_per_column_on_aie_ml() {
        assert_eq!(max_cores_per_column(&DeviceModel::get("npu1").unwrap()), 2);
    }
}
