//! Sample-rate conversion to 16 kHz with rubato's synchronous FFT resampler.

use rubato::{FftFixedInOut, Resampler};

/// Resamples mono audio from `from` Hz to `to` Hz; returns the input unchanged when equal.
///
/// Why rubato's synchronous FFT resampler rather than its sinc interpolators: a file has
/// one fixed rational ratio, for which the FFT resampler filters each block exactly (a
/// Blackman-Harris² windowed sinc just below the lower Nyquist, applied by FFT convolution)
/// without interpolating a sinc table, and it is several times faster. Measured on tones
/// from 8, 11.025, 22.05, 44.1 and 48 kHz: 2.9e-5 RMS error relative to the signal, which
/// is the 16-bit output grid's own noise (tests/audio.rs).
///
/// The resampler's delay is removed and the output has `round(len * to / from)` samples,
/// so timestamps line up with the original.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(format!("invalid sample rates {from} -> {to}"));
    }
    let mut resampler =
        FftFixedInOut::<f32>::new(from as usize, to as usize, even_chunk(from, to), 1)
            .map_err(|e| e.to_string())?;
    let chunk_in = resampler.input_frames_next();
    let delay = resampler.output_delay();
    let wanted = ((samples.len() as u64 * to as u64 + from as u64 / 2) / from as u64) as usize;
    let mut out: Vec<f32> = Vec::with_capacity(wanted + delay + resampler.output_frames_max());
    let mut block = vec![vec![0.0f32; chunk_in]];
    let mut output = resampler.output_buffer_allocate(true);
    let mut position = 0;
    // Feed whole blocks, then zeros until the delayed tail has come out.
    while out.len() < wanted + delay {
        let end = (position + chunk_in).min(samples.len());
        let taken = end.saturating_sub(position);
        if taken > 0 {
            block[0][..taken].copy_from_slice(&samples[position..end]);
        }
        block[0][taken..].fill(0.0);
        position += taken;
        let (_, produced) = resampler
            .process_into_buffer(&block, &mut output, None)
            .map_err(|e| e.to_string())?;
        out.extend_from_slice(&output[0][..produced]);
    }
    out.drain(..delay);
    out.truncate(wanted);
    Ok(out)
}

/// An input block length of about 1024 that is a whole number of the ratio's smallest
/// blocks and even: rubato centres its anti-alias filter at `block / 2` (integer division),
/// so an odd block would shift the output by a fraction of a sample.
fn even_chunk(from: u32, to: u32) -> usize {
    let (mut a, mut b) = (from as usize, to as usize);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let smallest_in = from as usize / a;
    let mut blocks = 1024usize.div_ceil(smallest_in);
    if (blocks * smallest_in) % 2 == 1 {
        blocks += 1;
    }
    blocks * smallest_in
}
