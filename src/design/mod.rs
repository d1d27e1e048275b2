//! The DSL: what an op builds before it becomes MLIR. A [`Design`] is plain data (tiles,
//! object FIFOs, workers, a runtime sequence) plus kernel bodies, which are MLIR emitters in
//! upstream dialects (scf/arith/memref/vector) so that aie-opt/Peano and the host simulator
//! run the very same code.
//!
//! Conventions follow mlir-aie: rows are shim 0, memtile 1, cores 2..; a FIFO has one producer
//! and one or more consumers; a runtime-sequence access pattern has up to 4 sizes/strides,
//! highest dimension first, in elements of the host buffer.

pub mod builder;
pub mod info;
pub mod validate;
pub mod visit;
pub mod work;

use std::sync::Arc;

pub use builder::{Acquired, Fifo, HostArg, Program, Runtime, WorkerBody};

use melior::{
    ir::{Block, Location, Value},
    Context,
};

/// A tile of the array, `aie.tile(col, row)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub col: u32,
    pub row: u32,
}

impl TileId {
    pub const fn new(col: u32, row: u32) -> Self {
        Self { col, row }
    }
}

/// Element types the designs move and compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    I8,
    I16,
    I32,
    Bf16,
    F32,
}

impl ElemType {
    pub const fn bytes(self) -> usize {
        match self {
            ElemType::I8 => 1,
            ElemType::I16 | ElemType::Bf16 => 2,
            ElemType::I32 | ElemType::F32 => 4,
        }
    }

    /// MLIR spelling (`i8`, `bf16`, ...).
    pub const fn mlir(self) -> &'static str {
        match self {
            ElemType::I8 => "i8",
            ElemType::I16 => "i16",
            ElemType::I32 => "i32",
            ElemType::Bf16 => "bf16",
            ElemType::F32 => "f32",
        }
    }
}

/// A statically shaped buffer type, `memref<shape x elem>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BufferType {
    pub shape: Vec<usize>,
    pub elem: ElemType,
}

impl BufferType {
    pub fn new(shape: impl Into<Vec<usize>>, elem: ElemType) -> Self {
        Self {
            shape: shape.into(),
            elem,
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> usize {
        self.numel() * self.elem.bytes()
    }

    /// MLIR spelling, e.g. `memref<64x64xi8>`.
    pub fn mlir(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        format!("memref<{}x{}>", dims.join("x"), self.elem.mlir())
    }
}

/// `aie.objectfifo @name(%producer, {%consumers...}, depth)`: a bounded queue of `depth`
/// buffers of `ty`, with Produce/Consume acquire/release semantics.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFifo {
    pub name: String,
    pub producer: TileId,
    pub consumers: Vec<TileId>,
    pub depth: u32,
    pub ty: BufferType,
}

/// `aie.objectfifo.link`: data forwarded through a memtile. With one source and several
/// destinations it is a split (each destination gets the slice at its offset); with several
/// sources and one destination, a join. Offsets are in elements of the memtile buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct FifoLink {
    pub srcs: Vec<String>,
    pub dsts: Vec<String>,
    pub src_offsets: Vec<usize>,
    pub dst_offsets: Vec<usize>,
}

/// Which side of a FIFO a worker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    Produce,
    Consume,
}

/// One statement of a worker's control program. Kernels compute on acquired buffers; the
/// program around them (loops, acquire, release) is what sequences the FIFOs.
#[derive(Clone)]
pub enum CoreStmt {
    /// `scf.for` with a constant trip count.
    Loop { count: u64, body: Vec<CoreStmt> },
    /// Acquire `count` buffers; they are referred to later as `(binding, index)`.
    Acquire {
        fifo: String,
        port: Port,
        count: u32,
        binding: String,
    },
    Release {
        fifo: String,
        port: Port,
        count: u32,
    },
    /// Run a kernel body on acquired buffers, in argument order.
    Kernel { kernel: Kernel, args: Vec<BufArg> },
}

/// An acquired buffer: the `index`-th element of the acquire named `binding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufArg {
    pub binding: String,
    pub index: u32,
}

impl BufArg {
    /// The first (often only) buffer of the acquire named `binding`.
    pub fn first(binding: &str) -> Self {
        Self {
            binding: binding.into(),
            index: 0,
        }
    }
}

impl CoreStmt {
    /// Acquire one buffer of `fifo`, named `binding` for later kernel arguments.
    pub fn acquire_one(fifo: &str, port: Port, binding: &str) -> Self {
        CoreStmt::Acquire {
            fifo: fifo.into(),
            port,
            count: 1,
            binding: binding.into(),
        }
    }

    /// Release one buffer of `fifo`.
    pub fn release_one(fifo: &str, port: Port) -> Self {
        CoreStmt::Release {
            fifo: fifo.into(),
            port,
            count: 1,
        }
    }
}

