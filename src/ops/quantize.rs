//! Activation quantisation: bf16/f32 rows -> int8 plus one f32 scale per row, written in the
//! int8 A layout the linear op reads (see [`crate::ops::linear::layout`]).
//!
//! Host arguments, in order: `X` `[rows, cols]` (bf16 or f32), `Y` `[rows, cols + 4]` i8: row
//! `r` holds `q[r][..]`, then the 4 little-endian bytes of its f32 scale. Why one buffer and
//! not `q` and `scale` apart: the linear op's A stream must carry the scale with its row (a
//! core has 2 input channels, taken by A and B), and this layout lets a plain 4-D pattern
//! move both; writing it here means no call re-lays activations out on the host.
//!
//! The rule is the runtime's ([`aiec_runtime::quant`], which the cpu int8 path and the sim
//! backend's host-side quantiser call): `inv = 127 / max|x|` and `scale = max|x| / 127` in f32
//! (an all-zero row: both 0), `q = x · inv` rounded to nearest, **ties to even**, clamped to
//! `[-127, 127]`. One rule everywhere is what makes the sim and cpu int8 accumulators
//! bit-identical. The kernel rounds without `math.roundeven` (a libm call on the host, not an
//! AIE instruction): adding and subtracting `1.5 · 2^23` rounds an f32 of magnitude below
//! `2^22` to an integer in the default rounding mode, ties to even, as IEEE addition does.

use melior::ir::Value;

use crate::design::{Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::emit_kernel;
use crate::ops::kir::{Cmp, Emit, KResult, Lanes};
use crate::ops::registry::OpSpec;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{Dtype, Fields, RowsShape, SpecError};

/// Bytes of the scale after each row.
pub const SCALE_BYTES: usize = 4;

crate::op_spec! {
    /// `dtype` is the input's (`bf16` or `f32`); the output is int8 rows with their scale.
    pub struct QuantizeSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

/// The tolerance, for reports.
pub const TOLERANCE: &str =
    "q exact, except +-1 where x / scale is within 2^-20 of a half integer \
     (f64 vs f32 quotient); scale within 2^-23 relative";

/// The quantising pass over one row, a building block for fused producers (a norm that
/// quantises its output): `value(e, c)` gives the f32 chunk of `lanes` from column `c`; it is
/// read twice (max pass, then the quantising pass) and row `i` of `y` (`[rows, cols + 4]`
/// i8) is written.
///
/// The vector form keeps the runtime's rule bit for bit: the max-abs is a lane-wise
/// `maximumf` then one `vector.reduction <maximumf>` (max is exact in any order), and each
/// element goes through the same f32 ops as the scalar rule (`x · inv`, clamp, `+R -R`, to
/// integer), only 16 at a time. The scale's bytes stay scalar stores.
pub(crate) fn emit_quantize_row<'c, F>(
    e: &Emit<'c, '_>,
    lanes: Lanes,
    y: Value<'c, '_>,
    i: Value<'c, '_>,
    cols: usize,
    value: F,
) -> KResult<()>
where
    F: for<'x> Fn(&Emit<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
{
    let zero = e.f32(0.0)?;
    let zeros = lanes.splat(e, zero)?;
    let max = lanes.fold_chunks(e, cols, zeros, |e, c, m| {
        e.maxf(m, e.unary("math.absf", value(e, c)?)?)
    })?;
    let max = lanes.max(e, max)?;
    let nonzero = e.cmpf(Cmp::Gt, max, zero)?;
    let scale = e.divf(max, e.f32(127.0)?)?;
    let inv = e.select(nonzero, e.divf(e.f32(127.0)?, max)?, zero)?;
    let inv = lanes.splat(e, inv)?;
    let bounds = Bounds {
        lo: lanes.splat(e, e.f32(-127.0)?)?,
        hi: lanes.splat(e, e.f32(127.0)?)?,
        rounder: lanes.splat(e, e.f32(ROUNDER)?)?,
    };
    lanes.for_chunks(e, cols, |e, c| {
        let rounded = bounds.round(e, e.mulf(value(e, c)?, inv)?)?;
        let q = if lanes.is_vector() {
            // In [-127, 127]: the conversion to i8 is exact.
            e.cast("arith.fptosi", rounded, lanes.ty(e, e.int_type(8)))?
        } else {
            narrow_i8(e, e.cast("arith.fptosi", rounded, e.int_type(32))?)?
        };
        if lanes.is_vector() {
            e.vstore(q, y, &[i, c])
        } else {
            e.store(q, y, &[i, c])
        }
    })?;
    let bits = e.cast("arith.bitcast", scale, e.int_type(32))?;
    for p in 0..SCALE_BYTES {
        let byte = e.bin("arith.shrui", bits, e.int(32, 8 * p as i64)?)?;
        let byte = e.bin("arith.andi", byte, e.int(32, 0xff)?)?;
        e.store(narrow_i8(e, byte)?, y, &[i, e.index(cols + p)?])?;
    }
    Ok(())
}

/// `1.5 · 2^23`: `(y + R) - R` is `y` rounded to an integer, ties to even, for `|y| < 2^22`.
const ROUNDER: f64 = 12_582_912.0;

/// The clamp bounds and the rounder, splat to the chunk's lanes once per row.
struct Bounds<'c, 'v> {
    lo: Value<'c, 'v>,
    hi: Value<'c, 'v>,
    rounder: Value<'c, 'v>,
}

impl<'c> Bounds<'c, '_> {
    /// `y` clamped to [-127, 127] and rounded to an integer (ties to even), still f32.
    fn round<'x>(&self, e: &Emit<'c, 'x>, y: Value<'c, 'x>) -> KResult<Value<'c, 'x>> {
        // Clamping first keeps |y| far below 2^22 (and is the same as clamping the rounded
        // value, since +-127 are integers).
        let y = e.minf(e.maxf(y, self.lo)?, self.hi)?;
        e.subf(e.addf(y, self.rounder)?, self.rounder)
    }
}

