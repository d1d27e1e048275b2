//! Our verifier: what plain MLIR cannot check about the `aie`/`aiex` ops, which it only sees
//! as unregistered operations. It runs on the [`Design`] because lowering maps it one to one
//! onto ops; every error names the op it is about, in aie-opt's spelling.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::design::{CoreStmt, Design, ObjectFifo, Port, SeqOp, TensorAccessPattern, TileId};
use crate::device::DeviceModel;

use super::MlirError;

/// Shim DMAs have 16 buffer descriptors per tile; a `dma_memcpy_nd` holds one until it is
/// awaited.
pub const SHIM_BDS: u32 = 16;

/// How one runtime-sequence DMA is issued: its buffer-descriptor id and whether the host waits
/// on its completion token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaIssue {
    pub id: u32,
    pub issue_token: bool,
}

/// Checks a design; `Ok` means lowering will produce a module aie-opt can place and route.
pub fn verify(design: &Design) -> Result<(), MlirError> {
    let device = DeviceModel::get(&design.device)
        .map_err(|e| MlirError::invalid(format!("aie.device({})", design.device), e.to_string()))?;
    verify_tiles(design, &device)?;
    let fifos = verify_fifos(design)?;
    verify_links(design, &fifos, &device)?;
    verify_workers(design, &fifos, &device)?;
    dma_schedule(design)?;
    Ok(())
}

fn tile_name(t: TileId) -> String {
    format!("aie.tile({}, {})", t.col, t.row)
}

fn fifo_op(name: &str) -> String {
    format!("aie.objectfifo @{name}")
}

fn verify_tiles(design: &Design, device: &DeviceModel) -> Result<(), MlirError> {
    let mut seen = HashSet::new();
    for &t in &design.tiles {
        if !seen.insert(t) {
            return Err(MlirError::invalid(tile_name(t), "tile declared twice"));
        }
        if t.col >= device.columns || t.row >= device.rows {
            return Err(MlirError::invalid(
                tile_name(t),
                format!(
                    "outside device {} ({} columns x {} rows)",
                    device.name, device.columns, device.rows
                ),
            ));
        }
    }
    Ok(())
}

fn is_symbol_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.' | '-'))
}

fn verify_fifos(design: &Design) -> Result<HashMap<&str, &ObjectFifo>, MlirError> {
    let declared: HashSet<TileId> = design.tiles.iter().copied().collect();
    let mut fifos = HashMap::new();
    for f in &design.fifos {
        let op = fifo_op(&f.name);
        if !is_symbol_name(&f.name) {
            return Err(MlirError::invalid(op, "name is not a valid MLIR symbol"));
        }
        if fifos.insert(f.name.as_str(), f).is_some() {
            return Err(MlirError::invalid(op, "FIFO name used twice"));
        }
        if !declared.contains(&f.producer) {
            return Err(MlirError::invalid(
                op,
                format!("producer {} is not declared", tile_name(f.producer)),
            ));
        }
        if f.consumers.is_empty() {
            return Err(MlirError::invalid(op, "no consumer tiles"));
        }
        let mut consumers = HashSet::new();
        for &c in &f.consumers {
            if !declared.contains(&c) {
                return Err(MlirError::invalid(
                    op,
                    format!("consumer {} is not declared", tile_name(c)),
                ));
            }
            // A consumer equal to the producer is a local FIFO (one tile's buffers and
            // locks, no DMA); aie-opt's stateful transform lowers it, so it is allowed.
            if !consumers.insert(c) {
                return Err(MlirError::invalid(
                    op,
                    format!("consumer {} listed twice", tile_name(c)),
                ));
            }
        }
        if f.depth == 0 {
            return Err(MlirError::invalid(op, "depth must be at least 1"));
        }
        if f.ty.shape.is_empty() || f.ty.numel() == 0 {
            return Err(MlirError::invalid(
                op,
                format!("element type {} holds no data", f.ty.mlir()),
            ));
        }
    }
    Ok(fifos)
}

