//! The shared state every actor (core, link mover, shim DMA, runtime sequence) blocks on: FIFO
//! counters, shim DMA queues, statuses for the deadlock check, and the FIFO buffers.
//!
//! Actors are coroutines on one thread ([`super::sched`]). An actor that must wait records
//! what it waits for and suspends; the scheduler resumes it once that condition holds. Before
//! suspending it checks whether *any* actor could still move (running, or blocked on a
//! condition that now holds). If none can, that is a deadlock, reported with each actor's wait
//! and holdings. Waiting is bounded by the wall-clock deadline.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::fifo::{FifoState, Side};
use super::sched::ActorYielder;
use super::wiring::{PortRef, Wiring};
use super::SimError;
use crate::design::TensorAccessPattern;

/// Why an actor stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The simulation failed (deadlock, timeout, protocol error); the error is recorded.
    Aborted,
    /// The simulation finished; background movers exit.
    Done,
}

#[derive(Debug, Clone)]
pub(crate) enum Wait {
    Acquire {
        port: PortRef,
        want: u64,
    },
    /// A shim DMA channel with an empty queue.
    NextTask {
        dma: usize,
    },
    /// `dma_wait`: every transfer issued on the channel so far has completed.
    DmaDone {
        dma: usize,
        issued: u64,
    },
    /// The end of the runtime sequence: every worker has returned.
    Workers,
}

#[derive(Debug, Clone)]
pub(crate) enum Status {
    Running,
    Blocked(Wait),
    Finished,
}

#[derive(Debug)]
pub(crate) struct ActorInfo {
    pub name: String,
    /// The FIFO ends it may hold, for the report.
    pub ports: Vec<PortRef>,
}

#[derive(Debug, Default)]
pub(crate) struct DmaQueue {
    pub tasks: VecDeque<(usize, TensorAccessPattern)>,
    pub issued: u64,
    pub completed: u64,
}

pub(crate) struct State {
    pub fifos: Vec<FifoState>,
    pub status: Vec<Status>,
    pub dmas: Vec<DmaQueue>,
    pub error: Option<SimError>,
    pub done: bool,
}

/// Backing memory of one FIFO: `depth` slots of the buffer size, 8-byte aligned.
pub(crate) struct FifoMemory {
    words: Box<[u64]>,
    slot_bytes: usize,
}

pub(crate) struct Shared<'h> {
    pub wiring: Arc<Wiring>,
    pub actors: Vec<ActorInfo>,
    pub workers: usize,
    pub state: Mutex<State>,
    /// Each actor's coroutine handle, set when it starts ([`super::sched`]).
    yielders: Vec<AtomicPtr<ActorYielder>>,
    pub aborted: AtomicBool,
    pub deadline: Instant,
    pub limit: Duration,
    memory: Vec<FifoMemory>,
    /// Host buffers (little-endian bytes), one per runtime-sequence argument.
    pub host: Vec<HostBuffer<'h>>,
}

/// One host buffer during a run: an input only read by DMAs is the caller's memory itself
/// (weights of hundreds of MB are not copied per launch); a buffer the design writes is owned,
/// typed as its argument, and moves out as the run's output.
pub(crate) enum HostBuffer<'h> {
    Read(&'h [u8]),
    Write(Mutex<super::HostData>),
}

// SAFETY: FIFO memory is only written through pointers handed out for buffers the writer has
// acquired; the acquire/release protocol (under `state`'s mutex) orders every access, exactly
// as the hardware locks do. Everything else is behind mutexes or atomics.
unsafe impl Sync for Shared<'_> {}
unsafe impl Send for Shared<'_> {}

impl<'h> Shared<'h> {
    pub fn new(
        wiring: Arc<Wiring>,
        actors: Vec<ActorInfo>,
        workers: usize,
        host: Vec<HostBuffer<'h>>,
        limit: Duration,
    ) -> Self {
        let fifos = wiring
            .fifos
            .iter()
            .map(|f| FifoState::new(f.depth, f.producer_cursors, f.consumer_cursors))
            .collect();
        let memory = wiring
            .fifos
            .iter()
            .map(|f| {
                let slot_bytes = f.ty.bytes();
                let words = (slot_bytes * f.depth as usize).div_ceil(8).max(1);
                FifoMemory {
                    words: vec![0u64; words].into_boxed_slice(),
                    slot_bytes,
                }
            })
            .collect();
        let status = (0..actors.len()).map(|_| Status::Running).collect();
        let dmas = wiring.dmas.iter().map(|_| DmaQueue::default()).collect();
        let yielders = (0..actors.len())
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        Self {
            wiring,
            actors,
            workers,
            state: Mutex::new(State {
                fifos,
                status,
                dmas,
                error: None,
                done: false,
            }),
            yielders,
            aborted: AtomicBool::new(false),
            deadline: Instant::now() + limit,
            limit,
            memory,
            host,
        }
    }

