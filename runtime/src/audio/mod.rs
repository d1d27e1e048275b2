//! Audio decoding to 16 kHz mono `f32` samples in [-1, 1].
//!
//! Containers and codecs come from symphonia (wav/aiff PCM of any width, flac, mp3, ogg/vorbis,
//! mp4/m4a with aac or alac, mkv/webm, caf). Channels are averaged into mono; any other sample
//! rate is resampled to 16 kHz as libswresample does it ([`resample`]). MP4 edit lists
//! (AAC priming and padding) are applied as ffmpeg applies them ([`mp4`]).
//!
//! faster-whisper decodes through PyAV, whose resampler hands it 16-bit integers; we do the
//! same last step ([`quantise_like_pyav`]) so the samples Whisper sees are the ones the
//! reference implementation sees, bit for bit on 16-bit sources.

mod mp4;
mod resample;

pub use resample::{resample, ChunkedResampler};

use std::io::{self, Cursor, Read};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The rate every Whisper model expects.
pub const SAMPLE_RATE: u32 = 16_000;

/// Largest input [`load`] reads, in bytes (2 GiB: over three hours of 44.1 kHz stereo 16-bit
/// WAV). A stream without end (`/dev/zero`, a pipe that never closes) stops here instead of
/// filling memory.
pub const MAX_INPUT_BYTES: u64 = 2 << 30;

/// Longest audio decoded, in seconds (4 hours). Beyond it the samples, the log-mel and the
/// transcript grow past what one run should hold; split the recording instead.
pub const MAX_DURATION_SECONDS: f64 = 4.0 * 3600.0;

/// Bounds on one input; the defaults are [`MAX_INPUT_BYTES`] and [`MAX_DURATION_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputLimits {
    pub max_bytes: u64,
    pub max_seconds: f64,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_INPUT_BYTES,
            max_seconds: MAX_DURATION_SECONDS,
        }
    }
}

/// How many packets a decoder may reject (each skipped) before the file is called corrupt.
/// A few bad frames in a long mp3 are common and harmless; a stream of them is not audio.
const MAX_SKIPPED_PACKETS: usize = 16;

