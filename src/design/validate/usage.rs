//! Per-tile resource use, following how mlir-aie's object-FIFO lowering spends them:
//! - every FIFO end on a tile holds `depth` buffers (a local FIFO, whose producer is its
//!   consumer, holds them once); the shim has no data memory (its side is host memory);
//! - a memtile link holds the larger of its two sides once: the other side's FIFOs alias
//!   those buffers (for a split or join with equal depths both sides are the same size);
//! - every FIFO end takes a producer/consumer lock pair (AIE-ML semaphore locks);
//! - an end that crosses tiles uses one DMA channel (MM2S on the producer, S2MM on each
//!   consumer) and one buffer descriptor per buffer (one on the shim, which streams);
//! - each core also reserves its stack and holds its kernels' constant tables.

use std::collections::BTreeMap;

use crate::design::info::{DesignInfo, MemoryItem, MemoryUse, TileKind, TileUsage};
use crate::design::visit::constant_table_bytes;
use crate::design::{Design, TileId};

pub(super) fn per_tile(design: &Design, info: &DesignInfo) -> BTreeMap<TileId, TileUsage> {
    let mut usage: BTreeMap<TileId, TileUsage> = BTreeMap::new();
    let link_tile_of = |fifo: usize| {
        design
            .links
            .iter()
            .zip(&info.links)
            .find(|(l, _)| {
                l.srcs
                    .iter()
                    .chain(&l.dsts)
                    .any(|n| info.fifo_index[n] == fifo)
            })
            .map(|(_, li)| li.tile)
    };
    for (fi, f) in design.fifos.iter().enumerate() {
        let local = f.consumers.iter().all(|c| *c == f.producer);
        let link_tile = link_tile_of(fi);
        let mut end = |tile: TileId, producer: bool| {
            let kind = info.tile_kind(tile);
            let u = usage.entry(tile).or_default();
            u.locks += 2;
            if kind != TileKind::Shim && Some(tile) != link_tile {
                u.memory.push(MemoryUse {
                    item: MemoryItem::Fifo { fifo: fi },
                    bytes: f.depth as usize * f.ty.bytes(),
                });
            }
            if !local {
                u.bds += if kind == TileKind::Shim { 1 } else { f.depth };
                if producer {
                    u.mm2s += 1;
                } else {
                    u.s2mm += 1;
                }
            }
        };
        end(f.producer, true);
        if !local {
            for &c in &f.consumers {
                end(c, false);
            }
        }
    }
    for (li, (l, link)) in design.links.iter().zip(&info.links).enumerate() {
        let side = |names: &[String]| -> (usize, Vec<usize>) {
            let fifos: Vec<usize> = names.iter().map(|n| info.fifo_index[n]).collect();
            let bytes = fifos
                .iter()
                .map(|&i| design.fifos[i].depth as usize * design.fifos[i].ty.bytes())
                .sum();
            (bytes, fifos)
        };
        let (src, dst) = (side(&l.srcs), side(&l.dsts));
        let (bytes, fifos) = if src.0 >= dst.0 { src } else { dst };
        usage.entry(link.tile).or_default().memory.push(MemoryUse {
            item: MemoryItem::Link { link: li, fifos },
            bytes,
        });
    }
    for w in &design.workers {
        let u = usage.entry(w.tile).or_default();
        u.memory.push(MemoryUse {
            item: MemoryItem::Stack,
            bytes: w.stack_bytes,
        });
        let tables = constant_table_bytes(&w.program);
        if tables > 0 {
            u.memory.push(MemoryUse {
                item: MemoryItem::ConstantTables,
                bytes: tables,
            });
        }
    }
    usage
}
