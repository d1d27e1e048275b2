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
    /// Package the PDI and the kernel metadata as `final.xclbin` (see `npu::xclbin`).
    PackageXclbin,
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
                    Internal::PackageXclbin => "package-xclbin",
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
    let mut steps = vec![write_artefacts_step()];
    steps.extend(physical_design_steps(&design_arg(req), target));
    let mut elf_for_tile = BTreeMap::new();
    let mut elfs = Vec::new();
    for &(col, row) in &req.cores {
        let files = CoreFiles::new(dev, col, row);
        steps.extend(core_steps(req, target, &files));
        elf_for_tile.insert((col, row), files.elf.clone());
        elfs.push(files.elf);
    }
    steps.push(attach_elfs_step(elf_for_tile, &elfs));
    steps.extend(instruction_steps(req));
    steps.extend(device_image_steps(dev));
    Ok(BuildSteps {
        request: req.clone(),
        target,
        steps,
    })
}

/// `tool FLAG INPUT -o OUTPUT`: the shape of the aie-opt passes and of aie-translate's
/// single-file translations.
fn transform(tool: Tool, flag: String, input: &str, output: &str, purpose: &str) -> Step {
    Step::tool(
        tool,
        vec![flag, input.into(), "-o".into(), output.into()],
        &[input],
        &[output],
        purpose,
    )
}

fn internal(
    internal: Internal,
    inputs: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
    purpose: String,
) -> Step {
    Step {
        kind: StepKind::Internal(internal),
        args: vec![],
        inputs,
        outputs,
        purpose,
    }
}

fn write_artefacts_step() -> Step {
    let outputs = [
        names::DESIGN_BIF,
        names::MEM_TOPOLOGY,
        names::AIE_PARTITION,
        names::KERNELS,
    ];
    internal(
        Internal::WriteArtefacts,
        vec![],
        outputs.iter().map(PathBuf::from).collect(),
        "bootgen image description and xclbin JSON sections".into(),
    )
}

/// The design with buffers, locks, DMAs and addresses assigned, then routed.
fn physical_design_steps(design: &str, target: AieTarget) -> [Step; 2] {
    let with_addresses = names::INPUT_WITH_ADDRESSES;
    [
        transform(
            Tool::AieOpt,
            format!(
                "--pass-pipeline={}",
                pipelines::input_with_addresses(target)
            ),
            design,
            with_addresses,
            "object FIFOs to buffers/locks/DMAs; lock, BD ids and buffer addresses",
        ),
        transform(
            Tool::AieOpt,
            "--aie-create-pathfinder-flows".into(),
            with_addresses,
            names::INPUT_PHYSICAL,
            "route the flows through the switchboxes",
        ),
    ]
}

/// The files of one core's compilation, aiecc's names.
struct CoreFiles {
    col: u32,
    row: u32,
    lowered: String,
    ldscript: String,
    ll: String,
    hacked: String,
    stripped: String,
    obj: String,
    elf: String,
}

impl CoreFiles {
    fn new(dev: &str, col: u32, row: u32) -> Self {
        let f = |ext: &str| core_file(dev, col, row, ext);
        let ll = f("ll");
        CoreFiles {
            col,
            row,
            lowered: f("opt.mlir"),
            ldscript: f("ld.script"),
            hacked: format!("{ll}peanohack.ll"), // aiecc's name for the rewritten IR
            ll,
            stripped: f("stripped.ll"),
            obj: f("o"),
            elf: f("elf"),
        }
    }
}

