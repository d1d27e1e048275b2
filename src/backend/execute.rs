//! Running a plan. A step runs when its tool works and its inputs exist; otherwise it is
//! skipped and the report says why. A missing tool is not an error (the caller decides
//! whether it needed the xclbin, see [`Report::require`]); a tool that runs and fails is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::artefacts::{names, package_xclbin, pdi_uuid, render_artefacts};
use super::build_steps::{BuildSteps, Internal, Step, StepKind};
use super::ir_edits;
use super::toolchain::{Tool, Toolchain};
use super::BackendError;

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Ran,
    /// The step's tool is missing or broken.
    SkippedToolUnavailable {
        tool: Tool,
        reason: String,
    },
    /// An input does not exist, because an earlier step was skipped.
    SkippedInputMissing {
        input: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub purpose: String,
    pub command: String,
    pub outputs: Vec<PathBuf>,
    pub status: StepStatus,
}

/// A tool that could not be used, and the files it would have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingTool {
    pub tool: Tool,
    pub reason: String,
    pub would_make: Vec<PathBuf>,
}

/// The result of [`BuildSteps::execute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub out_dir: PathBuf,
    pub steps: Vec<StepOutcome>,
    pub missing_tools: Vec<MissingTool>,
}

impl Report {
    /// Whether a step made `file` (a name in the artefact directory).
    pub fn produced(&self, file: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.status == StepStatus::Ran && s.outputs.iter().any(|o| o == Path::new(file)))
    }

    /// Files that were made, in step order.
    pub fn produced_files(&self) -> Vec<&Path> {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Ran)
            .flat_map(|s| s.outputs.iter().map(PathBuf::as_path))
            .collect()
    }

    /// The path of `file` if it was made, else an error naming the tools that were missing.
    pub fn require(&self, file: &str) -> Result<PathBuf, BackendError> {
        if self.produced(file) {
            return Ok(self.out_dir.join(file));
        }
        let reasons = if self.missing_tools.is_empty() {
            "no step of the plan makes it".to_string()
        } else {
            self.missing_tools
                .iter()
                .map(|m| format!("{}: {}", m.tool, m.reason))
                .collect::<Vec<_>>()
                .join("; ")
        };
        Err(BackendError::NotProduced {
            file: file.to_string(),
            reasons,
        })
    }

    /// `final.xclbin`, or an error saying which tools kept it from being made.
    pub fn require_xclbin(&self) -> Result<PathBuf, BackendError> {
        self.require(names::FINAL_XCLBIN)
    }

    /// The report as JSON for the artefact's `manifest.json`: which step (and tool) made
    /// which file, and which tools were missing with what they would have made.
    pub fn to_json(&self) -> serde_json::Value {
        let paths =
            |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| p.display().to_string()).collect() };
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|s| {
                let (status, reason) = match &s.status {
                    StepStatus::Ran => ("ran", None),
                    StepStatus::SkippedToolUnavailable { tool, reason } => {
                        ("skipped", Some(format!("{tool}: {reason}")))
                    }
                    StepStatus::SkippedInputMissing { input } => (
                        "skipped",
                        Some(format!("input {} was not made", input.display())),
                    ),
                };
                serde_json::json!({
                    "purpose": s.purpose,
                    "command": s.command,
                    "outputs": paths(&s.outputs),
                    "status": status,
                    "reason": reason,
                })
            })
            .collect();
        let missing: Vec<serde_json::Value> = self
            .missing_tools
            .iter()
            .map(|m| {
                serde_json::json!({
                    "tool": m.tool.to_string(),
                    "reason": m.reason,
                    "would_make": paths(&m.would_make),
                })
            })
            .collect();
        serde_json::json!({ "steps": steps, "missing_tools": missing })
    }

    /// Human-readable summary: what ran, and each missing tool with what it would have made.
    pub fn summary(&self) -> String {
        let ran = self
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Ran)
            .count();
        let mut out = format!(
            "{ran} of {} step(s) ran in {}\n",
            self.steps.len(),
            self.out_dir.display()
        );
        for m in &self.missing_tools {
            // Per-core files repeat for every core; the first few say what they are.
            const SHOWN: usize = 4;
            let mut files: Vec<String> = m
                .would_make
                .iter()
                .take(SHOWN)
                .map(|p| p.display().to_string())
                .collect();
            if m.would_make.len() > SHOWN {
                files.push(format!("and {} more", m.would_make.len() - SHOWN));
            }
            out.push_str(&format!(
                "skipped {}: {} (would have made {})\n",
                m.tool,
                m.reason,
                files.join(", ")
            ));
        }
        out
    }
}

/// How much of a failing tool's stderr goes into the error.
const STDERR_TAIL_LINES: usize = 20;

impl BuildSteps {
    /// Runs every step it can with `tc`, in order, inside the artefact directory (created
    /// if needed). The rendered templates are always written.
    pub fn execute(&self, tc: &Toolchain) -> Result<Report, BackendError> {
        let out_dir = &self.request.out_dir;
        // Without the design nothing downstream means anything: say so, not "skipped".
        let design = &self.request.design_mlir;
        if let Err(source) = std::fs::metadata(design) {
            return Err(BackendError::Io {
                path: design.clone(),
                source,
            });
        }
        std::fs::create_dir_all(out_dir).map_err(|source| BackendError::Io {
            path: out_dir.clone(),
            source,
        })?;
        let mut outcomes = Vec::with_capacity(self.steps.len());
        let mut missing: BTreeMap<Tool, MissingTool> = BTreeMap::new();

        for step in &self.steps {
            let status = match self.blocker(step, tc) {
                Some(status) => status,
                None => {
                    self.run_step(step, tc)?;
                    StepStatus::Ran
                }
            };
            if let StepStatus::SkippedToolUnavailable { tool, reason } = &status {
                missing
                    .entry(*tool)
                    .or_insert_with(|| MissingTool {
                        tool: *tool,
                        reason: reason.clone(),
                        would_make: Vec::new(),
                    })
                    .would_make
                    .extend(step.outputs.iter().cloned());
            }
            outcomes.push(StepOutcome {
                purpose: step.purpose.clone(),
                command: step.command_line(),
                outputs: step.outputs.clone(),
                status,
            });
        }
        Ok(Report {
            out_dir: out_dir.clone(),
            steps: outcomes,
            missing_tools: missing.into_values().collect(),
        })
    }

