//! The log-mel kernel on the `mel` design ([`crate::ops::mel`]), written frame-major
//! (`layout = "frame_major"`): `[frames, n_mels]` is what [`Backend::log_mel`] returns, so the
//! design's output is the call's output and no transpose runs anywhere on the host. The
//! runtime's clamp pass (file-wide max − 8, then `(x + 4) / 4`, the host half of
//! [`crate::ops::mel::finish_on_host`]) turns it into Whisper's `[n_mels, frames]`.
//!
//! One spec per frame count, from the plan's mel tiling search
//! ([`crate::plan::tiling::mel_candidates`]): the exact count first, then the count padded to
//! whole multiples of the array (a count such as jfk's 1101 = 3 x 367 has no tiling of its
//! own). Padding frames are zero samples past the caller's signal; their rows are dropped.
//!
//! [`Backend::log_mel`]: aiec_runtime::backend::Backend::log_mel

use std::time::Duration;

use super::kernels::{self, narrow};
use super::linear::npu1;
use super::SimDeviceError;
use crate::ops::mel::{HOP, N_FFT, SAMPLE_RATE};
use crate::plan::tiling::{self, round_up};

/// The padded frame counts tried after the exact one: multiples of npu1's 16 cores, then of
/// 16 cores x 4-frame tiles (a per-core count with small divisors).
const FRAME_MULTIPLES: [usize; 2] = [16, 64];

/// The spec texts for `frames` frames of `n_mels` mels, best first.
fn candidates(frames: usize, n_mels: usize) -> Vec<String> {
    let dev = npu1();
    let mut counts = vec![frames];
    for m in FRAME_MULTIPLES {
        let padded = round_up(frames, m);
        if !counts.contains(&padded) {
            counts.push(padded);
        }
    }
    counts
        .into_iter()
        .flat_map(|f| {
            tiling::mel_candidates(f, &dev)
                .into_iter()
                .map(move |(a, tile)| {
                    format!(
                        "op = \"mel\"\nname = \"sim_mel_{f}x{n_mels}\"\ndevice = \"npu1\"\n\
                         dtype = \"f32\"\nframes = {f}\nn_fft = {N_FFT}\nhop = {HOP}\n\
                         n_mels = {n_mels}\nsample_rate = {SAMPLE_RATE}\nframe_tile = {tile}\n\
                         layout = \"frame_major\"\n\
                         array = {{ columns = {}, cores_per_column = {} }}\ndepth = 2\n",
                        a.columns, a.cores_per_column
                    )
                })
        })
        .collect()
}

/// log10 mel power of `n_frames` frames of `signal` (frame `f` = the `N_FFT` samples from
/// `f * HOP`) as `[n_frames, n_mels]`, and the simulated time.
pub fn log_mel(
    signal: &[f32],
    n_frames: usize,
    n_mels: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    if n_frames == 0 {
        return Ok((Vec::new(), Duration::ZERO));
    }
    let key = format!("mel {n_frames}x{n_mels}");
    let kernel = kernels::first_that_builds(&key, || candidates(n_frames, n_mels))?;
    let mel = kernel
        .spec
        .downcast::<crate::ops::mel::MelSpec>()
        .expect("the mel cache holds mel specs");
    let samples = (mel.frames - 1) * HOP + N_FFT;
    let mut x = signal[..signal.len().min(samples)].to_vec();
    x.resize(samples, 0.0);
    let launch = kernel.launch(vec![narrow(kernel.input_elems[0], &x)])?;
    let mut y = launch.outputs.into_iter().next().unwrap_or_default();
    y.truncate(n_frames * n_mels);
    Ok((y, launch.device))
}
