//! The IRON-like builder that makes a [`Design`]: typed handles instead of names, so that a
//! kernel argument can only come from an acquire that exists and a runtime-sequence transfer
//! can only name a FIFO and a host argument of this program.
//!
//! ```ignore
//! let mut p = Program::new("relu", "npu1_1col");
//! let (x_host, y_host) = (p.arg("X", host_ty.clone()), p.arg("Y", host_ty));
//! let (x, y) = (p.fifo("x", chunk.clone(), 2), p.fifo("y", chunk, 2));
//! p.worker(TileId::new(0, 2), |w| {
//!     w.repeat(n, |w| {
//!         let (a, b) = (w.acquire(&x, Port::Consume, 1), w.acquire(&y, Port::Produce, 1));
//!         w.call(&relu, [a.first(), b.first()]);
//!         w.release(a);
//!         w.release(b);
//!     })
//! });
//! p.sequence(|rt| {
//!     rt.fill(&x, &x_host, TensorAccessPattern::linear(0, len));
//!     rt.drain(&y, &y_host, TensorAccessPattern::linear(0, len));
//!     rt.wait(&y);
//! });
//! let design = p.build()?;
//! ```
//!
//! A FIFO's ends come from its uses, as in IRON: a worker acquiring it to produce is its
//! producer, one acquiring it to consume is a consumer; a `split`/`join`/`forward` puts the
//! memtile at the ends it links; a runtime `fill` makes the shim its producer and a `drain`
//! its consumer (the shim of the column the other end sits in). Tiles are every tile used,
//! in (column, row) order.

use std::collections::BTreeSet;

use super::{
    BufArg, BufferType, CoreStmt, Design, DesignError, FifoLink, HostBuffer, Kernel, ObjectFifo,
    Port, RuntimeSequence, SeqOp, TensorAccessPattern, TileId, Worker,
};

/// Stack a worker reserves unless it says otherwise, bytes.
pub const DEFAULT_STACK_BYTES: usize = 1024;

/// An object FIFO of the program being built.
#[derive(Debug, Clone)]
pub struct Fifo {
    index: usize,
    name: String,
    ty: BufferType,
}

impl Fifo {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type of one of its buffers.
    pub fn ty(&self) -> &BufferType {
        &self.ty
    }
}

/// A host buffer argument of the runtime sequence.
#[derive(Debug, Clone)]
pub struct HostArg {
    index: usize,
    ty: BufferType,
}

impl HostArg {
    pub fn ty(&self) -> &BufferType {
        &self.ty
    }
}

/// Buffers a worker holds from one acquire; released by value, so they cannot be used after.
#[derive(Debug)]
#[must_use = "acquired buffers must be released"]
pub struct Acquired {
    fifo: String,
    port: Port,
    count: u32,
    binding: String,
}

impl Acquired {
    /// The `index`-th buffer of the acquire.
    pub fn buf(&self, index: u32) -> BufArg {
        assert!(
            index < self.count,
            "buffer {index} of an acquire of {} from `{}`",
            self.count,
            self.fifo
        );
        BufArg {
            binding: self.binding.clone(),
            index,
        }
    }

    /// The first (often only) buffer.
    pub fn first(&self) -> BufArg {
        self.buf(0)
    }
}

/// Where a FIFO end is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Tile(TileId),
    /// The shim of the column of the FIFO's other end (resolved at `build`).
    Shim,
}

#[derive(Debug)]
struct FifoDecl {
    name: String,
    ty: BufferType,
    depth: u32,
    producer: Option<End>,
    consumers: Vec<End>,
}

/// A program under construction; [`Program::build`] checks it and returns the [`Design`].
#[derive(Debug)]
pub struct Program {
    name: String,
    device: String,
    fifos: Vec<FifoDecl>,
    links: Vec<FifoLink>,
    workers: Vec<Worker>,
    args: Vec<HostBuffer>,
    ops: Vec<SeqOp>,
    errors: Vec<String>,
}

