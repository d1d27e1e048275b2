//! Voice activity detection (`--vad-filter`, `vad_filter`).
//!
//! - Speech timestamps from our VAD (tract + our span rules) equal those of the PyPI package
//!   `silero-vad` itself, the release whose ONNX graph `aiec models install silero-vad`
//!   installs, within 30 ms on every dev clip, for faster-whisper's defaults (what
//!   `--vad-filter` uses), silero's defaults, and a parameter set that splits long spans.
//!   The reference runs in a private venv under the target directory (created once, reused):
//!   the package's `get_speech_timestamps` with its streaming ONNX model, and its
//!   `get_speech_timestamps_sequence` with the graph we run, whose per-window
//!   probabilities are checked against ours too.
//! - A missing or broken VAD model, and bad VAD parameters, fail with one clear error (the
//!   CLI: non-zero exit; the server: 400).
//! - On dev clips glued together with 20 s silences, `--vad-filter` is no worse in WER and
//!   keeps timestamps on the original timeline (bench/vad.sh measures the speed).
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
use serde_json::{json, Value};
use serve_support::{aiec, Multipart, Server};

/// The package release whose graph we install (`model/install/known.rs` pins the same).
const SILERO_VAD: &str = "6.2.3";
/// silero-vad imports torch even on its ONNX paths; 2.8 is the newest its test extra allows.
const TORCH: &str = "2.8.0";
const ONNXRUNTIME: &str = "1.32.0";
const NUMPY: &str = "2.4.6";
/// 30 ms at 16 kHz.
const TOLERANCE_SAMPLES: usize = 480;

/// A dev-set clip, from the same set (`common::wer::speech_dir`) as its reference text.
fn dev_clip(rel: &str) -> PathBuf {
    common::wer::speech_dir().join("audio").join(rel)
}

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

/// `<target>/silero-vad-venv/bin/python`, with silero-vad (and the torch, onnxruntime and
/// numpy it needs) importable at the pinned versions; installed from PyPI on first use.
fn reference_python() -> PathBuf {
    let venv = target_dir().join("silero-vad-venv");
    let python = venv.join("bin/python");
    let check = format!(
        "import silero_vad, torch, onnxruntime, numpy; \
         assert silero_vad.__version__ == '{SILERO_VAD}', silero_vad.__version__; \
         assert onnxruntime.__version__ == '{ONNXRUNTIME}', onnxruntime.__version__"
    );
    let ready = || {
        Command::new(&python)
            .args(["-c", &check])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        run_ok(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run_ok(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                &format!("silero-vad=={SILERO_VAD}"),
                &format!("torch=={TORCH}"),
                &format!("onnxruntime=={ONNXRUNTIME}"),
                &format!("numpy=={NUMPY}"),
            ]),
            "pip install silero-vad",
        );
        assert!(ready(), "the silero-vad venv is still not usable");
    }
    python
}

/// One parameter set, as we take it and as the package's keyword arguments.
struct OptionSet {
    name: &'static str,
    ours: VadOptions,
    python: Value,
}

fn option_sets() -> Vec<OptionSet> {
    let faster_whisper = VadOptions::default();
    let silero = VadOptions {
        min_speech_duration_ms: 250,
        min_silence_duration_ms: 100,
        speech_pad_ms: 30,
        ..VadOptions::default()
    };
    let split = VadOptions {
        max_speech_duration_s: 3.0,
        min_silence_duration_ms: 500,
        speech_pad_ms: 30,
        threshold: 0.6,
        ..VadOptions::default()
    };
    let kwargs = |o: &VadOptions| {
        let mut v = json!({
            "threshold": o.threshold,
            "min_speech_duration_ms": o.min_speech_duration_ms,
            "min_silence_duration_ms": o.min_silence_duration_ms,
            "speech_pad_ms": o.speech_pad_ms,
            // faster-whisper's (and our) rule for an over-long span: cut at the last pause
            // of 98 ms or more, the package's legacy choice.
            "use_max_poss_sil_at_max_speech": false,
        });
        if o.max_speech_duration_s.is_finite() {
            v["max_speech_duration_s"] = json!(o.max_speech_duration_s);
        }
        v
    };
    vec![
        OptionSet {
            name: "faster-whisper's defaults (--vad-filter)",
            python: kwargs(&faster_whisper),
            ours: faster_whisper,
        },
        OptionSet {
            name: "silero-vad's defaults",
            python: kwargs(&silero),
            ours: silero,
        },
        OptionSet {
            name: "spans split at 3 s",
            python: kwargs(&split),
            ours: split,
        },
    ]
}

