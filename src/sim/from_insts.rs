//! The runtime sequence read back from an instruction stream (`insts.bin`) instead of the
//! Design: what the NPU firmware would do with it, replayed on the simulator's shim DMAs.
//!
//! The stream is executed op by op against a model of each shim tile's DMA registers:
//! - BLOCKWRITE / WRITE32 into a buffer descriptor's words stage that BD;
//! - DDR_PATCH on a BD's base-address word binds it to host argument `arg` at a byte offset
//!   (the host adds the buffer's address when it submits the stream);
//! - MASKWRITE on a channel's control register sets its task-complete-token controller
//!   (no data movement; accepted);
//! - WRITE32 on a channel's task queue starts the staged BD: its fields, converted from
//!   32-bit-word units back to elements of the bound argument, become one transfer of that
//!   channel ([`Step::Transfer`]);
//! - SYNC waits for that channel's tasks ([`Step::Wait`]).
//!
//! Anything else is an error located at its op: a write to a register no shim DMA has, a
//! queue push of a BD never written or never patched, a pattern that leaves its buffer, a
//! sync on a channel no token-issuing task was pushed to (it would never complete).

use std::collections::HashMap;

use super::wiring::Step;
use super::SimError;
use crate::design::info::DesignInfo;
use crate::design::{Design, TensorAccessPattern};
use crate::npu::lower::{direction, shim_channels};
use crate::npu::shim::{self, BdFields, Direction, QueuePush, Register, BD_WORDS};
use crate::npu::txn::{Op, Stream};

/// Bits per address step of a shim BD.
const WORD_BITS: usize = 32;

/// One shim BD as the stream has written it so far.
#[derive(Debug, Clone, Default)]
struct StagedBd {
    words: [u32; BD_WORDS],
    written: bool,
    /// (argument, byte offset) from its DDR patch.
    patch: Option<(usize, usize)>,
}

/// The transfers and waits `stream` makes `design`'s shim DMAs perform, in stream order.
pub(crate) fn steps(
    stream: &Stream,
    design: &Design,
    info: &DesignInfo,
) -> Result<Vec<Step>, SimError> {
    let channels = shim_channels(design, info);
    // (column, row, direction, channel) -> index into info.shim_dmas (= wiring.dmas).
    let mut dma_of: HashMap<(u32, u32, Direction, u32), usize> = HashMap::new();
    for (d, dma) in info.shim_dmas.iter().enumerate() {
        let dir = direction(dma.end.port);
        dma_of.insert((dma.tile.col, dma.tile.row, dir, channels[d]), d);
    }
    let mut bds: HashMap<(u32, u32, u32), StagedBd> = HashMap::new();
    let mut tokens = vec![false; info.shim_dmas.len()];
    let mut steps = Vec::new();
    for (i, op) in stream.ops.iter().enumerate() {
        let err = |message: String| SimError::Insts {
            op: i,
            name: op.name(),
            message,
        };
        let channel = |col: u32, row: u32, dir: Direction, ch: u32| {
            dma_of.get(&(col, row, dir, ch)).copied().ok_or_else(|| {
                err(format!(
                    "tile({col}, {row}) {} channel {ch} carries no object FIFO of this design",
                    dir.name()
                ))
            })
        };
        match op {
            Op::BlockWrite { address, data } => {
                let (col, row, offset) = shim::split_address(*address);
                for (w, value) in data.iter().enumerate() {
                    let at = offset + 4 * w as u32;
                    write_bd_word(&mut bds, col, row, at, *value)
                        .map_err(|m| err(format!("word {w} of the block: {m}")))?;
                }
            }
            Op::Write32 { address, value } => {
                let (col, row, offset) = shim::split_address(*address);
                match shim::register(offset) {
                    Some(Register::Queue { dir, channel: ch }) => {
                        let dma = channel(col, row, dir, ch)?;
                        let push = QueuePush::decode(*value);
                        let bd = bds.get(&(col, row, push.bd)).cloned().unwrap_or_default();
                        let (arg, pattern) = transfer(design, &bd, push).map_err(|m| {
                            err(format!(
                                "task of BD {} on tile({col}, {row}) {} channel {ch}: {m}",
                                push.bd,
                                dir.name()
                            ))
                        })?;
                        tokens[dma] |= push.issue_token;
                        steps.push(Step::Transfer { dma, arg, pattern });
                    }
                    _ => write_bd_word(&mut bds, col, row, offset, *value).map_err(err)?,
                }
            }
            Op::MaskWrite { address, .. } => {
                let (_, _, offset) = shim::split_address(*address);
                if !matches!(shim::register(offset), Some(Register::Ctrl { .. })) {
                    return Err(err(format!(
                        "offset {offset:#x} is not a shim DMA channel's control register"
                    )));
                }
            }
            Op::DdrPatch {
                address,
                arg,
                offset,
            } => {
                let (col, row, at) = shim::split_address(*address);
                let Some(Register::Bd { bd, word: 1 }) = shim::register(at) else {
                    return Err(err(format!(
                        "offset {at:#x} is not a shim BD's base-address word"
                    )));
                };
                let arg = *arg as usize;
                if arg >= design.sequence.args.len() {
                    return Err(err(format!(
                        "argument {arg} does not exist (the design has {})",
                        design.sequence.args.len()
                    )));
                }
                bds.entry((col, row, bd)).or_default().patch = Some((arg, *offset as usize));
            }
            Op::Sync {
                column,
                row,
                direction,
                channel: ch,
                ..
            } => {
                let dir = Direction::from_code(*direction)
                    .ok_or_else(|| err(format!("direction {direction} is neither 0 nor 1")))?;
                let dma = channel(*column, *row, dir, *ch)?;
                if !tokens[dma] {
                    return Err(err(format!(
                        "waits on tile({column}, {row}) {} channel {ch}, to which no task that \
                         issues a token was pushed: it would never complete",
                        dir.name()
                    )));
                }
                steps.push(Step::Wait { dma });
            }
        }
    }
    Ok(steps)
}

