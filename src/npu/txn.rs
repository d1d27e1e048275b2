//! The transaction format the NPU firmware reads: a 16-byte header, then operations, every
//! field a little-endian 32-bit word. Each op starts with its opcode word; the sizes below
//! are the ones aie-translate writes (and aie-rt's transaction parser expects).
//!
//! | op | opcode | words |
//! |---|---|---|
//! | WRITE32 | 0x00 | opcode, 0, address, 0, value, size (24) |
//! | BLOCKWRITE | 0x01 | opcode, 0, address, size (16 + 4·n), n data words |
//! | MASKWRITE | 0x03 | opcode, 0, address, 0, value, mask, size (28) |
//! | SYNC (TCT) | 0x80 | opcode, size (16), col<<16 · row<<8 · direction, channel<<24 · cols<<16 · rows<<8 |
//! | DDR_PATCH | 0x81 | opcode, size (48), 0 ×4, address, 0, argument, 0, byte offset, 0 |

use std::fmt;

pub const OP_WRITE32: u32 = 0x00;
pub const OP_BLOCKWRITE: u32 = 0x01;
pub const OP_MASKWRITE: u32 = 0x03;
pub const OP_SYNC: u32 = 0x80;
pub const OP_DDR_PATCH: u32 = 0x81;

const HEADER_BYTES: usize = 16;
/// The shortest op (BLOCKWRITE of no data, SYNC), in 32-bit words.
const MIN_OP_WORDS: usize = 4;

/// The stream header: format version, device generation and array shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub major: u8,
    pub minor: u8,
    /// 3 for AIE-ML (npu1), 4 for AIE-ML v2 (npu2), as aie-rt numbers device generations.
    pub dev_gen: u8,
    pub rows: u8,
    pub cols: u8,
    pub memtile_rows: u8,
}

/// One operation. Addresses are absolute array addresses (column << 25 | row << 20 | offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write32 {
        address: u32,
        value: u32,
    },
    BlockWrite {
        address: u32,
        data: Vec<u32>,
    },
    MaskWrite {
        address: u32,
        value: u32,
        mask: u32,
    },
    /// Wait for the task-complete token of a shim DMA channel (`aiex.npu.sync`).
    Sync {
        column: u32,
        row: u32,
        /// 0: S2MM (into host memory), 1: MM2S (out of host memory).
        direction: u32,
        channel: u32,
        columns: u32,
        rows: u32,
    },
    /// Add the host address of argument `arg` plus `offset` bytes to the register at
    /// `address` (the base-address word of a shim BD) when the host submits the stream.
    DdrPatch {
        address: u32,
        arg: u32,
        offset: u32,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Write32 { .. } => "WRITE32",
            Op::BlockWrite { .. } => "BLOCKWRITE",
            Op::MaskWrite { .. } => "MASKWRITE",
            Op::Sync { .. } => "SYNC",
            Op::DdrPatch { .. } => "DDR_PATCH",
        }
    }

    fn words(&self) -> Vec<u32> {
        match self {
            Op::Write32 { address, value } => vec![OP_WRITE32, 0, *address, 0, *value, 24],
            Op::BlockWrite { address, data } => {
                let mut w = vec![OP_BLOCKWRITE, 0, *address, (16 + 4 * data.len()) as u32];
                w.extend(data);
                w
            }
            Op::MaskWrite {
                address,
                value,
                mask,
            } => vec![OP_MASKWRITE, 0, *address, 0, *value, *mask, 28],
            Op::Sync {
                column,
                row,
                direction,
                channel,
                columns,
                rows,
            } => vec![
                OP_SYNC,
                16,
                (column & 0xff) << 16 | (row & 0xff) << 8 | (direction & 0xff),
                (channel & 0xff) << 24 | (columns & 0xff) << 16 | (rows & 0xff) << 8,
            ],
            Op::DdrPatch {
                address,
                arg,
                offset,
            } => vec![
                OP_DDR_PATCH,
                48,
                0,
                0,
                0,
                0,
                *address,
                0,
                *arg,
                0,
                *offset,
                0,
            ],
        }
    }
}

/// A whole instruction stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub header: Header,
    pub ops: Vec<Op>,
}

