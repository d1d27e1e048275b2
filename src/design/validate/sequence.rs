//! The runtime sequence: which shim DMA channel each transfer uses, its buffer descriptor, and
//! whether the host waits on its completion token.

use std::collections::{BTreeMap, HashMap};

use super::{lookup, tile_name, ValidateError};
use crate::design::info::{DesignInfo, FifoEnd, SeqStep, ShimDma};
use crate::design::{
    Design, ObjectFifo, Port, RuntimeSequence, SeqOp, TensorAccessPattern, TileId,
};

/// Largest element index a pattern touches (relative to the buffer start).
pub fn last_index(p: &TensorAccessPattern) -> usize {
    p.offset
        + p.sizes
            .iter()
            .zip(&p.strides)
            .map(|(&s, &st)| s.saturating_sub(1) * st)
            .sum::<usize>()
}

/// Shim channels and one step per sequence op. A shim tile has `device.shim.bds` buffer
/// descriptors; a `dma_memcpy_nd` holds one until a `dma_wait` on its FIFO.
pub(super) fn schedule(
    design: &Design,
    info: &DesignInfo,
) -> Result<(Vec<ShimDma>, Vec<SeqStep>), ValidateError> {
    let seq = &design.sequence;
    let shim_bds = info.device.shim.bds;
    let mut dmas: Vec<ShimDma> = Vec::new();
    let mut dma_of: HashMap<(usize, Port), usize> = HashMap::new();
    let mut in_flight = InFlight::new();
    let mut steps = Vec::with_capacity(seq.ops.len());
    for (i, op) in seq.ops.iter().enumerate() {
        let (fifo, arg, pattern, port) = match op {
            SeqOp::Fill { fifo, arg, pattern } => (fifo, *arg, pattern, Port::Produce),
            SeqOp::Drain { fifo, arg, pattern } => (fifo, *arg, pattern, Port::Consume),
            SeqOp::Wait { fifo } => {
                steps.push(wait_step(
                    design,
                    info,
                    fifo,
                    &dmas,
                    &dma_of,
                    &mut in_flight,
                )?);
                continue;
            }
        };
        let what = format!("aiex.npu.dma_memcpy_nd #{i} (metadata = @{fifo})");
        let (fi, f) = lookup(design, &info.fifo_index, &what, fifo)?;
        let (tile, cursor) = shim_end(info, fi, f, port, &what)?;
        check_host_transfer(seq, i, arg, pattern, f, &what)?;
        let bad = |message: String| Err(ValidateError::invalid(&what, message));
        let awaited = awaited_later(&seq.ops[i + 1..], fifo);
        if port == Port::Consume && !awaited {
            return bad(format!("drain of @{fifo} is never awaited (add a dma_wait before the sequence ends or reuses the FIFO)"));
        }
        let list = in_flight.entry(tile).or_default();
        let Some(bd) = (0..shim_bds).find(|id| list.iter().all(|(used, _)| used != id)) else {
            return bad(format!(
                "more than {shim_bds} DMAs in flight on shim {}; add waits",
                tile_name(tile)
            ));
        };
        list.push((bd, fi));
        let dma = *dma_of.entry((fi, port)).or_insert_with(|| {
            dmas.push(ShimDma {
                tile,
                end: FifoEnd {
                    fifo: fi,
                    port,
                    cursor,
                },
            });
            dmas.len() - 1
        });
        steps.push(SeqStep::Transfer {
            dma,
            bd,
            issue_token: awaited,
        });
    }
    Ok((dmas, steps))
}

