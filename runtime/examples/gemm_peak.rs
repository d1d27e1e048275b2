//! The encoder's matrix products against this CPU's peak: `gemm_peak [D_MODEL] [FRAMES]`
//! (whisper-base: 512 and 1500). Run through `bench/gemm_peak.sh`.
//!
//! The peak is measured, not looked up: a loop of independent multiply-adds on registers
//! (`vpdpbusd` zmm for int8, `vfmadd` for f32), one per thread, gives the operations per cycle
//! the cores retire; a chain of dependent integer adds (one per cycle) gives the clock. Both
//! are measured in the same run as the products, so a loaded or throttled VM lowers the peak
//! and the products alike.

use std::time::Instant;

use aiec_runtime::backend::cpu::{bf16, int8};
use aiec_runtime::whisper::ops;
use rayon::prelude::*;

/// One of the encoder's products: `rows × k` activations times `n × k` weights.
struct Shape {
    name: &'static str,
    rows: usize,
    n: usize,
    k: usize,
}

fn shapes(d: usize, frames: usize, n_mels: usize) -> Vec<Shape> {
    vec![
        Shape {
            name: "conv1 (im2col)",
            rows: 2 * frames,
            n: d,
            k: 3 * n_mels,
        },
        Shape {
            name: "conv2 (im2col)",
            rows: frames,
            n: d,
            k: 3 * d,
        },
        Shape {
            name: "q/k/v/out",
            rows: frames,
            n: d,
            k: d,
        },
        Shape {
            name: "fc1",
            rows: frames,
            n: 4 * d,
            k: d,
        },
        Shape {
            name: "fc2",
            rows: frames,
            n: d,
            k: 4 * d,
        },
    ]
}

fn value(i: usize) -> f32 {
    ((i.wrapping_mul(2654435761)) % 2001) as f32 / 1000.0 - 1.0
}

/// Best of `reps` timings of `f`, in seconds (the least disturbed run).
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Cycles per second of one core: a chain of dependent register adds retires one per cycle.
#[cfg(target_arch = "x86_64")]
fn clock_hz() -> f64 {
    const LOOPS: u64 = 1 << 26;
    const ADDS_PER_LOOP: u64 = 8;
    let secs = best_of(5, || {
        let mut x: u64 = 0;
        let mut n = LOOPS;
        // SAFETY: register arithmetic only.
        unsafe {
            std::arch::asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) n,
                options(nomem, nostack),
            );
        }
        std::hint::black_box((x, n));
    });
    (LOOPS * ADDS_PER_LOOP) as f64 / secs
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    pub const ITERS: usize = 1 << 22;

    /// `ITERS × 16` independent `vpdpbusd` zmm: 64 multiply-adds (128 ops) each.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dpbusd() -> i32 {
        let a = _mm512_set1_epi32(std::hint::black_box(0x01010101));
        let b = _mm512_set1_epi32(std::hint::black_box(0x01010101));
        let mut acc = [_mm512_setzero_si512(); 16];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_si512(), |s, v| _mm512_add_epi32(s, *v));
        _mm512_reduce_add_epi32(s)
    }

    /// `ITERS × 16` independent `vfmadd` zmm: 16 multiply-adds (32 flops) each.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma() -> f32 {
        let a = _mm512_set1_ps(std::hint::black_box(0.999));
        let b = _mm512_set1_ps(std::hint::black_box(0.001));
        let mut acc = [_mm512_setzero_ps(); 16];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v));
        _mm512_reduce_add_ps(s)
    }
}

