//! aiec: a compiler from Whisper kernel specs to MLIR-AIE, a host simulator for the
//! compiled designs, and the command-line front end of the Whisper runtime.
// Library code never unwraps: input data fails with an error, and the few invariants that
// cannot fail carry an `#[allow]` with the reason next to them.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod backend;
pub mod cli;
pub mod design;
pub mod device;
pub mod driver;
pub mod expr;
pub mod mlir;
pub mod npu;
pub mod ops;
pub mod perf;
pub mod plan;
pub mod sim;
pub mod simdevice;
pub mod spec;
