//! Element-wise and reduction kernels of the forward pass written so the compiler vectorises
//! them: eight independent lanes for every reduction (a single running sum is a serial
//! dependency chain and cannot be), and branch-free polynomial `exp` / `erf` in place of libm's
//! scalar calls. Each public function is compiled for AVX-512, for AVX2+FMA and for the
//! baseline target, the widest the CPU has chosen at run time (the same bits from each).

const LANES: usize = 8;

/// Defines `pub fn $name` whose body is compiled three times, for AVX-512, for AVX2+FMA and
/// for the baseline, picking the widest the CPU has at run time. The builds give the same bits:
/// every reduction's order is fixed by its explicit lanes, not by the vector width, and Rust
/// never contracts a multiply and an add into an FMA (tested: `builds_give_the_same_bits`).
/// The builds live in a module of the same name (`$name::imp`, `::avx2`, `::avx512`).
macro_rules! dispatch {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx512() {
                    // SAFETY: the CPU features were detected.
                    return unsafe { $name::avx512($($arg),*) };
                }
                if has_avx2() {
                    // SAFETY: the CPU features were detected.
                    return unsafe { $name::avx2($($arg),*) };
                }
            }
            $name::imp($($arg),*)
        }

        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[inline(always)]
            pub(super) fn imp($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            pub(super) unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    has_avx2()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// `e^x` in f32, relative error below 2e-7 over the normal range; exactly 0 below -87.3
/// (where `e^x` leaves the normal floats) and for -inf, which masked scores rely on.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and the remainder (Cody–Waite reduction).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.3, 88.0);
    let n = (xc * LOG2E + 0.5).floor();
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial for e^r on |r| <= ln2/2.
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n through the exponent bits; n is within [-126, 128] after the clamp. The integer
    // comes from the float's own bits (n + 1.5 * 2^23 holds n in its low mantissa bits)
    // rather than a saturating `as i32`, which does not vectorise; the same integer.
    const SHIFTER: f32 = 12_582_912.0;
    let n_int = (n + SHIFTER).to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127).clamp(0, 255) as u32) << 23);
    if x < -87.3 {
        0.0
    } else {
        y * scale
    }
}

/// The error function, absolute error below 1e-6 in f32 (the Abramowitz & Stegun 7.1.26
/// form, whose own error is 1.5e-7, plus f32 rounding of `1 - ...`).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4;
    p = p * t - 1.453_152;
    p = p * t + 1.421_413_7;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let y = 1.0 - p * t * exp(-a * a);
    if x < 0.0 {
        -y
    } else {
        y
    }
}

#[inline(always)]
fn lanes_max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    rest.iter()
        .chain(acc.iter())
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn lanes_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// `Σ e^(v_i - shift)`.
#[inline(always)]
fn lanes_sum_exp(v: &[f32], shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += exp(c[l] - shift);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| exp(x - shift)).sum::<f32>()
}

dispatch! {
    /// Largest element (-inf for an empty slice).
    pub fn max(v: &[f32]) -> f32 {
        lanes_max(v)
    }
}

