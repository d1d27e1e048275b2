#![deny(clippy::unwrap_used)]
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
    Run(Box<aiec::cli::run::Args>),
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
    /// Print an NPU instruction stream (insts.bin) as text.
    Disasm(aiec::cli::disasm::Args),
    /// Panics on purpose, so a test can run the shipped binary into the panic hook. Hidden
    /// from --help; it reads no input and touches nothing, so shipping it opens no door
    /// (unlike an environment variable, which every command would have to consult and any
    /// parent process could set without the command line showing it).
    #[command(name = "__panic-test", hide = true)]
    PanicTest,
    /// Print what an xclbin holds: sections, kernel, memories, AIE partition and PDIs.
    Xclbin(aiec::cli::xclbin::Args),
}

/// A panic is a bug in aiec, never the user's input: say so in one line, with where it
/// happened and where to report it, instead of a backtrace (`RUST_BACKTRACE=1` still shows
/// one). A panic inside a contained decoder is reported as that input's error instead.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if aiec_runtime::guard::inside_contained() {
            return;
        }
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown cause");
        let what = what.lines().next().unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug in aiec {}): {what}{place}; please report it to the aiec issue tracker with the command line and, if you can, the input",
            env!("CARGO_PKG_VERSION")
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

fn main() -> std::process::ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    // Colour codes only for a terminal (not in pipes, files or CI logs), and never with NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A server logs its requests by default; the other commands stay quiet. Only our crates
    // log by default: a library's own error record (symphonia's failed probe of a non-audio
    // file) would be a second line beside the one error we report.
    let default_log = match cli.command {
        Command::Serve(_) => "aiec::cli::serve=info",
        _ => "aiec=error,aiec_runtime=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match cli.command {
        Command::Serve(_) => subscriber.init(),
        _ => subscriber.without_time().init(),
    }
    let result = match cli.command {
        Command::Run(a) => aiec::cli::run::main(*a),
        Command::Models(a) => aiec::cli::models::main(a),
        Command::Build(a) => aiec::cli::build::main(a),
        Command::Sim(a) => aiec::cli::sim::main(a),
        Command::Plan(a) => aiec::cli::plan::main(a),
        Command::Serve(a) => aiec::cli::serve::main(a),
        Command::Disasm(a) => aiec::cli::disasm::main(a),
        Command::PanicTest => panic!("deliberate panic (aiec __panic-test exercises the panic hook)\nsecond line, never printed"),
        Command::Xclbin(a) => aiec::cli::xclbin::main(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
