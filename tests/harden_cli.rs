//! Issue 13's reproductions through the binary: each bad input gives one clear error (or a
//! documented warning) and the right exit code; no panic, no hang, no unbounded memory, no
//! silent loss. The transcribing cases need tiny.en installed (`aiec models install tiny.en`)
//! and run in --release.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn aiec() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aiec"));
    cmd.env_remove("RUST_BACKTRACE");
    cmd
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn jfk() -> PathBuf {
    repo("examples/audio/jfk.wav")
}

fn tiny_en() -> PathBuf {
    aiec_runtime::model::install::resolve("tiny.en")
        .unwrap_or_else(|e| panic!("{e} (these tests need tiny.en)"))
}

/// `aiec run tiny.en --model-dir <tiny.en> ARGS...`
fn run_tiny(args: &[&std::ffi::OsStr]) -> Output {
    aiec()
        .args(["run", "tiny.en", "--model-dir"])
        .arg(tiny_en())
        .args(args)
        .output()
        .expect("aiec runs")
}

/// `aiec run whisper-base --model-dir <empty dir> ARGS...`: any model load fails, so an error
/// that is not about loading was found before the load.
fn run_without_model(args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    aiec()
        .args(["run", "whisper-base", "--model-dir"])
        .arg(empty.path())
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code `code`, no panic or backtrace, and `needle` in the one `error:` line.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "panic: {err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "one error line: {err}");
    assert!(err.contains(needle), "error does not say `{needle}`: {err}");
}

/// No `": "`-separated part of the error line appears twice ("X: X").
fn assert_no_repeated_cause(out: &Output) {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(&err);
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.len() < 4 || !parts[i + 1..].contains(p),
            "`{p}` repeated in: {line}"
        );
    }
}

