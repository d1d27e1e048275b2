//! A linear layer `y = f(A B)` with a dequantising epilogue, the kernel a Whisper projection
//! needs: int8 x int8 -> int32 accumulate then, e.g., `y = acc * sa[row] * sw[col] +
//! bias[col]` (optionally inside `gelu(...)`), or bf16 x bf16 -> f32 then `acc + bias[col]`;
//! output bf16 or f32. The epilogue is an expression ([`epilogue`]); host layouts and weight
//! packing are in [`layout`].
//!
//! Why a module of its own rather than more `matmul` fields: matmul's fixed-shift requant
//! stays as it is (its specs and goldens unchanged), while this op changes what the streams
//! carry and the core program's last k step; both are written from matmul's crate-visible
//! building blocks ([`MacGeometry`], [`mac_columns`], [`mac_sequence`], `emit_zero`,
//! `emit_mac`), so the partitioning and the runtime sequence exist once.
//!
//! Where the epilogue vectors travel, and why: a core has 2 input DMA channels and a shim 2
//! outgoing ones per column, both taken by the A and B streams, and a transfer moves whole
//! objects of the FIFO's element type. So the vectors ride inside those objects: `sa` as 4
//! bytes after each A row (A objects are `[m, k + 4]`), `sw` and `bias` as trailer rows of
//! each B object (`[k + T, n]`). The last k block's objects are the ones whose extra bytes
//! are the vectors; the epilogue kernel holds them with the accumulator. A fused residual
//! would need a third input stream and is rejected with that reason.
//!
//! Core program (per row group, per column block): acquire the accumulator, zero it, add
//! the first `k_blocks - 1` products (releasing A and B), acquire the last A and B, add
//! their product, then `epilogue(acc, a_last, b_last, c)` and release all four.

pub mod epilogue;
pub mod layout;
pub(crate) mod spec;

pub use epilogue::Epilogue;
pub use layout::{LayoutError, PackedWeights};
pub use spec::LinearSpec;

use crate::design::{BufferType, Design, DesignError, ElemType, Kernel, Port, Program, WorkerBody};
use crate::ops::emit_kernel;
use crate::ops::matmul::{
    emit_mac, emit_zero, mac_columns, mac_sequence, MacFifos, MacGeometry, MacHosts, MacTypes,
    MatmulShape, Tile,
};
use crate::ops::registry::SpecCommon;
use epilogue::{emit_epilogue, EpilogueKernel};

/// What a linear-shaped op (a linear layer, a convolution as im2col) plugs into the design.
pub(crate) struct LinearPlan<'a> {
    pub common: SpecCommon<'a>,
    pub shape: MatmulShape,
    pub tile: MatmulShape,
    pub epilogue: Epilogue,
    pub out: ElemType,
    /// The A host buffer, and the elements from one A row's start to the next's (`K + 4`
    /// for int8 rows with their scale, `stride x channels` for im2col rows).
    pub a_host: BufferType,
    pub a_row_stride: usize,
}

pub(crate) fn build(plan: &LinearPlan) -> Result<Design, DesignError> {
    let c = plan.common;
    let operand = c.dtype.elem();
    let t = Tile {
        m: plan.tile.m,
        k: plan.tile.k,
        n: plan.tile.n,
        dtype: c.dtype,
        requant: None,
        arch: crate::ops::matmul::vmac::Arch::of_device(c.device),
    };
    let geo = MacGeometry::new(c.name, plan.shape, t, c.array)?;
    let a_extra = if plan.epilogue.row_scale { 4 } else { 0 };
    let trailer = layout::trailer_rows(&plan.epilogue, operand);
    let ek = EpilogueKernel {
        epilogue: plan.epilogue.clone(),
        m: t.m,
        k: t.k,
        n: t.n,
        operand,
        out: plan.out,
    };
    let zero = emit_kernel("linear_zero", 1, move |e, a| emit_zero(e, a, t))
        .with_work(crate::ops::matmul::zero_work(&t));
    let mac = emit_kernel("linear_mac", 3, move |e, a| emit_mac(e, a, t))
        .with_work(crate::ops::matmul::vmac::mac_work(&t));
    // The epilogue walks the accumulator rows in 16 f32 lanes: load, the epilogue expression
    // (~2 ops: scale/bias), convert and store: ~4 ops a chunk.
    let store = emit_kernel("linear_epilogue", 4, move |e, a| emit_epilogue(e, a, &ek))
        .with_work(crate::design::KernelWork::rows(t.m, t.n, 4.0));

    let (kk, nn) = (plan.shape.k, plan.shape.n);
    let mut p = Program::new(c.name, c.device);
    let hosts = MacHosts {
        a: p.arg("A", plan.a_host.clone()),
        b: p.arg("B", BufferType::new([kk + trailer, nn], operand)),
        c: p.arg("C", BufferType::new([plan.shape.m, nn], plan.out)),
        a_row_stride: plan.a_row_stride,
    };
    let types = MacTypes {
        a: BufferType::new([t.m, t.k + a_extra], operand),
        b: BufferType::new([t.k + trailer, t.n], operand),
        c: BufferType::new([t.m, t.n], plan.out),
        acc: BufferType::new([t.m, t.n], t.acc_elem()),
    };
    let columns = mac_columns(&mut p, &geo, c.depth, &types, |w, fifos| {
        w.stack_bytes(c.stack_bytes);
        linear_program(w, fifos, &geo, [&zero, &mac, &store]);
    });
    p.sequence(|rt| mac_sequence(rt, &columns, &hosts, &geo));
    p.build()
}

/// The core program of the module docs.
fn linear_program(
    w: &mut WorkerBody,
    f: MacFifos,
    geo: &MacGeometry,
    [zero, mac, epilogue]: [&Kernel; 3],
) {
    w.repeat(geo.groups as u64, |w| {
        w.repeat(geo.n_blocks as u64, |w| {
            let acc = w.acquire_as("acc", f.acc, Port::Produce, 1);
            w.call(zero, [acc.first()]);
            if geo.k_blocks > 1 {
                w.repeat(geo.k_blocks as u64 - 1, |w| {
                    let a = w.acquire_as("a", f.a, Port::Consume, 1);
                    let b = w.acquire_as("b", f.b, Port::Consume, 1);
                    w.call(mac, [a.first(), b.first(), acc.first()]);
                    w.release(a);
                    w.release(b);
                });
            }
            let a = w.acquire_as("a_last", f.a, Port::Consume, 1);
            let b = w.acquire_as("b_last", f.b, Port::Consume, 1);
            w.call(mac, [a.first(), b.first(), acc.first()]);
            w.release(acc);
            let sum = w.acquire_as("sum", f.acc, Port::Consume, 1);
            let c = w.acquire_as("c", f.c, Port::Produce, 1);
            w.call(epilogue, [sum.first(), a.first(), b.first(), c.first()]);
            w.release(sum);
            w.release(c);
            w.release(a);
            w.release(b);
        })
    });
}
