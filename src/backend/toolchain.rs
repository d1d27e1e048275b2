//! Finding the external tools and checking that each one actually works.
//!
//! A tool can be absent, or present but unusable: Debian ships an `xclbinutil` wrapper with
//! no binary behind it, and a host LLVM `clang`/`opt`/`llc` on PATH is not Peano (it has no
//! AIE target). Every candidate is therefore run once with a harmless probe, and a tool that
//! fails its probe is recorded as broken, with the reason, exactly like a missing one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The external programs the backend drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    AieOpt,
    AieTranslate,
    PeanoClang,
    PeanoOpt,
    PeanoLlc,
    Bootgen,
    Xclbinutil,
}

impl Tool {
    pub const ALL: [Tool; 7] = [
        Tool::AieOpt,
        Tool::AieTranslate,
        Tool::PeanoClang,
        Tool::PeanoOpt,
        Tool::PeanoLlc,
        Tool::Bootgen,
        Tool::Xclbinutil,
    ];

    /// The executable's file name.
    pub const fn exe_name(self) -> &'static str {
        match self {
            Tool::AieOpt => "aie-opt",
            Tool::AieTranslate => "aie-translate",
            Tool::PeanoClang => "clang",
            Tool::PeanoOpt => "opt",
            Tool::PeanoLlc => "llc",
            Tool::Bootgen => "bootgen",
            Tool::Xclbinutil => "xclbinutil",
        }
    }

    /// How the tool is spelled in rendered command lines: Peano's tools share their names
    /// with the host LLVM, so they are written under `$PEANO_INSTALL_DIR`.
    pub const fn command_name(self) -> &'static str {
        match self {
            Tool::PeanoClang => "${PEANO_INSTALL_DIR}/bin/clang",
            Tool::PeanoOpt => "${PEANO_INSTALL_DIR}/bin/opt",
            Tool::PeanoLlc => "${PEANO_INSTALL_DIR}/bin/llc",
            other => other.exe_name(),
        }
    }

    /// Environment variable naming an explicit path for this tool.
    pub const fn override_var(self) -> &'static str {
        match self {
            Tool::AieOpt => "AIEC_AIE_OPT",
            Tool::AieTranslate => "AIEC_AIE_TRANSLATE",
            Tool::PeanoClang => "AIEC_PEANO_CLANG",
            Tool::PeanoOpt => "AIEC_PEANO_OPT",
            Tool::PeanoLlc => "AIEC_PEANO_LLC",
            Tool::Bootgen => "AIEC_BOOTGEN",
            Tool::Xclbinutil => "AIEC_XCLBINUTIL",
        }
    }

    pub const fn is_peano(self) -> bool {
        matches!(self, Tool::PeanoClang | Tool::PeanoOpt | Tool::PeanoLlc)
    }

    pub const fn is_mlir_aie(self) -> bool {
        matches!(self, Tool::AieOpt | Tool::AieTranslate)
    }

    /// Arguments of the probe run: cheap, no input files, prints something recognisable.
    const fn probe_args(self) -> &'static [&'static str] {
        match self {
            // clang's --version does not list targets; -print-targets does.
            Tool::PeanoClang => &["-print-targets"],
            Tool::Bootgen => &["-help"],
            _ => &["--version"],
        }
    }

    /// Whether a probe's exit status and output show a working tool of the right kind.
    fn probe_verdict(self, success: bool, output: &str) -> Result<(), String> {
        if !success {
            return Err(format!(
                "`{} {}` failed{}",
                self.exe_name(),
                self.probe_args().join(" "),
                first_line_suffix(output)
            ));
        }
        let lower = output.to_ascii_lowercase();
        let ok = match self {
            // Peano is an LLVM with the AIE targets registered; a host LLVM is not.
            Tool::PeanoClang | Tool::PeanoOpt | Tool::PeanoLlc => lower.contains("aie2"),
            Tool::Bootgen => lower.contains("bootgen"),
            Tool::Xclbinutil => lower.contains("version"),
            Tool::AieOpt | Tool::AieTranslate => !lower.trim().is_empty(),
        };
        if ok {
            Ok(())
        } else if self.is_peano() {
            Err("no AIE target registered (a host LLVM tool, not Peano)".to_string())
        } else {
            Err(format!(
                "`{} {}` printed nothing recognisable{}",
                self.exe_name(),
                self.probe_args().join(" "),
                first_line_suffix(output)
            ))
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Tool::PeanoClang => "peano clang",
            Tool::PeanoOpt => "peano opt",
            Tool::PeanoLlc => "peano llc",
            other => other.exe_name(),
        };
        f.write_str(name)
    }
}

