//! `aiec run MODEL INPUT...`: transcribe (or translate) audio files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::ValueEnum;

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{Backend, Precision};

use super::decoding::{
    load_vad_model, resolve_language, BadChoice, DecodeChoices, VadChoices, DEFAULT_BEAM_SIZE,
    DEFAULT_BEST_OF, DEFAULT_TEMPERATURES,
};
use crate::simdevice::SimBackend;
use aiec_runtime::audio::{self, InputLimits};
use aiec_runtime::decode::{DecodeOptions, Task};
use aiec_runtime::model::install;
use aiec_runtime::output;
use aiec_runtime::pipeline::{PipelineError, Transcriber};
use aiec_runtime::transcript::Transcript;
use aiec_runtime::vad::{VadFilter, VadOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// Native host kernels (`--precision f32|int8|bf16`).
    Cpu,
    /// The compiled AIE kernels on the host simulator.
    Sim,
    /// A Ryzen AI NPU through XRT (a build with cargo feature `xrt`, XRT >= 2.17, the amdxdna
    /// device, and a final.xclbin per kernel).
    Npu,
}

/// Number format of the matrix products on `--device cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// float32 throughout (the reference numerics).
    F32,
    /// The NPU numerics: per-channel int8 weights, per-row int8 activations (VNNI).
    Int8,
    /// bf16 weights, f32 accumulation.
    Bf16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Text in the spoken language.
    Transcribe,
    /// English text from any spoken language.
    Translate,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name (`whisper-base`, `tiny.en`) or a CTranslate2 Whisper model directory.
    pub model: String,
    /// Audio files (wav, flac, mp3, ogg, m4a, ...) or directories of them (their audio files,
    /// sorted by name); `-` reads standard input. Several files run side by side on the cpu.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Load the model from this CTranslate2 directory; MODEL must then name what it holds
    /// (a known name is checked against the loaded dims).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Where the tensor ops run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    /// Number format of the matrix products (cpu and sim devices).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Output formats: txt, srt, vtt, json, tsv, a comma list, or `all`.
    #[arg(short = 'f', long = "output-format", default_value = "txt")]
    pub output_format: String,
    /// Write `<input stem>.<format>` files here instead of printing to stdout. Two inputs
    /// with the same stem are refused (one would overwrite the other).
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// Transcribe in the spoken language, or translate into English (multilingual models;
    /// an English-only model warns and transcribes).
    #[arg(long, value_enum, default_value = "transcribe")]
    pub task: TaskArg,
    /// Spoken language (code or name); detected when absent. An English-only model warns
    /// and uses English for any other language.
    #[arg(long)]
    pub language: Option<String>,
    /// Text fed to the decoder as if it preceded the first window (names, spelling, style).
    #[arg(long)]
    pub initial_prompt: Option<String>,
    /// Beams of the beam search at temperature 0 (1 = greedy), at most 32.
    #[arg(long, default_value_t = DEFAULT_BEAM_SIZE)]
    pub beam_size: usize,
    /// Candidates sampled per window at a temperature above 0, at most 32.
    #[arg(long, default_value_t = DEFAULT_BEST_OF)]
    pub best_of: usize,
    /// Temperature(s) for fallback decoding, comma separated.
    #[arg(long, default_value = DEFAULT_TEMPERATURES)]
    pub temperature: String,
    /// Time every word (cross-attention alignment) in the json, srt, vtt and tsv outputs.
    #[arg(long)]
    pub word_timestamps: bool,
    /// Do not feed the previous window's text as a prompt.
    #[arg(long)]
    pub no_condition_on_previous_text: bool,
    /// Decode without timestamp tokens (one segment per 30 s window).
    #[arg(long)]
    pub without_timestamps: bool,
    /// Decode only the speech Silero VAD finds (faster-whisper's vad_filter); timestamps stay
    /// on the original audio. Needs `aiec models install silero-vad`.
    #[arg(long)]
    pub vad_filter: bool,
    /// VAD: speech probability at or above which a 32 ms chunk is speech (0 to 1, exclusive)
    /// [default: 0.5].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_threshold: Option<String>,
    /// VAD: probability below which a chunk is silence (above 0, at most the threshold)
    /// [default: threshold - 0.15, at least 0.01].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_neg_threshold: Option<String>,
    /// VAD: speech spans not longer than this are dropped (0 to 3600000) [default: 0].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_min_speech_duration_ms: Option<String>,
    /// VAD: longer spans are split, at a pause where there is one (`inf` or more than
    /// 0.032 s plus twice the pad) [default: inf].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_max_speech_duration_s: Option<String>,
    /// VAD: silence this long ends a speech span (0 to 3600000) [default: 2000].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_min_silence_duration_ms: Option<String>,
    /// VAD: padding added to each side of a speech span (0 to 3600000) [default: 400].
    #[arg(long, requires = "vad_filter", allow_hyphen_values = true)]
    pub vad_speech_pad_ms: Option<String>,
    /// Worker threads, 1 to 1024; 0 or absent: all cores.
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: Option<u16>,
    /// Seed for temperature sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print model-load and per-file transcription times (and realtime factors), and launches
    /// and time per backend op kind, to stderr.
    #[arg(long)]
    pub timings: bool,
    /// Refuse inputs larger than this many MiB (1 to 16384); also ends an endless stream.
    #[arg(long, default_value_t = audio::MAX_INPUT_BYTES >> 20,
          value_parser = clap::value_parser!(u64).range(1..=16384))]
    pub max_input_mib: u64,
    /// Refuse audio longer than this many seconds (1 to 86400).
    #[arg(long, default_value_t = audio::MAX_DURATION_SECONDS as u64,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub max_duration: u64,
}

