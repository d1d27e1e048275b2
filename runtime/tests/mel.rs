//! The log-mel front end against faster-whisper's own output.
//!
//! Fixtures in tests/data (see tests/data/README.md): 16 kHz PCM as faster-whisper decoded it
//! and the log-mel matrix its `FeatureExtractor` computed from that PCM; the mel filter banks
//! librosa produced (openai-whisper's `mel_filters.npz`).

mod common;

use std::time::Instant;

use aiec_runtime::mel::{self, log_mel, LogMel, HOP, N_BINS, N_FRAMES};

/// Tolerance the task sets against the reference (the reference itself is f32 arithmetic).
const TOLERANCE: f32 = 1e-3;

/// A fixture under tests/data: (shape, data).
fn read_npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    common::read_npy(&common::data_file(name))
}

/// Largest |ours - reference| over frames `ours_frames` of `ours` against reference columns
/// starting at `ref_first` of a `[n_mels][ref_frames]` matrix.
fn max_error(
    ours: &LogMel,
    ours_frames: std::ops::Range<usize>,
    reference: &[f32],
    ref_frames: usize,
    ref_first: usize,
) -> f32 {
    let mut worst = 0.0f32;
    for mel in 0..ours.n_mels {
        for (i, frame) in ours_frames.clone().enumerate() {
            let a = ours.data[mel * ours.n_frames + frame];
            let b = reference[mel * ref_frames + ref_first + i];
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

/// Our log-mel of a PCM fixture beside faster-whisper's log-mel of the same PCM.
struct Against {
    pcm_len: usize,
    ours: LogMel,
    /// The reference matrix's `[n_mels, frames]` and its data.
    shape: Vec<usize>,
    reference: Vec<f32>,
}

impl Against {
    fn load(pcm_file: &str, mel_file: &str, n_mels: usize) -> Against {
        let (_, pcm) = read_npy(pcm_file);
        let (shape, reference) = read_npy(mel_file);
        Against {
            pcm_len: pcm.len(),
            ours: log_mel(&pcm, n_mels),
            shape,
            reference,
        }
    }

    /// Our frames `frames` against the reference's columns from `ref_first` are within
    /// [`TOLERANCE`]; `what` names the comparison in the printed error.
    fn assert_close(&self, what: &str, frames: std::ops::Range<usize>, ref_first: usize) {
        let n = frames.len();
        let err = max_error(
            &self.ours,
            frames,
            &self.reference,
            self.shape[1],
            ref_first,
        );
        eprintln!("{what} max abs error vs faster-whisper over {n} frames: {err:e}");
        assert!(err <= TOLERANCE, "max abs error {err}");
    }
}

#[test]
fn jfk_log_mel_matches_faster_whisper() {
    let jfk = Against::load("jfk.pcm.npy", "jfk.mel.npy", 80);
    let (ours, shape) = (&jfk.ours, &jfk.shape);
    assert_eq!([ours.n_mels, ours.n_frames], [shape[0], shape[1]]);
    jfk.assert_close("jfk 80-mel", 0..ours.n_frames, 0);
}

/// Ten seconds of sonnet001 (samples 448000..608000 of faster-whisper's decode) holding the
/// clip's loudest frame, so the global clamp floor is the same as for the whole clip.
/// Frames whose 400-sample window lies inside the slice are those of the full clip
/// (full-clip frame = slice frame + 2800).
#[test]
fn sonnet_slice_log_mel_matches_faster_whisper() {
    let sonnet = Against::load(
        "sonnet001_28s_38s.pcm.npy",
        "sonnet001_frames_2800_3800.mel.npy",
        80,
    );
    let inside = 2..(sonnet.pcm_len - 200) / HOP + 1;
    assert!(inside.len() > 990);
    sonnet.assert_close("sonnet001 80-mel", inside.clone(), inside.start);
}

/// large-v3's 128-mel front end; reference computed by faster-whisper 1.2.1's
/// `FeatureExtractor(feature_size=128)` on jfk (first 400 of 1101 frames stored).
#[test]
fn jfk_128_mel_matches_faster_whisper() {
    let jfk = Against::load("jfk.pcm.npy", "jfk_frames_0_400.mel128.npy", 128);
    assert_eq!((jfk.ours.n_mels, jfk.ours.n_frames), (128, 1101));
    jfk.assert_close("jfk 128-mel", 0..jfk.shape[1], 0);
}

#[test]
fn filter_banks_match_librosa() {
    for n_mels in [80usize, 128] {
        let (shape, reference) = read_npy(&format!("mel_filters_{n_mels}.npy"));
        assert_eq!(shape, vec![n_mels, N_BINS]);
        let ours = mel::mel_filter_bank(n_mels);
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, &b)| (a - b as f64).abs() / (b as f64).abs().max(1e-3))
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{n_mels} mels: worst relative error {worst}");
    }
}

/// Slaney normalisation makes every triangle's area 1 (in Hz); on the FFT bin grid the
/// Riemann sum (40 Hz bins) is close for triangles spanning several bins, and never far off.
#[test]
fn filter_bank_shape_properties() {
    let n_mels = 80;
    let bank = mel::mel_filter_bank(n_mels);
    let bin_hz = 16_000.0 / 400.0; // 40 Hz
    let mut wide = 0;
    for row in bank.chunks_exact(N_BINS) {
        assert!(row.iter().all(|&w| w >= 0.0));
        let support = row.iter().filter(|&&w| w > 0.0).count();
        assert!(support >= 1);
        let area: f64 = row.iter().sum::<f64>() * bin_hz;
        assert!((area - 1.0).abs() < 0.1, "area {area}");
        if support >= 5 {
            wide += 1;
            assert!((area - 1.0).abs() < 0.02, "area {area} over {support} bins");
        }
        // Each triangle rises then falls: one peak.
        let peak = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert!(row[..peak].windows(2).all(|w| w[0] <= w[1]));
        assert!(row[peak..].windows(2).all(|w| w[0] >= w[1]));
    }
    assert!(wide >= 30, "only {wide} wide filters");
    // Bins above 7.9 kHz and bin 0 aside, every bin is covered.
    for k in 1..196 {
        assert!(
            (0..n_mels).any(|m| bank[m * N_BINS + k] > 0.0),
            "bin {k} uncovered"
        );
    }
}

#[test]
fn frame_count_follows_the_reference() {
    // Shapes of faster-whisper's matrices: jfk (176000 samples) -> 1101 frames; the full
    // sonnet001 (852266 samples, /work/shared/speech/mel) -> 5327 frames.
    let (pcm_shape, _) = read_npy("jfk.pcm.npy");
    let (mel_shape, _) = read_npy("jfk.mel.npy");
    assert_eq!(mel::frame_count(pcm_shape[0]), mel_shape[1]);
    assert_eq!(mel::frame_count(852_266), 5327);
    for n in [0usize, 1, 159, 160, 161, 399, 400, 16_000, 16_159] {
        let m = log_mel(&vec![0.01; n], 80);
        assert_eq!(m.n_frames, n / HOP + 1, "{n} samples");
        assert_eq!(m.data.len(), 80 * m.n_frames);
        assert!(m.data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn silence_is_the_floor_everywhere() {
    // All-zero power: log10(1e-10) = -10 everywhere, the max is -10, (x + 4) / 4 = -1.5.
    let m = log_mel(&vec![0.0; 16_000], 80);
    assert!(m.data.iter().all(|&v| v == -1.5));
}

#[test]
fn clamp_keeps_eight_decades_below_the_max() {
    let (_, pcm) = read_npy("jfk.pcm.npy");
    let m = log_mel(&pcm, 80);
    let max = m.data.iter().copied().fold(f32::MIN, f32::max);
    let min = m.data.iter().copied().fold(f32::MAX, f32::min);
    // (max - 8 + 4) / 4 - (max + 4) / 4 = -2 in output units.
    assert!((max - min - 2.0).abs() < 1e-5, "max {max} min {min}");
}

#[test]
fn window_is_zero_padded_to_3000_frames() {
    let (_, pcm) = read_npy("jfk.pcm.npy");
    let m = log_mel(&pcm, 80);
    assert_eq!(m.n_frames, 1101);

    let w = m.window(1000, N_FRAMES);
    assert_eq!(w.len(), 80 * N_FRAMES);
    for mel in [0, 40, 79] {
        let row = &w[mel * N_FRAMES..(mel + 1) * N_FRAMES];
        assert_eq!(&row[..101], &m.row(mel)[1000..1101]);
        assert!(row[101..].iter().all(|&v| v == 0.0));
    }

    // A shorter `len` stops early even though more frames exist.
    let w = m.window(0, 500);
    assert_eq!(&w[..500], &m.row(0)[..500]);
    assert!(w[500..N_FRAMES].iter().all(|&v| v == 0.0));
    assert_eq!(&w[N_FRAMES..N_FRAMES + 500], &m.row(1)[..500]);

    // Past the end: all zeros; an oversized len is cut to one window.
    assert!(m.window(5000, N_FRAMES).iter().all(|&v| v == 0.0));
    assert_eq!(m.window(0, 10 * N_FRAMES).len(), 80 * N_FRAMES);
    assert!(m.window(usize::MAX, usize::MAX).iter().all(|&v| v == 0.0));
}

/// Ten minutes of audio give the reference frame count (one frame per 160 samples, plus one).
/// (Speed is measured by benchmarks, not asserted here; the time is printed.)
#[test]
fn ten_minutes_gives_the_reference_frame_count() {
    let n = 600 * 16_000;
    let samples: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.05 * ((i * 7919 % 1000) as f32 / 1000.0 - 0.5)
        })
        .collect();
    let start = Instant::now();
    let m = log_mel(&samples, 80);
    let elapsed = start.elapsed();
    eprintln!("log_mel of 10 min, 80 mels: {elapsed:?}");
    assert_eq!(m.n_frames, 60_001);
}

/// The log-mel built as samples stream in ([`mel::MelStream`], what keeps a long file's
/// memory flat) reads back every window the in-memory spectrogram gives, bit for bit: block
/// boundaries, the reflection at both ends, signals shorter than one frame, chunks of any
/// size, and values spilled to a temporary file.
#[test]
fn streamed_log_mel_gives_the_in_memory_windows() {
    use aiec_runtime::backend::cpu::CpuBackend;
    use aiec_runtime::mel::{Features, MelStream};
    let cpu = CpuBackend::default();
    // The first block completes at 2999 * 160 + 200 samples.
    let block = (N_FRAMES - 1) * HOP + 200;
    let longest = 2 * block + 12_345;
    let signal: Vec<f32> = (0..longest)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            // Loud and quiet stretches, so the clamp at max - 8 bites.
            let envelope = if (i / 40_000) % 3 == 0 { 1e-5 } else { 0.5 };
            envelope
                * ((t * 440.0 * std::f32::consts::TAU).sin() + ((i * 7919) % 101) as f32 / 300.0)
        })
        .collect();
    for len in [1, 150, 199, 200, 201, block - 1, block, block + 1, longest] {
        let samples = &signal[..len];
        let whole = mel::log_mel_with(&cpu, samples, 80);
        for (chunk, spill) in [(len, usize::MAX), (7_919, 1 << 20), (100_000, 0)] {
            let mut stream = MelStream::with_spill_threshold(&cpu, 80, spill);
            for piece in samples.chunks(chunk) {
                stream.push(piece).unwrap();
            }
            let streamed = stream.finish().unwrap();
            assert_eq!(streamed.n_frames(), whole.n_frames, "{len}");
            let bytes = whole.n_frames * 80 * 4;
            assert_eq!(streamed.spilled(), bytes > spill, "{len} spill {spill}");
            let n = whole.n_frames;
            for start in [0, 1, 2_999, 3_000, 4_321, n.saturating_sub(1), n, n + 5] {
                for frames in [N_FRAMES, 1_500, 7] {
                    let want = whole.window(start, frames);
                    let got = streamed.window(start, frames).unwrap();
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{len} samples, chunk {chunk}: window {start}+{frames}"
                    );
                }
            }
        }
    }
}
