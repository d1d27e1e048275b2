//! `aiec build --emit plan`: a design in plain words: tiles, object FIFOs, links, worker
//! programs, the runtime sequence and the data memory each tile needs against its capacity.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::design::{CoreStmt, Design, Port, SeqOp, TensorAccessPattern, TileId};
use crate::device::DeviceModel;

use super::MlirError;

/// Data memory a tile needs, split by use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TileMemory {
    pub fifo_bytes: usize,
    pub stack_bytes: usize,
}

impl TileMemory {
    pub fn total(&self) -> usize {
        self.fifo_bytes + self.stack_bytes
    }
}

fn t(t: TileId) -> String {
    format!("({}, {})", t.col, t.row)
}

fn kind(device: &DeviceModel, tile: TileId) -> &'static str {
    if tile.row == device.shim_row {
        "shim"
    } else if tile.row == device.memtile_row {
        "memtile"
    } else {
        "core"
    }
}

/// Bytes of FIFO buffers and stack per tile. A FIFO's buffers live on its producer and on
/// each consumer (shims have no memory: their side lives in host memory). At a link tile the
/// linked FIFOs share one set of buffers, so only the undivided side is counted: the source
/// of a split or one-to-one link, the destination of a join.
pub fn memory_per_tile(design: &Design) -> BTreeMap<TileId, TileMemory> {
    let mut shared: HashSet<(&str, TileId)> = HashSet::new();
    for l in &design.links {
        let via = design
            .fifos
            .iter()
            .find(|f| l.dsts.first() == Some(&f.name))
            .map(|f| f.producer);
        let Some(via) = via else { continue };
        let counted_side_is_src = l.srcs.len() == 1;
        let skipped = if counted_side_is_src {
            &l.dsts
        } else {
            &l.srcs
        };
        for name in skipped {
            shared.insert((name.as_str(), via));
        }
    }
    let mut mem: BTreeMap<TileId, TileMemory> = BTreeMap::new();
    for f in &design.fifos {
        let bytes = f.depth as usize * f.ty.bytes();
        // A local FIFO (producer among its consumers) has one set of buffers on its tile.
        let mut tiles: Vec<TileId> = std::iter::once(f.producer)
            .chain(f.consumers.iter().copied())
            .collect();
        tiles.sort();
        tiles.dedup();
        for tile in tiles {
            if tile.row == 0 || shared.contains(&(f.name.as_str(), tile)) {
                continue;
            }
            mem.entry(tile).or_default().fifo_bytes += bytes;
        }
    }
    for w in &design.workers {
        mem.entry(w.tile).or_default().stack_bytes += w.stack_bytes;
    }
    mem
}

fn pattern(p: &TensorAccessPattern) -> String {
    format!(
        "offset {} sizes {:?} strides {:?} ({} elements)",
        p.offset,
        p.sizes,
        p.strides,
        p.len()
    )
}

fn program(out: &mut String, stmts: &[CoreStmt], depth: usize) {
    let pad = "    ".repeat(depth);
    for s in stmts {
        match s {
            CoreStmt::Loop { count, body } => {
                let _ = writeln!(out, "{pad}repeat {count} times:");
                program(out, body, depth + 1);
            }
            CoreStmt::Acquire {
                fifo,
                port,
                count,
                binding,
            } => {
                let _ = writeln!(
                    out,
                    "{pad}{binding} = acquire {count} from @{fifo} ({})",
                    port_word(*port)
                );
            }
            CoreStmt::Release { fifo, port, count } => {
                let _ = writeln!(
                    out,
                    "{pad}release {count} to @{fifo} ({})",
                    port_word(*port)
                );
            }
            CoreStmt::Kernel { kernel, args } => {
                let args: Vec<String> = args
                    .iter()
                    .map(|a| format!("{}[{}]", a.binding, a.index))
                    .collect();
                let _ = writeln!(out, "{pad}kernel {}({})", kernel.name, args.join(", "));
            }
        }
    }
}

fn port_word(p: Port) -> &'static str {
    match p {
        Port::Produce => "produce",
        Port::Consume => "consume",
    }
}

/// The plan text. Deterministic: it follows the design's own order.
pub fn describe(design: &Design) -> Result<String, MlirError> {
    let device = DeviceModel::get(&design.device)
        .map_err(|e| MlirError::invalid(format!("aie.device({})", design.device), e.to_string()))?;
    let mut out = String::new();
    let _ = writeln!(out, "design {} on {device}", design.name);
    let _ = writeln!(out, "tiles:");
    for &tile in &design.tiles {
        let _ = writeln!(out, "  {} {}", t(tile), kind(&device, tile));
    }
    let _ = writeln!(out, "object FIFOs:");
    for f in &design.fifos {
        let consumers: Vec<String> = f.consumers.iter().map(|&c| t(c)).collect();
        let _ = writeln!(
            out,
            "  @{}: {} -> {{{}}}, depth {} x {} ({} B each)",
            f.name,
            t(f.producer),
            consumers.join(", "),
            f.depth,
            f.ty.mlir(),
            f.ty.bytes()
        );
    }
    if !design.links.is_empty() {
        let _ = writeln!(out, "links:");
        for l in &design.links {
            let _ = writeln!(
                out,
                "  [{}] -> [{}] src offsets {:?} dst offsets {:?}",
                l.srcs.join(", "),
                l.dsts.join(", "),
                l.src_offsets,
                l.dst_offsets
            );
        }
    }
    let _ = writeln!(out, "workers:");
    for w in &design.workers {
        let _ = writeln!(out, "  core {} (stack {} B):", t(w.tile), w.stack_bytes);
        program(&mut out, &w.program, 2);
    }
    let _ = writeln!(out, "runtime sequence:");
    for (i, a) in design.sequence.args.iter().enumerate() {
        let _ = writeln!(
            out,
            "  %arg{i} {}: {} ({} B)",
            a.name,
            a.ty.mlir(),
            a.ty.bytes()
        );
    }
    for op in &design.sequence.ops {
        let _ = match op {
            SeqOp::Fill {
                fifo,
                arg,
                pattern: p,
            } => {
                writeln!(out, "  fill @{fifo} from %arg{arg}: {}", pattern(p))
            }
            SeqOp::Drain {
                fifo,
                arg,
                pattern: p,
            } => {
                writeln!(out, "  drain @{fifo} into %arg{arg}: {}", pattern(p))
            }
            SeqOp::Wait { fifo } => writeln!(out, "  wait for @{fifo}"),
        };
    }
    let _ = writeln!(out, "memory per tile:");
    for (tile, m) in memory_per_tile(design) {
        let cap = match kind(&device, tile) {
            "memtile" => device.memtile.memory_bytes,
            "core" => device.core.memory_bytes,
            _ => device.shim.memory_bytes,
        };
        let _ = writeln!(
            out,
            "  {} {}: {} B of {} B ({:.1}%): FIFO buffers {} B, stack {} B",
            t(tile),
            kind(&device, tile),
            m.total(),
            cap,
            100.0 * m.total() as f64 / cap.max(1) as f64,
            m.fifo_bytes,
            m.stack_bytes
        );
    }
    Ok(out)
}
