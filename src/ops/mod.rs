//! One module per Whisper op. Each has `build(spec) -> Result<Design>` (tiles, object FIFOs,
//! workers with kernel bodies, runtime sequence), its kernel emitters (upstream dialects
//! only, written with [`kir`]), a plain f64 `reference` and a documented `TOLERANCE`.

pub mod attention;
pub mod gelu;
pub mod kir;
pub mod layernorm;
pub mod matmul;
pub mod mel;
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
    }
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

pub(crate) fn shim(col: u32) -> TileId {
    TileId::new(col, 0)
}

pub(crate) fn memtile(col: u32) -> TileId {
    TileId::new(col, 1)
}

pub(crate) fn core(col: u32, index: u32) -> TileId {
    TileId::new(col, 2 + index)
}
