//! The host functions JIT-compiled cores call in place of the AIE object-FIFO ops.
//!
//! ABI (all `i64`, C calling convention; `ctx` is a `*const CoreCtx`):
//! - `aiec_sim_acquire(ctx, port, count)` — `aie.objectfifo.acquire`: blocks until the core
//!   holds `count` buffers of its `port`-th FIFO end.
//! - `aiec_sim_release(ctx, port, count)` — `aie.objectfifo.release`.
//! - `aiec_sim_access_K(ctx, port, index) -> memref<...>` — `aie.objectfifo.subview.access`:
//!   declared with `llvm.emit_c_interface`, so the JIT calls `_mlir_ciface_aiec_sim_access_K`
//!   with a pointer to the memref descriptor to fill (one `K` per buffer type).
//! - `aiec_sim_alive(ctx) -> i64` — 0 once the run failed; kernels are then skipped so every
//!   core unwinds quickly to its end instead of computing on buffers it does not hold.
//!
//! Hooks never panic (a panic cannot cross the JIT frames); failures are recorded in the shared
//! state and surface as the run's error.

use std::sync::atomic::Ordering;

use super::engine::Shared;
use super::wiring::PortRef;

pub(crate) struct CoreCtx<'s> {
    pub shared: &'s Shared<'s>,
    pub actor: usize,
    pub ports: Vec<PortRef>,
    /// Buffer shape per port, for the memref descriptors.
    pub shapes: Vec<Vec<usize>>,
}

fn ctx<'a>(raw: i64) -> &'a CoreCtx<'a> {
    // SAFETY: the JIT passes back the pointer `run` gave the core; it outlives the thread.
    unsafe { &*(raw as usize as *const CoreCtx<'a>) }
}

pub(crate) extern "C" fn acquire(raw: i64, port: i64, count: i64) {
    let c = ctx(raw);
    let port = c.ports[port as usize];
    let _ = c.shared.wait_for(
        c.actor,
        super::engine::Wait::Acquire {
            port,
            want: count as u64,
        },
    );
}

pub(crate) extern "C" fn release(raw: i64, port: i64, count: i64) {
    let c = ctx(raw);
    let _ = c
        .shared
        .release(c.actor, c.ports[port as usize], count as u64);
}

pub(crate) extern "C" fn alive(raw: i64) -> i64 {
    i64::from(!ctx(raw).shared.aborted.load(Ordering::SeqCst))
}

/// A ranked memref descriptor as MLIR's C interface lays it out.
#[repr(C)]
pub(crate) struct Descriptor<const R: usize> {
    allocated: *mut u8,
    aligned: *mut u8,
    offset: i64,
    sizes: [i64; R],
    strides: [i64; R],
}

pub(crate) extern "C" fn access<const R: usize>(
    out: *mut Descriptor<R>,
    raw: i64,
    port: i64,
    index: i64,
) {
    let c = ctx(raw);
    let p = c.ports[port as usize];
    // After a failure the kernel is skipped, but the descriptor must still be valid memory.
    let ptr = c
        .shared
        .held_buffer(c.actor, p, index as u64)
        .unwrap_or_else(|_| c.shared.slot_ptr(p.fifo, 0));
    let shape = &c.shapes[port as usize];
    let mut sizes = [0i64; R];
    let mut strides = [0i64; R];
    let mut stride = 1i64;
    for d in (0..R).rev() {
        sizes[d] = shape[d] as i64;
        strides[d] = stride;
        stride *= shape[d] as i64;
    }
    // SAFETY: `out` points at the descriptor the JIT allocated for this call's result.
    unsafe {
        out.write(Descriptor {
            allocated: ptr,
            aligned: ptr,
            offset: 0,
            sizes,
            strides,
        });
    }
}

/// The access hook for a buffer of rank `rank` (1 to 4, checked by the wiring).
pub(crate) fn access_for_rank(rank: usize) -> *mut () {
    match rank {
        1 => access::<1> as *mut (),
        2 => access::<2> as *mut (),
        3 => access::<3> as *mut (),
        _ => access::<4> as *mut (),
    }
}