    /// The host buffers after the run, to move the drained ones out.
    pub fn into_host(self) -> Vec<HostBuffer<'h>> {
        self.host
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a mover panicked; the state is still consistent counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pointer to slot `slot` of FIFO `fifo`.
    pub fn slot_ptr(&self, fifo: usize, slot: usize) -> *mut u8 {
        let m = &self.memory[fifo];
        // SAFETY: slot < depth, so the offset stays inside the allocation.
        unsafe { (m.words.as_ptr() as *mut u8).add(slot * m.slot_bytes) }
    }

    /// Records the first error and wakes everyone so they can unwind.
    pub fn fail(&self, st: &mut State, error: SimError) {
        if st.error.is_none() {
            st.error = Some(error);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    fn can_proceed(&self, st: &State, wait: &Wait) -> bool {
        match wait {
            Wait::Acquire { port, want } => {
                st.fifos[port.fifo].can_acquire(port.side, port.cursor, *want)
            }
            Wait::NextTask { dma } => !st.dmas[*dma].tasks.is_empty(),
            Wait::DmaDone { dma, issued } => st.dmas[*dma].completed >= *issued,
            Wait::Workers => st.status[..self.workers]
                .iter()
                .all(|s| matches!(s, Status::Finished)),
        }
    }

    /// Blocks `actor` until `wait` holds (taking the buffers for an acquire).
    pub fn wait_for(&self, actor: usize, wait: Wait) -> Result<(), Stop> {
        let mut st = self.lock();
        loop {
            if st.error.is_some() {
                return Err(Stop::Aborted);
            }
            if st.done {
                return Err(Stop::Done);
            }
            let ready = match &wait {
                Wait::Acquire { port, want } => {
                    st.fifos[port.fifo].try_acquire(port.side, port.cursor, *want)
                }
                other => self.can_proceed(&st, other),
            };
            if ready {
                st.status[actor] = Status::Running;
                return Ok(());
            }
            st.status[actor] = Status::Blocked(wait.clone());
            if self.deadlocked(&st) {
                let report = self.report(&st);
                self.fail(&mut st, SimError::Deadlock { report });
                return Err(Stop::Aborted);
            }
            let now = Instant::now();
            if now >= self.deadline {
                let report = self.report(&st);
                self.fail(
                    &mut st,
                    SimError::Timeout {
                        limit: self.limit,
                        report,
                    },
                );
                return Err(Stop::Aborted);
            }
            drop(st);
            self.suspend(actor);
            st = self.lock();
        }
    }

    /// Releases `n` buffers; releasing more than held is a design error.
    pub fn release(&self, actor: usize, port: PortRef, n: u64) -> Result<(), Stop> {
        let mut st = self.lock_running()?;
        if let Err(held) = st.fifos[port.fifo].release(port.side, port.cursor, n) {
            let what = format!("releases {n} buffer(s)");
            return Err(self.misuse(&mut st, actor, port, &what, held));
        }
        Ok(())
    }

    /// Pointer to the `index`-th held buffer of `port`.
    pub fn held_buffer(&self, actor: usize, port: PortRef, index: u64) -> Result<*mut u8, Stop> {
        let mut st = self.lock_running()?;
        match st.fifos[port.fifo].slot(port.side, port.cursor, index) {
            Some(slot) => Ok(self.slot_ptr(port.fifo, slot)),
            None => {
                let held = st.fifos[port.fifo].cursor(port.side, port.cursor).held;
                let what = format!("accesses buffer {index}");
                Err(self.misuse(&mut st, actor, port, &what, held))
            }
        }
    }

    /// The state, unless the run has already failed.
    fn lock_running(&self) -> Result<MutexGuard<'_, State>, Stop> {
        let st = self.lock();
        if st.error.is_some() {
            return Err(Stop::Aborted);
        }
        Ok(st)
    }

    /// Fails the run with `actor`'s misuse of `port`: it did `what` while holding `held`
    /// buffers.
    fn misuse(&self, st: &mut State, actor: usize, port: PortRef, what: &str, held: u64) -> Stop {
        let error = SimError::Protocol {
            actor: self.actors[actor].name.clone(),
            message: format!(
                "{what} of @{} ({}) but holds {held}",
                self.wiring.fifos[port.fifo].name,
                side_name(port.side)
            ),
        };
        self.fail(st, error);
        Stop::Aborted
    }

    pub fn finish(&self, actor: usize) {
        let mut st = self.lock();
        st.status[actor] = Status::Finished;
    }

    /// Records `actor`'s coroutine handle (called first thing in its coroutine).
    pub fn set_yielder(&self, actor: usize, yielder: &ActorYielder) {
        self.yielders[actor].store(yielder as *const _ as *mut _, Ordering::Relaxed);
    }

    /// Hands the thread back to the scheduler until `actor` may go on.
    fn suspend(&self, actor: usize) {
        let y = self.yielders[actor].load(Ordering::Relaxed);
        assert!(!y.is_null(), "actor {actor} waits outside the scheduler");
        // SAFETY: set by the actor's own coroutine, whose yielder lives as long as it runs;
        // we are on that coroutine's stack now.
        unsafe { (*y).suspend(()) }
    }

    /// Whether the scheduler should resume `actor`: it has not started or is running, its
    /// wait's condition now holds, or the run is over (so it can unwind).
    pub fn may_resume(&self, actor: usize) -> bool {
        let st = self.lock();
        if st.error.is_some() || st.done {
            return true;
        }
        match &st.status[actor] {
            Status::Running => true,
            Status::Finished => false,
            Status::Blocked(w) => self.can_proceed(&st, w),
        }
    }

    /// Records a deadlock found by the scheduler (no live actor could be resumed).
    pub fn fail_deadlocked(&self) {
        let mut st = self.lock();
        let report = self.report(&st);
        self.fail(&mut st, SimError::Deadlock { report });
    }

    /// Records that `actor` panicked, so the others stop.
    pub fn fail_with_panic(&self, actor: usize) {
        let mut st = self.lock();
        let error = SimError::Protocol {
            actor: self.actors[actor].name.clone(),
            message: "panicked".into(),
        };
        self.fail(&mut st, error);
        st.status[actor] = Status::Finished;
    }

    /// Nobody runs and no blocked actor's condition holds: nothing can ever change again.
    fn deadlocked(&self, st: &State) -> bool {
        if st.done {
            return false;
        }
        st.status.iter().all(|s| match s {
            Status::Running => false,
            Status::Finished => true,
            Status::Blocked(w) => !self.can_proceed(st, w),
        })
    }

    /// One line per actor: what it waits for and which buffers it holds.
    pub fn report(&self, st: &State) -> String {
        let mut out = String::new();
        for (i, actor) in self.actors.iter().enumerate() {
            let what = match &st.status[i] {
                Status::Finished => "finished".to_string(),
                Status::Running => "running".to_string(),
                Status::Blocked(Wait::Acquire { port, want }) => {
                    let f = &st.fifos[port.fifo];
                    let held = f.cursor(port.side, port.cursor).held;
                    format!(
                        "waits to acquire {want} buffer(s) of @{} ({}), holds {held}; @{} has depth {}, {} filled",
                        self.wiring.fifos[port.fifo].name,
                        side_name(port.side),
                        self.wiring.fifos[port.fifo].name,
                        f.depth,
                        f.occupancy()
                    )
                }
                Status::Blocked(Wait::NextTask { .. }) => "idle (no transfer queued)".to_string(),
                Status::Blocked(Wait::DmaDone { dma, .. }) => {
                    format!("waits in dma_wait for {}", self.wiring.dmas[*dma].name)
                }
                Status::Blocked(Wait::Workers) => "waits for the workers to finish".to_string(),
            };
            let _ = write!(out, "  {}: {what}", actor.name);
            let holdings: Vec<String> = actor
                .ports
                .iter()
                .filter_map(|p| {
                    let held = st.fifos[p.fifo].cursor(p.side, p.cursor).held;
                    (held > 0).then(|| {
                        format!(
                            "@{} ({}) x{held}",
                            self.wiring.fifos[p.fifo].name,
                            side_name(p.side)
                        )
                    })
                })
                .collect();
            if !holdings.is_empty() {
                let _ = write!(out, "; holding {}", holdings.join(", "));
            }
            out.push('\n');
        }
        out
    }
}

pub(crate) fn side_name(side: Side) -> &'static str {
    match side {
        Side::Produce => "Produce",
        Side::Consume => "Consume",
    }
}
