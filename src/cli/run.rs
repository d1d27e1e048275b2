//! `aiec run MODEL INPUT...`: transcribe (or translate) audio files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::ValueEnum;

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{Backend, Precision};

use super::decoding::{
    resolve_language, BadChoice, DecodeChoices, DEFAULT_BEAM_SIZE, DEFAULT_BEST_OF,
    DEFAULT_TEMPERATURES,
};
use crate::simdevice::SimBackend;
use aiec_runtime::decode::{DecodeOptions, Task};
use aiec_runtime::model::install;
use aiec_runtime::output;
use aiec_runtime::pipeline::Transcriber;
use aiec_runtime::transcript::Transcript;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// Native host kernels (`--precision f32|int8|bf16`).
    Cpu,
    /// The compiled AIE kernels on the host simulator.
    Sim,
    /// A Ryzen AI NPU through XRT.
    Npu,
}

/// Number format of the matrix products on `--device cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    F32,
    /// The NPU numerics: per-channel int8 weights, per-row int8 activations (VNNI).
    Int8,
    /// bf16 weights, f32 accumulation.
    Bf16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    Transcribe,
    Translate,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name (`whisper-base`, `tiny.en`) or a CTranslate2 Whisper model directory.
    pub model: String,
    /// Audio files (wav, flac, mp3, ogg, m4a, ...); `-` reads standard input.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Use this CTranslate2 model directory instead of the named model.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Output formats: txt, srt, vtt, json, tsv, a comma list, or `all`.
    #[arg(short = 'f', long = "output-format", default_value = "txt")]
    pub output_format: String,
    /// Write `<input stem>.<format>` files here instead of printing to stdout.
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "transcribe")]
    pub task: TaskArg,
    /// Spoken language (code or name); detected when absent.
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub initial_prompt: Option<String>,
    #[arg(long, default_value_t = DEFAULT_BEAM_SIZE)]
    pub beam_size: usize,
    #[arg(long, default_value_t = DEFAULT_BEST_OF)]
    pub best_of: usize,
    /// Temperature(s) for fallback decoding, comma separated.
    #[arg(long, default_value = DEFAULT_TEMPERATURES)]
    pub temperature: String,
    #[arg(long)]
    pub word_timestamps: bool,
    /// Do not feed the previous window's text as a prompt.
    #[arg(long)]
    pub no_condition_on_previous_text: bool,
    #[arg(long)]
    pub without_timestamps: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed for temperature sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print model-load and per-file transcription times (and realtime factors), and launches
    /// and time per backend op kind, to stderr.
    #[arg(long)]
    pub timings: bool,
}

/// The decoding options from the flags, through the code `aiec serve` uses too, checked so a
/// bad value fails before the model is loaded. The language is resolved after the load (it
/// needs the tokenizer).
fn decode_options(args: &Args) -> anyhow::Result<DecodeOptions> {
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
    };
    let opts = choices.options().map_err(|e| {
        let flag = e.option().replace('_', "-");
        match e {
            BadChoice::NotANumber { .. } => anyhow::anyhow!("--{flag}: {e}"),
            BadChoice::OutOfRange { .. } => anyhow::anyhow!("--{flag} {e}"),
        }
    })?;
    if args.threads == Some(0) {
        bail!("--threads 0: must be at least 1");
    }
    Ok(opts)
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
            bail!("--device npu: the npu device needs XRT >= 2.17 and comes with the artefact issue; use --device cpu")
        }
    }
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
    let mut opts = decode_options(&args)?;
    let (backend, sim) = backend(&args)?;
    for input in &args.inputs {
        if input.as_os_str() != "-" && !input.exists() {
            bail!("input file {} does not exist", input.display());
        }
    }
    if let Some(dir) = &args.output_dir {
        prepare_output_dir(dir)?;
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
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
    opts.language = language(&args, &tr)?;
    let mut failures = 0;
    for input in &args.inputs {
        let bar = progress_bar();
        let mut update = |done: f64, total: f64| {
            if let Some(b) = &bar {
                b.set_length((total * 100.0) as u64);
                b.set_position((done * 100.0) as u64);
            }
        };
        let started = std::time::Instant::now();
        let result = tr.transcribe_file(input, &opts, Some(&mut update));
        let seconds = started.elapsed().as_secs_f64();
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let transcript = match result {
            Ok(t) => t,
            Err(e) if args.inputs.len() > 1 => {
                eprintln!("error: {}: {e}", input.display());
                failures += 1;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("transcribing {}", input.display())),
        };
        if args.timings {
            print_timings(&tr, sim.as_deref(), input, seconds, transcript.duration);
        }
        write_outputs(&formats, args.output_dir.as_deref(), input, &transcript)?;
    }
    if failures > 0 {
        bail!("{failures} of {} inputs failed", args.inputs.len());
    }
    Ok(())
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
            Some(dir) => {
                let path = dir.join(format!("{}.{}", output_stem(input), format.extension()));
                let mut f = std::fs::File::create(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                output::write(format, transcript, &mut f)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            None => {
                let mut out = std::io::stdout().lock();
                output::write(format, transcript, &mut out).context("writing to stdout")?;
                out.flush().ok();
            }
        }
    }
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
