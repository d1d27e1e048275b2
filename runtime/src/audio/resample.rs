//! Sample-rate conversion to 16 kHz the way libswresample does it with its default options,
//! so the samples Whisper sees are the ones faster-whisper (PyAV) and openai-whisper (the
//! ffmpeg CLI) feed it: both resample with libswresample's default filter.
//!
//! The method (FFmpeg's `libswresample/resample.c`, re-implemented from its description):
//! a bank of Kaiser-windowed sinc filters, one per fractional input position ("phase"). An
//! output sample at input time `t` applies the filter of phase `frac(t)` to the `taps` input
//! samples around `floor(t)`. With the default `exact_rational`, a ratio whose reduced
//! numerator fits in 1024 phases (every common rate to 16 kHz) uses exactly that many phases,
//! so every output lands on a phase and no interpolation between phases is needed; other
//! ratios use 1024 phases and interpolate linearly between neighbours (`linear_interp`).
//! The input is mirrored at both ends as libswresample does, which also fixes the output
//! length (see [`resample`]).
//!
//! Arithmetic: libswresample computes in `float` for float inputs and, through PyAV's
//! filter graph, also for 16-bit ones (checked against PyAV 18.1: both give identical
//! output), with `float` coefficients built in `double`. We build the bank the same way and
//! sum each dot product in `f64`; the only difference is summation order, below `f32`
//! resolution.

/// libswresample's defaults (`libswresample/options.c`): `filter_size`, `phase_shift` (as a
/// phase count), `cutoff` and `kaiser_beta`.
const FILTER_SIZE: f64 = 32.0;
const MAX_PHASES: u64 = 1 << 10;
const CUTOFF: f64 = 0.97;
const KAISER_BETA: f64 = 9.0;
/// libswresample scales its step fractions up until one of them reaches this (finer
/// fractions for the linear interpolation); kept so non-exact ratios step identically.
const MIN_INCREMENT: u64 = 1 << 20;
/// av_reduce's bound in `resample_init`: larger step fractions would be approximated.
const MAX_INCREMENT: u64 = (i32::MAX / 2) as u64;

/// Resamples mono audio from `from` Hz to `to` Hz; returns the input unchanged when equal.
///
/// The first output sample is aligned with the first input sample. Before the first sample
/// the input is mirrored about it (`x[-n] = x[n]`); after the last, libswresample's flush
/// appends a mirror image (`x[N + j] = x[N - 1 - j]`) of half the samples still buffered,
/// and the output ends where the filter runs out of that. The length this gives is what
/// PyAV returns (e.g. 12345 samples at 44.1 kHz give 4479, at 48 kHz 4115).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(format!("invalid sample rates {from} -> {to}"));
    }
    Ok(Resampler::new(from, to)?.run(samples))
}

/// [`resample`] fed in chunks, for inputs too long to hold: every output is the one
/// [`resample`] gives on the whole signal, bit for bit. Only the input the filter still needs
/// (about one filter length) is kept between chunks.
pub struct ChunkedResampler {
    /// `None` when the rates are equal: the samples pass through.
    filter: Option<Resampler>,
    /// Input not yet consumed, from the first sample the next output's filter touches; before
    /// the start, the whole input so far (the mirror at the start needs its first samples).
    buffer: Vec<f32>,
    at: Position,
    started: bool,
}

impl ChunkedResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        if from == 0 || to == 0 {
            return Err(format!("invalid sample rates {from} -> {to}"));
        }
        let filter = if from == to {
            None
        } else {
            Some(Resampler::new(from, to)?)
        };
        Ok(Self {
            filter,
            buffer: Vec::new(),
            at: Position::default(),
            started: false,
        })
    }

    /// Feeds `input`, appending to `out` every output whose filter it completes.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let Some(r) = &self.filter else {
            out.extend_from_slice(input);
            return;
        };
        self.buffer.extend_from_slice(input);
        let centre = (r.taps - 1) / 2;
        if !self.started {
            // The mirror image before x[0] is x[centre] .. x[1]: wait until those exist.
            if self.buffer.len() <= centre {
                return;
            }
            let mirrored: Vec<f32> = (1..=centre).rev().map(|m| self.buffer[m]).collect();
            self.buffer.splice(0..0, mirrored);
            self.started = true;
        }
        r.emit_while_inside(&self.buffer, &mut self.at, out);
        self.buffer.drain(..self.at.start);
        self.at.start = 0;
    }

    /// Ends the input: the flush's outputs (see [`resample`]).
    pub fn finish(mut self, out: &mut Vec<f32>) {
        let Some(r) = &self.filter else {
            return;
        };
        if !self.started {
            // Shorter than half a filter: the whole signal is here.
            if !self.buffer.is_empty() {
                out.extend(r.run(&self.buffer));
            }
            return;
        }
        r.flush(&mut self.buffer, &mut self.at, out);
    }
}