/// i32 -> i8 through `index` (mlir-aie's aievec conversion crashes on a scalar `trunci`; see
/// matmul's store). Keeps the low 8 bits.
fn narrow_i8<'c, 'x>(e: &Emit<'c, 'x>, v: Value<'c, 'x>) -> KResult<Value<'c, 'x>> {
    let v = e.cast("arith.index_cast", v, e.index_type())?;
    e.cast("arith.index_cast", v, e.int_type(8))
}

pub fn build(spec: &QuantizeSpec) -> Result<Design, DesignError> {
    let (tr, cols) = (spec.tile_rows, spec.shape.cols);
    // bf16 input stays scalar: the vector `x · inv` would multiply a widened bf16 by an f32,
    // which mlir-aie's AIE-ML vectoriser marks illegal and cannot rewrite (the module fails
    // aiecc's flow). f32 input (what `--device sim` quantises) vectorises.
    let lanes = match spec.dtype {
        Dtype::Bf16 => Lanes::default(),
        _ => Lanes::f32_row(cols),
    };
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        emit_kernel("quantize", 2, move |e, a| {
            let (x, y) = (a[0], a[1]);
            e.for_n(tr, |e, i| {
                emit_quantize_row(e, lanes, y, i, cols, |e, c| lanes.load(e, x, &[i, c]))
            })
        })
        // Absolute max (1), then scale, round, clamp, narrow and store (5) per chunk, or per
        // element when the body stays scalar (bf16 input, see above).
        .with_work(crate::design::KernelWork::rows_vectorised(
            tr,
            cols,
            6.0,
            lanes.is_vector(),
        ))
    };
    let plan = RowwisePlan::new(spec.common(), spec.shape, tr, &kernel_for)
        .with_output(ElemType::I8, cols + SCALE_BYTES);
    rowwise::build(&plan)
}

