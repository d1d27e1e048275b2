//! Resampling to 16 kHz against libswresample as faster-whisper reaches it (PyAV 18.1's
//! `AudioResampler(format="s16", layout="mono", rate=16000)`, FFmpeg 8's libswresample with
//! its default filter). Fixtures and the script that made them: tests/data/README.md and
//! scripts/make_resample_fixtures.py.
//!
//! Both sides end on the 16-bit grid (PyAV hands faster-whisper s16 samples; we round the
//! same way), so a faithful resampler gives the same integers except where libswresample's
//! `float` sums and our `f64` sums fall on opposite sides of a rounding boundary: one step
//! (1/32768) in a few samples.

mod common;

use aiec_runtime::audio::{self, load};
use common::{compare, data_file, read_npy, speech_dir};

/// Our whole decode (container, downmix, resample, s16 rounding) against faster-whisper's
/// `decode_audio` of the same file: same length, relative RMS difference within `bound`.
fn assert_matches_faster_whisper(input: &std::path::Path, reference: &str, bound: f64) {
    let ours = load(input).unwrap_or_else(|e| panic!("{e}"));
    let (_, reference) = read_npy(&data_file(reference));
    assert_eq!(ours.len(), reference.len(), "{}", input.display());
    let (max, relative) = compare(&ours, &reference);
    let steps = ours.iter().zip(&reference).filter(|(a, b)| a != b).count();
    eprintln!(
        "{}: relative RMS difference to PyAV {relative:.2e}, max {:.0} steps of 1/32768, {steps} of {} samples differ",
        input.display(),
        max * 32768.0,
        ours.len()
    );
    assert!(relative <= bound, "{}: {relative:e}", input.display());
    assert!(
        max <= 1.0 / 32768.0,
        "{}: max diff {max:e}",
        input.display()
    );
}

/// The bound on every fixture below: measured 0 to 1.6e-6 (at most 4 of 32000 samples one
/// step apart, the summation-order effect above), so 1e-5 leaves room for a different CPU's
/// rounding but none for a filter or alignment change (one sample of shift is ~1e-1, the
/// previous rubato resampler was 5.2e-3 at 8 kHz).
const BOUND: f64 = 1e-5;

/// 8 kHz telephone prompt, the dev set's commonest kind (139 of 152 files): upsampling by
/// 2 (two phases; phase 0 passes the input through). Measured: identical (0 samples differ).
#[test]
fn resampled_8k_wav_matches_faster_whisper_decode() {
    let input = speech_dir().join("audio/asterisk/demo-nomatch.wav");
    assert_matches_faster_whisper(&input, "demo-nomatch.fw-pcm.npy", BOUND);
}

/// The made inputs (speech plus full-band noise, scripts/make_resample_fixtures.py):
/// 22.05 kHz mono (320 phases, 46 taps; measured 8.0e-7), 44.1 kHz stereo (160 phases,
/// 92 taps, averaged first as libswresample's stereo-to-mono matrix (0.5, 0.5) does;
/// 1.4e-6) and 48 kHz mono (one phase, 100 taps: plain decimation by 3; 1.6e-6).
#[test]
fn resampled_22k_44k_48k_flac_match_faster_whisper_decode() {
    for rate in [22_050, 44_100, 48_000] {
        let stem = format!("resample/jfk_noise_{rate}");
        let input = data_file(&format!("{stem}.flac"));
        assert_matches_faster_whisper(&input, &format!("{stem}.fw-s16.npy"), BOUND);
    }
}

/// Output lengths PyAV gives for 1000 and 12345 input samples (printed by
/// scripts/make_resample_fixtures.py): set by libswresample's mirrored flush, neither a
/// plain rounding nor a ceiling of `n * 16000 / rate`.
#[test]
fn output_lengths_follow_libswresample() {
    let pyav = [
        (8_000, [2000, 24_690]),
        (11_025, [1452, 17_916]),
        (22_050, [726, 8958]),
        (44_100, [363, 4479]),
        (48_000, [333, 4115]),
    ];
    for (rate, lengths) in pyav {
        for (n, expected) in [1000usize, 12_345].into_iter().zip(lengths) {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i % 200) as f32 - 100.0) / 32768.0)
                .collect();
            let got = audio::resample(&x, rate, 16_000).unwrap().len();
            assert_eq!(got, expected, "{n} samples at {rate} Hz");
        }
    }
}

#[test]
fn equal_rates_pass_through_and_zero_rates_are_errors() {
    let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin()).collect();
    assert_eq!(audio::resample(&x, 16_000, 16_000).unwrap(), x);
    assert!(audio::resample(&x, 0, 16_000).is_err());
    assert!(audio::resample(&x, 16_000, 0).is_err());
}
