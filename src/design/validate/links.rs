//! `aie.objectfifo.link`: which memtile forwards, splits or joins, and the copies its DMA
//! channels make.

use std::collections::HashMap;

use super::{lookup, tile_name, ValidateError};
use crate::design::info::{FifoEnd, FifoEnds, LinkInfo, LinkKind, LinkMove};
use crate::design::{Design, FifoLink, ObjectFifo, Port};
use crate::device::DeviceModel;

fn link_op(l: &FifoLink) -> String {
    let syms = |names: &[String]| {
        names
            .iter()
            .map(|s| format!("@{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "aie.objectfifo.link [{}] -> [{}]",
        syms(&l.srcs),
        syms(&l.dsts)
    )
}

/// Checks every link; the moves are filled in by [`add_moves`] once cursors are numbered.
pub(super) fn check(
    design: &Design,
    index: &HashMap<String, usize>,
    device: &DeviceModel,
) -> Result<Vec<LinkInfo>, ValidateError> {
    design
        .links
        .iter()
        .map(|l| check_one(design, index, device, l))
        .collect()
}

fn check_one(
    design: &Design,
    index: &HashMap<String, usize>,
    device: &DeviceModel,
    l: &FifoLink,
) -> Result<LinkInfo, ValidateError> {
    let op = link_op(l);
    let bad = |message: String| Err(ValidateError::invalid(&op, message));
    if l.srcs.is_empty() || l.dsts.is_empty() {
        return bad("needs at least one source and one destination".into());
    }
    if l.srcs.len() > 1 && l.dsts.len() > 1 {
        return bad("cannot both join and split".into());
    }
    let fifos = |names: &[String]| -> Result<Vec<&ObjectFifo>, ValidateError> {
        names
            .iter()
            .map(|s| lookup(design, index, &op, s).map(|(_, f)| f))
            .collect()
    };
    let (srcs, dsts) = (fifos(&l.srcs)?, fifos(&l.dsts)?);
    // The link tile produces every destination and consumes every source.
    let via = dsts[0].producer;
    if via.row != device.memtile_row {
        return bad(format!(
            "link tile {} is not a memtile (row {})",
            tile_name(via),
            device.memtile_row
        ));
    }
    if let Some(d) = dsts.iter().find(|d| d.producer != via) {
        return bad(format!(
            "@{} is not produced by the link tile {}",
            d.name,
            tile_name(via)
        ));
    }
    if let Some(s) = srcs.iter().find(|s| s.consumers != [via]) {
        return bad(format!(
            "@{} must have the link tile {} as its only consumer",
            s.name,
            tile_name(via)
        ));
    }
    let elem = srcs[0].ty.elem;
    if srcs.iter().chain(&dsts).any(|f| f.ty.elem != elem) {
        return bad("linked FIFOs have different element types".into());
    }
    let kind = if dsts.len() > 1 {
        check_slices(&op, &dsts, &l.dst_offsets, srcs[0], "destination")?;
        if !l.src_offsets.is_empty() {
            return bad("a split takes no source offsets".into());
        }
        LinkKind::Split
    } else if srcs.len() > 1 {
        check_slices(&op, &srcs, &l.src_offsets, dsts[0], "source")?;
        if !l.dst_offsets.is_empty() {
            return bad("a join takes no destination offsets".into());
        }
        LinkKind::Join
    } else {
        // aie-opt accepts (and ignores) offsets on one side of a one-to-one link.
        if !l.src_offsets.is_empty() && !l.dst_offsets.is_empty() {
            return bad("a one-to-one link takes offsets on one side at most".into());
        } else if !l.dst_offsets.is_empty() {
            check_slices(&op, &dsts, &l.dst_offsets, srcs[0], "destination")?;
        } else if !l.src_offsets.is_empty() {
            check_slices(&op, &srcs, &l.src_offsets, dsts[0], "source")?;
        }
        LinkKind::Forward
    };
    Ok(LinkInfo {
        tile: via,
        kind,
        moves: Vec::new(),
    })
}

/// Each of `parts` at its offset must lie inside `whole`.
fn check_slices(
    op: &str,
    parts: &[&ObjectFifo],
    offsets: &[usize],
    whole: &ObjectFifo,
    what: &str,
) -> Result<(), ValidateError> {
    if offsets.len() != parts.len() {
        return Err(ValidateError::invalid(
            op,
            format!("{} {what} offsets for {} FIFOs", offsets.len(), parts.len()),
        ));
    }
    for (p, &off) in parts.iter().zip(offsets) {
        if off + p.ty.numel() > whole.ty.numel() {
            return Err(ValidateError::invalid(
                op,
                format!(
                    "{what} offset {off} + {} elements of @{} exceeds the {} elements of @{}",
                    p.ty.numel(),
                    p.name,
                    whole.ty.numel(),
                    whole.name
                ),
            ));
        }
    }
    Ok(())
}

/// The copies each link channel makes: a split copies the slice at each destination's offset
/// out of the source (one source cursor per destination); a forward or join copies each whole
/// source into the destination at its offset (one destination cursor per source).
pub(super) fn add_moves(
    design: &Design,
    index: &HashMap<String, usize>,
    ends: &[FifoEnds],
    links: &mut [LinkInfo],
) {
    for (l, info) in design.links.iter().zip(links.iter_mut()) {
        let consumer = |fifo: usize, channel: usize| FifoEnd {
            fifo,
            port: Port::Consume,
            // Checked by `check_one`: the link tile consumes every source.
            cursor: ends[fifo]
                .consumer_cursor(info.tile, channel)
                .unwrap_or_default(),
        };
        let producer = |fifo: usize, cursor: usize| FifoEnd {
            fifo,
            port: Port::Produce,
            cursor,
        };
        info.moves = if info.kind == LinkKind::Split {
            let src = index[&l.srcs[0]];
            l.dsts
                .iter()
                .enumerate()
                .map(|(k, d)| LinkMove {
                    src: consumer(src, k),
                    dst: producer(index[d], 0),
                    src_offset: l.dst_offsets[k],
                    dst_offset: 0,
                    len: design.fifos[index[d]].ty.numel(),
                })
                .collect()
        } else {
            let dst = index[&l.dsts[0]];
            let joined = info.kind == LinkKind::Join;
            l.srcs
                .iter()
                .enumerate()
                .map(|(k, s)| LinkMove {
                    src: consumer(index[s], 0),
                    dst: producer(dst, k),
                    src_offset: 0,
                    dst_offset: if joined { l.src_offsets[k] } else { 0 },
                    len: design.fifos[index[s]].ty.numel(),
                })
                .collect()
        };
    }
}
