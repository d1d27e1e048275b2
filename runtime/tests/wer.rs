//! Transcription quality on real speech: WER on the dev set against its reference transcripts,
//! next to faster-whisper's WER on the same clips (its outputs ship with the set), and
//! segment timing against faster-whisper's. Needs the whisper-base model installed.

mod common;

use std::sync::Arc;

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::Precision;
use aiec_runtime::decode::DecodeOptions;
use aiec_runtime::pipeline::Transcriber;
use aiec_runtime::transcript::Transcript;
use common::*;

/// Allowed WER excess over faster-whisper, in absolute points (the bound).
const WER_MARGIN: f64 = 0.005;
/// Allowed median segment boundary difference from faster-whisper, seconds.
const TIMING_MEDIAN_BOUND: f64 = 0.5;

/// Every dev-set file through `tr`: (file, reference, transcript).
fn transcribe_dev_set(tr: &Transcriber, beam: usize) -> Vec<(String, String, Transcript)> {
    let opts = DecodeOptions {
        beam_size: beam,
        ..Default::default()
    };
    references()
        .into_iter()
        .map(|(file, reference)| {
            let t = tr
                .transcribe_file(&speech_dir().join(&file), &opts, None)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            (file, reference, t)
        })
        .collect()
}

/// One dev-set run on the cpu backend: its transcripts and how long they took.
struct DevSetRun {
    files: Vec<(String, String, Transcript)>,
    seconds: f64,
}

/// The dev set through the cpu backend in `precision` at `beam`, transcribed once per test
/// binary: the faster-whisper comparison and the precision tests share the f32 runs (a
/// whole-dev-set run takes minutes, and CI keeps to its 40).
fn dev_set(precision: Precision, beam: usize) -> Arc<DevSetRun> {
    type Runs = std::sync::Mutex<std::collections::HashMap<(Precision, usize), Arc<DevSetRun>>>;
    static RUNS: std::sync::OnceLock<Runs> = std::sync::OnceLock::new();
    static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let runs = RUNS.get_or_init(Default::default);
    // One run at a time: two tests asking for the same run wait for the first, and the two
    // cores go to that run's own threads.
    let _one_at_a_time = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(run) = runs.lock().unwrap().get(&(precision, beam)) {
        return run.clone();
    }
    let tr = Transcriber::load_with(
        &model_dir("whisper-base"),
        Arc::new(CpuBackend::new(precision)),
    )
    .expect("model loads");
    let t0 = std::time::Instant::now();
    let files = transcribe_dev_set(&tr, beam);
    let run = Arc::new(DevSetRun {
        files,
        seconds: t0.elapsed().as_secs_f64(),
    });
    runs.lock().unwrap().insert((precision, beam), run.clone());
    run
}

/// Appends a line to `target/aiec-reports/wer.txt`, so a passing run's numbers can be read
/// afterwards.
fn report(line: &str) {
    eprintln!("{line}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/aiec-reports");
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("wer.txt"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn run_dev_set(beam: usize) {
    let run = dev_set(Precision::F32, beam);
    let refs = references();
    let fw = faster_whisper(beam);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut boundary_diffs = Vec::new();
    let mut timed_files = 0;
    let mut audio_seconds = 0.0;
    for (file, reference, t) in &run.files {
        audio_seconds += t.duration;
        let (fw_text, fw_segs) = fw
            .get(file)
            .unwrap_or_else(|| panic!("no faster-whisper output for {file}"));
        ours.push((reference.clone(), t.text()));
        theirs.push((reference.clone(), fw_text.clone()));
        let our_segs: Vec<(f64, f64)> = t.segments.iter().map(|s| (s.start, s.end)).collect();
        let diffs = boundary_differences(&our_segs, fw_segs);
        timed_files += usize::from(!diffs.is_empty());
        boundary_diffs.extend(diffs);
        let (w, _) = wer(&[(reference.clone(), t.text())]);
        if w > 0.3 {
            eprintln!(
                "{file}: WER {:.0}%\n  ref: {reference}\n  aiec: {}\n  fw:   {fw_text}",
                w * 100.0,
                t.text()
            );
        }
    }
    let elapsed = run.seconds;
    let (our_wer, words) = wer(&ours);
    let (fw_wer, _) = wer(&theirs);
    let median_diff = median(boundary_diffs.clone());
    let summary = format!(
        "beam {beam}: aiec WER {:.2}% vs faster-whisper {:.2}% over {words} words, {} files; median segment boundary diff {:.3} s over {} boundaries in {timed_files} files; {:.1} s for {:.1} s of audio",
        our_wer * 100.0,
        fw_wer * 100.0,
        refs.len(),
        median_diff,
        boundary_diffs.len(),
        elapsed,
        audio_seconds
    );
    report(&summary);
    assert!(
        words > 1000,
        "the dev set should have over 1000 reference words, found {words}"
    );
    assert!(
        our_wer <= fw_wer + WER_MARGIN,
        "beam {beam}: WER {:.2}% exceeds faster-whisper's {:.2}% + 0.5",
        our_wer * 100.0,
        fw_wer * 100.0
    );
    // Every file where both sides found speech is timed (not only those with equal
    // segment counts); a few short prompts have no segments on one side.
    assert!(
        timed_files * 20 >= refs.len() * 19,
        "only {timed_files} of {} files had segments on both sides",
        refs.len()
    );
    assert!(
        median_diff <= TIMING_MEDIAN_BOUND,
        "median segment boundary difference {median_diff:.3} s"
    );
}

/// Segment boundary differences between two segmentations of one file, whatever their
/// segment counts: each start is matched to the nearest start on the other side and each end
/// to the nearest end, in both directions (so a segment only one side has counts as far off
/// as its boundaries are from the other side's). Empty when either side has no segments.
fn boundary_differences(ours: &[(f64, f64)], theirs: &[(f64, f64)]) -> Vec<f64> {
    if ours.is_empty() || theirs.is_empty() {
        return Vec::new();
    }
    let nearest = |t: f64, side: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        side.iter()
            .map(|s| (pick(s) - t).abs())
            .fold(f64::INFINITY, f64::min)
    };
    let mut diffs = Vec::new();
    for (a, b) in [(ours, theirs), (theirs, ours)] {
        for s in a {
            diffs.push(nearest(s.0, b, |s| s.0));
            diffs.push(nearest(s.1, b, |s| s.1));
        }
    }
    diffs
}

#[test]
fn boundaries_are_matched_across_different_segment_counts() {
    // Ours splits [0, 4] into two segments at 2.0; theirs also ends at 4.5 instead of 4.
    let ours = [(0.0, 2.0), (2.0, 4.0)];
    let theirs = [(0.1, 4.5)];
    let mut d = boundary_differences(&ours, &theirs);
    d.sort_by(f64::total_cmp);
    let expected = [0.1, 0.1, 0.5, 0.5, 1.9, 2.5];
    assert_eq!(d.len(), expected.len());
    for (got, want) in d.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{d:?}");
    }
    assert!(boundary_differences(&ours, &[]).is_empty());
}