/// Why an input could not be turned into samples. Every variant names the input.
#[derive(thiserror::Error, Debug)]
pub enum AudioError {
    #[error("{name}: no such file")]
    NotFound { name: String },
    #[error("{name}: cannot read")]
    Read {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{name}: the file is empty (0 bytes)")]
    EmptyFile { name: String },
    #[error("{name}: not an audio file ({reason})")]
    NotAudio { name: String, reason: String },
    #[error("{name}: the container holds no audio track")]
    NoAudioTrack { name: String },
    #[error("{name}: unsupported audio: {detail}")]
    Unsupported { name: String, detail: String },
    #[error("{name}: corrupt audio after {decoded_samples} samples: {detail}")]
    Corrupt {
        name: String,
        decoded_samples: usize,
        detail: String,
    },
    #[error("{name}: larger than {} MiB (the input size limit)", limit >> 20)]
    TooLarge { name: String, limit: u64 },
    #[error("{name}: longer than {limit} s (the input duration limit)")]
    TooLong { name: String, limit: f64 },
    #[error("{name}: the decoder failed on malformed data: {detail}")]
    DecoderPanic { name: String, detail: String },
    #[error("{name}: the file contains no audio samples")]
    NoSamples { name: String },
    #[error("{name}: invalid sample rate {rate} Hz")]
    BadSampleRate { name: String, rate: u32 },
    #[error("{name}: resampling from {from} Hz to 16000 Hz failed: {detail}")]
    Resample {
        name: String,
        from: u32,
        detail: String,
    },
}

/// Receives decoded 16 kHz mono samples, a chunk at a time, in order.
pub type SampleSink<'a> = &'a mut dyn FnMut(&[f32]);

/// Loads an audio file as 16 kHz mono samples, within the default [`InputLimits`]. `-` reads
/// standard input to its end first.
pub fn load(path: &Path) -> Result<Vec<f32>, AudioError> {
    load_with(path, &InputLimits::default())
}

/// [`load`] within `limits`.
pub fn load_with(path: &Path, limits: &InputLimits) -> Result<Vec<f32>, AudioError> {
    let mut samples = Vec::new();
    stream_with(path, limits, &mut |chunk| samples.extend_from_slice(chunk))?;
    Ok(samples)
}

/// Decodes `path` within `limits`, handing its 16 kHz mono samples to `sink` as they are
/// decoded; returns how many there were. A regular file is read through the decoder, so
/// memory does not grow with the file's length; standard input (`-`) and pipes are read
/// into memory first (bounded by `limits`). The samples are exactly [`load`]'s. The checks
/// that need the whole file (a corrupt file that decodes to nothing but silence, no samples
/// at all) come at the end: `sink` may have seen samples of an input that then fails.
pub fn stream_with(
    path: &Path,
    limits: &InputLimits,
    sink: SampleSink,
) -> Result<usize, AudioError> {
    if path.as_os_str() == "-" {
        let name = "<stdin>";
        let bytes = read_bounded(io::stdin().lock(), limits.max_bytes, name)?;
        return stream_bytes(bytes, None, name, limits, sink);
    }
    let name = path.display().to_string();
    let read_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => AudioError::NotFound { name: name.clone() },
        _ => AudioError::Read {
            name: name.clone(),
            source,
        },
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(AudioError::Read {
            name,
            source: io::Error::new(io::ErrorKind::IsADirectory, "it is a directory"),
        });
    }
    let ext = path.extension().and_then(|e| e.to_str());
    if !meta.is_file() {
        // A device or pipe: its length is unknown, so it is cut off while reading.
        let bytes = read_bounded(file, limits.max_bytes, &name)?;
        return stream_bytes(bytes, ext, &name, limits, sink);
    }
    if meta.len() > limits.max_bytes {
        return Err(AudioError::TooLarge {
            name,
            limit: limits.max_bytes,
        });
    }
    if meta.len() == 0 {
        return Err(AudioError::EmptyFile { name });
    }
    let mut head = vec![0u8; meta.len().min(HEAD_BYTES) as usize];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).map_err(read_err)?;
    let timing = mp4::AudioTiming::read(&file);
    let input = Input {
        media: Box::new(file),
        head: &head,
        timing,
        hint_ext: ext,
        name: &name,
    };
    decode_checked(input, limits, sink)
}