/// The decoding options from the flags, through the code `aiec serve` uses too, checked so a
/// bad value fails before the model is loaded. The language is resolved after the load (it
/// needs the tokenizer).
fn decode_options(args: &Args) -> anyhow::Result<(DecodeOptions, Option<VadOptions>)> {
    let choices = DecodeChoices {
        task: match args.task {
            TaskArg::Transcribe => Task::Transcribe,
            TaskArg::Translate => Task::Translate,
        },
        beam_size: args.beam_size,
        best_of: args.best_of,
        temperature: args.temperature.clone(),
        initial_prompt: args.initial_prompt.clone(),
        word_timestamps: args.word_timestamps,
        condition_on_previous_text: !args.no_condition_on_previous_text,
        without_timestamps: args.without_timestamps,
        seed: args.seed,
        vad: args.vad_filter.then(|| VadChoices {
            threshold: args.vad_threshold.clone(),
            neg_threshold: args.vad_neg_threshold.clone(),
            min_speech_duration_ms: args.vad_min_speech_duration_ms.clone(),
            max_speech_duration_s: args.vad_max_speech_duration_s.clone(),
            min_silence_duration_ms: args.vad_min_silence_duration_ms.clone(),
            speech_pad_ms: args.vad_speech_pad_ms.clone(),
        }),
    };
    let as_flag = |e: BadChoice| {
        let flag = e.option().replace('_', "-");
        match e {
            BadChoice::NotANumber { .. } => anyhow::anyhow!("--{flag}: {e}"),
            BadChoice::OutOfRange { .. } => anyhow::anyhow!("--{flag} {e}"),
        }
    };
    let opts = choices.options().map_err(as_flag)?;
    let vad = choices.vad_options().map_err(as_flag)?;
    if let Some(l) = &args.language {
        if aiec_runtime::model::languages::language_code(l).is_none() {
            bail!("--language: unknown language `{l}` (give a code such as `en` or a name such as `German`)");
        }
    }
    Ok((opts, vad))
}

/// `--language` as the tokenizer's language code.
fn language(args: &Args, tr: &Transcriber) -> anyhow::Result<Option<String>> {
    let Some(l) = &args.language else {
        return Ok(None);
    };
    resolve_language(&tr.files.tokenizer, l)
        .map(Some)
        .with_context(|| format!("--language: unknown language `{l}`"))
}

fn precision(p: PrecisionArg) -> Precision {
    match p {
        PrecisionArg::F32 => Precision::F32,
        PrecisionArg::Int8 => Precision::Int8,
        PrecisionArg::Bf16 => Precision::Bf16,
    }
}

pub type Chosen = (Arc<dyn Backend>, Option<Arc<SimBackend>>);

fn backend(args: &Args) -> anyhow::Result<Chosen> {
    backend_for(args.device, args.precision)
}

