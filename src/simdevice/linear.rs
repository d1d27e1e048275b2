//! Linear layers and the logits on the `linear` design (the convolutions have their own:
//! [`super::conv`]).
//!
//! - **Weights** are packed once ([`SimLinear::new`]) by the linear op's own
//!   [`LinearSpec::pack_weights`] into the B layout its DMA reads (`[K + T, N]`, the
//!   epilogue's column vectors as trailer rows); int8 quantises per output channel by the rule
//!   the cpu int8 path shares ([`crate::ops::linear::layout::quantize_row`]). The packing
//!   depends only on K, the padded N and the epilogue's vectors, not on the row tiling, so one
//!   packed copy serves every row count. A layer too wide for one design's shim transfers (the
//!   logits) is split into equal column parts, each its own B buffer and launch.
//! - **Spec per call shape**: the plan's matmul tiling search
//!   ([`crate::plan::tiling::matmul_candidates`]) pads M (decoder rows) to whole row tiles and
//!   N (the vocabulary) to whole column blocks; the first candidate that builds is compiled.
//! - **Activations**: bf16 rounds on the way into the A buffer; int8 runs the `quantize`
//!   design first (per-row scale, [`super::rowwise::quantize`]), whose `[M, K + 4]` output is
//!   the linear design's A buffer as it is.
//! - **Output** f32; the padded rows and columns are dropped.

use super::kernels::{self, narrow};
use super::{SimDeviceError, SimPrecision};
use crate::device::DeviceModel;
use crate::ops::linear::LinearSpec;
use crate::plan::tiling::{self, MatmulTiling};
use crate::sim::HostData;
use aiec_runtime::backend::{LinearShape, LinearWeights, PreparedLinear};
use std::time::Duration;

/// A dense layer packed for the linear design.
pub struct SimLinear {
    pub name: String,
    shape: LinearShape,
    has_bias: bool,
    precision: SimPrecision,
    /// Output columns per part: every part runs the same design, the last one padded with
    /// zero weights.
    part_n: usize,
    parts: Vec<Part>,
}

/// The columns `col0..col0 + part_n` of a layer, packed for one launch.
struct Part {
    col0: usize,
    /// Columns of the part's C buffer (`part_n` padded to whole column blocks).
    n_padded: usize,
    /// The B host buffer (packed, trailer rows included).
    packed: HostData,
}

/// Most launches one layer is split into before giving up.
const MAX_PARTS: usize = 64;

impl PreparedLinear for SimLinear {
    fn shape(&self) -> LinearShape {
        self.shape
    }
}

fn dtype(p: SimPrecision) -> &'static str {
    match p {
        SimPrecision::Bf16 => "bf16",
        SimPrecision::Int8 => "int8",
    }
}

/// The epilogue expression for `precision`, with or without bias and GELU.
fn epilogue(p: SimPrecision, bias: bool, gelu: bool) -> String {
    let acc = match p {
        SimPrecision::Bf16 => "acc",
        // The cpu int8 path's order ([`aiec_runtime::quant::dequantize`]), so that the two
        // devices' outputs are bit-identical when their accumulators are.
        SimPrecision::Int8 => "acc * (sa[row] * sw[col])",
    };
    let body = if bias {
        format!("{acc} + bias[col]")
    } else {
        acc.to_string()
    };
    if gelu {
        format!("gelu({body})")
    } else {
        body
    }
}

fn spec_toml(p: SimPrecision, t: &MatmulTiling, epilogue: &str) -> String {
    let (s, tile, a) = (t.shape, t.tile, t.array);
    format!(
        "op = \"linear\"\nname = \"sim_linear_{m}x{k}x{n}_{dt}\"\ndevice = \"npu1\"\ndtype = \"{dt}\"\n\
         shape = {{ m = {m}, k = {k}, n = {n} }}\ntile = {{ m = {tm}, k = {tk}, n = {tn} }}\n\
         array = {{ columns = {c}, cores_per_column = {r} }}\ndepth = 2\n\
         epilogue = \"{epilogue}\"\nout_dtype = \"f32\"\n",
        m = s.m,
        k = s.k,
        n = s.n,
        dt = dtype(p),
        tm = tile.m,
        tk = tile.k,
        tn = tile.n,
        c = a.columns,
        r = a.cores_per_column,
    )
}

/// The spec texts for an `m x k x n` call, best first ([`tiling::vector_matmul_candidates`]).
fn candidates(p: SimPrecision, m: usize, k: usize, n: usize, epilogue: &str) -> Vec<String> {
    tiling::vector_matmul_candidates(m, k, n, &npu1())
        .iter()
        .map(|t| spec_toml(p, t, epilogue))
        .collect()
}

pub(super) fn npu1() -> DeviceModel {
    DeviceModel::get("npu1").expect("the npu1 device model is built in")
}

