//! bf16-weight products: weights rounded to bf16 once at load (to nearest, ties to even),
//! activations and accumulation in f32. Decoder steps stream the bf16 rows and widen them
//! in registers (half the bytes of f32); products of many rows widen the matrix once per
//! call and run the f32 GEMM.

use rayon::prelude::*;

use crate::whisper::ops;

/// Up to this many rows a product streams the weights (as the f32 GEMV does).
const STREAM_MAX_ROWS: usize = 8;

pub struct Bf16Linear {
    /// `[n, k]` bf16 bit patterns.
    w: Vec<u16>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

#[inline(always)]
fn widen(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Each value rounded to the nearest bf16 (ties to even), kept as f32.
pub fn round_in_place(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            *v = half::bf16::from_f32(*v).to_f32();
        }
    });
}

/// A copy of `x` rounded as [`round_in_place`] does.
pub fn rounded(x: &[f32]) -> Vec<f32> {
    let mut copy = x.to_vec();
    round_in_place(&mut copy);
    copy
}

impl Bf16Linear {
    pub fn new(w: &[f32], bias: Option<Vec<f32>>, n: usize, k: usize) -> Self {
        let w = w
            .par_iter()
            .map(|&v| half::bf16::from_f32(v).to_bits())
            .collect();
        Self { w, bias, n, k }
    }

    /// `y[rows, n] = x Wᵀ + b`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        if rows > STREAM_MAX_ROWS {
            let wide: Vec<f32> = self.w.par_iter().map(|&b| widen(b)).collect();
            ops::linear_into(x, rows, &wide, self.bias.as_deref(), n, k, y);
            return;
        }
        ops::stream_columns(rows, n, self.bias.as_deref(), y, |j, out| {
            dot_rows(x, rows, k, &self.w[j * k..(j + 1) * k], out)
        });
    }
}

/// `out[i] = x_i · w` for the `rows` rows of `x`, widening `w` as it is read.
fn dot_rows(x: &[f32], rows: usize, k: usize, w: &[u16], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected; lengths are checked inside.
            unsafe { dot_rows_avx2(x, rows, k, w, out) };
            return;
        }
    }
    dot_rows_generic(x, rows, k, w, out)
}

#[inline(always)]
fn dot_rows_generic(x: &[f32], rows: usize, k: usize, w: &[u16], out: &mut [f32]) {
    const LANES: usize = 8;
    for (i, o) in out.iter_mut().enumerate().take(rows) {
        let xr = &x[i * k..(i + 1) * k];
        let mut acc = [0.0f32; LANES];
        let chunks = k / LANES;
        for c in 0..chunks {
            for l in 0..LANES {
                acc[l] += xr[c * LANES + l] * widen(w[c * LANES + l]);
            }
        }
        *o = acc.iter().sum::<f32>()
            + (chunks * LANES..k)
                .map(|t| xr[t] * widen(w[t]))
                .sum::<f32>();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(x: &[f32], rows: usize, k: usize, w: &[u16], out: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(x.len() >= rows * k && w.len() >= k && out.len() >= rows);
    let chunks = k / 8;
    let (xp, wp) = (x.as_ptr(), w.as_ptr());
    // Two rows at a time share each widened weight vector.
    let mut i = 0;
    while i < rows {
        let two = i + 1 < rows;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for c in 0..chunks {
            let raw = _mm_loadu_si128(wp.add(c * 8) as *const _);
            let wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(i * k + c * 8)), wv, a0);
            if two {
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add((i + 1) * k + c * 8)), wv, a1);
            }
        }
        for (r, a) in [(i, a0), (i + 1, a1)]
            .into_iter()
            .take(if two { 2 } else { 1 })
        {
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), a);
            out[r] = lanes.iter().sum::<f32>()
                + (chunks * 8..k)
                    .map(|t| x[r * k + t] * widen(w[t]))
                    .sum::<f32>();
        }
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_float64_product_of_the_rounded_weights() {
        let (n, k) = (37, 70);
        let f = |i: usize| ((i * 2654435761) % 2000) as f32 / 1000.0 - 1.0;
        let w: Vec<f32> = (0..n * k).map(f).collect();
        let bias: Vec<f32> = (0..n).map(|i| f(i + 5)).collect();
        let lin = Bf16Linear::new(&w, Some(bias.clone()), n, k);
        for rows in [1, 3, 8, 20] {
            let x: Vec<f32> = (0..rows * k).map(|i| f(i + 99)).collect();
            let mut y = vec![0.0f32; rows * n];
            lin.forward(&x, rows, &mut y);
            for i in 0..rows {
                for j in 0..n {
                    let want: f64 = bias[j] as f64
                        + (0..k)
                            .map(|t| {
                                x[i * k + t] as f64 * half::bf16::from_f32(w[j * k + t]).to_f64()
                            })
                            .sum::<f64>();
                    let got = y[i * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4,
                        "rows {rows} ({i},{j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