/// The shim tile and cursor of `f`'s end a fill (`Produce`) or drain (`Consume`) moves.
fn shim_end(
    info: &DesignInfo,
    fi: usize,
    f: &ObjectFifo,
    port: Port,
    what: &str,
) -> Result<(TileId, usize), ValidateError> {
    let bad = |message: String| Err(ValidateError::invalid(what, message));
    let (fifo, shim_row) = (&f.name, info.device.shim_row);
    match port {
        Port::Produce if f.producer.row != shim_row => bad(format!(
            "fills @{fifo}, whose producer {} is not a shim tile",
            tile_name(f.producer)
        )),
        Port::Produce => Ok((f.producer, 0)),
        Port::Consume => match f.consumers.iter().find(|c| c.row == shim_row) {
            None => bad(format!("drains @{fifo}, which no shim tile consumes")),
            Some(&shim) => Ok((shim, info.fifos[fi].consumer_cursor(shim, 0).unwrap_or(0))),
        },
    }
}

/// Sequence op `i` against its host buffer `%arg{arg}` and FIFO `f`: the same element type,
/// a pattern inside the buffer, whole FIFO objects.
fn check_host_transfer(
    seq: &RuntimeSequence,
    i: usize,
    arg: usize,
    pattern: &TensorAccessPattern,
    f: &ObjectFifo,
    what: &str,
) -> Result<(), ValidateError> {
    let bad = |message: String| Err(ValidateError::invalid(what, message));
    let fifo = &f.name;
    let Some(host) = seq.args.get(arg) else {
        return bad(format!(
            "host buffer %arg{arg} does not exist ({} arguments)",
            seq.args.len()
        ));
    };
    if host.ty.elem != f.ty.elem {
        return bad(format!(
            "host buffer {} and @{fifo} ({}) have different element types",
            host.ty.mlir(),
            f.ty.mlir()
        ));
    }
    if pattern.sizes.contains(&0) {
        return bad("an access-pattern size is 0".into());
    }
    let last = last_index(pattern);
    if last >= host.ty.numel() {
        return Err(ValidateError::OutOfBounds {
            message: format!(
                "access pattern reaches element {last} of {} (%arg{arg} has {} elements)",
                host.ty.mlir(),
                host.ty.numel()
            ),
            op: what.to_string(),
            seq_op: i,
            index: last,
            len: host.ty.numel(),
        });
    }
    if !pattern.len().is_multiple_of(f.ty.numel()) {
        return bad(format!(
            "moves {} elements, not a whole number of {}-element @{fifo} objects",
            pattern.len(),
            f.ty.numel()
        ));
    }
    Ok(())
}

/// `dma_wait` on `fifo`: frees the BDs of its transfers in flight.
fn wait_step(
    design: &Design,
    info: &DesignInfo,
    fifo: &str,
    dmas: &[ShimDma],
    dma_of: &HashMap<(usize, Port), usize>,
    in_flight: &mut InFlight,
) -> Result<SeqStep, ValidateError> {
    let what = format!("aiex.npu.dma_wait {{symbol = @{fifo}}}");
    let (fi, _) = lookup(design, &info.fifo_index, &what, fifo)?;
    let dma = [Port::Produce, Port::Consume]
        .iter()
        .find_map(|p| dma_of.get(&(fi, *p)).copied());
    let list = dma.and_then(|d| in_flight.get_mut(&dmas[d].tile));
    let Some((dma, list)) = dma.zip(list).filter(|(_, l)| l.iter().any(|e| e.1 == fi)) else {
        return Err(ValidateError::invalid(
            what,
            "waits on a FIFO with no DMA in flight",
        ));
    };
    list.retain(|(_, f)| *f != fi);
    Ok(SeqStep::Wait { dma })
}

/// BDs in use per shim tile: (id, fifo) of DMAs not yet awaited.
type InFlight = BTreeMap<TileId, Vec<(u32, usize)>>;

/// The host waits on a DMA's token when a wait on its FIFO comes before the next DMA on that
/// FIFO.
fn awaited_later(rest: &[SeqOp], fifo: &str) -> bool {
    rest.iter()
        .find_map(|o| match o {
            SeqOp::Wait { fifo: w } if w == fifo => Some(true),
            SeqOp::Fill { fifo: d, .. } | SeqOp::Drain { fifo: d, .. } if d == fifo => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}