/// Reads `source` to its end, failing once it passes `max_bytes`.
fn read_bounded(source: impl Read, max_bytes: u64, name: &str) -> Result<Vec<u8>, AudioError> {
    let mut bytes = Vec::new();
    source
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| AudioError::Read {
            name: name.to_string(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(AudioError::TooLarge {
            name: name.to_string(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// Decodes an in-memory file (any supported container) to 16 kHz mono samples.
/// `hint_ext` (e.g. `"mp3"`) only speeds up format detection; content decides.
/// `name` is used in error messages.
pub fn decode_bytes(
    bytes: Vec<u8>,
    hint_ext: Option<&str>,
    name: &str,
) -> Result<Vec<f32>, AudioError> {
    decode_bytes_with(bytes, hint_ext, name, &InputLimits::default())
}

/// [`decode_bytes`] within `limits` (only the duration limit applies to bytes in memory).
pub fn decode_bytes_with(
    bytes: Vec<u8>,
    hint_ext: Option<&str>,
    name: &str,
    limits: &InputLimits,
) -> Result<Vec<f32>, AudioError> {
    let mut samples = Vec::new();
    stream_bytes(bytes, hint_ext, name, limits, &mut |chunk| {
        samples.extend_from_slice(chunk)
    })?;
    Ok(samples)
}

/// [`stream_with`] for a file already in memory.
fn stream_bytes(
    bytes: Vec<u8>,
    hint_ext: Option<&str>,
    name: &str,
    limits: &InputLimits,
    sink: SampleSink,
) -> Result<usize, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::EmptyFile {
            name: name.to_string(),
        });
    }
    let head = bytes[..bytes.len().min(HEAD_BYTES as usize)].to_vec();
    let timing = mp4::AudioTiming::parse(&bytes);
    let input = Input {
        media: Box::new(Cursor::new(bytes)),
        head: &head,
        timing,
        hint_ext,
        name,
    };
    decode_checked(input, limits, sink)
}

/// Leading bytes kept for the checks made before decoding (RIFF header, container magic).
const HEAD_BYTES: u64 = 64 << 10;

/// One encoded input, opened.
struct Input<'a> {
    media: Box<dyn MediaSource>,
    /// Its first bytes (up to [`HEAD_BYTES`]).
    head: &'a [u8],
    /// An MP4's edit list, if it is one.
    timing: Option<mp4::AudioTiming>,
    hint_ext: Option<&'a str>,
    name: &'a str,
}

/// The checks symphonia would panic on first, then the decode, with any panic contained.
fn decode_checked(
    input: Input,
    limits: &InputLimits,
    sink: SampleSink,
) -> Result<usize, AudioError> {
    let name = input.name;
    if let Some(rate) = riff_sample_rate(input.head).filter(|&r| r == 0) {
        return Err(AudioError::BadSampleRate {
            name: name.to_string(),
            rate,
        });
    }
    let max_seconds = limits.max_seconds;
    crate::guard::contain(|| decode_mono(input, max_seconds, sink)).map_err(|detail| {
        AudioError::DecoderPanic {
            name: name.to_string(),
            detail,
        }
    })?
}

fn decode_mono(input: Input, max_seconds: f64, sink: SampleSink) -> Result<usize, AudioError> {
    let name = input.name;
    let container = sniff_container(input.head);
    let mut format = open_container(input.media, container, input.hint_ext, name)?;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::NoAudioTrack {
            name: name.to_string(),
        })?;
    let track_id = track.id;
    let track_rate = track.codec_params.sample_rate;
    let announced_frames = track.codec_params.n_frames.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Unsupported {
            name: name.to_string(),
            detail: e.to_string(),
        })?;
    let limit = Limit {
        max_samples: track_rate.map(|r| f64::from(r) * max_seconds),
        max_seconds,
    };
    let mut out = Conversion::new(name, input.timing, sink);
    decode_packets(&mut *format, &mut *decoder, track_id, limit, &mut out)?;
    // The header promised audio and not one frame decoded: damaged or cut inside the first
    // frame (a FLAC whose frames are garbage resyncs to the end and yields nothing).
    if out.decoded == 0 && announced_frames > 0 {
        return Err(AudioError::Corrupt {
            name: name.to_string(),
            decoded_samples: 0,
            detail: format!(
                "the header announces {announced_frames} samples but no frame decodes (truncated or damaged)"
            ),
        });
    }
    // Damaged packets and nothing audible around them: the decoder was fed garbage.
    if out.skipped > 0 && !out.audible {
        return Err(AudioError::Corrupt {
            name: name.to_string(),
            decoded_samples: out.decoded,
            detail: format!("{} undecodable packets and no other sound", out.skipped),
        });
    }
    out.finish()
}

/// Probes the container (gapless: mp3/aac encoder delay and padding trimmed, as ffmpeg, and
/// so faster-whisper, does). `container` is what the leading magic bytes announce.
fn open_container(
    media: Box<dyn MediaSource>,
    container: Option<&str>,
    hint_ext: Option<&str>,
    name: &str,
) -> Result<Box<dyn FormatReader>, AudioError> {
    let source = MediaSourceStream::new(media, MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = hint_ext {
        hint.with_extension(ext);
    }
    let format_options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &format_options, &MetadataOptions::default())
        .map_err(|e| AudioError::NotAudio {
            name: name.to_string(),
            // The probe scans to the end for a marker; failing that says only "nothing
            // matched", so the file's own magic bytes tell a damaged file from a non-audio one.
            reason: match container {
                Some(kind) => format!("truncated or malformed {kind} file: {e}"),
                None => "no known container format recognised".to_string(),
            },
        })?;
    Ok(probed.format)
}

/// The decoder's mono output on its way to 16 kHz: the MP4 edit list's cut, the resampler
/// (made at the first buffer's rate), PyAV's 16-bit grid, then the sink.
struct Conversion<'a> {
    name: &'a str,
    timing: Option<mp4::AudioTiming>,
    sink: SampleSink<'a>,
    /// Mono samples decoded so far, at the file's rate (before the edit list's cut).
    decoded: usize,
    /// Packets skipped as malformed or undecodable.
    skipped: usize,
    /// Whether any decoded sample was not 0.0.
    audible: bool,
    /// The rate, the kept range of decoded samples, and the resampler, once a buffer came.
    stage: Option<(u32, (usize, usize), ChunkedResampler)>,
    /// Samples handed to the sink.
    delivered: usize,
    scratch: Vec<f32>,
}

