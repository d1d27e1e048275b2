//! The array both attention designs share: per column the memtile splits a Q buffer and a
//! K/V buffer to the column's cores and joins their O tiles; every core runs
//! [`head_program`] over its heads with its online-softmax state in a FIFO it holds.

use super::{Kernels, Shape};
use crate::design::{BufferType, ElemType, Fifo, Port, Program, WorkerBody};
use crate::ops::{core, memtile};
use crate::spec::ArraySpec;

/// What the columns are made of.
pub(super) struct Topology<'a> {
    pub array: ArraySpec,
    pub depth: u32,
    pub stack_bytes: usize,
    pub shape: Shape,
    /// Heads (or (beam, head) pairs) per core, q blocks per head, kv blocks per q block.
    pub counts: [usize; 3],
    pub kernels: &'a Kernels,
    /// Whether each core first reads the runtime length from its Q stream.
    pub read_len: bool,
}

/// The memtile-side FIFOs of one column, which the runtime sequence fills and drains.
pub(super) struct Column {
    pub q_in: Fifo,
    pub kv_in: Fifo,
    pub o_out: Fifo,
}

/// Declares every column's FIFOs, links and workers, in column order.
pub(super) fn build(p: &mut Program, t: &Topology) -> Vec<Column> {
    let (cols, rows) = (t.array.columns, t.array.cores_per_column);
    let r_n = rows as usize;
    let s = t.shape;
    let (qt, kt, d, elem) = (s.qt, s.kt, s.d, s.elem);
    let mut columns = Vec::new();
    for c in 0..cols {
        let q_in = p.fifo(
            format!("q_in{c}"),
            BufferType::new([r_n * qt, d], elem),
            t.depth,
        );
        let kv_ty = BufferType::new([r_n * kt, 2 * d], elem);
        let kv_in = p.fifo(format!("kv_in{c}"), kv_ty, t.depth);
        let o_out = p.fifo(
            format!("o_out{c}"),
            BufferType::new([r_n * qt, d], elem),
            t.depth,
        );
        let (mut qs, mut kvs, mut os) = (vec![], vec![], vec![]);
        for r in 0..rows {
            let tile = core(c, r);
            let q = p.fifo(format!("q{c}_{r}"), BufferType::new([qt, d], elem), t.depth);
            let kv = p.fifo(
                format!("kv{c}_{r}"),
                BufferType::new([kt, 2 * d], elem),
                t.depth,
            );
            let o = p.fifo(format!("o{c}_{r}"), BufferType::new([qt, d], elem), t.depth);
            let st_ty = BufferType::new([qt + 1, s.state_cols()], ElemType::F32);
            let st = p.state(format!("st{c}_{r}"), st_ty, tile);
            p.worker(tile, |w| {
                w.stack_bytes(t.stack_bytes);
                head_program(w, [&q, &kv, &o, &st], t);
            });
            qs.push(q);
            kvs.push(kv);
            os.push(o);
        }
        let offsets = |step: usize| (0..r_n).map(|r| r * step).collect();
        p.split(&q_in, memtile(c), &qs, offsets(qt * d));
        p.split(&kv_in, memtile(c), &kvs, offsets(kt * 2 * d));
        p.join(&os, memtile(c), &o_out, offsets(qt * d));
        columns.push(Column { q_in, kv_in, o_out });
    }
    columns
}

/// One attention core's program: set up the state once (and, length-masked, read the
/// runtime length from the first Q buffer); for each of its heads and each q block, reset
/// the state, stream every kv block through the online-softmax step, then write the
/// normalised output.
fn head_program(w: &mut WorkerBody, [q, kv, o, st]: [&Fifo; 4], t: &Topology) {
    let [heads, q_blocks, kv_blocks] = t.counts;
    let k = t.kernels;
    let state = w.acquire_as("st", st, Port::Produce, 1);
    w.call(&k.setup, [state.first()]);
    if t.read_len {
        let len = w.acquire_as("len", q, Port::Consume, 1);
        w.call(&k.read_len, [len.first(), state.first()]);
        w.release(len);
    }
    w.repeat(heads as u64, |w| {
        w.repeat(q_blocks as u64, |w| {
            let qa = w.acquire_as("q", q, Port::Consume, 1);
            w.call(&k.init, [state.first()]);
            w.repeat(kv_blocks as u64, |w| {
                let kva = w.acquire_as("kv", kv, Port::Consume, 1);
                w.call(&k.step, [qa.first(), kva.first(), state.first()]);
                w.release(kva);
            });
            let oa = w.acquire_as("o", o, Port::Produce, 1);
            w.call(&k.finish, [state.first(), oa.first()]);
            w.release(oa);
            w.release(qa);
        })
    });
    w.release(state);
}
