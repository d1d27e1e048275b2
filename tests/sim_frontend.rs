//! `--device sim`'s encoder front end on real audio (examples/audio/jfk.wav): the log-mel on
//! the `mel` design and the two convolutions on the `conv` design (im2col in the DMA
//! pattern), against the cpu backend's f32 path. Needs the whisper-base model installed
//! (`aiec models install whisper-base`).

use std::path::Path;

use aiec::expr::ERF_ERROR;
use aiec::simdevice::SimBackend;
use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{
    Backend, ConvInput, ConvLayout, Epilogue, LinearWeights, OpKind, Precision, PreparedLinear,
};
use aiec_runtime::mel::{log_mel, log_mel_with, N_FRAMES};
use aiec_runtime::model::WhisperModelFiles;

/// bf16 unit roundoff (8 significant bits): every operand the conv design reads is rounded
/// to bf16 once, so each product `w x` carries a relative error of at most `2u + u²`.
const BF16_U: f64 = 1.0 / 256.0;
/// f32 unit roundoff: the design accumulates in f32.
const F32_U: f64 = 1.0 / 16_777_216.0;
/// The largest slope of GELU (at x = √2): an error of the pre-activation grows by at most this.
const GELU_LIPSCHITZ: f64 = 1.129;

fn jfk() -> Vec<f32> {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audio/jfk.wav");
    aiec_runtime::audio::load(&clip).expect("jfk.wav decodes")
}

#[test]
fn log_mel_on_the_mel_design_matches_the_host_kernel_on_jfk() {
    let samples = jfk();
    let sim = SimBackend::new(Precision::Int8).unwrap();
    let got = log_mel_with(&sim, &samples, 80);
    // The host kernel: f64 inside, a real FFT, none of the design's tables or DFT indexing.
    let want = log_mel(&samples, 80);
    assert_eq!((got.n_mels, got.n_frames), (want.n_mels, want.n_frames));
    assert!(got.n_frames > 1000, "{} frames", got.n_frames);
    let worst = got
        .data
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "log-mel of {} frames: max |sim - cpu| = {worst:.3e} (bound {:.0e})",
        got.n_frames,
        aiec::ops::mel::TOLERANCE
    );
    assert!(
        worst <= aiec::ops::mel::TOLERANCE,
        "max |sim - cpu| = {worst:e} exceeds the mel op's TOLERANCE"
    );
    let mel = sim.stats().get(OpKind::LogMel);
    assert!(mel.launches == 1 && !mel.device.is_zero(), "{mel:?}");
    assert_eq!(sim.host_stats().get(OpKind::LogMel).launches, 0);
}

/// conv1's and conv2's weights from the installed whisper-base.
fn conv_weights() -> (LinearWeights, LinearWeights, usize) {
    let dir = aiec_runtime::model::install::resolve("whisper-base")
        .expect("the whisper-base model is installed (aiec models install whisper-base)");
    let files = WhisperModelFiles::load(&dir).expect("whisper-base loads");
    let (d, n_mels) = (files.dims.d_model, files.dims.n_mels);
    let tensor = |name: &str| files.bin.get(name).expect(name).to_f32().expect(name);
    let conv = |name: &str, c_in: usize| LinearWeights {
        name: format!("encoder/{name}"),
        weight: tensor(&format!("encoder/{name}/weight")),
        bias: Some(tensor(&format!("encoder/{name}/bias"))),
        n: d,
        k: 3 * c_in,
    };
    (conv("conv1", n_mels), conv("conv2", d), n_mels)
}

/// `|w|`, with the bias replaced by its bf16 rounding error `u|b|`.
fn abs(w: &LinearWeights) -> LinearWeights {
    let a = |v: &[f32], scale: f32| v.iter().map(|x| x.abs() * scale).collect::<Vec<_>>();
    LinearWeights {
        name: format!("|{}|", w.name),
        weight: a(&w.weight, 1.0),
        bias: w.bias.as_deref().map(|b| a(b, BF16_U as f32)),
        n: w.n,
        k: w.k,
    }
}

fn copy(w: &LinearWeights) -> LinearWeights {
    LinearWeights {
        name: w.name.clone(),
        weight: w.weight.clone(),
        bias: w.bias.clone(),
        n: w.n,
        k: w.k,
    }
}

/// `conv(x)` through `be` with `epi`; `[ceil(frames / stride), c_out]`.
fn conv(
    be: &dyn Backend,
    w: &dyn PreparedLinear,
    x: &[f32],
    (layout, frames, stride): (ConvLayout, usize, usize),
    epi: Epilogue,
) -> Vec<f32> {
    let mut out = vec![0.0f32; frames.div_ceil(stride) * w.out_dim()];
    let input = ConvInput {
        x,
        layout,
        frames,
        stride,
    };
    be.conv1d(w, input, epi, &mut out);
    out
}

