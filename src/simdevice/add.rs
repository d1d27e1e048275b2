//! Residual and positional adds on the `add` design, in f32 (the cpu path keeps the residual
//! stream in f32; a bf16 add would round it at every layer), one spec per call shape from the
//! plan's add tiling search ([`crate::plan::tiling::add_candidates`]).

use std::time::Duration;

use super::kernels::{self, narrow};
use super::linear::npu1;
use super::SimDeviceError;
use crate::plan::tiling;

/// The widest row [`add_rows`] gives a flat buffer: the add is element-wise, so the row width
/// only shapes the tiling; whisper-base's d_model keeps the encoder's positions on the same
/// `[1500, 512]` kernel as its residuals.
pub const MAX_COLS: usize = 512;

/// The add spec texts over `rows x cols` f32, best tiling first.
fn candidates(rows: usize, cols: usize) -> Vec<String> {
    let dev = npu1();
    tiling::add_candidates(rows, cols, 4, &dev)
        .into_iter()
        .map(|(a, tile_rows)| {
            format!(
                "op = \"add\"\nname = \"sim_add_{rows}x{cols}\"\ndevice = \"npu1\"\n\
                 dtype = \"f32\"\nshape = {{ rows = {rows}, cols = {cols} }}\n\
                 tile_rows = {tile_rows}\narray = {{ columns = {}, cores_per_column = {} }}\n\
                 depth = 2\n",
                a.columns, a.cores_per_column
            )
        })
        .collect()
}

/// `x + r` (same lengths) viewed as rows of `cols` (`cols` divides the length), and the
/// simulated time.
pub fn add(x: &[f32], r: &[f32], cols: usize) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    assert_eq!(x.len(), r.len(), "add of buffers of different lengths");
    let rows = x.len() / cols;
    let key = format!("add f32 {rows}x{cols}");
    let kernel = kernels::first_that_builds(&key, || candidates(rows, cols))?;
    let inputs = vec![
        narrow(kernel.input_elems[0], x),
        narrow(kernel.input_elems[1], r),
    ];
    let mut launch = kernel.launch(inputs)?;
    Ok((launch.outputs.swap_remove(0), launch.device))
}

/// The row width for a flat buffer of `len` elements: its widest divisor up to
/// [`MAX_COLS`] with whole 32-bit words (f32 always).
pub fn add_rows(len: usize) -> usize {
    (1..=MAX_COLS.min(len.max(1)))
        .rev()
        .find(|c| len.is_multiple_of(*c))
        .unwrap_or(1)
}
