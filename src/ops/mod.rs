//! One module per op. Each owns its spec struct (declared with [`crate::op_spec!`]), its
//! field checks, `build(spec) -> Result<Design>` (tiles, object FIFOs, workers with kernel
//! bodies, runtime sequence), its kernel emitters (upstream dialects only, written with
//! [`kir`]), a plain f64 `reference` with a documented `TOLERANCE`, and its `aiec sim` test
//! case; [`registry::OPS`] lists them. Emitters another op can reuse are `pub(crate)`
//! building blocks (matmul's MAC loop and store, the norm row pass, GELU's table lookup).

pub mod add;
pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod gelu;
pub mod kir;
pub mod layernorm;
pub mod linear;
pub mod matmul;
pub mod mel;
pub mod quantize;
pub mod registry;
pub mod rmsnorm;
pub mod rowwise;
pub mod softmax;

use std::sync::Arc;

use melior::ir::{Block, Value};

use crate::design::{DesignError, Kernel, KernelCtx, TileId};

/// Wraps a kernel body function as a [`Kernel`]; passing the closure through this bound is
/// what gives it the higher-ranked signature the DSL expects.
pub fn kernel<F>(name: impl Into<String>, f: F) -> Kernel
where
    F: for<'c, 'a, 'b> Fn(
            &KernelCtx<'c, 'a>,
            &Block<'c>,
            &[Value<'c, 'b>],
        ) -> Result<(), DesignError>
        + Send
        + Sync
        + 'static,
{
    Kernel {
        name: name.into(),
        emit: Arc::new(f),
        const_bytes: 0,
        work: crate::design::KernelWork::Undeclared,
    }
}

/// A kernel written on [`kir::Emit`] that takes `buffers` buffer arguments: checks the count
/// (an error names the kernel), then lets `body` append to the kernel's block.
pub(crate) fn emit_kernel<F>(name: &'static str, buffers: usize, body: F) -> Kernel
where
    F: for<'c, 'k, 'b> Fn(&kir::Emit<'c, 'k>, &[Value<'c, 'b>]) -> Result<(), DesignError>
        + Send
        + Sync
        + 'static,
{
    kernel(name, move |ctx, block, args| {
        expect_args(name, args, buffers)?;
        body(&kir::Emit::new(ctx, block, name), args)
    })
}

/// Checks a kernel got the number of buffers it was written for.
pub(crate) fn expect_args(
    kernel: &str,
    args: &[Value<'_, '_>],
    n: usize,
) -> Result<(), DesignError> {
    if args.len() != n {
        return Err(DesignError::Kernel {
            kernel: kernel.to_string(),
            message: format!("expects {n} buffer arguments, got {}", args.len()),
        });
    }
    Ok(())
}

pub(crate) fn memtile(col: u32) -> TileId {
    TileId::new(col, 1)
}

pub(crate) fn core(col: u32, index: u32) -> TileId {
    TileId::new(col, 2 + index)
}

/// Appends a `dma_wait` for every FIFO that has a DMA issued since the last waits (fills
/// first, then drains), so that shim buffer descriptors are released: a shim tile has 16, and
/// a DMA holds one until it is awaited.
pub(crate) fn settle(ops: &mut Vec<crate::design::SeqOp>) {
    use crate::design::SeqOp;
    let start = ops
        .iter()
        .rposition(|o| matches!(o, SeqOp::Wait { .. }))
        .map_or(0, |i| i + 1);
    let mut fills: Vec<String> = Vec::new();
    let mut drains: Vec<String> = Vec::new();
    for op in &ops[start..] {
        match op {
            SeqOp::Fill { fifo, .. } if !fills.contains(fifo) => fills.push(fifo.clone()),
            SeqOp::Drain { fifo, .. } if !drains.contains(fifo) => drains.push(fifo.clone()),
            _ => {}
        }
    }
    for fifo in fills.into_iter().chain(drains) {
        ops.push(SeqOp::Wait { fifo });
    }
}

/// Splits a contiguous run of `len` elements into `(rows, cols)` with `rows * cols == len` and
/// `cols` as large as a shim BD's innermost wrap allows (1023 32-bit words), so long rows
/// still move as one 2-D transfer. Falls back to `(1, len)` if no divisor fits.
pub(crate) fn contiguous_2d(len: usize, elem_bytes: usize) -> (usize, usize) {
    const WRAP_MAX_WORDS: usize = 1023;
    (1..=len)
        .rev()
        .find(|c| {
            len.is_multiple_of(*c)
                && (c * elem_bytes).is_multiple_of(4)
                && c * elem_bytes / 4 <= WRAP_MAX_WORDS
                && len / c <= WRAP_MAX_WORDS
        })
        .map_or((1, len), |c| (len / c, c))
}

/// Largest number of iterations the outermost dimension of a shim BD repeats.
pub const SHIM_MAX_REPEAT: usize = 64;
