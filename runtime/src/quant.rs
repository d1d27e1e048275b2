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
    assert!(out.len() >= x.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: the features were just detected; `out` holds `x.len()` bytes.
        return unsafe { avx512::quantize_row(x, out) };
    }
    quantize_row_scalar(x, out)
}

/// [`quantize_row`] one value at a time: the definition the SIMD path reproduces.
pub fn quantize_row_scalar(x: &[f32], out: &mut [i8]) -> f32 {
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::QMAX;
    use std::arch::x86_64::*;

    /// [`super::quantize_row_scalar`] 16 lanes at a time, value for value: the largest
    /// magnitude skips NaNs as `f32::max` does; the products are clamped to ±127 (NaN to 0,
    /// as `NaN as i8`) before the conversion, whose default rounding is to nearest even.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn quantize_row(x: &[f32], out: &mut [i8]) -> f32 {
        let n = x.len();
        let lanes = |i: usize| -> __mmask16 {
            let left = (n - i).min(16);
            ((1u32 << left) - 1) as __mmask16
        };
        let mut m = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let v = _mm512_maskz_loadu_ps(lanes(i), x.as_ptr().add(i));
            // With a NaN operand `max` returns its second: the running maximum.
            m = _mm512_max_ps(_mm512_abs_ps(v), m);
        }
        let max = _mm512_reduce_max_ps(m);
        let (scale, inv) = if max > 0.0 {
            (max / QMAX, QMAX / max)
        } else {
            (0.0, 0.0)
        };
        let inv_v = _mm512_set1_ps(inv);
        let (lo, hi) = (_mm512_set1_ps(-QMAX), _mm512_set1_ps(QMAX));
        for i in (0..n).step_by(16) {
            let k = lanes(i);
            let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x.as_ptr().add(i)), inv_v);
            let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v);
            let clamped = _mm512_maskz_min_ps(ordered, _mm512_max_ps(v, lo), hi);
            let q = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(clamped));
            _mm_mask_storeu_epi8(out.as_mut_ptr().add(i), k, q);
        }
        scale
    }
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
    fn the_simd_quantiser_gives_the_scalar_bytes_and_scale() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        };
        let mut rows: Vec<Vec<f32>> = [1usize, 15, 16, 17, 100, 512, 1537]
            .iter()
            .map(|&len| (0..len).map(|_| next() * 3.0).collect())
            .collect();
        // Exact ties at scale 1, a NaN and an infinity, negative zero, subnormal magnitudes.
        rows.push(vec![127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999, -0.0]);
        rows.push(vec![1.0, f32::NAN, -2.0, 0.25]);
        rows.push(vec![1.0, f32::INFINITY, -3.0]);
        rows.push(vec![1.0e-40, -3.0e-41, 0.0]);
        rows.push(vec![0.0; 20]);
        for x in rows {
            let (mut a, mut b) = (vec![0i8; x.len()], vec![0i8; x.len()]);
            let sa = quantize_row(&x, &mut a);
            let sb = quantize_row_scalar(&x, &mut b);
            assert_eq!((sa.to_bits(), &a), (sb.to_bits(), &b), "{x:?}");
        }
    }

    #[test]
    fn zero_row_has_zero_scale() {
        let mut q = [1i8; 4];
        assert_eq!(quantize_row(&[0.0; 4], &mut q), 0.0);
        assert_eq!(q, [0; 4]);
    }
}
