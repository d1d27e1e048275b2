//! Runs the encoder on a `[n_mels, 3000]` float32 `.npy` window and writes the `[1500, d]`
//! output as raw little-endian float32, for comparison with another implementation:
//! `cargo run --release -p aiec-runtime --example encode_npy -- MODEL_DIR IN.npy OUT.f32`.

use std::path::Path;

use aiec_runtime::model::WhisperModelFiles;
use aiec_runtime::whisper::Whisper;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: encode_npy MODEL_DIR IN.npy OUT.f32".into());
    }
    let files = WhisperModelFiles::load(Path::new(&args[1]))?;
    let model = Whisper::load(&files)?;
    let bytes = std::fs::read(&args[2])?;
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let mel: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let t0 = std::time::Instant::now();
    let out = model.encode(&mel);
    eprintln!("encode: {:.3?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    let out2 = model.encode(&mel);
    eprintln!("encode again: {:.3?}", t0.elapsed());
    assert_eq!(out, out2);
    let raw: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&args[3], raw)?;
    Ok(())
}
