//! The simulator's wiring of a design: which actor holds which FIFO cursor, which memtile
//! channel copies what, and which shim channel each runtime-sequence step uses. It is read off
//! the design's [`DesignInfo`] (validated once, before any thread starts, so bad designs fail
//! with one named error instead of a hang), plus the checks only the simulator needs: buffer
//! ranks it can address and the data memory of every tile against the device model.

use std::collections::HashMap;

use super::fifo::Side;
use super::SimError;
use crate::design::info::{FifoEnd, SeqStep, TileKind};
use crate::design::{
    BufferType, Design, DesignInfo, Port, SeqOp, TensorAccessPattern, TileId, ValidateError,
};

/// One FIFO end as an actor holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRef {
    pub fifo: usize,
    pub side: Side,
    pub cursor: usize,
}

impl From<FifoEnd> for PortRef {
    fn from(e: FifoEnd) -> Self {
        PortRef {
            fifo: e.fifo,
            side: match e.port {
                Port::Produce => Side::Produce,
                Port::Consume => Side::Consume,
            },
            cursor: e.cursor,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FifoWiring {
    pub name: String,
    pub ty: BufferType,
    pub depth: u32,
    pub producer_cursors: usize,
    pub consumer_cursors: usize,
}

/// A worker's FIFO ends, numbered in order of first use: the JIT-compiled core refers to them
/// by this local number so that identical programs on different tiles share one compiled body.
#[derive(Debug, Clone)]
pub(crate) struct WorkerWiring {
    pub tile: TileId,
    pub ports: Vec<(PortRef, BufferType)>,
    pub local: HashMap<(String, Port), usize>,
}

/// One memtile DMA channel of a link: copies `len` elements of every source buffer, starting at
/// `src_offset`, into every destination buffer at `dst_offset`.
#[derive(Debug, Clone)]
pub(crate) struct LinkMover {
    pub name: String,
    pub src: PortRef,
    pub dst: PortRef,
    pub src_offset: usize,
    pub dst_offset: usize,
    pub len: usize,
    pub elem_bytes: usize,
}

/// A shim DMA channel: the host side of one FIFO.
#[derive(Debug, Clone)]
pub(crate) struct ShimChannel {
    pub name: String,
    pub port: PortRef,
}

/// A runtime-sequence step with names resolved.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Transfer {
        dma: usize,
        arg: usize,
        pattern: TensorAccessPattern,
    },
    Wait {
        dma: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Wiring {
    pub fifos: Vec<FifoWiring>,
    pub workers: Vec<WorkerWiring>,
    pub movers: Vec<LinkMover>,
    pub dmas: Vec<ShimChannel>,
    pub steps: Vec<Step>,
}

fn invalid(design: &Design, message: impl Into<String>) -> SimError {
    SimError::Invalid {
        design: design.name.clone(),
        message: message.into(),
    }
}

fn tile_name(t: TileId) -> String {
    format!("tile({}, {})", t.col, t.row)
}

/// A validation error in the simulator's terms; a pattern out of bounds keeps its indices.
pub(crate) fn from_validate(design: &Design, e: ValidateError) -> SimError {
    match e {
        ValidateError::OutOfBounds {
            seq_op, index, len, ..
        } => {
            let (what, arg) = match &design.sequence.ops[seq_op] {
                SeqOp::Fill { fifo, arg, .. } => (
                    format!("runtime sequence op #{seq_op} (dma_memcpy_nd %arg{arg} -> @{fifo})"),
                    *arg,
                ),
                SeqOp::Drain { fifo, arg, .. } => (
                    format!("runtime sequence op #{seq_op} (dma_memcpy_nd @{fifo} -> %arg{arg})"),
                    *arg,
                ),
                SeqOp::Wait { .. } => (format!("runtime sequence op #{seq_op}"), 0),
            };
            SimError::OutOfBounds {
                what,
                buffer: format!("%arg{arg} `{}`", design.sequence.args[arg].name),
                index,
                len,
            }
        }
        e @ ValidateError::Invalid { .. } => invalid(design, e.to_string()),
    }
}

impl Wiring {
    pub fn new(design: &Design, info: &DesignInfo) -> Result<Wiring, SimError> {
        check_ranks(design)?;
        check_memory(design, info)?;
        let fifos = design
            .fifos
            .iter()
            .zip(&info.fifos)
            .map(|(f, ends)| FifoWiring {
                name: f.name.clone(),
                ty: f.ty.clone(),
                depth: f.depth,
                producer_cursors: ends.producer_cursors,
                consumer_cursors: ends.consumer_cursors(),
            })
            .collect();
        let dmas = info
            .shim_dmas
            .iter()
            .map(|d| {
                let name = &design.fifos[d.end.fifo].name;
                ShimChannel {
                    name: match d.end.port {
                        Port::Produce => format!("shim DMA MM2S -> @{name}"),
                        Port::Consume => format!("shim DMA S2MM <- @{name}"),
                    },
                    port: d.end.into(),
                }
            })
            .collect();
        Ok(Wiring {
            fifos,
            workers: workers(design, info),
            movers: link_movers(design, info),
            dmas,
            steps: sequence_steps(design, info),
        })
    }
}

/// The buffer ranks the simulator addresses: 1 to 4.
fn check_ranks(design: &Design) -> Result<(), SimError> {
    for f in &design.fifos {
        if f.ty.shape.len() > 4 {
            return Err(invalid(
                design,
                format!(
                    "object FIFO @{} has buffer type {}: the simulator handles ranks 1 to 4",
                    f.name,
                    f.ty.mlir()
                ),
            ));
        }
    }
    Ok(())
}

/// Every worker's FIFO ends with their buffer types, and the local number of each.
fn workers(design: &Design, info: &DesignInfo) -> Vec<WorkerWiring> {
    info.workers
        .iter()
        .map(|w| {
            let ports = w
                .ports
                .iter()
                .map(|&e| (PortRef::from(e), design.fifos[e.fifo].ty.clone()))
                .collect();
            let local = w
                .ports
                .iter()
                .enumerate()
                .map(|(i, e)| ((design.fifos[e.fifo].name.clone(), e.port), i))
                .collect();
            WorkerWiring {
                tile: w.tile,
                ports,
                local,
            }
        })
        .collect()
}

/// One mover per memtile DMA channel of every link.
fn link_movers(design: &Design, info: &DesignInfo) -> Vec<LinkMover> {
    let mut movers = Vec::new();
    for link in &info.links {
        for m in &link.moves {
            let (src, dst) = (&design.fifos[m.src.fifo], &design.fifos[m.dst.fifo]);
            movers.push(LinkMover {
                name: format!(
                    "memtile {} link @{} -> @{}",
                    tile_name(link.tile),
                    src.name,
                    dst.name
                ),
                src: m.src.into(),
                dst: m.dst.into(),
                src_offset: m.src_offset,
                dst_offset: m.dst_offset,
                len: m.len,
                elem_bytes: dst.ty.elem.bytes(),
            });
        }
    }
    movers
}

/// The runtime sequence with each transfer's shim channel resolved.
fn sequence_steps(design: &Design, info: &DesignInfo) -> Vec<Step> {
    design
        .sequence
        .ops
        .iter()
        .zip(&info.sequence)
        .map(|(op, step)| match (op, *step) {
            (
                SeqOp::Fill { arg, pattern, .. } | SeqOp::Drain { arg, pattern, .. },
                SeqStep::Transfer { dma, .. },
            ) => Step::Transfer {
                dma,
                arg: *arg,
                pattern: pattern.clone(),
            },
            (_, SeqStep::Transfer { dma, .. } | SeqStep::Wait { dma }) => Step::Wait { dma },
        })
        .collect()
}

/// Every tile's data memory (FIFO and link buffers, stack, constant tables) against the
/// device model's capacity.
fn check_memory(design: &Design, info: &DesignInfo) -> Result<(), SimError> {
    for (&tile, usage) in &info.tiles {
        if info.tile_kind(tile) == TileKind::Shim {
            continue;
        }
        let needed = usage.memory_bytes();
        let available = info.capacity(tile).memory_bytes;
        if needed > available {
            let detail = usage
                .memory
                .iter()
                .map(|m| format!("{}: {} B", info.memory_item_text(design, &m.item), m.bytes))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(SimError::MemoryBudget {
                tile: tile_name(tile),
                needed,
                available,
                detail,
            });
        }
    }
    Ok(())
}
