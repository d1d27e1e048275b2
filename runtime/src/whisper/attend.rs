//! Attention for a few query rows (decoder steps): scores, softmax and the weighted sum in one
//! pass per head, reading keys and values in place from the cache / cross K/V layout. General
//! matrix products would pack (copy) the whole key matrix for every step.

use super::ops::softmax_in_place;

/// Keys and values of one head: row `t` of each starts at `t * stride`, `hd` floats long.
pub struct HeadKv<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub stride: usize,
    pub len: usize,
}

/// For each query row `i` (`q[i * q_stride..][..hd]`), attends over the first `visible(i)` keys.
/// Writes `out[i * out_stride..][..hd]`; returns the weights `[rows, kv.len]` if `keep`.
#[allow(clippy::too_many_arguments)]
pub fn attend_rows(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &HeadKv,
    visible: &dyn Fn(usize) -> usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
    keep: bool,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU features were just detected.
            return unsafe {
                attend_rows_avx2(
                    q, q_stride, rows, hd, kv, visible, scale, out, out_stride, keep,
                )
            };
        }
    }
    attend_rows_impl(
        q, q_stride, rows, hd, kv, visible, scale, out, out_stride, keep,
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn attend_rows_avx2(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &HeadKv,
    visible: &dyn Fn(usize) -> usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
    keep: bool,
) -> Option<Vec<f32>> {
    attend_rows_impl(
        q, q_stride, rows, hd, kv, visible, scale, out, out_stride, keep,
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_rows_impl(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &HeadKv,
    visible: &dyn Fn(usize) -> usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
    keep: bool,
) -> Option<Vec<f32>> {
    let mut kept = keep.then(|| vec![0.0f32; rows * kv.len]);
    let mut scores = vec![0.0f32; kv.len];
    for i in 0..rows {
        let qi = &q[i * q_stride..i * q_stride + hd];
        let n = visible(i).min(kv.len);
        for (t, score) in scores[..n].iter_mut().enumerate() {
            *score = dot(qi, &kv.k[t * kv.stride..t * kv.stride + hd]) * scale;
        }
        softmax_in_place(&mut scores[..n]);
        let o = &mut out[i * out_stride..i * out_stride + hd];
        o.fill(0.0);
        for (t, &p) in scores[..n].iter().enumerate() {
            axpy(o, p, &kv.v[t * kv.stride..t * kv.stride + hd]);
        }
        if let Some(k) = kept.as_mut() {
            k[i * kv.len..i * kv.len + n].copy_from_slice(&scores[..n]);
        }
    }
    kept
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for t in chunks * 8..n {
        s += a[t] * b[t];
    }
    s
}

#[inline(always)]
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += alpha * b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_float64_attention_with_causal_limit() {
        let (rows, hd, len, stride) = (3, 16, 10, 40);
        let f = |i: usize| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        let q: Vec<f32> = (0..rows * hd).map(f).collect();
        let k: Vec<f32> = (0..len * stride).map(|i| f(i + 7)).collect();
        let v: Vec<f32> = (0..len * stride).map(|i| f(i + 13)).collect();
        let kv = HeadKv {
            k: &k,
            v: &v,
            stride,
            len,
        };
        let mut out = vec![0.0f32; rows * hd];
        let vis = |i: usize| 5 + i;
        let w = attend_rows(&q, hd, rows, hd, &kv, &vis, 0.25, &mut out, hd, true).unwrap();
        for i in 0..rows {
            let n = vis(i);
            let s: Vec<f64> = (0..n)
                .map(|t| {
                    (0..hd)
                        .map(|l| q[i * hd + l] as f64 * k[t * stride + l] as f64)
                        .sum::<f64>()
                        * 0.25
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for l in 0..hd {
                let r: f64 = (0..n).map(|t| e[t] / z * v[t * stride + l] as f64).sum();
                assert!((out[i * hd + l] as f64 - r).abs() < 1e-5);
            }
            assert!((w[i * len..i * len + n].iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(w[i * len + n..(i + 1) * len].iter().all(|&x| x == 0.0));
        }
    }
}