/// The filter bank and the step between outputs for one pair of rates.
struct Resampler {
    taps: usize,
    phases: usize,
    /// `phases + 1` rows of `taps` coefficients; the extra row is phase 0 one sample later,
    /// the right neighbour of the last phase for the linear interpolation.
    bank: Vec<f32>,
    step: Step,
    /// Interpolate between neighbouring phases: only when outputs fall between phases.
    linear: bool,
    /// Output samples per input sample.
    ratio: f64,
}

/// The distance between outputs in input phases: `whole + rem / denom`.
#[derive(Clone, Copy)]
struct Step {
    whole: u64,
    rem: u64,
    denom: u64,
}

/// Where the next output's filter sits: first input sample (in the mirrored buffer), phase,
/// and the fraction of a phase (`frac / denom`).
#[derive(Clone, Copy, Default)]
struct Position {
    start: usize,
    phase: usize,
    frac: u64,
}

impl Resampler {
    fn new(from: u32, to: u32) -> Result<Self, String> {
        let (from, to) = (from as u64, to as u64);
        // Below 1 when downsampling: the sinc's cutoff, a little under the output Nyquist.
        let factor = (to as f64 * CUTOFF / from as f64).min(1.0);
        let mut taps = ((FILTER_SIZE / factor).ceil() as usize).max(1);
        if taps > 1 {
            taps = taps.next_multiple_of(2);
        }
        let exact_phases = to / gcd(to, from);
        let phases = if exact_phases <= MAX_PHASES {
            exact_phases
        } else {
            MAX_PHASES
        };
        let g = gcd(to, from * phases);
        let (mut denom, mut incr) = (to / g, from * phases / g);
        if denom > MAX_INCREMENT || incr > MAX_INCREMENT {
            return Err(format!(
                "the ratio {from} -> {to} Hz is too fine for libswresample's stepping"
            ));
        }
        while incr < MIN_INCREMENT && denom < MIN_INCREMENT {
            incr *= 2;
            denom *= 2;
        }
        let step = Step {
            whole: incr / denom,
            rem: incr % denom,
            denom,
        };
        Ok(Self {
            taps,
            phases: phases as usize,
            bank: filter_bank(factor, taps, phases as usize),
            step,
            linear: step.rem != 0,
            ratio: to as f64 / from as f64,
        })
    }

    fn run(&self, samples: &[f32]) -> Vec<f32> {
        let n = samples.len();
        let centre = (self.taps - 1) / 2;
        let mut buffer = Vec::with_capacity(centre + n + self.taps);
        // The first output's filter starts `centre` samples before x[0], in the mirror image.
        buffer.extend((1..=centre).rev().map(|m| samples[m.min(n - 1)]));
        buffer.extend_from_slice(samples);
        let mut out = Vec::with_capacity((n as f64 * self.ratio) as usize + 2);
        let mut at = Position::default();
        self.emit_while_inside(&buffer, &mut at, &mut out);
        self.flush(&mut buffer, &mut at, &mut out);
        out
    }

    /// The end of the input: mirror half of what is still buffered (at most one filter's
    /// length) and emit what that completes.
    fn flush(&self, buffer: &mut Vec<f32>, at: &mut Position, out: &mut Vec<f32>) {
        let buffered = buffer.len().saturating_sub(at.start);
        let end = buffer.len();
        for j in 0..buffered.min(self.taps).div_ceil(2) {
            buffer.push(buffer[end - 1 - j]);
        }
        self.emit_while_inside(buffer, at, out);
    }

    /// Appends outputs while the filter lies wholly inside `buffer`.
    fn emit_while_inside(&self, buffer: &[f32], at: &mut Position, out: &mut Vec<f32>) {
        while at.start + self.taps <= buffer.len() {
            let window = &buffer[at.start..at.start + self.taps];
            let value = dot(window, self.row(at.phase));
            out.push(if self.linear {
                let next = dot(window, self.row(at.phase + 1));
                value + (next - value) * (at.frac as f64 / self.step.denom as f64)
            } else {
                value
            } as f32);
            self.advance(at);
        }
    }

    fn advance(&self, at: &mut Position) {
        at.frac += self.step.rem;
        let mut phase = at.phase as u64 + self.step.whole;
        if at.frac >= self.step.denom {
            at.frac -= self.step.denom;
            phase += 1;
        }
        at.start += (phase / self.phases as u64) as usize;
        at.phase = (phase % self.phases as u64) as usize;
    }

    fn row(&self, phase: usize) -> &[f32] {
        &self.bank[phase * self.taps..(phase + 1) * self.taps]
    }
}

fn dot(window: &[f32], coefficients: &[f32]) -> f64 {
    window
        .iter()
        .zip(coefficients)
        .map(|(&x, &c)| x as f64 * c as f64)
        .sum()
}