/// A 16-bit mono PCM WAV of `samples` zeros claiming `rate` Hz.
fn wav(rate: u32, samples: usize) -> Vec<u8> {
    let data = vec![0u8; samples * 2];
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

#[test]
fn sample_rate_zero_is_an_error_and_a_multi_file_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("rate0.wav");
    std::fs::write(&bad, wav(0, 1600)).unwrap();
    let out = run_tiny(&[bad.as_os_str()]);
    assert_fails(&out, 1, "rate0.wav: invalid sample rate 0 Hz");
    assert_no_repeated_cause(&out);

    let out = run_tiny(&[bad.as_os_str(), jfk().as_os_str()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("rate0.wav: invalid sample rate 0 Hz"), "{err}");
    assert!(err.contains("1 of 2 inputs failed"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.contains("ask not what your country"),
        "jfk.wav not transcribed: {text}"
    );
}

#[test]
fn sim_timeout_out_of_range_is_a_flag_error() {
    for t in ["1e19", "1e30", "0", "nan", "inf", "soon"] {
        let out = aiec()
            .args(["sim", "--timeout", t])
            .arg(repo("kernel-specs/add.toml"))
            .output()
            .unwrap();
        assert_fails(&out, 2, "--timeout");
        assert!(stderr(&out).contains(t), "{t}: {}", stderr(&out));
    }
}

fn matmul_spec(dir: &Path, m: usize, k: usize, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo("kernel-specs/matmul.toml")).unwrap();
    let text = text.replace(
        "shape = { m = 512, k = 512, n = 512 }",
        &format!("shape = {{ m = {m}, k = {k}, n = {n} }}"),
    );
    assert!(
        text.contains(&format!("n = {n} }}")),
        "matmul.toml changed shape"
    );
    let path = dir.join(format!("matmul_{m}_{k}_{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The 4096^3 int8 matmul's float64 reference alone takes minutes; `--timeout 2` must end
/// the run after about 2 s, saying which phase the limit cut short.
#[test]
fn sim_timeout_covers_the_inputs_and_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let spec = matmul_spec(dir.path(), 4096, 4096, 4096);
    let started = Instant::now();
    let out = aiec()
        .args(["sim", "--timeout", "2"])
        .arg(&spec)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_fails(&out, 1, "exceeded --timeout 2 s");
    // The check stops itself within the limit, or is abandoned 1 s after it.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let err = stderr(&out);
    assert!(
        err.contains(" while ") || err.contains("cannot be interrupted"),
        "the message names the phase: {err}"
    );
}

#[test]
fn sim_refuses_what_cannot_fit_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let spec = matmul_spec(dir.path(), 65536, 65536, 65536);
    let out = aiec().arg("sim").arg(&spec).output().unwrap();
    // 65536^2 = 4.295e9 elements each: two int8 inputs at 1 + 16 bytes, an int8 output at
    // 2 x 1 + 24 bytes (verify.rs), 60 x 4.295e9 = 257.7e9 bytes.
    assert_fails(&out, 1, "needs about 257.7 GB of memory");
    assert!(stderr(&out).contains("is available"), "{}", stderr(&out));
}

#[test]
fn endless_inputs_stop_at_the_size_limit() {
    let out = run_tiny(&[
        "/dev/zero".as_ref(),
        "--max-input-mib".as_ref(),
        "1".as_ref(),
    ]);
    assert_fails(
        &out,
        1,
        "/dev/zero: larger than 1 MiB (the input size limit)",
    );

    let mut child = aiec()
        .args(["run", "tiny.en", "--max-input-mib", "2", "--model-dir"])
        .arg(tiny_en())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let block = [0u8; 65536];
        // Until aiec stops reading and the pipe breaks.
        while stdin.write_all(&block).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_fails(&out, 1, "<stdin>: larger than 2 MiB (the input size limit)");
}

#[test]
fn long_audio_stops_at_the_duration_limit() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("three_seconds.wav");
    std::fs::write(&long, wav(16000, 48000)).unwrap();
    let out = run_tiny(&[long.as_os_str(), "--max-duration".as_ref(), "2".as_ref()]);
    assert_fails(
        &out,
        1,
        "three_seconds.wav: longer than 2 s (the input duration limit)",
    );
}

#[test]
fn beam_and_best_of_are_bounded_before_the_model_loads() {
    let sample = jfk();
    let sample = sample.to_str().unwrap();
    for (flags, message) in [
        (
            ["--beam-size", "1000"],
            "--beam-size 1000: must be between 1 and 32",
        ),
        (
            ["--best-of", "33"],
            "--best-of 33: must be between 1 and 32",
        ),
    ] {
        let out = run_without_model(&[sample, flags[0], flags[1]]);
        assert_fails(&out, 1, message);
        assert!(!stderr(&out).contains("loading model"), "{}", stderr(&out));
    }
}

#[test]
fn every_numeric_flag_has_a_range() {
    let sample = jfk();
    let sample = sample.to_str().unwrap();
    for flags in [
        ["--threads", "1025"],
        ["--threads", "many"],
        ["--max-input-mib", "0"],
        ["--max-duration", "0"],
        ["--seed", "abc"],
    ] {
        let out = run_without_model(&[sample, flags[0], flags[1]]);
        assert_fails(&out, 2, flags[0]);
    }
    let out = aiec()
        .args(["sim", "--opt-level", "4"])
        .arg(repo("kernel-specs/add.toml"))
        .output()
        .unwrap();
    assert_fails(&out, 2, "--opt-level");
    let out = aiec()
        .args(["plan", "whisper-base", "--beams", "33"])
        .output()
        .unwrap();
    assert_fails(&out, 2, "--beams");
}

#[test]
fn same_stem_outputs_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::copy(jfk(), dir.path().join(sub).join("talk.wav")).unwrap();
    }
    let out_dir = dir.path().join("out");
    let a = dir.path().join("a/talk.wav");
    let b = dir.path().join("b/talk.wav");
    let out = run_without_model(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 1, "would both be written to");
    assert!(stderr(&out).contains("talk.txt"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "nothing may be written");
}

