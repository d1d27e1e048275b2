//! From a [`Design`](crate::design::Design) to MLIR-AIE.
//!
//! - [`lower`] builds a melior [`Module`](melior::ir::Module): `module { aie.device(..) { tiles;
//!   object FIFOs; links; cores; runtime_sequence } }`. The AIE/AIEX ops are not registered in
//!   our MLIR, so they are built as generic operations with exactly the attributes, operands
//!   and result types their upstream ODS definitions declare; kernel bodies are upstream
//!   dialects (scf/arith/memref/vector/math) emitted by the design's kernels.
//! - [`verify`] checks what plain MLIR cannot know about unregistered ops (tile kinds, FIFO
//!   endpoints, link offsets, acquire/release balance, DMA patterns and waits).
//! - [`print::emit`] prints the module in aie-opt's own custom syntax; [`print::emit_generic`]
//!   is MLIR's generic form, which any MLIR (ours included) parses back.
//!
//! The simulator consumes the same module: use [`context`] to get a context with the right
//! dialects and [`lower`] to build it.

pub mod aie_ops;
pub mod describe;
pub mod lower;
mod lower_core;
pub mod print;
pub mod verify;

use melior::{
    dialect::DialectRegistry,
    ir::{
        r#type::{IntegerType, MemRefType},
        Type,
    },
    utility::{register_all_dialects, register_all_llvm_translations, register_all_passes},
    Context,
};

use crate::design::{BufferType, ElemType};

pub use lower::lower;
pub use print::{emit, emit_generic};
pub use verify::{verify, verify_validated};

/// Everything that can go wrong between a Design and its MLIR text.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum MlirError {
    /// Our own verifier found a structural problem; `op` names the offending operation.
    #[error("{op}: {message}")]
    Invalid { op: String, message: String },
    /// A kernel emitter failed.
    #[error(transparent)]
    Kernel(#[from] crate::design::DesignError),
    /// melior refused to build something (a bad type or attribute spelling).
    #[error("building `{what}`: {message}")]
    Build { what: String, message: String },
    /// MLIR's own verifier rejected the module (e.g. a kernel body with a type error).
    #[error("MLIR verifier rejected design `{design}`: {diagnostics}")]
    MlirVerify { design: String, diagnostics: String },
    /// The printer met an op it has no custom syntax for.
    #[error("cannot print `{op}` in aie-opt syntax: {message}")]
    Print { op: String, message: String },
}

impl From<crate::design::ValidateError> for MlirError {
    fn from(e: crate::design::ValidateError) -> Self {
        match e {
            crate::design::ValidateError::Invalid { op, message }
            | crate::design::ValidateError::OutOfBounds { op, message, .. } => {
                MlirError::Invalid { op, message }
            }
        }
    }
}

impl MlirError {
    pub(crate) fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        MlirError::Invalid {
            op: op.into(),
            message: message.into(),
        }
    }
}

/// A context that can hold a lowered design: all upstream dialects loaded (kernel bodies),
/// unregistered dialects allowed (the `aie`/`aiex` ops), all passes registered (so callers
/// can parse pass pipelines such as the simulator's LLVM lowering).
pub fn context() -> Context {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    context.set_allow_unregistered_dialects(true);
    register_all_passes();
    context
}

/// [`context`] that can also translate to LLVM IR, for the host JIT (the simulator, kernel
/// tests).
pub fn jit_context() -> Context {
    let context = context();
    register_all_llvm_translations(&context);
    context
}

/// The MLIR element type for an [`ElemType`].
pub fn elem_type(context: &Context, elem: ElemType) -> Type<'_> {
    match elem {
        ElemType::I8 => IntegerType::new(context, 8).into(),
        ElemType::I16 => IntegerType::new(context, 16).into(),
        ElemType::I32 => IntegerType::new(context, 32).into(),
        ElemType::Bf16 => Type::bfloat16(context),
        ElemType::F32 => Type::float32(context),
    }
}

/// `memref<shape x elem>` for a buffer type.
pub fn memref_type<'c>(context: &'c Context, ty: &BufferType) -> Type<'c> {
    let dims: Vec<i64> = ty.shape.iter().map(|&d| d as i64).collect();
    MemRefType::new(elem_type(context, ty.elem), &dims, None, None).into()
}
