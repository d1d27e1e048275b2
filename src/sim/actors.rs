//! The non-core actors: memtile link channels, shim DMA channels and the runtime sequence.
//! They move bytes between FIFO slots and host buffers under the same acquire/release rules
//! the cores follow.

use std::sync::MutexGuard;

use super::engine::{HostBuffer, Shared, Stop, Wait};
use super::pattern;
use super::wiring::{LinkMover, Step};

/// One memtile DMA channel of a link: forever take a source buffer, fill a destination buffer
/// from its slice (split) or into its slice (join), release both.
pub(crate) fn run_mover(sh: &Shared, actor: usize, m: &LinkMover) {
    let step = || -> Result<(), Stop> {
        sh.wait_for(
            actor,
            Wait::Acquire {
                port: m.src,
                want: 1,
            },
        )?;
        sh.wait_for(
            actor,
            Wait::Acquire {
                port: m.dst,
                want: 1,
            },
        )?;
        let src = sh.held_buffer(actor, m.src, 0)?;
        let dst = sh.held_buffer(actor, m.dst, 0)?;
        // SAFETY: both buffers are held by this actor; offsets were bounds-checked by the wiring.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.add(m.src_offset * m.elem_bytes),
                dst.add(m.dst_offset * m.elem_bytes),
                m.len * m.elem_bytes,
            );
        }
        sh.release(actor, m.dst, 1)?;
        sh.release(actor, m.src, 1)
    };
    while step().is_ok() {}
    sh.finish(actor);
}

/// One shim DMA channel: runs the transfers the sequence queues on it, in order, one FIFO
/// buffer at a time, walking the host buffer in the pattern's order (contiguous innermost rows
/// move with one copy; a row may span FIFO buffers).
pub(crate) fn run_shim_dma(sh: &Shared, actor: usize, dma: usize) {
    let wiring = &sh.wiring.dmas[dma];
    let fifo = &sh.wiring.fifos[wiring.port.fifo];
    let elem = fifo.ty.elem.bytes();
    let numel = fifo.ty.numel();
    let to_fifo = wiring.port.side == super::fifo::Side::Produce;
    let transfer = || -> Result<(), Stop> {
        sh.wait_for(actor, Wait::NextTask { dma })?;
        let (arg, p) = sh.lock().dmas[dma].tasks.pop_front().expect("task queued");
        let mut rows = pattern::rows(&p).peekable();
        // The part of the current row not yet moved.
        let mut pending: Option<pattern::Row> = None;
        while pending.is_some() || rows.peek().is_some() {
            sh.wait_for(
                actor,
                Wait::Acquire {
                    port: wiring.port,
                    want: 1,
                },
            )?;
            let slot = sh.held_buffer(actor, wiring.port, 0)?;
            // SAFETY: the slot is held by this actor and `numel * elem` bytes long; host indices
            // were bounds-checked by the validator.
            let slot = unsafe { std::slice::from_raw_parts_mut(slot, numel * elem) };
            let mut host = HostAccess::lock(&sh.host[arg]);
            let mut filled = 0;
            while filled < numel {
                let Some(row) = pending.take().or_else(|| rows.next()) else {
                    break;
                };
                let n = row.count.min(numel - filled);
                host.copy(to_fifo, row, n, elem, &mut slot[filled * elem..]);
                filled += n;
                if n < row.count {
                    pending = Some(pattern::Row {
                        start: row.start + n * row.stride,
                        count: row.count - n,
                        stride: row.stride,
                    });
                }
            }
            drop(host);
            sh.release(actor, wiring.port, 1)?;
        }
        let mut st = sh.lock();
        st.dmas[dma].completed += 1;
        Ok(())
    };
    while transfer().is_ok() {}
    sh.finish(actor);
}

/// A host buffer as one DMA transfer step sees it: read-only inputs without a lock.
enum HostAccess<'a> {
    Read(&'a [u8]),
    Write(MutexGuard<'a, super::HostData>),
}

impl<'a> HostAccess<'a> {
    fn lock(buffer: &'a HostBuffer<'_>) -> Self {
        match buffer {
            HostBuffer::Read(bytes) => HostAccess::Read(bytes),
            HostBuffer::Write(m) => HostAccess::Write(m.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Moves the first `n` elements of `row` between the host and `slot` (which starts at the
    /// row's first element).
    fn copy(&mut self, to_fifo: bool, row: pattern::Row, n: usize, elem: usize, slot: &mut [u8]) {
        let spans = spans(row, n, elem);
        match (self, to_fifo) {
            (HostAccess::Read(host), true) => {
                spans.for_each(|(h, s)| slot[s].copy_from_slice(&host[h]))
            }
            (HostAccess::Write(host), true) => {
                let host = host.as_le_bytes();
                spans.for_each(|(h, s)| slot[s].copy_from_slice(&host[h]))
            }
            (HostAccess::Write(host), false) => {
                let host = host.as_le_bytes_mut();
                spans.for_each(|(h, s)| host[h].copy_from_slice(&slot[s]))
            }
            // The runner makes every drained argument a written buffer.
            (HostAccess::Read(_), false) => unreachable!("a drain into a read-only host buffer"),
        }
    }
}

/// The byte ranges (host, slot) the first `n` elements of `row` occupy: one span for a
/// contiguous row, else one per element.
fn spans(
    row: pattern::Row,
    n: usize,
    elem: usize,
) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (count, width) = if row.stride == 1 {
        (1, n * elem)
    } else {
        (n, elem)
    };
    (0..count).map(move |j| {
        let h = (row.start + j * row.stride) * elem;
        let s = j * width;
        (h..h + width, s..s + width)
    })
}

/// The runtime sequence: queue transfers, honour `dma_wait`, then wait for every transfer and
/// every worker. Returns when the design has run to completion or failed.
pub(crate) fn run_sequence(sh: &Shared, actor: usize) -> Result<(), Stop> {
    for step in &sh.wiring.steps {
        match step {
            Step::Transfer { dma, arg, pattern } => {
                let mut st = sh.lock();
                st.dmas[*dma].tasks.push_back((*arg, pattern.clone()));
                st.dmas[*dma].issued += 1;
            }
            Step::Wait { dma } => {
                let issued = sh.lock().dmas[*dma].issued;
                sh.wait_for(actor, Wait::DmaDone { dma: *dma, issued })?;
            }
        }
    }
    for dma in 0..sh.wiring.dmas.len() {
        let issued = sh.lock().dmas[dma].issued;
        sh.wait_for(actor, Wait::DmaDone { dma, issued })?;
    }
    sh.wait_for(actor, Wait::Workers)?;
    let mut st = sh.lock();
    st.done = true;
    Ok(())
}
