//! The non-core actors: memtile link channels, shim DMA channels and the runtime sequence.
//! They move bytes between FIFO slots and host buffers under the same acquire/release rules
//! the cores follow.

use super::engine::{Shared, Stop, Wait};
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
/// buffer at a time, reading or writing the host buffer at the pattern's element indices.
pub(crate) fn run_shim_dma(sh: &Shared, actor: usize, dma: usize) {
    let wiring = &sh.wiring.dmas[dma];
    let fifo = &sh.wiring.fifos[wiring.port.fifo];
    let elem = fifo.ty.elem.bytes();
    let numel = fifo.ty.numel();
    let to_fifo = wiring.port.side == super::fifo::Side::Produce;
    let transfer = || -> Result<(), Stop> {
        sh.wait_for(actor, Wait::NextTask { dma })?;
        let (arg, indices) = sh.lock().dmas[dma].tasks.pop_front().expect("task queued");
        for chunk in indices.chunks(numel) {
            sh.wait_for(
                actor,
                Wait::Acquire {
                    port: wiring.port,
                    want: 1,
                },
            )?;
            let slot = sh.held_buffer(actor, wiring.port, 0)?;
            let mut host = sh.host[arg].lock().unwrap_or_else(|p| p.into_inner());
            // SAFETY: the slot is held by this actor and `numel * elem` bytes long; host indices
            // were bounds-checked by the wiring.
            let slot = unsafe { std::slice::from_raw_parts_mut(slot, numel * elem) };
            for (j, &i) in chunk.iter().enumerate() {
                let (h, s) = (i * elem, j * elem);
                if to_fifo {
                    slot[s..s + elem].copy_from_slice(&host[h..h + elem]);
                } else {
                    host[h..h + elem].copy_from_slice(&slot[s..s + elem]);
                }
            }
            drop(host);
            sh.release(actor, wiring.port, 1)?;
        }
        let mut st = sh.lock();
        st.dmas[dma].completed += 1;
        sh.cv.notify_all();
        Ok(())
    };
    while transfer().is_ok() {}
    sh.finish(actor);
}

/// The runtime sequence: queue transfers, honour `dma_wait`, then wait for every transfer and
/// every worker. Returns when the design has run to completion or failed.
pub(crate) fn run_sequence(sh: &Shared, actor: usize) -> Result<(), Stop> {
    for step in &sh.wiring.steps {
        match step {
            Step::Transfer { dma, arg, indices } => {
                let mut st = sh.lock();
                st.dmas[*dma].tasks.push_back((*arg, indices.clone()));
                st.dmas[*dma].issued += 1;
                sh.cv.notify_all();
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
    sh.cv.notify_all();
    Ok(())
}