    /// Renders the templates into the artefact directory (created if needed) and returns
    /// the paths written. `execute` does this as its first step; a dry run can call it alone.
    pub fn write_artefacts(&self) -> Result<Vec<PathBuf>, BackendError> {
        let out_dir = &self.request.out_dir;
        std::fs::create_dir_all(out_dir).map_err(|source| BackendError::Io {
            path: out_dir.clone(),
            source,
        })?;
        // The PDI uuid follows the design's text when it can be read.
        let design = std::fs::read(&self.request.design_mlir).ok();
        let uuid = pdi_uuid(&self.request, design.as_deref());
        let mut written = Vec::new();
        for artefact in render_artefacts(&self.request, uuid)? {
            let path = self.resolve(Path::new(artefact.file_name));
            write(&path, &artefact.contents)?;
            written.push(path);
        }
        Ok(written)
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.request.out_dir.join(p)
        }
    }

    /// Why the step cannot run, if it cannot. A missing tool takes precedence over a
    /// missing input so that the report names the root cause.
    fn blocker(&self, step: &Step, tc: &Toolchain) -> Option<StepStatus> {
        if let Some(tool) = step.needs_tool() {
            if let Some(reason) = tc.status(tool).unavailable_reason() {
                return Some(StepStatus::SkippedToolUnavailable { tool, reason });
            }
        }
        step.inputs
            .iter()
            .find(|i| !self.resolve(i).exists())
            .map(|i| StepStatus::SkippedInputMissing { input: i.clone() })
    }

    fn run_step(&self, step: &Step, tc: &Toolchain) -> Result<(), BackendError> {
        match &step.kind {
            StepKind::Internal(internal) => self.run_internal(internal, step),
            StepKind::Tool(tool) => {
                // `blocker` checked availability.
                let program = tc.path(*tool).ok_or_else(|| BackendError::NotProduced {
                    file: step
                        .outputs
                        .first()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    reasons: format!("{tool} is unavailable"),
                })?;
                self.run_tool(*tool, program, step)
            }
        }
    }

    fn run_tool(&self, tool: Tool, program: &Path, step: &Step) -> Result<(), BackendError> {
        let command = format!("{} {}", program.display(), step.args.join(" "));
        tracing::debug!(%command, "backend step");
        let output = duct::cmd(program, &step.args)
            .dir(&self.request.out_dir)
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|source| BackendError::ToolSpawn {
                tool,
                command: command.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(BackendError::ToolFailed {
                tool,
                command,
                status: output.status.to_string(),
                stderr_tail: diagnostics(&output),
            });
        }
        if let Some(missing) = step.outputs.iter().find(|o| !self.resolve(o).exists()) {
            return Err(BackendError::ToolFailed {
                tool,
                command,
                status: format!(
                    "{} (but {} was not written)",
                    output.status,
                    missing.display()
                ),
                stderr_tail: diagnostics(&output),
            });
        }
        Ok(())
    }

    fn run_internal(&self, internal: &Internal, step: &Step) -> Result<(), BackendError> {
        match internal {
            Internal::WriteArtefacts => self.write_artefacts().map(|_| ()),
            Internal::PeanoCompat => {
                let (input, output) = single_io(step);
                let text = read(&self.resolve(input))?;
                write(&self.resolve(output), &ir_edits::peano_compat(&text))
            }
            Internal::AttachElfs { elf_for_tile } => {
                let (input, output) = (&step.inputs[0], &step.outputs[0]);
                let path = self.resolve(input);
                let text = read(&path)?;
                let edited = ir_edits::attach_elf_files(&text, elf_for_tile)
                    .map_err(|e| BackendError::IrEdit { path, message: e.0 })?;
                write(&self.resolve(output), &edited)
            }
            Internal::PackageXclbin => {
                let (input, output) = single_io(step);
                let path = self.resolve(input);
                let pdi =
                    std::fs::read(&path).map_err(|source| BackendError::Io { path, source })?;
                let xclbin = package_xclbin(&self.request, &pdi)?;
                let out = self.resolve(output);
                std::fs::write(&out, xclbin)
                    .map_err(|source| BackendError::Io { path: out, source })
            }
        }
    }
}

fn single_io(step: &Step) -> (&Path, &Path) {
    (&step.inputs[0], &step.outputs[0])
}

fn read(path: &Path) -> Result<String, BackendError> {
    std::fs::read_to_string(path).map_err(|source| BackendError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str) -> Result<(), BackendError> {
    std::fs::write(path, contents).map_err(|source| BackendError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The tail of a tool's stderr, or of its stdout when stderr is empty (some tools report
/// errors there).
fn diagnostics(output: &std::process::Output) -> String {
    let stderr = tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL_LINES);
    if stderr.is_empty() {
        tail(&String::from_utf8_lossy(&output.stdout), STDERR_TAIL_LINES)
    } else {
        stderr
    }
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
