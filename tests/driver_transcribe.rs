//! A whole transcription with every kernel launched through the driver trait on the simulator
//! (what `--device npu` runs, XRT replaced by [`SimDriver`]): each kernel loaded once from
//! its artefacts, its instruction words executed, its BOs written and read back. The words
//! must be the cpu backend's in the same int8 numerics, and within the WER bound of
//! tests/sim_device.rs. Needs whisper-base installed; about a minute and a half here.

use std::path::PathBuf;
use std::sync::Arc;

use aiec::driver::sim::SimDriver;
use aiec::driver::{install, installed, Loader};
use aiec::simdevice::SimBackend;
use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{Backend, Precision};
use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;

#[allow(dead_code)]
mod common;
use common::wer::wer;

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

fn transcribe(backend: Arc<dyn Backend>) -> String {
    let dir = aiec_runtime::model::install::resolve("whisper-base")
        .unwrap_or_else(|e| panic!("whisper-base is installed (aiec models install): {e}"));
    let audio = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/audio/jfk.wav");
    let tr = Transcriber::load_with(&dir, backend).expect("model loads");
    let t = tr
        .transcribe_file(&audio, &DecodeOptions::default(), None)
        .expect("jfk transcribes");
    t.text().trim().to_string()
}

#[test]
fn jfk_transcribes_with_every_kernel_on_the_sim_driver() {
    assert!(install(Loader::new(Box::new(SimDriver::default()))));
    let started = std::time::Instant::now();
    let text = transcribe(Arc::new(SimBackend::new(Precision::Int8).unwrap()));
    let seconds = started.elapsed().as_secs_f64();
    let loaded = installed().unwrap().loaded();
    eprintln!("{loaded} kernels loaded, {seconds:.1} s: {text}");
    let w = wer(JFK, &text);
    assert!(w <= 0.10, "WER {w:.3}: {text}");
    // Encoder, decoder and logits designs at least: the launches went through the trait.
    assert!(
        loaded >= 10,
        "only {loaded} kernels went through the driver"
    );
    let cpu = transcribe(Arc::new(CpuBackend::new(Precision::Int8)));
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(&text), words(&cpu), "driver vs cpu int8");
}