/// The backend `--device` and `--precision` select, and the sim backend again when it is that
/// one (its `--timings` add the host parts of its ops). `aiec serve` shares it.
pub fn backend_for(device: DeviceKind, precision_arg: PrecisionArg) -> anyhow::Result<Chosen> {
    match device {
        DeviceKind::Cpu => Ok((Arc::new(CpuBackend::new(precision(precision_arg))), None)),
        DeviceKind::Sim => {
            let sim = Arc::new(SimBackend::new(precision(precision_arg))?);
            Ok((sim.clone(), Some(sim)))
        }
        DeviceKind::Npu => {
            // The sim backend's ops, every kernel launched on the NPU driver instead.
            let loader = crate::driver::open_npu().map_err(anyhow::Error::msg)?;
            // A second npu backend of the process (aiec serve) shares the first's driver.
            crate::driver::install(loader);
            let npu = Arc::new(SimBackend::new(precision(precision_arg))?);
            Ok((npu.clone(), Some(npu)))
        }
    }
}

/// Whether the flags leave the decoding to a multilingual model: an English-only one can only
/// transcribe English, so it warns (as openai-whisper's and whisper.cpp's CLIs do) and goes on.
fn warn_if_english_only(args: &Args, tr: &Transcriber) {
    if tr.files.tokenizer.is_multilingual {
        return;
    }
    let english = |l: &str| aiec_runtime::model::languages::language_code(l) == Some("en");
    if let Some(l) = args.language.as_deref().filter(|l| !english(l)) {
        eprintln!("warning: {} is an English-only model: --language {l} is ignored, transcribing as English", args.model);
    }
    if args.task == TaskArg::Translate {
        eprintln!(
            "warning: {} is an English-only model: --task translate is ignored, transcribing",
            args.model
        );
    }
}

/// With `--model-dir`, a known MODEL name must match what the directory holds (its width,
/// layers and vocabulary); otherwise the name would be silently ignored.
fn check_model_name(args: &Args, tr: &Transcriber) -> anyhow::Result<()> {
    let (Some(dir), Some(known)) = (&args.model_dir, install::find_known(&args.model)) else {
        return Ok(());
    };
    let install::ModelKind::Whisper { dims: want } = known.kind else {
        bail!("{} is not a Whisper model", known.name);
    };
    let d = &tr.files.dims;
    let got = (d.d_model, d.n_layers_dec, d.n_vocab);
    if got != want {
        bail!(
            "--model-dir {} holds a model with width {}, {} decoder layers and {} tokens, which is not {} (width {}, {} layers, {} tokens); name the model it holds, or drop --model-dir",
            dir.display(), got.0, got.1, got.2, known.name, want.0, want.1, want.2
        );
    }
    Ok(())
}

