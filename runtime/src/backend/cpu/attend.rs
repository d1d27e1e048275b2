//! Attention for a few query rows (decoder steps): scores, softmax and the weighted sum in one
//! pass per head, reading keys and values in place from the cache / cross K/V layout. General
//! matrix products would pack (copy) the whole key matrix for every step.

use crate::whisper::ops::softmax_in_place;
use crate::whisper::stream::StreamWeight;

/// Columns of scores, or of the output, that one pass keeps in registers (8 AVX vectors).
const BLOCK: usize = 64;

/// One head's keys transposed and its values: key dimension `j` of position `t` is
/// `kt[j * kt_stride + t]`, value row `t` is `v[t * hd..][..hd]`; `len` positions are filled.
/// This layout lets a decoder step compute every score and every output as
/// broadcast-times-vector multiply-adds held in registers, with no horizontal sums.
pub struct HeadKv<'a, W = f32> {
    pub kt: &'a [W],
    pub kt_stride: usize,
    pub v: &'a [W],
    pub len: usize,
}

/// A few query rows of one head: row `i` is `q[i * q_stride..][..hd]` and attends over the
/// first `visible(i)` positions (all of them when `visible` is `None`; a causal limit
/// otherwise), its scores scaled by `scale`. Output row `i` goes to
/// `out[i * out_stride..][..hd]`; `keep` asks for the softmax weights.
pub struct RowQueries<'a> {
    pub q: &'a [f32],
    pub q_stride: usize,
    pub rows: usize,
    pub hd: usize,
    pub visible: Option<&'a dyn Fn(usize) -> usize>,
    pub scale: f32,
    pub out_stride: usize,
    pub keep: bool,
}

/// Attends the rows of `rq` over `kv` into `out`; returns the weights `[rows, kv.len]` if
/// `rq.keep`.
pub fn attend_rows<W: StreamWeight>(
    rq: &RowQueries,
    kv: &HeadKv<W>,
    out: &mut [f32],
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU features were just detected.
            return unsafe { attend_rows_avx512(rq, kv, out) };
        }
        if avx2 {
            // SAFETY: the CPU features were just detected.
            return unsafe { attend_rows_avx2(rq, kv, out) };
        }
    }
    attend_rows_impl(rq, kv, out)
}

