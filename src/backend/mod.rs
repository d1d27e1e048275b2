//! Backend tool driver: turns `design.mlir` into NPU artefacts with the real AIE tools,
//! following what mlir-aie's compiler driver (aiecc) does for an NPU design with Peano:
//!
//! 1. aie-opt: object FIFO lowering, lock/BD ids, buffer addresses → `input_with_addresses.mlir`;
//!    pathfinder routing → `input_physical.mlir`.
//! 2. Per core `(c, r)`: aie-opt lowers the core to LLVM, aie-translate emits LLVM IR and a
//!    linker script, Peano `opt`/`llc`/`clang` build `main_core_c_r.elf`.
//! 3. The runtime sequence → `npu_insts.mlir` → `insts.bin` (aie-translate).
//! 4. aie-translate → CDO files; bootgen → `design.pdi`; our packager (`npu::xclbin`, not
//!    xclbinutil) → `final.xclbin`.
//!
//! [`build_steps`] builds the steps, [`BuildSteps::render`] prints them (`aiec build --dry-run`),
//! [`BuildSteps::execute`] runs what the [`Toolchain`] allows and reports the rest.

mod artefacts;
mod build_steps;
mod execute;
mod ir_edits;
pub mod pipelines;
mod request;
mod toolchain;

use std::path::PathBuf;

pub use artefacts::{
    cdo_files, core_file, names, package_xclbin, pdi_uuid, render_artefacts, RenderedArtefact,
};
pub use build_steps::{build_steps, BuildSteps, Internal, Step, StepKind};
pub use execute::{MissingTool, Report, StepOutcome, StepStatus};
pub use ir_edits::{attach_elf_files, peano_compat, IrEditError};
pub use request::{device_info, AieTarget, BuildRequest, DeviceInfo};
pub use toolchain::{SearchPaths, Tool, ToolStatus, Toolchain};

#[derive(thiserror::Error, Debug)]
pub enum BackendError {
    #[error("build request: {message}")]
    InvalidRequest { message: String },
    #[error("template {name}")]
    Template {
        name: String,
        #[source]
        source: tera::Error,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} could not be started (`{command}`)")]
    ToolSpawn {
        tool: Tool,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed with {status}: `{command}`\n{stderr_tail}")]
    ToolFailed {
        tool: Tool,
        command: String,
        status: String,
        stderr_tail: String,
    },
    #[error("editing {}: {message}", path.display())]
    IrEdit { path: PathBuf, message: String },
    #[error(transparent)]
    Package(#[from] crate::npu::xclbin::PackageError),
    #[error("{file} was not produced: {reasons}")]
    NotProduced { file: String, reasons: String },
}
