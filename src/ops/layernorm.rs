//! Layer normalisation over each row: `y = (x - mean) / sqrt(var + eps) * gamma + beta`, with
//! the biased variance (as PyTorch/CTranslate2 compute it), in f32, stored as bf16 or f32.
//! gamma and beta arrive as one `2 x cols` parameter buffer (row 0 gamma, row 1 beta) on a
//! broadcast FIFO, acquired once per core and held for the whole run (host argument 2).

use crate::design::{BufferType, Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::emit_kernel;
use crate::ops::kir::{Emit, KResult, Lanes};
use crate::ops::registry::{OpSpec, SpecCommon};
use crate::ops::rowwise::{self, RowwisePlan};
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{Fields, RowsShape, SpecError};
use melior::ir::Value;

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

/// Which normalisation a row pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norm {
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`; parameters `[gamma; beta]`.
    Layer,
    /// `x / sqrt(mean(x^2) + eps) * gamma`; parameters `[gamma]`.
    Rms,
}

impl Norm {
    /// Rows of the parameter buffer.
    pub(crate) fn param_rows(self) -> usize {
        match self {
            Norm::Layer => 2,
            Norm::Rms => 1,
        }
    }
}

/// What a norm row pass writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormOut {
    /// The normalised rows, stored as this type.
    Store(ElemType),
    /// int8 rows with their f32 scale ([`crate::ops::quantize`]'s layout).
    Quantize,
}

/// The row pass's work per 16-lane chunk: the sum (1), the squared deviations (sub, fma),
/// the output (sub, mul, gamma/beta fma, store): 7 issues; a quantised output adds the
/// absolute max, scale, round, clamp and narrow (5).
pub(crate) fn norm_work(rows: usize, cols: usize, out: NormOut) -> crate::design::KernelWork {
    let per_chunk = match out {
        NormOut::Store(_) => 7.0,
        NormOut::Quantize => 12.0,
    };
    crate::design::KernelWork::rows(rows, cols, per_chunk)
}

/// The normalisation row pass, a building block for norm ops and fused epilogues: for each
/// of `rows` rows of `x` (`rows x cols`, any float type, read as f32) the row statistics in
/// f32, then `y` from them and the parameter rows of `p` (stored, or quantised per row).
///
/// Each pass walks the row in [`Lanes`] of [`F32_LANES`](crate::ops::kir::F32_LANES): the
/// sums (of `x`, then of `(x - mean)^2`) keep one partial sum per lane, added as a tree by
/// one `vector.reduction <add>` at the end; the output pass is lane-wise. The per-row scalars
/// (mean, `1 / sqrt(var + eps)`) are splat once per row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_norm_rows<'c>(
    e: &Emit<'c, '_>,
    [x, y, p]: [Value<'c, '_>; 3],
    rows: usize,
    cols: usize,
    out: NormOut,
    eps: f64,
    norm: Norm,
) -> KResult<()> {
    let lanes = Lanes::f32_row(cols);
    let zeros = lanes.splat(e, e.f32(0.0)?)?;
    let inv_n = e.f32(1.0 / cols as f64)?;
    let eps = e.f32(eps)?;
    let one = e.f32(1.0)?;
    let g_row = e.index(0)?;
    let b_row = match norm {
        Norm::Layer => Some(e.index(1)?),
        Norm::Rms => None,
    };
    e.for_n(rows, |e, i| {
        let mean = match norm {
            Norm::Layer => {
                let sum = lanes.fold_chunks(e, cols, zeros, |e, c, s| {
                    e.addf(s, lanes.load(e, x, &[i, c])?)
                })?;
                let mean = e.mulf(lanes.sum(e, sum)?, inv_n)?;
                Some(lanes.splat(e, mean)?)
            }
            Norm::Rms => None,
        };
        let sq = lanes.fold_chunks(e, cols, zeros, |e, c, s| {
            let d = centred(e, lanes, x, i, c, mean)?;
            // `mulf` then `addf`, not `vector.fma`: mlir-aie's AIE-ML vectoriser has no
            // lowering of an f32 `vector.fma` (it fuses `mulf` + `addf` itself where it can).
            e.addf(s, e.mulf(d, d)?)
        })?;
        let var = e.mulf(lanes.sum(e, sq)?, inv_n)?;
        let inv = e.divf(one, e.unary("math.sqrt", e.addf(var, eps)?)?)?;
        let row = NormRow {
            lanes,
            x,
            p,
            i,
            mean,
            inv: lanes.splat(e, inv)?,
            g_row,
            b_row,
        };
        match out {
            NormOut::Store(elem) => lanes.for_chunks(e, cols, |e, c| {
                lanes.store(e, row.normalised(e, c)?, y, &[i, c], elem)
            }),
            NormOut::Quantize => {
                crate::ops::quantize::emit_quantize_row(e, lanes, y, i, cols, |e, c| {
                    row.normalised(e, c)
                })
            }
        }
    })
}

/// One row's statistics (splat over the lanes) and where its input and parameters are.
struct NormRow<'c, 'v> {
    lanes: Lanes,
    x: Value<'c, 'v>,
    p: Value<'c, 'v>,
    i: Value<'c, 'v>,
    mean: Option<Value<'c, 'v>>,
    inv: Value<'c, 'v>,
    g_row: Value<'c, 'v>,
    b_row: Option<Value<'c, 'v>>,
}

impl<'c> NormRow<'c, '_> {
    /// `(x[i, c..] - mean) * inv * gamma[c..] + beta[c..]` (layer) or `x[i, c..] * gamma[c..] *
    /// inv` (rms), one chunk from column `c`.
    fn normalised<'x>(&self, e: &Emit<'c, 'x>, c: Value<'c, 'x>) -> KResult<Value<'c, 'x>> {
        let lanes = self.lanes;
        let d = centred(e, lanes, self.x, self.i, c, self.mean)?;
        let g = lanes.load(e, self.p, &[self.g_row, c])?;
        let b = self
            .b_row
            .map(|b_row| lanes.load(e, self.p, &[b_row, c]))
            .transpose()?;
        let v = match self.mean {
            Some(_) => e.mulf(e.mulf(d, self.inv)?, g)?,
            // `x * gamma` first: a product of two widened bf16 (exact in f32), which mlir-aie
            // lowers to one bf16 `mul_elem`; it has no lowering of a widened bf16 times an f32.
            None => e.mulf(e.mulf(d, g)?, self.inv)?,
        };
        match b {
            Some(b) => e.addf(v, b),
            None => Ok(v),
        }
    }
}

