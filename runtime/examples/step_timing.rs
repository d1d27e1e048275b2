//! Times the decoder's pieces on a dummy encoder output: `step_timing MODEL_DIR [BATCH]`.

use std::path::Path;
use std::time::Instant;

use aiec_runtime::model::WhisperModelFiles;
use aiec_runtime::whisper::Whisper;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let files = WhisperModelFiles::load(Path::new(&args[1]))?;
    let batch: usize = args.get(2).map(|b| b.parse()).transpose()?.unwrap_or(1);
    let model = Whisper::load(&files)?;
    let d = model.decoder.d_model;
    let audio: Vec<f32> = (0..1500 * d)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let t = Instant::now();
    let cross = model.decoder.cross_kv(&audio);
    eprintln!("cross kv: {:.2?}", t.elapsed());
    let mut state = model.decoder.new_state(1);
    let t = Instant::now();
    model
        .decoder
        .forward(&mut state, &[vec![50258, 50259, 50359]], &cross, &[]);
    eprintln!("prefill 3: {:.2?}", t.elapsed());
    state.reorder(&vec![0; batch]);
    let (mut fwd, mut lg) = (0.0, 0.0);
    let steps = 40;
    for i in 0..steps {
        let t = Instant::now();
        let out =
            model
                .decoder
                .forward(&mut state, &vec![vec![400 + i as u32]; batch], &cross, &[]);
        fwd += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let l = model.decoder.logits(&out.hidden);
        lg += t.elapsed().as_secs_f64();
        std::hint::black_box(l);
    }
    eprintln!(
        "batch {batch}: per step forward {:.2} ms, logits {:.2} ms",
        fwd * 1e3 / steps as f64,
        lg * 1e3 / steps as f64
    );
    Ok(())
}
