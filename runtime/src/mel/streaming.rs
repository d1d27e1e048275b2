//! The log-mel of an input too long to hold, built as its samples arrive.
//!
//! The mel kernel runs on each block of [`N_FRAMES`] frames as soon as the block's samples
//! (and the STFT's 200 samples of context past it) are in; only those samples are kept. The
//! log10 values go to a [`Spill`]: memory for a few minutes of audio, a temporary file after
//! that. The clamp to the file-wide maximum − 8 needs every block first, so it is applied as
//! windows are read back. The blocks, the kernel and the formula are [`log_mel_with`]'s, so
//! every value is the one it gives on the whole signal (tested bit for bit).
//!
//! [`log_mel_with`]: super::log_mel_with

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use super::{clamp_and_scale, frame_count, reflect_index, Features, HOP, N_FFT, N_FRAMES};
use crate::backend::Backend;

/// log10 mel values kept in memory before they move to a temporary file (8 MiB: about four
/// minutes of audio at 80 mel bins).
pub const SPILL_AFTER_BYTES: usize = 8 << 20;

/// Samples of STFT context on each side of a frame's centre.
const HALF: usize = N_FFT / 2;

/// Builds the log-mel of a signal pushed in chunks of any size.
pub struct MelStream<'a> {
    backend: &'a dyn Backend,
    n_mels: usize,
    /// Samples from `base` on: what the next block's frames still need.
    buffer: Vec<f32>,
    base: usize,
    received: usize,
    /// The first frame not yet computed.
    next_frame: usize,
    store: Spill,
    max: f32,
    /// The kernel's output for one block, frame-major.
    block: Vec<f32>,
}

impl<'a> MelStream<'a> {
    /// `n_mels` bins, the mel kernel run by `backend`.
    pub fn new(backend: &'a dyn Backend, n_mels: usize) -> Self {
        Self::with_spill_threshold(backend, n_mels, SPILL_AFTER_BYTES)
    }

    /// [`MelStream::new`], moving to a temporary file past `spill_after` bytes of values.
    pub fn with_spill_threshold(
        backend: &'a dyn Backend,
        n_mels: usize,
        spill_after: usize,
    ) -> Self {
        Self {
            backend,
            n_mels,
            buffer: Vec::new(),
            base: 0,
            received: 0,
            next_frame: 0,
            store: Spill::new(spill_after),
            max: f32::NEG_INFINITY,
            block: Vec::new(),
        }
    }

    /// Appends samples; computes every block they complete.
    pub fn push(&mut self, samples: &[f32]) -> io::Result<()> {
        self.buffer.extend_from_slice(samples);
        self.received += samples.len();
        // A block is complete when its last frame's context is all real samples. The end of
        // the signal (zero tail, reflection) is only known at `finish`.
        while self.received >= (self.next_frame + N_FRAMES - 1) * HOP + HALF {
            let (base, buffer) = (self.base, &self.buffer);
            // Before the first sample the signal is reflected (x[-i] = x[i]); the signal is
            // long enough here for that to be one reflection.
            let span = self.span(N_FRAMES, |i| buffer[i.unsigned_abs() - base]);
            self.compute(&span, N_FRAMES)?;
            let keep_from = self.next_frame * HOP - HALF;
            self.buffer.drain(..keep_from - self.base);
            self.base = keep_from;
        }
        Ok(())
    }

    /// The rest of the frames, with the end's zero padding and reflection; the features.
    pub fn finish(mut self) -> io::Result<StreamedMel> {
        let len = self.received;
        let padded = len + HOP;
        let total = frame_count(len);
        while self.next_frame < total {
            let frames = N_FRAMES.min(total - self.next_frame);
            let (base, buffer) = (self.base, &self.buffer);
            let span = self.span(frames, |i| {
                let j = reflect_index(i, padded);
                if j < len {
                    buffer[j - base]
                } else {
                    0.0
                }
            });
            self.compute(&span, frames)?;
        }
        Ok(StreamedMel {
            n_mels: self.n_mels,
            n_frames: total,
            floor: self.max as f64 - super::DYNAMIC_RANGE,
            store: self.store,
        })
    }