/// The chunk `x[i, c..] - mean`, or `x[i, c..]` without a mean.
fn centred<'c, 'k>(
    e: &Emit<'c, 'k>,
    lanes: Lanes,
    x: Value<'c, '_>,
    i: Value<'c, '_>,
    c: Value<'c, '_>,
    mean: Option<Value<'c, '_>>,
) -> KResult<Value<'c, 'k>> {
    let v = lanes.load(e, x, &[i, c])?;
    mean.map_or(Ok(v), |m| e.subf(v, m))
}

/// A norm op's design: the row-wise design with the parameter rows broadcast to every core.
pub(crate) fn build_norm(
    common: SpecCommon<'_>,
    shape: RowsShape,
    tile_rows: usize,
    eps: f64,
    norm: Norm,
) -> Result<Design, DesignError> {
    build_norm_to(common, shape, tile_rows, eps, norm, false)
}

/// [`build_norm`], optionally writing int8 rows with their scale (`quantize`).
pub(crate) fn build_norm_to(
    common: SpecCommon<'_>,
    shape: RowsShape,
    tile_rows: usize,
    eps: f64,
    norm: Norm,
    quantize: bool,
) -> Result<Design, DesignError> {
    let (cols, elem) = (shape.cols, common.dtype.elem());
    let out = match quantize {
        true => NormOut::Quantize,
        false => NormOut::Store(elem),
    };
    let name = match norm {
        Norm::Layer => "layernorm",
        Norm::Rms => "rmsnorm",
    };
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        emit_kernel(name, 3, move |e, a| {
            emit_norm_rows(e, [a[0], a[1], a[2]], tile_rows, cols, out, eps, norm)
        })
        .with_work(norm_work(tile_rows, cols, out))
    };
    let params = BufferType::new([norm.param_rows(), cols], elem);
    let plan = RowwisePlan::new(common, shape, tile_rows, &kernel_for).with_params(params);
    let plan = match quantize {
        true => plan.with_output(ElemType::I8, cols + crate::ops::quantize::SCALE_BYTES),
        false => plan,
    };
    rowwise::build(&plan)
}

