//! Command-line front end. Each subcommand lives in its own module and owns its clap `Args`.

pub mod build;
pub mod decoding;
pub mod disasm;
pub mod models;
pub mod plan;
pub mod run;
pub mod serve;
pub mod sim;
pub mod xclbin;
