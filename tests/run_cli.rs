//! `aiec run` end to end through the binary: outputs, several inputs, and one clear error with a
//! non-zero exit for each kind of bad input. Needs whisper-base installed (or
//! `AIEC_TEST_MODEL_DIR`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(dead_code)]
mod common;
use common::process::assert_success;

fn aiec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aiec"))
}

fn model_dir() -> PathBuf {
    if let Ok(d) = std::env::var("AIEC_TEST_MODEL_DIR") {
        return PathBuf::from(d);
    }
    aiec_runtime::model::install::resolve("whisper-base")
        .unwrap_or_else(|e| panic!("{e} (the CLI tests need the model)"))
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/audio/jfk.wav")
}

fn run(args: &[&str]) -> Output {
    let md = model_dir();
    let mut cmd = aiec();
    cmd.arg("run")
        .arg("whisper-base")
        .arg("--model-dir")
        .arg(&md)
        .args(args);
    cmd.output().expect("aiec runs")
}

/// A failure must be one `error:` message naming `needle`, a non-zero exit, and no panic.
fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains("error:"), "no error line: {stderr}");
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "error does not mention `{needle}`: {stderr}"
    );
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn transcribes_the_bundled_sample_to_stdout() {
    let out = run(&[sample().to_str().unwrap()]);
    assert_success(&out, "aiec run");
    let got = words(&String::from_utf8_lossy(&out.stdout));
    let reference = words("And so, my fellow Americans, ask not what your country can do for you; ask what you can do for your country.");
    assert_eq!(got, reference);
}

#[test]
fn writes_every_format_for_several_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("second.wav");
    std::fs::copy(sample(), &second).unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        sample().to_str().unwrap(),
        second.to_str().unwrap(),
        "-f",
        "all",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_success(&out, "aiec run");
    for stem in ["jfk", "second"] {
        for ext in ["txt", "srt", "vtt", "json", "tsv"] {
            let p = out_dir.join(format!("{stem}.{ext}"));
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|_| panic!("missing {}", p.display()));
            assert!(
                text.to_lowercase().contains("country"),
                "{}: {text}",
                p.display()
            );
        }
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join(format!("{stem}.json"))).unwrap(),
        )
        .unwrap();
        let segs = json["segments"].as_array().expect("segments");
        assert!(!segs.is_empty());
        for key in [
            "id",
            "start",
            "end",
            "text",
            "tokens",
            "avg_logprob",
            "no_speech_prob",
            "compression_ratio",
        ] {
            assert!(segs[0].get(key).is_some(), "segment lacks {key}");
        }
        assert_eq!(json["language"], "en");
        let srt = std::fs::read_to_string(out_dir.join(format!("{stem}.srt"))).unwrap();
        assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
    }
}

#[test]
fn word_timestamps_are_ordered_and_inside_segments() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        sample().to_str().unwrap(),
        "--word-timestamps",
        "-f",
        "json",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_success(&out, "aiec run");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("jfk.json")).unwrap())
            .unwrap();
    let mut last_end = 0.0;
    let mut n = 0;
    for seg in json["segments"].as_array().unwrap() {
        let (s0, s1) = (seg["start"].as_f64().unwrap(), seg["end"].as_f64().unwrap());
        for w in seg["words"].as_array().expect("words") {
            let (a, b) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
            assert!(
                a <= b && a + 1e-6 >= last_end - 0.02,
                "word {w} out of order"
            );
            assert!(
                a >= s0 - 0.02 && b <= s1 + 0.02,
                "word {w} outside its segment [{s0}, {s1}]"
            );
            let p = w["probability"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p));
            last_end = b;
            n += 1;
        }
    }
    assert_eq!(n, 22, "jfk has 22 words");
    // "country" is said last, ending near 10.4 s (faster-whisper: 10.36 s).
    assert!(
        (last_end - 10.4).abs() < 0.6,
        "last word ends at {last_end}"
    );
}

#[test]
fn missing_input_file() {
    assert_clean_failure(&run(&["/nonexistent/talk.wav"]), "does not exist");
}

#[test]
fn empty_and_non_audio_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_failure(&run(&[empty.to_str().unwrap()]), "empty.wav");
    let text = dir.path().join("notes.wav");
    std::fs::write(
        &text,
        "these are not the samples you are looking for\n".repeat(50),
    )
    .unwrap();
    assert_clean_failure(&run(&[text.to_str().unwrap()]), "notes.wav");
    let truncated = dir.path().join("cut.wav");
    let bytes = std::fs::read(sample()).unwrap();
    std::fs::write(&truncated, &bytes[..30]).unwrap();
    assert_clean_failure(&run(&[truncated.to_str().unwrap()]), "cut.wav");
}