pub fn build(spec: &LayernormSpec) -> Result<Design, DesignError> {
    build_norm_to(
        spec.common(),
        spec.shape,
        spec.tile_rows,
        spec.epsilon,
        Norm::Layer,
        spec.quantize,
    )
}

crate::op_spec! {
    pub struct LayernormSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
        pub epsilon: f64,
        /// Write int8 rows with their f32 scale (the quantize op's layout, the int8 linear
        /// op's A) instead of the normalised rows.
        #[serde(default)]
        pub quantize: bool,
    }
    buffer_fields = "tile_rows, depth or stack_bytes";
}

/// The field rules of a norm op.
pub(crate) fn check_norm(
    op: &str,
    f: &Fields,
    common: SpecCommon<'_>,
    shape: &RowsShape,
    tile_rows: usize,
    epsilon: f64,
    dev: &DeviceModel,
) -> Result<(), SpecError> {
    f.rowwise_op(op, common, shape, tile_rows, dev)?;
    if !(epsilon > 0.0 && epsilon < 1.0) {
        return Err(f.fail("epsilon", format!("{epsilon} is outside (0, 1)")));
    }
    Ok(())
}

/// Inputs of a norm op: activations with a per-run offset and scale, and `param_rows`
/// parameter rows (gamma around 1, then beta around 0), both as `elem`, plus the parameters
/// in f64 (gamma, beta).
pub(crate) fn norm_inputs(
    gen: &mut InputGen,
    elem: ElemType,
    shape: RowsShape,
    norm: Norm,
) -> (HostData, HostData, Vec<f64>, Vec<f64>) {
    let x = gen.normal_data(elem, shape.rows * shape.cols, 0.5, 2.0);
    let gamma = gen.normal_data(elem, shape.cols, 1.0, 0.5).to_f64();
    let beta = match norm {
        Norm::Layer => gen.normal_data(elem, shape.cols, 0.0, 0.5).to_f64(),
        Norm::Rms => Vec::new(),
    };
    let params: Vec<f64> = gamma.iter().chain(beta.iter()).copied().collect();
    (x, HostData::from_f64(elem, &params), gamma, beta)
}

impl OpSpec for LayernormSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        check_norm(
            "layernorm",
            f,
            self.common(),
            &self.shape,
            self.tile_rows,
            self.epsilon,
            dev,
        )?;
        if self.quantize {
            // int8 rows plus 4 scale bytes move as whole 32-bit words.
            f.divides(
                "shape.cols",
                self.shape.cols,
                4,
                "4 (int8 rows move as 32-bit words)",
            )?;
        }
        Ok(())
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (rows, cols) = (self.shape.rows, self.shape.cols);
        let (x, p, gamma, beta) = norm_inputs(gen, self.dtype.elem(), self.shape, Norm::Layer);
        let r = reference(&x.to_f64(), rows, cols, &gamma, &beta, self.epsilon);
        let judge = match self.quantize {
            true => quantized_judge(&r, cols),
            false => norm_judge(r),
        };
        TestCase {
            inputs: vec![x, p],
            judge,
        }
    }
}

/// Judges a norm op's output: `|y - ref| <= TOLERANCE (1 + |ref|)`.
pub(crate) fn norm_judge(reference: Vec<f64>) -> crate::sim::verify::Judge {
    crate::sim::verify::precomputed(move |out: &[HostData]| {
        Comparison::new(
            &out[0].to_f64(),
            &reference,
            false,
            "|y - ref| <= TOLERANCE (1 + |ref|)",
            |_, rv| TOLERANCE * (1.0 + rv.abs()),
        )
    })
}

/// The fused variant's bound: the normalised value in f32 is off by about `TOLERANCE -
/// 2^-8` (its statistics), enough to cross a rounding boundary, so `q` within 1; the scale
/// (max / 127 of the same values) within 1e-4 relative.
pub const QUANTIZED_TOLERANCE: &str =
    "q within 1, scale within 1e-4 relative (f32 normalised values)";

fn quantized_judge(reference: &[f64], cols: usize) -> crate::sim::verify::Judge {
    let (want, _) = crate::ops::quantize::reference(reference, cols);
    crate::sim::verify::precomputed(move |out: &[HostData]| {
        let got = crate::ops::quantize::decode(&out[0].to_f64(), cols);
        Comparison::new(&got, &want, false, QUANTIZED_TOLERANCE, |i, rv| {
            if (i + 1) % (cols + 1) == 0 {
                1e-4 * rv.abs()
            } else {
                1.0
            }
        })
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
