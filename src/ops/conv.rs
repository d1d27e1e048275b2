//! 1-D convolution, kernel 3, padding 1, stride 1 or 2 (Whisper's encoder front: conv1
//! `n_mels -> d_model` over the frames, conv2 `d_model -> d_model` stride 2, each followed by
//! GELU), as im2col + the [`crate::ops::linear`] design, with the im2col done by the A
//! stream's access pattern.
//!
//! Layouts (host arguments in order):
//! - `A` = the input, **time-major and padded**: `[frames + 2, c_in]` bf16, row 0 and row
//!   `frames + 1` zero (the padding), row `f + 1` = frame `f`.
//! - `B` = the weights packed by [`ConvSpec::pack_weights`]: `[3 c_in + T, c_out]`, row
//!   `j * c_in + c` = tap `j` of input channel `c` (`w[o][c][j]` of the checkpoint's
//!   `[c_out, c_in, 3]`), then the bias trailer (see [`crate::ops::linear::layout`]).
//! - `C` = `[out_frames, c_out]` (`out_frames = (frames - 1) / stride + 1`), time-major, so
//!   conv2 reads conv1's output once it has been written into rows `1..=frames` of a
//!   zero-bordered `[frames + 2, d_model]` buffer.
//!
//! Why this order: with the K index `j * c_in + c`, im2col row `t` is
//! `x[t*stride .. t*stride + 3, :]` of the padded input, one contiguous run of `3 c_in`
//! elements starting at `t * stride * c_in`. So the im2col matrix is the input read with a
//! row stride of `stride * c_in` (rows overlap), and the linear design's ordinary 4-D A
//! pattern `[n blocks (repeat), k blocks, rows, k]` with strides `[0, k, stride c_in, 1]`
//! expresses every tile move, in one transfer per chunk of n blocks, as for a matmul. The
//! channel-major order (`c * 3 + j` over a `[c_in, frames + 2]` input) would make the
//! innermost dimension 3 bf16 values at odd offsets, which a shim BD cannot move (its unit
//! is a 32-bit word); that is why the input is time-major.
//!
//! Operands are bf16 (f32 accumulate): an im2col row mixes three frames, so a per-row
//! activation scale cannot dequantise it; int8 is rejected with that reason.

use crate::design::{BufferType, Design, DesignError};
use crate::device::DeviceModel;
use crate::ops::linear::layout::{self, LayoutError, PackedWeights};
use crate::ops::linear::{self, Epilogue, LinearPlan};
use crate::ops::matmul::MatmulShape;
use crate::ops::registry::OpSpec;
use crate::sim::inputs::InputGen;
use crate::sim::verify::TestCase;
use crate::sim::HostData;
use crate::spec::{Dtype, Fields, SpecError};

/// The kernel width (taps) and padding every conv here has.
pub const TAPS: usize = 3;

crate::op_spec! {
    /// `dtype = "bf16"`; tile splits the im2col product `[out_frames, 3 c_in] x [3 c_in, c_out]`.
    pub struct ConvSpec {
        /// Input channels (n_mels for conv1, d_model for conv2).
        pub c_in: usize,
        /// Output channels.
        pub c_out: usize,
        /// Input frames (unpadded).
        pub frames: usize,
        /// 1 or 2.
        pub stride: usize,
        pub tile: MatmulShape,
        /// Over `acc` and `bias[col]`, e.g. `"gelu(acc + bias[col])"`.
        pub epilogue: String,
        /// `"bf16"` or `"f32"`.
        pub out_dtype: Dtype,
    }
    buffer_fields = "tile.m/tile.k/tile.n, depth or stack_bytes";
}

impl ConvSpec {
    /// Output frames: `(frames + 2 - 3) / stride + 1`.
    pub fn out_frames(&self) -> usize {
        (self.frames.saturating_sub(1)) / self.stride.max(1) + 1
    }

    /// The im2col product's shape.
    pub fn shape(&self) -> MatmulShape {
        MatmulShape {
            m: self.out_frames(),
            k: TAPS * self.c_in,
            n: self.c_out,
        }
    }

    /// The padded time-major input `[frames + 2, c_in]`.
    pub fn input_layout(&self) -> BufferType {
        BufferType::new([self.frames + 2, self.c_in], self.dtype.elem())
    }