/// Stores one word into a shim BD register; any other offset is an error.
fn write_bd_word(
    bds: &mut HashMap<(u32, u32, u32), StagedBd>,
    col: u32,
    row: u32,
    offset: u32,
    value: u32,
) -> Result<(), String> {
    match shim::register(offset) {
        Some(Register::Bd { bd, word }) => {
            let staged = bds.entry((col, row, bd)).or_default();
            staged.words[word as usize] = value;
            staged.written = true;
            Ok(())
        }
        _ => Err(format!(
            "tile({col}, {row}) offset {offset:#x} is not a shim buffer descriptor word"
        )),
    }
}

/// The host argument and access pattern (in its elements) a pushed BD moves.
fn transfer(
    design: &Design,
    bd: &StagedBd,
    push: QueuePush,
) -> Result<(usize, TensorAccessPattern), String> {
    if !bd.written {
        return Err("the BD was never written".into());
    }
    let (arg, offset_bytes) = bd
        .patch
        .ok_or("the BD has no host buffer (no DDR_PATCH of its base address)")?;
    let f = BdFields::decode(&bd.words);
    if !f.valid {
        return Err("the BD is not marked valid".into());
    }
    if f.use_next_bd {
        return Err("BD chaining (use_next_bd) is not modelled".into());
    }
    let host = &design.sequence.args[arg];
    let elem_bits = 8 * host.ty.elem.bytes();
    let elems = |words: usize| words * WORD_BITS / elem_bits;
    if !offset_bytes.is_multiple_of(host.ty.elem.bytes()) {
        return Err(format!(
            "byte offset {offset_bytes} is not a whole {}-byte element",
            host.ty.elem.bytes()
        ));
    }
    let length = f.buffer_length as usize;
    let repeats = push.repeat as usize + 1;
    let (outer_size, outer_stride) = match f.iteration_size {
        0 => (repeats, 0),
        n if n as usize + 1 == repeats => (repeats, elems(f.iteration_stride as usize + 1)),
        n => {
            return Err(format!(
                "iteration size {} but the queue repeats the task {repeats} times",
                n + 1
            ))
        }
    };
    let mut p = TensorAccessPattern {
        offset: offset_bytes / host.ty.elem.bytes(),
        sizes: [outer_size, 1, 1, elems(length)],
        strides: [outer_stride, 0, 0, 1],
    };
    if f.d0_size > 0 {
        let (d0, d1) = (f.d0_size as usize, f.d1_size.max(1) as usize);
        if !length.is_multiple_of(d0 * d1) {
            return Err(format!(
                "buffer length {length} words is not a whole number of {d0} x {d1} blocks"
            ));
        }
        let stride = |s: u32| elems(s as usize + 1);
        // Below word size the innermost dimension is the contiguous run the word stride reads.
        let d0_stride = if elem_bits < WORD_BITS {
            1
        } else {
            stride(f.d0_stride)
        };
        p.sizes = [outer_size, length / (d0 * d1), d1, elems(d0)];
        p.strides = [
            outer_stride,
            stride(f.d2_stride),
            stride(f.d1_stride),
            d0_stride,
        ];
    }
    let last = crate::design::validate::last_index(&p);
    if last >= host.ty.numel() {
        return Err(format!(
            "it touches element {last} of %arg{arg} `{}`, which has {} elements",
            host.name,
            host.ty.numel()
        ));
    }
    Ok((arg, p))
}