/// One core from the placed design to its linked ELF: lower to LLVM, translate, adapt the
/// IR for Peano, optimise, compile, link with the core's linker script.
fn core_steps(req: &BuildRequest, target: AieTarget, c: &CoreFiles) -> [Step; 7] {
    let dev = req.device_symbol.as_str();
    let with_addresses = names::INPUT_WITH_ADDRESSES;
    let (col, row) = (c.col, c.row);
    let core = format!("core ({col}, {row})");
    let opt = format!("-O{}", req.opt_level);
    [
        transform(
            Tool::AieOpt,
            format!(
                "--pass-pipeline={}",
                pipelines::core_to_llvm(dev, col, row, target)
            ),
            with_addresses,
            &c.lowered,
            &format!("{core}: extract the core body and lower it to the LLVM dialect"),
        ),
        Step::tool(
            Tool::AieTranslate,
            vec![
                with_addresses.into(),
                "--aie-generate-ldscript".into(),
                format!("--aie-device-name={dev}"),
                format!("--tilecol={col}"),
                format!("--tilerow={row}"),
                "-o".into(),
                c.ldscript.clone(),
            ],
            &[with_addresses],
            &[&c.ldscript],
            &format!("{core}: linker script placing code, stack and buffers"),
        ),
        transform(
            Tool::AieTranslate,
            "--mlir-to-llvmir".into(),
            &c.lowered,
            &c.ll,
            &format!("{core}: LLVM IR"),
        ),
        internal(
            Internal::PeanoCompat,
            vec![PathBuf::from(&c.ll)],
            vec![PathBuf::from(&c.hacked)],
            format!("{core}: drop IR syntax Peano's LLVM does not read"),
        ),
        Step::tool(
            Tool::PeanoOpt,
            vec![
                format!("--passes=default<O{}>,strip", req.opt_level),
                "-S".into(),
                c.hacked.clone(),
                "-o".into(),
                c.stripped.clone(),
            ],
            &[&c.hacked],
            &[&c.stripped],
            &format!("{core}: optimise and strip debug info"),
        ),
        Step::tool(
            Tool::PeanoLlc,
            vec![
                c.stripped.clone(),
                opt.clone(),
                format!("--march={}", target.name()),
                "--function-sections".into(),
                "--filetype=obj".into(),
                "-o".into(),
                c.obj.clone(),
            ],
            &[&c.stripped],
            &[&c.obj],
            &format!("{core}: compile for {}", target.name()),
        ),
        Step::tool(
            Tool::PeanoClang,
            vec![
                opt,
                format!("--target={}", target.peano_triple()),
                c.obj.clone(),
                "-Wl,--gc-sections".into(),
                "-Wl,--orphan-handling=error".into(),
                format!("-Wl,-T,{}", c.ldscript),
                "-o".into(),
                c.elf.clone(),
            ],
            &[&c.obj, &c.ldscript],
            &[&c.elf],
            &format!("{core}: link the core program"),
        ),
    ]
}

/// `elfs` are the ELFs in core order, the step's inputs after the physical design.
fn attach_elfs_step(elf_for_tile: BTreeMap<(u32, u32), String>, elfs: &[String]) -> Step {
    let mut inputs = vec![PathBuf::from(names::INPUT_PHYSICAL)];
    inputs.extend(elfs.iter().map(PathBuf::from));
    internal(
        Internal::AttachElfs { elf_for_tile },
        inputs,
        vec![PathBuf::from(names::INPUT_PHYSICAL_WITH_ELFS)],
        "point every core at its ELF (`elf_file`) for CDO generation".into(),
    )
}

/// The runtime sequence as NPU instructions, then as the binary the host hands over.
fn instruction_steps(req: &BuildRequest) -> [Step; 2] {
    let dev = req.device_symbol.as_str();
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
    [
        transform(
            Tool::AieOpt,
            format!("--pass-pipeline={}", pipelines::npu_lowering()),
            names::INPUT_PHYSICAL_WITH_ELFS,
            names::NPU_INSTS_MLIR,
            "lower the runtime sequence to NPU instructions",
        ),
        Step::tool(
            Tool::AieTranslate,
            insts_args,
            &[names::NPU_INSTS_MLIR],
            &[names::INSTS_BIN],
            "instruction stream the host hands to the NPU per run",
        ),
    ]
}

/// The array configuration as CDOs, packed into the PDI, packaged with the metadata as the
/// xclbin by aiec itself (what aiecc runs xclbinutil for).
fn device_image_steps(dev: &str) -> [Step; 3] {
    let with_elfs = names::INPUT_PHYSICAL_WITH_ELFS;
    let cdo = cdo_files(dev);
    let cdo_refs: Vec<&str> = cdo.iter().map(String::as_str).collect();
    let mut bootgen_inputs = vec![names::DESIGN_BIF];
    bootgen_inputs.extend(cdo_refs.iter().copied());
    [
        Step::tool(
            Tool::AieTranslate,
            vec![
                "--aie-generate-cdo".into(),
                format!("--aie-device-name={dev}"),
                with_elfs.into(),
            ],
            &[with_elfs],
            &cdo_refs,
            "array configuration (ELFs, init, core enable) as CDO",
        ),
        Step::tool(
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
        ),
        internal(
            Internal::PackageXclbin,
            vec![PathBuf::from(names::DESIGN_PDI)],
            vec![PathBuf::from(names::FINAL_XCLBIN)],
            "package the PDI and metadata as the xclbin XRT loads (ours, no xclbinutil)".into(),
        ),
    ]
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
