//! The host simulator: runs a compiled [`Design`] on the CPU with the hardware's semantics.
//!
//! - **Cores** are the `aie.core` bodies of the compiler's own MLIR-AIE module
//!   ([`crate::mlir::lower()`]), cut out into host functions (`from_aie`) whose AIE ops
//!   (acquire, subview access, release) call host hooks (`hooks`) implementing the
//!   object-FIFO locks; everything else (loops, kernels) is the MLIR that goes to aie-opt,
//!   lowered to LLVM and JIT-compiled (`jit`); each worker is a coroutine (`sched`). A design the compiler's
//!   verifier rejects is still simulated, from the Design's programs and the same kernel
//!   emitters, so its runtime behaviour (e.g. a deadlock) can be shown; [`SimRun::core_source`]
//!   says which path ran.
//! - **Object FIFOs** keep their depth and Produce/Consume semantics (`fifo`), including
//!   broadcast, and memtile links (forward, split, join at their offsets) moved by one
//!   actor per memtile DMA channel (`actors`).
//! - **The runtime sequence** issues shim DMA transfers with their 4-D access patterns
//!   (`pattern`); each shim channel is an actor; `dma_wait` waits for completion.
//! - **Actors** (cores, channels, the sequence) are coroutines that one host thread runs in
//!   turn (`sched`): a blocked actor is resumed only when its FIFO or DMA condition holds.
//! - **Checks**: before running, tile memory budgets, access-pattern bounds and the design's
//!   consistency (`wiring`); while running, deadlock (every actor blocked; the report lists what
//!   each waits on and holds) and a wall-clock limit.
//!
//! Modelling choice: a FIFO is one ring of `depth` buffers shared by producer and consumers
//! (hardware keeps `depth` buffers at each end of a DMA-connected FIFO, so it can hold up to
//! twice as many in flight); the simulator is therefore at least as strict about depth.

mod actors;
mod data;
mod engine;
mod fifo;
mod from_aie;
mod from_insts;
mod hooks;
pub mod inputs;
mod jit;
mod pattern;
mod sched;
pub mod verify;
mod wiring;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use data::HostData;
pub use jit::CoreSource;

use crate::design::{Design, DesignError, SeqOp};
use engine::{ActorInfo, HostBuffer, Shared};
use hooks::CoreCtx;
use wiring::Wiring;

/// Default wall-clock limit of one simulation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum SimError {
    #[error("design `{design}` cannot be simulated: {message}")]
    Invalid { design: String, message: String },
    #[error("{tile} needs {needed} bytes of data memory but has {available} ({detail})")]
    MemoryBudget {
        tile: String,
        needed: usize,
        available: usize,
        detail: String,
    },
    #[error(
        "{what} is out of bounds: it touches element {index} of {buffer}, which has {len} elements"
    )]
    OutOfBounds {
        what: String,
        buffer: String,
        index: usize,
        len: usize,
    },
    #[error("input {index}: {message}")]
    Input { index: usize, message: String },
    /// An instruction stream the simulator cannot execute, located at its op.
    #[error("instruction stream op #{op} ({name}): {message}")]
    Insts {
        op: usize,
        name: &'static str,
        message: String,
    },
    #[error("host JIT: {0}")]
    Jit(String),
    #[error(transparent)]
    Kernel(DesignError),
    #[error("{actor} {message}")]
    Protocol { actor: String, message: String },
    #[error("deadlock: every worker and DMA is blocked\n{report}")]
    Deadlock { report: String },
    #[error("the simulation exceeded its wall-clock limit of {limit:?}\n{report}")]
    Timeout { limit: Duration, report: String },
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Wall-clock limit of a run (compilation excluded); [`verify::check_spec`] applies it to
    /// the whole check instead (design, inputs, compilation, run and reference).
    pub timeout: Duration,
    /// LLVM optimisation level of the JIT (0-3). Measured on this 2-core machine: -O2 runs the
    /// 512^3 int8 matmul as fast as -O3 (0.27 s vs 0.34 s) and compiles the 16 distinct bodies
    /// of the causal softmax in 2.4 s instead of 7.9 s.
    pub opt_level: usize,
    /// What drives the shim DMAs.
    pub sequence: SequenceSource,
}

/// Where the runtime sequence the simulator executes comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SequenceSource {
    /// The Design's own sequence (transfers and waits as the compiler built them).
    #[default]
    Design,
    /// The instruction stream the compiler lowers from the design ([`crate::npu::instructions`],
    /// the bytes of `insts.bin`), decoded and executed as the NPU firmware would.
    Instructions,
    /// A given instruction stream (e.g. an `insts.bin` from aie-translate), executed likewise.
    Stream(Arc<crate::npu::Stream>),
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            opt_level: 2,
            sequence: SequenceSource::Design,
        }
    }
}