/// libswresample's bank: phase `p`, tap `i` is `sinc(π·d·factor)·kaiser(2d / taps)` with
/// `d = i - centre - p / phases`, every phase divided by the sum of phase 0 (so a constant
/// signal keeps its level at phase 0, and the other phases stay exactly as built rather
/// than each normalised), rounded to `f32`. For an even phase count only the first half is
/// computed and the rest mirrored (`row[P - p]` is `row[p]` reversed, done in place for
/// `p = P/2` as libswresample does); the extra row `P` is row 0 shifted by one sample, its
/// first entry taken from the row's zero padding to a multiple of 8 taps when there is one.
fn filter_bank(factor: f64, taps: usize, phases: usize) -> Vec<f32> {
    let centre = ((taps - 1) / 2) as f64;
    let coefficient = |i: usize, phase: usize| {
        let d = (i as f64 - centre) - phase as f64 / phases as f64;
        let x = std::f64::consts::PI * d * factor;
        let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
        let w = 2.0 * x / (factor * taps as f64 * std::f64::consts::PI);
        sinc * bessel_i0(KAISER_BETA * (1.0 - w * w).max(0.0).sqrt())
    };
    let norm: f64 = (0..taps).map(|i| coefficient(i, 0)).sum();
    let mut bank = vec![0.0f32; (phases + 1) * taps];
    let even = phases.is_multiple_of(2);
    let computed = if even { phases / 2 + 1 } else { phases };
    for phase in 0..computed {
        for i in 0..taps {
            bank[phase * taps + i] = (coefficient(i, phase) / norm) as f32;
        }
        if even {
            for i in 0..taps {
                bank[(phases - phase) * taps + taps - 1 - i] = bank[phase * taps + i];
            }
        }
    }
    let padded = taps.next_multiple_of(8) > taps;
    bank[phases * taps] = if padded { 0.0 } else { bank[taps - 1] };
    for i in 1..taps {
        bank[phases * taps + i] = bank[i - 1];
    }
    bank
}

/// The zeroth-order modified Bessel function of the first kind, by its power series
/// `Σ ((x/2)^k / k!)²`, summed until a term no longer changes the total.
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 0.0f64);
    loop {
        k += 1.0;
        term *= quarter_x2 / (k * k);
        let next = sum + term;
        if next == sum {
            return sum;
        }
        sum = next;
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_matches_known_values() {
        // I0(0) = 1, I0(1) = 1.2660658777520082, I0(9) = 1093.5883545113745 (A&S table 9.8).
        assert_eq!(bessel_i0(0.0), 1.0);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_2).abs() < 1e-15);
        assert!((bessel_i0(9.0) / 1_093.588_354_511_374_5 - 1.0).abs() < 1e-14);
    }

    #[test]
    fn filter_sizes_and_phases_follow_the_ratio() {
        let r = Resampler::new(8_000, 16_000).unwrap();
        assert_eq!((r.taps, r.phases, r.linear), (32, 2, false));
        let r = Resampler::new(44_100, 16_000).unwrap();
        // factor = 16000 * 0.97 / 44100; ceil(32 / factor) = 91, rounded up to even.
        assert_eq!((r.taps, r.phases, r.linear), (92, 160, false));
        let r = Resampler::new(48_000, 16_000).unwrap();
        assert_eq!((r.taps, r.phases, r.linear), (100, 1, false));
        // 16000 / 44111 does not reduce below 1024 phases: interpolated.
        let r = Resampler::new(44_111, 16_000).unwrap();
        assert_eq!((r.phases, r.linear), (1024, true));
    }

    /// Chunk sizes from one sample up to more than a filter, at exact and interpolated
    /// ratios and a pass-through: the chunked outputs are the whole-signal outputs, bitwise.
    #[test]
    fn chunked_resampling_gives_the_whole_signal_outputs() {
        let signal: Vec<f32> = (0..9_001)
            .map(|i| ((i as f32 * 0.013).sin() * 0.6 + ((i * 7919) % 113) as f32 / 400.0) - 0.1)
            .collect();
        for (from, to) in [
            (44_100, 16_000),
            (8_000, 16_000),
            (44_111, 16_000),
            (16_000, 16_000),
        ] {
            for len in [1usize, 20, 45, 46, 47, 300, 9_001] {
                let whole = resample(&signal[..len], from, to).unwrap();
                for chunk in [1usize, 3, 64, 91, 1_000, 10_000] {
                    let mut r = ChunkedResampler::new(from, to).unwrap();
                    let mut out = Vec::new();
                    for piece in signal[..len].chunks(chunk) {
                        r.push(piece, &mut out);
                    }
                    r.finish(&mut out);
                    let same = out.len() == whole.len()
                        && out
                            .iter()
                            .zip(&whole)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{from}->{to}, {len} samples in chunks of {chunk}");
                }
            }
        }
    }

    #[test]
    fn every_phase_passes_a_constant_nearly_unchanged() {
        // Each phase sums to about 1 (phase 0 exactly, before f32 rounding): a constant
        // input stays constant in the interior.
        for (from, to) in [(8_000, 16_000), (22_050, 16_000), (48_000, 16_000)] {
            let r = Resampler::new(from, to).unwrap();
            for phase in 0..r.phases {
                let sum: f64 = r.row(phase).iter().map(|&c| c as f64).sum();
                assert!(
                    (sum - 1.0).abs() < 2e-3,
                    "{from}: phase {phase} sums to {sum}"
                );
            }
        }
    }
}
