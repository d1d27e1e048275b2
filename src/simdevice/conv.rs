//! The encoder convolutions on the `conv` design ([`crate::ops::conv`]): kernel 3, padding 1,
//! stride 1 or 2, bf16 operands, f32 accumulation, GELU fused in the epilogue. The im2col is
//! the A stream's access pattern (rows of the zero-bordered input read with a row stride of
//! `stride · c_in`); the host builds no im2col matrix.
//!
//! - **Weights** are packed once ([`SimConv::new`]) by [`ConvSpec::pack_weights`] into the
//!   tap-major B layout (`[3 c_in + T, c_out]`). The packing depends on `c_in`, `c_out` and
//!   the epilogue's column vectors only (not on the frame count, the stride, GELU or the
//!   tiling), so one packed copy serves every call.
//! - **Spec per call shape**: the plan's conv tiling search
//!   ([`crate::plan::tiling::conv_candidates`], no padding: the shape follows from the conv's
//!   fields); the first candidate that builds is compiled, `out_dtype = "f32"` (the call's
//!   output is f32).
//! - **Input**: the design reads a time-major, zero-bordered bf16 `[frames + 2, c_in]`. The
//!   host stages it while rounding to bf16, the one pass every sim op makes into its host
//!   type; for conv1 that pass also transposes the log-mel window (`[n_mels, frames]`,
//!   Whisper's layout, as the runtime hands it over). No DMA can do that transpose: a shim
//!   BD's innermost stride must be 1, and reading channel-major input tap by tap would move
//!   3-element bf16 runs at odd offsets (see the conv op's docs). The mel design cannot
//!   write it either, since the file-wide clamp runs on the host between the two designs.
//! - **Output** `[out_frames, c_out]` time-major, the call's `out` as it stands: the next
//!   conv's zero border is added by its own staging pass, which must round to bf16 anyway.

use std::time::Duration;

use half::bf16;

use super::kernels;
use super::linear::npu1;
use super::SimDeviceError;
use crate::ops::conv::{ConvSpec, TAPS};
use crate::plan::tiling::{self, MatmulTiling};
use crate::sim::HostData;
use aiec_runtime::backend::{ConvInput, ConvLayout, LinearShape, LinearWeights, PreparedLinear};

/// A convolution's weights packed for the conv design.
pub struct SimConv {
    pub name: String,
    c_in: usize,
    c_out: usize,
    has_bias: bool,
    /// The B host buffer (tap-major, bias trailer included).
    packed: HostData,
}

impl PreparedLinear for SimConv {
    /// The im2col product's widths, as the trait describes a conv (`k = 3 c_in`).
    fn shape(&self) -> LinearShape {
        LinearShape {
            n: self.c_out,
            k: TAPS * self.c_in,
        }
    }
}

fn epilogue(bias: bool, gelu: bool) -> String {
    let body = if bias { "acc + bias[col]" } else { "acc" };
    if gelu {
        format!("gelu({body})")
    } else {
        body.to_string()
    }
}

/// The conv spec text of one tiling (`frames` input frames, stride `stride`).
fn spec_toml(
    (c_in, c_out): (usize, usize),
    (frames, stride): (usize, usize),
    t: &MatmulTiling,
    epilogue: &str,
) -> String {
    let (tile, a) = (t.tile, t.array);
    format!(
        "op = \"conv\"\nname = \"sim_conv_{c_in}x{c_out}_f{frames}_s{stride}\"\ndevice = \"npu1\"\n\
         dtype = \"bf16\"\nc_in = {c_in}\nc_out = {c_out}\nframes = {frames}\nstride = {stride}\n\
         tile = {{ m = {}, k = {}, n = {} }}\narray = {{ columns = {}, cores_per_column = {} }}\n\
         depth = 2\nepilogue = \"{epilogue}\"\nout_dtype = \"f32\"\n",
        tile.m, tile.k, tile.n, a.columns, a.cores_per_column,
    )
}

