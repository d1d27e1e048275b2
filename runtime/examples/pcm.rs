//! Transcribes raw 16 kHz mono float32 samples from a `.npy` file (e.g. a reference decoder's
//! output), to separate audio-decoding differences from model differences:
//! `cargo run --release -p aiec-runtime --example pcm -- MODEL_DIR FILE.npy [BEAM]`.

use std::path::Path;

use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;

fn read_npy_f32(path: &Path) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len])?;
    if !header.contains("'<f4'") {
        return Err(format!("expected little-endian float32, header: {header}").into());
    }
    Ok(bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: pcm MODEL_DIR FILE.npy [BEAM]".into());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("AIEC_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let tr = Transcriber::load(Path::new(&args[1]))?;
    let samples = read_npy_f32(Path::new(&args[2]))?;
    let opts = DecodeOptions {
        beam_size: args.get(3).map(|b| b.parse()).transpose()?.unwrap_or(5),
        ..Default::default()
    };
    let t = tr.transcribe_samples(&samples, &opts, None)?;
    for s in &t.segments {
        println!(
            "[{:.2} -> {:.2}] t={} lp={:.3} ns={:.3} {}",
            s.start, s.end, s.temperature, s.avg_logprob, s.no_speech_prob, s.text
        );
    }
    Ok(())
}
