//! Validates a [`Design`] against a [`DeviceModel`] once and returns what every later stage
//! needs to know about it ([`DesignInfo`]): FIFO end numbering, link copies, worker ports, the
//! shim DMA schedule and per-tile resource use.
//!
//! What is checked here is what those facts depend on: names resolve, tiles are on the
//! device, FIFO ends and links are well formed, workers use FIFOs they are an end of and
//! buffers they acquired, and the runtime sequence moves whole buffers inside its host
//! buffers. Budgets (memory, locks, channels) are facts here, checked by whoever has a budget
//! to enforce; the acquire/release discipline of core programs and the shim BD encoding
//! limits are the MLIR verifier's (`crate::mlir::verify`), so the simulator can still run a
//! design that breaks them and show what happens. Errors name the op in aie-opt's spelling.

mod links;
mod sequence;
mod usage;

pub use sequence::last_index;

use std::collections::{HashMap, HashSet};

use super::info::{
    tile_kind, ConsumerCursors, DesignInfo, FifoEnd, FifoEnds, LinkInfo, LinkKind, TileKind,
    WorkerPorts,
};
use super::visit::{walk, CoreVisitor, FifoUse};
use super::{BufArg, Design, Kernel, ObjectFifo, Port, TileId};
use crate::device::DeviceModel;

/// Why a design is not valid.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ValidateError {
    /// `op` (in aie-opt's spelling) is wrong in the way `message` says.
    #[error("{op}: {message}")]
    Invalid { op: String, message: String },
    /// Runtime-sequence op `seq_op` reaches element `index` of a host buffer of `len`.
    #[error("{op}: {message}")]
    OutOfBounds {
        op: String,
        message: String,
        seq_op: usize,
        index: usize,
        len: usize,
    },
}

impl ValidateError {
    pub(crate) fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        ValidateError::Invalid {
            op: op.into(),
            message: message.into(),
        }
    }
}

/// `aie.tile(col, row)`, as errors name tiles.
pub fn tile_name(t: TileId) -> String {
    format!("aie.tile({}, {})", t.col, t.row)
}

/// Validates `design` on `device`; see the module docs for what is checked.
pub fn validate(design: &Design, device: &DeviceModel) -> Result<DesignInfo, ValidateError> {
    check_tiles(design, device)?;
    let fifo_index = check_fifos(design)?;
    let mut links = links::check(design, &fifo_index, device)?;
    let fifos = fifo_ends(design, &fifo_index, &links);
    links::add_moves(design, &fifo_index, &fifos, &mut links);
    let mut info = DesignInfo {
        device: device.clone(),
        fifo_index,
        fifos,
        links,
        workers: Vec::new(),
        shim_dmas: Vec::new(),
        sequence: Vec::new(),
        tiles: Default::default(),
    };
    info.workers = worker_ports(design, &info)?;
    let (shim_dmas, steps) = sequence::schedule(design, &info)?;
    info.shim_dmas = shim_dmas;
    info.sequence = steps;
    info.tiles = usage::per_tile(design, &info);
    Ok(info)
}

/// [`validate`] on the device the design names.
pub fn validate_on_named_device(design: &Design) -> Result<DesignInfo, ValidateError> {
    let device = DeviceModel::get(&design.device).map_err(|e| {
        ValidateError::invalid(format!("aie.device({})", design.device), e.to_string())
    })?;
    validate(design, &device)
}