/// What a kernel emitter gets: the context, where to put module-level constants (lookup
/// tables as `memref.global`), and a location.
pub struct KernelCtx<'c, 'a> {
    pub context: &'c Context,
    /// The body of `aie.device`, for `memref.global` constants the kernel needs.
    pub device_block: &'a Block<'c>,
    pub location: Location<'c>,
}

/// Emits the kernel's ops (upstream dialects only) at the end of `block`, computing on the
/// memref `args` (one per [`BufArg`], typed as the FIFO element type).
pub type KernelEmitFn = dyn for<'c, 'a, 'b> Fn(&KernelCtx<'c, 'a>, &Block<'c>, &[Value<'c, 'b>]) -> Result<(), DesignError>
    + Send
    + Sync;

/// A named kernel body.
#[derive(Clone)]
pub struct Kernel {
    pub name: String,
    pub emit: Arc<KernelEmitFn>,
    /// Bytes of the `memref.global` constants (lookup tables) the body emits: they live in the
    /// data memory of every core that runs it, so validation counts them (0 for most kernels).
    pub const_bytes: usize,
    /// What one call of the body computes, for the performance model ([`crate::perf`]).
    pub work: KernelWork,
}

impl Kernel {
    /// The kernel, declaring what one call computes (see [`KernelWork`]).
    pub fn with_work(mut self, work: KernelWork) -> Self {
        self.work = work;
        self
    }

    /// The kernel, declaring that its body emits `bytes` of constant tables.
    pub fn with_const_bytes(mut self, bytes: usize) -> Self {
        self.const_bytes = bytes;
        self
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernel({})", self.name)
    }
}

impl std::fmt::Debug for CoreStmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreStmt::Loop { count, body } => f
                .debug_struct("Loop")
                .field("count", count)
                .field("body", body)
                .finish(),
            CoreStmt::Acquire {
                fifo,
                port,
                count,
                binding,
            } => write!(f, "Acquire({fifo}, {port:?}, {count}) as {binding}"),
            CoreStmt::Release { fifo, port, count } => {
                write!(f, "Release({fifo}, {port:?}, {count})")
            }
            CoreStmt::Kernel { kernel, args } => write!(f, "{kernel:?}({args:?})"),
        }
    }
}

/// A compute tile and the program it runs (`aie.core`).
#[derive(Debug, Clone)]
pub struct Worker {
    pub tile: TileId,
    pub program: Vec<CoreStmt>,
    /// Stack reserved on the core, bytes (`aie.core(...) { } {stack_size = N}`).
    pub stack_bytes: usize,
}

/// Up to 4 sizes/strides, highest dimension first, in elements; `aiex.npu.dma_memcpy_nd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorAccessPattern {
    pub offset: usize,
    pub sizes: [usize; 4],
    pub strides: [usize; 4],
}

impl TensorAccessPattern {
    /// A contiguous run of `len` elements starting at `offset`.
    pub fn linear(offset: usize, len: usize) -> Self {
        Self {
            offset,
            sizes: [1, 1, 1, len],
            strides: [0, 0, 0, 1],
        }
    }

    pub fn len(&self) -> usize {
        self.sizes.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A host buffer argument of the runtime sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBuffer {
    pub name: String,
    pub ty: BufferType,
}

/// One step of the runtime sequence, run by the host/shim.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqOp {
    /// Host buffer `arg` → FIFO `fifo` (the shim is its producer).
    Fill {
        fifo: String,
        arg: usize,
        pattern: TensorAccessPattern,
    },
    /// FIFO `fifo` (the shim is its consumer) → host buffer `arg`.
    Drain {
        fifo: String,
        arg: usize,
        pattern: TensorAccessPattern,
    },
    /// `aiex.npu.dma_wait {symbol = @fifo}`.
    Wait { fifo: String },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeSequence {
    pub args: Vec<HostBuffer>,
    pub ops: Vec<SeqOp>,
}

/// Everything an op builds; lowered to one `aie.device`.
#[derive(Debug, Clone)]
pub struct Design {
    pub name: String,
    /// Device name as aie-opt spells it (`npu1`, `npu1_1col`, `npu2`, ...).
    pub device: String,
    pub tiles: Vec<TileId>,
    pub fifos: Vec<ObjectFifo>,
    pub links: Vec<FifoLink>,
    pub workers: Vec<Worker>,
    pub sequence: RuntimeSequence,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum DesignError {
    #[error("design `{design}`: {message}")]
    Invalid { design: String, message: String },
    #[error("kernel `{kernel}`: {message}")]
    Kernel { kernel: String, message: String },
}

pub use info::DesignInfo;
pub use validate::{validate, ValidateError};
pub use work::{KernelWork, MacWork};