fn first_line_suffix(output: &str) -> String {
    match output.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", truncate(line, 160)),
        None => String::new(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// What discovery found for one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolStatus {
    /// Present and passed its probe.
    Found(PathBuf),
    /// Not found anywhere that was searched.
    Missing { reason: String },
    /// Found, but it does not work (failed probe, not executable, wrong kind of tool).
    Broken { path: PathBuf, reason: String },
}

impl ToolStatus {
    pub fn path(&self) -> Option<&Path> {
        match self {
            ToolStatus::Found(p) => Some(p),
            _ => None,
        }
    }

    /// Why the tool cannot be used, if it cannot.
    pub fn unavailable_reason(&self) -> Option<String> {
        match self {
            ToolStatus::Found(_) => None,
            ToolStatus::Missing { reason } => Some(reason.clone()),
            ToolStatus::Broken { path, reason } => {
                Some(format!("{} is broken: {reason}", path.display()))
            }
        }
    }
}

/// Where discovery looks. [`SearchPaths::from_env`] reads the process environment; tests
/// build one by hand so that they never touch the global environment.
#[derive(Debug, Clone, Default)]
pub struct SearchPaths {
    /// A PATH-style list of directories.
    pub path: Option<OsString>,
    /// Peano's install root (`$PEANO_INSTALL_DIR`); its `bin/` is searched first.
    pub peano_install_dir: Option<PathBuf>,
    /// mlir-aie's install root (`$MLIR_AIE_INSTALL_DIR`); its `bin/` is searched first.
    pub mlir_aie_install_dir: Option<PathBuf>,
    /// Explicit per-tool paths (`$AIEC_AIE_OPT`, ...); these win over any search.
    pub overrides: BTreeMap<Tool, PathBuf>,
}

impl SearchPaths {
    pub fn from_env() -> Self {
        let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        let overrides = Tool::ALL
            .iter()
            .filter_map(|t| non_empty(t.override_var()).map(|p| (*t, PathBuf::from(p))))
            .collect();
        SearchPaths {
            path: non_empty("PATH"),
            peano_install_dir: non_empty("PEANO_INSTALL_DIR").map(PathBuf::from),
            mlir_aie_install_dir: non_empty("MLIR_AIE_INSTALL_DIR").map(PathBuf::from),
            overrides,
        }
    }

    /// Candidate paths for `tool`, most specific first.
    fn candidates(&self, tool: Tool) -> Vec<PathBuf> {
        if let Some(p) = self.overrides.get(&tool) {
            // An explicit override is the only candidate: silently falling back to
            // something else would hide a typo in the variable.
            return vec![p.clone()];
        }
        let mut out = Vec::new();
        let root = if tool.is_peano() {
            self.peano_install_dir.as_ref()
        } else if tool.is_mlir_aie() {
            self.mlir_aie_install_dir.as_ref()
        } else {
            None
        };
        if let Some(root) = root {
            let p = root.join("bin").join(tool.exe_name());
            if p.exists() {
                out.push(p);
            }
        }
        if let Some(path) = &self.path {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            if let Ok(all) = which::which_in_all(tool.exe_name(), Some(path), cwd) {
                for p in all {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}

/// The tools this machine has, each probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    tools: BTreeMap<Tool, ToolStatus>,
}

/// How long a probe may take before the tool is declared broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

impl Toolchain {
    /// No tools at all (every step needing one is skipped).
    pub fn empty() -> Self {
        Toolchain {
            tools: Tool::ALL
                .iter()
                .map(|t| {
                    (
                        *t,
                        ToolStatus::Missing {
                            reason: "no toolchain was searched".to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Searches the process environment (PATH, `PEANO_INSTALL_DIR`, `MLIR_AIE_INSTALL_DIR`,
    /// `AIEC_<TOOL>` overrides) and probes every candidate.
    pub fn discover() -> Self {
        Self::discover_in(&SearchPaths::from_env())
    }

    /// Discovery over explicit search paths. For each tool the first candidate that passes
    /// its probe wins; if none does, the first broken one is reported with its reason.
    pub fn discover_in(search: &SearchPaths) -> Self {
        let mut tools = BTreeMap::new();
        for tool in Tool::ALL {
            let candidates = search.candidates(tool);
            let mut first_broken = None;
            let mut found = None;
            for path in candidates {
                match probe(tool, &path) {
                    Ok(()) => {
                        found = Some(path);
                        break;
                    }
                    Err(reason) => {
                        if first_broken.is_none() {
                            first_broken = Some(ToolStatus::Broken { path, reason });
                        }
                    }
                }
            }
            let status = match (found, first_broken) {
                (Some(p), _) => ToolStatus::Found(p),
                (None, Some(broken)) => broken,
                (None, None) => ToolStatus::Missing {
                    reason: missing_reason(tool, search),
                },
            };
            tools.insert(tool, status);
        }
        Toolchain { tools }
    }

    /// The same toolchain with every tool outside `keep` marked missing, e.g. to stop
    /// before the xclbin or to exercise one step.
    pub fn restricted_to(&self, keep: &[Tool]) -> Self {
        let tools = self
            .tools
            .iter()
            .map(|(tool, status)| {
                let status = if keep.contains(tool) {
                    status.clone()
                } else {
                    ToolStatus::Missing {
                        reason: "excluded from this build".to_string(),
                    }
                };
                (*tool, status)
            })
            .collect();
        Toolchain { tools }
    }

    pub fn status(&self, tool: Tool) -> &ToolStatus {
        // Every constructor fills all tools.
        &self.tools[&tool]
    }

    pub fn path(&self, tool: Tool) -> Option<&Path> {
        self.status(tool).path()
    }

    /// Tools that cannot be used, with the reason.
    pub fn unavailable(&self) -> Vec<(Tool, String)> {
        self.tools
            .iter()
            .filter_map(|(t, s)| s.unavailable_reason().map(|r| (*t, r)))
            .collect()
    }

    /// A one-line-per-tool description, for `aiec build -v` and reports.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (tool, status) in &self.tools {
            let line = match status {
                ToolStatus::Found(p) => format!("{tool}: {}\n", p.display()),
                other => format!(
                    "{tool}: unavailable ({})\n",
                    other.unavailable_reason().unwrap_or_default()
                ),
            };
            out.push_str(&line);
        }
        out
    }
}

fn missing_reason(tool: Tool, search: &SearchPaths) -> String {
    if tool.is_peano() {
        if search.peano_install_dir.is_some() {
            format!(
                "`{}` is not in $PEANO_INSTALL_DIR/bin nor on PATH",
                tool.exe_name()
            )
        } else {
            format!(
                "`{}` not found: set PEANO_INSTALL_DIR to the llvm-aie (Peano) install",
                tool.exe_name()
            )
        }
    } else {
        format!("`{}` not found on PATH", tool.exe_name())
    }
}

/// Runs the tool's probe; `Err` carries why the tool is unusable.
fn probe(tool: Tool, path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err("not a file".to_string());
    }
    let handle = duct::cmd(path, tool.probe_args())
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(|e| format!("cannot be run: {e}"))?;
    let output = match handle.wait_timeout(PROBE_TIMEOUT) {
        Ok(Some(out)) => out.clone(),
        Ok(None) => {
            let _ = handle.kill();
            return Err(format!(
                "`{} {}` did not finish within {}s",
                tool.exe_name(),
                tool.probe_args().join(" "),
                PROBE_TIMEOUT.as_secs()
            ));
        }
        Err(e) => return Err(format!("cannot be run: {e}")),
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    tool.probe_verdict(output.status.success(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peano_verdict_rejects_host_llvm_output() {
        let host = "LLVM version 22.1.8\n  Registered Targets:\n    x86-64 - 64-bit X86\n";
        let err = Tool::PeanoLlc.probe_verdict(true, host).unwrap_err();
        assert!(err.contains("not Peano"), "{err}");
        let peano = "LLVM (http://llvm.org/):\n  Registered Targets:\n    aie2 - AIE2\n";
        assert!(Tool::PeanoLlc.probe_verdict(true, peano).is_ok());
    }

    #[test]
    fn failing_probe_names_the_command_and_first_line() {
        let err = Tool::Xclbinutil
            .probe_verdict(false, "\nERROR: xrt is not installed\nmore")
            .unwrap_err();
        assert_eq!(
            err,
            "`xclbinutil --version` failed: ERROR: xrt is not installed"
        );
    }

    #[test]
    fn empty_toolchain_has_every_tool_unavailable() {
        let tc = Toolchain::empty();
        assert_eq!(tc.unavailable().len(), Tool::ALL.len());
        assert!(Tool::ALL.iter().all(|t| tc.path(*t).is_none()));
    }
}
