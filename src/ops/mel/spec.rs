//! The mel spec: its fields, their rules, and its `aiec sim` test case.

use super::{finish_on_host, pad_for_stft, reference, HOP, N_FFT, SAMPLE_RATE, TOLERANCE};
use crate::design::{Design, DesignError};
use crate::device::DeviceModel;
use crate::ops::registry::OpSpec;
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{check_positive, Dtype, Fields, SpecError};

crate::op_spec! {
    pub struct MelSpec {
        /// STFT frames (3000 for a 30 s window).
        pub frames: usize,
        pub n_fft: usize,
        pub hop: usize,
        pub n_mels: usize,
        pub sample_rate: u32,
        /// Frames per FIFO buffer.
        pub frame_tile: usize,
        /// Host layout of the output (see the module docs).
        #[serde(default)]
        pub layout: MelLayout,
    }
    buffer_fields = "frame_tile, depth or stack_bytes";
}

/// How the output buffer orders mels and frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelLayout {
    /// `[n_mels, frames]`: Whisper's own layout (the log-mel matrix as the encoder reads it).
    #[default]
    MelMajor,
    /// `[frames, n_mels]`: what [`aiec_runtime::backend::Backend::log_mel`] returns (the
    /// runtime's clamp pass turns it into Whisper's layout), so `--device sim` needs no
    /// transpose of its own.
    FrameMajor,
}

impl MelSpec {
    /// The kernel's tables are Whisper's front end: fixed n_fft/hop/rate, 80 or 128 mels.
    fn check_front_end(&self, f: &Fields) -> Result<(), SpecError> {
        for (field, got, want) in [
            ("n_fft", self.n_fft, N_FFT),
            ("hop", self.hop, HOP),
            (
                "sample_rate",
                self.sample_rate as usize,
                SAMPLE_RATE as usize,
            ),
        ] {
            if got != want {
                return Err(f.fail(
                    field,
                    format!("{got} is not Whisper's {want} (the only front end supported)"),
                ));
            }
        }
        if self.n_mels != 80 && self.n_mels != 128 {
            return Err(f.fail(
                "n_mels",
                format!(
                    "{} is not one of Whisper's mel counts (80 or 128)",
                    self.n_mels
                ),
            ));
        }
        Ok(())
    }
}

impl OpSpec for MelSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.common(self.common(), &[Dtype::F32], "mel", dev)?;
        check_positive!(f, self, [frames, n_fft, hop, n_mels, frame_tile]);
        self.check_front_end(f)?;
        f.divides(
            "frames",
            self.frames,
            self.frame_tile * self.array.cores(),
            "frame_tile x columns x cores_per_column",
        )
    }

    fn build(&self) -> Result<Design, DesignError> {
        super::build(self)
    }

    fn test_case(&self, design: &Design, gen: &mut InputGen) -> TestCase {
        // Speech-like audio: a few harmonics with a slow envelope plus noise, sized so that
        // Whisper's padding gives exactly the design's input buffer. Whisper keeps
        // (len + 160) / 160 frames: `frames` frames need frames*160 - 160 samples; the design
        // reads the padded signal up to the end of the last frame.
        let n = self.frames * HOP - HOP;
        let padded_len = design.sequence.args[0].ty.numel();
        let f0 = 120.0 + 80.0 * (gen.normal().abs().min(2.0));
        let audio: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let env = 0.5 + 0.5 * (std::f64::consts::TAU * 3.0 * t).sin();
                let voice: f64 = (1..=6)
                    .map(|h| (std::f64::consts::TAU * f0 * h as f64 * t).sin() / h as f64)
                    .sum();
                (0.1 * env * voice + 0.01 * gen.normal()) as f32
            })
            .collect();
        let (mut padded, frames) = pad_for_stft(&audio);
        padded.truncate(padded_len);
        let padded_f64: Vec<f64> = padded.iter().map(|&v| f64::from(v)).collect();
        let mut r = reference(&padded_f64, frames, self.n_mels);
        let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for v in &mut r {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        let (layout, n_mels) = (self.layout, self.n_mels);
        TestCase {
            inputs: vec![HostData::F32(padded)],
            judge: crate::sim::verify::precomputed(move |out: &[HostData]| {
                let mut y: Vec<f32> = out[0].to_f64().iter().map(|&v| v as f32).collect();
                if layout == MelLayout::FrameMajor {
                    y = (0..n_mels)
                        .flat_map(|m| (0..frames).map(move |f| (m, f)))
                        .map(|(m, f)| y[f * n_mels + m])
                        .collect();
                }
                finish_on_host(&mut y);
                let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
                Comparison::new(
                    &y,
                    &r,
                    false,
                    "|y - ref| <= TOLERANCE after the host clamp",
                    |_, _| TOLERANCE,
                )
            }),
        }
    }
}