impl OpSpec for QuantizeSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.rowwise_op("quantize", self.common(), &self.shape, self.tile_rows, dev)?;
        // Output rows (cols + 4 bytes) move as whole 32-bit words.
        f.divides(
            "shape.cols",
            self.shape.cols,
            4,
            "4 (int8 rows move as 32-bit words)",
        )
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    /// Rows `N(0, s^2)` with `s` varying by row (scales differ), some exact ties (`x =
    /// (k + 0.5) scale` is not constructed; ties fall out of bf16 grids), one all-zero row.
    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (rows, cols) = (self.shape.rows, self.shape.cols);
        let mut x = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let s = if r == 1 {
                0.0
            } else {
                0.1 + 3.0 * gen.normal().abs()
            };
            x.extend(
                gen.normal_data(ElemType::F32, cols, 0.0, 1.0)
                    .to_f64()
                    .iter()
                    .map(|v| v * s),
            );
        }
        let input = match self.dtype {
            Dtype::F32 => HostData::F32(x.iter().map(|&v| v as f32).collect()),
            _ => HostData::Bf16(x.iter().map(|&v| half::bf16::from_f64(v)).collect()),
        };
        let exact = input.to_f64();
        let (want, allowed) = reference(&exact, cols);
        TestCase {
            inputs: vec![input],
            judge: crate::sim::verify::precomputed(move |out: &[HostData]| {
                let got = decode(&out[0].to_f64(), cols);
                Comparison::new(&got, &want, false, TOLERANCE, |i, _| allowed[i])
            }),
        }
    }
}

/// f64 reference per row: `cols` q values then the scale, and the allowed error of each.
pub fn reference(x: &[f64], cols: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut want, mut allowed) = (Vec::new(), Vec::new());
    for row in x.chunks(cols) {
        let max = row.iter().fold(0f64, |m, v| m.max(v.abs()));
        // max/127 and 127/max rounded once to f32: what the f32 divisions give.
        let (scale, inv) = if max > 0.0 {
            ((max / 127.0) as f32 as f64, (127.0 / max) as f32 as f64)
        } else {
            (0.0, 0.0)
        };
        for v in row {
            let y = v * inv;
            let q = y.round_ties_even().clamp(-127.0, 127.0);
            // The kernel's product is rounded to f32 first: near a half integer it may land on
            // the other side.
            let near_tie = ((y.abs().fract()) - 0.5).abs() < y.abs().max(1.0) * 2f64.powi(-20);
            want.push(q);
            allowed.push(if near_tie { 1.0 } else { 0.0 });
        }
        want.push(scale);
        allowed.push(scale * 2f64.powi(-23));
    }
    (want, allowed)
}

/// The output bytes (as f64 of i8) per row: the `cols` q values, then the decoded scale.
pub fn decode(y: &[f64], cols: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for row in y.chunks(cols + SCALE_BYTES) {
        out.extend_from_slice(&row[..cols]);
        let bytes: Vec<u8> = row[cols..].iter().map(|&b| b as i8 as u8).collect();
        let scale = bytes.try_into().map_or(f32::NAN, f32::from_le_bytes);
        out.push(f64::from(scale));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::linear::layout::{activations_with_scales, quantize_row};

    #[test]
    fn reference_agrees_with_the_runtime_rule() {
        let x: Vec<f32> = vec![0.3, -1.7, 2.54, 0.0, -0.02, 1.0, 2.0, -2.54];
        let (q, s) = quantize_row(&x);
        let packed = activations_with_scales(&q, &[s], x.len());
        let decoded = decode(&packed.iter().map(|&b| f64::from(b)).collect::<Vec<_>>(), 8);
        let xf: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let (want, allowed) = reference(&xf, 8);
        for i in 0..want.len() {
            assert!(
                (decoded[i] - want[i]).abs() <= allowed[i],
                "{i}: {} {}",
                decoded[i],
                want[i]
            );
        }
        assert_eq!(s, 2.54f32 / 127.0);
        assert_eq!(decoded[8], f64::from(s));
        assert_eq!(want[2], 127.0);
        assert_eq!(want[7], -127.0);
    }
}
