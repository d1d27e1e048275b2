//! A built design's resources against the device: the per-tile use is the design's
//! [`DesignInfo`] (see `crate::design::validate` for how mlir-aie's object-FIFO lowering
//! spends memory, locks, BDs and channels); this names the spec fields to change when a tile
//! is over its budget.

use super::{Spec, SpecError};
use crate::design::info::{MemoryItem, TileUsage};
use crate::design::{validate, Design, DesignError, DesignInfo};
use crate::device::DeviceModel;

/// Validates `design` on `dev` and checks its resources ([`check_resources`]); a tile
/// placed outside the array is the `array.columns` field's fault.
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

    let info = validate(design, dev).map_err(|e| SpecError::Design {
        spec: name.clone(),
        error: DesignError::Invalid {
            design: design.name.clone(),
            message: e.to_string(),
        },
    })?;
    check_resources(spec, design, &info)
}

/// Each tile's use in `info` against what the device gives a tile of its kind.
pub fn check_resources(spec: &Spec, design: &Design, info: &DesignInfo) -> Result<(), SpecError> {
    let name = spec.name().to_string();
    let fields = spec.buffer_fields().to_string();
    for (tile, u) in &info.tiles {
        let r = info.capacity(*tile);
        let kind = info.tile_kind(*tile).word();
        let count = |n: u32| n as usize;
        let checks: [(&str, usize, usize, String); 5] = [
            (
                "data memory (bytes)",
                u.memory_bytes(),
                r.memory_bytes,
                memory_parts(design, u),
            ),
            (
                "locks",
                count(u.locks),
                count(r.locks),
                format!("{kind} tile"),
            ),
            (
                "buffer descriptors",
                count(u.bds),
                count(r.bds),
                format!("{kind} tile"),
            ),
            (
                "S2MM DMA channels",
                count(u.s2mm),
                count(r.s2mm_channels),
                format!("{kind} tile, one per incoming FIFO"),
            ),
            (
                "MM2S DMA channels",
                count(u.mm2s),
                count(r.mm2s_channels),
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
                        fields.clone()
                    },
                });
            }
        }
    }
    Ok(())
}

/// The memory items of a tile in words, e.g. `fifo in: 2 x 1024 B, stack 1024 B`.
fn memory_parts(design: &Design, u: &TileUsage) -> String {
    let fifo = |prefix: &str, i: usize| {
        let f = &design.fifos[i];
        format!("{prefix}fifo {}: {} x {} B", f.name, f.depth, f.ty.bytes())
    };
    let parts: Vec<String> = u
        .memory
        .iter()
        .flat_map(|m| match &m.item {
            MemoryItem::Fifo { fifo: i } => vec![fifo("", *i)],
            MemoryItem::Link { fifos, .. } => fifos.iter().map(|&i| fifo("link ", i)).collect(),
            MemoryItem::Stack => vec![format!("stack {} B", m.bytes)],
            MemoryItem::ConstantTables => vec![format!("constant tables {} B", m.bytes)],
        })
        .collect();
    parts.join(", ")
}
