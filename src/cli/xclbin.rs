//! `aiec xclbin FILE`: what an xclbin holds (ours or mlir-aie's), read by our own reader.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An xclbin, e.g. build/add/final.xclbin.
    pub xclbin: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.xclbin)
        .with_context(|| format!("cannot read {}", args.xclbin.display()))?;
    let x = crate::npu::xclbin::read(&bytes)
        .with_context(|| format!("cannot read {} as an xclbin", args.xclbin.display()))?;
    print!("{}", crate::npu::xclbin::describe::describe(&x));
    Ok(())
}
