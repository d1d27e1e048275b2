//! `aiec serve` through the official `openai` Python package, installed in a private venv
//! under the target directory (created once, reused by later runs). Dev-set clips are
//! transcribed and translated in every `response_format`; srt and vtt are parsed here,
//! verbose_json must carry segments and words, and every text must equal `aiec run`'s for
//! the same file and options. The models list and a stream are checked too.

#[allow(dead_code)]
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use serve_support::{dev_clip, jfk, run_texts, Server};

const OPENAI_VERSION: &str = "3.57.0";

/// `<target>/serve-venv/bin/python` with `openai` importable; installs it on first use.
fn venv_python() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_aiec"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let venv = target.join("serve-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                &format!("import openai; assert openai.__version__ == '{OPENAI_VERSION}'"),
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the official-client test")
            .success();
        assert!(ok, "python3 -m venv failed");
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", &format!("openai=={OPENAI_VERSION}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip install openai failed");
        assert!(ready(&python));
    }
    python
}

/// Runs the client script on `calls`; returns (model ids, one result per call).
fn client(server: &Server, calls: &[Value]) -> (Vec<String>, Vec<Value>) {
    let plan = json!({"base_url": server.base_url(), "calls": calls});
    let script = serve_support::repo().join("tests/serve_support/openai_client.py");
    let out = Command::new(venv_python())
        .arg(script)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openai client failed: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    (ids, v["results"].as_array().unwrap().clone())
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One subtitle cue.
#[derive(Debug)]
struct Cue {
    start: f64,
    end: f64,
    text: String,
}

/// `[HH:]MM:SS<marker>mmm` to seconds; `hours_required` for srt.
fn parse_time(s: &str, marker: char, hours_required: bool) -> f64 {
    let (clock, ms) = s
        .split_once(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in {s:?}"));
    assert_eq!(ms.len(), 3, "milliseconds in {s:?}");
    let parts: Vec<&str> = clock.split(':').collect();
    assert!(
        parts.len() == 3 || (!hours_required && parts.len() == 2),
        "clock {s:?}"
    );
    let mut seconds = 0.0;
    for p in &parts {
        assert_eq!(p.len(), 2, "two digits in {s:?}");
        seconds = seconds * 60.0 + p.parse::<f64>().unwrap();
    }
    seconds + ms.parse::<f64>().unwrap() / 1000.0
}

fn parse_timing(line: &str, marker: char, hours_required: bool) -> (f64, f64) {
    let (a, b) = line
        .split_once(" --> ")
        .unwrap_or_else(|| panic!("timing line {line:?}"));
    (
        parse_time(a, marker, hours_required),
        parse_time(b, marker, hours_required),
    )
}

/// SubRip: numbered cues `n`, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text lines, blank line.
fn parse_srt(srt: &str) -> Vec<Cue> {
    let mut cues = Vec::new();
    for (i, block) in srt.trim_end().split("\n\n").enumerate() {
        let mut lines = block.lines();
        assert_eq!(lines.next().unwrap().parse::<usize>().unwrap(), i + 1);
        let (start, end) = parse_timing(lines.next().unwrap(), ',', true);
        let text: Vec<&str> = lines.collect();
        assert!(!text.is_empty(), "cue {} has no text", i + 1);
        cues.push(Cue {
            start,
            end,
            text: text.join(" "),
        });
    }
    cues
}

/// WebVTT: `WEBVTT` header, blank line, cues `[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm` + text.
fn parse_vtt(vtt: &str) -> Vec<Cue> {
    let body = vtt.strip_prefix("WEBVTT\n\n").expect("WEBVTT header");
    body.trim_end()
        .split("\n\n")
        .map(|block| {
            let mut lines = block.lines();
            let (start, end) = parse_timing(lines.next().unwrap(), '.', false);
            let text: Vec<&str> = lines.collect();
            assert!(!text.is_empty());
            Cue {
                start,
                end,
                text: text.join(" "),
            }
        })
        .collect()
}

fn check_cues(cues: &[Cue], reference: &str, duration: f64, what: &str) {
    assert!(!cues.is_empty(), "{what}: no cues");
    let mut last = 0.0;
    for c in cues {
        assert!(c.start >= last - 1e-9 && c.end >= c.start, "{what}: {c:?}");
        assert!(c.end <= duration + 0.5, "{what}: cue past the end {c:?}");
        last = c.start;
    }
    let text: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(squash(&text.join(" ")), squash(reference), "{what}");
}

fn check_verbose(v: &Value, reference: &str, task: &str, words: bool, what: &str) {
    assert_eq!(v["text"].as_str().unwrap(), reference, "{what}");
    assert_eq!(v["task"], task, "{what}");
    assert_eq!(v["language"], "english", "{what}");
    let duration = v["duration"].as_f64().unwrap();
    let segments = v["segments"].as_array().expect("segments");
    assert!(!segments.is_empty(), "{what}: no segments");
    let joined: String = segments
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined.trim(), reference, "{what}");
    for s in segments {
        let (a, b) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
        assert!(0.0 <= a && a <= b && b <= duration + 0.5, "{what}: {s}");
    }
    if !words {
        return;
    }
    let words = v["words"].as_array().expect("words");
    assert!(!words.is_empty(), "{what}: no words");
    let mut last = 0.0;
    for w in words {
        let (a, b) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
        assert!(
            a >= last - 1e-9 && a <= b && b <= duration + 0.5,
            "{what}: {w}"
        );
        last = a;
    }
    let spelled: String = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
    let no_space = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(
        no_space(&spelled),
        no_space(reference),
        "{what}: words spell the text"
    );
}

const FORMATS: [&str; 5] = ["json", "text", "srt", "verbose_json", "vtt"];

fn check_format(format: &str, r: &Value, reference: &str, task: &str, duration: f64, what: &str) {
    match format {
        "json" => assert_eq!(r["text"].as_str().unwrap(), reference, "{what}"),
        "text" => assert_eq!(r["str"].as_str().unwrap().trim(), reference, "{what}"),
        "srt" => check_cues(
            &parse_srt(r["str"].as_str().unwrap()),
            reference,
            duration,
            what,
        ),
        "vtt" => check_cues(
            &parse_vtt(r["str"].as_str().unwrap()),
            reference,
            duration,
            what,
        ),
        "verbose_json" => check_verbose(r, reference, task, task == "transcribe", what),
        _ => unreachable!(),
    }
}

#[test]
fn the_official_client_transcribes_translates_lists_and_streams() {
    let model = "whisper-base";
    let clips = [
        jfk(),
        dev_clip("pocketsphinx/sense_and_sensibility_01_austen_64kb-0880.flac"),
    ];
    let durations = [11.0, 2.99];
    let paths: Vec<&Path> = clips.iter().map(PathBuf::as_path).collect();
    // `aiec run` with the same options: the defaults, and word timestamps for the
    // verbose_json request that asks for words.
    let plain = run_texts(model, &paths, &[]);
    let worded = run_texts(model, &paths, &["--word-timestamps"]);
    let translated = run_texts(model, &paths[1..], &["--task", "translate"]);
    assert!(
        plain[0].contains("ask not what your country can do for you"),
        "{}",
        plain[0]
    );

    let server = Server::start(&["--model", model, "--model", "tiny.en"]);
    let mut calls = Vec::new();
    let mut expect = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        for format in FORMATS {
            let mut call = json!({"endpoint": "transcriptions", "file": clip, "model": model,
                                  "response_format": format});
            let reference = if format == "verbose_json" {
                call["timestamp_granularities"] = json!(["segment", "word"]);
                &worded[i]
            } else {
                &plain[i]
            };
            calls.push(call);
            expect.push((format, reference.clone(), "transcribe", durations[i]));
        }
    }
    for format in FORMATS {
        calls.push(
            json!({"endpoint": "translations", "file": clips[1], "model": model,
                          "response_format": format}),
        );
        expect.push((format, translated[0].clone(), "translate", durations[1]));
    }
    calls.push(
        json!({"endpoint": "transcriptions", "file": clips[0], "model": model,
                      "response_format": "json", "stream": true}),
    );

    let (ids, results) = client(&server, &calls);
    assert_eq!(ids, ["whisper-base", "tiny.en"]);
    assert_eq!(results.len(), calls.len());
    for ((format, reference, task, duration), (r, call)) in
        expect.iter().zip(results.iter().zip(&calls))
    {
        check_format(format, r, reference, task, *duration, &call.to_string());
    }
    let stream = results.last().unwrap();
    let deltas: Vec<&str> = stream["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        deltas.len() >= 2,
        "jfk has two segments, so two deltas: {deltas:?}"
    );
    assert_eq!(deltas.concat(), stream["done"].as_str().unwrap());
    assert_eq!(stream["done"].as_str().unwrap(), plain[0]);
}

