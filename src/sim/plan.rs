//! Static checks and the simulation plan: which actor holds which FIFO cursor, how links and
//! shim DMAs move data, and whether every tile's buffers fit its memory. Everything here runs
//! before any thread starts, so bad designs fail with one named error instead of a hang.

use std::collections::{BTreeMap, HashMap};

use super::fifo::Side;
use super::pattern;
use super::SimError;
use crate::design::{BufferType, CoreStmt, Design, ObjectFifo, Port, SeqOp, TileId};

/// Data memory of a tile, bytes: the shim has none, the memtile 512 KiB, a core 64 KiB
/// (identical on npu1 and npu2, AM020).
pub(crate) fn tile_memory_bytes(tile: TileId) -> usize {
    match tile.row {
        0 => 0,
        1 => 512 * 1024,
        _ => 64 * 1024,
    }
}

/// One FIFO end as an actor holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRef {
    pub fifo: usize,
    pub side: Side,
    pub cursor: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct FifoPlan {
    pub name: String,
    pub ty: BufferType,
    pub depth: u32,
    pub producer_cursors: usize,
    pub consumer_cursors: usize,
}

/// A worker's FIFO ends, numbered in order of first use: the JIT-compiled core refers to them
/// by this local number so that identical programs on different tiles share one compiled body.
#[derive(Debug, Clone)]
pub(crate) struct WorkerPlan {
    pub tile: TileId,
    pub ports: Vec<(PortRef, BufferType)>,
    pub local: HashMap<(String, PortKey), usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PortKey {
    Produce,
    Consume,
}

impl From<Port> for PortKey {
    fn from(p: Port) -> Self {
        match p {
            Port::Produce => PortKey::Produce,
            Port::Consume => PortKey::Consume,
        }
    }
}

/// One memtile DMA channel of a link: copies `len` elements of every source buffer, starting at
/// `src_offset`, into every destination buffer at `dst_offset`.
#[derive(Debug, Clone)]
pub(crate) struct MoverPlan {
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
pub(crate) struct DmaPlan {
    pub name: String,
    pub port: PortRef,
}

/// A runtime-sequence step with names resolved.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Transfer {
        dma: usize,
        arg: usize,
        indices: Vec<usize>,
    },
    Wait {
        dma: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub fifos: Vec<FifoPlan>,
    pub workers: Vec<WorkerPlan>,
    pub movers: Vec<MoverPlan>,
    pub dmas: Vec<DmaPlan>,
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

impl Plan {
    pub fn new(design: &Design) -> Result<Plan, SimError> {
        let mut index = HashMap::new();
        for (i, f) in design.fifos.iter().enumerate() {
            if index.insert(f.name.clone(), i).is_some() {
                return Err(invalid(
                    design,
                    format!("object FIFO @{} is defined twice", f.name),
                ));
            }
            if f.depth == 0 {
                return Err(invalid(
                    design,
                    format!("object FIFO @{} has depth 0", f.name),
                ));
            }
            if f.consumers.is_empty() {
                return Err(invalid(
                    design,
                    format!("object FIFO @{} has no consumer", f.name),
                ));
            }
            if f.ty.shape.is_empty() || f.ty.shape.len() > 4 || f.ty.numel() == 0 {
                return Err(invalid(
                    design,
                    format!("object FIFO @{} has buffer type {}: the simulator handles ranks 1 to 4 with no empty dimension", f.name, f.ty.mlir()),
                ));
            }
        }
        let find = |name: &str| -> Result<usize, SimError> {
            index
                .get(name)
                .copied()
                .ok_or_else(|| invalid(design, format!("no object FIFO named @{name}")))
        };

        // Cursors: one per producer / consumer tile, plus one per extra channel of a link.
        let mut producer_cursors = vec![1usize; design.fifos.len()];
        // consumer cursors per fifo: (tile, first cursor, count)
        let mut consumer_slots: Vec<Vec<(TileId, usize, usize)>> = Vec::new();
        let mut split_channels: HashMap<(usize, TileId), usize> = HashMap::new();
        let mut movers = Vec::new();
        let mut link_tiles = Vec::new();
        for (li, link) in design.links.iter().enumerate() {
            if link.srcs.is_empty()
                || link.dsts.is_empty()
                || (link.srcs.len() > 1 && link.dsts.len() > 1)
            {
                return Err(invalid(
                    design,
                    format!(
                        "link #{li} must have one source or one destination (got {} -> {})",
                        link.srcs.len(),
                        link.dsts.len()
                    ),
                ));
            }
            let dst0 = &design.fifos[find(&link.dsts[0])?];
            let tile = dst0.producer;
            for d in &link.dsts {
                let f = &design.fifos[find(d)?];
                if f.producer != tile {
                    return Err(invalid(
                        design,
                        format!(
                            "link #{li}: @{d} is produced by {}, not by the link tile {}",
                            tile_name(f.producer),
                            tile_name(tile)
                        ),
                    ));
                }
            }
            for s in &link.srcs {
                let f = &design.fifos[find(s)?];
                if !f.consumers.contains(&tile) {
                    return Err(invalid(
                        design,
                        format!("link #{li}: {} is not a consumer of @{s}", tile_name(tile)),
                    ));
                }
            }
            let elem = dst0.ty.elem;
            if link
                .srcs
                .iter()
                .chain(link.dsts.iter())
                .any(|n| design.fifos[index[n]].ty.elem != elem)
            {
                return Err(invalid(design, format!("link #{li} mixes element types")));
            }
            link_tiles.push(tile);
            if link.dsts.len() > 1 {
                split_channels.insert((find(&link.srcs[0])?, tile), link.dsts.len());
            }
            if link.srcs.len() > 1 {
                producer_cursors[find(&link.dsts[0])?] = link.srcs.len();
            }
        }
        for (fi, f) in design.fifos.iter().enumerate() {
            let mut next = 0;
            let mut slots = Vec::new();
            for &t in &f.consumers {
                let n = split_channels.get(&(fi, t)).copied().unwrap_or(1);
                slots.push((t, next, n));
                next += n;
            }
            consumer_slots.push(slots);
        }
        let consumer_cursor = |fifo: usize, tile: TileId, channel: usize| -> Option<usize> {
            consumer_slots[fifo]
                .iter()
                .find(|(t, _, _)| *t == tile)
                .map(|(_, first, _)| first + channel)
        };

        for (li, link) in design.links.iter().enumerate() {
            let tile = link_tiles[li];
            let bytes = design.fifos[index[&link.dsts[0]]].ty.elem.bytes();
            if link.dsts.len() > 1 {
                let s = index[&link.srcs[0]];
                let src_len = design.fifos[s].ty.numel();
                if link.dst_offsets.len() != link.dsts.len() {
                    return Err(invalid(
                        design,
                        format!(
                            "link #{li} (split of @{}) needs one offset per destination",
                            link.srcs[0]
                        ),
                    ));
                }
                for (k, d) in link.dsts.iter().enumerate() {
                    let di = index[d];
                    let len = design.fifos[di].ty.numel();
                    let off = link.dst_offsets[k];
                    if off + len > src_len {
                        return Err(SimError::OutOfBounds {
                            what: format!("link #{li} (split @{} -> @{d})", link.srcs[0]),
                            buffer: format!("@{}", link.srcs[0]),
                            index: off + len - 1,
                            len: src_len,
                        });
                    }
                    movers.push(MoverPlan {
                        name: format!("memtile {} link @{} -> @{d}", tile_name(tile), link.srcs[0]),
                        src: PortRef {
                            fifo: s,
                            side: Side::Consume,
                            cursor: consumer_cursor(s, tile, k).expect("checked above"),
                        },
                        dst: PortRef {
                            fifo: di,
                            side: Side::Produce,
                            cursor: 0,
                        },
                        src_offset: off,
                        dst_offset: 0,
                        len,
                        elem_bytes: bytes,
                    });
                }
            } else {
                let di = index[&link.dsts[0]];
                let dst_len = design.fifos[di].ty.numel();
                let joined = link.srcs.len() > 1;
                if joined && link.src_offsets.len() != link.srcs.len() {
                    return Err(invalid(
                        design,
                        format!(
                            "link #{li} (join into @{}) needs one offset per source",
                            link.dsts[0]
                        ),
                    ));
                }
                for (k, s) in link.srcs.iter().enumerate() {
                    let si = index[s];
                    let len = design.fifos[si].ty.numel();
                    let off = if joined { link.src_offsets[k] } else { 0 };
                    if off + len > dst_len {
                        return Err(SimError::OutOfBounds {
                            what: format!("link #{li} (@{s} -> @{})", link.dsts[0]),
                            buffer: format!("@{}", link.dsts[0]),
                            index: off + len - 1,
                            len: dst_len,
                        });
                    }
                    movers.push(MoverPlan {
                        name: format!("memtile {} link @{s} -> @{}", tile_name(tile), link.dsts[0]),
                        src: PortRef {
                            fifo: si,
                            side: Side::Consume,
                            cursor: consumer_cursor(si, tile, 0).expect("checked above"),
                        },
                        dst: PortRef {
                            fifo: di,
                            side: Side::Produce,
                            cursor: k,
                        },
                        src_offset: 0,
                        dst_offset: off,
                        len,
                        elem_bytes: bytes,
                    });
                }
            }
        }

        let mut workers = Vec::new();
        for w in &design.workers {
            let mut plan = WorkerPlan {
                tile: w.tile,
                ports: Vec::new(),
                local: HashMap::new(),
            };
            let mut scope = Vec::new();
            check_program(
                design,
                &index,
                &consumer_cursor,
                &w.program,
                &mut plan,
                &mut scope,
            )?;
            workers.push(plan);
        }

        // Shim DMAs: one channel per FIFO end the runtime sequence touches.
        let mut dmas: Vec<DmaPlan> = Vec::new();
        let mut dma_of: HashMap<(usize, Side), usize> = HashMap::new();
        let mut steps = Vec::new();
        let args = &design.sequence.args;
        for (k, op) in design.sequence.ops.iter().enumerate() {
            let (fifo_name, arg, pattern, side) = match op {
                SeqOp::Fill { fifo, arg, pattern } => (fifo, *arg, pattern, Side::Produce),
                SeqOp::Drain { fifo, arg, pattern } => (fifo, *arg, pattern, Side::Consume),
                SeqOp::Wait { fifo } => {
                    let fi = find(fifo)?;
                    let dma = [Side::Produce, Side::Consume]
                        .iter()
                        .find_map(|s| dma_of.get(&(fi, *s)).copied())
                        .ok_or_else(|| invalid(design, format!("runtime sequence op #{k}: dma_wait on @{fifo}, which no earlier dma_memcpy_nd uses")))?;
                    steps.push(Step::Wait { dma });
                    continue;
                }
            };
            let fi = find(fifo_name)?;
            let f: &ObjectFifo = &design.fifos[fi];
            let what = match side {
                Side::Produce => {
                    format!("runtime sequence op #{k} (dma_memcpy_nd %arg{arg} -> @{fifo_name})")
                }
                Side::Consume => {
                    format!("runtime sequence op #{k} (dma_memcpy_nd @{fifo_name} -> %arg{arg})")
                }
            };
            let host = args.get(arg).ok_or_else(|| {
                invalid(
                    design,
                    format!("{what}: the sequence has {} arguments", args.len()),
                )
            })?;
            if host.ty.elem != f.ty.elem {
                return Err(invalid(
                    design,
                    format!(
                        "{what}: %arg{arg} holds {} but @{fifo_name} carries {}",
                        host.ty.elem.mlir(),
                        f.ty.elem.mlir()
                    ),
                ));
            }
            let port = match side {
                Side::Produce => {
                    if f.producer.row != 0 {
                        return Err(invalid(
                            design,
                            format!(
                                "{what}: @{fifo_name} is produced by {}, not by a shim tile",
                                tile_name(f.producer)
                            ),
                        ));
                    }
                    PortRef {
                        fifo: fi,
                        side,
                        cursor: 0,
                    }
                }
                Side::Consume => {
                    let shim = f.consumers.iter().find(|t| t.row == 0).ok_or_else(|| {
                        invalid(
                            design,
                            format!("{what}: no shim tile consumes @{fifo_name}"),
                        )
                    })?;
                    PortRef {
                        fifo: fi,
                        side,
                        cursor: consumer_cursor(fi, *shim, 0).expect("consumer"),
                    }
                }
            };
            if let Some(max) = pattern::max_index(pattern) {
                if max >= host.ty.numel() {
                    return Err(SimError::OutOfBounds {
                        what,
                        buffer: format!("%arg{arg} `{}`", host.name),
                        index: max,
                        len: host.ty.numel(),
                    });
                }
            }
            if pattern.len() % f.ty.numel() != 0 {
                return Err(invalid(design, format!("{what}: moves {} elements, not a whole number of {}-element buffers of @{fifo_name}", pattern.len(), f.ty.numel())));
            }
            let dma = *dma_of.entry((fi, side)).or_insert_with(|| {
                dmas.push(DmaPlan {
                    name: format!(
                        "shim DMA {} @{fifo_name}",
                        match side {
                            Side::Produce => "MM2S ->",
                            Side::Consume => "S2MM <-",
                        }
                    ),
                    port,
                });
                dmas.len() - 1
            });
            steps.push(Step::Transfer {
                dma,
                arg,
                indices: pattern::indices(pattern),
            });
        }

        let fifos = design
            .fifos
            .iter()
            .enumerate()
            .map(|(i, f)| FifoPlan {
                name: f.name.clone(),
                ty: f.ty.clone(),
                depth: f.depth,
                producer_cursors: producer_cursors[i],
                consumer_cursors: consumer_slots[i].iter().map(|(_, _, n)| n).sum(),
            })
            .collect();
        check_memory(design, &link_tiles)?;
        Ok(Plan {
            fifos,
            workers,
            movers,
            dmas,
            steps,
        })
    }
}

fn check_program(
    design: &Design,
    index: &HashMap<String, usize>,
    consumer_cursor: &dyn Fn(usize, TileId, usize) -> Option<usize>,
    program: &[CoreStmt],
    plan: &mut WorkerPlan,
    scope: &mut Vec<(String, u32)>,
) -> Result<(), SimError> {
    let depth = scope.len();
    let worker = tile_name(plan.tile);
    for stmt in program {
        match stmt {
            CoreStmt::Loop { body, .. } => {
                check_program(design, index, consumer_cursor, body, plan, scope)?
            }
            CoreStmt::Acquire {
                fifo, port, count, ..
            }
            | CoreStmt::Release { fifo, port, count } => {
                let fi = *index.get(fifo).ok_or_else(|| {
                    invalid(
                        design,
                        format!("worker {worker} uses unknown object FIFO @{fifo}"),
                    )
                })?;
                let f = &design.fifos[fi];
                let port_ref = match port {
                    Port::Produce if f.producer == plan.tile => PortRef {
                        fifo: fi,
                        side: Side::Produce,
                        cursor: 0,
                    },
                    Port::Consume => match consumer_cursor(fi, plan.tile, 0) {
                        Some(c) => PortRef {
                            fifo: fi,
                            side: Side::Consume,
                            cursor: c,
                        },
                        None => {
                            return Err(invalid(
                                design,
                                format!(
                                "worker {worker} consumes @{fifo}, but is not one of its consumers"
                            ),
                            ))
                        }
                    },
                    Port::Produce => {
                        return Err(invalid(
                            design,
                            format!(
                                "worker {worker} produces into @{fifo}, whose producer is {}",
                                tile_name(f.producer)
                            ),
                        ))
                    }
                };
                if *count == 0 {
                    return Err(invalid(
                        design,
                        format!("worker {worker}: acquire/release of 0 buffers on @{fifo}"),
                    ));
                }
                let key = (fifo.clone(), PortKey::from(*port));
                if !plan.local.contains_key(&key) {
                    plan.local.insert(key, plan.ports.len());
                    plan.ports.push((port_ref, f.ty.clone()));
                }
                if let CoreStmt::Acquire { binding, .. } = stmt {
                    scope.push((binding.clone(), *count));
                }
            }
            CoreStmt::Kernel { kernel, args } => {
                for a in args {
                    match scope.iter().rev().find(|(b, _)| *b == a.binding) {
                        None => return Err(invalid(design, format!("worker {worker}: kernel `{}` uses `{}`, which no enclosing acquire binds", kernel.name, a.binding))),
                        Some((_, n)) if a.index >= *n => return Err(invalid(design, format!("worker {worker}: kernel `{}` uses `{}`[{}], but only {n} buffers were acquired", kernel.name, a.binding, a.index))),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    scope.truncate(depth);
    Ok(())
}

/// Sum of buffers on each tile against its memory. A FIFO end on a tile holds `depth` buffers;
/// a memtile link shares one set of buffers between its sides (the larger one).
fn check_memory(design: &Design, link_tiles: &[TileId]) -> Result<(), SimError> {
    let mut usage: BTreeMap<TileId, Vec<(String, usize)>> = BTreeMap::new();
    let linked = |name: &str| {
        design
            .links
            .iter()
            .zip(link_tiles)
            .find(|(l, _)| l.srcs.iter().chain(l.dsts.iter()).any(|n| n == name))
            .map(|(_, t)| *t)
    };
    for f in &design.fifos {
        let bytes = f.ty.bytes() * f.depth as usize;
        let link_tile = linked(&f.name);
        for t in std::iter::once(f.producer).chain(f.consumers.iter().copied()) {
            if t.row != 0 && Some(t) != link_tile {
                usage.entry(t).or_default().push((
                    format!("@{} ({} x {} B)", f.name, f.depth, f.ty.bytes()),
                    bytes,
                ));
            }
        }
    }
    for (l, &t) in design.links.iter().zip(link_tiles) {
        let side = |names: &[String]| -> usize {
            names
                .iter()
                .filter_map(|n| design.fifos.iter().find(|f| &f.name == n))
                .map(|f| f.ty.bytes() * f.depth as usize)
                .sum()
        };
        let bytes = side(&l.srcs).max(side(&l.dsts));
        usage
            .entry(t)
            .or_default()
            .push((format!("link {:?} -> {:?}", l.srcs, l.dsts), bytes));
    }
    for w in &design.workers {
        usage
            .entry(w.tile)
            .or_default()
            .push(("stack".to_string(), w.stack_bytes));
    }
    for (tile, items) in usage {
        let needed: usize = items.iter().map(|(_, b)| b).sum();
        let available = tile_memory_bytes(tile);
        if needed > available {
            let detail = items
                .iter()
                .map(|(what, b)| format!("{what}: {b} B"))
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
