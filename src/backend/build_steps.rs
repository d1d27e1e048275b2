//! The build steps: every step of aiecc's NPU flow (Peano, no xchesscc, one ELF per core),
//! as explicit command lines over files in the artefact directory.
//!
//! Paths inside the steps are relative to the artefact directory, where every step runs, so
//! the rendered steps read like aiecc's `-v` output and do not depend on where the
//! directory is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::artefacts::{cdo_files, core_file, names};
use super::pipelines;
use super::request::{AieTarget, BuildRequest};
use super::toolchain::Tool;
use super::BackendError;

/// Work done in-process rather than by an external tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Internal {
    /// Render `templates/` into the artefact directory.
    WriteArtefacts,
    /// Make host-LLVM IR digestible by Peano (see `ir_edits::peano_compat`).
    PeanoCompat,
    /// Add `elf_file` attributes to the cores (see `ir_edits::attach_elf_files`).
    AttachElfs {
        elf_for_tile: BTreeMap<(u32, u32), String>,
    },
}

/// Who carries out a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Tool(Tool),
    Internal(Internal),
}

/// One step: what runs, on which files, producing which files, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    /// Arguments after the program name (tools only).
    pub args: Vec<String>,
    /// Files the step reads (relative to the artefact directory unless absolute).
    pub inputs: Vec<PathBuf>,
    /// Files the step writes.
    pub outputs: Vec<PathBuf>,
    pub purpose: String,
}

impl Step {
    fn tool(
        tool: Tool,
        args: Vec<String>,
        inputs: &[&str],
        outputs: &[&str],
        purpose: &str,
    ) -> Self {
        Step {
            kind: StepKind::Tool(tool),
            args,
            inputs: inputs.iter().map(PathBuf::from).collect(),
            outputs: outputs.iter().map(PathBuf::from).collect(),
            purpose: purpose.to_string(),
        }
    }

    /// The tool this step needs, if any.
    pub fn needs_tool(&self) -> Option<Tool> {
        match self.kind {
            StepKind::Tool(t) => Some(t),
            StepKind::Internal(_) => None,
        }
    }

    /// The command line (tools) or a description (internal steps), shell-quoted.
    pub fn command_line(&self) -> String {
        match &self.kind {
            StepKind::Tool(tool) => {
                let mut line = tool.command_name().to_string();
                for arg in &self.args {
                    line.push(' ');
                    line.push_str(&shell_quote(arg));
                }
                line
            }
            StepKind::Internal(internal) => {
                let what = match internal {
                    Internal::WriteArtefacts => "render templates",
                    Internal::PeanoCompat => "peano-compat",
                    Internal::AttachElfs { .. } => "attach-elf-files",
                };
                let files = |v: &[PathBuf]| {
                    v.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                if self.inputs.is_empty() {
                    format!("(aiec) {what} -> {}", files(&self.outputs))
                } else {
                    format!(
                        "(aiec) {what} {} -> {}",
                        files(&self.inputs),
                        files(&self.outputs)
                    )
                }
            }
        }
    }
}

/// The ordered steps of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSteps {
    pub request: BuildRequest,
    pub target: AieTarget,
    pub steps: Vec<Step>,
}

