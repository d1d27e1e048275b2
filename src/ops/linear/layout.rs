//! Host buffer layouts of the linear op (and of conv, which is a linear op over im2col rows),
//! and the functions that make them: the runtime packs weights once at load with
//! [`pack_weights`]; activations come from the `quantize` op already in the A layout.
//!
//! - **A, int8 with `sa`**: `[M, K + 4]` i8: row `r` holds its K quantised values, then the
//!   4 little-endian bytes of its f32 scale `sa[r]`. The design reads `[m, k + 4]` blocks
//!   stepping by `k`, so the last k block's object ends with the row's scale (the earlier
//!   blocks' 4 extra columns are the next block's first values, unused).
//! - **A, otherwise**: `[M, K]` (bf16 or int8).
//! - **B (weights)**: `[K + T, N]` of the operand type, `B[l][j]` = weight of input `l` for
//!   output `j` (the transpose of the checkpoint's `[N, K]`), then `T` trailer rows holding,
//!   for each column vector the epilogue reads (`sw`, then `bias`), its f32 value of column
//!   `j` split into little-endian parts down column `j` (4 bytes for int8, 2 bf16-sized
//!   halves for bf16). The design reads `[k + T, n]` blocks, so the last k block of each
//!   column block ends with its columns' vectors.
//! - **C**: `[M, N]` of `out_dtype`.
//!
//! Quantisation (weights per output channel, activations per row) is the runtime's one rule,
//! [`aiec_runtime::quant::quantize_row`], shared with the cpu int8 path and the `quantize` op:
//! symmetric, `scale = max|x| / 127` in f32, `q = x · (127 / max|x|)` rounded to nearest, ties
//! to even, clamped to `[-127, 127]`; an all-zero row gets scale 0 and `q = 0`.

use half::bf16;

use super::epilogue::{Epilogue, BIAS, SW};
use crate::design::ElemType;
use crate::sim::HostData;

/// A packing input that does not fit the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("{what} has {got} values, the spec needs {want}")]
    Length {
        what: &'static str,
        got: usize,
        want: usize,
    },
    #[error("the epilogue reads bias[col] but no bias was given")]
    MissingBias,
    #[error("epilogue: {0}")]
    Epilogue(String),
    #[error("weights of type {0} cannot be packed for this op")]
    Operand(&'static str),
}

/// Quantises one row by the symmetric rule of the module docs: `(q, scale)`.
pub fn quantize_row(x: &[f32]) -> (Vec<i8>, f32) {
    let mut q = vec![0i8; x.len()];
    let scale = aiec_runtime::quant::quantize_row(x, &mut q);
    (q, scale)
}

/// Quantised rows `q` (`[rows, cols]`) and their scales in the int8 A layout `[rows, cols + 4]`.
pub fn activations_with_scales(q: &[i8], scales: &[f32], cols: usize) -> Vec<i8> {
    let mut out = Vec::with_capacity(q.len() + 4 * scales.len());
    for (row, s) in q.chunks(cols).zip(scales) {
        out.extend_from_slice(row);
        out.extend(s.to_le_bytes().map(|b| b as i8));
    }
    out
}

/// Weights packed for the design, and the per-output-channel scales they were quantised with
/// (int8; the cpu int8 path needs them too).
#[derive(Debug, Clone)]
pub struct PackedWeights {
    pub b: HostData,
    pub weight_scales: Option<Vec<f32>>,
}

/// Packs weights given as `weight(l, j)` (input `l < k`, output `j < n`) with their bias for
/// an epilogue over `operand` data: int8 quantises each output channel, bf16 rounds.
pub(crate) fn pack_weights(
    weight: impl Fn(usize, usize) -> f32,
    bias: Option<&[f32]>,
    [k, n]: [usize; 2],
    epilogue: &Epilogue,
    operand: ElemType,
) -> Result<PackedWeights, LayoutError> {
    if let Some(b) = bias {
        if b.len() != n {
            return Err(LayoutError::Length {
                what: "bias",
                got: b.len(),
                want: n,
            });
        }
    }
    let bias = match (epilogue.col_vectors.contains(&BIAS), bias) {
        (true, None) => return Err(LayoutError::MissingBias),
        (_, b) => b.unwrap_or(&[]),
    };
    match operand {
        ElemType::I8 => {
            let (mut q, mut sw) = (vec![0i8; k * n], vec![0f32; n]);
            for j in 0..n {
                let column: Vec<f32> = (0..k).map(|l| weight(l, j)).collect();
                let (qj, s) = quantize_row(&column);
                sw[j] = s;
                for (l, v) in qj.into_iter().enumerate() {
                    q[l * n + j] = v;
                }
            }
            let vectors = vectors_of(epilogue, &sw, bias);
            let b = pack_b(|l, j| q[l * n + j], &vectors, i8_parts, [k, n]);
            Ok(PackedWeights {
                b: HostData::I8(b),
                weight_scales: Some(sw),
            })
        }
        ElemType::Bf16 => {
            let vectors = vectors_of(epilogue, &[], bias);
            let b = pack_b(
                |l, j| bf16::from_f32(weight(l, j)),
                &vectors,
                bf16_parts,
                [k, n],
            );
            Ok(PackedWeights {
                b: HostData::Bf16(b),
                weight_scales: None,
            })
        }
        other => Err(LayoutError::Operand(other.mlir())),
    }
}

