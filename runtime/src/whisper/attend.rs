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
    // Keys, then values, are streamed once for all rows: key `t` is scored against every row
    // while it is in cache (beam hypotheses share the cross K/V of their window).
    let visible: Vec<usize> = (0..rows).map(|i| visible(i).min(kv.len)).collect();
    let longest = visible.iter().copied().max().unwrap_or(0);
    let mut scores = vec![0.0f32; rows * longest];
    for t in 0..longest {
        let kt = &kv.k[t * kv.stride..t * kv.stride + hd];
        for (i, &n) in visible.iter().enumerate() {
            if t < n {
                scores[i * longest + t] = dot(&q[i * q_stride..i * q_stride + hd], kt) * scale;
            }
        }
    }
    for (i, &n) in visible.iter().enumerate() {
        softmax_in_place(&mut scores[i * longest..i * longest + n]);
        out[i * out_stride..i * out_stride + hd].fill(0.0);
    }
    for t in 0..longest {
        let vt = &kv.v[t * kv.stride..t * kv.stride + hd];
        for (i, &n) in visible.iter().enumerate() {
            if t < n {
                let p = scores[i * longest + t];
                axpy(&mut out[i * out_stride..i * out_stride + hd], p, vt);
            }
        }
    }
    keep.then(|| {
        let mut kept = vec![0.0f32; rows * kv.len];
        for (i, &n) in visible.iter().enumerate() {
            kept[i * kv.len..i * kv.len + n]
                .copy_from_slice(&scores[i * longest..i * longest + n]);
        }
        kept
    })
}

/// Columns of scores, or of the output, that one pass keeps in registers (8 AVX vectors).
const BLOCK: usize = 64;

/// One head's cross-attention keys transposed, `kt` = `[hd, len]`, and values `v` = `[len, hd]`:
/// the layout that lets a decoder step compute every score and every output as
/// broadcast-times-vector multiply-adds held in registers, with no horizontal sums.
pub struct CrossHead<'a> {
    pub kt: &'a [f32],
    pub v: &'a [f32],
    pub len: usize,
}

/// Like [`attend_rows`] over all `kv.len` keys, for the transposed-key layout of [`CrossHead`].
#[allow(clippy::too_many_arguments)]
pub fn attend_cross_rows(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &CrossHead,
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
                attend_cross_rows_avx2(q, q_stride, rows, hd, kv, scale, out, out_stride, keep)
            };
        }
    }
    attend_cross_rows_impl(q, q_stride, rows, hd, kv, scale, out, out_stride, keep)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn attend_cross_rows_avx2(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &CrossHead,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
    keep: bool,
) -> Option<Vec<f32>> {
    attend_cross_rows_impl(q, q_stride, rows, hd, kv, scale, out, out_stride, keep)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_cross_rows_impl(
    q: &[f32],
    q_stride: usize,
    rows: usize,
    hd: usize,
    kv: &CrossHead,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
    keep: bool,
) -> Option<Vec<f32>> {
    let len = kv.len;
    assert!(kv.kt.len() >= hd * len && kv.v.len() >= len * hd);
    let mut scores = vec![0.0f32; rows * len];
    // Scores, a block of keys at a time: the block's slice of every key dimension stays in L1
    // while each query row accumulates over the dimensions.
    for t0 in (0..len).step_by(BLOCK) {
        let w = BLOCK.min(len - t0);
        for i in 0..rows {
            let qi = &q[i * q_stride..i * q_stride + hd];
            let mut acc = [0.0f32; BLOCK];
            if w == BLOCK {
                for (j, &qj) in qi.iter().enumerate() {
                    let krow: &[f32; BLOCK] = kv.kt[j * len + t0..j * len + t0 + BLOCK]
                        .try_into()
                        .expect("block");
                    for l in 0..BLOCK {
                        acc[l] += qj * krow[l];
                    }
                }
            } else {
                for (j, &qj) in qi.iter().enumerate() {
                    let krow = &kv.kt[j * len + t0..j * len + t0 + w];
                    for l in 0..w {
                        acc[l] += qj * krow[l];
                    }
                }
            }
            for l in 0..w {
                scores[i * len + t0 + l] = acc[l] * scale;
            }
        }
    }
    for row in scores.chunks_exact_mut(len) {
        softmax_in_place(row);
    }
    // Weighted sums, a block of output dimensions at a time, streaming the value rows.
    for i in 0..rows {
        let p = &scores[i * len..(i + 1) * len];
        for j0 in (0..hd).step_by(BLOCK) {
            let w = BLOCK.min(hd - j0);
            let mut acc = [0.0f32; BLOCK];
            if w == BLOCK {
                for (t, &pt) in p.iter().enumerate() {
                    let vrow: &[f32; BLOCK] = kv.v[t * hd + j0..t * hd + j0 + BLOCK]
                        .try_into()
                        .expect("block");
                    for l in 0..BLOCK {
                        acc[l] += pt * vrow[l];
                    }
                }
            } else {
                for (t, &pt) in p.iter().enumerate() {
                    let vrow = &kv.v[t * hd + j0..t * hd + j0 + w];
                    for l in 0..w {
                        acc[l] += pt * vrow[l];
                    }
                }
            }
            out[i * out_stride + j0..i * out_stride + j0 + w].copy_from_slice(&acc[..w]);
        }
    }
    keep.then_some(scores)
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