/// The same code on 512-bit vectors (a block is four of them): the same multiplies and adds
/// in the same order, so the same bits as the AVX2 build (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn attend_rows_avx512<W: StreamWeight>(
    rq: &RowQueries,
    kv: &HeadKv<W>,
    out: &mut [f32],
) -> Option<Vec<f32>> {
    attend_rows_impl(rq, kv, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_rows_avx2<W: StreamWeight>(
    rq: &RowQueries,
    kv: &HeadKv<W>,
    out: &mut [f32],
) -> Option<Vec<f32>> {
    attend_rows_impl(rq, kv, out)
}

#[inline(always)]
fn attend_rows_impl<W: StreamWeight>(
    rq: &RowQueries,
    kv: &HeadKv<W>,
    out: &mut [f32],
) -> Option<Vec<f32>> {
    let RowQueries {
        q,
        q_stride,
        rows,
        hd,
        visible,
        scale,
        out_stride,
        keep,
    } = *rq;
    let (len, ks) = (kv.len, kv.kt_stride);
    assert!(hd > 0 && kv.kt.len() >= (hd - 1) * ks + len && kv.v.len() >= len * hd);
    let visible: Vec<usize> = (0..rows)
        .map(|i| visible.map_or(len, |f| f(i).min(len)))
        .collect();
    let mut scores = vec![0.0f32; rows * len];
    // Scores, a block of keys at a time: the block's slice of every key dimension stays in L1
    // while each query row accumulates over the dimensions.
    for t0 in (0..len).step_by(BLOCK) {
        let w = BLOCK.min(len - t0);
        for i in 0..rows {
            let qi = &q[i * q_stride..i * q_stride + hd];
            let acc = combine_rows(qi, kv.kt, ks, t0, w);
            for l in 0..w {
                scores[i * len + t0 + l] = acc[l] * scale;
            }
        }
    }
    for (row, &n) in scores.chunks_exact_mut(len).zip(&visible) {
        row[n..].fill(0.0);
        softmax_in_place(&mut row[..n]);
    }
    // Weighted sums, a block of output dimensions at a time, streaming the value rows.
    for (i, &n) in visible.iter().enumerate() {
        let p = &scores[i * len..i * len + n];
        for j0 in (0..hd).step_by(BLOCK) {
            let w = BLOCK.min(hd - j0);
            let acc = combine_rows(p, kv.v, hd, j0, w);
            out[i * out_stride + j0..i * out_stride + j0 + w].copy_from_slice(&acc[..w]);
        }
    }
    keep.then_some(scores)
}

/// `Σ_r c_r · src[r * stride + off..][..w]` over the coefficients `c`, for `w <= BLOCK`
/// columns: a full block compiles to multiply-adds on vectors held in registers.
#[inline(always)]
fn combine_rows<W: StreamWeight>(
    coeffs: &[f32],
    src: &[W],
    stride: usize,
    off: usize,
    w: usize,
) -> [f32; BLOCK] {
    let mut acc = [0.0f32; BLOCK];
    if w == BLOCK {
        for (r, &c) in coeffs.iter().enumerate() {
            let row: &[W; BLOCK] = src[r * stride + off..r * stride + off + BLOCK]
                .try_into()
                .expect("block");
            for l in 0..BLOCK {
                acc[l] += c * row[l].widen();
            }
        }
    } else {
        for (r, &c) in coeffs.iter().enumerate() {
            let row = &src[r * stride + off..r * stride + off + w];
            for l in 0..w {
                acc[l] += c * row[l].widen();
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores, softmax and weighted sum in f64 from row-major keys `k[t][hd]`.
    fn reference(q: &[f32], k: &[f32], v: &[f32], hd: usize, n: usize, scale: f64) -> Vec<f64> {
        let s: Vec<f64> = (0..n)
            .map(|t| {
                (0..hd)
                    .map(|l| q[l] as f64 * k[t * hd + l] as f64)
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..hd)
            .map(|l| (0..n).map(|t| e[t] / z * v[t * hd + l] as f64).sum())
            .collect()
    }

    #[test]
    fn matches_float64_attention_with_and_without_causal_limit() {
        // 150 positions: two full key blocks and a partial one; a key stride wider than len.
        let (rows, hd, len, kt_stride) = (3, 64, 150, 170);
        let f = |i: usize| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        let q: Vec<f32> = (0..rows * hd).map(f).collect();
        let k: Vec<f32> = (0..len * hd).map(|i| f(i + 7)).collect();
        let v: Vec<f32> = (0..len * hd).map(|i| f(i + 13)).collect();
        let mut kt = vec![f32::NAN; hd * kt_stride];
        for t in 0..len {
            for j in 0..hd {
                kt[j * kt_stride + t] = k[t * hd + j];
            }
        }
        let kv = HeadKv {
            kt: &kt,
            kt_stride,
            v: &v,
            len,
        };
        let causal = |i: usize| 70 + i;
        for limit in [None, Some(&causal as &dyn Fn(usize) -> usize)] {
            let mut out = vec![0.0f32; rows * hd];
            let rq = RowQueries {
                q: &q,
                q_stride: hd,
                rows,
                hd,
                visible: limit,
                scale: 0.125,
                out_stride: hd,
                keep: true,
            };
            let w = attend_rows(&rq, &kv, &mut out).unwrap();
            for i in 0..rows {
                let n = limit.map_or(len, |f| f(i));
                let r = reference(&q[i * hd..(i + 1) * hd], &k, &v, hd, n, 0.125);
                for l in 0..hd {
                    let err = (out[i * hd + l] as f64 - r[l]).abs();
                    assert!(err < 1e-5, "row {i} dim {l}: {err}");
                }
                let row = &w[i * len..(i + 1) * len];
                assert!((row[..n].iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(row[n..].iter().all(|&x| x == 0.0));
            }
        }
    }

    #[test]
    fn a_bf16_store_gives_the_bits_of_its_f32_widening() {
        let (rows, hd, len, kt_stride) = (2, 64, 130, 140);
        let f = |i: usize| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        let q: Vec<f32> = (0..rows * hd).map(f).collect();
        let kt16: Vec<half::bf16> = (0..hd * kt_stride)
            .map(|i| half::bf16::from_f32(f(i + 3)))
            .collect();
        let v16: Vec<half::bf16> = (0..len * hd)
            .map(|i| half::bf16::from_f32(f(i + 5)))
            .collect();
        let (kt32, v32): (Vec<f32>, Vec<f32>) = (
            kt16.iter().map(|v| v.to_f32()).collect(),
            v16.iter().map(|v| v.to_f32()).collect(),
        );
        let rq = RowQueries {
            q: &q,
            q_stride: hd,
            rows,
            hd,
            visible: None,
            scale: 0.125,
            out_stride: hd,
            keep: false,
        };
        let (mut a, mut b) = (vec![0.0f32; rows * hd], vec![0.0f32; rows * hd]);
        let head16 = HeadKv {
            kt: &kt16,
            kt_stride,
            v: &v16,
            len,
        };
        let head32 = HeadKv {
            kt: &kt32,
            kt_stride,
            v: &v32,
            len,
        };
        attend_rows(&rq, &head16, &mut a);
        attend_rows(&rq, &head32, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    /// The AVX-512, AVX2 and baseline builds give the same bits, f32 and bf16 stores, full
    /// and partial blocks, with and without a causal limit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_build_gives_the_same_bits() {
        assert!(std::arch::is_x86_feature_detected!("avx512bw"));
        let (rows, hd, len, kt_stride) = (3, 64, 150, 170);
        let f = |i: usize| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        let q: Vec<f32> = (0..rows * hd).map(f).collect();
        let kt: Vec<f32> = (0..hd * kt_stride).map(|i| f(i + 7)).collect();
        let v: Vec<f32> = (0..len * hd).map(|i| f(i + 13)).collect();
        let kt16: Vec<half::bf16> = kt.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let v16: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let causal = |i: usize| 70 + i;
        for limit in [None, Some(&causal as &dyn Fn(usize) -> usize)] {
            let rq = RowQueries {
                q: &q,
                q_stride: hd,
                rows,
                hd,
                visible: limit,
                scale: 0.125,
                out_stride: hd,
                keep: true,
            };
            fn all<W: StreamWeight>(rq: &RowQueries, kv: &HeadKv<W>) -> Vec<Vec<u32>> {
                let n = rq.rows * rq.hd;
                let (mut a, mut b, mut c) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
                // SAFETY: the features were asserted by the caller.
                let wa = unsafe { attend_rows_avx512(rq, kv, &mut a) }.unwrap();
                let wb = unsafe { attend_rows_avx2(rq, kv, &mut b) }.unwrap();
                let wc = attend_rows_impl(rq, kv, &mut c);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                vec![
                    bits(&a),
                    bits(&b),
                    bits(&c),
                    bits(&wa),
                    bits(&wb),
                    bits(&wc.unwrap()),
                ]
            }
            let dense = all(
                &rq,
                &HeadKv {
                    kt: &kt,
                    kt_stride,
                    v: &v,
                    len,
                },
            );
            let narrow = all(
                &rq,
                &HeadKv {
                    kt: &kt16,
                    kt_stride,
                    v: &v16,
                    len,
                },
            );
            for got in [&dense, &narrow] {
                assert_eq!(got[0], got[1]);
                assert_eq!(got[1], got[2]);
                assert_eq!(got[3], got[4]);
                assert_eq!(got[4], got[5]);
            }
        }
    }
}
