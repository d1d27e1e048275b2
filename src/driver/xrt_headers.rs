//! Finding XRT headers new enough for the NPU host flow (std only: build.rs includes this file
//! with `#[path]` to decide whether the `xrt` feature can be built, and the library exposes it
//! so the decision and its message are tested without a build script).
//!
//! XRT >= 2.17 is required because the NPU flow opens an `xrt::hw_context` on the registered
//! xclbin; the header that declares it is `xrt/xrt_hw_context.h` (older trees:
//! `xrt/experimental/xrt_hw_context.h` or `experimental/xrt_hw_context.h`). Debian's
//! `libxrt-dev` 2.13 (`/usr/include/xrt`, version.h "2.13.0") has neither.

use std::path::{Path, PathBuf};

/// The oldest XRT whose headers the shim compiles against.
pub const MIN_VERSION: (u32, u32) = (2, 17);

/// Where `hw_context` may be declared, relative to an include root.
const HW_CONTEXT_HEADERS: [&str; 3] = [
    "xrt/xrt_hw_context.h",
    "xrt/experimental/xrt_hw_context.h",
    "experimental/xrt_hw_context.h",
];

/// Where the version string may be, relative to an include root (installed XRT: `version.h`;
/// 2.19 and later also `xrt/detail/version-slim.h`).
const VERSION_HEADERS: [&str; 3] = ["version.h", "xrt/detail/version-slim.h", "xrt/version.h"];

/// Usable XRT headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrtHeaders {
    /// The directory to pass as `-I` (holds `xrt/xrt_device.h`).
    pub include: PathBuf,
    pub version: (u32, u32, u32),
    pub hw_context: PathBuf,
}

/// The include roots searched, in order: `$XRT_ROOT/include`, `/opt/xilinx/xrt/include`,
/// `/usr/include/xrt` (Debian) and `/usr/include`.
pub fn candidate_roots(xrt_root: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(r) = xrt_root {
        roots.push(r.join("include"));
    }
    roots.extend(
        [
            "/opt/xilinx/xrt/include",
            "/usr/include/xrt",
            "/usr/include",
        ]
        .iter()
        .map(PathBuf::from),
    );
    roots
}

/// `"2.13.0"` from a header defining `xrt_build_version[] = "2.13.0";`.
pub fn parse_version(header: &str) -> Option<(u32, u32, u32)> {
    let at = header.find("xrt_build_version[]")?;
    let rest = &header[at..];
    let open = rest.find('"')? + 1;
    let close = open + rest[open..].find('"')?;
    let mut parts = rest[open..close].split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The first root in `roots` with XRT >= [`MIN_VERSION`] and a hw_context header, or one
/// message saying what each XRT found lacks.
pub fn find(roots: &[PathBuf]) -> Result<XrtHeaders, String> {
    let mut seen = Vec::new();
    for root in roots {
        if !root.join("xrt/xrt_device.h").is_file() {
            continue;
        }
        let version = VERSION_HEADERS
            .iter()
            .filter_map(|h| std::fs::read_to_string(root.join(h)).ok())
            .find_map(|text| parse_version(&text));
        let hw_context = HW_CONTEXT_HEADERS
            .iter()
            .map(|h| root.join(h))
            .find(|p| p.is_file());
        match (version, hw_context) {
            (Some(v), Some(hw)) if (v.0, v.1) >= MIN_VERSION => {
                return Ok(XrtHeaders {
                    include: root.clone(),
                    version: v,
                    hw_context: hw,
                })
            }
            (v, hw) => {
                let version = v.map_or("an unknown version".to_string(), |(a, b, c)| {
                    format!("XRT {a}.{b}.{c}")
                });
                let lacks = if hw.is_none() {
                    "has no xrt_hw_context.h (xrt::hw_context)".to_string()
                } else {
                    format!("is older than {}.{}", MIN_VERSION.0, MIN_VERSION.1)
                };
                seen.push(format!("{} holds {version}, which {lacks}", root.display()));
            }
        }
    }
    let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let found = if seen.is_empty() {
        format!("no XRT headers in {}", searched.join(", "))
    } else {
        seen.join("; ")
    };
    Err(format!(
        "the `xrt` feature needs XRT >= {}.{} headers (xrt::hw_context, which the NPU flow opens \
         on the xclbin): {found}. Debian's libxrt-dev 2.13 predates hw_context; install XRT >= \
         {}.{} (e.g. the amdxdna/XRT packages into /opt/xilinx/xrt) or set XRT_ROOT to one",
        MIN_VERSION.0, MIN_VERSION.1, MIN_VERSION.0, MIN_VERSION.1
    ))
}
