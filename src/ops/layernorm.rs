//! Layer normalisation over each row: `y = (x - mean) / sqrt(var + eps) * gamma + beta`, with
//! the biased variance (as PyTorch/CTranslate2 compute it), in f32, stored as bf16 or f32.
//! gamma and beta arrive as one `2 x cols` parameter buffer (row 0 gamma, row 1 beta) on a
//! broadcast FIFO, acquired once per core and held for the whole run (host argument 2).

use crate::design::{BufferType, Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::ops::kir::{Emit, KResult};
use crate::ops::registry::{OpSpec, SpecCommon};
use crate::ops::rowwise::{self, RowwisePlan};
use crate::ops::{expect_args, kernel};
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{Dtype, Fields, RowsShape, SpecError};
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

/// The normalisation row pass, a building block for norm ops and fused epilogues: for each
/// of `rows` rows of `x` (`rows x cols`, any float type, read as f32) the row statistics in
/// f32, then `y` (stored as `elem`) from them and the parameter rows of `p`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_norm_rows<'c>(
    e: &Emit<'c, '_>,
    [x, y, p]: [Value<'c, '_>; 3],
    rows: usize,
    cols: usize,
    elem: ElemType,
    eps: f64,
    norm: Norm,
) -> KResult<()> {
    let zero = e.f32(0.0)?;
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
                let sum = e.fold_n(cols, zero, |e, j, s| e.addf(s, e.load_f32(x, &[i, j])?))?;
                Some(e.mulf(sum, inv_n)?)
            }
            Norm::Rms => None,
        };
        let sq = e.fold_n(cols, zero, |e, j, s| {
            let d = centred(e, x, i, j, mean)?;
            e.addf(s, e.mulf(d, d)?)
        })?;
        let var = e.mulf(sq, inv_n)?;
        let inv = e.divf(one, e.unary("math.sqrt", e.addf(var, eps)?)?)?;
        e.for_n(cols, |e, j| {
            let d = centred(e, x, i, j, mean)?;
            let g = e.load_f32(p, &[g_row, j])?;
            let b = b_row.map(|b_row| e.load_f32(p, &[b_row, j])).transpose()?;
            let v = e.mulf(e.mulf(d, inv)?, g)?;
            let v = match b {
                Some(b) => e.addf(v, b)?,
                None => v,
            };
            e.store_f32(v, y, &[i, j], elem)
        })
    })
}

/// `x[i, j] - mean`, or `x[i, j]` without a mean.
fn centred<'c, 'k>(
    e: &Emit<'c, 'k>,
    x: Value<'c, '_>,
    i: Value<'c, '_>,
    j: Value<'c, '_>,
    mean: Option<Value<'c, '_>>,
) -> KResult<Value<'c, 'k>> {
    let v = e.load_f32(x, &[i, j])?;
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
    let (cols, elem) = (shape.cols, common.dtype.elem());
    let name = match norm {
        Norm::Layer => "layernorm",
        Norm::Rms => "rmsnorm",
    };
    let kernel_for = move |_core: usize, _step: Option<usize>| {
        kernel(name, move |c, b, a| {
            expect_args(name, a, 3)?;
            let e = Emit::new(c, b, name);
            emit_norm_rows(&e, [a[0], a[1], a[2]], tile_rows, cols, elem, eps, norm)
        })
    };
    let params = BufferType::new([norm.param_rows(), cols], elem);
    rowwise::build(&RowwisePlan::new(common, shape, tile_rows, &kernel_for).with_params(params))
}

pub fn build(spec: &LayernormSpec) -> Result<Design, DesignError> {
    build_norm(
        spec.common(),
        spec.shape,
        spec.tile_rows,
        spec.epsilon,
        Norm::Layer,
    )
}

crate::op_spec! {
    pub struct LayernormSpec {
        pub shape: RowsShape,
        /// Rows per FIFO buffer.
        pub tile_rows: usize,
        pub epsilon: f64,
    }
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
    f.common(&common.array, common.depth, dev)?;
    f.dtype_in(common.dtype, &[Dtype::Bf16, Dtype::F32], op)?;
    f.rowwise(shape, tile_rows, &common.array)?;
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
        )
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    fn buffer_fields(&self) -> &'static str {
        "tile_rows, depth or stack_bytes"
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (rows, cols) = (self.shape.rows, self.shape.cols);
        let (x, p, gamma, beta) = norm_inputs(gen, self.dtype.elem(), self.shape, Norm::Layer);
        let r = reference(&x.to_f64(), rows, cols, &gamma, &beta, self.epsilon);
        TestCase {
            inputs: vec![x, p],
            judge: norm_judge(r),
        }
    }
}

/// Judges a norm op's output: `|y - ref| <= TOLERANCE (1 + |ref|)`.
pub(crate) fn norm_judge(reference: Vec<f64>) -> crate::sim::verify::Judge {
    Box::new(move |out: &[HostData]| {
        Comparison::new(
            &out[0].to_f64(),
            &reference,
            false,
            "|y - ref| <= TOLERANCE (1 + |ref|)",
            |_, rv| TOLERANCE * (1.0 + rv.abs()),
        )
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
