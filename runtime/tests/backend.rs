//! The device seam on a real clip: every tensor op of an encode + decode of jfk.wav is a
//! backend launch (counted per op kind and checked against the layer structure), and the
//! int8 and bf16 numerics transcribe it like f32. Needs the whisper-base model installed.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{Backend, OpKind, Precision};
use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;
use common::*;

fn jfk() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/audio/jfk.wav")
}

fn transcribe(precision: Precision, beam: usize) -> (String, Transcriber) {
    let backend: Arc<dyn Backend> = Arc::new(CpuBackend::new(precision));
    let tr = Transcriber::load_with(&model_dir("whisper-base"), backend).expect("model loads");
    let opts = DecodeOptions {
        beam_size: beam,
        ..Default::default()
    };
    let t = tr
        .transcribe_file(&jfk(), &opts, None)
        .expect("jfk transcribes");
    (t.text(), tr)
}

#[test]
fn every_tensor_op_of_encode_and_decode_is_a_backend_launch() {
    let (text, tr) = transcribe(Precision::F32, 1);
    assert!(
        text.contains("ask not what your country can do for you"),
        "{text}"
    );
    let dims = tr.files.dims;
    let (le, ld) = (dims.n_layers_enc as u64, dims.n_layers_dec as u64);
    let stats = tr.model.backend().stats();
    let n = |k: OpKind| stats.get(k).launches;
    // The host holds no layer weights (only token embeddings and positions), so the forward
    // cannot compute a layer without the backend. The counts follow from the structure:
    // per window, 2 convolutions, 1 position add, per encoder layer 2 norms, 4 products and
    // 1 attention, a final norm, and per decoder layer 1 cross K/V product + store write;
    // per decoder call, per layer 3 norms, 6 products, 2 attentions, 1 cache write, and a
    // final norm.
    let windows = n(OpKind::Conv) / 2;
    assert!(windows >= 1 && n(OpKind::Conv) == 2 * windows);
    assert_eq!(n(OpKind::Add), windows);
    let attention_per_window = windows * le;
    assert_eq!((n(OpKind::Attention) - attention_per_window) % (2 * ld), 0);
    let calls = (n(OpKind::Attention) - attention_per_window) / (2 * ld);
    assert!(
        calls >= 5,
        "a sentence takes several decoder calls, got {calls}"
    );
    assert_eq!(
        n(OpKind::LayerNorm),
        windows * (2 * le + 1) + calls * (3 * ld + 1)
    );
    assert_eq!(n(OpKind::Linear), windows * (4 * le + ld) + calls * 6 * ld);
    assert_eq!(n(OpKind::KvWrite), windows * ld + calls * ld);
    assert!(
        n(OpKind::Logits) >= calls,
        "every decoder call is followed by logits"
    );
    // One mel kernel launch per 30 s of audio (jfk is 11 s).
    assert_eq!(n(OpKind::LogMel), 1);
    let total: u64 = stats.totals().iter().map(|t| t.launches).sum();
    assert!(stats
        .totals()
        .iter()
        .all(|t| t.launches == 0 || t.host.as_nanos() > 0));
    assert!(total > 200, "{total}");
}

/// Word error rate of `hyp` against `reference` (both normalised).
fn word_errors(reference: &str, hyp: &str) -> (usize, usize) {
    let r = normalise(reference);
    (edit_distance(&r, &normalise(hyp)), r.len())
}

#[test]
fn int8_and_bf16_transcribe_jfk_like_f32() {
    let (f32_text, _) = transcribe(Precision::F32, 5);
    for precision in [Precision::Int8, Precision::Bf16] {
        let (text, tr) = transcribe(precision, 5);
        let (errors, words) = word_errors(&f32_text, &text);
        eprintln!("{precision:?}: {text}\n  vs f32: {f32_text} ({errors} of {words} words differ)");
        // Stated bound: at most one word of the 22 may differ (observed: none).
        assert!(
            words > 20 && errors <= 1,
            "{precision:?}: {errors} of {words} words differ"
        );
        assert!(tr.model.backend().stats().get(OpKind::Linear).launches > 0);
    }
}

/// A file transcribed as it streams (its samples never held, the log-mel built block by
/// block) gives the transcript of its samples loaded whole: the same segments, times and
/// tokens, on an 87 s clip of three windows.
#[test]
fn a_streamed_file_gives_the_transcript_of_its_loaded_samples() {
    let clip = speech_dir().join("audio/synthetic_espeak/gettysburg.wav");
    let backend: Arc<dyn Backend> = Arc::new(CpuBackend::new(Precision::Int8));
    let tr = Transcriber::load_with(&model_dir("whisper-base"), backend).expect("model loads");
    let opts = DecodeOptions::default();
    let streamed = tr.transcribe_file(&clip, &opts, None).expect("streams");
    let samples = aiec_runtime::audio::load(&clip).expect("decodes");
    let loaded = tr
        .transcribe_samples(&samples, &opts, None)
        .expect("transcribes");
    assert!(streamed.segments.len() >= 6, "{:?}", streamed.segments);
    assert!(streamed.duration > 80.0, "{}", streamed.duration);
    assert_eq!(streamed, loaded);
}
