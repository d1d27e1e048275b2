//! Speech spans from per-chunk speech probabilities: faster-whisper's `get_speech_timestamps`
//! rules (hysteresis between two thresholds, a minimum silence to end a span, a maximum span
//! length split at the last real pause, padding), on the 512-sample chunks of 16 kHz audio.

use super::options::VadOptions;
use super::{CHUNK_SAMPLES, SAMPLE_RATE};

/// A span of speech, in samples of the original audio: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechSpan {
    pub start: usize,
    pub end: usize,
}

/// How many probabilities the model yields for `n_samples` of audio: one per 512-sample
/// window, the last one zero-padded (as the silero-vad package frames it).
pub fn chunk_count(n_samples: usize) -> usize {
    n_samples.div_ceil(CHUNK_SAMPLES)
}

/// Samples in `ms` milliseconds at 16 kHz.
fn ms_to_samples(ms: u32) -> usize {
    ms as usize * SAMPLE_RATE / 1000
}

/// A pause inside a span shorter than this is never a place to split an over-long span.
const MIN_SILENCE_AT_MAX_SPEECH: usize = SAMPLE_RATE * 98 / 1000;

/// The speech spans of `n_samples` of audio whose chunk `i` (samples `512 i ..`) has speech
/// probability `probs[i]`. Spans are sorted, disjoint and within `0..n_samples`.
pub fn speech_spans(probs: &[f32], n_samples: usize, opts: &VadOptions) -> Vec<SpeechSpan> {
    let threshold = opts.threshold;
    let neg_threshold = opts.neg_threshold();
    let min_speech = ms_to_samples(opts.min_speech_duration_ms);
    let min_silence = ms_to_samples(opts.min_silence_duration_ms);
    let pad = ms_to_samples(opts.speech_pad_ms);
    // Room left for the span itself once one chunk and both pads are counted.
    let max_speech =
        SAMPLE_RATE as f64 * opts.max_speech_duration_s - CHUNK_SAMPLES as f64 - 2.0 * pad as f64;

    let mut spans = Vec::new();
    // The open span's start; `Some` exactly while in speech.
    let mut open: Option<usize> = None;
    // Where the silence now running began (the span's end if it lasts).
    let mut silence_start: Option<usize> = None;
    // The start of the last pause of at least 98 ms inside the open span, and where speech
    // resumed after it: the split point should the span grow too long.
    let mut last_pause: Option<usize> = None;
    let mut resumed_at: Option<usize> = None;

    for (i, &p) in probs.iter().enumerate() {
        let pos = i * CHUNK_SAMPLES;
        let speech = p >= threshold;
        if speech && silence_start.is_some() {
            silence_start = None;
            if resumed_at.unwrap_or(0) < last_pause.unwrap_or(0) {
                resumed_at = Some(pos);
            }
        }
        let Some(start) = open else {
            if speech {
                open = Some(pos);
            }
            continue;
        };
        if (pos - start) as f64 > max_speech {
            if let Some(pause) = last_pause {
                spans.push(SpeechSpan { start, end: pause });
                // Speech that resumed after the pause goes on as a new span; a pause still
                // running closes the span altogether.
                let resumed = resumed_at.filter(|&r| r >= pause);
                open = resumed;
                last_pause = None;
                resumed_at = None;
                silence_start = None;
            } else {
                spans.push(SpeechSpan { start, end: pos });
                open = None;
                last_pause = None;
                resumed_at = None;
                silence_start = None;
                continue;
            }
        }
        let Some(start) = open else { continue };
        if p < neg_threshold {
            let since = *silence_start.get_or_insert(pos);
            if pos - since > MIN_SILENCE_AT_MAX_SPEECH {
                last_pause = Some(since);
            }
            if pos - since >= min_silence {
                if since - start > min_speech {
                    spans.push(SpeechSpan { start, end: since });
                }
                open = None;
                last_pause = None;
                resumed_at = None;
                silence_start = None;
            }
        }
    }
    if let Some(start) = open {
        if n_samples.saturating_sub(start) > min_speech {
            spans.push(SpeechSpan {
                start,
                end: n_samples,
            });
        }
    }
    pad_spans(&mut spans, pad, n_samples);
    spans
}

