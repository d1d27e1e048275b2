//! [`DesignInfo`]: the facts [`super::validate()`] derives from a [`Design`] on a device
//! model, computed once and read by lowering, the simulator's wiring, the resource checks and
//! the design describer (naga's `Validator::validate -> ModuleInfo` is the model).
//!
//! Indices (`fifo`, `link`, `dma`) are positions in the design's own vectors, so the info is
//! only meaningful next to the design it was computed from.

use std::collections::{BTreeMap, HashMap};

use super::{Design, Port, TileId};
use crate::device::{DeviceModel, TileResources};

/// Everything validation found out about a design.
#[derive(Debug, Clone)]
pub struct DesignInfo {
    /// The device model the design was validated against.
    pub device: DeviceModel,
    /// Object FIFO name -> index into `Design::fifos`.
    pub fifo_index: HashMap<String, usize>,
    /// Per FIFO (in `Design::fifos` order): how its producer and consumer ends are numbered.
    pub fifos: Vec<FifoEnds>,
    /// Per link (in `Design::links` order): its memtile and the copies its channels make.
    pub links: Vec<LinkInfo>,
    /// Per worker (in `Design::workers` order): the FIFO ends its program uses.
    pub workers: Vec<WorkerPorts>,
    /// Shim DMA channels: one per FIFO end the runtime sequence moves data through, in order of
    /// first use.
    pub shim_dmas: Vec<ShimDma>,
    /// Per runtime-sequence op (in `RuntimeSequence::ops` order): its channel and, for a
    /// transfer, its buffer descriptor.
    pub sequence: Vec<SeqStep>,
    /// What each tile that holds anything spends of its memory, locks, BDs and channels.
    pub tiles: BTreeMap<TileId, TileUsage>,
}

/// One end of an object FIFO: the producer side or one consumer cursor. A memtile split
/// reads its source through one cursor per destination, a join writes its destination through
/// one producer cursor per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FifoEnd {
    pub fifo: usize,
    pub port: Port,
    pub cursor: usize,
}

/// The consumer cursors one consumer tile holds: `count` of them from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerCursors {
    pub tile: TileId,
    pub first: usize,
    pub count: usize,
}

/// How a FIFO's ends are numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoEnds {
    /// 1, or the number of sources when a join writes this FIFO.
    pub producer_cursors: usize,
    /// Per consumer tile, in `ObjectFifo::consumers` order.
    pub consumers: Vec<ConsumerCursors>,
}

impl FifoEnds {
    pub fn consumer_cursors(&self) -> usize {
        self.consumers.iter().map(|c| c.count).sum()
    }

    /// The `channel`-th consumer cursor of `tile`, if `tile` consumes this FIFO.
    pub fn consumer_cursor(&self, tile: TileId, channel: usize) -> Option<usize> {
        self.consumers
            .iter()
            .find(|c| c.tile == tile)
            .map(|c| c.first + channel)
    }
}

/// What a memtile link does with its FIFOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// One source, one destination.
    Forward,
    /// One source, several destinations, each a slice of the source buffer.
    Split,
    /// Several sources, one destination, each filling a slice of it.
    Join,
}

/// One memtile DMA channel of a link: copies `len` elements of each `src` buffer, from
/// `src_offset`, into each `dst` buffer at `dst_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkMove {
    pub src: FifoEnd,
    pub dst: FifoEnd,
    pub src_offset: usize,
    pub dst_offset: usize,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The memtile that consumes every source and produces every destination.
    pub tile: TileId,
    pub kind: LinkKind,
    pub moves: Vec<LinkMove>,
}

/// A worker's FIFO ends, numbered in order of first use: code refers to them by this local
/// number, so identical programs on different tiles compile to one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPorts {
    pub tile: TileId,
    pub ports: Vec<FifoEnd>,
}

impl WorkerPorts {
    /// The local number of the worker's `port` end of FIFO `fifo`.
    pub fn local(&self, fifo: usize, port: Port) -> Option<usize> {
        self.ports
            .iter()
            .position(|e| e.fifo == fifo && e.port == port)
    }
}

/// A shim DMA channel: the host side of one FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimDma {
    pub tile: TileId,
    /// `Port::Produce` for a fill (host -> array), `Port::Consume` for a drain.
    pub end: FifoEnd,
}

