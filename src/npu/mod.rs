//! The NPU instruction stream (`insts.bin`), written by us: the runtime sequence of a
//! [`Design`](crate::design::Design) lowered to the register writes the NPU firmware executes,
//! in the transaction format `aie-translate --aie-npu-to-binary` emits (mlir-aie c668d2cb).
//!
//! - [`txn`]: the binary format (header, WRITE32, BLOCKWRITE, MASKWRITE, SYNC, DDR_PATCH),
//!   encoder and a decoder that locates every error.
//! - [`shim`]: the shim NOC tile's DMA registers (buffer descriptors, channel control and
//!   task queue) as the AIE-ML register map lays them out.
//! - [`lower`]: `dma_memcpy_nd` / `dma_wait` → ops, using the design's own BD and channel
//!   allocation (what aie-opt's `aie-dma-to-npu` makes of the same sequence).
//! - [`disasm`]: the readable text of a stream (`aiec disasm insts.bin`).
//! - [`xclbin`]: `final.xclbin`, packaged by us around the PDI (no xclbinutil), and a reader
//!   for any AXLF file (`aiec xclbin FILE`).

pub mod disasm;
pub mod lower;
pub mod shim;
pub mod txn;
pub mod xclbin;

pub use lower::{instructions, LowerError};
pub use txn::{DecodeError, Header, Op, Stream};

/// Why a design has no instruction stream.
#[derive(thiserror::Error, Debug)]
pub enum NpuError {
    #[error(transparent)]
    Validate(#[from] crate::design::validate::ValidateError),
    #[error(transparent)]
    Lower(#[from] LowerError),
}

/// `insts.bin` of `design` on the device it names.
pub fn insts_bin(design: &crate::design::Design) -> Result<Vec<u8>, NpuError> {
    let info = crate::design::validate::validate_on_named_device(design)?;
    Ok(instructions(design, &info)?.encode())
}
