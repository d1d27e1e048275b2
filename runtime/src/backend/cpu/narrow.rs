//! Dense layers whose weights are stored in 16 bits (fp16 or bf16) and computed in f32.
//! Decoder steps stream the 16-bit rows and widen them in registers
//! ([`crate::whisper::stream`]): half the bytes of f32 for the same multiply-adds. Products
//! of many rows (the encoder) widen the matrix once per call and run the f32 GEMM, whose
//! packing copies the weights anyway.

use rayon::prelude::*;

use crate::whisper::ops;
pub use crate::whisper::stream::exact_f16;
use crate::whisper::stream::{self, StreamWeight};

pub struct NarrowLinear<W> {
    /// `[n, k]`, one row per output channel.
    w: Vec<W>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

impl<W: StreamWeight> NarrowLinear<W> {
    pub fn new(w: Vec<W>, bias: Option<Vec<f32>>, n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weights of a {n}×{k} layer");
        Self { w, bias, n, k }
    }

    /// `y[rows, n] = x Wᵀ + b`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        if rows <= stream::MAX_ROWS {
            stream::linear(x, rows, &self.w, self.bias.as_deref(), n, k, y);
            return;
        }
        let wide: Vec<f32> = self.w.par_iter().map(|v| v.widen()).collect();
        ops::linear_into(x, rows, &wide, self.bias.as_deref(), n, k, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_f16_keeps_only_lossless_weights() {
        // 2⁻²⁴ is the smallest fp16 subnormal.
        let fp16_values = [0.5f32, -1.25, 0.0, -0.0, 65504.0, 2.0f32.powi(-24)];
        assert!(exact_f16(&fp16_values).is_some());
        // 0.1 has no exact fp16; nor has an f32 beyond fp16's range.
        assert!(exact_f16(&[0.5, 0.1]).is_none());
        assert!(exact_f16(&[1.0e6]).is_none());
    }

    #[test]
    fn many_rows_match_the_f32_layer_bit_for_bit() {
        let (n, k, rows) = (40, 24, 20);
        let f = |i: usize| ((i * 40503) % 512) as f32 / 256.0 - 1.0;
        let w32: Vec<f32> = (0..n * k).map(f).collect();
        let w16 = exact_f16(&w32).expect("multiples of 1/256 in [-1, 1) are fp16");
        let bias: Vec<f32> = (0..n).map(|i| f(i + 1)).collect();
        let x: Vec<f32> = (0..rows * k).map(|i| f(i + 7) * 0.3).collect();
        let narrow = NarrowLinear::new(w16, Some(bias.clone()), n, k);
        let (mut a, mut b) = (vec![0.0; rows * n], vec![0.0; rows * n]);
        narrow.forward(&x, rows, &mut a);
        ops::linear_into(&x, rows, &w32, Some(&bias), n, k, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}
