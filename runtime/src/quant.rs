//! The int8 numerics shared by the cpu backend's `--precision int8` and the NPU kernel plan:
//! one definition of how a row is quantised and how an int32 accumulator is dequantised.
//!
//! - Symmetric, no zero point: `scale = max|x| / 127`, `q = round(x · (127 / max|x|))`
//!   clamped to `[-127, 127]` (so `-128` never occurs and negation is exact).
//! - Rounding is **to nearest, ties to even**, the default rounding of x86 `cvtps2dq` and of
//!   IEEE arithmetic, so a SIMD quantiser gives the same bytes as this scalar one. It is
//!   computed as `(v + 1.5·2²³) − 1.5·2²³`, which rounds to an integer in f32's default mode
//!   for `|v| < 2²²` (ours is at most 127) and vectorises without SSE4.1.
//! - A row of zeros has scale 0 and quantises to zeros.
//! - Weights: one scale per output channel (a row of the model's `[n, k]` matrix).
//!   Activations: one scale per row, computed when the row is produced.
//! - The product of int8 rows accumulates exactly in int32 (|acc| ≤ 127² · k, far below
//!   2³¹ for Whisper's k ≤ 2048 · 3). The epilogue is [`dequantize`].

/// The largest quantised magnitude.
pub const QMAX: f32 = 127.0;

/// `1.5 · 2²³`: adding and subtracting it rounds an f32 below 2²² to an integer.
const ROUNDER: f32 = 12_582_912.0;

/// `v` rounded to the nearest integer, ties to even (`|v| < 2²²`).
#[inline(always)]
pub fn round_ties_even(v: f32) -> f32 {
    (v + ROUNDER) - ROUNDER
}

/// Largest absolute value of `x` (0 for an empty row).
#[inline]
pub fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Quantises `x` into `out[..x.len()]` and returns the scale (`x ≈ q · scale`).
pub fn quantize_row(x: &[f32], out: &mut [i8]) -> f32 {
    let max = max_abs(x);
    let (scale, inv) = if max > 0.0 {
        (max / QMAX, QMAX / max)
    } else {
        (0.0, 0.0)
    };
    for (q, &v) in out.iter_mut().zip(x) {
        *q = round_ties_even(v * inv).clamp(-QMAX, QMAX) as i8;
    }
    scale
}

/// Quantises each `k`-wide row of `w` (`[n, k]`, one row per output channel): returns the
/// `[n, k]` int8 weights and the `n` scales.
pub fn quantize_rows(w: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; w.len()];
    let scales = w
        .chunks_exact(k)
        .zip(q.chunks_exact_mut(k))
        .map(|(row, out)| quantize_row(row, out))
        .collect();
    (q, scales)
}

/// The f32 epilogue of an int8 product: `acc · row_scale · col_scale + bias`, evaluated as
/// `(acc as f32) · (row_scale · col_scale) + bias` (a backend matching the cpu bit for bit
/// must use this order; GELU and the residual add follow in f32).
#[inline(always)]
pub fn dequantize(acc: i32, row_scale: f32, col_scale: f32, bias: f32) -> f32 {
    acc as f32 * (row_scale * col_scale) + bias
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_ties_to_even_like_the_standard_library() {
        for i in -1300..=1300 {
            let v = i as f32 * 0.1;
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
        for v in [0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5] {
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
    }

    #[test]
    fn zero_row_has_zero_scale() {
        let mut q = [1i8; 4];
        assert_eq!(quantize_row(&[0.0; 4], &mut q), 0.0);
        assert_eq!(q, [0; 4]);
    }
}
