//! The linear spec: its fields, their rules, weight packing, the f64 reference and its
//! `aiec sim` test case.

use super::epilogue::{acc_error, Epilogue, ACC, BIAS, SA, SW};
use super::layout::{self, LayoutError, PackedWeights};
use super::LinearPlan;
use crate::design::{BufferType, Design, DesignError, ElemType};
use crate::device::DeviceModel;
use crate::expr::Env;
use crate::ops::matmul::MatmulShape;
use crate::ops::registry::{OpSpec, SpecCommon};
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, Deadline, Expired, TestCase};
use crate::sim::HostData;
use crate::spec::{Dtype, Fields, SpecError};

crate::op_spec! {
    /// `dtype` is the operands' type: `"int8"` (int32 accumulate) or `"bf16"` (f32
    /// accumulate). Host arguments, in order: `A`, `B` (packed weights), `C`; see
    /// [`super::layout`].
    pub struct LinearSpec {
        /// `C[M x N] = f(A[M x K] B[K x N])`.
        pub shape: MatmulShape,
        /// Per-core tile: each core computes `m x n` outputs from `m x k` and `k x n` blocks.
        pub tile: MatmulShape,
        /// The epilogue expression over `acc`, `sa[row]`, `sw[col]`, `bias[col]`.
        pub epilogue: String,
        /// `"bf16"` or `"f32"`.
        pub out_dtype: Dtype,
    }
    buffer_fields = "tile.m/tile.k/tile.n, depth or stack_bytes";
}

/// The tolerance, for reports.
pub const TOLERANCE: &str =
    "|y - ref| <= b + 2^-8 (|ref| + b) (bf16 out; f32: 2^-23), b = the f32 \
     epilogue's running bound with the accumulator's error carried (int8: its f32 rounding; \
     bf16: + K 2^-24 sum|a b|)";

/// Checks shared by the linear and conv specs: operand and output types, the epilogue, the
/// tile split and the 4-byte word rule of shim DMAs.
pub(crate) fn check_linear(
    f: &Fields,
    c: SpecCommon,
    dev: &DeviceModel,
    (shape, tile): (MatmulShape, MatmulShape),
    epilogue: &str,
    out: Dtype,
) -> Result<Epilogue, SpecError> {
    f.common(c, &[Dtype::Int8, Dtype::Bf16], "linear", dev)?;
    if !matches!(out, Dtype::Bf16 | Dtype::F32) {
        return Err(f.fail(
            "out_dtype",
            format!("{} is not an output type; use bf16 or f32", out.name()),
        ));
    }
    let ep = Epilogue::parse(epilogue, c.dtype).map_err(|m| f.fail("epilogue", m))?;
    crate::ops::matmul::check_split(f, &shape, &tile, &c.array)?;
    // Rows of A, B and C blocks move as whole 32-bit words.
    f.divides("tile.k", tile.k, 4, "4 (shim DMAs move 32-bit words)")?;
    f.divides("tile.n", tile.n, 4, "4 (shim DMAs move 32-bit words)")?;
    Ok(ep)
}

impl LinearSpec {
    /// The checked epilogue.
    pub fn parsed_epilogue(&self) -> Result<Epilogue, SpecError> {
        Epilogue::parse(&self.epilogue, self.dtype)
            .map_err(|m| Fields::new(&self.name).fail("epilogue", m))
    }

    /// The A host buffer: `[M, K + 4]` i8 when the epilogue reads `sa`, else `[M, K]`.
    pub fn a_layout(&self, ep: &Epilogue) -> BufferType {
        let extra = if ep.row_scale { 4 } else { 0 };
        BufferType::new([self.shape.m, self.shape.k + extra], self.dtype.elem())
    }

    /// Packs the layer's weights `w` (`[N, K]` row-major: output channel by input, the
    /// checkpoint's layout) and bias (`[N]`) into the B layout; int8 quantises per output
    /// channel. Called once at load.
    pub fn pack_weights(
        &self,
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<PackedWeights, LayoutError> {
        let (k, n) = (self.shape.k, self.shape.n);
        if w.len() != k * n {
            return Err(LayoutError::Length {
                what: "weights",
                got: w.len(),
                want: k * n,
            });
        }
        let ep = Epilogue::parse(&self.epilogue, self.dtype).map_err(LayoutError::Epilogue)?;
        layout::pack_weights(|l, j| w[j * k + l], bias, [k, n], &ep, self.dtype.elem())
    }

    fn plan(&self) -> Result<LinearPlan<'_>, DesignError> {
        let ep = self.parsed_epilogue().map_err(|e| DesignError::Invalid {
            design: self.name.clone(),
            message: e.to_string(),
        })?;
        let a_host = self.a_layout(&ep);
        Ok(LinearPlan {
            common: self.common(),
            shape: self.shape,
            tile: self.tile,
            a_row_stride: a_host.shape[1],
            a_host,
            epilogue: ep,
            out: self.out_dtype.elem(),
        })
    }
}