fn output_stem(input: &Path) -> String {
    if input.as_os_str() == "-" {
        return "stdin".into();
    }
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into())
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let formats = output::parse_formats(&args.output_format)
        .map_err(|e| anyhow::anyhow!("-f/--output-format: {e}"))?;
    let (mut opts, vad_options) = decode_options(&args)?;
    let limits = InputLimits {
        max_bytes: args.max_input_mib << 20,
        max_seconds: args.max_duration as f64,
    };
    for input in &args.inputs {
        if input.as_os_str() != "-" && !input.exists() {
            bail!("input file {} does not exist", input.display());
        }
    }
    let inputs = expand_directories(&args.inputs)?;
    if let Some(dir) = &args.output_dir {
        check_output_collisions(&formats, dir, &inputs)?;
        prepare_output_dir(dir)?;
    }
    if let Some(known) = install::find_known(&args.model) {
        if !matches!(known.kind, install::ModelKind::Whisper { .. }) {
            bail!(
                "{} is the voice activity detector, not a Whisper model; name a Whisper model and add --vad-filter",
                known.name
            );
        }
    }
    // The VAD model is small and fails fast: load it before the Whisper model.
    let vad_load_start = std::time::Instant::now();
    let vad = match vad_options {
        Some(o) => Some(VadFilter::new(
            load_vad_model().context("--vad-filter")?,
            o,
        )?),
        None => None,
    };
    if args.timings && vad.is_some() {
        eprintln!(
            "timing: VAD model load {:.3} s",
            vad_load_start.elapsed().as_secs_f64()
        );
    }
    let (backend, sim) = backend(&args)?;
    // rayon's 0 is its default: one thread per core, as the help promises.
    if let Some(n) = args.threads.filter(|&n| n > 0) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(n))
            .build_global()
            .context("setting up worker threads")?;
    }
    let model_dir = match &args.model_dir {
        Some(d) => d.clone(),
        None => install::resolve(&args.model)?,
    };
    let load_start = std::time::Instant::now();
    let tr = Transcriber::load_with(&model_dir, backend)
        .with_context(|| format!("loading model from {}", model_dir.display()))?;
    if args.timings {
        eprintln!(
            "timing: model load {:.3} s",
            load_start.elapsed().as_secs_f64()
        );
    }
    check_model_name(&args, &tr)?;
    warn_if_english_only(&args, &tr);
    opts.language = language(&args, &tr)?;
    // Files run side by side only where that cannot change a result or a report: on the cpu
    // (whose kernels split their work by the pool's size, not by which threads are free, so a
    // file's numbers do not depend on what else runs), and without `--timings` (whose per-op
    // table is per file).
    let side_by_side =
        inputs.len() > 1 && sim.is_none() && !args.timings && rayon::current_num_threads() > 1;
    let transcribe = |input: &Path, update: Option<&mut dyn FnMut(f64, f64)>| {
        let started = std::time::Instant::now();
        // `aiec run` is never cancelled midway (Ctrl-C ends the process).
        let never = std::sync::atomic::AtomicBool::new(false);
        let result = tr.transcribe_path(
            input,
            &limits,
            &opts,
            vad.as_ref(),
            update,
            &mut |_| {},
            &never,
        );
        (result, started.elapsed().as_secs_f64())
    };
    let mut failures = 0;
    let mut finish = |input: &Path,
                      result: Result<Transcript, PipelineError>,
                      seconds: f64|
     -> anyhow::Result<()> {
        let transcript = match result {
            Ok(t) => t,
            Err(e) => {
                // An audio error already starts with the input's name; others get it here.
                let message = match &e {
                    PipelineError::Audio(_) => aiec_runtime::errors::chain(&e),
                    _ => format!("{}: {}", input.display(), aiec_runtime::errors::chain(&e)),
                };
                if inputs.len() == 1 {
                    bail!("{message}");
                }
                eprintln!("error: {message}");
                failures += 1;
                return Ok(());
            }
        };
        if args.timings {
            print_timings(&tr, sim.as_deref(), input, seconds, transcript.duration);
        }
        write_outputs(&formats, args.output_dir.as_deref(), input, &transcript)
    };
    if side_by_side {
        side_by_side_in_order(
            &inputs,
            |input| transcribe(input, None),
            |input, (r, s)| finish(input, r, s),
        )?;
    } else {
        for input in &inputs {
            let bar = progress_bar();
            let mut update = |done: f64, total: f64| {
                if let Some(b) = &bar {
                    b.set_length((total * 100.0) as u64);
                    b.set_position((done * 100.0) as u64);
                }
            };
            let (result, seconds) = transcribe(input, Some(&mut update));
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            finish(input, result, seconds)?;
        }
    }
    if failures > 0 {
        bail!("{failures} of {} inputs failed", inputs.len());
    }
    Ok(())
}

/// Runs `work` on every input on the rayon pool, as many at a time as it has threads, and
/// hands each result to `done` in input order as soon as it and all before it are ready (so
/// stdout reads as a sequential run would print it). `done`'s first error stops the handing
/// on; work already started still finishes.
fn side_by_side_in_order<R: Send>(
    inputs: &[PathBuf],
    work: impl Fn(&Path) -> R + Sync,
    mut done: impl FnMut(&Path, R) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<(usize, R)>();
    std::thread::scope(|threads| {
        let work = &work;
        threads.spawn(move || {
            rayon::scope(|pool| {
                for (i, input) in inputs.iter().enumerate() {
                    let tx = tx.clone();
                    pool.spawn(move |_| {
                        // The receiver only goes away after an error; the result is moot then.
                        let _ = tx.send((i, work(input)));
                    });
                }
            });
        });
        let mut ready = std::collections::BTreeMap::new();
        let mut next = 0;
        for (i, result) in rx {
            ready.insert(i, result);
            while let Some(result) = ready.remove(&next) {
                done(&inputs[next], result)?;
                next += 1;
            }
        }
        Ok(())
    })
}