#[test]
fn normalisation_follows_the_dev_set_readme() {
    assert_eq!(
        normalise("Don't stop-now, 'quoted' Rock'n'roll!"),
        ["don't", "stop", "now", "quoted", "rock'n'roll"]
    );
    let (w, n) = wer(&[("a b c d".into(), "a x c".into())]);
    assert_eq!(n, 4);
    assert!((w - 0.5).abs() < 1e-12);
}

#[test]
fn dev_set_greedy_matches_faster_whisper() {
    run_dev_set(1);
}

/// Last measured 2026-12-02: aiec f32 10.50 % against faster-whisper's 11.57 %.
#[test]
#[ignore = "a further whole-dev-set run (~5 min); CI keeps its 40 minutes by running it from bench/wer_precisions.sh"]
fn dev_set_beam5_matches_faster_whisper() {
    run_dev_set(5);
}

/// Corpus WER of the dev set on the cpu backend in `precision`.
fn dev_set_wer(precision: Precision, beam: usize) -> (f64, usize) {
    let run = dev_set(precision, beam);
    let pairs: Vec<(String, String)> = run
        .files
        .iter()
        .map(|(_, reference, t)| (reference.clone(), t.text()))
        .collect();
    let (w, words) = wer(&pairs);
    report(&format!(
        "beam {beam}: cpu {precision:?} WER {:.2}% over {words} words ({:.1} s)",
        w * 100.0,
        run.seconds
    ));
    (w, words)
}

/// `precision` on the dev set at `beam` is within the margin of f32's WER.
fn within_margin_of_f32(precision: Precision, beam: usize) {
    let (base, words) = dev_set_wer(Precision::F32, beam);
    assert!(words > 1000, "{words} reference words");
    let (w, _) = dev_set_wer(precision, beam);
    assert!(
        w <= base + WER_MARGIN,
        "beam {beam}: {precision:?} WER {:.2}% exceeds f32's {:.2}% + 0.5",
        w * 100.0,
        base * 100.0
    );
}

/// Measured 2026-12-03 on the 2-core AMD EPYC: int8 10.74% vs f32 10.83% over 1210 words.
/// Before int8 passed values through bf16 where the NPU plan holds them in bf16 (layernorm,
/// GELU, attention and the KV caches; see `backend::cpu`) it was 11.82% here (10.50% on
/// another machine with the same code), most of it sonnet001, whose seventh segment repeated
/// the fifth (conditioning on the previous text), as the simulator's transcript did not.
/// With int8 logits it was 11.49% on the first machine, which is why the logits are bf16
/// under int8: [`Precision::logits`].
#[test]
#[ignore = "a further whole-dev-set run (~3 min after the f32 one); CI keeps its 40 minutes by running it from bench/wer_precisions.sh (the int8 accumulators stay tested in CI: tests/int8_accumulators.rs)"]
fn dev_set_int8_greedy_within_half_a_point_of_f32() {
    within_margin_of_f32(Precision::Int8, 1);
}

/// Measured 2026-12-02 with int8 logits: int8 10.00% vs f32 10.50% (about 7 minutes here);
/// with bf16 logits, on this machine: 10.58% vs 10.50%; with the bf16 points as well
/// (2026-12-03): 10.08% vs 10.50%.
#[test]
#[ignore = "a further whole-dev-set run (~4 min); CI keeps its 40 minutes by running it from bench/wer_precisions.sh (the int8 accumulators stay tested in CI: tests/int8_accumulators.rs)"]
fn dev_set_int8_beam5_within_half_a_point_of_f32() {
    within_margin_of_f32(Precision::Int8, 5);
}

#[test]
#[ignore = "a further dev-set run (minutes); CI keeps its 40 minutes by running it from bench/wer_precisions.sh"]
fn dev_set_bf16_greedy_within_half_a_point_of_f32() {
    within_margin_of_f32(Precision::Bf16, 1);
}

#[test]
#[ignore = "bf16 beam 5 is the slowest dev-set run (~5 min here); CI keeps its 40 minutes by running it from bench/wer_precisions.sh"]
fn dev_set_bf16_beam5_within_half_a_point_of_f32() {
    within_margin_of_f32(Precision::Bf16, 5);
}