    /// Packs the checkpoint's weights `w` (`[c_out, c_in, 3]` row-major) and bias into the
    /// B layout (module docs). Called once at load.
    pub fn pack_weights(
        &self,
        w: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<PackedWeights, LayoutError> {
        let (ci, s) = (self.c_in, self.shape());
        if w.len() != s.k * s.n {
            return Err(LayoutError::Length {
                what: "weights",
                got: w.len(),
                want: s.k * s.n,
            });
        }
        let ep = Epilogue::parse(&self.epilogue, self.dtype).map_err(LayoutError::Epilogue)?;
        let weight = |l: usize, o: usize| w[(o * ci + l % ci) * TAPS + l / ci];
        layout::pack_weights(weight, bias, [s.k, s.n], &ep, self.dtype.elem())
    }

    fn parsed_epilogue(&self) -> Result<Epilogue, SpecError> {
        Epilogue::parse(&self.epilogue, self.dtype)
            .map_err(|m| Fields::new(&self.name).fail("epilogue", m))
    }
}

impl OpSpec for ConvSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        if self.dtype != Dtype::Bf16 {
            return Err(f.fail(
                "dtype",
                format!(
                    "conv takes bf16, not {}: an im2col row mixes three frames, so no per-row \
                     activation scale dequantises it",
                    self.dtype.name()
                ),
            ));
        }
        if !matches!(self.stride, 1 | 2) {
            return Err(f.fail("stride", format!("{} is not 1 or 2", self.stride)));
        }
        f.positive("frames", self.frames)?;
        f.positive("c_in", self.c_in)?;
        for (field, v) in [
            ("tile.m", self.tile.m),
            ("tile.k", self.tile.k),
            ("tile.n", self.tile.n),
        ] {
            f.positive(field, v)?;
        }
        // The im2col product's split, named by the conv's own fields.
        let (s, t, a) = (self.shape(), self.tile, self.array);
        let split = [
            (
                "frames",
                s.m,
                t.m * a.cores_per_column as usize,
                "output frames",
                "tile.m x cores_per_column",
            ),
            ("tile.k", s.k, t.k, "3 x c_in", "tile.k"),
            (
                "c_out",
                s.n,
                t.n * a.columns as usize,
                "c_out",
                "tile.n x columns",
            ),
        ];
        for (field, total, by, what, by_desc) in split {
            if !total.is_multiple_of(by) {
                return Err(f.fail(
                    field,
                    format!("{what} = {total} is not divisible by {by_desc} = {by}"),
                ));
            }
        }
        let parts = (self.shape(), self.tile);
        linear::spec::check_linear(f, self.common(), dev, parts, &self.epilogue, self.out_dtype)
            .map(|_| ())
    }

    fn build(&self) -> Result<Design, DesignError> {
        let epilogue = self.parsed_epilogue().map_err(|e| DesignError::Invalid {
            design: self.name.clone(),
            message: e.to_string(),
        })?;
        linear::build(&LinearPlan {
            common: self.common(),
            shape: self.shape(),
            tile: self.tile,
            epilogue,
            out: self.out_dtype.elem(),
            a_host: self.input_layout(),
            a_row_stride: self.stride * self.c_in,
        })
    }

    /// A padded input `x ~ N(0, 1)` (border rows zero), weights `N(0, 1)`, bias; the
    /// reference forms the im2col matrix on the host in f64 (independently of the DMA).
    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let s = self.shape();
        let Ok(ep) = self.parsed_epilogue() else {
            return TestCase::elementwise(vec![], vec![], false, "", |_, _| 0.0);
        };
        let (ci, rows) = (self.c_in, self.frames + 2);
        let mut x = gen.normal_data(self.dtype.elem(), rows * ci, 0.0, 1.0);
        if let HostData::Bf16(v) = &mut x {
            let zero = half::bf16::ZERO;
            v[..ci].fill(zero);
            v[(rows - 1) * ci..].fill(zero);
        }
        let data = linear::spec::Operands::draw(gen, self.dtype, [1, s.k, s.n], &ep);
        let xf = x.to_f64();
        let mut a = Vec::with_capacity(s.m * s.k);
        for t in 0..s.m {
            for j in 0..TAPS {
                let frame = t * self.stride + j;
                a.extend_from_slice(&xf[frame * ci..(frame + 1) * ci]);
            }
        }
        let w = data.w.to_f64();
        let b = data.packed_b(&ep, [s.k, s.n]);
        let dtype = self.dtype;
        let refs = move |deadline: &crate::sim::verify::Deadline| {
            linear::spec::reference(&ep, &data, (&a, &w), [s.m, s.k, s.n], dtype, deadline)
        };
        linear::spec::judged(vec![x, b], refs, self.out_dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(frames: usize, stride: usize) -> ConvSpec {
        let text = format!(
            r#"
            name = "c"
            device = "npu1"
            dtype = "bf16"
            array = {{ columns = 1, cores_per_column = 1 }}
            c_in = 2
            c_out = 4
            frames = {frames}
            stride = {stride}
            tile = {{ m = 1, k = 2, n = 4 }}
            epilogue = "acc + bias[col]"
            out_dtype = "f32"
            "#
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn output_frames_follow_pad_one_kernel_three() {
        assert_eq!(conv(3000, 1).out_frames(), 3000);
        assert_eq!(conv(3000, 2).out_frames(), 1500);
        assert_eq!(conv(7, 2).out_frames(), 4);
    }

    #[test]
    fn packed_rows_are_tap_major() {
        let spec = conv(4, 1);
        // w[o][c][j] = 100 o + 10 c + j
        let w: Vec<f32> = (0..4 * 2 * 3)
            .map(|i| (100 * (i / 6) + 10 * (i / 3 % 2) + i % 3) as f32)
            .collect();
        let bias = [1.0f32; 4];
        let p = spec.pack_weights(&w, Some(&bias)).unwrap();
        let b = p.b.to_f64();
        // row l = j * c_in + c: row 3 is tap 1 of channel 1; column 2 is output 2.
        assert_eq!(b[3 * 4 + 2], 211.0);
        assert_eq!(b[4 * 4 + 1], 102.0);
        assert_eq!(b.len(), (6 + 2) * 4);
    }
}