/// The package's answer for one clip: per-window probabilities of the graph we run, and per
/// option set the spans of `get_speech_timestamps` and of `get_speech_timestamps_sequence`.
struct Reference {
    probs: Vec<f32>,
    spans: Vec<(Vec<SpeechSpan>, Vec<SpeechSpan>)>,
}

fn reference(clips: &[PathBuf], sets: &[OptionSet]) -> Vec<Reference> {
    let script = serve_support::repo().join("tests/vad_support/silero_vad_reference.py");
    let plan = json!({
        "clips": clips,
        "option_sets": sets.iter().map(|s| s.python.clone()).collect::<Vec<_>>(),
    });
    let out = Command::new(reference_python())
        .arg(script)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference VAD failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], SILERO_VAD);
    let spans = |v: &Value| -> Vec<SpeechSpan> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| SpeechSpan {
                start: s[0].as_u64().unwrap() as usize,
                end: s[1].as_u64().unwrap() as usize,
            })
            .collect()
    };
    v["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Reference {
            probs: c["probs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap() as f32)
                .collect(),
            spans: c["sets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (spans(&s["spans"]), spans(&s["sequence_spans"])))
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

/// Dev clips glued with long silences: speech, 20 s of silence, speech, ...
const GLUED: [&str; 3] = [
    "jfk/jfk.wav",
    "pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav",
    "pocketsphinx/sense_and_sensibility_01_austen_64kb-0890.ogg",
];
const GAP_SECONDS: usize = 20;

/// The glued audio, its reference text, and where each clip lies in it (seconds).
fn glued_clip() -> (Vec<f32>, String, Vec<(f64, f64)>) {
    let mut samples = Vec::new();
    let mut text = Vec::new();
    let mut spans = Vec::new();
    for (i, rel) in GLUED.iter().enumerate() {
        if i > 0 {
            samples.extend(std::iter::repeat_n(0.0f32, GAP_SECONDS * 16000));
        }
        let clip = audio::load(&dev_clip(rel)).unwrap();
        let start = samples.len() as f64 / 16000.0;
        samples.extend_from_slice(&clip);
        spans.push((start, samples.len() as f64 / 16000.0));
        text.push(common::wer::reference_text(&format!("audio/{rel}")));
    }
    (samples, text.join(" "), spans)
}

fn installed_vad() -> VadFilter {
    let models = install::models_dir().unwrap();
    let model = vad::load_installed(&models)
        .expect("the VAD model is needed: `aiec models install silero-vad`");
    VadFilter::new(std::sync::Arc::new(model), VadOptions::default()).unwrap()
}

fn fmt_spans(s: &[SpeechSpan]) -> String {
    s.iter()
        .map(|s| format!("{:.3}-{:.3}", s.start as f64 / 16e3, s.end as f64 / 16e3))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The largest boundary distance between `ours` and `reference`, in samples; `None` when
/// they do not have the same number of spans.
fn boundary_distance(ours: &[SpeechSpan], reference: &[SpeechSpan]) -> Option<usize> {
    (ours.len() == reference.len()).then(|| {
        ours.iter()
            .zip(reference)
            .map(|(a, b)| a.start.abs_diff(b.start).max(a.end.abs_diff(b.end)))
            .max()
            .unwrap_or(0)
    })
}

#[test]
fn speech_timestamps_equal_silero_vads_within_30_ms_on_every_dev_clip() {
    // The venv must hold the release we install.
    let known = install::find_known(vad::MODEL_NAME).unwrap();
    assert_eq!(known.packages, [format!("silero-vad=={SILERO_VAD}")]);

    let dir = tempfile::tempdir().unwrap();
    let filter = installed_vad();
    let mut clips: Vec<(String, Vec<f32>)> = common::wer::dev_set_files()
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix("audio/").unwrap_or(&f).to_string();
            let samples = audio::load(&dev_clip(&rel)).unwrap();
            (rel, samples)
        })
        .collect();
    assert!(clips.len() >= 150, "only {} dev clips", clips.len());
    clips.push(("glued clips with 20 s silences".into(), glued_clip().0));
    // Both sides judge the same samples: ours, decoded and resampled by aiec.
    let raw: Vec<PathBuf> = clips
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let p = dir.path().join(format!("{i}.f32"));
            write_f32(&p, s);
            p
        })
        .collect();
    let sets = option_sets();
    let refs = reference(&raw, &sets);
    assert_eq!(refs.len(), clips.len());

    let mut failures = Vec::new();
    let mut worst = vec![0usize; sets.len()];
    let mut span_count = vec![0usize; sets.len()];
    let mut worst_prob = 0f32;
    let mut vad_seconds = 0.0;
    let audio_seconds: f64 = clips.iter().map(|(_, s)| s.len() as f64 / 16e3).sum();
    for ((name, samples), r) in clips.iter().zip(&refs) {
        let started = Instant::now();
        let probs = filter.model.probabilities(samples).unwrap();
        vad_seconds += started.elapsed().as_secs_f64();
        assert_eq!(probs.len(), r.probs.len(), "{name}: window count");
        let prob_diff = probs
            .iter()
            .zip(&r.probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst_prob = worst_prob.max(prob_diff);
        for (k, (set, (streaming, sequence))) in sets.iter().zip(&r.spans).enumerate() {
            let ours = vad::speech_spans(&probs, samples.len(), &set.ours);
            span_count[k] += ours.len();
            for (what, reference) in [
                ("get_speech_timestamps", streaming),
                ("get_speech_timestamps_sequence", sequence),
            ] {
                match boundary_distance(&ours, reference) {
                    Some(d) if d <= TOLERANCE_SAMPLES => worst[k] = worst[k].max(d),
                    d => failures.push(format!(
                        "{name}, {}: ours {} vs {what} {} ({d:?} samples apart)",
                        set.name,
                        fmt_spans(&ours),
                        fmt_spans(reference)
                    )),
                }
            }
        }
    }
    for (k, set) in sets.iter().enumerate() {
        println!(
            "{}: {} clips, {} spans, largest boundary difference {} samples ({:.1} ms)",
            set.name,
            clips.len(),
            span_count[k],
            worst[k],
            worst[k] as f64 / 16.0
        );
    }
    println!(
        "largest probability difference {worst_prob:.2e}; our VAD: {vad_seconds:.2} s for {audio_seconds:.0} s of audio"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The spans could agree with wrong probabilities only by luck: the network is checked
    // too (float32 in both runtimes, different summation orders).
    assert!(worst_prob < 1e-4, "probabilities differ by {worst_prob}");
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
    fails_with(
        aiec()
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .args(["--vad-filter", "--vad-threshold", "0"]),
        "--vad-threshold 0: must be between 0 and 1",
    );
    // Negative durations: our message, not the argument parser's.
    for flag in [
        "--vad-min-silence-duration-ms",
        "--vad-min-speech-duration-ms",
        "--vad-speech-pad-ms",
    ] {
        fails_with(
            aiec()
                .args(["run", "tiny.en"])
                .arg(&jfk)
                .args(["--vad-filter", flag, "-100"]),
            &format!("{flag} -100: must be a whole number of milliseconds from 0 to 3600000"),
        );
    }
    fails_with(
        aiec().args(["run", "tiny.en"]).arg(&jfk).args([
            "--vad-filter",
            "--vad-max-speech-duration-s",
            "-3",
        ]),
        "--vad-max-speech-duration-s -3: must be more than",
    );
    fails_with(
        aiec()
            .args(["run", "tiny.en"])
            .arg(&jfk)
            .args(["--vad-filter", "--vad-threshold", "high"]),
        "--vad-threshold: `high` is not a number",
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

/// What `aiec run tiny.en FILE -f json ARGS` answered.
struct Run {
    text: String,
    segments: Vec<Timed>,
}

/// A segment's start and end, and each of its words' (empty without word timestamps).
type Timed = (f64, f64, Vec<(f64, f64)>);

fn run_json(file: &Path, extra: &[&str]) -> Run {
    let out = aiec()
        .args(["run", "tiny.en"])
        .arg(file)
        .args(["-f", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aiec run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let times = |s: &Value| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
    let segments = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let words = s["words"]
                .as_array()
                .map(|w| w.iter().map(times).collect())
                .unwrap_or_default();
            let (start, end) = times(s);
            (start, end, words)
        })
        .collect();
    Run {
        text: v["text"].as_str().unwrap().to_string(),
        segments,
    }
}

#[test]
fn vad_filter_keeps_timestamps_on_the_original_timeline_and_wer_no_worse() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, reference, clip_spans) = glued_clip();
    let wav = dir.path().join("glued.wav");
    write_wav(&wav, &samples);

    let plain = run_json(&wav, &["--word-timestamps"]);
    let filtered = run_json(&wav, &["--word-timestamps", "--vad-filter"]);
    let plain_wer = common::wer::wer(&reference, &plain.text);
    let vad_wer = common::wer::wer(&reference, &filtered.text);
    println!(
        "{:.1} s of audio ({} dev clips at {clip_spans:?}, {GAP_SECONDS} s silences between):\n  without VAD: WER {:.2} %: {}\n  --vad-filter: WER {:.2} %: {}",
        samples.len() as f64 / 16e3,
        GLUED.len(),
        plain_wer * 100.0,
        plain.text,
        vad_wer * 100.0,
        filtered.text
    );
    assert!(
        vad_wer <= plain_wer,
        "VAD WER {vad_wer} worse than {plain_wer}"
    );
    // Mapped back, every segment and word starts inside one of the inserted clips, widened
    // by the 0.4 s the VAD pads each span with (that audio is decoded too), and ends by
    // that clip's padded end; without the mapping they would sit up to 40 s early.
    // Ends may reach one 20 ms Whisper timestamp step further: in the glued audio a span's
    // end touches the next span's start, and an end time is rounded to the step.
    let pad = f64::from(VadOptions::default().speech_pad_ms) / 1000.0;
    let end_slack = pad + 0.02;
    let clip_of = |t: f64| {
        clip_spans
            .iter()
            .position(|&(a, b)| t >= a - pad && t < b + pad)
    };
    let mut words = 0;
    for (start, end, ws) in &filtered.segments {
        let clip = clip_of(*start)
            .unwrap_or_else(|| panic!("segment {start}-{end} starts in no clip ({clip_spans:?})"));
        assert!(
            *end <= clip_spans[clip].1 + end_slack,
            "segment {start}-{end} runs past clip {clip} {:?}",
            clip_spans[clip]
        );
        for (ws_start, ws_end) in ws {
            words += 1;
            let c = clip_of(*ws_start);
            assert!(
                c == Some(clip) && *ws_end <= clip_spans[clip].1 + end_slack,
                "word {ws_start}-{ws_end} of segment {start}-{end} is outside clip {clip} {:?}",
                clip_spans[clip]
            );
        }
    }
    assert!(words > 40, "only {words} words with timestamps");
    for (i, (a, b)) in clip_spans.iter().enumerate() {
        assert!(
            filtered
                .segments
                .iter()
                .any(|(s, _, _)| clip_of(*s) == Some(i)),
            "no segment starts in clip {i} at {a}-{b}: {:?}",
            filtered.segments
        );
    }
}

#[test]
fn audio_without_speech_has_no_segments_with_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("silence.wav");
    write_wav(&wav, &vec![0.0; 5 * 16000]);
    let r = run_json(&wav, &["--vad-filter"]);
    assert!(r.segments.is_empty(), "{:?}", r.segments);
    assert_eq!(r.text, "");
}

#[test]
fn serve_honours_vad_filter_as_run_does_and_refuses_bad_vad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, _, _) = glued_clip();
    let wav = dir.path().join("glued.wav");
    write_wav(&wav, &samples);
    let run = run_json(&wav, &["--vad-filter"]);
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
    assert_eq!(v["text"].as_str().unwrap().trim(), run.text.trim());
    let segments: Vec<(f64, f64)> = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(segments.len(), run.segments.len());
    for ((a, b), (c, d, _)) in segments.iter().zip(&run.segments) {
        assert!(
            (a - c).abs() < 0.011 && (b - d).abs() < 0.011,
            "{segments:?} vs {:?}",
            run.segments
        );
    }
    // Bad parameters: 400, OpenAI's error shape naming the field; the server goes on.
    for (field, value, with_filter, message) in [
        (
            "vad_threshold",
            "1.5",
            true,
            "vad_threshold: 1.5: must be between 0 and 1",
        ),
        (
            "vad_min_silence_duration_ms",
            "-100",
            true,
            "vad_min_silence_duration_ms: -100: must be a whole number of milliseconds",
        ),
        (
            "vad_speech_pad_ms",
            "wide",
            true,
            "vad_speech_pad_ms: `wide` is not a number",
        ),
        (
            "vad_threshold",
            "0.3",
            false,
            "vad_threshold needs vad_filter=true",
        ),
    ] {
        let mut form = Multipart::new()
            .text("model", "tiny.en")
            .text(field, value)
            .file_path(&dev_clip("jfk/jfk.wav"));
        if with_filter {
            form = form.text("vad_filter", "true");
        }
        let r = server.post("/v1/audio/transcriptions", &form);
        assert_eq!(r.status, 400, "{field}={value}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["param"], field, "{e}");
        assert_eq!(e["type"], "invalid_request_error", "{e}");
        let got = e["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{field}={value}: {got}");
    }
    let r = server.post(
        "/v1/audio/transcriptions",
        &Multipart::new()
            .text("model", "tiny.en")
            .text("response_format", "text")
            .text("vad_filter", "true")
            .text("vad_speech_pad_ms", "200")
            .file_path(&dev_clip("jfk/jfk.wav")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn serve_without_the_vad_model_answers_400_naming_the_install_command() {
    // A home whose models directory holds tiny.en but no silero-vad.
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(
        install::models_dir().unwrap().join("tiny.en"),
        models.join("tiny.en"),
    )
    .unwrap();
    let server = Server::start_with_env(&["--model", "tiny.en"], &[("AIEC_HOME", home.path())]);
    let jfk = dev_clip("jfk/jfk.wav");
    let r = server.post(
        "/v1/audio/transcriptions",
        &Multipart::new()
            .text("model", "tiny.en")
            .text("vad_filter", "true")
            .file_path(&jfk),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &r.json()["error"];
    assert_eq!(e["param"], "vad_filter", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("run `aiec models install silero-vad`"),
        "{message}"
    );
    // The server goes on serving.
    let r = server.post(
        "/v1/audio/transcriptions",
        &Multipart::new()
            .text("model", "tiny.en")
            .text("response_format", "text")
            .file_path(&jfk),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The VAD run as a file streams: the probabilities of audio pushed in chunks of any size
/// are those of the whole audio, bit for bit, and `transcribe_path` (two passes over the
/// file, no samples held) gives the transcript of the samples loaded and filtered whole.
#[test]
fn the_streamed_vad_filter_gives_the_in_memory_transcript() {
    let filter = installed_vad();
    let (samples, _, _) = glued_clip();
    let whole = filter.model.probabilities(&samples).unwrap();
    for chunk in [1_000usize, 262_144, 300_001] {
        let mut stream = filter.model.stream().unwrap();
        for piece in samples.chunks(chunk) {
            stream.push(piece).unwrap();
        }
        let got = stream.finish().unwrap();
        let same = got.len() == whole.len()
            && got
                .iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "chunks of {chunk}: probabilities differ");
    }

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("glued.wav");
    write_wav(&wav, &samples);
    let models = install::models_dir().unwrap();
    let tr = aiec_runtime::pipeline::Transcriber::load(&models.join("tiny.en")).unwrap();
    let opts = aiec_runtime::decode::DecodeOptions::default();
    let never = std::sync::atomic::AtomicBool::new(false);
    let limits = audio::InputLimits::default();
    let streamed = tr
        .transcribe_path(
            &wav,
            &limits,
            &opts,
            Some(&filter),
            None,
            &mut |_| {},
            &never,
        )
        .unwrap();
    let loaded = audio::load(&wav).unwrap();
    let filtered = tr
        .transcribe_filtered(&loaded, &opts, Some(&filter), None, &mut |_| {}, &never)
        .unwrap();
    assert!(streamed.segments.len() >= 3, "{:?}", streamed.segments);
    assert_eq!(streamed, filtered);
}
