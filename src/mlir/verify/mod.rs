//! Our verifier: what plain MLIR cannot check about the `aie`/`aiex` ops, which it only sees
//! as unregistered operations. It runs on the [`Design`] because lowering maps it one to one
//! onto ops; every error names the op it is about, in aie-opt's spelling.
//!
//! The structural checks are [`crate::design::validate()`]'s, whose [`DesignInfo`] the
//! lowering then reads; on top of them this adds what only the hardware path needs: the
//! acquire/release discipline of core programs (`program`) and the shim BD encoding limits
//! of the runtime sequence (`shim_bd`).

mod program;
mod shim_bd;

use crate::design::validate::{tile_name, validate_on_named_device};
use crate::design::{Design, DesignInfo, SeqOp};

use super::MlirError;

/// Checks a design; `Ok` means lowering will produce a module aie-opt can place and route.
/// Returns what validation found, for [`super::lower()`].
pub fn verify(design: &Design) -> Result<DesignInfo, MlirError> {
    check_shim_patterns(design)?;
    let info = validate_on_named_device(design)?;
    check_programs(design, &info)?;
    Ok(info)
}

/// The checks beyond [`crate::design::validate()`] for a design it accepted with `info`.
pub fn verify_validated(design: &Design, info: &DesignInfo) -> Result<(), MlirError> {
    check_shim_patterns(design)?;
    check_programs(design, info)
}

fn check_programs(design: &Design, info: &DesignInfo) -> Result<(), MlirError> {
    for w in &design.workers {
        let op = format!("aie.core({})", tile_name(w.tile));
        program::Discipline::check(design, info, op, &w.program)?;
    }
    Ok(())
}

/// Shim BD encoding: the innermost stride is 1 and sizes, strides and offset fit the BD
/// fields. Checked first, as aie-opt does when it meets the op.
fn check_shim_patterns(design: &Design) -> Result<(), MlirError> {
    match first_bad_shim_pattern(design) {
        Some(bad) => Err(MlirError::invalid(bad.op(), bad.problem)),
        None => Ok(()),
    }
}

/// A runtime-sequence transfer whose access pattern no shim buffer descriptor can encode.
#[derive(Debug, Clone, PartialEq)]
pub struct BadShimPattern {
    /// Index of the `dma_memcpy_nd` in the sequence.
    pub index: usize,
    pub fifo: String,
    /// The runtime-sequence argument it moves.
    pub arg: usize,
    pub problem: String,
}

impl BadShimPattern {
    /// The op, as aie-opt names it.
    pub fn op(&self) -> String {
        format!(
            "aiex.npu.dma_memcpy_nd #{} (metadata = @{})",
            self.index, self.fifo
        )
    }
}

/// The first transfer of the sequence a shim BD cannot encode (front ends name the spec
/// field behind it; [`verify`] names the op).
pub fn first_bad_shim_pattern(design: &Design) -> Option<BadShimPattern> {
    for (index, op) in design.sequence.ops.iter().enumerate() {
        let (SeqOp::Fill { fifo, arg, pattern } | SeqOp::Drain { fifo, arg, pattern }) = op else {
            continue;
        };
        // A missing argument is `validate`'s error to report.
        let Some(host) = design.sequence.args.get(*arg) else {
            continue;
        };
        if pattern.sizes.contains(&0) {
            continue;
        }
        let problem = if pattern.strides[3] != 1 {
            Err("the innermost stride must be 1".to_string())
        } else {
            shim_bd::check_shim_bd(pattern, host.ty.elem.bytes() * 8)
        };
        if let Err(problem) = problem {
            return Some(BadShimPattern {
                index,
                fifo: fifo.clone(),
                arg: *arg,
                problem,
            });
        }
    }
    None
}
