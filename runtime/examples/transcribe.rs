//! Minimal use of the runtime library: `cargo run --release -p aiec-runtime --example transcribe -- MODEL_DIR AUDIO [BEAM]`.

use std::path::Path;

use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: transcribe MODEL_DIR AUDIO [BEAM]".into());
    }
    let t0 = std::time::Instant::now();
    let tr = Transcriber::load(Path::new(&args[1]))?;
    eprintln!("load: {:.2?}", t0.elapsed());
    let opts = DecodeOptions {
        beam_size: args.get(3).map(|b| b.parse()).transpose()?.unwrap_or(5),
        ..Default::default()
    };
    let t1 = std::time::Instant::now();
    let t = tr.transcribe_file(Path::new(&args[2]), &opts, None)?;
    eprintln!(
        "transcribe: {:.2?} for {:.1} s of audio ({})",
        t1.elapsed(),
        t.duration,
        t.language
    );
    for s in &t.segments {
        println!("[{:.2} -> {:.2}] {}", s.start, s.end, s.text);
    }
    Ok(())
}
