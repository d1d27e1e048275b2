//! Helpers shared by the integration tests. Each test binary includes this module with
//! `#[allow(dead_code)] mod common;`: a binary uses only some of the helpers.

pub mod design;
pub mod layout;
pub mod process;
pub mod rng;
pub mod specs;
pub mod wer;
