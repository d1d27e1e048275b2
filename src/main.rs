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
    /// Serve Whisper models over an OpenAI-compatible HTTP API.
    Serve(aiec::cli::serve::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A server logs its requests by default; the other commands stay quiet.
    let default_log = match cli.command {
        Command::Serve(_) => "aiec::cli::serve=info",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.command {
        Command::Serve(_) => subscriber.init(),
        _ => subscriber.without_time().init(),
    }
    let result = match cli.command {
        Command::Run(a) => aiec::cli::run::main(a),
        Command::Models(a) => aiec::cli::models::main(a),
        Command::Build(a) => aiec::cli::build::main(a),
        Command::Sim(a) => aiec::cli::sim::main(a),
        Command::Plan(a) => aiec::cli::plan::main(a),
        Command::Serve(a) => aiec::cli::serve::main(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
