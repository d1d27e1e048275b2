//! Streaming products for a few rows (decoder steps: one row per hypothesis): each weight row
//! is read once, in order, for all rows, and widened to f32 in registers as it is read. The
//! weights may be stored as f32, fp16 or bf16 ([`StreamWeight`]); the arithmetic is the same
//! f32 multiply-add chain for all three, so fp16 weights that came from an fp16 model give
//! bit-identical results to their f32 widening, for half the bytes.

use rayon::prelude::*;

/// Output columns per parallel task.
const COLS_PER_TASK: usize = 256;

/// The most rows the kernels take at once.
pub const MAX_ROWS: usize = 8;

/// How a stored weight becomes an f32 lane.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WeightBits {
    F32,
    /// IEEE binary16, widened with F16C (`vcvtph2ps`).
    F16,
    /// bfloat16: the high half of an f32.
    Bf16,
}

/// A weight element the streaming kernels read.
pub trait StreamWeight: Copy + Send + Sync + 'static {
    const BITS: WeightBits;
    fn widen(self) -> f32;
}

impl StreamWeight for f32 {
    const BITS: WeightBits = WeightBits::F32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl StreamWeight for half::f16 {
    const BITS: WeightBits = WeightBits::F16;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl StreamWeight for half::bf16 {
    const BITS: WeightBits = WeightBits::Bf16;
    /// The bits shifted into the high half: exact, and a plain shift the compiler vectorises
    /// (`half`'s conversion also quiets NaNs, a branch per element).
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits((self.to_bits() as u32) << 16)
    }
}

/// `y[m, n] = x[m, k] · W[n, k]ᵀ + b` streaming each weight row once for all `m` rows:
/// `column(j, out)` writes the `m` products with weight row `j` into `out`, then `bias[j]`
/// is added.
pub fn stream_columns(
    m: usize,
    n: usize,
    bias: Option<&[f32]>,
    y: &mut [f32],
    column: impl Fn(usize, &mut [f32]) + Sync,
) {
    // Column-major scratch so each task owns a contiguous block of outputs. Weight rows
    // are read in order, one continuous stream the hardware prefetcher follows.
    let mut yt = vec![0.0f32; n * m];
    yt.par_chunks_mut(COLS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, block)| {
            let j0 = task * COLS_PER_TASK;
            for (jj, out) in block.chunks_exact_mut(m).enumerate() {
                let j = j0 + jj;
                column(j, out);
                if let Some(b) = bias {
                    out.iter_mut().for_each(|v| *v += b[j]);
                }
            }
        });
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = yt[j * m + i];
        }
    }
}

/// `y[m, n] = x W[n, k]ᵀ + b` for `m ≤ MAX_ROWS` rows, `W` in any [`StreamWeight`].
pub fn linear<W: StreamWeight>(
    x: &[f32],
    m: usize,
    w: &[W],
    bias: Option<&[f32]>,
    n: usize,
    k: usize,
    y: &mut [f32],
) {
    assert!(m <= MAX_ROWS && w.len() == n * k && x.len() >= m * k && y.len() >= m * n);
    stream_columns(m, n, bias, y, |j, out| {
        dot_rows(x, m, k, &w[j * k..(j + 1) * k], out)
    });
}