impl<'a> Conversion<'a> {
    fn new(name: &'a str, timing: Option<mp4::AudioTiming>, sink: SampleSink<'a>) -> Self {
        Self {
            name,
            timing,
            sink,
            decoded: 0,
            skipped: 0,
            audible: false,
            stage: None,
            delivered: 0,
            scratch: Vec::new(),
        }
    }

    /// One buffer of mono samples at `rate` Hz.
    fn push(&mut self, mono: &[f32], rate: u32) -> Result<(), AudioError> {
        let first = self.decoded;
        self.decoded += mono.len();
        self.audible |= mono.iter().any(|&s| s != 0.0);
        if self.stage.is_none() {
            if rate == 0 {
                return Err(AudioError::BadSampleRate {
                    name: self.name.to_string(),
                    rate,
                });
            }
            let resampler = self.resampler(rate)?;
            let kept = self.timing.map_or((0, usize::MAX), |t| t.kept(rate));
            self.stage = Some((rate, kept, resampler));
        }
        let Some((stage_rate, (start, end), resampler)) = &mut self.stage else {
            unreachable!("set above");
        };
        if *stage_rate != rate {
            return Err(AudioError::Unsupported {
                name: self.name.to_string(),
                detail: format!("the sample rate changes from {stage_rate} to {rate} Hz"),
            });
        }
        let from = start.saturating_sub(first).min(mono.len());
        let to = end.saturating_sub(first).min(mono.len()).max(from);
        self.scratch.clear();
        resampler.push(&mono[from..to], &mut self.scratch);
        self.deliver();
        Ok(())
    }

    fn resampler(&self, rate: u32) -> Result<ChunkedResampler, AudioError> {
        ChunkedResampler::new(rate, SAMPLE_RATE).map_err(|detail| AudioError::Resample {
            name: self.name.to_string(),
            from: rate,
            detail,
        })
    }

    fn deliver(&mut self) {
        quantise_like_pyav(&mut self.scratch);
        if !self.scratch.is_empty() {
            (self.sink)(&self.scratch);
            self.delivered += self.scratch.len();
        }
    }

    /// The resampler's flush; the number of samples delivered, none being an error.
    fn finish(mut self) -> Result<usize, AudioError> {
        if let Some((_, _, resampler)) = self.stage.take() {
            self.scratch.clear();
            resampler.finish(&mut self.scratch);
            self.deliver();
        }
        if self.delivered == 0 {
            return Err(AudioError::NoSamples {
                name: self.name.to_string(),
            });
        }
        Ok(self.delivered)
    }
}

/// The duration bound while decoding: the track's rate times the limit, when the rate is
/// known up front; else each buffer's own rate decides.
#[derive(Clone, Copy)]
struct Limit {
    max_samples: Option<f64>,
    max_seconds: f64,
}

/// Decodes every packet of track `track_id`, mixes it down to mono and hands it to `out`;
/// skips up to [`MAX_SKIPPED_PACKETS`] damaged packets.
fn decode_packets(
    format: &mut dyn FormatReader,
    decoder: &mut dyn Decoder,
    track_id: u32,
    limit: Limit,
    out: &mut Conversion,
) -> Result<(), AudioError> {
    let name = out.name;
    let corrupt = |decoded: usize, e: SymphoniaError| AudioError::Corrupt {
        name: name.to_string(),
        decoded_samples: decoded,
        detail: e.to_string(),
    };
    let mut interleaved: Option<SampleBuffer<f32>> = None;
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            // The normal end of a stream, and also a file cut short: keep what was decoded.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            // A chained stream (e.g. a new ogg logical stream) would need a new decoder;
            // Whisper inputs are one stream, so the first one is the audio.
            Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::DecodeError(detail)) if out.skipped < MAX_SKIPPED_PACKETS => {
                out.skipped += 1;
                tracing::warn!("{name}: skipping malformed packet: {detail}");
                continue;
            }
            Err(e) => return Err(corrupt(out.decoded, e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(audio) => audio,
            // A damaged packet surfaces as malformed data or as a feature the decoder does
            // not know (garbage bits read as e.g. AAC prediction); either way skip it.
            Err(SymphoniaError::DecodeError(detail) | SymphoniaError::Unsupported(detail))
                if out.skipped < MAX_SKIPPED_PACKETS =>
            {
                out.skipped += 1;
                tracing::warn!("{name}: skipping undecodable packet: {detail}");
                continue;
            }
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(corrupt(out.decoded, e)),
        };
        let spec = *audio.spec();
        let channels = spec.channels.count();
        if audio.frames() == 0 || channels == 0 {
            continue;
        }
        let buffer = match &mut interleaved {
            Some(b) if b.capacity() >= audio.capacity() * channels => b,
            slot => slot.insert(SampleBuffer::new(audio.capacity() as u64, spec)),
        };
        buffer.copy_interleaved_ref(audio);
        mono.clear();
        downmix_into(buffer.samples(), channels, &mut mono);
        out.push(&mono, spec.rate)?;
        let max_samples = limit
            .max_samples
            .unwrap_or(f64::from(spec.rate) * limit.max_seconds);
        if out.decoded as f64 > max_samples {
            return Err(AudioError::TooLong {
                name: name.to_string(),
                limit: limit.max_seconds,
            });
        }
    }
    Ok(())
}

