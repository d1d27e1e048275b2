//! The actors' scheduler: every actor (JIT-compiled core, memtile link channel, shim DMA
//! channel, runtime sequence) is a stackful coroutine, and one host thread runs them in turn.
//!
//! Why not a thread per actor: a design's actors hand buffers to each other thousands of times
//! per launch, and each handoff between OS threads is a futex wake and a context switch (tens
//! of microseconds on a loaded 2-core host, most of a launch's time when it was measured). A
//! coroutine switch is a few register moves. The semantics do not change: an actor still
//! blocks only in [`Shared::wait_for`] on exactly the FIFO/lock conditions the hardware waits
//! on, and a blocked actor is resumed only once its condition holds, so FIFO depths, ordering
//! and the deadlock check are those of the threaded engine.

use std::panic::AssertUnwindSafe;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::engine::Shared;

/// What a suspended actor hands the scheduler: nothing (it recorded its wait in the state).
pub(crate) type ActorYielder = Yielder<(), ()>;

/// Stack of one actor. Core bodies keep their locals in registers and small `memref.alloca`s;
/// the hooks and movers are shallow Rust. The pages are only touched as used.
const STACK_BYTES: usize = 1 << 20;

/// One actor's body: runs until it finishes, suspending inside `Shared::wait_for`.
pub(crate) type Body<'a> = Box<dyn FnOnce() + 'a>;

thread_local! {
    /// Stacks of finished actors, reused by the next run on this thread: a transcription
    /// makes tens of thousands of launches, and mapping, faulting in and unmapping fresh
    /// stacks for each was a fifth of the simulator's time (system time, measured).
    static STACKS: std::cell::RefCell<Vec<DefaultStack>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most stacks kept per thread (a design has at most a few dozen actors).
const POOLED_STACKS: usize = 64;

fn take_stack() -> DefaultStack {
    STACKS
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| DefaultStack::new(STACK_BYTES).expect("an actor's stack can be mapped"))
}

fn return_stack(stack: DefaultStack) {
    STACKS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < POOLED_STACKS {
            s.push(stack);
        }
    });
}

/// Runs `bodies` (actor `i` is `bodies[i]`) to completion on this thread.
pub(crate) fn run(shared: &Shared<'_>, bodies: Vec<Body<'_>>) {
    let mut actors: Vec<Coroutine<(), (), (), DefaultStack>> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let stack = take_stack();
            let entry = move |yielder: &ActorYielder, ()| {
                shared.set_yielder(i, yielder);
                body();
                shared.finish(i);
            };
            // SAFETY: the coroutine borrows `shared` and the bodies' captures, which outlive this
            // function; every coroutine is driven to completion below before it is dropped.
            unsafe { Coroutine::with_stack_unchecked(stack, entry) }
        })
        .collect();
    let mut panic = None;
    loop {
        let mut live = false;
        let mut resumed = false;
        for (i, actor) in actors.iter_mut().enumerate() {
            if actor.done() {
                continue;
            }
            live = true;
            if !shared.may_resume(i) {
                continue;
            }
            resumed = true;
            match std::panic::catch_unwind(AssertUnwindSafe(|| actor.resume(()))) {
                Ok(CoroutineResult::Yield(())) | Ok(CoroutineResult::Return(())) => {}
                Err(p) => {
                    // A panicking actor has unwound its own stack; stop the others cleanly
                    // (they see the failure and run to their ends), then re-raise.
                    shared.fail_with_panic(i);
                    panic.get_or_insert(p);
                }
            }
        }
        if !live {
            break;
        }
        if !resumed {
            // Every live actor waits on a condition nobody can make true.
            shared.fail_deadlocked();
        }
    }
    // Every coroutine has returned (or unwound): its stack is free for the next run.
    for actor in actors {
        if actor.done() {
            return_stack(actor.into_stack());
        }
    }
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
}