/// Grows every span by `pad` on each side; two spans closer than two pads share the gap
/// between them equally instead.
fn pad_spans(spans: &mut [SpeechSpan], pad: usize, n_samples: usize) {
    let last = spans.len().saturating_sub(1);
    for i in 0..spans.len() {
        if i == 0 {
            spans[0].start = spans[0].start.saturating_sub(pad);
        }
        if i == last {
            spans[i].end = (spans[i].end + pad).min(n_samples);
            continue;
        }
        let gap = spans[i + 1].start.saturating_sub(spans[i].end);
        let (grow, shrink) = if gap < 2 * pad {
            (gap / 2, gap / 2)
        } else {
            (pad, pad)
        };
        spans[i].end = (spans[i].end + grow).min(n_samples);
        spans[i + 1].start = spans[i + 1].start.saturating_sub(shrink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> VadOptions {
        VadOptions {
            min_silence_duration_ms: 100,
            speech_pad_ms: 0,
            ..Default::default()
        }
    }

    #[test]
    fn a_short_dip_stays_inside_a_span_and_a_long_silence_ends_it() {
        // 1 = speech, 0 = silence; 100 ms is 1600 samples, just over three chunks.
        let mut probs = vec![0.9; 10];
        probs.extend([0.1; 2]); // 1024 samples of silence: kept inside
        probs.extend([0.9; 10]);
        probs.extend([0.1; 10]); // ends the span at its start
        let n = probs.len() * CHUNK_SAMPLES;
        let spans = speech_spans(&probs, n, &opts());
        assert_eq!(
            spans,
            vec![SpeechSpan {
                start: 0,
                end: 22 * CHUNK_SAMPLES
            }]
        );
    }

    #[test]
    fn hysteresis_keeps_speech_between_the_thresholds() {
        // 0.4 is between neg_threshold (0.35) and threshold (0.5): neither starts nor ends.
        let probs = [0.4, 0.4, 0.9, 0.4, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1];
        let n = probs.len() * CHUNK_SAMPLES;
        let spans = speech_spans(&probs, n, &opts());
        assert_eq!(
            spans,
            vec![SpeechSpan {
                start: 2 * CHUNK_SAMPLES,
                end: 7 * CHUNK_SAMPLES
            }]
        );
    }

    #[test]
    fn padding_is_clamped_and_close_spans_share_the_gap() {
        let mut spans = vec![
            SpeechSpan {
                start: 100,
                end: 1000,
            },
            SpeechSpan {
                start: 1400,
                end: 3000,
            },
        ];
        pad_spans(&mut spans, 300, 3100);
        assert_eq!(
            spans,
            vec![
                SpeechSpan {
                    start: 0,
                    end: 1200
                },
                SpeechSpan {
                    start: 1200,
                    end: 3100
                }
            ]
        );
    }

    #[test]
    fn an_over_long_span_is_split_at_its_last_pause() {
        let o = VadOptions {
            max_speech_duration_s: 1.0,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 0,
            ..Default::default()
        };
        // 0.5 s speech, a 160 ms pause (over 98 ms), then speech to 2 s.
        let mut probs = vec![0.9; 16];
        probs.extend([0.1; 5]);
        probs.extend([0.9; 43]);
        let n = probs.len() * CHUNK_SAMPLES;
        let spans = speech_spans(&probs, n, &o);
        assert_eq!(
            spans[0],
            SpeechSpan {
                start: 0,
                end: 16 * CHUNK_SAMPLES
            }
        );
        assert_eq!(spans[1].start, 21 * CHUNK_SAMPLES);
    }
}