/// `stream=true` sends each segment's delta when its window is decoded, not all at the end:
/// on an 87 s clip (three windows) the first delta arrives well before the final event.
#[test]
fn stream_deltas_arrive_while_the_rest_is_decoded() {
    use std::io::{Read, Write};
    let server = Server::start(&["--model", "tiny.en"]);
    let form = serve_support::Multipart::new()
        .file_path(&dev_clip("synthetic_espeak/gettysburg.wav"))
        .text("model", "tiny.en")
        .text("stream", "true");
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    conn.write_all(&form.request("/v1/audio/transcriptions", server.addr))
        .unwrap();
    let sent = std::time::Instant::now();
    let (mut raw, mut buf) = (Vec::new(), [0u8; 4096]);
    let (mut first_delta, mut done) = (None, None);
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let seen = String::from_utf8_lossy(&raw);
        if first_delta.is_none() && seen.contains("transcript.text.delta") {
            first_delta = Some(sent.elapsed().as_secs_f64());
        }
        if done.is_none() && seen.contains("transcript.text.done") {
            done = Some(sent.elapsed().as_secs_f64());
        }
    }
    let (first_delta, done) = (first_delta.expect("a delta"), done.expect("the done event"));
    assert!(
        first_delta < 0.7 * done,
        "first delta at {first_delta:.2} s, done at {done:.2} s: not streamed"
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("text/event-stream"), "{text}");
}
