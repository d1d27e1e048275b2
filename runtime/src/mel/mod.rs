//! Whisper-exact log-mel spectrogram, as faster-whisper computes it.
//!
//! 16 kHz mono samples, 160 zero samples appended; centred STFT (reflect-pad 200 each side)
//! with a periodic 400-sample Hann window, hop 160, 201 bins; power |X|^2; the last frame
//! dropped; Slaney-normalised mel filter bank; log10(max(p, 1e-10)); clamp below at the
//! global max - 8; (x + 4) / 4. The mel kernel ([`log10_mel_frames`], run per 30 s window,
//! on a backend by [`log_mel_with`]) computes in f64 and stores log10 power as f32; the
//! clamp to the file-wide maximum stays on the host (the reference is f32 numpy, so our
//! error against it is the reference's own rounding).

mod streaming;

pub use streaming::{MelStream, StreamedMel, SPILL_AFTER_BYTES};

use std::io;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};

use crate::audio::SAMPLE_RATE;
use crate::backend::Backend;

/// FFT length and window length in samples (25 ms).
pub const N_FFT: usize = 400;
/// Hop between frames in samples (10 ms).
pub const HOP: usize = 160;
/// Frames in one 30 s decoder window.
pub const N_FRAMES: usize = 3000;
/// Frequency bins of a real FFT of `N_FFT` samples.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Zero samples faster-whisper appends before the STFT.
const TAIL_PADDING: usize = HOP;
/// Dynamic range kept below the loudest value, in log10 units (80 dB).
const DYNAMIC_RANGE: f64 = 8.0;
/// Frames handed to one rayon task: large enough to amortise the FFT scratch set-up.
const FRAMES_PER_TASK: usize = 256;

/// A log-mel spectrogram, row-major `[n_mels][n_frames]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl LogMel {
    /// One mel row (all frames of one mel bin).
    pub fn row(&self, mel: usize) -> &[f32] {
        &self.data[mel * self.n_frames..(mel + 1) * self.n_frames]
    }

    /// The decoder's input for frames `start .. start + len`: `[n_mels][N_FRAMES]`, row-major.
    /// Frames past `len` or past the end of the audio are 0.0 (zero in log-mel units, as
    /// faster-whisper pads a short last window). `len` beyond `N_FRAMES` is cut to `N_FRAMES`.
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n_mels * N_FRAMES];
        let end = start.saturating_add(len.min(N_FRAMES)).min(self.n_frames);
        if start >= end {
            return out;
        }
        let taken = end - start;
        for (mel, dst) in out.chunks_exact_mut(N_FRAMES).enumerate() {
            dst[..taken].copy_from_slice(&self.row(mel)[start..end]);
        }
        out
    }
}

/// What the decoding loop reads: the clamped, scaled log-mel of a whole input, a window at
/// a time (held in memory, [`LogMel`], or built as the audio streamed in, [`StreamedMel`]).
pub trait Features: Sync {
    fn n_mels(&self) -> usize;
    /// Frames of the whole input.
    fn n_frames(&self) -> usize;
    /// As [`LogMel::window`]; reading back a spilled spectrogram can fail.
    fn window(&self, start: usize, len: usize) -> io::Result<Vec<f32>>;
}

impl Features for LogMel {
    fn n_mels(&self) -> usize {
        self.n_mels
    }

    fn n_frames(&self) -> usize {
        self.n_frames
    }

    fn window(&self, start: usize, len: usize) -> io::Result<Vec<f32>> {
        Ok(LogMel::window(self, start, len))
    }
}

/// Number of frames the reference produces for `n_samples` samples.
/// (len + 160 padded, centred STFT gives 1 + (len + 160) / 160 frames, one dropped.)
pub fn frame_count(n_samples: usize) -> usize {
    (n_samples + TAIL_PADDING) / HOP
}

/// The Whisper log-mel spectrogram of 16 kHz mono `samples`, with `n_mels` bins
/// (80 for most models, 128 for large-v3), computed on the host.
pub fn log_mel(samples: &[f32], n_mels: usize) -> LogMel {
    log_mel_by_windows(samples, n_mels, &log10_mel_frames)
}

/// As [`log_mel`], with the per-window mel kernel run by `backend`. The clamp to the
/// file-wide maximum − 8 stays on the host: it needs the maximum over every window.
pub fn log_mel_with(backend: &dyn Backend, samples: &[f32], n_mels: usize) -> LogMel {
    log_mel_by_windows(samples, n_mels, &|signal, n, m, out| {
        backend.log_mel(signal, n, m, out)
    })
}

type MelKernel<'a> = &'a dyn Fn(&[f32], usize, usize, &mut [f32]);

/// Runs `kernel` over windows of up to `N_FRAMES` frames, then clamps and scales.
fn log_mel_by_windows(samples: &[f32], n_mels: usize, kernel: MelKernel) -> LogMel {
    let n_frames = frame_count(samples.len());
    let signal = padded_signal(samples);
    let mut frame_major = vec![0.0f32; n_frames * n_mels];
    if n_mels > 0 {
        for (w, out) in frame_major.chunks_mut(N_FRAMES * n_mels).enumerate() {
            let (first, n) = (w * N_FRAMES, out.len() / n_mels);
            let span = &signal[first * HOP..(first + n - 1) * HOP + N_FFT];
            kernel(span, n, n_mels, out);
        }
    }
    let max = frame_major
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let floor = max - DYNAMIC_RANGE;
    let mut data = vec![0.0f32; n_mels * n_frames];
    for (frame, mels) in frame_major.chunks_exact(n_mels.max(1)).enumerate() {
        for (mel, &v) in mels.iter().enumerate() {
            data[mel * n_frames + frame] = clamp_and_scale(v, floor);
        }
    }
    LogMel {
        n_mels,
        n_frames,
        data,
    }
}

