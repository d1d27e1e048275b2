//! The runtime sequence → instruction stream, as aie-opt's `aie-dma-to-npu` lowers
//! `aiex.npu.dma_memcpy_nd` and `aiex.npu.dma_wait` and aie-translate serialises the result:
//!
//! - a transfer writes its shim BD (BLOCKWRITE of 8 words), patches the BD's base address
//!   with the host buffer (DDR_PATCH), sets the channel's task-complete-token controller
//!   (MASKWRITE, only when it issues a token) and pushes the BD on the channel's task queue
//!   (WRITE32);
//! - a wait is a SYNC on the channel.
//!
//! BD ids come from the design's own schedule ([`DesignInfo::sequence`]); shim channels are
//! numbered as the object-FIFO lowering numbers them (below).

use crate::design::info::{DesignInfo, SeqStep};
use crate::design::{Design, Port, SeqOp, TensorAccessPattern};
use crate::device::Arch;

use super::shim::{self, BdFields, Direction, QueuePush};
use super::txn::{Header, Op, Stream};

/// What the hardware moves per address step: 32-bit words.
const ADDRESS_GRANULE_BITS: usize = 32;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum LowerError {
    #[error("runtime sequence op #{op}: {message}")]
    Op { op: usize, message: String },
}

/// The instruction stream of `design`'s runtime sequence on its validated device.
pub fn instructions(design: &Design, info: &DesignInfo) -> Result<Stream, LowerError> {
    let dev = &info.device;
    let header = Header {
        major: 0,
        minor: 1,
        dev_gen: match dev.arch {
            Arch::Aie2 => 3,
            Arch::Aie2p => 4,
        },
        rows: dev.rows as u8,
        cols: dev.columns as u8,
        memtile_rows: 1,
    };
    let channels = shim_channels(design, info);
    let mut ops = Vec::new();
    for (i, (op, step)) in design.sequence.ops.iter().zip(&info.sequence).enumerate() {
        let err = |message: String| LowerError::Op { op: i, message };
        match (op, *step) {
            (
                SeqOp::Fill { arg, pattern, .. } | SeqOp::Drain { arg, pattern, .. },
                SeqStep::Transfer {
                    dma,
                    bd,
                    issue_token,
                },
            ) => {
                let shim_dma = &info.shim_dmas[dma];
                let dir = direction(shim_dma.end.port);
                let (col, row) = (shim_dma.tile.col, shim_dma.tile.row);
                let channel = channels[dma];
                let host = design
                    .sequence
                    .args
                    .get(*arg)
                    .ok_or_else(|| err(format!("host buffer %arg{arg} does not exist")))?;
                let elem_bits = 8 * host.ty.elem.bytes();
                let (fields, repeat) = bd_fields(pattern, elem_bits, dev.arch).map_err(err)?;
                let offset = offset_bytes(pattern, elem_bits / 8);
                // aie-dma-to-npu makes every S2MM transfer issue a token, awaited or not.
                let issue_token = issue_token || dir == Direction::S2mm;
                ops.push(Op::BlockWrite {
                    address: shim::bd_address(col, row, bd),
                    data: fields.encode().to_vec(),
                });
                ops.push(Op::DdrPatch {
                    address: shim::bd_base_address(col, row, bd),
                    arg: *arg as u32,
                    offset: u32::try_from(offset)
                        .map_err(|_| err(format!("byte offset {offset} exceeds 32 bits")))?,
                });
                if issue_token {
                    ops.push(Op::MaskWrite {
                        address: shim::ctrl_address(col, row, dir, channel),
                        value: shim::SHIM_CONTROLLER_ID << 8,
                        mask: shim::CTRL_CONTROLLER_ID_MASK,
                    });
                }
                ops.push(Op::Write32 {
                    address: shim::queue_address(col, row, dir, channel),
                    value: QueuePush {
                        bd,
                        repeat,
                        issue_token,
                    }
                    .encode(),
                });
            }
            (SeqOp::Wait { .. }, SeqStep::Wait { dma }) => {
                let shim_dma = &info.shim_dmas[dma];
                ops.push(Op::Sync {
                    column: shim_dma.tile.col,
                    row: shim_dma.tile.row,
                    direction: direction(shim_dma.end.port) as u32,
                    channel: channels[dma],
                    columns: 1,
                    rows: 1,
                });
            }
            _ => return Err(err("the DMA schedule does not match the sequence".into())),
        }
    }
    Ok(Stream { header, ops })
}

pub(crate) fn direction(port: Port) -> Direction {
    match port {
        // The shim produces a filled FIFO: it reads host memory onto the stream.
        Port::Produce => Direction::Mm2s,
        Port::Consume => Direction::S2mm,
    }
}

