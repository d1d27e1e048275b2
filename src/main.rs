use clap::{Parser, Subcommand};

/// Whisper speech recognition for AMD Ryzen AI NPUs: compiler, simulator and runtime.
#[derive(Parser, Debug)]
#[command(name = "aiec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Transcribe or translate audio files with a Whisper model.
    Run(aiec::cli::run::Args),
    /// Install and list Whisper models.
    Models(aiec::cli::models::Args),
    /// Compile a kernel spec to MLIR-AIE (and, with the AIE tools, to an XCLBIN).
    Build(aiec::cli::build::Args),
    /// Run a compiled kernel spec on the host simulator against its float64 reference.
    Sim(aiec::cli::sim::Args),
    /// Derive the spec of every kernel a Whisper model needs from its dims.
    Plan(aiec::cli::plan::Args),
    /// Print an NPU instruction stream (insts.bin) as text.
    Disasm(aiec::cli::disasm::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("AIEC_LOG"))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => aiec::cli::run::main(a),
        Command::Models(a) => aiec::cli::models::main(a),
        Command::Build(a) => aiec::cli::build::main(a),
        Command::Sim(a) => aiec::cli::sim::main(a),
        Command::Plan(a) => aiec::cli::plan::main(a),
        Command::Disasm(a) => aiec::cli::disasm::main(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
