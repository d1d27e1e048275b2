//! GELU by a lookup table with linear interpolation ([`crate::expr::lut`]).
//!
//! The table holds erf-GELU `x * Phi(x)` sampled at `min + i*step` for `i = 0..entries`; below
//! `min` the kernel returns 0 (GELU(-4) = -1.3e-4), above `max` it returns `x`
//! (GELU(4) - 4 = -1.3e-4).
//!
//! The kernel walks each row in 16 f32 lanes ([`Lanes::f32_row`]; bf16 rows widen with
//! `arith.extf`), scalars when 16 does not divide the row; the lane lookup and why it reads
//! the table with `vector.gather` are in [`LutLookup`].

use crate::design::{Design, DesignError, ElemType, KernelCtx};
use crate::device::DeviceModel;
use crate::expr::lut::{self, LutLookup};
use crate::ops::kir::{Emit, KResult, Lanes};
use crate::ops::registry::OpSpec;
use crate::ops::rowwise::{self, RowwisePlan};
use crate::ops::{expect_args, kernel};
use crate::sim::inputs::InputGen;
use crate::sim::verify::TestCase;
use crate::spec::{Dtype, Fields, RowsShape, SpecError};
use melior::ir::{Block, Value};

pub use crate::expr::lut::LutSpec;

crate::op_spec! {
    pub struct GeluSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
        pub table: LutSpec,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

impl OpSpec for GeluSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.rowwise_op("gelu", self.common(), &self.shape, self.tile_rows, dev)?;
        self.table.check(f, "table")
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        // Spread over the table and both tails.
        let x = gen.normal_data(
            self.dtype.elem(),
            self.shape.rows * self.shape.cols,
            0.0,
            2.0,
        );
        let r = x.to_f64().iter().map(|&v| reference(v)).collect();
        let rel = rounding_of(self.dtype);
        TestCase::elementwise(
            vec![x],
            r,
            false,
            "|y - ref| <= TOLERANCE + 2^-8 |ref|",
            move |_, rv| TOLERANCE + rel * rv.abs(),
        )
    }
}

/// Relative error of rounding an output to `dtype` (half an ulp).
pub(crate) fn rounding_of(dtype: Dtype) -> f64 {
    if dtype == Dtype::F32 {
        2f64.powi(-23)
    } else {
        2f64.powi(-8)
    }
}

/// Absolute error bound for the default table (step 1/32 on [-4, 4]) before output rounding:
/// interpolation error `max|GELU''| * step^2 / 8 = 0.8 * 2^-10 / 8 ~ 1e-4` plus the tails
/// (1.3e-4). A bf16 output adds a relative `2^-8`: check
/// `|y - ref| <= TOLERANCE + 2^-8 * |ref|`.
pub const TOLERANCE: f64 = 3e-4;

/// The interpolation + tail bound for a given table (see [`TOLERANCE`]).
pub fn error_bound(t: &LutSpec) -> f64 {
    let interp = 0.8 * t.step * t.step / 8.0;
    let tail_low = (t.min * 0.5 * libm::erfc(-t.min / std::f64::consts::SQRT_2)).abs();
    let tail_high = (t.max * 0.5 * libm::erfc(t.max / std::f64::consts::SQRT_2)).abs();
    interp + tail_low.max(tail_high) + 1e-7
}

/// erf-GELU in f64: `x/2 * (1 + erf(x/sqrt 2))`.
pub fn reference(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// The table the kernel embeds.
pub fn table(t: &LutSpec) -> Vec<f32> {
    lut::sample(t, reference)
}

/// What the kernel computes, in f64 on the same table (for tests of the table logic).
pub fn lut_eval(t: &LutSpec, table: &[f32], x: f64) -> f64 {
    lut::interpolate(t, table, x, 0.0, x)
}

#[allow(clippy::too_many_arguments)]
fn emit<'c>(
    ctx: &KernelCtx<'c, '_>,
    block: &Block<'c>,
    args: &[Value<'c, '_>],
    t: LutSpec,
    rows: usize,
    cols: usize,
    elem: ElemType,
    table_name: &str,
) -> KResult<()> {
    expect_args("gelu", args, 2)?;
    let e = Emit::new(ctx, block, "gelu");
    let (x, y) = (args[0], args[1]);
    let lut = LutLookup::setup(ctx, &e, table_name, &t, &table(&t))?;
    let lanes = Lanes::f32_row(cols);
    e.for_n(rows, |e, i| {
        lanes.for_chunks(e, cols, |e, j| {
            let v = lanes.load(e, x, &[i, j])?;
            let out = lut.lookup(e, v, lanes.f32(e, 0.0)?, v)?;
            lanes.store(e, out, y, &[i, j], elem)
        })
    })
}

pub fn build(spec: &GeluSpec) -> Result<Design, DesignError> {
    let t = spec.table;
    let (tr, cols, elem) = (spec.tile_rows, spec.shape.cols, spec.dtype.elem());
    let table_name = format!("gelu_lut_{}", sanitize(&spec.name));
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        let table_name = table_name.clone();
        kernel("gelu", move |c, b, a| {
            emit(c, b, a, t, tr, cols, elem, &table_name)
        })
        .with_const_bytes(table(&t).len() * 4)
        .with_work(crate::expr::lut::lookup_work(tr, cols))
    };
    rowwise::build(&RowwisePlan::new(
        spec.common(),
        spec.shape,
        tr,
        &kernel_for,
    ))
}

/// Symbol-safe version of a spec name.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LutSpec = LutSpec {
        min: -4.0,
        max: 4.0,
        step: 1.0 / 32.0,
    };

    #[test]
    fn reference_matches_hand_values() {
        // GELU(1) = Phi(1) = 0.841344746..., GELU(-1) = -0.158655254
        assert!((reference(1.0) - 0.841_344_746_068_543).abs() < 1e-12);
        assert!((reference(-1.0) + 0.158_655_253_931_457).abs() < 1e-12);
        assert_eq!(reference(0.0), 0.0);
    }

    #[test]
    fn lut_stays_within_its_bound_of_erf_gelu() {
        let lut = table(&T);
        assert_eq!(lut.len(), 257);
        let bound = error_bound(&T);
        assert!(bound <= TOLERANCE, "{bound}");
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            worst = worst.max((lut_eval(&T, &lut, x) - reference(x)).abs());
        }
        assert!(worst <= bound, "worst {worst} > bound {bound}");
        // The bound is not vacuous: the error is a real fraction of it.
        assert!(worst > bound / 10.0, "worst {worst} bound {bound}");
    }
}