impl Program {
    pub fn new(name: impl Into<String>, device: impl Into<String>) -> Self {
        Program {
            name: name.into(),
            device: device.into(),
            fifos: Vec::new(),
            links: Vec::new(),
            workers: Vec::new(),
            args: Vec::new(),
            ops: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Declares the next host buffer argument of the runtime sequence.
    pub fn arg(&mut self, name: impl Into<String>, ty: BufferType) -> HostArg {
        self.args.push(HostBuffer {
            name: name.into(),
            ty: ty.clone(),
        });
        HostArg {
            index: self.args.len() - 1,
            ty,
        }
    }

    /// Declares an object FIFO of `depth` buffers of `ty`; its ends come from its uses.
    pub fn fifo(&mut self, name: impl Into<String>, ty: BufferType, depth: u32) -> Fifo {
        let name = name.into();
        self.fifos.push(FifoDecl {
            name: name.clone(),
            ty: ty.clone(),
            depth,
            producer: None,
            consumers: Vec::new(),
        });
        Fifo {
            index: self.fifos.len() - 1,
            name,
            ty,
        }
    }

    /// A depth-1 FIFO that the core `tile` both produces and consumes: state the core keeps
    /// across kernel calls (acquired once on the produce side and held).
    pub fn state(&mut self, name: impl Into<String>, ty: BufferType, tile: TileId) -> Fifo {
        let fifo = self.fifo(name, ty, 1);
        self.set_producer(&fifo, End::Tile(tile));
        self.add_consumer(&fifo, End::Tile(tile));
        fifo
    }

    fn set_producer(&mut self, fifo: &Fifo, end: End) {
        let decl = &mut self.fifos[fifo.index];
        match decl.producer {
            Some(p) if p != end => self.errors.push(format!(
                "object FIFO `{}` has two producers ({p:?} and {end:?})",
                decl.name
            )),
            _ => decl.producer = Some(end),
        }
    }

    /// `end` (a worker's tile or the shim) as the `port` end of each FIFO it uses.
    fn attach(&mut self, ends: Vec<(Fifo, Port)>, end: End) {
        for (fifo, port) in ends {
            match port {
                Port::Produce => self.set_producer(&fifo, end),
                Port::Consume => self.add_consumer(&fifo, end),
            }
        }
    }

    fn add_consumer(&mut self, fifo: &Fifo, end: End) {
        let decl = &mut self.fifos[fifo.index];
        if !decl.consumers.contains(&end) {
            decl.consumers.push(end);
        }
    }

    fn add_link(&mut self, srcs: &[Fifo], via: TileId, dsts: &[Fifo], offsets: Offsets) {
        for s in srcs {
            self.add_consumer(s, End::Tile(via));
        }
        for d in dsts {
            self.set_producer(d, End::Tile(via));
        }
        let names = |fs: &[Fifo]| fs.iter().map(|f| f.name.clone()).collect();
        let (src_offsets, dst_offsets) = match offsets {
            Offsets::Src(o) => (o, vec![]),
            Offsets::Dst(o) => (vec![], o),
        };
        self.links.push(FifoLink {
            srcs: names(srcs),
            dsts: names(dsts),
            src_offsets,
            dst_offsets,
        });
    }

    /// `aie.objectfifo.link` one to one through the memtile `via`.
    pub fn forward(&mut self, src: &Fifo, via: TileId, dst: &Fifo) {
        self.add_link(
            std::slice::from_ref(src),
            via,
            std::slice::from_ref(dst),
            Offsets::Dst(vec![]),
        );
    }

    /// A split through the memtile `via`: part `i` gets the slice of `src` at `offsets[i]`
    /// (elements of `src`'s buffer).
    pub fn split(&mut self, src: &Fifo, via: TileId, parts: &[Fifo], offsets: Vec<usize>) {
        self.add_link(std::slice::from_ref(src), via, parts, Offsets::Dst(offsets));
    }

    /// A join through the memtile `via`: part `i` fills the slice of `dst` at `offsets[i]`.
    pub fn join(&mut self, parts: &[Fifo], via: TileId, dst: &Fifo, offsets: Vec<usize>) {
        self.add_link(parts, via, std::slice::from_ref(dst), Offsets::Src(offsets));
    }

    /// A worker on `tile` whose program `body` writes (stack [`DEFAULT_STACK_BYTES`] unless
    /// the body sets it).
    pub fn worker(&mut self, tile: TileId, body: impl FnOnce(&mut WorkerBody)) {
        let mut w = WorkerBody {
            stmts: Vec::new(),
            ends: Vec::new(),
            stack_bytes: DEFAULT_STACK_BYTES,
        };
        body(&mut w);
        self.attach(std::mem::take(&mut w.ends), End::Tile(tile));
        self.workers.push(Worker {
            tile,
            program: w.stmts,
            stack_bytes: w.stack_bytes,
        });
    }

    /// Appends to the runtime sequence.
    pub fn sequence(&mut self, body: impl FnOnce(&mut Runtime)) {
        let mut rt = Runtime {
            ops: std::mem::take(&mut self.ops),
            ends: Vec::new(),
        };
        body(&mut rt);
        self.ops = rt.ops;
        self.attach(rt.ends, End::Shim);
    }

    /// Resolves the FIFO ends and returns the design; a FIFO without both ends is an error.
    pub fn build(self) -> Result<Design, DesignError> {
        let invalid = |message: String| DesignError::Invalid {
            design: self.name.clone(),
            message,
        };
        if let Some(e) = self.errors.first() {
            return Err(invalid(e.clone()));
        }
        let mut fifos = Vec::with_capacity(self.fifos.len());
        for f in &self.fifos {
            let (Some(producer), false) = (f.producer, f.consumers.is_empty()) else {
                return Err(invalid(format!(
                    "object FIFO `{}` needs a producer and a consumer (has {:?} and {:?})",
                    f.name, f.producer, f.consumers
                )));
            };
            let other = |ends: &[End]| ends.iter().find_map(|e| tile_of(*e));
            let shim_for = |other: Option<TileId>| {
                other
                    .map(|t| TileId::new(t.col, 0))
                    .ok_or_else(|| invalid(format!("object FIFO `{}` runs shim to shim", f.name)))
            };
            let producer = match producer {
                End::Tile(t) => t,
                End::Shim => shim_for(other(&f.consumers))?,
            };
            let consumers = f
                .consumers
                .iter()
                .map(|&e| match e {
                    End::Tile(t) => Ok(t),
                    End::Shim => shim_for(Some(producer)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            fifos.push(ObjectFifo {
                name: f.name.clone(),
                producer,
                consumers,
                depth: f.depth,
                ty: f.ty.clone(),
            });
        }
        let mut tiles: BTreeSet<TileId> = self.workers.iter().map(|w| w.tile).collect();
        for f in &fifos {
            tiles.insert(f.producer);
            tiles.extend(f.consumers.iter().copied());
        }
        Ok(Design {
            name: self.name,
            device: self.device,
            tiles: tiles.into_iter().collect(),
            fifos,
            links: self.links,
            workers: self.workers,
            sequence: RuntimeSequence {
                args: self.args,
                ops: self.ops,
            },
        })
    }
}

fn tile_of(end: End) -> Option<TileId> {
    match end {
        End::Tile(t) => Some(t),
        End::Shim => None,
    }
}

enum Offsets {
    Src(Vec<usize>),
    Dst(Vec<usize>),
}

/// The program of one worker: acquires, releases, kernel calls and loops.
pub struct WorkerBody {
    stmts: Vec<CoreStmt>,
    ends: Vec<(Fifo, Port)>,
    stack_bytes: usize,
}

impl WorkerBody {
    /// Sets the stack the core reserves, bytes.
    pub fn stack_bytes(&mut self, bytes: usize) {
        self.stack_bytes = bytes;
    }

    /// Acquires `count` buffers of `fifo` on `port`, bound under the FIFO's name.
    pub fn acquire(&mut self, fifo: &Fifo, port: Port, count: u32) -> Acquired {
        self.acquire_as(fifo.name.clone(), fifo, port, count)
    }

    /// [`WorkerBody::acquire`] with the binding named `binding` (as describers print it).
    pub fn acquire_as(
        &mut self,
        binding: impl Into<String>,
        fifo: &Fifo,
        port: Port,
        count: u32,
    ) -> Acquired {
        let binding = binding.into();
        if !self
            .ends
            .iter()
            .any(|(f, p)| f.index == fifo.index && *p == port)
        {
            self.ends.push((fifo.clone(), port));
        }
        self.stmts.push(CoreStmt::Acquire {
            fifo: fifo.name.clone(),
            port,
            count,
            binding: binding.clone(),
        });
        Acquired {
            fifo: fifo.name.clone(),
            port,
            count,
            binding,
        }
    }

    /// Releases what `acquired` holds.
    pub fn release(&mut self, acquired: Acquired) {
        self.stmts.push(CoreStmt::Release {
            fifo: acquired.fifo,
            port: acquired.port,
            count: acquired.count,
        });
    }

    /// Runs `kernel` on acquired buffers, in argument order.
    pub fn call(&mut self, kernel: &Kernel, args: impl IntoIterator<Item = BufArg>) {
        self.stmts.push(CoreStmt::Kernel {
            kernel: kernel.clone(),
            args: args.into_iter().collect(),
        });
    }

    /// `scf.for` over `count` iterations of what `body` writes.
    pub fn repeat(&mut self, count: u64, body: impl FnOnce(&mut WorkerBody)) {
        let outer = std::mem::take(&mut self.stmts);
        body(self);
        let inner = std::mem::replace(&mut self.stmts, outer);
        self.stmts.push(CoreStmt::Loop { count, body: inner });
    }
}

/// The runtime sequence under construction (`aie.runtime_sequence`).
pub struct Runtime {
    ops: Vec<SeqOp>,
    /// The FIFO ends the shim takes: a fill's producer, a drain's consumer.
    ends: Vec<(Fifo, Port)>,
}

impl Runtime {
    /// Host buffer `arg`, read through `tap`, into `fifo` (the shim produces it).
    pub fn fill(&mut self, fifo: &Fifo, arg: &HostArg, tap: TensorAccessPattern) {
        self.transfer(fifo, Port::Produce, arg, tap);
    }

    /// `fifo` into host buffer `arg`, written through `tap` (the shim consumes it).
    pub fn drain(&mut self, fifo: &Fifo, arg: &HostArg, tap: TensorAccessPattern) {
        self.transfer(fifo, Port::Consume, arg, tap);
    }

    /// A shim DMA between host buffer `arg` and `fifo`, whose `shim` end the shim is.
    fn transfer(&mut self, fifo: &Fifo, shim: Port, arg: &HostArg, pattern: TensorAccessPattern) {
        let (name, arg) = (fifo.name.clone(), arg.index);
        self.ops.push(match shim {
            Port::Produce => SeqOp::Fill {
                fifo: name,
                arg,
                pattern,
            },
            Port::Consume => SeqOp::Drain {
                fifo: name,
                arg,
                pattern,
            },
        });
        self.ends.push((fifo.clone(), shim));
    }

    /// `aiex.npu.dma_wait` on `fifo`'s transfers.
    pub fn wait(&mut self, fifo: &Fifo) {
        self.ops.push(SeqOp::Wait {
            fifo: fifo.name.clone(),
        });
    }

    /// Waits on every FIFO with a transfer issued since the last waits (fills first, then
    /// drains), so that shim buffer descriptors are released: a shim tile has 16, and a
    /// transfer holds one until it is awaited.
    pub fn settle(&mut self) {
        crate::ops::settle(&mut self.ops);
    }
}
