//! Memory on long inputs: the front end (decode, resample, log-mel) of a 30-minute file
//! holds a bounded amount, not the file's samples. Alone in its test binary, so the peak
//! resident size it reads is this test's own.

use std::io::Write;
use std::path::PathBuf;

use aiec_runtime::audio::{stream_with, InputLimits};
use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::mel::{Features, MelStream, N_FRAMES};

/// The process's peak resident set (`VmHWM`), in bytes.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line");
    kb * 1024
}

/// A 16-bit mono WAV of `seconds` at `rate`, written a second at a time: a tone whose level
/// changes every few seconds, over noise.
fn write_long_wav(path: &PathBuf, seconds: usize, rate: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let data_bytes = (seconds * rate * 2) as u32;
    let mut header = Vec::new();
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // PCM
    header.extend_from_slice(&1u16.to_le_bytes()); // mono
    header.extend_from_slice(&(rate as u32).to_le_bytes());
    header.extend_from_slice(&(rate as u32 * 2).to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_bytes.to_le_bytes());
    file.write_all(&header).unwrap();
    let mut noise = 12345u32;
    let mut second = Vec::with_capacity(rate * 2);
    for s in 0..seconds {
        second.clear();
        let level = [0.3, 0.05, 0.0, 0.6][(s / 7) % 4];
        for i in 0..rate {
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let t = (s * rate + i) as f64 / rate as f64;
            let x = level * (t * 2.0 * std::f64::consts::PI * 310.0).sin()
                + (noise >> 16) as f64 / 65536.0 * 0.01;
            second.extend_from_slice(&((x * 32767.0) as i16).to_le_bytes());
        }
        file.write_all(&second).unwrap();
    }
    file.flush().unwrap();
}

/// 30 minutes at 22.05 kHz (so the resampler runs too): 115 MB of 16 kHz f32 samples and a
/// 58 MB log-mel if held. The front end's peak must stay far below that, and the log-mel it
/// built must still read back every window.
#[test]
fn a_thirty_minute_file_streams_in_bounded_memory() {
    let minutes = 30;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("memory-test-30min.wav");
    write_long_wav(&path, minutes * 60, 22_050);
    let cpu = CpuBackend::default();
    let before = peak_rss();
    let mut mel = MelStream::new(&cpu, 80);
    let n = stream_with(&path, &InputLimits::default(), &mut |chunk| {
        mel.push(chunk).unwrap()
    })
    .expect("decodes");
    let features = mel.finish().unwrap();
    let grown = peak_rss().saturating_sub(before);
    eprintln!(
        "front end: peak RSS {} MB, grown by {} MB",
        peak_rss() >> 20,
        grown >> 20
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(n, minutes * 60 * 16_000);
    assert_eq!(features.n_frames(), n / 160 + 1);
    assert!(features.spilled());
    let held_whole = n * 4 + features.n_frames() * 80 * 4;
    assert!(
        grown < 40 << 20,
        "the front end grew the peak RSS by {} MB (holding the samples and log-mel would be {} MB)",
        grown >> 20,
        held_whole >> 20
    );
    // The last window is real: the tone's level pattern reaches the end of the file.
    let last = features
        .window(features.n_frames() - N_FRAMES, N_FRAMES)
        .unwrap();
    assert!(last.iter().all(|v| v.is_finite()));
    let spread = last.iter().cloned().fold(f32::MIN, f32::max)
        - last.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 0.5, "last window is flat ({spread})");
}
