//! The dense primitives of the Whisper forward pass on the host: matrix products through the
//! `gemm` crate (packed, SIMD, multi-threaded), and the row-wise ops around them.
//! Row-major everywhere: a `[rows, cols]` matrix is `rows` runs of `cols` floats.

use gemm::Parallelism;

use super::vecmath;
use rayon::prelude::*;

/// Products smaller than this many multiply-adds run on one thread: splitting them costs
/// more than it saves (decoder steps are mostly such small products).
const PARALLEL_MIN_MACS: usize = 1 << 21;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A dense layer `y = x Wᵀ + b`, weights as CTranslate2 stores them: `[out, in]`.
pub struct Linear {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub out_dim: usize,
    pub in_dim: usize,
}

impl Linear {
    /// `x` is `[m, in]`; returns `[m, out]`.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; m * self.out_dim];
        self.forward_into(x, m, &mut y);
        y
    }

    pub fn forward_into(&self, x: &[f32], m: usize, y: &mut [f32]) {
        linear_into(
            x,
            m,
            &self.weight,
            self.bias.as_deref(),
            self.out_dim,
            self.in_dim,
            y,
        );
    }
}

/// `y[m, n] = x[m, k] · W[n, k]ᵀ + b`: a streaming GEMV for few rows, `gemm` otherwise.
pub fn linear_into(
    x: &[f32],
    m: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    k: usize,
    y: &mut [f32],
) {
    debug_assert_eq!(x.len(), m * k);
    debug_assert_eq!(y.len(), m * n);
    if m <= SKINNY_MAX_ROWS {
        stream::linear(x, m, weight, bias, n, k, y);
        return;
    }
    match bias {
        Some(b) => {
            for row in y.chunks_exact_mut(n) {
                row.copy_from_slice(b);
            }
        }
        None => y.fill(0.0),
    }
    // y[m,n] += x[m,k] · Wᵀ[k,n]; Wᵀ(kk, j) = W[j*k + kk]: row stride 1, column stride k.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            weight.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(m, n, k),
        );
    }
}

/// Up to this many input rows (decoder steps: one row per hypothesis) a product streams the
/// weights once instead of packing them: packing 100 MB of vocabulary projection for 5 rows
/// costs more than the arithmetic.
const SKINNY_MAX_ROWS: usize = stream::MAX_ROWS;

use super::stream;
pub use super::stream::stream_columns;

/// `c[m,n] = alpha · a[m,k] · b[k,n]` for arbitrary strides (used by attention on head slices).
/// Strides are (row stride, column stride) in elements.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    c_row_stride: usize,
    alpha: f32,
    threaded: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let max_a = (m - 1) * a_strides.0 + (k.max(1) - 1) * a_strides.1;
    let max_b = (k.max(1) - 1) * b_strides.0 + (n - 1) * b_strides.1;
    assert!(max_a < a.len() && max_b < b.len() && (m - 1) * c_row_stride + n <= c.len());
    let par = if threaded {
        parallelism(m, n, k)
    } else {
        Parallelism::None
    };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_row_stride as isize,
            false,
            a.as_ptr(),
            a_strides.1 as isize,
            a_strides.0 as isize,
            b.as_ptr(),
            b_strides.1 as isize,
            b_strides.0 as isize,
            0.0,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// Layer normalisation over the last dimension (epsilon 1e-5 as Whisper uses), in place.
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl LayerNorm {
    pub const EPS: f32 = 1e-5;

    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        self.forward_into(x, &mut y);
        y
    }

    pub fn forward_into(&self, x: &[f32], y: &mut [f32]) {
        let d = self.gamma.len();
        let work = |(xr, yr): (&[f32], &mut [f32])| {
            vecmath::layer_norm_row(xr, &self.gamma, &self.beta, Self::EPS, yr)
        };
        if x.len() >= 64 * d {
            x.par_chunks_exact(d)
                .zip(y.par_chunks_exact_mut(d))
                .for_each(work);
        } else {
            x.chunks_exact(d).zip(y.chunks_exact_mut(d)).for_each(work);
        }
    }
}

/// GELU with the exact error function, as Whisper's `nn.GELU()`.
pub fn gelu_in_place(x: &mut [f32]) {
    if x.len() >= 1 << 16 {
        x.par_chunks_mut(4096).for_each(vecmath::gelu_in_place);
    } else {
        vecmath::gelu_in_place(x);
    }
}

pub use super::vecmath::{add_in_place, log_softmax, softmax_in_place};

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_linear(x: &[f64], m: usize, w: &[f64], b: &[f64], n: usize, k: usize) -> Vec<f64> {
        let mut y = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = b[j] + (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f64>();
            }
        }
        y
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn linear_matches_float64_reference() {
        for &(m, k, n) in &[
            (1, 512, 1536),
            (5, 512, 2048),
            (7, 33, 5),
            (8, 70, 300),
            (300, 128, 260),
        ] {
            let x = pseudo_random(m * k, 1);
            let w = pseudo_random(n * k, 2);
            let b = pseudo_random(n, 3);
            let lin = Linear {
                weight: w.clone(),
                bias: Some(b.clone()),
                out_dim: n,
                in_dim: k,
            };
            let y = lin.forward(&x, m);
            let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            let r = reference_linear(&f(&x), m, &f(&w), &f(&b), n, k);
            let err = y
                .iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-4 * (k as f64).sqrt(),
                "m={m} k={k} n={n}: max err {err}"
            );
        }
    }

    #[test]
    fn layer_norm_normalises() {
        let d = 64;
        let x = pseudo_random(3 * d, 9);
        let ln = LayerNorm {
            gamma: vec![1.0; d],
            beta: vec![0.0; d],
        };
        let y = ln.forward(&x);
        for row in y.chunks(d) {
            let mean: f32 = row.iter().sum::<f32>() / d as f32;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / d as f32;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn gelu_known_values() {
        // GELU(x) = x Φ(x): Φ(1) = 0.841344746, Φ(-2) = 0.022750132.
        let mut v = [1.0f32, -2.0, 0.0];
        gelu_in_place(&mut v);
        assert!((v[0] - 0.841_344_7).abs() < 1e-6);
        assert!((v[1] + 0.045_500_26).abs() < 1e-6);
        assert_eq!(v[2], 0.0);
    }

    #[test]
    fn softmax_and_log_softmax_agree() {
        let mut row = vec![1.0f32, 2.0, 3.0, -1.0];
        let ls = log_softmax(&row);
        softmax_in_place(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for (p, l) in row.iter().zip(&ls) {
            assert!((p.ln() - l).abs() < 1e-5);
        }
    }
}