/// Outputs and timings of one run.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// The drained host buffers, in argument order.
    pub outputs: Vec<HostData>,
    pub compile_time: Duration,
    pub run_time: Duration,
    /// Distinct compiled core bodies (identical workers share one).
    pub compiled_cores: usize,
    /// Whether the cores came from the compiler's MLIR-AIE module.
    pub core_source: CoreSource,
}

/// Indices of the runtime-sequence arguments the host fills (inputs) and drains (outputs).
pub fn io_args(design: &Design) -> (Vec<usize>, Vec<usize>) {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for op in &design.sequence.ops {
        match op {
            SeqOp::Fill { arg, .. } if !inputs.contains(arg) => inputs.push(*arg),
            SeqOp::Drain { arg, .. } if !outputs.contains(arg) => outputs.push(*arg),
            _ => {}
        }
    }
    inputs.sort_unstable();
    outputs.sort_unstable();
    (inputs, outputs)
}

/// Runs `design` with `inputs` (one per filled argument, in argument order, see [`io_args`])
/// and returns the drained arguments in argument order.
pub fn run(design: &Design, inputs: Vec<HostData>) -> Result<Vec<HostData>, SimError> {
    Ok(run_with(design, inputs, &SimOptions::default())?.outputs)
}

/// [`run`] with options, returning timings too.
pub fn run_with(
    design: &Design,
    inputs: Vec<HostData>,
    options: &SimOptions,
) -> Result<SimRun, SimError> {
    Prepared::new(design, options)?.run(inputs)
}

/// A design validated, wired and JIT-compiled once, to be run any number of times (the sim
/// backend runs each design of a Whisper forward thousands of times).
pub struct Prepared {
    design: Design,
    wiring: Arc<Wiring>,
    compiled: jit::Compiled,
    compile_time: Duration,
    timeout: Duration,
    input_args: Vec<usize>,
    output_args: Vec<usize>,
    /// The MLIR context the cores were compiled in, kept alive with the engine.
    _context: melior::Context,
}

// SAFETY: after `new`, the context and the execution engine are only kept alive (never used
// again); the compiled cores are plain function pointers that `run` calls from its own
// thread, each core with its own context argument, exactly as a single run does.
unsafe impl Send for Prepared {}
unsafe impl Sync for Prepared {}

impl Prepared {
    pub fn new(design: &Design, options: &SimOptions) -> Result<Self, SimError> {
        let info = crate::design::validate::validate_on_named_device(design)
            .map_err(|e| wiring::from_validate(design, e))?;
        let mut wiring = Wiring::new(design, &info)?;
        let stream = match &options.sequence {
            SequenceSource::Design => None,
            SequenceSource::Instructions => Some(Arc::new(
                crate::npu::instructions(design, &info).map_err(|e| SimError::Invalid {
                    design: design.name.clone(),
                    message: format!("no instruction stream: {e}"),
                })?,
            )),
            SequenceSource::Stream(s) => Some(s.clone()),
        };
        if let Some(stream) = stream {
            wiring.steps = from_insts::steps(&stream, design, &info)?;
        }
        let (input_args, output_args) = io_args(design);
        let started = Instant::now();
        let context = crate::mlir::jit_context();
        let compiled = jit::compile(&context, design, &info, &wiring, options.opt_level.min(3))?;
        Ok(Prepared {
            design: design.clone(),
            wiring: Arc::new(wiring),
            compiled,
            compile_time: started.elapsed(),
            timeout: options.timeout,
            input_args,
            output_args,
            _context: context,
        })
    }

    pub fn design(&self) -> &Design {
        &self.design
    }

    /// Runs the design on `inputs` (one per filled argument, in argument order).
    pub fn run(&self, inputs: Vec<HostData>) -> Result<SimRun, SimError> {
        self.run_ref(&inputs.iter().collect::<Vec<_>>())
    }

    /// [`Prepared::run`] on borrowed inputs: a buffer the design only reads is not copied, so
    /// a caller keeps its weights in one place across thousands of launches.
    pub fn run_ref(&self, inputs: &[&HostData]) -> Result<SimRun, SimError> {
        let design = &self.design;
        let host = host_buffers(design, inputs, &self.input_args, &self.output_args)?;
        let wiring = self.wiring.clone();
        let actors = actor_infos(&wiring);
        let run_started = Instant::now();
        let shared = Shared::new(
            wiring,
            actors,
            self.wiring.workers.len(),
            host,
            self.timeout,
        );
        run_actors(&shared, &self.compiled);
        let run_time = run_started.elapsed();
        if let Some(error) = shared.lock().error.take() {
            return Err(error);
        }
        let mut host: Vec<Option<HostBuffer>> = shared.into_host().into_iter().map(Some).collect();
        let outputs = self
            .output_args
            .iter()
            .map(|&a| match host[a].take() {
                Some(HostBuffer::Write(m)) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
                _ => unreachable!("drained arguments are written buffers, each drained once"),
            })
            .collect();
        Ok(SimRun {
            outputs,
            compile_time: self.compile_time,
            run_time,
            compiled_cores: self.compiled.distinct,
            core_source: self.compiled.source.clone(),
        })
    }
}