/// The column vectors in trailer order.
pub(crate) fn vectors_of<'a>(
    epilogue: &Epilogue,
    sw: &'a [f32],
    bias: &'a [f32],
) -> Vec<&'a [f32]> {
    epilogue
        .col_vectors
        .iter()
        .map(|&v| if v == SW { sw } else { bias })
        .collect()
}

/// Trailer rows the column vectors take in a B buffer of `operand`.
pub fn trailer_rows(epilogue: &Epilogue, operand: ElemType) -> usize {
    epilogue.col_vectors.len() * 4 / operand.bytes()
}

/// `[k + T, n]`: the body `body(l, j)`, then each vector's values split into parts.
pub(crate) fn pack_b<T: Copy, const P: usize>(
    body: impl Fn(usize, usize) -> T,
    vectors: &[&[f32]],
    parts: fn(f32) -> [T; P],
    [k, n]: [usize; 2],
) -> Vec<T> {
    let mut out = Vec::with_capacity((k + vectors.len() * P) * n);
    for l in 0..k {
        out.extend((0..n).map(|j| body(l, j)));
    }
    for v in vectors {
        let split: Vec<[T; P]> = v.iter().map(|&x| parts(x)).collect();
        for p in 0..P {
            out.extend(split.iter().map(|s| s[p]));
        }
    }
    out
}

pub(crate) fn i8_parts(v: f32) -> [i8; 4] {
    v.to_le_bytes().map(|b| b as i8)
}

pub(crate) fn bf16_parts(v: f32) -> [bf16; 2] {
    let bits = v.to_bits();
    [
        bf16::from_bits(bits as u16),
        bf16::from_bits((bits >> 16) as u16),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Dtype;

    #[test]
    fn quantisation_rounds_ties_to_even_and_handles_zero_rows() {
        // max 127 -> scale 1: 2.5 -> 2, -2.5 -> -2, -0.5 -> 0, 3.5 -> 4.
        let (q, s) = quantize_row(&[127.0, 2.5, -2.5, -0.5, 0.4, 3.5]);
        assert_eq!(s, 1.0);
        assert_eq!(q, vec![127, 2, -2, 0, 0, 4]);
        assert_eq!(quantize_row(&[0.0, 0.0]), (vec![0, 0], 0.0));
        let (q, s) = quantize_row(&[-3.0, 1.0]);
        assert_eq!(s, 3.0 / 127.0);
        assert_eq!(q[0], -127);
        assert_eq!(q[1], (1.0f32 * (127.0 / 3.0)).round_ties_even() as i8);
    }

    #[test]
    fn packed_int8_weights_hold_the_transpose_then_scale_and_bias_bytes() {
        let ep = Epilogue::parse("acc * sa[row] * sw[col] + bias[col]", Dtype::Int8).unwrap();
        // checkpoint layout [n = 2, k = 3]
        let w = [1.2f32, -2.0, 0.5, 0.0, 0.0, 0.0];
        let bias = [0.25f32, -1.5];
        let p = pack_weights(|l, j| w[j * 3 + l], Some(&bias), [3, 2], &ep, ElemType::I8).unwrap();
        let HostData::I8(b) = &p.b else { panic!() };
        assert_eq!(b.len(), (3 + 8) * 2);
        let sw = p.weight_scales.unwrap();
        assert_eq!(sw, vec![2.0 / 127.0, 0.0]);
        // column 0: 1.2 · 127/2 = 76.2 -> 76, -2 -> -127, 0.5 -> 31.75 -> 32; column 1 all zero
        // (scale 0).
        assert_eq!([b[0], b[2], b[4]], [76, -127, 32]);
        assert_eq!([b[1], b[3], b[5]], [0, 0, 0]);
        let word = |v: usize, j: usize| {
            let bytes: Vec<u8> = (0..4).map(|p| b[(3 + 4 * v + p) * 2 + j] as u8).collect();
            f32::from_le_bytes(bytes.try_into().unwrap())
        };
        assert_eq!([word(0, 0), word(0, 1)], [sw[0], 0.0]);
        assert_eq!([word(1, 0), word(1, 1)], bias);
        let missing = pack_weights(|_, _| 0.0, None, [3, 2], &ep, ElemType::I8);
        assert_eq!(missing.unwrap_err(), LayoutError::MissingBias);
    }

    #[test]
    fn bf16_trailer_splits_each_value_into_halves() {
        let [lo, hi] = bf16_parts(-1.75);
        let bits = (hi.to_bits() as u32) << 16 | lo.to_bits() as u32;
        assert_eq!(f32::from_bits(bits), -1.75);
        let a = activations_with_scales(&[1, 2, 3, 4], &[0.5, 2.0], 2);
        assert_eq!(a.len(), 12);
        let s1: Vec<u8> = a[8..12].iter().map(|&b| b as u8).collect();
        assert_eq!(f32::from_le_bytes(s1.try_into().unwrap()), 2.0);
        assert_eq!(&a[6..8], &[3, 4]);
    }
}
