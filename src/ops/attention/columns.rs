//! The array both attention designs share: per column the memtile splits a Q buffer and a
//! K/V buffer to the column's cores and joins their O tiles; every core runs
//! [`head_program`] over its heads with its online-softmax state in a FIFO it holds.

use super::{Kernels, Shape};
use crate::design::{
    BufferType, ElemType, Fifo, HostArg, Port, Program, Runtime, TensorAccessPattern, WorkerBody,
};
use crate::ops::registry::SpecCommon;
use crate::ops::{core, memtile};

/// What the columns are made of.
pub(super) struct Topology<'a> {
    /// Placement, FIFO depth and stack of the spec.
    pub common: SpecCommon<'a>,
    pub shape: Shape,
    /// Heads (or (beam, head) pairs) per core, q blocks per head, kv blocks per q block.
    pub counts: [usize; 3],
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
    let (cols, rows) = (t.common.array.columns, t.common.array.cores_per_column);
    let (r_n, depth) = (rows as usize, t.common.depth);
    let s = t.shape;
    let kernels = Kernels::new(s);
    let (qt, kt, d, elem) = (s.qt, s.kt, s.d, s.elem);
    let mut columns = Vec::new();
    for c in 0..cols {
        let q_in = p.fifo(
            format!("q_in{c}"),
            BufferType::new([r_n * qt, d], elem),
            depth,
        );
        let kv_ty = BufferType::new([r_n * kt, 2 * d], elem);
        let kv_in = p.fifo(format!("kv_in{c}"), kv_ty, depth);
        let o_out = p.fifo(
            format!("o_out{c}"),
            BufferType::new([r_n * qt, d], elem),
            depth,
        );
        let (mut qs, mut kvs, mut os) = (vec![], vec![], vec![]);
        for r in 0..rows {
            let tile = core(c, r);
            let q = p.fifo(format!("q{c}_{r}"), BufferType::new([qt, d], elem), depth);
            let kv = p.fifo(
                format!("kv{c}_{r}"),
                BufferType::new([kt, 2 * d], elem),
                depth,
            );
            let o = p.fifo(format!("o{c}_{r}"), BufferType::new([qt, d], elem), depth);
            let st_ty = BufferType::new([qt + 1, s.state_cols()], ElemType::F32);
            let st = p.state(format!("st{c}_{r}"), st_ty, tile);
            p.worker(tile, |w| {
                w.stack_bytes(t.common.stack_bytes);
                head_program(w, [&q, &kv, &o, &st], &kernels, t);
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
fn head_program(w: &mut WorkerBody, [q, kv, o, st]: [&Fifo; 4], k: &Kernels, t: &Topology) {
    let [heads, q_blocks, kv_blocks] = t.counts;
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

/// One K/V fill per column, then a wait on each (so the shim BDs recycle). Column `c` moves
/// `sizes = [blocks, cores, kt, 2d]` from element `first(c)` of `kv`: blocks of `kt` rows,
/// rows `row` elements apart, the column's cores `core` elements apart.
pub(super) fn fill_kv(
    rt: &mut Runtime,
    columns: &[Column],
    kv: &HostArg,
    sizes: [usize; 4],
    [core, row]: [usize; 2],
    first: impl Fn(usize) -> usize,
) {
    for (c, col) in columns.iter().enumerate() {
        let pattern = TensorAccessPattern {
            offset: first(c),
            sizes,
            strides: [sizes[2] * row, core, row, 1],
        };
        rt.fill(&col.kv_in, kv, pattern);
    }
    for col in columns {
        rt.wait(&col.kv_in);
    }
}

/// Waits for every column's Q fills and O drains (they complete last).
pub(super) fn wait_q_and_o(rt: &mut Runtime, columns: &[Column]) {
    for col in columns {
        rt.wait(&col.q_in);
        rt.wait(&col.o_out);
    }
}