/// Plans the full aiecc-equivalent pipeline for `req`.
pub fn build_steps(req: &BuildRequest) -> Result<BuildSteps, BackendError> {
    req.validate()?;
    let target = req.device_info()?.target;
    let dev = req.device_symbol.as_str();
    let design = design_arg(req);
    let with_addresses = names::INPUT_WITH_ADDRESSES;
    let physical = names::INPUT_PHYSICAL;
    let with_elfs = names::INPUT_PHYSICAL_WITH_ELFS;
    let mut steps = Vec::new();

    steps.push(Step {
        kind: StepKind::Internal(Internal::WriteArtefacts),
        args: vec![],
        inputs: vec![],
        outputs: [
            names::DESIGN_BIF,
            names::MEM_TOPOLOGY,
            names::AIE_PARTITION,
            names::KERNELS,
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
        purpose: "bootgen image description and xclbin JSON sections".into(),
    });

    steps.push(Step::tool(
        Tool::AieOpt,
        vec![
            format!(
                "--pass-pipeline={}",
                pipelines::input_with_addresses(target)
            ),
            design.clone(),
            "-o".into(),
            with_addresses.into(),
        ],
        &[&design],
        &[with_addresses],
        "object FIFOs to buffers/locks/DMAs; lock, BD ids and buffer addresses",
    ));
    steps.push(Step::tool(
        Tool::AieOpt,
        vec![
            "--aie-create-pathfinder-flows".into(),
            with_addresses.into(),
            "-o".into(),
            physical.into(),
        ],
        &[with_addresses],
        &[physical],
        "route the flows through the switchboxes",
    ));

    let mut elf_for_tile = BTreeMap::new();
    let mut elfs = Vec::new();
    let opt = format!("-O{}", req.opt_level);
    for &(col, row) in &req.cores {
        let f = |ext: &str| core_file(dev, col, row, ext);
        let (lowered, ldscript, ll) = (f("opt.mlir"), f("ld.script"), f("ll"));
        let hacked = format!("{ll}peanohack.ll"); // aiecc's name for the rewritten IR
        let (stripped, obj, elf) = (f("stripped.ll"), f("o"), f("elf"));
        let core = format!("core ({col}, {row})");

        steps.push(Step::tool(
            Tool::AieOpt,
            vec![
                format!(
                    "--pass-pipeline={}",
                    pipelines::core_to_llvm(dev, col, row, target)
                ),
                with_addresses.into(),
                "-o".into(),
                lowered.clone(),
            ],
            &[with_addresses],
            &[&lowered],
            &format!("{core}: extract the core body and lower it to the LLVM dialect"),
        ));
        steps.push(Step::tool(
            Tool::AieTranslate,
            vec![
                with_addresses.into(),
                "--aie-generate-ldscript".into(),
                format!("--aie-device-name={dev}"),
                format!("--tilecol={col}"),
                format!("--tilerow={row}"),
                "-o".into(),
                ldscript.clone(),
            ],
            &[with_addresses],
            &[&ldscript],
            &format!("{core}: linker script placing code, stack and buffers"),
        ));
        steps.push(Step::tool(
            Tool::AieTranslate,
            vec![
                "--mlir-to-llvmir".into(),
                lowered.clone(),
                "-o".into(),
                ll.clone(),
            ],
            &[&lowered],
            &[&ll],
            &format!("{core}: LLVM IR"),
        ));
        steps.push(Step {
            kind: StepKind::Internal(Internal::PeanoCompat),
            args: vec![],
            inputs: vec![PathBuf::from(&ll)],
            outputs: vec![PathBuf::from(&hacked)],
            purpose: format!("{core}: drop IR syntax Peano's LLVM does not read"),
        });
        steps.push(Step::tool(
            Tool::PeanoOpt,
            vec![
                format!("--passes=default<O{}>,strip", req.opt_level),
                "-S".into(),
                hacked.clone(),
                "-o".into(),
                stripped.clone(),
            ],
            &[&hacked],
            &[&stripped],
            &format!("{core}: optimise and strip debug info"),
        ));
        steps.push(Step::tool(
            Tool::PeanoLlc,
            vec![
                stripped.clone(),
                opt.clone(),
                format!("--march={}", target.name()),
                "--function-sections".into(),
                "--filetype=obj".into(),
                "-o".into(),
                obj.clone(),
            ],
            &[&stripped],
            &[&obj],
            &format!("{core}: compile for {}", target.name()),
        ));
        steps.push(Step::tool(
            Tool::PeanoClang,
            vec![
                opt.clone(),
                format!("--target={}", target.peano_triple()),
                obj.clone(),
                "-Wl,--gc-sections".into(),
                "-Wl,--orphan-handling=error".into(),
                format!("-Wl,-T,{ldscript}"),
                "-o".into(),
                elf.clone(),
            ],
            &[&obj, &ldscript],
            &[&elf],
            &format!("{core}: link the core program"),
        ));
        elf_for_tile.insert((col, row), elf.clone());
        elfs.push(elf);
    }

    let mut attach_inputs = vec![PathBuf::from(physical)];
    attach_inputs.extend(elfs.iter().map(PathBuf::from));
    steps.push(Step {
        kind: StepKind::Internal(Internal::AttachElfs { elf_for_tile }),
        args: vec![],
        inputs: attach_inputs,
        outputs: vec![PathBuf::from(with_elfs)],
        purpose: "point every core at its ELF (`elf_file`) for CDO generation".into(),
    });

    steps.push(Step::tool(
        Tool::AieOpt,
        vec![
            format!("--pass-pipeline={}", pipelines::npu_lowering()),
            with_elfs.into(),
            "-o".into(),
            names::NPU_INSTS_MLIR.into(),
        ],
        &[with_elfs],
        &[names::NPU_INSTS_MLIR],
        "lower the runtime sequence to NPU instructions",
    ));
    let mut insts_args = vec![
        "--aie-npu-to-binary".to_string(),
        "--aie-output-binary".to_string(),
        format!("--aie-device-name={dev}"),
    ];
    if let Some(seq) = &req.sequence_name {
        insts_args.push(format!("--aie-sequence-name={seq}"));
    }
    insts_args.extend([
        names::NPU_INSTS_MLIR.to_string(),
        "-o".to_string(),
        names::INSTS_BIN.to_string(),
    ]);
    steps.push(Step::tool(
        Tool::AieTranslate,
        insts_args,
        &[names::NPU_INSTS_MLIR],
        &[names::INSTS_BIN],
        "instruction stream the host hands to the NPU per run",
    ));

    let cdo = cdo_files(dev);
    let cdo_refs: Vec<&str> = cdo.iter().map(String::as_str).collect();
    steps.push(Step::tool(
        Tool::AieTranslate,
        vec![
            "--aie-generate-cdo".into(),
            format!("--aie-device-name={dev}"),
            with_elfs.into(),
        ],
        &[with_elfs],
        &cdo_refs,
        "array configuration (ELFs, init, core enable) as CDO",
    ));
    let mut bootgen_inputs = vec![names::DESIGN_BIF];
    bootgen_inputs.extend(cdo_refs.iter().copied());
    steps.push(Step::tool(
        Tool::Bootgen,
        vec![
            "-arch".into(),
            "versal".into(),
            "-image".into(),
            names::DESIGN_BIF.into(),
            "-o".into(),
            names::DESIGN_PDI.into(),
            "-w".into(),
        ],
        &bootgen_inputs,
        &[names::DESIGN_PDI],
        "pack the CDOs into the partial device image",
    ));
    steps.push(Step::tool(
        Tool::Xclbinutil,
        vec![
            "--add-replace-section".into(),
            format!("MEM_TOPOLOGY:JSON:{}", names::MEM_TOPOLOGY),
            "--add-kernel".into(),
            names::KERNELS.into(),
            "--add-replace-section".into(),
            format!("AIE_PARTITION:JSON:{}", names::AIE_PARTITION),
            "--force".into(),
            "--quiet".into(),
            "--output".into(),
            names::FINAL_XCLBIN.into(),
        ],
        &[
            names::MEM_TOPOLOGY,
            names::KERNELS,
            names::AIE_PARTITION,
            names::DESIGN_PDI,
        ],
        &[names::FINAL_XCLBIN],
        "package the PDI and metadata as the xclbin XRT loads",
    ));

    Ok(BuildSteps {
        request: req.clone(),
        target,
        steps,
    })
}

/// How the design file is named on command lines: by file name when it is already in the
/// artefact directory (the usual case), else by absolute path (steps run in that directory).
fn design_arg(req: &BuildRequest) -> String {
    if req.design_mlir.parent() == Some(req.out_dir.as_path()) {
        if let Some(name) = req.design_mlir.file_name() {
            return name.to_string_lossy().into_owned();
        }
    }
    std::path::absolute(&req.design_mlir)
        .unwrap_or_else(|_| req.design_mlir.clone())
        .display()
        .to_string()
}

impl BuildSteps {
    /// The exact command lines, one step per line after a `#` comment saying why: a shell
    /// script run from the artefact directory. Deterministic for a given request.
    pub fn render(&self) -> String {
        let req = &self.request;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# aiec backend plan: device {} ({}), {} core(s), {} step(s)",
            req.device,
            self.target.name(),
            req.cores.len(),
            self.steps.len()
        );
        let _ = writeln!(
            out,
            "cd {}",
            shell_quote(&req.out_dir.display().to_string())
        );
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "# [{}] {}", i + 1, step.purpose);
            let _ = writeln!(out, "{}", step.command_line());
        }
        out
    }

    /// Every file the plan would produce, in step order.
    pub fn outputs(&self) -> Vec<&Path> {
        self.steps
            .iter()
            .flat_map(|s| s.outputs.iter().map(PathBuf::as_path))
            .collect()
    }
}

/// Quotes an argument for a POSIX shell when it has characters the shell would interpret.
/// `${PEANO_INSTALL_DIR}` in program names is left for the shell to expand.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_only_when_needed() {
        assert_eq!(shell_quote("-o"), "-o");
        assert_eq!(
            shell_quote("--passes=default<O2>,strip"),
            "'--passes=default<O2>,strip'"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
