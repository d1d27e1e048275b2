//! `aiec plan MODEL [--device npu1|npu2] [-o DIR]`: the spec of every kernel a Whisper model
//! needs, derived from its dims; prints the plan table and writes one TOML per entry.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;

use aiec_runtime::model::{install, WhisperModelFiles};

use crate::plan::{Plan, PlanOptions, Precision};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// int8 weights and activations, int32 accumulation (the NPU numerics).
    Int8,
    /// bf16 weights and activations, f32 accumulation.
    Bf16,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name (`whisper-base`, `tiny.en`) or a CTranslate2 Whisper model directory.
    pub model: String,
    /// Device model the kernels are planned for (`npu1`, `npu2`, or a column-restricted
    /// variant such as `npu1_2col`).
    #[arg(long, default_value = "npu1")]
    pub device: String,
    /// Write `<entry>.toml` for every plan entry into this directory.
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// Live beams of a decoder step (decoder kernels have this many rows, padded).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub beams: u16,
    /// Matmul precision of the kernels.
    #[arg(long, value_enum, default_value = "int8")]
    pub precision: PrecisionArg,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let dir = install::resolve(&args.model)?;
    let files = WhisperModelFiles::load(&dir)
        .with_context(|| format!("loading model {} from {}", args.model, dir.display()))?;
    let options = PlanOptions {
        beams: usize::from(args.beams),
        precision: match args.precision {
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::Bf16 => Precision::Bf16,
        },
        ..PlanOptions::new(&args.model, &args.device)
    };
    let plan = Plan::for_model(&files.dims, &options)
        .with_context(|| format!("planning the kernels of {} for {}", args.model, args.device))?;
    print!("{}", plan.table());
    if let Some(out) = &args.output_dir {
        let written = plan
            .write_dir(out)
            .with_context(|| format!("writing the plan into {}", out.display()))?;
        eprintln!("wrote {} specs into {}", written.len(), out.display());
    }
    Ok(())
}
