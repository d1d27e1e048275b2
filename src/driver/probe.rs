//! What `--device npu` needs and what this machine and build lack, named in one message.
//!
//! Four things stand between a transcription and a Ryzen AI NPU:
//! 1. this binary built with cargo feature `xrt` (the C++ shim over XRT's host API);
//! 2. XRT >= 2.17 to build it against ([`super::xrt_headers`]; Debian's 2.13 has no
//!    `xrt::hw_context`);
//! 3. an NPU the amdxdna driver exposes as `/dev/accel/accel*`;
//! 4. a `final.xclbin` per kernel, which needs its PDI, which needs the cores' ELFs from
//!    Peano (llvm-aie); `aiec build SPEC --xclbin` makes it where Peano is installed (or
//!    `--pdi FILE` packages one made elsewhere). The runtime looks for it as
//!    `$AIEC_HOME/kernels/<spec hash>.xclbin`, next to the kernel's `.toml` and `.mlir`.

use std::path::{Path, PathBuf};

/// What was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Built with feature `xrt` (then against this XRT version).
    pub xrt_feature: Option<String>,
    /// `/dev/accel/accel*` nodes.
    pub devices: Vec<PathBuf>,
    /// Where kernel xclbins are looked for, and how many are there.
    pub kernels_dir: Option<PathBuf>,
    pub xclbins: usize,
}

/// This build and machine.
pub fn probe() -> Findings {
    let kernels_dir = aiec_runtime::model::install::cache_dir()
        .ok()
        .map(|d| d.join("kernels"));
    let xclbins = kernels_dir.as_deref().map_or(0, count_xclbins);
    Findings {
        xrt_feature: xrt_version(),
        devices: accel_devices(Path::new("/dev/accel")),
        kernels_dir,
        xclbins,
    }
}

fn xrt_version() -> Option<String> {
    #[cfg(feature = "xrt")]
    {
        Some(env!("AIEC_XRT_VERSION").to_string())
    }
    #[cfg(not(feature = "xrt"))]
    {
        None
    }
}

/// `accel*` entries of `dir` (the DRM accel nodes), sorted.
pub fn accel_devices(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("accel"))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The xclbin path of the kernel with spec hash `hash`.
pub fn xclbin_path(kernels_dir: &Path, hash: &str) -> PathBuf {
    kernels_dir.join(format!("{hash}.xclbin"))
}

fn count_xclbins(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "xclbin"))
        .count()
}

/// Why a kernel has no xclbin and how to make one.
pub fn xclbin_hint() -> &'static str {
    "a final.xclbin per kernel, whose PDI needs the cores' ELFs from Peano (llvm-aie), \
     absent here: build it with `aiec build <spec hash>.toml --xclbin` where Peano is \
     installed (or `--pdi FILE` with a PDI made there) and copy final.xclbin to \
     $AIEC_HOME/kernels/<spec hash>.xclbin"
}

/// The one message naming everything `--device npu` lacks, or `None` when nothing is.
pub fn missing(f: &Findings) -> Option<String> {
    let mut lacks = Vec::new();
    if f.xrt_feature.is_none() {
        lacks.push(format!(
            "this aiec was built without cargo feature `xrt` (rebuild with `--features xrt`, \
             which needs XRT >= {}.{} headers and libxrt_coreutil: Debian's libxrt-dev 2.13 \
             has no xrt::hw_context)",
            super::xrt_headers::MIN_VERSION.0,
            super::xrt_headers::MIN_VERSION.1
        ));
    }
    if f.devices.is_empty() {
        lacks.push(
            "this machine has no NPU device (no /dev/accel/accel*: a Ryzen AI NPU with the \
             amdxdna driver loaded)"
                .to_string(),
        );
    }
    if f.xclbins == 0 {
        let dir = f.kernels_dir.as_ref().map_or_else(
            || "$AIEC_HOME/kernels".to_string(),
            |d| d.display().to_string(),
        );
        lacks.push(format!(
            "no kernel xclbin in {dir}: it needs {}",
            xclbin_hint()
        ));
    }
    if lacks.is_empty() {
        return None;
    }
    Some(format!(
        "--device npu cannot run: {}; use --device sim to run the same kernels' instruction \
         streams on the simulator, or --device cpu",
        lacks.join("; ")
    ))
}