dispatch! {
    /// Numerically stable softmax of one row, in place. A row of only -inf is left as is.
    pub fn softmax_in_place(row: &mut [f32]) {
        let max = lanes_max(row);
        if max == f32::NEG_INFINITY {
            return;
        }
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / lanes_sum(row);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

dispatch! {
    /// `log Σ e^v` (-inf for an empty or all -inf slice).
    pub fn log_sum_exp(v: &[f32]) -> f32 {
        let max = lanes_max(v);
        if max == f32::NEG_INFINITY {
            return max;
        }
        max + lanes_sum_exp(v, max).ln()
    }
}

dispatch! {
    /// `log_softmax` of one row into a new vector.
    pub fn log_softmax(row: &[f32]) -> Vec<f32> {
        let max = lanes_max(row);
        if max == f32::NEG_INFINITY {
            return row.to_vec();
        }
        let lse = max + lanes_sum_exp(row, max).ln();
        row.iter().map(|&v| v - lse).collect()
    }
}

dispatch! {
    /// GELU with the error function, as Whisper's `nn.GELU()`, in place.
    pub fn gelu_in_place(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

dispatch! {
    /// `y = (x - mean) / sqrt(var + eps) * gamma + beta` over one row.
    pub fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
        let n = x.len() as f32;
        let mean = lanes_sum(x) / n;
        let mut acc = [0.0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let d = c[l] - mean;
                acc[l] += d * d;
            }
        }
        let var = (acc.iter().sum::<f32>() + rest.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (((yv, &xv), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
            *yv = (xv - mean) * inv * g + b;
        }
    }
}

dispatch! {
    /// `a += b`, element-wise.
    pub fn add_in_place(a: &mut [f32], b: &[f32]) {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AVX-512, AVX2 and the baseline give the same bits for every kernel, on lengths with
    /// and without remainders, values over the softmax and GELU ranges, -inf included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn builds_give_the_same_bits() {
        assert!(
            has_avx512(),
            "this test is for the AVX-512 machines aiec targets"
        );
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 24.0 - 12.0
        };
        for n in [1usize, 7, 8, 15, 16, 17, 64, 1500, 1501] {
            let mut x: Vec<f32> = (0..n).map(|_| next()).collect();
            if n > 3 {
                x[2] = f32::NEG_INFINITY;
            }
            let other: Vec<f32> = (0..n).map(|_| next()).collect();
            // SAFETY (every unsafe call below): the features were asserted above.
            unsafe {
                for f in [softmax_in_place::avx512, softmax_in_place::avx2] {
                    let (mut a, mut b) = (x.clone(), x.clone());
                    f(&mut a);
                    softmax_in_place::imp(&mut b);
                    assert!(same(&a, &b), "softmax {n}");
                }
                for f in [gelu_in_place::avx512, gelu_in_place::avx2] {
                    let (mut a, mut b) = (x.clone(), x.clone());
                    f(&mut a);
                    gelu_in_place::imp(&mut b);
                    assert!(same(&a, &b), "gelu {n}");
                }
                for f in [add_in_place::avx512, add_in_place::avx2] {
                    let (mut a, mut b) = (x.clone(), x.clone());
                    f(&mut a, &other);
                    add_in_place::imp(&mut b, &other);
                    assert!(same(&a, &b), "add {n}");
                }
                let finite: Vec<f32> = x.iter().map(|v| v.max(-30.0)).collect();
                for f in [layer_norm_row::avx512, layer_norm_row::avx2] {
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    f(
                        &finite,
                        &other,
                        &x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(),
                        1e-5,
                        &mut a,
                    );
                    layer_norm_row::imp(
                        &finite,
                        &other,
                        &x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(),
                        1e-5,
                        &mut b,
                    );
                    assert!(same(&a, &b), "layernorm {n}");
                }
                for f in [log_softmax::avx512, log_softmax::avx2] {
                    assert!(same(&f(&x), &log_softmax::imp(&x)), "log_softmax {n}");
                }
                for f in [log_sum_exp::avx512, log_sum_exp::avx2] {
                    assert_eq!(f(&x).to_bits(), log_sum_exp::imp(&x).to_bits(), "lse {n}");
                }
                for f in [max::avx512, max::avx2] {
                    assert_eq!(f(&x).to_bits(), max::imp(&x).to_bits(), "max {n}");
                }
            }
        }
    }

    #[test]
    fn exp_matches_f64_over_the_softmax_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + i as f64 * (87.0 + 88.0) / 200_000.0;
            let got = exp(x as f32) as f64;
            let want = (x as f32 as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_matches_f64_reference() {
        // erf from its Maclaurin series in f64 (converges fast for |x| <= 3), and erf(x) -> ±1.
        let reference = |x: f64| {
            if x.abs() > 3.5 {
                return x.signum() * (1.0 - 1e-7f64.min((-x * x).exp()));
            }
            let (mut term, mut sum, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        let mut worst = 0.0f64;
        for i in 0..=16_000 {
            let x = -8.0 + i as f64 * 0.001;
            worst = worst.max((erf(x as f32) as f64 - reference(x as f32 as f64)).abs());
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
    }

    #[test]
    fn reductions_match_f64_on_odd_lengths() {
        let v: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&v), m);
        let lse: f64 = v.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&v) as f64 - lse).abs() < 1e-5);
        let ls = log_softmax(&v);
        for (l, &x) in ls.iter().zip(&v) {
            assert!((*l as f64 - (x as f64 - lse)).abs() < 1e-5);
        }
        let mut s = v.clone();
        softmax_in_place(&mut s);
        for (p, &x) in s.iter().zip(&v) {
            assert!((*p as f64 - (x as f64 - lse).exp()).abs() < 1e-7);
        }
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    }

    #[test]
    fn layer_norm_row_matches_f64() {
        let x: Vec<f32> = (0..517)
            .map(|i| ((i * 13 % 29) as f32) * 0.3 - 4.0)
            .collect();
        let g: Vec<f32> = (0..517).map(|i| 1.0 + (i % 5) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..517).map(|i| (i % 3) as f32 * 0.01).collect();
        let mut y = vec![0.0; 517];
        layer_norm_row(&x, &g, &b, 1e-5, &mut y);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        for i in 0..517 {
            let want = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * g[i] as f64 + b[i] as f64;
            assert!((y[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", y[i]);
        }
    }
}