/// The sample rate in a RIFF/WAVE `fmt ` chunk, if `bytes` is such a file. symphonia panics
/// on a rate of 0 (its time base), so that one is refused before it is probed.
fn riff_sample_rate(bytes: &[u8]) -> Option<u32> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return None;
    }
    let mut at = 12usize;
    while let Some(header) = bytes.get(at..at.checked_add(8)?) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"fmt " {
            // WAVEFORMAT: format tag (2), channels (2), samples per second (4), ...
            let rate = bytes.get(at + 12..at + 16)?;
            return Some(u32::from_le_bytes([rate[0], rate[1], rate[2], rate[3]]));
        }
        // Chunks are padded to an even size.
        at = at
            .checked_add(8)?
            .checked_add(size)?
            .checked_add(size & 1)?;
    }
    None
}

/// The container a file's leading magic bytes announce, if any.
fn sniff_container(bytes: &[u8]) -> Option<&'static str> {
    let magic = |at: usize, m: &[u8]| bytes.get(at..at + m.len()) == Some(m);
    if magic(0, b"RIFF") || magic(0, b"RIFX") {
        Some("WAV")
    } else if magic(0, b"fLaC") {
        Some("FLAC")
    } else if magic(0, b"OggS") {
        Some("Ogg")
    } else if magic(4, b"ftyp") {
        Some("MP4")
    } else if magic(0, b"ID3") {
        Some("MP3")
    } else if magic(0, b"FORM") {
        Some("AIFF")
    } else if magic(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("Matroska")
    } else {
        None
    }
}

/// Appends the channel average of each interleaved frame.
fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

/// Rounds to the 16-bit grid the way PyAV's `s16` resampler output does (libswresample's
/// float-to-s16 conversion: `lrintf`, i.e. to nearest with ties to even, then saturate), then
/// scales by 1/32768 as faster-whisper's `decode_audio` does.
fn quantise_like_pyav(samples: &mut [f32]) {
    for s in samples {
        // NaN (possible in a float WAV) would poison every later sum: call it silence.
        let q = if s.is_nan() {
            0.0
        } else {
            (*s * 32768.0).round_ties_even().clamp(-32768.0, 32767.0)
        };
        *s = q / 32768.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        let mut out = Vec::new();
        downmix_into(&[1.0, 0.0, 0.5, -0.5, 0.25, 0.75], 2, &mut out);
        assert_eq!(out, vec![0.5, 0.0, 0.5]);
    }

    #[test]
    fn quantise_saturates_and_rounds() {
        let mut q = vec![
            1.5,
            -2.0,
            0.1 / 32768.0,
            0.6 / 32768.0,
            2.5 / 32768.0,
            -3.5 / 32768.0,
            f32::NAN,
            f32::NEG_INFINITY,
        ];
        quantise_like_pyav(&mut q);
        let grid = |k: f32| k / 32768.0;
        assert_eq!(
            q,
            vec![
                grid(32767.0),
                -1.0,
                0.0,
                grid(1.0),
                grid(2.0),
                grid(-4.0),
                0.0,
                -1.0
            ]
        );
    }
}