impl Stream {
    /// The bytes of `insts.bin`.
    pub fn encode(&self) -> Vec<u8> {
        let body: Vec<u32> = self.ops.iter().flat_map(Op::words).collect();
        let h = &self.header;
        let total = HEADER_BYTES + 4 * body.len();
        let words = [
            u32::from_le_bytes([h.major, h.minor, h.dev_gen, h.rows]),
            u32::from_le_bytes([h.cols, h.memtile_rows, 0, 0]),
            self.ops.len() as u32,
            total as u32,
        ];
        words
            .iter()
            .chain(&body)
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    /// Reads a stream back; every malformed part is an error naming its byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Stream, DecodeError> {
        let at = |offset: usize, op: Option<usize>, message: String| DecodeError {
            offset,
            op,
            message,
        };
        if bytes.len() < HEADER_BYTES || !bytes.len().is_multiple_of(4) {
            return Err(at(
                0,
                None,
                format!(
                    "{} bytes is not a header (16 bytes) plus whole 32-bit words",
                    bytes.len()
                ),
            ));
        }
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // In bounds: every op checks its length (`need`) before it reads its words.
        let word = |i: usize| words[i];
        let [major, minor, dev_gen, rows] = word(0).to_le_bytes();
        let [cols, memtile_rows, ..] = word(1).to_le_bytes();
        let header = Header {
            major,
            minor,
            dev_gen,
            rows,
            cols,
            memtile_rows,
        };
        let count = word(2) as usize;
        let total = word(3) as usize;
        if total != bytes.len() {
            return Err(at(
                12,
                None,
                format!("header says {total} bytes, the stream has {}", bytes.len()),
            ));
        }
        let n_words = bytes.len() / 4;
        // The header's op count is only checked against the ops found, after the loop; as a
        // capacity it is capped by what the body can hold (the shortest op is 4 words), so a
        // forged count cannot ask for a 137 GB vector (found by fuzz/insts).
        let mut ops = Vec::with_capacity(count.min((n_words - HEADER_BYTES / 4) / MIN_OP_WORDS));
        let mut i = HEADER_BYTES / 4;
        while i < n_words {
            let index = ops.len();
            let offset = 4 * i;
            let need = |n: usize| -> Result<(), DecodeError> {
                if i + n > n_words {
                    Err(at(
                        offset,
                        Some(index),
                        format!("op needs {} bytes, {} remain", 4 * n, bytes.len() - offset),
                    ))
                } else {
                    Ok(())
                }
            };
            let opcode = word(i);
            let (op, len) = match opcode {
                OP_WRITE32 => {
                    need(6)?;
                    (
                        Op::Write32 {
                            address: word(i + 2),
                            value: word(i + 4),
                        },
                        6,
                    )
                }
                OP_BLOCKWRITE => {
                    need(4)?;
                    let size = word(i + 3) as usize;
                    if size < 16 || !size.is_multiple_of(4) {
                        return Err(at(
                            offset + 12,
                            Some(index),
                            format!("BLOCKWRITE size {size} is not 16 + 4·n bytes"),
                        ));
                    }
                    need(size / 4)?;
                    let data = (i + 4..i + size / 4).map(word).collect();
                    (
                        Op::BlockWrite {
                            address: word(i + 2),
                            data,
                        },
                        size / 4,
                    )
                }
                OP_MASKWRITE => {
                    need(7)?;
                    (
                        Op::MaskWrite {
                            address: word(i + 2),
                            value: word(i + 4),
                            mask: word(i + 5),
                        },
                        7,
                    )
                }
                OP_SYNC => {
                    need(4)?;
                    let [dir, row, col, _] = word(i + 2).to_le_bytes();
                    let [_, rows, cols, chan] = word(i + 3).to_le_bytes();
                    (
                        Op::Sync {
                            column: col.into(),
                            row: row.into(),
                            direction: dir.into(),
                            channel: chan.into(),
                            columns: cols.into(),
                            rows: rows.into(),
                        },
                        4,
                    )
                }
                OP_DDR_PATCH => {
                    need(12)?;
                    (
                        Op::DdrPatch {
                            address: word(i + 6),
                            arg: word(i + 8),
                            offset: word(i + 10),
                        },
                        12,
                    )
                }
                other => {
                    return Err(at(
                        offset,
                        Some(index),
                        format!("unknown opcode {other:#x}"),
                    ))
                }
            };
            // Fixed-size ops carry their size too; a stream whose size word disagrees was not
            // written by this format's encoder.
            let size_word = match opcode {
                OP_WRITE32 => Some((5, 24)),
                OP_MASKWRITE => Some((6, 28)),
                OP_SYNC => Some((1, 16)),
                OP_DDR_PATCH => Some((1, 48)),
                _ => None,
            };
            if let Some((w, expect)) = size_word {
                if word(i + w) != expect {
                    return Err(at(
                        offset + 4 * w,
                        Some(index),
                        format!("{} size word is {}, not {expect}", op.name(), word(i + w)),
                    ));
                }
            }
            ops.push(op);
            i += len;
        }
        if ops.len() != count {
            return Err(at(
                8,
                None,
                format!("header says {count} ops, the stream has {}", ops.len()),
            ));
        }
        Ok(Stream { header, ops })
    }
}

/// A malformed stream: where (byte offset, op index) and why.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub op: Option<usize>,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(op) => write!(f, "op #{op} at byte {:#x}: {}", self.offset, self.message),
            None => write!(f, "header at byte {:#x}: {}", self.offset, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stream {
        Stream {
            header: Header {
                major: 0,
                minor: 1,
                dev_gen: 3,
                rows: 6,
                cols: 4,
                memtile_rows: 1,
            },
            ops: vec![
                Op::BlockWrite {
                    address: 0x1d000,
                    data: vec![1, 2, 3],
                },
                Op::DdrPatch {
                    address: 0x1d004,
                    arg: 2,
                    offset: 64,
                },
                Op::MaskWrite {
                    address: 0x1d210,
                    value: 0xf00,
                    mask: 0x1f00,
                },
                Op::Write32 {
                    address: 0x1d214,
                    value: 0x8000_0000,
                },
                Op::Sync {
                    column: 3,
                    row: 0,
                    direction: 1,
                    channel: 1,
                    columns: 1,
                    rows: 1,
                },
            ],
        }
    }

    #[test]
    fn decode_inverts_encode() {
        let s = sample();
        let bytes = s.encode();
        assert_eq!(bytes.len(), 16 + 4 * (7 + 12 + 7 + 6 + 4));
        assert_eq!(Stream::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn truncated_and_unknown_ops_are_located() {
        let mut bytes = sample().encode();
        bytes.truncate(bytes.len() - 4);
        let n = bytes.len() as u32;
        bytes[12..16].copy_from_slice(&n.to_le_bytes());
        let e = Stream::decode(&bytes).unwrap_err();
        assert_eq!(e.op, Some(4), "{e}");
        let mut bytes = sample().encode();
        bytes[16] = 0x7;
        let e = Stream::decode(&bytes).unwrap_err();
        assert_eq!((e.offset, e.op), (16, Some(0)), "{e}");
        assert!(e.to_string().contains("unknown opcode 0x7"), "{e}");
    }
}
