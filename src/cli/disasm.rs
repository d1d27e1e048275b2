//! `aiec disasm insts.bin`: the instruction stream as text, one op per line.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An NPU instruction stream, e.g. build/add/insts.bin.
    pub insts: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.insts)
        .with_context(|| format!("cannot read {}", args.insts.display()))?;
    let stream = crate::npu::Stream::decode(&bytes)
        .with_context(|| format!("{} is not an instruction stream", args.insts.display()))?;
    print!("{}", crate::npu::disasm::disasm(&stream));
    Ok(())
}