/// Per-element bound on `|sim - cpu|` after a conv + GELU whose input differs from the cpu's
/// by at most `input_err` (same layout as the input): first order,
/// `|δ pre| <= Σ|w| (input_err + u|x|) + (u + γ_K) Σ|w||x| + u|b|`: the input error carried
/// through the weights, bf16 rounding of the input and of the weights (`u` each), f32
/// accumulation over `K` terms (`γ_K = K ε`); then GELU's slope and its lowered erf
/// ([`ERF_ERROR`] scaled by |x| / 2 <= 4).
fn conv_bound(
    cpu: &CpuBackend,
    w: &LinearWeights,
    (x, input_err): (&[f32], &[f32]),
    shape: (ConvLayout, usize, usize),
) -> Vec<f64> {
    let wa = cpu.prepare_linear(abs(w)).unwrap();
    let per_value: Vec<f32> = x
        .iter()
        .zip(input_err)
        .map(|(v, e)| e + (2.0 * BF16_U) as f32 * v.abs())
        .collect();
    let carried = conv(cpu, &*wa, &per_value, shape, Epilogue::NONE);
    let gamma = w.k as f64 * F32_U;
    carried
        .iter()
        .map(|&c| {
            // Σ|w|(e + 2u|x|) + u|b| covers the input, weight and bias roundings (u² terms
            // are below the 1e-4 margin); γ_K·Σ|w||x| is below γ_K·c / 2u, so c is scaled by
            // (1 + γ_K / 2u). The margin also covers both sides' f32 GELU roundings (a few
            // ulp of |y| <= c / 2u: 1e-4 · 2u = 13 ulp) and the bound's own f32 sums.
            let pre = f64::from(c) * (1.0 + gamma / (2.0 * BF16_U)) * 1.0001;
            GELU_LIPSCHITZ * pre + 4.0 * ERF_ERROR
        })
        .collect()
}

#[test]
fn encoder_front_end_on_the_designs_matches_the_cpu_f32_path_on_jfk() {
    let samples = jfk();
    let (w1, w2, n_mels) = conv_weights();
    let d = w1.n;
    let sim = SimBackend::new(Precision::Int8).unwrap();
    let cpu = CpuBackend::new(Precision::F32);

    let mel_sim = log_mel_with(&sim, &samples, n_mels).window(0, N_FRAMES);
    let mel_cpu = log_mel(&samples, n_mels).window(0, N_FRAMES);
    let frames = N_FRAMES;
    let s1 = (ConvLayout::ChannelMajor, frames, 1);
    let s2 = (ConvLayout::TimeMajor, frames, 2);

    let (c1, c2) = (
        sim.prepare_conv(copy(&w1)).unwrap(),
        sim.prepare_conv(copy(&w2)).unwrap(),
    );
    let h1_sim = conv(&sim, &*c1, &mel_sim, s1, Epilogue::GELU);
    let h2_sim = conv(&sim, &*c2, &h1_sim, s2, Epilogue::GELU);

    let (f1, f2) = (
        cpu.prepare_linear(copy(&w1)).unwrap(),
        cpu.prepare_linear(copy(&w2)).unwrap(),
    );
    let h1_cpu = conv(&cpu, &*f1, &mel_cpu, s1, Epilogue::GELU);
    let h2_cpu = conv(&cpu, &*f2, &h1_cpu, s2, Epilogue::GELU);
    // conv2 alone, both devices on the same input (the sim's conv1 output).
    let h2_same = conv(&cpu, &*f2, &h1_sim, s2, Epilogue::GELU);

    // conv1's input differs by the mel design's error, at most the mel op's TOLERANCE.
    let mel_err = vec![aiec::ops::mel::TOLERANCE as f32; mel_cpu.len()];
    let b1 = conv_bound(&cpu, &w1, (&mel_cpu, &mel_err), s1);
    // conv2's input differs by conv1's bound (its bf16 rounding is in conv_bound).
    let b1_f32: Vec<f32> = b1.iter().map(|&b| b as f32).collect();
    let b2 = conv_bound(&cpu, &w2, (&h1_cpu, &b1_f32), s2);
    let b2_same = conv_bound(&cpu, &w2, (&h1_sim, &vec![0.0; h1_sim.len()]), s2);

    for (what, got, want, bound) in [
        ("conv1", &h1_sim, &h1_cpu, &b1),
        ("conv2 on the same input", &h2_sim, &h2_same, &b2_same),
        ("conv1 + conv2", &h2_sim, &h2_cpu, &b2),
    ] {
        assert_eq!(got.len(), want.len(), "{what}");
        let (mut worst, mut err2, mut ref2, mut mean_bound) = (0.0f64, 0.0, 0.0, 0.0);
        for (i, ((g, w), b)) in got.iter().zip(want.iter()).zip(bound).enumerate() {
            let e = (f64::from(*g) - f64::from(*w)).abs();
            assert!(
                e <= *b,
                "{what}[frame {}, channel {}]: sim {g}, cpu {w}, |diff| {e:e} > bound {b:e}",
                i / d,
                i % d
            );
            worst = worst.max(e / b);
            err2 += e * e;
            ref2 += f64::from(*w).powi(2);
            mean_bound += b / got.len() as f64;
        }
        eprintln!(
            "{what}: {} values, rel L2 {:.3e}, max |diff| / bound {worst:.3}, mean bound {mean_bound:.3e}",
            got.len(),
            (err2 / ref2).sqrt()
        );
    }
    for kind in [OpKind::LogMel, OpKind::Conv] {
        let t = sim.stats().get(kind);
        assert!(!t.device.is_zero(), "{kind:?} did not run on the simulator");
    }
}