#[test]
fn outputs_are_written_whole_with_no_temporary_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_tiny(&[
        jfk().as_os_str(),
        "-o".as_ref(),
        dir.path().as_os_str(),
        "-f".as_ref(),
        "txt,json".as_ref(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["jfk.json", "jfk.txt"]);
    let text = std::fs::read_to_string(dir.path().join("jfk.txt")).unwrap();
    assert!(text.to_lowercase().contains("ask not"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jfk.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o044, 0o044, "readable like any file, mode {mode:o}");
    }
}

#[test]
fn bad_language_is_reported_before_the_model_loads() {
    let out = run_without_model(&[jfk().to_str().unwrap(), "--language", "klingon"]);
    assert_fails(&out, 1, "--language: unknown language `klingon`");
    assert!(!stderr(&out).contains("loading model"), "{}", stderr(&out));
}

#[test]
fn causes_are_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("npu9.toml");
    let add = std::fs::read_to_string(repo("kernel-specs/add.toml")).unwrap();
    assert!(add.contains("device = \"npu1\""));
    std::fs::write(&spec, add.replace("device = \"npu1\"", "device = \"npu9\"")).unwrap();
    let no_tokenizer = dir.path().join("no_tokenizer");
    std::fs::create_dir(&no_tokenizer).unwrap();
    for f in ["model.bin", "config.json"] {
        std::fs::copy(tiny_en().join(f), no_tokenizer.join(f)).unwrap();
    }
    let no_config = dir.path().join("no_config");
    std::fs::create_dir(&no_config).unwrap();
    std::fs::copy(tiny_en().join("model.bin"), no_config.join("model.bin")).unwrap();
    let tmp = dir.path().to_str().unwrap().to_string();
    let model_run = |model_dir: &Path| {
        aiec()
            .args(["run", "tiny.en", "--model-dir"])
            .arg(model_dir)
            .arg(jfk())
            .output()
            .unwrap()
    };
    let cases: Vec<(Output, &str)> = vec![
        (run_tiny(&[dir.path().as_os_str()]), "holds no audio files"),
        (model_run(Path::new("/nonexistent/model")), "No such file"),
        (model_run(&no_tokenizer), "tokenizer.json"),
        (model_run(&no_config), "config.json"),
        (
            aiec().arg("sim").arg(&spec).output().unwrap(),
            "unknown device `npu9`",
        ),
        (
            aiec().arg("build").arg(&spec).output().unwrap(),
            "unknown device `npu9`",
        ),
        (
            aiec().args(["sim", "/nonexistent.toml"]).output().unwrap(),
            "No such file",
        ),
        (aiec().args(["sim", &tmp]).output().unwrap(), "directory"),
    ];
    for (out, needle) in &cases {
        assert_fails(out, 1, needle);
        assert_no_repeated_cause(out);
    }
}

/// FLAC metadata blocks end where the frames begin.
fn flac_frames_start(bytes: &[u8]) -> usize {
    let mut at = 4;
    loop {
        let last = bytes[at] & 0x80 != 0;
        let len = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        at += 4 + len;
        if last {
            return at;
        }
    }
}

#[test]
fn corrupt_flac_is_called_corrupt() {
    let flac = std::fs::read(repo("runtime/tests/data/resample/jfk_noise_22050.flac")).unwrap();
    let frames = flac_frames_start(&flac);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &flac[..frames + 50]).unwrap();
    let garbled = dir.path().join("garbled.flac");
    let mut g = flac.clone();
    let mut x = 0x2545_f491_u32;
    for b in &mut g[frames + 100..] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&garbled, g).unwrap();
    for path in [&cut, &garbled] {
        let out = run_tiny(&[path.as_os_str()]);
        assert_fails(&out, 1, "corrupt audio");
        assert!(
            stderr(&out).contains("no frame decodes"),
            "{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("contains no audio samples"));
    }
}

