//! The readable form of an instruction stream: one line per op with its address decoded
//! (tile, register), then what the written value means where the register is known (BD
//! fields, queue pushes, the token controller, syncs, DDR patches).

use std::fmt::Write as _;

use super::shim::{self, BdFields, Direction, QueuePush, Register};
use super::txn::{Op, Stream};

pub fn disasm(stream: &Stream) -> String {
    let h = &stream.header;
    let mut out = String::new();
    let gen = match h.dev_gen {
        3 => " (AIE-ML, npu1)",
        4 => " (AIE-ML v2, npu2)",
        _ => "",
    };
    let _ = writeln!(
        out,
        "transaction v{}.{}, device generation {}{gen}, {} rows x {} columns, {} memtile row(s), {} ops",
        h.major,
        h.minor,
        h.dev_gen,
        h.rows,
        h.cols,
        h.memtile_rows,
        stream.ops.len()
    );
    for (i, op) in stream.ops.iter().enumerate() {
        let _ = write!(out, "{i:4} {:<10} ", op.name());
        match op {
            Op::Write32 { address, value } => {
                let _ = write!(out, "{address:#010x} = {value:#010x}  {}", where_(*address));
                if let Some(Register::Queue { .. }) = reg(*address) {
                    let p = QueuePush::decode(*value);
                    let _ = write!(
                        out,
                        ": push BD {}, repeat {}{}",
                        p.bd,
                        p.repeat,
                        if p.issue_token { ", issue token" } else { "" }
                    );
                }
            }
            Op::MaskWrite {
                address,
                value,
                mask,
            } => {
                let _ = write!(
                    out,
                    "{address:#010x} = {value:#010x} mask {mask:#010x}  {}",
                    where_(*address)
                );
                if let (Some(Register::Ctrl { .. }), shim::CTRL_CONTROLLER_ID_MASK) =
                    (reg(*address), *mask)
                {
                    let _ = write!(out, ": token controller id {}", value >> 8 & 0x1f);
                }
            }
            Op::BlockWrite { address, data } => {
                let _ = write!(
                    out,
                    "{address:#010x} <- {} words  {}",
                    data.len(),
                    where_(*address)
                );
                if let (Some(Register::Bd { word: 0, .. }), Ok(words)) = (
                    reg(*address),
                    <[u32; shim::BD_WORDS]>::try_from(data.as_slice()),
                ) {
                    let _ = write!(out, "\n{:16}{}", "", bd_text(&BdFields::decode(&words)));
                } else {
                    let hex: Vec<String> = data.iter().map(|w| format!("{w:#010x}")).collect();
                    let _ = write!(out, "\n{:16}[{}]", "", hex.join(", "));
                }
            }
            Op::DdrPatch {
                address,
                arg,
                offset,
            } => {
                let _ = write!(
                    out,
                    "{address:#010x} += &arg{arg} + {offset} bytes  {}",
                    where_(*address)
                );
            }
            Op::Sync {
                column,
                row,
                direction,
                channel,
                columns,
                rows,
            } => {
                let dir = Direction::from_code(*direction)
                    .map(Direction::name)
                    .unwrap_or("direction?");
                let _ = write!(
                    out,
                    "wait for the token of tile ({column}, {row}) {dir} {channel} ({columns} column(s) x {rows} row(s))"
                );
            }
        }
        out.push('\n');
    }
    out
}

fn reg(address: u32) -> Option<Register> {
    let (_, row, offset) = shim::split_address(address);
    if row == 0 {
        shim::register(offset)
    } else {
        None
    }
}

fn where_(address: u32) -> String {
    let (col, row, offset) = shim::split_address(address);
    let what = match reg(address) {
        Some(Register::Bd { bd, word }) => format!("BD {bd} word {word}"),
        Some(Register::Ctrl { dir, channel }) => format!("{} {channel} control", dir.name()),
        Some(Register::Queue { dir, channel }) => format!("{} {channel} task queue", dir.name()),
        None => format!("offset {offset:#07x}"),
    };
    format!("[tile ({col}, {row}) {what}]")
}

fn bd_text(f: &BdFields) -> String {
    let mut s = format!("length {} words", f.buffer_length);
    if f.base_address != 0 {
        let _ = write!(s, ", base {:#x}", f.base_address);
    }
    if f.d0_size == 0 && f.d1_size == 0 {
        s.push_str(", linear");
    } else {
        let _ = write!(
            s,
            ", d0 {} x stride {}, d1 {} x stride {}, d2 stride {}",
            f.d0_size,
            f.d0_stride + 1,
            f.d1_size,
            f.d1_stride + 1,
            f.d2_stride + 1
        );
    }
    if f.iteration_size > 0 || f.iteration_stride > 0 {
        let _ = write!(
            s,
            ", iterate {} x stride {}",
            f.iteration_size + 1,
            f.iteration_stride + 1
        );
    }
    if f.enable_packet {
        let _ = write!(s, ", packet id {} type {}", f.packet_id, f.packet_type);
    }
    let _ = write!(
        s,
        ", burst code {}, AXI cache {}",
        f.burst_length, f.ax_cache
    );
    if f.use_next_bd {
        let _ = write!(s, ", next BD {}", f.next_bd);
    }
    if f.lock_acq_enable {
        let _ = write!(
            s,
            ", acquire lock {} >= {}",
            f.lock_acq_id, f.lock_acq_value
        );
    }
    if f.lock_rel_value != 0 {
        let _ = write!(
            s,
            ", release lock {} += {}",
            f.lock_rel_id, f.lock_rel_value
        );
    }
    s.push_str(if f.valid { ", valid" } else { ", NOT valid" });
    s
}