    /// The kernel's input for `frames` frames from `next_frame`: signal sample `i` (from
    /// −200 on) is `at(i)`.
    fn span(&self, frames: usize, at: impl Fn(isize) -> f32) -> Vec<f32> {
        let first = (self.next_frame * HOP) as isize - HALF as isize;
        (0..(frames - 1) * HOP + N_FFT)
            .map(|p| at(first + p as isize))
            .collect()
    }

    /// Runs the kernel on `span` (`frames` frames from `next_frame`) and stores the result.
    fn compute(&mut self, span: &[f32], frames: usize) -> io::Result<()> {
        self.block.clear();
        self.block.resize(frames * self.n_mels, 0.0);
        if self.n_mels > 0 {
            self.backend
                .log_mel(span, frames, self.n_mels, &mut self.block);
        }
        self.max = self.block.iter().copied().fold(self.max, f32::max);
        self.store.append(&self.block)?;
        self.next_frame += frames;
        Ok(())
    }
}

/// A finished [`MelStream`]: the clamped, scaled log-mel, read a window at a time.
pub struct StreamedMel {
    n_mels: usize,
    n_frames: usize,
    floor: f64,
    /// Unclamped log10 values, frame-major.
    store: Spill,
}

impl StreamedMel {
    /// Whether the values live in a temporary file.
    pub fn spilled(&self) -> bool {
        matches!(self.store, Spill::File { .. })
    }
}

impl Features for StreamedMel {
    fn n_mels(&self) -> usize {
        self.n_mels
    }

    fn n_frames(&self) -> usize {
        self.n_frames
    }

    fn window(&self, start: usize, len: usize) -> io::Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.n_mels * N_FRAMES];
        let end = start.saturating_add(len.min(N_FRAMES)).min(self.n_frames);
        if start >= end {
            return Ok(out);
        }
        let values = self
            .store
            .read(start * self.n_mels, (end - start) * self.n_mels)?;
        for (frame, mels) in values.chunks_exact(self.n_mels).enumerate() {
            for (mel, &v) in mels.iter().enumerate() {
                out[mel * N_FRAMES + frame] = clamp_and_scale(v, self.floor);
            }
        }
        Ok(out)
    }
}

/// f32 values appended in order and read back by position: in memory up to a threshold,
/// then in an unnamed temporary file (gone when it is closed, whatever happens).
enum Spill {
    Memory { values: Vec<f32>, limit: usize },
    File { file: File, len: usize },
}

impl Spill {
    fn new(limit_bytes: usize) -> Self {
        Spill::Memory {
            values: Vec::new(),
            limit: limit_bytes / 4,
        }
    }

    fn append(&mut self, more: &[f32]) -> io::Result<()> {
        if let Spill::Memory { values, limit } = self {
            if values.len() + more.len() <= *limit {
                values.extend_from_slice(more);
                return Ok(());
            }
            let mut file = tempfile::tempfile()?;
            file.write_all(&to_bytes(values))?;
            *self = Spill::File {
                len: values.len(),
                file,
            };
        }
        let Spill::File { file, len } = self else {
            unreachable!("moved to a file above");
        };
        file.write_all(&to_bytes(more))?;
        *len += more.len();
        Ok(())
    }

    fn read(&self, at: usize, count: usize) -> io::Result<Vec<f32>> {
        match self {
            Spill::Memory { values, .. } => Ok(values[at..at + count].to_vec()),
            Spill::File { file, len } => {
                assert!(at + count <= *len, "spill read past its end");
                let mut bytes = vec![0u8; count * 4];
                file.read_exact_at(&mut bytes, (at * 4) as u64)?;
                Ok(bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect())
            }
        }
    }
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