#[test]
fn shim_stride_error_names_the_spec_field() {
    let dir = tempfile::tempdir().unwrap();
    // A row of C is n int8 = n/4 words; 8388608/4 words overflow the BD's 2^20-word step.
    let spec = matmul_spec(dir.path(), 512, 512, 8_388_608);
    let out = aiec()
        .args(["build", "--emit", "mlir"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_fails(&out, 1, "reduce shape.n = 8388608");
    assert!(
        stderr(&out).contains("a shim BD steps at most 1048576"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn model_dir_must_hold_the_named_model() {
    let out = aiec()
        .args(["run", "whisper-base", "--model-dir"])
        .arg(tiny_en())
        .arg(jfk())
        .output()
        .unwrap();
    assert_fails(&out, 1, "which is not whisper-base");
}

/// openai-whisper's and whisper.cpp's CLIs warn and transcribe English; so does aiec.
#[test]
fn english_only_model_warns_about_language_and_task() {
    let out = run_tiny(&[
        jfk().as_os_str(),
        "--language".as_ref(),
        "de".as_ref(),
        "--task".as_ref(),
        "translate".as_ref(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: tiny.en is an English-only model: --language de is ignored"),
        "{err}"
    );
    assert!(err.contains("--task translate is ignored"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("ask not what your country"), "{text}");
    let quiet = run_tiny(&[jfk().as_os_str(), "--language".as_ref(), "English".as_ref()]);
    assert!(quiet.status.success());
    assert!(!stderr(&quiet).contains("warning"), "{}", stderr(&quiet));
}

#[test]
fn threads_zero_means_all_cores() {
    let out = run_tiny(&[jfk().as_os_str(), "--threads".as_ref(), "0".as_ref()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("ask not what your country"), "{text}");
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let out = aiec()
        .env("AIEC_LOG", "debug")
        .arg("sim")
        .arg(repo("kernel-specs/add.toml"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DEBUG"), "expected log lines: {err}");
    assert!(!err.contains('\u{1b}'), "ANSI escape in a pipe: {err:?}");
}

/// Every option, argument and value of every subcommand says what it is for.
#[test]
fn every_flag_has_help_text() {
    let subcommands: [&[&str]; 8] = [
        &["run"],
        &["models"],
        &["models", "install"],
        &["models", "list"],
        &["models", "path"],
        &["build"],
        &["sim"],
        &["plan"],
    ];
    for sub in subcommands {
        let out = aiec().args(sub).arg("--help").output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_item = line.starts_with("  ") && (t.starts_with('-') || t.starts_with('<'));
            if !is_item || t.starts_with("- ") {
                continue;
            }
            // Short layout: help on the same line after two spaces; long: on the next line.
            let same_line = t
                .split_once("  ")
                .is_some_and(|(_, h)| !h.trim().is_empty());
            let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
            let next_line =
                !next.is_empty() && !next.starts_with('[') && !next.starts_with("Possible");
            assert!(
                same_line || next_line,
                "aiec {sub:?}: `{t}` has no help text"
            );
        }
        for line in &lines {
            let t = line.trim_start();
            if let Some(value) = t.strip_prefix("- ") {
                assert!(
                    value.contains(": "),
                    "aiec {sub:?}: value `{value}` has no help text"
                );
            }
        }
    }
}

#[test]
fn sample_readme_names_real_subcommands() {
    let readme = std::fs::read_to_string(repo("examples/audio/README.md")).unwrap();
    let mut seen = 0;
    for cmd in readme.split('`').filter(|s| s.starts_with("aiec ")) {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        // `aiec models install NAME` has a sub-subcommand.
        let depth = if words[1] == "models" { 3 } else { 2 };
        let out = aiec()
            .args(&words[1..depth])
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "`{cmd}`: {}", stderr(&out));
        seen += 1;
    }
    assert!(seen >= 1, "the README shows no aiec command");
}

/// A panic in the shipped binary (the hidden `__panic-test` subcommand panics on purpose with
/// a two-line message) prints one line: what failed, where, where to report it. No
/// `panicked at`, no backtrace unless RUST_BACKTRACE asks for one; exit code 101 as for any
/// Rust panic.
#[test]
fn a_panic_is_one_line_naming_the_bug_and_where_to_report_it() {
    let out = aiec().arg("__panic-test").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(101), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let line = err.trim_end();
    let prefix = format!(
        "error: internal error (a bug in aiec {}): deliberate panic (aiec __panic-test exercises the panic hook) at src/main.rs:",
        env!("CARGO_PKG_VERSION")
    );
    assert!(line.starts_with(&prefix), "{line}");
    assert!(
        line.ends_with("; please report it to the aiec issue tracker with the command line and, if you can, the input"),
        "{line}"
    );
    assert!(
        !err.contains("panicked at") && !err.contains("second line"),
        "{err}"
    );

    let out = aiec()
        .arg("__panic-test")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(101), "stderr: {err}");
    assert!(err.starts_with(&prefix), "{err}");
    assert!(
        err.lines().count() > 1,
        "RUST_BACKTRACE=1 adds the backtrace: {err}"
    );
}

#[test]
fn the_panic_test_subcommand_stays_out_of_the_help() {
    let out = aiec().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("disasm"), "{help}");
    assert!(!help.contains("panic"), "{help}");
}