/// The channel of each shim DMA ([`DesignInfo::shim_dmas`] order). The object-FIFO lowering
/// gives a tile's channels of one direction to its FIFO ends in FIFO declaration order: a
/// shim's MM2S channels to the FIFOs it produces, its S2MM channels to those it consumes.
pub fn shim_channels(design: &Design, info: &DesignInfo) -> Vec<u32> {
    info.shim_dmas
        .iter()
        .map(|d| {
            design.fifos[..d.end.fifo]
                .iter()
                .filter(|f| match d.end.port {
                    Port::Produce => f.producer == d.tile,
                    Port::Consume => f.consumers.contains(&d.tile),
                })
                .count() as u32
        })
        .collect()
}

/// Byte offset of the pattern's first element: `dma_memcpy_nd`'s static offsets are
/// `[0, 0, 0, offset]`, scaled by the innermost stride.
fn offset_bytes(p: &TensorAccessPattern, elem_bytes: usize) -> usize {
    p.offset * p.strides[3] * elem_bytes
}

/// The BD of one transfer and its queue repeat count (`sizes[0] - 1`), in the hardware units
/// aie-dma-to-npu computes: element sizes and strides scaled to 32-bit words, strides minus
/// one; a plain contiguous run (`[*, 1, 1, n][*, 0, 0, 1]`) only sets the length.
fn bd_fields(
    p: &TensorAccessPattern,
    elem_bits: usize,
    arch: Arch,
) -> Result<(BdFields, u32), String> {
    // Innermost first, as the hardware numbers dimensions.
    let s: [usize; 4] = [p.sizes[3], p.sizes[2], p.sizes[1], p.sizes[0]];
    let t: [usize; 4] = [p.strides[3], p.strides[2], p.strides[1], p.strides[0]];
    let words = |elems: usize| -> Result<usize, String> {
        let bits = elems * elem_bits;
        if bits.is_multiple_of(ADDRESS_GRANULE_BITS) {
            Ok(bits / ADDRESS_GRANULE_BITS)
        } else {
            Err(format!(
                "{elems} elements of {elem_bits} bits are not whole 32-bit words"
            ))
        }
    };
    let d0_size = words(s[0])?;
    // A stride of 1 element below word size is the contiguous run the word stride 1 reads.
    let d0_stride = if elem_bits < ADDRESS_GRANULE_BITS {
        if s[0] > 1 && t[0] != 1 {
            return Err(format!(
                "innermost stride {} on {elem_bits}-bit elements (the shim reads whole words)",
                t[0]
            ));
        }
        0
    } else {
        words(t[0])?.saturating_sub(1)
    };
    let stride = |i: usize| -> Result<usize, String> {
        if s[i] > 1 {
            Ok(words(t[i])?.saturating_sub(1))
        } else {
            Ok(0)
        }
    };
    let linear = s[1] == 1 && s[2] == 1 && t[0] == 1 && t[1] == 0 && t[2] == 0;
    let mut f = BdFields {
        buffer_length: (d0_size * s[1] * s[2]) as u32,
        burst_length: match arch {
            // `getShimBurstLengthEncoding` of the default burst: 256 bytes on AIE-ML,
            // 512 on AIE-ML v2.
            Arch::Aie2 => 2,
            Arch::Aie2p => 3,
        },
        ax_cache: 2,
        valid: true,
        ..Default::default()
    };
    if !linear {
        f.d0_size = d0_size as u32;
        f.d0_stride = d0_stride as u32;
        f.d1_size = s[1] as u32;
        f.d1_stride = stride(1)? as u32;
        f.d2_stride = stride(2)? as u32;
    }
    // The queue's repeat count is 8 bits and the BD's iteration size 6: a longer outer
    // dimension cannot be one task (the encoder would silently wrap it).
    if s[3] > 256 || (s[3] > 64 && t[3] > 0) {
        return Err(format!(
            "outermost size {} (stride {}) does not fit one shim task: at most 64 strided \
             iterations (the BD's 6-bit iteration size) or 256 repeats (the queue's 8 bits)",
            s[3], t[3]
        ));
    }
    if s[3] > 1 && t[3] > 0 {
        f.iteration_size = (s[3] - 1) as u32;
        f.iteration_stride = (words(t[3])? - 1) as u32;
    }
    check_widths(&f)?;
    let repeat = (s[3] - 1) as u32;
    Ok((f, repeat))
}

/// Every pattern field must fit its BD register field: [`BdFields::encode`] masks them, so a
/// value that does not fit would silently become another access pattern.
fn check_widths(f: &BdFields) -> Result<(), String> {
    let fields = [
        ("dimension 0 size", f.d0_size, 10),
        ("dimension 0 stride", f.d0_stride, 20),
        ("dimension 1 size", f.d1_size, 10),
        ("dimension 1 stride", f.d1_stride, 20),
        ("dimension 2 stride", f.d2_stride, 20),
        ("iteration stride", f.iteration_stride, 20),
    ];
    for (what, value, bits) in fields {
        if value >= 1 << bits {
            return Err(format!(
                "{what} {} words does not fit the BD's {bits}-bit field",
                u64::from(value) + u64::from(what.contains("stride"))
            ));
        }
    }
    Ok(())
}
