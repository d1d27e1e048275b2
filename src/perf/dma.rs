//! The data-movement term: the bytes each DMA channel moves over the whole run, from the
//! runtime sequence (shim side) and the buffer counts of the worker programs (core side),
//! each at its channel's stream rate; plus each memtile's memory port.
//!
//! Channels are as mlir-aie's object-FIFO lowering assigns them: one per FIFO end on a tile
//! (a shim or memtile end, or a core's end of a FIFO that crosses tiles). A FIFO whose
//! producer and consumer are the same core moves no data.

use std::collections::{BTreeMap, HashMap};

use super::compute::CoreCompute;
use super::constants::*;
use crate::design::info::{tile_kind, TileKind};
use crate::design::{Design, ObjectFifo, Port, SeqOp, TileId};
use crate::device::DeviceModel;

/// One DMA channel's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub tile: TileId,
    pub kind: TileKind,
    /// `@fifo` and direction, for the report.
    pub what: String,
    pub fifo_depth: u32,
    pub bytes: f64,
    pub seconds: f64,
}

/// All channels and the memtile ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub channels: Vec<Channel>,
    /// Per memtile: (bytes written, bytes read, seconds at the memtile's port rate).
    pub memtile_ports: BTreeMap<TileId, (f64, f64, f64)>,
}

impl Traffic {
    /// The busiest channel of one tile kind, seconds.
    pub fn max_seconds(&self, kind: TileKind) -> f64 {
        self.channels
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.seconds)
            .fold(0.0, f64::max)
    }

    pub fn memtile_port_seconds(&self) -> f64 {
        self.memtile_ports.values().map(|p| p.2).fold(0.0, f64::max)
    }
}

/// Host bytes the runtime sequence moves into (`Port::Produce`, fills) or out of
/// (`Port::Consume`, drains) each FIFO.
fn shim_bytes(design: &Design) -> HashMap<(String, Port), f64> {
    let mut out: HashMap<(String, Port), f64> = HashMap::new();
    let elem = |arg: usize| {
        design
            .sequence
            .args
            .get(arg)
            .map_or(0, |a| a.ty.elem.bytes())
    };
    for op in &design.sequence.ops {
        let (fifo, port, bytes) = match op {
            SeqOp::Fill { fifo, arg, pattern } => (fifo, Port::Produce, pattern.len() * elem(*arg)),
            SeqOp::Drain { fifo, arg, pattern } => {
                (fifo, Port::Consume, pattern.len() * elem(*arg))
            }
            SeqOp::Wait { .. } => continue,
        };
        *out.entry((fifo.clone(), port)).or_default() += bytes as f64;
    }
    out
}

/// The traffic of `design` on `device`, given each worker's [`CoreCompute`] (in
/// `design.workers` order) for the buffers the cores acquire.
pub fn traffic(design: &Design, device: &DeviceModel, cores: &[CoreCompute]) -> Traffic {
    let shim = shim_bytes(design);
    let clock = device.clock_mhz as f64 * 1e6;
    let core_bytes = |tile: TileId, f: &ObjectFifo, port: Port| -> f64 {
        design
            .workers
            .iter()
            .zip(cores)
            .filter(|(w, _)| w.tile == tile)
            .map(|(_, c)| {
                c.buffers
                    .get(&(f.name.clone(), port))
                    .copied()
                    .unwrap_or(0.0)
            })
            .sum::<f64>()
            * f.ty.bytes() as f64
    };
    let kind = |t: TileId| tile_kind(device, t);
    let mut out = Traffic::default();
    for f in &design.fifos {
        if f.consumers.iter().all(|&c| c == f.producer) {
            continue; // a core's own FIFO: no DMA
        }
        // What each consumer end takes in.
        let consumed: Vec<(TileId, f64)> = f
            .consumers
            .iter()
            .map(|&c| {
                let bytes = match kind(c) {
                    TileKind::Core => core_bytes(c, f, Port::Consume),
                    TileKind::Shim => shim
                        .get(&(f.name.clone(), Port::Consume))
                        .copied()
                        .unwrap_or(0.0),
                    TileKind::Memtile => f64::NAN, // filled from the producer side below
                };
                (c, bytes)
            })
            .collect();
        // What the producer end sends: a memtile sends what its consumers take (a broadcast
        // is sent once); a core or the shim what it produced.
        let produced = match kind(f.producer) {
            TileKind::Core => core_bytes(f.producer, f, Port::Produce),
            TileKind::Shim => shim
                .get(&(f.name.clone(), Port::Produce))
                .copied()
                .unwrap_or(0.0),
            TileKind::Memtile => consumed
                .iter()
                .map(|c| c.1)
                .filter(|b| !b.is_nan())
                .fold(0.0, f64::max),
        };
        let mut push = |tile: TileId, dir: &str, bytes: f64| {
            let k = kind(tile);
            let rate = match k {
                TileKind::Shim => shim_bytes_per_cycle(device),
                _ => TILE_STREAM_BYTES_PER_CYCLE,
            };
            out.channels.push(Channel {
                tile,
                kind: k,
                what: format!("@{} {dir}", f.name),
                fifo_depth: f.depth,
                bytes,
                seconds: bytes / rate / clock,
            });
            if k == TileKind::Memtile {
                let port = out.memtile_ports.entry(tile).or_default();
                match dir {
                    "in" => port.0 += bytes,
                    _ => port.1 += bytes,
                }
                port.2 = port.0.max(port.1) / MEMTILE_BYTES_PER_SECOND;
            }
        };
        push(f.producer, "out", produced);
        for (c, bytes) in consumed {
            push(c, "in", if bytes.is_nan() { produced } else { bytes });
        }
    }
    out
}
