//! aiec-runtime: everything needed to turn audio into text with a Whisper model.
//! Knows nothing of MLIR; the compiler crate plugs its simulator in through [`backend::Backend`].
// Library code never unwraps: input data fails with an error, and the few invariants that
// cannot fail carry an `#[allow]` with the reason next to them.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod audio;
pub mod backend;
pub mod decode;
pub mod errors;
pub mod guard;
pub mod mel;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod quant;
pub mod transcript;
pub mod vad;
pub mod whisper;
