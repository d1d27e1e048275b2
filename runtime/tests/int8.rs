//! The int8 numerics of `--precision int8` (shared with the NPU plan): the quantiser's
//! bound, and the VNNI / AVX2 / scalar kernels against an exact i64 reference.

use aiec_runtime::backend::cpu::int8::{self, Kernel, PackedI8, BLOCK_COLS};
use aiec_runtime::quant;

fn pseudo_random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
fn quantised_rows_round_trip_within_half_a_step() {
    for (len, scale) in [(1, 1.0), (7, 1e-3), (512, 3.0), (2048, 40.0), (33, 1e5)] {
        let x = pseudo_random(len, len as u64, scale);
        let mut q = vec![0i8; len];
        let s = quant::quantize_row(&x, &mut q);
        let max = x.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
        assert!((s as f64 - max / 127.0).abs() <= 1e-7 * max);
        let mut reached_max = false;
        for (&v, &qv) in x.iter().zip(&q) {
            assert!((-127..=127).contains(&qv), "{qv}");
            let err = (v as f64 - qv as f64 * s as f64).abs();
            assert!(
                err <= 0.5 * s as f64 * (1.0 + 1e-5),
                "{v} -> {qv} · {s}: {err}"
            );
            reached_max |= qv.unsigned_abs() == 127;
        }
        assert!(reached_max, "the largest magnitude maps to ±127");
    }
}

#[test]
fn ties_round_to_even() {
    // max 127 makes the scale exactly 1, so x · inv is x itself.
    let x = [127.0f32, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999];
    let mut q = [0i8; 8];
    assert_eq!(quant::quantize_row(&x, &mut q), 1.0);
    assert_eq!(q, [127, 0, 2, 2, 0, -2, -2, 3]);
}

/// `acc[i][j] = Σ_k xq[i,k] · wq[j,k]` in i64 from the unpacked quantised weights.
fn reference(xq: &[i8], k4: usize, wq: &[i8], k: usize, m: usize, n: usize) -> Vec<i64> {
    let mut r = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            r[i * n + j] = (0..k)
                .map(|t| xq[i * k4 + t] as i64 * wq[j * k + t] as i64)
                .sum();
        }
    }
    r
}

fn check_kernels(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) {
    let p = PackedI8::new(w, None, n, k);
    let (wq, _) = quant::quantize_rows(w, k);
    let (xq, _) = int8::quantize_activations(x, m, k, p.k4);
    let want = reference(&xq, p.k4, &wq, k, m, n);
    let kernels = Kernel::available();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        assert_eq!(
            kernels[0],
            Kernel::Vnni,
            "VNNI is chosen where the CPU has it"
        );
    }
    for kernel in kernels {
        let mut acc = vec![i32::MIN; p.blocks * m * BLOCK_COLS];
        int8::accumulate(kernel, &xq, m, &p, &mut acc);
        for i in 0..m {
            for j in 0..n {
                let got = acc[((j / BLOCK_COLS) * m + i) * BLOCK_COLS + j % BLOCK_COLS];
                assert_eq!(
                    got as i64,
                    want[i * n + j],
                    "{kernel:?} m={m} n={n} k={k} ({i},{j})"
                );
            }
        }
    }
}

#[test]
fn vnni_avx2_and_scalar_accumulators_equal_the_i64_reference() {
    // Odd k (padding), n not a multiple of 16 or 32, every row-tile remainder, the decoder
    // and encoder widths, and enough work to split over threads.
    for &(m, n, k) in &[
        (1, 17, 5),
        (2, 48, 64),
        (3, 64, 512),
        (5, 100, 70),
        (7, 33, 513),
        (8, 40, 2048),
        (13, 96, 96),
        (64, 1536, 512),
    ] {
        let x = pseudo_random(m * k, 1 + m as u64, 2.0);
        let w = pseudo_random(n * k, 7 + n as u64, 0.1);
        check_kernels(&x, &w, m, n, k);
    }
}

#[test]
fn extreme_values_accumulate_exactly() {
    // Every value quantises to ±127: the largest sums, and activations of -127 (unsigned 1
    // after the VNNI offset) against weights of -127.
    let (m, n, k) = (9, 35, 2048 * 3);
    let sign = |i: usize| if (i * 7 + i / 3) % 5 < 2 { -1.0 } else { 1.0 };
    let x: Vec<f32> = (0..m * k).map(sign).collect();
    let w: Vec<f32> = (0..n * k).map(|i| -sign(i + 1)).collect();
    check_kernels(&x, &w, m, n, k);
    let all_negative = vec![-1.0f32; k];
    check_kernels(&all_negative, &all_negative, 1, 1, k);
}

#[test]
fn forward_dequantises_with_row_and_column_scales_and_bias() {
    let (m, n, k) = (4, 21, 130);
    let x = pseudo_random(m * k, 3, 1.5);
    let w = pseudo_random(n * k, 4, 0.2);
    let b = pseudo_random(n, 5, 0.3);
    let p = PackedI8::new(&w, Some(b.clone()), n, k);
    let mut y = vec![0.0f32; m * n];
    int8::forward(&p, &x, m, &mut y);
    // Independent: dequantised int8 operands multiplied in f64 ...
    let (wq, ws) = quant::quantize_rows(&w, k);
    let (xq, xs) = quant::quantize_rows(&x, k);
    for i in 0..m {
        for j in 0..n {
            let exact: f64 = (0..k)
                .map(|t| xq[i * k + t] as f64 * wq[j * k + t] as f64)
                .sum::<f64>()
                * xs[i] as f64
                * ws[j] as f64
                + b[j] as f64;
            let got = y[i * n + j] as f64;
            assert!(
                (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                "{got} vs {exact}"
            );
            // ... and close to the f32 product (int8 error: half a step per operand).
            let float: f64 = (0..k)
                .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                .sum::<f64>()
                + b[j] as f64;
            assert!((got - float).abs() < 0.05, "{got} vs float {float}");
        }
    }
}

#[test]
fn every_kernel_gives_the_same_layer_output_bits() {
    // VNNI dequantises in its register tiles; AVX2 and scalar go through the int32 sums and
    // `quant::dequantize`. Partial last blocks, row remainders, no bias, and a product big
    // enough to split over threads.
    for &(m, n, k, bias) in &[
        (1, 17, 5, true),
        (3, 100, 70, false),
        (9, 40, 513, true),
        (130, 1536, 512, true),
        (70, 520, 96, false),
    ] {
        let x = pseudo_random(m * k, 11 + m as u64, 1.7);
        let w = pseudo_random(n * k, 13 + n as u64, 0.2);
        let b = bias.then(|| pseudo_random(n, 17, 0.5));
        let p = PackedI8::new(&w, b, n, k);
        let outputs: Vec<(Kernel, Vec<u32>)> = Kernel::available()
            .into_iter()
            .map(|kernel| {
                // A guard value after the output checks that nothing is written past it.
                let mut y = vec![f32::NAN; m * n + 1];
                int8::forward_with(kernel, &p, &x, m, &mut y);
                assert!(y[m * n].is_nan(), "{kernel:?} wrote past the output");
                (kernel, y[..m * n].iter().map(|v| v.to_bits()).collect())
            })
            .collect();
        let (first, want) = &outputs[outputs.len() - 1];
        for (kernel, got) in &outputs {
            assert!(
                got == want,
                "{kernel:?} differs from {first:?} for m={m} n={n} k={k}"
            );
        }
    }
}
