//! `aiec build --emit plan`: a design in plain words: tiles, object FIFOs, links, worker
//! programs, the runtime sequence and the data memory each tile needs against its capacity
//! (from the design's [`DesignInfo`]).

use std::fmt::Write as _;

use crate::design::info::TileKind;
use crate::design::validate::validate_on_named_device;
use crate::design::visit::{walk, CoreVisitor, FifoUse};
use crate::design::{
    BufArg, CoreStmt, Design, DesignInfo, Kernel, Port, SeqOp, TensorAccessPattern, TileId,
};

use super::MlirError;

fn t(t: TileId) -> String {
    format!("({}, {})", t.col, t.row)
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

/// Prints a worker program, one statement a line, loop bodies indented.
struct ProgramText<'o> {
    out: &'o mut String,
    depth: usize,
}

impl ProgramText<'_> {
    fn line(&mut self, text: std::fmt::Arguments) {
        let _ = writeln!(self.out, "{}{text}", "    ".repeat(self.depth));
    }
}

impl CoreVisitor for ProgramText<'_> {
    type Error = std::convert::Infallible;

    fn visit_loop(&mut self, count: u64, body: &[CoreStmt]) -> Result<(), Self::Error> {
        self.line(format_args!("repeat {count} times:"));
        self.depth += 1;
        walk(self, body)?;
        self.depth -= 1;
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), Self::Error> {
        let FifoUse { fifo, port, count } = u;
        let port = port_word(port);
        self.line(format_args!(
            "{binding} = acquire {count} from @{fifo} ({port})"
        ));
        Ok(())
    }

    fn visit_release(&mut self, u: FifoUse) -> Result<(), Self::Error> {
        let FifoUse { fifo, port, count } = u;
        let port = port_word(port);
        self.line(format_args!("release {count} to @{fifo} ({port})"));
        Ok(())
    }

    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), Self::Error> {
        let args: Vec<String> = args
            .iter()
            .map(|a| format!("{}[{}]", a.binding, a.index))
            .collect();
        self.line(format_args!("kernel {}({})", kernel.name, args.join(", ")));
        Ok(())
    }
}

fn port_word(p: Port) -> &'static str {
    match p {
        Port::Produce => "produce",
        Port::Consume => "consume",
    }
}

/// The description of a design on its own device. Deterministic: it follows the design's
/// own order.
pub fn describe(design: &Design) -> Result<String, MlirError> {
    let info = validate_on_named_device(design)?;
    Ok(describe_validated(design, &info))
}

/// [`describe`] for a design validated as `info`.
pub fn describe_validated(design: &Design, info: &DesignInfo) -> String {
    let device = &info.device;
    let mut out = String::new();
    let _ = writeln!(out, "design {} on {device}", design.name);
    let _ = writeln!(out, "tiles:");
    for &tile in &design.tiles {
        let _ = writeln!(out, "  {} {}", t(tile), info.tile_kind(tile).word());
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
        let Ok(()) = walk(
            &mut ProgramText {
                out: &mut out,
                depth: 2,
            },
            &w.program,
        );
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
    for (&tile, usage) in &info.tiles {
        let kind = info.tile_kind(tile);
        if kind == TileKind::Shim {
            // The shim has no data memory: its side of a FIFO is host memory.
            continue;
        }
        let (total, cap) = (usage.memory_bytes(), info.capacity(tile).memory_bytes);
        let tables = match usage.table_bytes() {
            0 => String::new(),
            n => format!(", constant tables {n} B"),
        };
        let _ = writeln!(
            out,
            "  {} {}: {total} B of {cap} B ({:.1}%): FIFO buffers {} B, stack {} B{tables}",
            t(tile),
            kind.word(),
            100.0 * total as f64 / cap.max(1) as f64,
            usage.fifo_bytes(),
            usage.stack_bytes(),
        );
    }
    out
}