/// File name extensions `aiec run DIR` picks up: what the audio loader reads.
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "webm", "mkv", "aif", "aiff",
    "caf",
];

/// Each directory among `inputs` becomes its audio files (by extension, not recursing, hidden
/// files skipped), sorted by name; other inputs stay as they are. A directory without audio
/// is an error rather than a run that silently does nothing.
fn expand_directories(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut found = Vec::new();
        let entries = std::fs::read_dir(input)
            .with_context(|| format!("cannot read directory {}", input.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read directory {}", input.display()))?
                .path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let audio = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if audio && !hidden && path.is_file() {
                found.push(path);
            }
        }
        if found.is_empty() {
            bail!(
                "directory {} holds no audio files (looked for {})",
                input.display(),
                AUDIO_EXTENSIONS.join(", ")
            );
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Refuses, before anything is loaded, two different inputs whose outputs would land on the
/// same file (`a/talk.wav` and `b/talk.mp3` both make `talk.txt`): the second would silently
/// replace the first. The same input named twice writes the same text and is let through.
fn check_output_collisions(
    formats: &[output::Format],
    dir: &Path,
    inputs: &[PathBuf],
) -> anyhow::Result<()> {
    let identity = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut claimed: std::collections::HashMap<PathBuf, &Path> = Default::default();
    for input in inputs {
        for format in formats {
            let out = output_path(dir, input, *format);
            match claimed.get(&out) {
                Some(first) if identity(first) != identity(input) => bail!(
                    "inputs {} and {} would both be written to {}; rename one or transcribe them in separate runs",
                    first.display(),
                    input.display(),
                    out.display()
                ),
                _ => {
                    claimed.insert(out, input);
                }
            }
        }
    }
    Ok(())
}

fn output_path(dir: &Path, input: &Path, format: output::Format) -> PathBuf {
    dir.join(format!("{}.{}", output_stem(input), format.extension()))
}

/// Creates `dir` and checks that it is writable, before the model is loaded.
fn prepare_output_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(".aiec-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("output directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// `--timings` of one file: the backend's ops, the host time outside them, the sim's host
/// parts, and the realtime factor. Resets the stats for the next file.
fn print_timings(
    tr: &Transcriber,
    sim: Option<&SimBackend>,
    input: &Path,
    seconds: f64,
    duration: f64,
) {
    let stats = tr.model.backend().stats();
    let in_backend: f64 = stats.totals().iter().map(|t| t.host.as_secs_f64()).sum();
    eprint!(
        "timing: {} ops\n{}",
        tr.model.backend().name(),
        stats.table()
    );
    eprintln!(
        "timing: host outside the backend {:.3} s",
        (seconds - in_backend).max(0.0)
    );
    stats.reset();
    if let Some(sim) = sim {
        eprint!(
            "timing: parts of sim ops that ran on the host\n{}",
            sim.host_stats().table()
        );
        sim.host_stats().reset();
        eprint!(
            "timing: predicted NPU time of the launches (perf model, docs/perf-model.md)\n{}",
            sim.take_predicted().table()
        );
    }
    eprintln!(
        "timing: {}: {seconds:.3} s for {:.2} s of audio (RTF {:.4}, {:.1}x realtime)",
        input.display(),
        duration,
        seconds / duration.max(1e-9),
        duration / seconds.max(1e-9)
    );
}

/// Every `-f` format of one transcript: `<stem>.<ext>` files in `output_dir`, else stdout.
fn write_outputs(
    formats: &[output::Format],
    output_dir: Option<&Path>,
    input: &Path,
    transcript: &Transcript,
) -> anyhow::Result<()> {
    for &format in formats {
        match output_dir {
            Some(dir) => write_atomically(&output_path(dir, input, format), |f| {
                output::write(format, transcript, f)
            })?,
            None => {
                let mut out = std::io::stdout().lock();
                output::write(format, transcript, &mut out).context("writing to stdout")?;
                out.flush().ok();
            }
        }
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same directory, renamed over `path` once
/// complete, so an interrupted run leaves the old file or the new one, never a truncated one.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    // A transcript is an ordinary file: 0666 less the umask, not the temp file's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .prefix(".aiec-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    write(tmp.as_file_mut())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A bar on stderr for interactive use; nothing when stderr is not a terminal.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} cs of audio",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}