/// A runtime-sequence op with its resources assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStep {
    /// `dma_memcpy_nd` on shim channel `dma` with buffer descriptor `bd`; `issue_token` when
    /// the host later waits on it.
    Transfer {
        dma: usize,
        bd: u32,
        issue_token: bool,
    },
    /// `dma_wait` for everything issued on channel `dma`.
    Wait { dma: usize },
}

/// What a piece of tile memory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryItem {
    /// `depth` buffers of one FIFO end.
    Fifo { fifo: usize },
    /// The buffers a memtile link shares between its sides: the larger side's FIFOs, whose
    /// buffers the other side's FIFOs alias.
    Link { link: usize, fifos: Vec<usize> },
    /// The core's stack.
    Stack,
    /// `memref.global` constants of the kernels the core runs (lookup tables).
    ConstantTables,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUse {
    pub item: MemoryItem,
    pub bytes: usize,
}

/// One tile's resource use, as mlir-aie's object-FIFO lowering spends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TileUsage {
    pub memory: Vec<MemoryUse>,
    pub locks: u32,
    pub bds: u32,
    /// Incoming DMA channels (stream to memory).
    pub s2mm: u32,
    /// Outgoing DMA channels (memory to stream).
    pub mm2s: u32,
}

impl TileUsage {
    pub fn memory_bytes(&self) -> usize {
        self.memory.iter().map(|m| m.bytes).sum()
    }

    /// Bytes of FIFO buffers (link buffers included).
    pub fn fifo_bytes(&self) -> usize {
        self.bytes_of(|i| matches!(i, MemoryItem::Fifo { .. } | MemoryItem::Link { .. }))
    }

    pub fn stack_bytes(&self) -> usize {
        self.bytes_of(|i| *i == MemoryItem::Stack)
    }

    pub fn table_bytes(&self) -> usize {
        self.bytes_of(|i| *i == MemoryItem::ConstantTables)
    }

    fn bytes_of(&self, keep: impl Fn(&MemoryItem) -> bool) -> usize {
        self.memory
            .iter()
            .filter(|m| keep(&m.item))
            .map(|m| m.bytes)
            .sum()
    }
}

/// The kinds of tile an NPU column has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    Shim,
    Memtile,
    Core,
}

impl TileKind {
    pub const fn word(self) -> &'static str {
        match self {
            TileKind::Shim => "shim",
            TileKind::Memtile => "memtile",
            TileKind::Core => "core",
        }
    }
}

/// Which kind `tile` is on `device`.
pub fn tile_kind(device: &DeviceModel, tile: TileId) -> TileKind {
    if tile.row == device.shim_row {
        TileKind::Shim
    } else if tile.row == device.memtile_row {
        TileKind::Memtile
    } else {
        TileKind::Core
    }
}

impl DesignInfo {
    pub fn tile_kind(&self, tile: TileId) -> TileKind {
        tile_kind(&self.device, tile)
    }

    /// The resources the device gives a tile of `tile`'s kind.
    pub fn capacity(&self, tile: TileId) -> &TileResources {
        match self.tile_kind(tile) {
            TileKind::Shim => &self.device.shim,
            TileKind::Memtile => &self.device.memtile,
            TileKind::Core => &self.device.core,
        }
    }

    /// Describes a memory item in words, e.g. `@in (2 x 4096 B)`.
    pub fn memory_item_text(&self, design: &Design, item: &MemoryItem) -> String {
        let fifo = |i: usize| {
            let f = &design.fifos[i];
            format!("@{} ({} x {} B)", f.name, f.depth, f.ty.bytes())
        };
        match item {
            MemoryItem::Fifo { fifo: i } => fifo(*i),
            MemoryItem::Link { link, fifos } => {
                let l = &design.links[*link];
                let held: Vec<String> = fifos.iter().map(|&i| fifo(i)).collect();
                format!(
                    "link [{}] -> [{}] holding {}",
                    l.srcs.join(", "),
                    l.dsts.join(", "),
                    held.join(", ")
                )
            }
            MemoryItem::Stack => "stack".to_string(),
            MemoryItem::ConstantTables => "constant tables".to_string(),
        }
    }
}