/// Every worker (its JIT-compiled core), link channel and shim DMA, and the runtime sequence,
/// as coroutines on this thread ([`sched`]); returns when all have finished or one has failed.
fn run_actors(shared: &Shared, compiled: &jit::Compiled) {
    let workers = shared.wiring.workers.len();
    let movers = shared.wiring.movers.len();
    let dmas = shared.wiring.dmas.len();
    let sequence_actor = shared.actors.len() - 1;
    let contexts: Vec<CoreCtx> = (0..workers)
        .map(|w| CoreCtx {
            shared,
            actor: w,
            ports: shared.wiring.workers[w]
                .ports
                .iter()
                .map(|(p, _)| *p)
                .collect(),
            shapes: shared.wiring.workers[w]
                .ports
                .iter()
                .map(|(_, t)| t.shape.clone())
                .collect(),
        })
        .collect();
    let mut bodies: Vec<sched::Body> = Vec::with_capacity(shared.actors.len());
    for (w, ctx) in contexts.iter().enumerate() {
        let entry = compiled.entries[w];
        let raw = ctx as *const CoreCtx as usize as i64;
        // SAFETY: `entry` is the JIT-compiled `(i64) -> ()` core; `raw` points at its context,
        // alive until the scheduler returns.
        bodies.push(Box::new(move || unsafe { entry(raw) }));
    }
    for m in 0..movers {
        bodies.push(Box::new(move || {
            actors::run_mover(shared, workers + m, &shared.wiring.movers[m])
        }));
    }
    for d in 0..dmas {
        bodies.push(Box::new(move || {
            actors::run_shim_dma(shared, workers + movers + d, d)
        }));
    }
    // A failure is recorded in the shared state; every actor then runs to its end.
    bodies.push(Box::new(move || {
        let _ = actors::run_sequence(shared, sequence_actor);
    }));
    sched::run(shared, bodies);
}

/// The host buffers: an input the design only reads is borrowed; every other argument is an
/// owned buffer, zeroed or holding its input.
fn host_buffers<'h>(
    design: &Design,
    inputs: &[&'h HostData],
    input_args: &[usize],
    output_args: &[usize],
) -> Result<Vec<HostBuffer<'h>>, SimError> {
    if inputs.len() != input_args.len() {
        return Err(SimError::Input {
            index: inputs.len(),
            message: format!(
                "the design reads {} host buffers ({}), got {}",
                input_args.len(),
                input_args
                    .iter()
                    .map(|a| format!("%arg{a}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            ),
        });
    }
    let args = &design.sequence.args;
    let mut host: Vec<Option<HostBuffer<'h>>> = (0..args.len()).map(|_| None).collect();
    for (k, (data, &arg)) in inputs.iter().zip(input_args).enumerate() {
        let want = &args[arg].ty;
        if data.elem() != want.elem || data.len() != want.numel() {
            return Err(SimError::Input {
                index: k,
                message: format!(
                    "%arg{arg} `{}` is {} ({} elements), got {} elements of {}",
                    args[arg].name,
                    want.mlir(),
                    want.numel(),
                    data.len(),
                    data.elem().mlir()
                ),
            });
        }
        let bytes = data.as_le_bytes();
        host[arg] = Some(if output_args.contains(&arg) {
            HostBuffer::Write(Mutex::new((*data).clone()))
        } else {
            HostBuffer::Read(bytes)
        });
    }
    Ok(host
        .into_iter()
        .zip(args)
        .map(|(h, a)| {
            h.unwrap_or_else(|| {
                HostBuffer::Write(Mutex::new(HostData::zeros(a.ty.elem, a.ty.numel())))
            })
        })
        .collect())
}

/// Actors: workers first (the engine relies on it), then link channels, shim DMAs, sequence.
fn actor_infos(wiring: &Wiring) -> Vec<ActorInfo> {
    let mut actors = Vec::new();
    for w in &wiring.workers {
        actors.push(ActorInfo {
            name: format!("worker tile({}, {})", w.tile.col, w.tile.row),
            ports: w.ports.iter().map(|(p, _)| *p).collect(),
        });
    }
    for m in &wiring.movers {
        actors.push(ActorInfo {
            name: m.name.clone(),
            ports: vec![m.src, m.dst],
        });
    }
    for d in &wiring.dmas {
        actors.push(ActorInfo {
            name: d.name.clone(),
            ports: vec![d.port],
        });
    }
    actors.push(ActorInfo {
        name: "runtime sequence".to_string(),
        ports: Vec::new(),
    });
    actors
}