impl SimLinear {
    /// Splits the output columns into the fewest equal parts one design can compute, pads each
    /// as the tiling search does, then packs (and for int8 quantises) their weights.
    ///
    /// One part is the rule; the logits need more. Their B buffer is `[K + T, 51968]`, and the
    /// shim DMA steps from one k block to the next by `tile.k · N` elements: beyond the 20-bit
    /// word stride of a buffer descriptor for any k tile a core can hold. A column part is
    /// its own host buffer, so its strides shrink with it.
    pub fn new(w: LinearWeights, precision: SimPrecision) -> Result<Self, SimDeviceError> {
        let (k, n) = (w.k, w.n);
        let ep = epilogue(precision, w.bias.is_some(), false);
        let mut last = String::from("no tiling divides the shape");
        let mut chosen = None;
        for count in 1..=MAX_PARTS.min(n.max(1)) {
            let part_n = n.div_ceil(count);
            match first_deployable(&candidates(precision, 1, k, part_n, &ep), &w.name) {
                Ok(lin) => {
                    chosen = Some((part_n, lin));
                    break;
                }
                Err(e) => last = e,
            }
        }
        let (part_n, spec) = chosen.ok_or_else(|| SimDeviceError::NoTiling {
            what: format!("linear {} ({k} -> {n})", w.name),
            last,
        })?;
        let lin = spec
            .downcast::<LinearSpec>()
            .expect("a linear spec text parses as the linear op");
        let n_padded = lin.shape.n;
        let mut parts = Vec::new();
        for col0 in (0..n).step_by(part_n) {
            let live = part_n.min(n - col0);
            let mut weight = w.weight[col0 * k..(col0 + live) * k].to_vec();
            weight.resize(n_padded * k, 0.0);
            let bias = w.bias.as_ref().map(|b| {
                let mut b = b[col0..col0 + live].to_vec();
                b.resize(n_padded, 0.0);
                b
            });
            let packed =
                lin.pack_weights(&weight, bias.as_deref())
                    .map_err(|e| SimDeviceError::Pack {
                        name: w.name.clone(),
                        message: e.to_string(),
                    })?;
            parts.push(Part {
                col0,
                n_padded,
                packed: packed.b,
            });
        }
        Ok(SimLinear {
            name: w.name,
            shape: LinearShape { n, k },
            has_bias: w.bias.is_some(),
            precision,
            part_n,
            parts,
        })
    }

    /// `epi(x[rows, k] Wᵀ + b)` as `[rows, n]` f32, and the simulated time.
    pub fn run(
        &self,
        x: &[f32],
        rows: usize,
        gelu: bool,
    ) -> Result<(Vec<f32>, Duration), SimDeviceError> {
        let LinearShape { n, k } = self.shape;
        let ep = epilogue(self.precision, self.has_bias, gelu);
        let part_n = self.part_n;
        let key = format!("linear {} {rows}x{k}x{part_n} {ep}", dtype(self.precision));
        let p = self.precision;
        let kernel = kernels::first_that_builds(&key, || candidates(p, rows, k, part_n, &ep))?;
        let lin = kernel
            .spec
            .downcast::<LinearSpec>()
            .expect("the linear cache holds linear specs");
        let m_padded = lin.shape.m;
        let mut a = x[..rows * k].to_vec();
        a.resize(m_padded * k, 0.0);
        let (a_host, mut device) = match self.precision {
            SimPrecision::Bf16 => (narrow(kernel.input_elems[0], &a), Duration::ZERO),
            SimPrecision::Int8 => super::rowwise::quantize(&a, k)?,
        };
        if let [part] = &self.parts[..] {
            if part.n_padded == n {
                // One part without padded columns: C's first `rows` rows are the output.
                let mut launch = kernel.launch_ref(&[&a_host, &part.packed])?;
                let mut c = launch.outputs.swap_remove(0);
                c.truncate(rows * n);
                return Ok((c, device + launch.device));
            }
        }
        let mut y = vec![0.0f32; rows * n];
        for part in &self.parts {
            let launch = kernel.launch_ref(&[&a_host, &part.packed])?;
            device += launch.device;
            let c = &launch.outputs[0];
            let live = part_n.min(n - part.col0);
            for r in 0..rows {
                y[r * n + part.col0..r * n + part.col0 + live]
                    .copy_from_slice(&c[r * part.n_padded..r * part.n_padded + live]);
            }
        }
        Ok((y, device))
    }
}

/// The first spec text that builds and passes our verifier; else the last candidate's error.
fn first_deployable(candidates: &[String], name: &str) -> Result<crate::spec::Spec, String> {
    let mut last = String::from("no tiling divides the shape");
    for toml in candidates {
        let spec = match crate::spec::Spec::parse(toml, std::path::Path::new(name)) {
            Ok(s) => s,
            Err(e) => {
                last = aiec_runtime::errors::chain(&e);
                continue;
            }
        };
        let verified = spec
            .build()
            .map_err(|e| aiec_runtime::errors::chain(&e))
            .and_then(|d| {
                crate::mlir::verify::verify(&d)
                    .map(|_| ())
                    .map_err(|e| aiec_runtime::errors::chain(&e))
            });
        match verified {
            Ok(()) => return Ok(spec),
            Err(e) => last = e,
        }
    }
    Err(last)
}
