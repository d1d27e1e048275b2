//! Layer norm and GELU on the row-wise designs (bf16 in and out, f32 inside), one spec per row
//! count from the plan's row-wise tiling search ([`crate::plan::tiling::rowwise_candidates`]).

use std::time::Duration;

use super::kernels::{self, narrow};
use super::linear::npu1;
use super::SimDeviceError;
use crate::plan::tiling;
use crate::sim::HostData;
use aiec_runtime::backend::{NormWeights, PreparedNorm};

/// Whisper's layernorm epsilon.
const EPSILON: f64 = 1e-5;

/// gamma and beta as the layernorm design's `[2, cols]` parameter buffer (f32 until launch).
pub struct SimNorm {
    pub name: String,
    params: Vec<f32>,
    dim: usize,
}

impl PreparedNorm for SimNorm {
    fn dim(&self) -> usize {
        self.dim
    }
}

impl SimNorm {
    pub fn new(w: NormWeights) -> Self {
        let dim = w.gamma.len();
        let mut params = w.gamma;
        params.extend(w.beta);
        SimNorm {
            name: w.name,
            params,
            dim,
        }
    }
}

/// The row-wise spec texts of `op` over `rows x cols` of `dtype`, best tiling first; `extra`
/// holds the op's own fields.
fn candidates(op: &str, dtype: &str, rows: usize, cols: usize, extra: &str) -> Vec<String> {
    tiling::rowwise_candidates(rows, &npu1())
        .into_iter()
        .map(|(a, tile_rows)| {
            format!(
                "op = \"{op}\"\nname = \"sim_{op}_{rows}x{cols}\"\ndevice = \"npu1\"\n\
                 dtype = \"{dtype}\"\nshape = {{ rows = {rows}, cols = {cols} }}\n\
                 tile_rows = {tile_rows}\narray = {{ columns = {}, cores_per_column = {} }}\n\
                 depth = 2\n{extra}\n",
                a.columns, a.cores_per_column
            )
        })
        .collect()
}

/// Layer norm of each `norm.dim`-wide row of `x`.
pub fn layer_norm(norm: &SimNorm, x: &[f32]) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let cols = norm.dim;
    let rows = x.len() / cols;
    let extra = format!("epsilon = {EPSILON:e}");
    let key = format!("layernorm {rows}x{cols}");
    let kernel =
        kernels::first_that_builds(&key, || candidates("layernorm", "bf16", rows, cols, &extra))?;
    let inputs = vec![
        narrow(kernel.input_elems[0], x),
        narrow(kernel.input_elems[1], &norm.params),
    ];
    let mut launch = kernel.launch(inputs)?;
    Ok((launch.outputs.swap_remove(0), launch.device))
}

/// The GELU table of kernel-specs/gelu.toml: [-4, 4] in steps of 1/32.
const GELU_TABLE: &str = "table = { min = -4.0, max = 4.0, step = 0.03125 }";

/// GELU of `x`, viewed as rows of `cols` (`cols` divides `x.len()`).
pub fn gelu(x: &[f32], cols: usize) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let rows = x.len() / cols;
    let key = format!("gelu {rows}x{cols}");
    let kernel =
        kernels::first_that_builds(&key, || candidates("gelu", "bf16", rows, cols, GELU_TABLE))?;
    let mut launch = kernel.launch(vec![narrow(kernel.input_elems[0], x)])?;
    Ok((launch.outputs.swap_remove(0), launch.device))
}

/// Per-row int8 quantisation of `rows x cols` f32 activations on the `quantize` design: the
/// linear op's int8 A buffer (`[rows, cols + 4]`, each row's q values then its f32 scale).
/// The input stays f32 so that the rule sees the values the cpu int8 path quantises
/// ([`aiec_runtime::quant`]), which keeps the two devices' accumulators bit-identical.
pub fn quantize(x: &[f32], cols: usize) -> Result<(HostData, Duration), SimDeviceError> {
    let rows = x.len() / cols;
    let key = format!("quantize {rows}x{cols}");
    let kernel =
        kernels::first_that_builds(&key, || candidates("quantize", "f32", rows, cols, ""))?;
    let input = narrow(kernel.input_elems[0], x);
    let (outputs, device) = kernel.launch_host(&[&input])?;
    let y = outputs
        .into_iter()
        .next()
        .unwrap_or_else(|| HostData::I8(Vec::new()));
    Ok((y, device))
}
