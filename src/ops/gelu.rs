//! GELU by a lookup table with linear interpolation.
//!
//! The table holds erf-GELU `x * Phi(x)` sampled at `min + i*step` for `i = 0..entries` as an f32
//! `memref.global` constant (one copy in each core's data memory). For `x` in `[min, max]` the
//! kernel interpolates linearly between the two nearest samples; below `min` it returns 0
//! (GELU(-4) = -1.3e-4), above `max` it returns `x` (GELU(4) - 4 = -1.3e-4).

use crate::design::{Design, DesignError, ElemType, KernelCtx};
use crate::ops::kir::{add_f32_table, Cmp, Emit, KResult};
use crate::ops::rowwise::{self, RowwisePlan};
use crate::ops::{expect_args, kernel};
use crate::spec::{GeluSpec, LutSpec};
use melior::ir::{Block, Value};

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
    let entries = ((t.max - t.min) / t.step).round() as usize + 1;
    (0..entries)
        .map(|i| reference(t.min + i as f64 * t.step) as f32)
        .collect()
}

/// What the kernel computes, in f64 on the same table (for tests of the table logic).
pub fn lut_eval(t: &LutSpec, lut: &[f32], x: f64) -> f64 {
    if x <= t.min {
        return 0.0;
    }
    if x >= t.max {
        return x;
    }
    let pos = (x - t.min) / t.step;
    let i0 = (pos.floor() as usize).min(lut.len() - 2);
    let frac = pos - i0 as f64;
    lut[i0] as f64 + frac * (lut[i0 + 1] as f64 - lut[i0] as f64)
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
    let lut = table(&t);
    let lut_ty = add_f32_table(ctx, table_name, &[lut.len()], &lut)?;
    let e = Emit::new(ctx, block, "gelu");
    let (x, y) = (args[0], args[1]);
    let table = e.get_global(table_name, lut_ty)?;
    let min = e.f32(t.min)?;
    let max = e.f32(t.max)?;
    let inv_step = e.f32(1.0 / t.step)?;
    let zero = e.f32(0.0)?;
    let last = e.int(32, lut.len() as i64 - 2)?;
    let one_i = e.int(32, 1)?;
    let zero_i = e.int(32, 0)?;
    e.for_n(rows, |e, i| {
        e.for_n(cols, |e, j| {
            let v = e.load_f32(x, &[i, j])?;
            // Index arithmetic on the clamped input so out-of-range values stay in the table.
            let vc = e.minf(e.maxf(v, min)?, max)?;
            let pos = e.mulf(e.subf(vc, min)?, inv_step)?;
            let i0 = e.cast("arith.fptosi", pos, e.int_type(32))?;
            let i0 = e.minsi(e.maxsi(i0, zero_i)?, last)?;
            let frac = e.subf(pos, e.cast("arith.sitofp", i0, e.f32_type())?)?;
            let i1 = e.addi(i0, one_i)?;
            let k0 = e.cast("arith.index_cast", i0, e.index_type())?;
            let k1 = e.cast("arith.index_cast", i1, e.index_type())?;
            let l0 = e.load(table, &[k0])?;
            let l1 = e.load(table, &[k1])?;
            let inside = e.addf(l0, e.mulf(frac, e.subf(l1, l0)?)?)?;
            let below = e.cmpf(Cmp::Lt, v, min)?;
            let above = e.cmpf(Cmp::Gt, v, max)?;
            let out = e.select(below, zero, inside)?;
            let out = e.select(above, v, out)?;
            e.store_f32(out, y, &[i, j], elem)
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
        params: None,
        kernel_for: &kernel_for,
        needs_step: false,
    })
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
