//! Resource accounting of a built design against the device, following how mlir-aie's
//! object-FIFO lowering spends them:
//! - every FIFO end on a tile holds `depth` buffers (an end shared by producer and consumer on
//!   the same tile holds them once); a memtile link holds the larger of its two sides once,
//!   since the outgoing FIFOs alias the incoming buffers;
//! - every FIFO end takes a producer/consumer lock pair (AIE-ML semaphore locks);
//! - an end that crosses tiles uses one DMA channel (MM2S on the producer, S2MM on each
//!   consumer) and one buffer descriptor per buffer;
//! - each core also reserves its stack and holds the kernels' constant tables.

use std::collections::BTreeMap;

use super::{Spec, SpecError};
use crate::design::{Design, TileId};
use crate::device::{DeviceModel, TileResources};

#[derive(Default, Debug)]
struct Usage {
    memory: usize,
    memory_parts: Vec<String>,
    locks: usize,
    bds: usize,
    s2mm: usize,
    mm2s: usize,
}

fn resources_of(dev: &DeviceModel, t: TileId) -> &TileResources {
    if t.row == dev.shim_row {
        &dev.shim
    } else if t.row == dev.memtile_row {
        &dev.memtile
    } else {
        &dev.core
    }
}

pub fn check_design_resources(
    spec: &Spec,
    design: &Design,
    dev: &DeviceModel,
) -> Result<(), SpecError> {
    let name = spec.name().to_string();
    // Placement first: a tile outside the array is the columns field's fault.
    for t in &design.tiles {
        if t.col >= dev.columns || t.row >= dev.rows {
            return Err(SpecError::Field {
                spec: name,
                field: "array.columns".into(),
                message: format!(
                    "the design places tile ({},{}) outside {} ({} columns x {} rows)",
                    t.col, t.row, dev.name, dev.columns, dev.rows
                ),
            });
        }
    }

    let mut usage: BTreeMap<TileId, Usage> = BTreeMap::new();
    // Buffers of FIFO ends that sit on a memtile link are accounted per link below.
    let linked_on = |fifo: &str| {
        design
            .links
            .iter()
            .position(|l| l.srcs.iter().chain(l.dsts.iter()).any(|f| f == fifo))
    };
    for f in &design.fifos {
        let bytes = f.depth as usize * f.ty.bytes();
        let depth = f.depth as usize;
        let same_tile = f.consumers.iter().all(|c| *c == f.producer);
        let link = linked_on(&f.name);
        let mut end = |tile: TileId, producer: bool| {
            let u = usage.entry(tile).or_default();
            u.locks += 2;
            let on_link_memtile = link.is_some() && tile.row == dev.memtile_row;
            if tile.row != dev.shim_row && !on_link_memtile {
                u.memory += bytes;
                u.memory_parts
                    .push(format!("fifo {}: {} x {} B", f.name, f.depth, f.ty.bytes()));
            }
            if !same_tile {
                u.bds += if tile.row == dev.shim_row { 1 } else { depth };
                if producer {
                    u.mm2s += 1;
                } else {
                    u.s2mm += 1;
                }
            }
        };
        end(f.producer, true);
        if !same_tile {
            for c in &f.consumers {
                end(*c, false);
            }
        }
    }
    for l in &design.links {
        let side = |names: &[String]| -> (usize, Option<TileId>, Vec<String>) {
            let mut total = 0;
            let mut tile = None;
            let mut parts = Vec::new();
            for n in names {
                if let Some(f) = design.fifos.iter().find(|f| &f.name == n) {
                    total += f.depth as usize * f.ty.bytes();
                    parts.push(format!(
                        "link fifo {}: {} x {} B",
                        f.name,
                        f.depth,
                        f.ty.bytes()
                    ));
                    // The memtile is the consumer of the sources / producer of the dests.
                    if f.producer.row == dev.memtile_row {
                        tile = Some(f.producer);
                    } else if let Some(c) = f.consumers.iter().find(|c| c.row == dev.memtile_row) {
                        tile = Some(*c);
                    }
                }
            }
            (total, tile, parts)
        };
        let (src_bytes, src_tile, src_parts) = side(&l.srcs);
        let (dst_bytes, dst_tile, dst_parts) = side(&l.dsts);
        if let Some(tile) = src_tile.or(dst_tile) {
            let u = usage.entry(tile).or_default();
            if src_bytes >= dst_bytes {
                u.memory += src_bytes;
                u.memory_parts.extend(src_parts);
            } else {
                u.memory += dst_bytes;
                u.memory_parts.extend(dst_parts);
            }
        }
    }
    // The mel tables need the filter bank only for sizing; guard against a bad n_mels, which
    // the field rules have already rejected by the time we get here.
    let tables = spec.core_table_bytes();
    for w in &design.workers {
        let u = usage.entry(w.tile).or_default();
        u.memory += w.stack_bytes;
        u.memory_parts.push(format!("stack {} B", w.stack_bytes));
        if tables > 0 {
            u.memory += tables;
            u.memory_parts.push(format!("constant tables {tables} B"));
        }
    }

    let fields = spec.buffer_fields().to_string();
    for (tile, u) in &usage {
        let r = resources_of(dev, *tile);
        let kind = if tile.row == dev.shim_row {
            "shim"
        } else if tile.row == dev.memtile_row {
            "memtile"
        } else {
            "core"
        };
        let checks: [(&str, usize, usize, String); 5] = [
            (
                "data memory (bytes)",
                u.memory,
                r.memory_bytes,
                u.memory_parts.join(", "),
            ),
            ("locks", u.locks, r.locks as usize, format!("{kind} tile")),
            (
                "buffer descriptors",
                u.bds,
                r.bds as usize,
                format!("{kind} tile"),
            ),
            (
                "S2MM DMA channels",
                u.s2mm,
                r.s2mm_channels as usize,
                format!("{kind} tile, one per incoming FIFO"),
            ),
            (
                "MM2S DMA channels",
                u.mm2s,
                r.mm2s_channels as usize,
                format!("{kind} tile, one per outgoing FIFO"),
            ),
        ];
        for (resource, need, limit, detail) in checks {
            // The shim has no data memory of its own; skip that line for it.
            if kind == "shim" && resource.starts_with("data memory") {
                continue;
            }
            if need > limit {
                return Err(SpecError::Resource {
                    spec: name,
                    resource: format!("{kind} {resource}"),
                    col: tile.col,
                    row: tile.row,
                    need,
                    limit,
                    detail,
                    fields: if resource.contains("channels") {
                        "array.cores_per_column or the number of streams".into()
                    } else {
                        fields
                    },
                });
            }
        }
    }
    Ok(())
}