/// A log10 mel value to the model's input: clamped below at `floor` (the maximum − 8),
/// then `(x + 4) / 4`.
fn clamp_and_scale(log10: f32, floor: f64) -> f32 {
    (((log10 as f64).max(floor) + 4.0) / 4.0) as f32
}

/// The mel kernel: log10 mel power of `n_frames` frames, frame `f` being the `N_FFT`
/// samples of `signal` from `f * HOP`, into `out[f * n_mels + m]`. f64 inside.
pub fn log10_mel_frames(signal: &[f32], n_frames: usize, n_mels: usize, out: &mut [f32]) {
    assert!(
        n_frames == 0 || signal.len() >= (n_frames - 1) * HOP + N_FFT,
        "mel kernel: signal too short for {n_frames} frames"
    );
    let bank = SparseMelBank::new(n_mels);
    let window = hann_periodic();
    let fft: Arc<dyn RealToComplex<f64>> = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
    out[..n_frames * n_mels]
        .par_chunks_mut(FRAMES_PER_TASK * n_mels)
        .enumerate()
        .for_each(|(task, block)| {
            let mut input = fft.make_input_vec();
            let mut spectrum = fft.make_output_vec();
            let mut scratch = fft.make_scratch_vec();
            let mut power = vec![0.0f64; N_BINS];
            let mut mels = vec![0.0f64; n_mels];
            for (i, dst) in block.chunks_exact_mut(n_mels).enumerate() {
                let offset = (task * FRAMES_PER_TASK + i) * HOP;
                for ((x, &s), w) in input.iter_mut().zip(&signal[offset..]).zip(&window) {
                    *x = s as f64 * w;
                }
                fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                    .expect("buffers come from the same plan");
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p = c.norm_sqr();
                }
                bank.apply(&power, &mut mels);
                for (d, m) in dst.iter_mut().zip(&mels) {
                    *d = m.max(1e-10).log10() as f32;
                }
            }
        });
}

/// The samples with 160 zeros appended and 200 samples reflected onto each end (numpy's
/// `reflect`: the edge sample is not repeated); long enough for every frame.
fn padded_signal(samples: &[f32]) -> Vec<f32> {
    let n = samples.len() + TAIL_PADDING;
    let at = |i: usize| -> f32 {
        if i < samples.len() {
            samples[i]
        } else {
            0.0
        }
    };
    let half = (N_FFT / 2) as isize;
    (-half..n as isize + half)
        .map(|i| at(reflect_index(i, n)))
        .collect()
}

/// Index into a length-`n` signal extended by repeated reflection about its end samples.
fn reflect_index(i: isize, n: usize) -> usize {
    let period = 2 * (n as isize - 1);
    if period == 0 {
        return 0;
    }
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Periodic Hann window of `N_FFT` samples (numpy `hanning(401)[:-1]`).
fn hann_periodic() -> Vec<f64> {
    (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
        .collect()
}

/// Slaney mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_HZ / F_SP + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// The mel filter bank, row-major `[n_mels][N_BINS]`, exactly librosa's
/// `mel(sr=16000, n_fft=400, n_mels, fmin=0, fmax=8000, htk=False, norm="slaney")`:
/// triangles between consecutive mel-spaced edges, each scaled to unit area in Hz (2 / width).
pub fn mel_filter_bank(n_mels: usize) -> Vec<f64> {
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let top = hz_to_mel(nyquist);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let bin_hz = |k: usize| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64;
    let mut bank = vec![0.0f64; n_mels * N_BINS];
    for (m, row) in bank.chunks_exact_mut(N_BINS).enumerate() {
        let (lo, centre, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, w) in row.iter_mut().enumerate() {
            let f = bin_hz(k);
            let rising = (f - lo) / (centre - lo);
            let falling = (hi - f) / (hi - centre);
            *w = rising.min(falling).max(0.0) * norm;
        }
    }
    bank
}

/// The filter bank stored as one run of non-zero weights per mel bin: each triangle covers
/// a handful of the 201 bins, so this is ~25x less work than the dense product.
struct SparseMelBank {
    rows: Vec<(usize, Vec<f64>)>,
}

impl SparseMelBank {
    fn new(n_mels: usize) -> Self {
        let dense = mel_filter_bank(n_mels);
        let rows = dense
            .chunks_exact(N_BINS)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        Self { rows }
    }

    fn apply(&self, power: &[f64], out: &mut [f64]) {
        for (o, (first, weights)) in out.iter_mut().zip(&self.rows) {
            *o = weights
                .iter()
                .zip(&power[*first..])
                .map(|(w, p)| w * p)
                .sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0, 1, 2], 5, "reflect") == [1 0 1 2 1 0 1 2 1 0 1 2 1] (numpy 2.4).
        let idx: Vec<usize> = (-5..8).map(|i| reflect_index(i, 3)).collect();
        assert_eq!(idx, vec![1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
    }

    #[test]
    fn slaney_scale_round_trips() {
        for hz in [0.0, 500.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }
}