impl OpSpec for LinearSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        let parts = (self.shape, self.tile);
        check_linear(f, self.common(), dev, parts, &self.epilogue, self.out_dtype).map(|_| ())
    }

    fn build(&self) -> Result<Design, DesignError> {
        super::build(&self.plan()?)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (m, k, n) = (self.shape.m, self.shape.k, self.shape.n);
        let Ok(ep) = self.parsed_epilogue() else {
            return TestCase::elementwise(vec![], vec![], false, TOLERANCE, |_, _| 0.0);
        };
        let data = Operands::draw(gen, self.dtype, [m, k, n], &ep);
        let a_host = match &data.a {
            HostData::I8(q) if ep.row_scale => {
                HostData::I8(layout::activations_with_scales(q, &data.sa, k))
            }
            other => other.clone(),
        };
        let b_host = data.packed_b(&ep, [k, n]);
        let (a, w) = (data.a.to_f64(), data.w.to_f64());
        let dtype = self.dtype;
        let refs =
            move |deadline: &Deadline| reference(&ep, &data, (&a, &w), [m, k, n], dtype, deadline);
        judged(vec![a_host, b_host], refs, self.out_dtype)
    }
}

/// Random operands and epilogue vectors for a test: `a` `[M, K]`, `w` `[K, N]` (logical,
/// unpacked), scales positive around 0.005 (so `acc * sa * sw` is of order 1), bias normal.
pub(crate) struct Operands {
    pub a: HostData,
    pub w: HostData,
    pub sa: Vec<f32>,
    pub sw: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Operands {
    pub fn draw(gen: &mut InputGen, dtype: Dtype, [m, k, n]: [usize; 3], ep: &Epilogue) -> Self {
        let (a, w) = match dtype {
            Dtype::Int8 => (HostData::I8(gen.int8(m * k)), HostData::I8(gen.int8(k * n))),
            _ => (
                gen.normal_data(ElemType::Bf16, m * k, 0.0, 1.0),
                gen.normal_data(ElemType::Bf16, k * n, 0.0, 1.0),
            ),
        };
        // Scale so the epilogue's argument is of order 1 whatever K is.
        let unit = 0.005 * (64.0 / k as f64).sqrt().sqrt();
        let mut scales = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| (unit * (1.0 + 0.3 * gen.normal()).abs() + 1e-4) as f32)
                .collect()
        };
        let (sa, sw) = (scales(m), scales(n));
        let bias_std = if ep.col_vectors.contains(&BIAS) {
            0.5
        } else {
            0.0
        };
        let bias = (0..n).map(|_| (bias_std * gen.normal()) as f32).collect();
        Operands { a, w, sa, sw, bias }
    }

    /// The logical weights in the packed B layout with their trailer.
    pub fn packed_b(&self, ep: &Epilogue, [k, n]: [usize; 2]) -> HostData {
        let vectors = layout::vectors_of(ep, &self.sw, &self.bias);
        match &self.w {
            HostData::I8(w) => HostData::I8(layout::pack_b(
                |l, j| w[l * n + j],
                &vectors,
                layout::i8_parts,
                [k, n],
            )),
            HostData::Bf16(w) => HostData::Bf16(layout::pack_b(
                |l, j| w[l * n + j],
                &vectors,
                layout::bf16_parts,
                [k, n],
            )),
            other => other.clone(),
        }
    }
}

/// The f64 reference `(value, bound)` of every output element: exact products summed in
/// f64, then the epilogue (see [`Epilogue::reference`]). `a` is `[M, K]`, `w` `[K, N]`.
/// O(M K N), so computed row by row within `deadline`.
pub(crate) fn reference(
    ep: &Epilogue,
    data: &Operands,
    (a, w): (&[f64], &[f64]),
    [m, k, n]: [usize; 3],
    dtype: Dtype,
    deadline: &Deadline,
) -> Result<Vec<(f64, f64)>, Expired> {
    let f64s = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| f64::from(x)).collect() };
    let (sa, sw, bias) = (f64s(&data.sa), f64s(&data.sw), f64s(&data.bias));
    deadline.rows(m, n, |i, row| {
        for (j, y) in row.iter_mut().enumerate() {
            let (mut acc, mut abs) = (0f64, 0f64);
            for l in 0..k {
                let p = a[i * k + l] * w[l * n + j];
                acc += p;
                abs += p.abs();
            }
            let env = Env {
                scalars: vec![(ACC, acc)],
                vectors: vec![(SA, &sa), (SW, &sw), (BIAS, &bias)],
                row: i,
                col: j,
            };
            *y = ep.reference(&env, acc_error(acc, k, abs, dtype));
        }
    })
}

/// The test case judging the single output against the references `refs` computes (lazily,
/// within the check's deadline) with the output's rounding.
pub(crate) fn judged(
    inputs: Vec<HostData>,
    refs: impl FnOnce(&Deadline) -> Result<Vec<(f64, f64)>, Expired> + 'static,
    out: Dtype,
) -> TestCase {
    let rounding = crate::ops::gelu::rounding_of(out);
    TestCase {
        inputs,
        judge: Box::new(move |outs: &[HostData], deadline: &Deadline| {
            let refs = refs(deadline)?;
            let want: Vec<f64> = refs.iter().map(|r| r.0).collect();
            Ok(Comparison::new(
                &outs[0].to_f64(),
                &want,
                false,
                TOLERANCE,
                |i, _| {
                    let (v, b) = refs[i];
                    b + rounding * (v.abs() + b)
                },
            ))
        }),
    }
}
