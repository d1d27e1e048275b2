//! `aiec sim SPEC.toml`: build the spec's design, run it on the host simulator with seeded
//! random inputs, and compare with the op's float64 reference. Exits non-zero when an output
//! falls outside the op's documented bound, or when the run fails (deadlock, timeout, ...).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::sim::verify::check_spec;
use crate::sim::{CoreSource, SimOptions};
use crate::spec::Spec;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The kernel spec (TOML).
    pub spec: PathBuf,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wall-clock limit of the simulation, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// LLVM optimisation level of the host JIT (0-3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub opt_level: u8,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let spec = Spec::load(&args.spec)?;
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        anyhow::bail!(
            "--timeout must be a non-negative number of seconds, got {}",
            args.timeout
        );
    }
    let options = SimOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        opt_level: usize::from(args.opt_level),
    };
    let check = check_spec(&spec, args.seed, &options)
        .with_context(|| format!("simulating {}", args.spec.display()))?;
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
