//! `aiec sim SPEC.toml`: build the spec's design, run it on the host simulator with seeded
//! random inputs, and compare with the op's float64 reference. Exits non-zero when an output
//! falls outside the op's documented bound, or when the run fails (deadlock, timeout, ...).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::sim::verify::{check_spec, VerifyError};
use crate::sim::{CoreSource, SequenceSource, SimOptions};
use crate::spec::Spec;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The kernel spec (TOML).
    pub spec: PathBuf,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wall-clock limit of the whole check, seconds (above 0, at most a week): design,
    /// random inputs, float64 reference, compilation, simulation and comparison.
    #[arg(long, default_value_t = 60.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// LLVM optimisation level of the host JIT (0-3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub opt_level: u8,
    /// Drive the shim DMAs by executing the instruction stream `aiec build` writes as
    /// insts.bin (decoded: BD writes, DDR patches, queue pushes, syncs) instead of the
    /// Design's runtime sequence.
    #[arg(long)]
    pub from_insts: bool,
    /// Execute this insts.bin instead (e.g. one aie-translate made from this spec's MLIR);
    /// implies --from-insts.
    #[arg(long, value_name = "FILE")]
    pub insts: Option<PathBuf>,
}

/// Longest `--timeout`: a week. Beyond it the limit means nothing, and 1e19 s no longer fits
/// a `Duration` added to the clock.
pub const MAX_TIMEOUT_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

fn parse_timeout(text: &str) -> Result<f64, String> {
    let t: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if t > 0.0 && t <= MAX_TIMEOUT_SECONDS {
        Ok(t)
    } else {
        Err(format!(
            "must be above 0 and at most {MAX_TIMEOUT_SECONDS} seconds (a week)"
        ))
    }
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let spec = Spec::load(&args.spec)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let sequence = match (&args.insts, args.from_insts) {
        (None, false) => SequenceSource::Design,
        (None, true) => SequenceSource::Instructions,
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let stream = crate::npu::Stream::decode(&bytes)
                .with_context(|| format!("decoding {}", path.display()))?;
            SequenceSource::Stream(std::sync::Arc::new(stream))
        }
    };
    let sequence_text = match &sequence {
        SequenceSource::Design => "the Design's runtime sequence".to_string(),
        SequenceSource::Instructions => "executing aiec's instruction stream (insts.bin)".into(),
        SequenceSource::Stream(s) => format!(
            "executing {} ({} ops)",
            args.insts
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            s.ops.len()
        ),
    };
    let options = SimOptions {
        timeout,
        opt_level: usize::from(args.opt_level),
        sequence,
    };
    // The check keeps the limit itself ([`crate::sim::verify::Deadline`]): every phase,
    // the simulation and the float64 reference stop within it. The JIT compilation cannot be
    // interrupted, so the check runs on a worker and is abandoned (the process exits) if it
    // has not answered `GRACE` after the limit.
    const GRACE: Duration = Duration::from_secs(1);
    let (done, result) = std::sync::mpsc::channel();
    let worker_spec = spec.clone();
    let seed = args.seed;
    std::thread::Builder::new()
        .name("sim-check".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let _ = done.send(check_spec(&worker_spec, seed, &options));
        })
        .context("starting the simulation thread")?;
    let what = format!("simulating {}", args.spec.display());
    let check = match result.recv_timeout(timeout + GRACE) {
        Ok(Err(VerifyError::Timeout(e))) => anyhow::bail!(
            "{what}: exceeded --timeout {} s while {} (design, inputs, compilation, run and float64 reference all count)",
            args.timeout,
            e.phase
        ),
        Ok(check) => check.with_context(|| what.clone())?,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => anyhow::bail!(
            "{what}: exceeded --timeout {} s in a phase that cannot be interrupted, such as compiling the cores (design, inputs, compilation, run and float64 reference all count)",
            args.timeout
        ),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            anyhow::bail!("{what}: the simulation thread stopped")
        }
    };
    let (run, c) = (&check.run, &check.comparison);
    println!("spec         {spec}");
    println!(
        "compile      {:.3} s ({} distinct core bodies)",
        run.compile_time.as_secs_f64(),
        run.compiled_cores
    );
    match &run.core_source {
        CoreSource::AieModule => println!("cores        aie.core bodies of the MLIR-AIE module"),
        CoreSource::Design(why) => {
            println!("cores        from the Design (the compiler rejects it: {why})")
        }
    }
    println!("sequence     {sequence_text}");
    println!("run          {:.3} s", run.run_time.as_secs_f64());
    println!("elements     {}", c.elements);
    println!("max abs err  {:.6e}", c.max_abs_error);
    println!("rel L2 err   {:.6e}", c.rel_l2_error);
    if let Some(exact) = c.exact_matches {
        println!("exact        {exact} / {}", c.elements);
    }
    println!("bound        {}", c.bound);
    if let Some((i, y, r)) = c.worst {
        println!("worst        element {i}: sim {y} vs ref {r}");
    }
    if !c.passed() {
        anyhow::bail!(
            "{} of {} outputs are outside the bound of op `{}`",
            c.violations,
            c.elements,
            spec.op()
        );
    }
    println!("PASS");
    Ok(())
}
