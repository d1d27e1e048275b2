//! Building hand-written designs: the statements, FIFOs, links and runtime-sequence ops the
//! designs in the tests are made of, and the `scf.for` element loop their kernels emit.

use aiec::design::{
    BufArg, BufferType, CoreStmt, DesignError, ElemType, FifoLink, HostBuffer, Kernel, KernelCtx,
    ObjectFifo, Port, SeqOp, TensorAccessPattern, TileId,
};
use melior::{
    dialect::{arith, memref, scf},
    ir::{attribute::IntegerAttribute, Block, BlockLike, Region, RegionLike, Type, Value},
};

pub fn fifo(
    name: &str,
    producer: TileId,
    consumers: &[TileId],
    depth: u32,
    ty: BufferType,
) -> ObjectFifo {
    ObjectFifo {
        name: name.into(),
        producer,
        consumers: consumers.to_vec(),
        depth,
        ty,
    }
}

/// A memtile link from `srcs` to `dsts`, joining / splitting at the given offsets.
pub fn link(
    srcs: &[&str],
    dsts: &[&str],
    src_offsets: Vec<usize>,
    dst_offsets: Vec<usize>,
) -> FifoLink {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    FifoLink {
        srcs: names(srcs),
        dsts: names(dsts),
        src_offsets,
        dst_offsets,
    }
}

pub fn acquire(fifo: &str, port: Port, count: u32, binding: &str) -> CoreStmt {
    CoreStmt::Acquire {
        fifo: fifo.into(),
        port,
        count,
        binding: binding.into(),
    }
}

pub fn release(fifo: &str, port: Port, count: u32) -> CoreStmt {
    CoreStmt::Release {
        fifo: fifo.into(),
        port,
        count,
    }
}

pub fn arg(binding: &str, index: u32) -> BufArg {
    BufArg {
        binding: binding.into(),
        index,
    }
}

/// `kernel` on buffer 0 of each of `bindings`.
pub fn call(kernel: Kernel, bindings: &[&str]) -> CoreStmt {
    CoreStmt::Kernel {
        kernel,
        args: bindings.iter().map(|b| arg(b, 0)).collect(),
    }
}

/// One step of a worker mapping `input` to `output`: acquire a buffer of each (bound to
/// `bindings`), run `kernel` on the two, release both.
pub fn map_step(input: &str, output: &str, bindings: [&str; 2], kernel: Kernel) -> Vec<CoreStmt> {
    vec![
        acquire(input, Port::Consume, 1, bindings[0]),
        acquire(output, Port::Produce, 1, bindings[1]),
        call(kernel, &bindings),
        release(input, Port::Consume, 1),
        release(output, Port::Produce, 1),
    ]
}

pub fn host(name: &str, len: usize, elem: ElemType) -> HostBuffer {
    HostBuffer {
        name: name.into(),
        ty: BufferType::new([len], elem),
    }
}

pub fn pattern(offset: usize, sizes: [usize; 4], strides: [usize; 4]) -> TensorAccessPattern {
    TensorAccessPattern {
        offset,
        sizes,
        strides,
    }
}

pub fn fill(fifo: &str, arg: usize, pattern: TensorAccessPattern) -> SeqOp {
    SeqOp::Fill {
        fifo: fifo.into(),
        arg,
        pattern,
    }
}

pub fn drain(fifo: &str, arg: usize, pattern: TensorAccessPattern) -> SeqOp {
    SeqOp::Drain {
        fifo: fifo.into(),
        arg,
        pattern,
    }
}

pub fn wait(fifo: &str) -> SeqOp {
    SeqOp::Wait { fifo: fifo.into() }
}

pub fn int_const<'c, 'b>(
    k: &KernelCtx<'c, '_>,
    b: &'b Block<'c>,
    ty: Type<'c>,
    v: i64,
) -> Value<'c, 'b> {
    let op = arith::constant(k.context, IntegerAttribute::new(ty, v).into(), k.location);
    b.append_operation(op).result(0).unwrap().into()
}

/// `for i in 0..n { args[1][i] = f(body, args[0][i]) }` as scf.for + memref.load/store, the
/// shape of loop the op kernels emit; `f` appends its ops to the loop body.
pub fn map_loop<'c>(
    k: &KernelCtx<'c, '_>,
    block: &Block<'c>,
    args: &[Value<'c, '_>],
    n: usize,
    f: impl for<'b> FnOnce(&'b Block<'c>, Value<'c, 'b>) -> Value<'c, 'b>,
) -> Result<(), DesignError> {
    let loc = k.location;
    let index = Type::index(k.context);
    let c0 = int_const(k, block, index, 0);
    let cn = int_const(k, block, index, n as i64);
    let c1 = int_const(k, block, index, 1);
    let body = Block::new(&[(index, loc)]);
    let i: Value = body.argument(0).unwrap().into();
    let x: Value = body
        .append_operation(memref::load(args[0], &[i], loc))
        .result(0)
        .unwrap()
        .into();
    let y = f(&body, x);
    body.append_operation(memref::store(y, args[1], &[i], loc));
    body.append_operation(scf::r#yield(&[], loc));
    let region = Region::new();
    region.append_block(body);
    block.append_operation(scf::r#for(c0, cn, c1, region, loc));
    Ok(())
}