#[test]
fn unknown_and_uninstalled_models() {
    let out = aiec()
        .args(["run", "whisper-gigantic", sample().to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&out, "whisper-base");
    let home = tempfile::tempdir().unwrap();
    let out = aiec()
        .env("AIEC_HOME", home.path())
        .args(["run", "whisper-base", sample().to_str().unwrap()])
        .output()
        .unwrap();
    assert_clean_failure(&out, "aiec models install whisper-base");
}

#[test]
fn truncated_model_bin() {
    let dir = tempfile::tempdir().unwrap();
    let src = model_dir();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bin = std::fs::read(src.join("model.bin")).unwrap();
    std::fs::write(dir.path().join("model.bin"), &bin[..bin.len() / 3]).unwrap();
    let out = aiec()
        .args([
            "run",
            "whisper-base",
            "--model-dir",
            dir.path().to_str().unwrap(),
            sample().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_clean_failure(&out, "truncated");
}

#[test]
fn unwritable_output_dir_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let target = file.join("out");
    assert_clean_failure(
        &run(&[sample().to_str().unwrap(), "-o", target.to_str().unwrap()]),
        "output directory",
    );
    assert_clean_failure(&run(&[sample().to_str().unwrap(), "-f", "docx"]), "docx");
    assert_clean_failure(
        &run(&[sample().to_str().unwrap(), "--device", "npu"]),
        "npu",
    );
    assert_clean_failure(
        &run(&[sample().to_str().unwrap(), "--temperature", "hot"]),
        "temperature",
    );
    let out = run(&[sample().to_str().unwrap(), "--no-such-flag"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn stdin_input() {
    let md = model_dir();
    let file = std::fs::File::open(sample()).unwrap();
    let out = aiec()
        .arg("run")
        .arg("whisper-base")
        .arg("--model-dir")
        .arg(&md)
        .arg("-")
        .stdin(file)
        .output()
        .unwrap();
    assert_success(&out, "aiec run");
    assert!(String::from_utf8_lossy(&out.stdout)
        .to_lowercase()
        .contains("fellow americans"));
    let _ = Path::new("-");
}

/// Bad numeric flags fail before the model is touched. `--model-dir` points at an empty
/// directory, so a load gives its own error ("loading model from ...", checked first with
/// good flags); with a bad flag the flag's error must be the one reported, and nothing else.
#[test]
fn bad_numeric_flags_fail_before_the_model_loads() {
    let empty = tempfile::tempdir().unwrap();
    let run_on_empty_model = |flags: &[&str]| {
        aiec()
            .args(["run", "whisper-base", "--model-dir"])
            .arg(empty.path())
            .arg(sample())
            .args(flags)
            .output()
            .unwrap()
    };
    assert_clean_failure(&run_on_empty_model(&[]), "loading model from");
    for (flags, message) in [
        (
            &["--beam-size", "0"][..],
            "--beam-size 0: must be between 1 and 32",
        ),
        (&["--best-of", "0"], "--best-of 0: must be between 1 and 32"),
        (
            &["--temperature", "0,3"],
            "--temperature 3: must be between 0 and 2",
        ),
        // 0 is all cores (tests/harden_cli.rs); past 1024 is refused by the parser.
        (&["--threads", "1025"], "1025 is not in 0..=1024"),
    ] {
        let out = run_on_empty_model(flags);
        assert_clean_failure(&out, message);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("loading model"), "{flags:?}: {stderr}");
        assert_eq!(stderr.matches("error").count(), 1, "{flags:?}: {stderr}");
    }
}

/// A directory runs its audio files (sorted by name, other files skipped) side by side on
/// both threads, and prints exactly what one run per file prints, in the same order; one
/// corrupt file among them fails alone.
#[test]
fn a_directory_runs_its_files_side_by_side_with_the_sequential_results() {
    let speech = common::wer::speech_dir();
    let dir = tempfile::tempdir().unwrap();
    let clips = [
        "audio/asterisk/dir-intro.wav",
        "audio/asterisk/demo-abouttotry.wav",
        "audio/pocketsphinx/sense_and_sensibility_01_austen_64kb-0880.flac",
    ];
    for c in clips {
        let src = speech.join(c);
        std::fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not audio").unwrap();
    let mut names: Vec<PathBuf> = clips
        .iter()
        .map(|c| dir.path().join(Path::new(c).file_name().unwrap()))
        .collect();
    names.sort();
    let d = dir.path().to_str().unwrap();
    let together = run(&[d, "--beam-size", "1", "--threads", "2"]);
    assert_success(&together, "aiec run DIR");
    let mut apart = Vec::new();
    for name in &names {
        let out = run(&[name.to_str().unwrap(), "--beam-size", "1", "--threads", "2"]);
        assert_success(&out, "aiec run FILE");
        apart.extend_from_slice(&out.stdout);
    }
    assert_eq!(
        String::from_utf8_lossy(&together.stdout),
        String::from_utf8_lossy(&apart)
    );
    assert!(words(&String::from_utf8_lossy(&together.stdout)).len() > 40);

    std::fs::write(dir.path().join("broken.wav"), b"RIFF....WAVEfmt not really").unwrap();
    let out = run(&[d, "--beam-size", "1"]);
    assert_clean_failure(&out, "1 of 4 inputs failed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.wav"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&apart),
        "the good files still print, in order"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run(&[empty.path().to_str().unwrap()]);
    assert_clean_failure(&out, "holds no audio files");
}
