//! Transcribes many files with one model load and prints one JSON line per file:
//! `cargo run --release -p aiec-runtime --example batch -- MODEL_DIR BEAM FILE...`.

use std::path::Path;

use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: batch MODEL_DIR BEAM FILE...".into());
    }
    let tr = Transcriber::load(Path::new(&args[1]))?;
    let opts = DecodeOptions {
        beam_size: args[2].parse()?,
        ..Default::default()
    };
    for file in &args[3..] {
        let t0 = std::time::Instant::now();
        let t = tr.transcribe_file(Path::new(file), &opts, None)?;
        let segs: Vec<serde_json::Value> = t
            .segments
            .iter()
            .map(|s| serde_json::json!({"start": s.start, "end": s.end, "text": s.text, "temperature": s.temperature, "avg_logprob": s.avg_logprob, "no_speech_prob": s.no_speech_prob}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"file": file, "language": t.language, "text": t.text(), "seconds": t0.elapsed().as_secs_f64(), "segments": segs})
        );
    }
    Ok(())
}