/// The zero-bordered time-major bf16 input `[frames + 2, c_in]` of `input`.
fn staged(input: &ConvInput, c_in: usize) -> HostData {
    let t = input.frames;
    let mut a = vec![bf16::ZERO; (t + 2) * c_in];
    let rows = a[c_in..(t + 1) * c_in].chunks_exact_mut(c_in);
    match input.layout {
        ConvLayout::TimeMajor => {
            for (dst, src) in rows.zip(input.x.chunks_exact(c_in)) {
                dst.iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = bf16::from_f32(s));
            }
        }
        ConvLayout::ChannelMajor => {
            for (f, dst) in rows.enumerate() {
                dst.iter_mut()
                    .enumerate()
                    .for_each(|(c, d)| *d = bf16::from_f32(input.x[c * t + f]));
            }
        }
    }
    HostData::Bf16(a)
}

impl SimConv {
    /// Packs `w` (`[c_out, c_in · 3]`, the checkpoint's `[c_out, c_in, 3]`) once.
    pub fn new(w: LinearWeights) -> Result<Self, SimDeviceError> {
        let pack_error = |message: String| SimDeviceError::Pack {
            name: w.name.clone(),
            message,
        };
        if !w.k.is_multiple_of(TAPS) {
            return Err(pack_error(format!(
                "{} inputs are not {TAPS} taps of whole channels",
                w.k
            )));
        }
        let (c_in, c_out, has_bias) = (w.k / TAPS, w.n, w.bias.is_some());
        // The packing reads the conv's widths and epilogue only; frames, stride and tile are
        // placeholders, so the fields are not checked here (each call's spec is).
        let text = format!(
            "name = \"{}\"\ndevice = \"npu1\"\ndtype = \"bf16\"\n\
             array = {{ columns = 1, cores_per_column = 1 }}\nc_in = {c_in}\nc_out = {c_out}\n\
             frames = 1\nstride = 1\ntile = {{ m = 1, k = 1, n = 1 }}\nepilogue = \"{}\"\n\
             out_dtype = \"f32\"\n",
            w.name,
            epilogue(has_bias, false)
        );
        let spec: ConvSpec = toml::from_str(&text).map_err(|e| pack_error(e.to_string()))?;
        let packed = spec
            .pack_weights(&w.weight, w.bias.as_deref())
            .map_err(|e| pack_error(e.to_string()))?;
        Ok(SimConv {
            name: w.name,
            c_in,
            c_out,
            has_bias,
            packed: packed.b,
        })
    }

    /// The staged bf16 input of `input` (the host's part of the call; see the module docs).
    pub fn stage(&self, input: &ConvInput) -> HostData {
        staged(input, self.c_in)
    }

    /// `epi(conv(input))` as `[out_frames, c_out]` f32 from the staged input `a`, and the
    /// simulated time.
    pub fn run(
        &self,
        a: &HostData,
        (frames, stride): (usize, usize),
        gelu: bool,
    ) -> Result<(Vec<f32>, Duration), SimDeviceError> {
        let (c_in, c_out) = (self.c_in, self.c_out);
        let ep = epilogue(self.has_bias, gelu);
        let key = format!("conv {c_in}x{c_out} f{frames} s{stride} {ep}");
        let out_frames = (frames.max(1) - 1) / stride.max(1) + 1;
        let kernel = kernels::first_that_builds(&key, || {
            tiling::conv_candidates(out_frames, c_in, c_out, &npu1())
                .iter()
                .map(|t| spec_toml((c_in, c_out), (frames, stride), t, &ep))
                .collect::<Vec<_>>()
        })?;
        let launch = kernel.launch_ref(&[a, &self.packed])?;
        let mut y = launch.outputs.into_iter().next().unwrap_or_default();
        y.truncate(out_frames * c_out);
        Ok((y, launch.device))
    }
}