fn check_tiles(design: &Design, device: &DeviceModel) -> Result<(), ValidateError> {
    let mut seen = HashSet::new();
    for &t in &design.tiles {
        if !seen.insert(t) {
            return Err(ValidateError::invalid(tile_name(t), "tile declared twice"));
        }
        if t.col >= device.columns || t.row >= device.rows {
            return Err(ValidateError::invalid(
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

fn check_fifos(design: &Design) -> Result<HashMap<String, usize>, ValidateError> {
    let declared: HashSet<TileId> = design.tiles.iter().copied().collect();
    let mut index = HashMap::new();
    for (i, f) in design.fifos.iter().enumerate() {
        let op = format!("aie.objectfifo @{}", f.name);
        let bad = |message: String| Err(ValidateError::invalid(&op, message));
        if !is_symbol_name(&f.name) {
            return bad("name is not a valid MLIR symbol".into());
        }
        if index.insert(f.name.clone(), i).is_some() {
            return bad("FIFO name used twice".into());
        }
        if !declared.contains(&f.producer) {
            return bad(format!(
                "producer {} is not declared",
                tile_name(f.producer)
            ));
        }
        if f.consumers.is_empty() {
            return bad("no consumer tiles".into());
        }
        let mut consumers = HashSet::new();
        for &c in &f.consumers {
            if !declared.contains(&c) {
                return bad(format!("consumer {} is not declared", tile_name(c)));
            }
            // A consumer equal to the producer is a local FIFO (one tile's buffers and
            // locks, no DMA); aie-opt's stateful transform lowers it, so it is allowed.
            if !consumers.insert(c) {
                return bad(format!("consumer {} listed twice", tile_name(c)));
            }
        }
        if f.depth == 0 {
            return bad("depth must be at least 1".into());
        }
        if f.ty.shape.is_empty() || f.ty.numel() == 0 {
            return bad(format!("element type {} holds no data", f.ty.mlir()));
        }
    }
    Ok(index)
}

/// The FIFO `name` (its index and definition), or an error naming `op`.
pub(crate) fn lookup<'d>(
    design: &'d Design,
    index: &HashMap<String, usize>,
    op: &str,
    name: &str,
) -> Result<(usize, &'d ObjectFifo), ValidateError> {
    index
        .get(name)
        .map(|&i| (i, &design.fifos[i]))
        .ok_or_else(|| ValidateError::invalid(op, format!("references unknown FIFO @{name}")))
}

/// Cursor numbering: one producer cursor, one consumer cursor per consumer tile, except that a
/// split reads its source through one cursor per destination and a join writes its
/// destination through one cursor per source.
fn fifo_ends(design: &Design, index: &HashMap<String, usize>, links: &[LinkInfo]) -> Vec<FifoEnds> {
    let mut producer_cursors = vec![1usize; design.fifos.len()];
    let mut split_channels: HashMap<(usize, TileId), usize> = HashMap::new();
    for (l, info) in design.links.iter().zip(links) {
        match info.kind {
            LinkKind::Split => {
                split_channels.insert((index[&l.srcs[0]], info.tile), l.dsts.len());
            }
            LinkKind::Join => producer_cursors[index[&l.dsts[0]]] = l.srcs.len(),
            LinkKind::Forward => {}
        }
    }
    design
        .fifos
        .iter()
        .enumerate()
        .map(|(fi, f)| {
            let mut next = 0;
            let consumers = f
                .consumers
                .iter()
                .map(|&tile| {
                    let count = split_channels.get(&(fi, tile)).copied().unwrap_or(1);
                    let c = ConsumerCursors {
                        tile,
                        first: next,
                        count,
                    };
                    next += count;
                    c
                })
                .collect();
            FifoEnds {
                producer_cursors: producer_cursors[fi],
                consumers,
            }
        })
        .collect()
}

fn worker_ports(design: &Design, info: &DesignInfo) -> Result<Vec<WorkerPorts>, ValidateError> {
    let declared: HashSet<TileId> = design.tiles.iter().copied().collect();
    let mut cores = HashSet::new();
    let mut out = Vec::new();
    for w in &design.workers {
        let op = format!("aie.core({})", tile_name(w.tile));
        if !declared.contains(&w.tile) {
            return Err(ValidateError::invalid(op, "tile is not declared"));
        }
        if tile_kind(&info.device, w.tile) != TileKind::Core {
            return Err(ValidateError::invalid(
                op,
                format!("cores live on rows >= {}", info.device.first_core_row),
            ));
        }
        if !cores.insert(w.tile) {
            return Err(ValidateError::invalid(op, "two cores on one tile"));
        }
        let mut numbering = PortNumbering {
            design,
            info,
            op,
            ports: WorkerPorts {
                tile: w.tile,
                ports: Vec::new(),
            },
            scope: Vec::new(),
        };
        walk(&mut numbering, &w.program)?;
        out.push(numbering.ports);
    }
    Ok(out)
}

/// Numbers a worker's FIFO ends in order of first use and checks that every kernel argument
/// names a buffer an enclosing acquire holds.
struct PortNumbering<'d> {
    design: &'d Design,
    info: &'d DesignInfo,
    op: String,
    ports: WorkerPorts,
    /// Acquires in scope: (binding, buffer count).
    scope: Vec<(String, u32)>,
}

impl PortNumbering<'_> {
    fn port(&mut self, what: &str, fifo: &str, port: Port) -> Result<(), ValidateError> {
        let (fi, f) = lookup(self.design, &self.info.fifo_index, what, fifo)?;
        let tile = self.ports.tile;
        let cursor = match port {
            Port::Produce if f.producer == tile => Some(0),
            Port::Produce => None,
            Port::Consume => self.info.fifos[fi].consumer_cursor(tile, 0),
        };
        let Some(cursor) = cursor else {
            let role = match port {
                Port::Produce => "producer",
                Port::Consume => "a consumer",
            };
            return Err(ValidateError::invalid(
                what,
                format!("{} is not the {role} of @{}", tile_name(tile), f.name),
            ));
        };
        if self.ports.local(fi, port).is_none() {
            self.ports.ports.push(FifoEnd {
                fifo: fi,
                port,
                cursor,
            });
        }
        Ok(())
    }
}

impl CoreVisitor for PortNumbering<'_> {
    type Error = ValidateError;

    fn visit_loop(&mut self, _count: u64, body: &[super::CoreStmt]) -> Result<(), Self::Error> {
        let depth = self.scope.len();
        walk(self, body)?;
        // Bindings made inside a loop body do not outlive it.
        self.scope.truncate(depth);
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), Self::Error> {
        let FifoUse { fifo, port, count } = u;
        let what = format!(
            "{}: aie.objectfifo.acquire @{fifo}({port:?}, {count})",
            self.op
        );
        self.port(&what, fifo, port)?;
        if count == 0 {
            return Err(ValidateError::invalid(what, "acquires nothing"));
        }
        self.scope.push((binding.to_string(), count));
        Ok(())
    }

    fn visit_release(&mut self, u: FifoUse) -> Result<(), Self::Error> {
        let FifoUse { fifo, port, count } = u;
        let what = format!(
            "{}: aie.objectfifo.release @{fifo}({port:?}, {count})",
            self.op
        );
        self.port(&what, fifo, port)
    }

    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), Self::Error> {
        for a in args {
            let message = match self.scope.iter().rev().find(|(b, _)| *b == a.binding) {
                Some((_, n)) if a.index < *n => continue,
                Some((_, n)) => format!(
                    "kernel `{}` uses `{}`[{}] but only {n} buffers were acquired",
                    kernel.name, a.binding, a.index
                ),
                None => format!(
                    "kernel `{}` uses unknown binding `{}`",
                    kernel.name, a.binding
                ),
            };
            return Err(ValidateError::invalid(&self.op, message));
        }
        Ok(())
    }
}