fn lookup<'d>(
    fifos: &HashMap<&str, &'d ObjectFifo>,
    op: &str,
    name: &str,
) -> Result<&'d ObjectFifo, MlirError> {
    fifos
        .get(name)
        .copied()
        .ok_or_else(|| MlirError::invalid(op, format!("references unknown FIFO @{name}")))
}

fn verify_links(
    design: &Design,
    fifos: &HashMap<&str, &ObjectFifo>,
    device: &DeviceModel,
) -> Result<(), MlirError> {
    for l in &design.links {
        let op = format!(
            "aie.objectfifo.link [{}] -> [{}]",
            l.srcs
                .iter()
                .map(|s| format!("@{s}"))
                .collect::<Vec<_>>()
                .join(", "),
            l.dsts
                .iter()
                .map(|s| format!("@{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if l.srcs.is_empty() || l.dsts.is_empty() {
            return Err(MlirError::invalid(
                op,
                "needs at least one source and one destination",
            ));
        }
        if l.srcs.len() > 1 && l.dsts.len() > 1 {
            return Err(MlirError::invalid(op, "cannot both join and split"));
        }
        let srcs = l
            .srcs
            .iter()
            .map(|s| lookup(fifos, &op, s))
            .collect::<Result<Vec<_>, _>>()?;
        let dsts = l
            .dsts
            .iter()
            .map(|s| lookup(fifos, &op, s))
            .collect::<Result<Vec<_>, _>>()?;
        // The link tile produces every destination and consumes every source.
        let via = dsts[0].producer;
        if via.row != device.memtile_row {
            return Err(MlirError::invalid(
                &op,
                format!(
                    "link tile {} is not a memtile (row {})",
                    tile_name(via),
                    device.memtile_row
                ),
            ));
        }
        for d in &dsts {
            if d.producer != via {
                return Err(MlirError::invalid(
                    &op,
                    format!(
                        "@{} is not produced by the link tile {}",
                        d.name,
                        tile_name(via)
                    ),
                ));
            }
        }
        for s in &srcs {
            if s.consumers != [via] {
                return Err(MlirError::invalid(
                    &op,
                    format!(
                        "@{} must have the link tile {} as its only consumer",
                        s.name,
                        tile_name(via)
                    ),
                ));
            }
        }
        let elem = srcs[0].ty.elem;
        if srcs.iter().chain(&dsts).any(|f| f.ty.elem != elem) {
            return Err(MlirError::invalid(
                &op,
                "linked FIFOs have different element types",
            ));
        }
        let check_slices = |parts: &[&ObjectFifo],
                            offsets: &[usize],
                            whole: &ObjectFifo,
                            what: &str| {
            if offsets.len() != parts.len() {
                return Err(MlirError::invalid(
                    &op,
                    format!("{} {what} offsets for {} FIFOs", offsets.len(), parts.len()),
                ));
            }
            for (p, &off) in parts.iter().zip(offsets) {
                if off + p.ty.numel() > whole.ty.numel() {
                    return Err(MlirError::invalid(
                        &op,
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
        };
        if dsts.len() > 1 {
            check_slices(&dsts, &l.dst_offsets, srcs[0], "destination")?;
            if !l.src_offsets.is_empty() {
                return Err(MlirError::invalid(&op, "a split takes no source offsets"));
            }
        } else if srcs.len() > 1 {
            check_slices(&srcs, &l.src_offsets, dsts[0], "source")?;
            if !l.dst_offsets.is_empty() {
                return Err(MlirError::invalid(
                    &op,
                    "a join takes no destination offsets",
                ));
            }
        } else if !l.src_offsets.is_empty() && !l.dst_offsets.is_empty() {
            // aie-opt accepts (and ignores) offsets on one side of a one-to-one link.
            return Err(MlirError::invalid(
                &op,
                "a one-to-one link takes offsets on one side at most",
            ));
        } else if !l.dst_offsets.is_empty() {
            check_slices(&dsts, &l.dst_offsets, srcs[0], "destination")?;
        } else if !l.src_offsets.is_empty() {
            check_slices(&srcs, &l.src_offsets, dsts[0], "source")?;
        }
    }
    Ok(())
}

/// A live acquire while walking a core program.
struct Held {
    fifo: String,
    port: Port,
    count: u32,
    binding: String,
    valid: bool,
}

fn verify_workers(
    design: &Design,
    fifos: &HashMap<&str, &ObjectFifo>,
    device: &DeviceModel,
) -> Result<(), MlirError> {
    let declared: HashSet<TileId> = design.tiles.iter().copied().collect();
    let mut cores = HashSet::new();
    for w in &design.workers {
        let op = format!("aie.core({})", tile_name(w.tile));
        if !declared.contains(&w.tile) {
            return Err(MlirError::invalid(op, "tile is not declared"));
        }
        if w.tile.row < device.first_core_row {
            return Err(MlirError::invalid(
                op,
                format!("cores live on rows >= {}", device.first_core_row),
            ));
        }
        if !cores.insert(w.tile) {
            return Err(MlirError::invalid(op, "two cores on one tile"));
        }
        let mut held: Vec<Held> = Vec::new();
        check_body(&op, w.tile, &w.program, fifos, &mut held, false)?;
    }
    Ok(())
}

fn outstanding(held: &[Held], fifo: &str, port: Port) -> u32 {
    held.iter()
        .filter(|h| h.fifo == fifo && h.port == port && h.valid)
        .map(|h| h.count)
        .sum()
}

fn check_body(
    op: &str,
    tile: TileId,
    body: &[CoreStmt],
    fifos: &HashMap<&str, &ObjectFifo>,
    held: &mut Vec<Held>,
    in_loop: bool,
) -> Result<(), MlirError> {
    let entry: BTreeMap<(String, bool), u32> =
        held.iter()
            .filter(|h| h.valid)
            .fold(BTreeMap::new(), |mut m, h| {
                *m.entry((h.fifo.clone(), h.port == Port::Produce))
                    .or_default() += h.count;
                m
            });
    let scope_start = held.len();
    for stmt in body {
        match stmt {
            CoreStmt::Loop { count, body } => {
                if *count == 0 {
                    return Err(MlirError::invalid(op, "scf.for with a trip count of 0"));
                }
                check_body(op, tile, body, fifos, held, true)?;
            }
            CoreStmt::Acquire {
                fifo,
                port,
                count,
                binding,
            } => {
                let what = format!("{op}: aie.objectfifo.acquire @{fifo}({port:?}, {count})");
                let f = lookup(fifos, &what, fifo)?;
                check_port(&what, tile, f, *port)?;
                if *count == 0 {
                    return Err(MlirError::invalid(what, "acquires nothing"));
                }
                let total = outstanding(held, fifo, *port) + count;
                if total > f.depth {
                    return Err(MlirError::invalid(
                        what,
                        format!(
                            "{total} buffers held at once but @{fifo} has depth {}",
                            f.depth
                        ),
                    ));
                }
                // A name may be reused once the buffers it named are released.
                if held[scope_start..]
                    .iter()
                    .any(|h| h.binding == *binding && h.valid)
                {
                    return Err(MlirError::invalid(
                        what,
                        format!("binding `{binding}` defined twice"),
                    ));
                }
                held.push(Held {
                    fifo: fifo.clone(),
                    port: *port,
                    count: *count,
                    binding: binding.clone(),
                    valid: true,
                });
            }
            CoreStmt::Release { fifo, port, count } => {
                let what = format!("{op}: aie.objectfifo.release @{fifo}({port:?}, {count})");
                let f = lookup(fifos, &what, fifo)?;
                check_port(&what, tile, f, *port)?;
                let have = outstanding(held, fifo, *port);
                if *count == 0 || *count > have {
                    return Err(MlirError::invalid(
                        what,
                        format!("releases {count} buffers but {have} are held"),
                    ));
                }
                // Buffers are released oldest first; a binding whose buffers are all gone can
                // no longer be used.
                let mut left = *count;
                for h in held
                    .iter_mut()
                    .filter(|h| h.fifo == *fifo && h.port == *port && h.valid)
                {
                    if left == 0 {
                        break;
                    }
                    let take = left.min(h.count);
                    h.count -= take;
                    left -= take;
                    if h.count == 0 {
                        h.valid = false;
                    }
                }
            }
            CoreStmt::Kernel { kernel, args } => {
                for a in args {
                    let h = held.iter().rev().find(|h| h.binding == a.binding);
                    match h {
                        Some(h) if h.valid && a.index < h.count => {}
                        Some(h) if h.valid => {
                            return Err(MlirError::invalid(
                                op,
                                format!(
                                    "kernel `{}` uses `{}`[{}] but only {} buffers were acquired",
                                    kernel.name, a.binding, a.index, h.count
                                ),
                            ))
                        }
                        Some(_) => {
                            return Err(MlirError::invalid(
                                op,
                                format!(
                                    "kernel `{}` uses `{}` after its release",
                                    kernel.name, a.binding
                                ),
                            ))
                        }
                        None => {
                            return Err(MlirError::invalid(
                                op,
                                format!(
                                    "kernel `{}` uses unknown binding `{}`",
                                    kernel.name, a.binding
                                ),
                            ))
                        }
                    }
                }
            }
        }
    }
    if in_loop {
        // Every iteration must leave the FIFOs as it found them, or the loop leaks or
        // over-releases buffers.
        let exit: BTreeMap<(String, bool), u32> =
            held.iter()
                .filter(|h| h.valid)
                .fold(BTreeMap::new(), |mut m, h| {
                    *m.entry((h.fifo.clone(), h.port == Port::Produce))
                        .or_default() += h.count;
                    m
                });
        if exit != entry {
            let (fifo, produce) = exit
                .keys()
                .chain(entry.keys())
                .find(|k| exit.get(*k) != entry.get(*k))
                .cloned()
                .unwrap_or_default();
            let port = if produce { "Produce" } else { "Consume" };
            return Err(MlirError::invalid(
                op,
                format!(
                    "scf.for body is unbalanced on @{fifo}({port}): {} buffers held on entry, {} on exit",
                    entry.get(&(fifo.clone(), produce)).copied().unwrap_or(0),
                    exit.get(&(fifo.clone(), produce)).copied().unwrap_or(0)
                ),
            ));
        }
    }
    if in_loop {
        // Bindings made inside a loop body do not outlive it (the body is balanced).
        held.truncate(scope_start);
    }
    Ok(())
}

fn check_port(what: &str, tile: TileId, f: &ObjectFifo, port: Port) -> Result<(), MlirError> {
    let ok = match port {
        Port::Produce => f.producer == tile,
        Port::Consume => f.consumers.contains(&tile),
    };
    if ok {
        Ok(())
    } else {
        Err(MlirError::invalid(
            what,
            format!(
                "{} is not the {} of @{}",
                tile_name(tile),
                if port == Port::Produce {
                    "producer"
                } else {
                    "a consumer"
                },
                f.name
            ),
        ))
    }
}

/// Largest element index a pattern touches (relative to the buffer start).
fn last_index(p: &TensorAccessPattern) -> usize {
    p.offset
        + p.sizes
            .iter()
            .zip(&p.strides)
            .map(|(&s, &st)| s.saturating_sub(1) * st)
            .sum::<usize>()
}

/// Checks the runtime sequence and assigns each DMA its buffer descriptor and token:
/// one entry per `SeqOp` (`None` for waits).
pub fn dma_schedule(design: &Design) -> Result<Vec<Option<DmaIssue>>, MlirError> {
    let fifos: HashMap<&str, &ObjectFifo> =
        design.fifos.iter().map(|f| (f.name.as_str(), f)).collect();
    let seq = &design.sequence;
    // BDs in use per shim tile: (id, fifo) of DMAs not yet awaited.
    let mut in_flight: BTreeMap<TileId, Vec<(u32, String)>> = BTreeMap::new();
    let mut out = Vec::with_capacity(seq.ops.len());
    for (i, op) in seq.ops.iter().enumerate() {
        let (fifo, arg, pattern, fill) = match op {
            SeqOp::Fill { fifo, arg, pattern } => (fifo, *arg, pattern, true),
            SeqOp::Drain { fifo, arg, pattern } => (fifo, *arg, pattern, false),
            SeqOp::Wait { fifo } => {
                let what = format!("aiex.npu.dma_wait {{symbol = @{fifo}}}");
                let f = lookup(&fifos, &what, fifo)?;
                let shim = shim_tile_of(f);
                let list = in_flight.entry(shim).or_default();
                let before = list.len();
                list.retain(|(_, n)| n != fifo);
                if list.len() == before {
                    return Err(MlirError::invalid(
                        what,
                        "waits on a FIFO with no DMA in flight",
                    ));
                }
                out.push(None);
                continue;
            }
        };
        let what = format!("aiex.npu.dma_memcpy_nd #{i} (metadata = @{fifo})");
        let f = lookup(&fifos, &what, fifo)?;
        if fill && f.producer.row != 0 {
            return Err(MlirError::invalid(
                what,
                format!(
                    "fills @{fifo}, whose producer {} is not a shim tile",
                    tile_name(f.producer)
                ),
            ));
        }
        if !fill && !f.consumers.iter().any(|c| c.row == 0) {
            return Err(MlirError::invalid(
                what,
                format!("drains @{fifo}, which no shim tile consumes"),
            ));
        }
        let host = seq.args.get(arg).ok_or_else(|| {
            MlirError::invalid(
                &what,
                format!(
                    "host buffer %arg{arg} does not exist ({} arguments)",
                    seq.args.len()
                ),
            )
        })?;
        if host.ty.elem != f.ty.elem {
            return Err(MlirError::invalid(
                what,
                format!(
                    "host buffer {} and @{fifo} ({}) have different element types",
                    host.ty.mlir(),
                    f.ty.mlir()
                ),
            ));
        }
        if pattern.sizes.contains(&0) {
            return Err(MlirError::invalid(what, "an access-pattern size is 0"));
        }
        if pattern.strides[3] != 1 {
            return Err(MlirError::invalid(what, "the innermost stride must be 1"));
        }
        if let Err(problem) = check_shim_bd(pattern, host.ty.elem.bytes() * 8) {
            return Err(MlirError::invalid(what, problem));
        }
        if last_index(pattern) >= host.ty.numel() {
            return Err(MlirError::invalid(
                what,
                format!(
                    "access pattern reaches element {} of {} (%arg{arg} has {} elements)",
                    last_index(pattern),
                    host.ty.mlir(),
                    host.ty.numel()
                ),
            ));
        }
        if !pattern.len().is_multiple_of(f.ty.numel()) {
            return Err(MlirError::invalid(
                what,
                format!(
                    "moves {} elements, not a whole number of {}-element @{fifo} objects",
                    pattern.len(),
                    f.ty.numel()
                ),
            ));
        }
        // The host waits on a DMA's token when a wait on its FIFO comes before the next DMA
        // on that FIFO.
        let awaited = seq.ops[i + 1..]
            .iter()
            .find_map(|o| match o {
                SeqOp::Wait { fifo: w } if w == fifo => Some(true),
                SeqOp::Fill { fifo: d, .. } | SeqOp::Drain { fifo: d, .. } if d == fifo => {
                    Some(false)
                }
                _ => None,
            })
            .unwrap_or(false);
        if !fill && !awaited {
            return Err(MlirError::invalid(
                what,
                format!("drain of @{fifo} is never awaited (add a dma_wait before the sequence ends or reuses the FIFO)"),
            ));
        }
        let shim = shim_tile_of(f);
        let list = in_flight.entry(shim).or_default();
        let id = (0..SHIM_BDS)
            .find(|id| list.iter().all(|(used, _)| used != id))
            .ok_or_else(|| {
                MlirError::invalid(
                    &what,
                    format!(
                        "more than {SHIM_BDS} DMAs in flight on shim {}; add waits",
                        tile_name(shim)
                    ),
                )
            })?;
        list.push((id, fifo.clone()));
        out.push(Some(DmaIssue {
            id,
            issue_token: awaited,
        }));
    }
    Ok(out)
}

/// Address generation granularity of AIE-ML DMAs, bits.
const DMA_GRANULARITY_BITS: usize = 32;

/// The shim NOC buffer-descriptor limits aie-opt checks on `dma_memcpy_nd` (AIE-ML: 10-bit
/// wraps, 20-bit steps, 6-bit iteration count, all in 32-bit words; the offset 4-byte
/// aligned). A plain `[1, 1, 1, n][0, 0, 0, 1]` transfer is exempt from the wrap limit.
fn check_shim_bd(p: &TensorAccessPattern, elem_bits: usize) -> Result<(), String> {
    const WRAP_MAX: usize = (1 << 10) - 1;
    const STEP_MAX: usize = 1 << 20;
    const ITER_MAX: usize = 1 << 6;
    let g = DMA_GRANULARITY_BITS;
    // Innermost first, as the hardware counts dimensions.
    let d = [p.sizes[3], p.sizes[2], p.sizes[1], p.sizes[0]];
    let s = [p.strides[3], p.strides[2], p.strides[1], p.strides[0]];
    if !(p.offset * elem_bits).is_multiple_of(g) {
        return Err(format!("offset {} is not 4-byte aligned", p.offset));
    }
    if !(d[0] * elem_bits).is_multiple_of(g) {
        return Err(format!(
            "innermost size {} ({} bytes) is not a multiple of 4 bytes",
            d[0],
            d[0] * elem_bits / 8
        ));
    }
    for i in 1..3 {
        if d[i] > 1 && s[i] < 1 {
            return Err(format!(
                "dimension {i} (innermost = 0) repeats with stride 0"
            ));
        }
    }
    for (i, &st) in s.iter().enumerate().skip(1) {
        if !(st * elem_bits).is_multiple_of(g) {
            return Err(format!(
                "stride of dimension {i} (innermost = 0) is {} bytes, not a multiple of 4",
                st * elem_bits / 8
            ));
        }
    }
    let linear = d[1] == 1 && d[2] == 1 && s[1] == 0 && s[2] == 0;
    let words0 = d[0] * elem_bits / g;
    if !linear && words0 > WRAP_MAX {
        return Err(format!(
            "innermost size {} is {words0} words; a shim BD wraps at most {WRAP_MAX}",
            d[0]
        ));
    }
    if d[1] > WRAP_MAX {
        return Err(format!(
            "size of dimension 1 (innermost = 0) is {}; a shim BD wraps at most {WRAP_MAX}",
            d[1]
        ));
    }
    if d[3] > ITER_MAX + 1 {
        return Err(format!(
            "outermost size {} exceeds the {} iterations of a shim BD",
            d[3],
            ITER_MAX + 1
        ));
    }
    for i in 1..4 {
        let words = (s[i] * elem_bits / g).saturating_sub(1);
        if d[i] > 1 && words > STEP_MAX {
            return Err(format!(
                "stride of dimension {i} (innermost = 0) is {} words; a shim BD steps at most {STEP_MAX}",
                words + 1
            ));
        }
    }
    Ok(())
}

fn shim_tile_of(f: &ObjectFifo) -> TileId {
    if f.producer.row == 0 {
        f.producer
    } else {
        f.consumers
            .iter()
            .copied()
            .find(|c| c.row == 0)
            .unwrap_or(f.producer)
    }
}