/// Operations per second of `kernel` run on every thread at once (`ops_per_call` each).
fn register_peak(ops_per_call: f64, kernel: impl Fn() + Sync) -> f64 {
    let threads = rayon::current_num_threads();
    let secs = best_of(5, || {
        (0..threads).into_par_iter().for_each(|_| kernel());
    });
    threads as f64 * ops_per_call / secs
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: gemm_peak [D_MODEL] [FRAMES]"))
        .collect();
    let d = args.first().copied().unwrap_or(512);
    let frames = args.get(1).copied().unwrap_or(1500);
    let threads = rayon::current_num_threads();
    let hz = clock_hz();

    #[cfg(target_arch = "x86_64")]
    let (int8_peak, f32_peak) = {
        assert!(
            std::arch::is_x86_feature_detected!("avx512vnni"),
            "this benchmark measures the AVX-512 VNNI kernels; this CPU has no avx512vnni"
        );
        let calls = (peak::ITERS * 16) as f64;
        // SAFETY: the features were just checked.
        let i8p = register_peak(calls * 128.0, || {
            std::hint::black_box(unsafe { peak::dpbusd() });
        });
        let f32p = register_peak(calls * 32.0, || {
            std::hint::black_box(unsafe { peak::fma() });
        });
        (i8p, f32p)
    };
    #[cfg(not(target_arch = "x86_64"))]
    compile_error!("gemm_peak measures x86-64 kernels");

    println!(
        "cpu: {threads} threads, clock {:.2} GHz (dependent adds)",
        hz / 1e9
    );
    println!(
        "peak int8 (vpdpbusd zmm on registers): {:.0} GOP/s = {:.0} ops/cycle/core",
        int8_peak / 1e9,
        int8_peak / hz / threads as f64
    );
    println!(
        "peak f32  (vfmadd zmm on registers):   {:.0} GFLOP/s = {:.0} flops/cycle/core",
        f32_peak / 1e9,
        f32_peak / hz / threads as f64
    );
    println!();
    println!(
        "{:<16} {:>5} {:>5} {:>5} | {:>14} {:>6} | {:>14} {:>6} | {:>13} {:>6} | {:>13} {:>6}",
        "encoder product",
        "rows",
        "n",
        "k",
        "int8 accum",
        "%peak",
        "int8 layer",
        "%peak",
        "f32 gemm",
        "%peak",
        "bf16 layer",
        "%peak"
    );
    let (mut ops_total, mut t_acc, mut t_i8, mut t_f32) = (0.0, 0.0, 0.0, 0.0);
    for s in shapes(d, frames, 80) {
        let w: Vec<f32> = (0..s.n * s.k).map(value).collect();
        let x: Vec<f32> = (0..s.rows * s.k).map(|i| value(i + 17)).collect();
        let bias: Vec<f32> = (0..s.n).map(|i| value(i + 5)).collect();
        let ops = 2.0 * (s.rows * s.n * s.k) as f64;
        let reps = 5;

        let packed = int8::PackedI8::new(&w, Some(bias.clone()), s.n, s.k);
        let (xq, _) = int8::quantize_activations(&x, s.rows, s.k, packed.k4);
        let mut acc = vec![0i32; packed.n_padded() * s.rows];
        let accum = best_of(reps, || {
            int8::accumulate(int8::Kernel::best(), &xq, s.rows, &packed, &mut acc)
        });
        let mut y = vec![0.0f32; s.rows * s.n];
        let layer = best_of(reps, || int8::forward(&packed, &x, s.rows, &mut y));
        let f32_gemm = best_of(reps, || {
            ops::linear_into(&x, s.rows, &w, Some(&bias), s.n, s.k, &mut y)
        });
        let b16 = bf16::linear(&w, Some(bias.clone()), s.n, s.k);
        let bf16_layer = best_of(reps, || b16.forward(&x, s.rows, &mut y));

        let rate = |secs: f64, peak: f64| (ops / secs / 1e9, 100.0 * ops / secs / peak);
        let cells = [
            rate(accum, int8_peak),
            rate(layer, int8_peak),
            rate(f32_gemm, f32_peak),
            rate(bf16_layer, f32_peak),
        ];
        println!(
            "{:<16} {:>5} {:>5} {:>5} | {:>8.0} GOP/s {:>5.1}% | {:>8.0} GOP/s {:>5.1}% | {:>6.0} GFLOP/s {:>5.1}% | {:>6.0} GFLOP/s {:>5.1}%",
            s.name, s.rows, s.n, s.k,
            cells[0].0, cells[0].1, cells[1].0, cells[1].1,
            cells[2].0, cells[2].1, cells[3].0, cells[3].1,
        );
        // One encoder layer: 4 q/k/v/out products, fc1, fc2 (the convolutions run once per
        // window, outside the layers).
        let per_model = match s.name {
            "q/k/v/out" => 4.0,
            "fc1" | "fc2" => 1.0,
            _ => 0.0,
        };
        ops_total += per_model * ops;
        t_acc += per_model * accum;
        t_i8 += per_model * layer;
        t_f32 += per_model * f32_gemm;
    }
    println!();
    println!(
        "one encoder layer (4 × q/k/v/out, fc1, fc2): int8 accumulate {:.1}% of peak, \
         int8 layer {:.1}%, f32 gemm {:.1}%",
        100.0 * ops_total / t_acc / int8_peak,
        100.0 * ops_total / t_i8 / int8_peak,
        100.0 * ops_total / t_f32 / f32_peak
    );
}
