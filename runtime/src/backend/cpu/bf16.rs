//! bf16 numerics on the host: values rounded to the nearest bf16 (ties to even), and dense
//! layers with bf16 weights (rounded once at load) computed in f32 ([`super::narrow`]).

use rayon::prelude::*;

use super::narrow::NarrowLinear;

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

/// A bf16-weight layer: `w` (`[n, k]`) rounded to bf16.
pub fn linear(w: &[f32], bias: Option<Vec<f32>>, n: usize, k: usize) -> NarrowLinear<half::bf16> {
    let w = w.par_iter().map(|&v| half::bf16::from_f32(v)).collect();
    NarrowLinear::new(w, bias, n, k)
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
        let lin = linear(&w, Some(bias.clone()), n, k);
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
