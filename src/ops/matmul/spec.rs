//! The matmul spec: its fields, their rules, and its `aiec sim` test case.

use serde::Deserialize;

use super::{bf16_bound, reference_f64_row, reference_int8_row, TOLERANCE_INT8};
use crate::design::{Design, DesignError};
use crate::device::DeviceModel;
use crate::ops::registry::OpSpec;
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, Deadline, TestCase};
use crate::sim::HostData;
use crate::spec::{ArraySpec, Dtype, Fields, SpecError};

/// Matmul problem size `C[M x N] = A[M x K] * B[K x N]` (also used for per-core tiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulShape {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// int8 requantisation of the int32 accumulator:
/// `y = clamp((acc * scale + 2^(shift-1)) >> shift, -128, 127)` (round half up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requant {
    pub shift: u32,
    pub scale: i32,
}

crate::op_spec! {
    /// `dtype = "int8"` (int32 accumulate, requantised int8 out) or `"bf16"` (f32
    /// accumulate, bf16 out).
    pub struct MatmulSpec {
        pub shape: MatmulShape,
        /// Per-core tile: each core computes `m x n` outputs from `m x k` and `k x n` blocks.
        pub tile: MatmulShape,
        /// Required for int8, rejected for bf16.
        pub requant: Option<Requant>,
    }
    buffer_fields = "tile.m/tile.k/tile.n, depth or stack_bytes";
}

impl MatmulSpec {
    fn check_requant(&self, f: &Fields) -> Result<(), SpecError> {
        match (self.dtype, &self.requant) {
            (Dtype::Int8, None) => Err(f.fail(
                "requant",
                "int8 matmul needs [requant] shift and scale to map int32 sums to int8".into(),
            )),
            (Dtype::Bf16, Some(_)) => Err(f.fail(
                "requant",
                "bf16 matmul has no requantisation; remove [requant]".into(),
            )),
            (_, Some(r)) if !(1..=31).contains(&r.shift) => {
                Err(f.fail("requant.shift", format!("{} is outside 1..=31", r.shift)))
            }
            _ => Ok(()),
        }
    }
}

/// The rules of a matmul-shaped problem (the matmul, linear and conv specs): every size at
/// least 1, and the tiles split it over the array.
pub(crate) fn check_split(
    f: &Fields,
    shape: &MatmulShape,
    tile: &MatmulShape,
    array: &ArraySpec,
) -> Result<(), SpecError> {
    for (part, s) in [("shape", shape), ("tile", tile)] {
        for (dim, v) in [("m", s.m), ("k", s.k), ("n", s.n)] {
            f.positive(&format!("{part}.{dim}"), v)?;
        }
    }
    // Cores of a column split M (row blocks); columns split N (column blocks).
    let rows = array.cores_per_column as usize;
    let cols = array.columns as usize;
    f.divides(
        "shape.m",
        shape.m,
        tile.m * rows,
        "tile.m x cores_per_column",
    )?;
    f.divides("shape.k", shape.k, tile.k, "tile.k")?;
    f.divides("shape.n", shape.n, tile.n * cols, "tile.n x columns")
}

impl OpSpec for MatmulSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.common(self.common(), &[Dtype::Int8, Dtype::Bf16], "matmul", dev)?;
        self.check_requant(f)?;
        check_split(f, &self.shape, &self.tile, &self.array)
    }

    fn build(&self) -> Result<Design, DesignError> {
        super::build(self)
    }

    /// The inputs now; the O(m k n) reference in the judge, row block by row block within
    /// `aiec sim --timeout` (4096^3 takes minutes).
    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (m, k, n) = (self.shape.m, self.shape.k, self.shape.n);
        if let (Dtype::Int8, Some(rq)) = (self.dtype, self.requant) {
            let (a, b) = (gen.int8(m * k), gen.int8(k * n));
            let inputs = vec![HostData::I8(a.clone()), HostData::I8(b.clone())];
            let tol = f64::from(TOLERANCE_INT8);
            return TestCase {
                inputs,
                judge: Box::new(move |out: &[HostData], deadline: &Deadline| {
                    let r = deadline.rows(m, n, |i, row| {
                        reference_int8_row(&a, &b, i, (k, n), rq, row)
                    })?;
                    let r: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
                    Ok(Comparison::new(
                        &out[0].to_f64(),
                        &r,
                        true,
                        "|y - ref| <= TOLERANCE_INT8 (bit-exact)",
                        move |_, _| tol,
                    ))
                }),
            };
        }
        let elem = self.dtype.elem();
        let a = gen.normal_data(elem, m * k, 0.0, 1.0);
        let b = gen.normal_data(elem, k * n, 0.0, 1.0);
        let as_f32 = |d: &HostData| -> Vec<f32> { d.to_f64().iter().map(|&v| v as f32).collect() };
        let (af, bf) = (as_f32(&a), as_f32(&b));
        TestCase {
            inputs: vec![a, b],
            judge: Box::new(move |out: &[HostData], deadline: &Deadline| {
                let r =
                    deadline.rows(m, n, |i, row| reference_f64_row(&af, &bf, i, (k, n), row))?;
                let abs = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| x.abs()).collect() };
                let (aa, ba) = (abs(&af), abs(&bf));
                let abs_sum =
                    deadline.rows(m, n, |i, row| reference_f64_row(&aa, &ba, i, (k, n), row))?;
                Ok(Comparison::new(
                    &out[0].to_f64(),
                    &r,
                    false,
                    "|y - ref| <= TOLERANCE |ref| + K 2^-24 sum|a||b|",
                    move |i, rv| bf16_bound(rv, abs_sum[i], k),
                ))
            }),
        }
    }
}