/// `out[i] = x_i · w` for the `m` rows of `x`.
pub fn dot_rows<W: StreamWeight>(x: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let widen_ok = W::BITS != WeightBits::F16 || std::arch::is_x86_feature_detected!("f16c");
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && widen_ok
        {
            // SAFETY: the features were just detected; slices are bounds-checked inside.
            unsafe { simd::dot_rows(x, m, k, w, out) };
            return;
        }
    }
    for i in 0..m {
        let xr = &x[i * k..(i + 1) * k];
        let mut acc = [0.0f32; 8];
        let chunks = k / 8;
        for c in 0..chunks {
            for l in 0..8 {
                acc[l] += xr[c * 8 + l] * w[c * 8 + l].widen();
            }
        }
        let mut s: f32 = acc.iter().sum();
        for t in chunks * 8..k {
            s += xr[t] * w[t].widen();
        }
        out[i] = s;
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{StreamWeight, WeightBits, MAX_ROWS};
    use std::arch::x86_64::*;

    /// Eight weights from `p`, widened.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8<W: StreamWeight>(p: *const W) -> __m256 {
        match W::BITS {
            WeightBits::F32 => _mm256_loadu_ps(p as *const f32),
            WeightBits::F16 => _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
            WeightBits::Bf16 => _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)),
                16,
            )),
        }
    }

    /// The scalar tail of a dot product (the last `k % 8` terms).
    #[inline(always)]
    fn tail<W: StreamWeight>(x: &[f32], w: &[W], from: usize) -> f32 {
        (from..w.len()).map(|t| x[t] * w[t].widen()).sum()
    }

    // The F16C feature is enabled for every weight type: `super::dot_rows` checks it before
    // taking this path with fp16 weights, and the f32 and bf16 loads do not use it.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_rows<W: StreamWeight>(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[W],
        out: &mut [f32],
    ) {
        assert!(x.len() >= m * k && w.len() >= k && out.len() >= m && m <= MAX_ROWS);
        let w = &w[..k];
        let chunks = k / 8;
        let xp = x.as_ptr();
        let wp = w.as_ptr();
        if m <= 2 {
            // Few rows: split each dot product over four chains so the FMA latency is hidden.
            let quads = chunks / 4;
            for i in 0..m {
                let mut a = [_mm256_setzero_ps(); 4];
                for c in 0..quads {
                    for (l, acc) in a.iter_mut().enumerate() {
                        let off = (c * 4 + l) * 8;
                        *acc = _mm256_fmadd_ps(
                            _mm256_loadu_ps(xp.add(i * k + off)),
                            load8(wp.add(off)),
                            *acc,
                        );
                    }
                }
                for c in quads * 4..chunks {
                    let off = c * 8;
                    a[0] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(xp.add(i * k + off)),
                        load8(wp.add(off)),
                        a[0],
                    );
                }
                let sum = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
                out[i] = hsum(sum) + tail(&x[i * k..(i + 1) * k], w, chunks * 8);
            }
            return;
        }
        // A row count known at compile time keeps every accumulator in a register.
        match m {
            3 => fixed::<3, W>(x, k, w, out),
            4 => fixed::<4, W>(x, k, w, out),
            5 => fixed::<5, W>(x, k, w, out),
            6 => fixed::<6, W>(x, k, w, out),
            7 => fixed::<7, W>(x, k, w, out),
            _ => fixed::<8, W>(x, k, w, out),
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn fixed<const M: usize, W: StreamWeight>(
        x: &[f32],
        k: usize,
        w: &[W],
        out: &mut [f32],
    ) {
        assert!(x.len() >= M * k && w.len() >= k && out.len() >= M);
        let chunks = k / 8;
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let mut acc = [_mm256_setzero_ps(); M];
        for c in 0..chunks {
            let wv = load8(wp.add(c * 8));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(i * k + c * 8)), wv, *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            out[i] = hsum(*a) + tail(&x[i * k..(i + 1) * k], w, chunks * 8);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// `w` as fp16 if every value is exactly an fp16 (weights of an fp16 model, widened at load):
/// then the fp16 layer computes the same numbers as the f32 one.
pub fn exact_f16(w: &[f32]) -> Option<Vec<half::f16>> {
    let narrow: Vec<half::f16> = w.par_iter().map(|&v| half::f16::from_f32(v)).collect();
    let exact = narrow
        .par_iter()
        .zip(w.par_iter())
        .all(|(h, &v)| h.to_f32().to_bits() == v.to_bits());
    exact.then_some(narrow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(i: usize) -> f32 {
        ((i * 2654435761) % 2000) as f32 / 1000.0 - 1.0
    }

    #[test]
    fn fp16_weights_give_the_bits_of_their_f32_widening() {
        // k not a multiple of 8 (a tail) nor of 32 (the m ≤ 2 chains' remainder).
        let (n, k) = (300, 77);
        let w16: Vec<half::f16> = (0..n * k).map(|i| half::f16::from_f32(value(i))).collect();
        let w32: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let bias: Vec<f32> = (0..n).map(|i| value(i + 3)).collect();
        for m in 1..=MAX_ROWS {
            let x: Vec<f32> = (0..m * k).map(|i| value(i + 11)).collect();
            let (mut a, mut b) = (vec![0.0; m * n], vec![0.0; m * n]);
            linear(&x, m, &w16, Some(&bias), n, k, &mut a);
            linear(&x, m, &w32, Some(&bias), n, k, &mut b);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "m = {m}");
            // And both are the product, against float64.
            for i in 0..m {
                for j in 0..n {
                    let want = bias[j] as f64
                        + (0..k)
                            .map(|t| x[i * k + t] as f64 * w32[j * k + t] as f64)
                            .sum::<f64>();
                    assert!((a[i * n + j] as f64 - want).abs() < 1e-4, "({i},{j})");
                }
            }
        }
    }
}
