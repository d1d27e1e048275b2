//! The long-form loop: 30 s windows of the log-mel, each encoded once and decoded with
//! temperature fallback; segments cut at timestamp pairs; the seek advanced to the last complete
//! segment; previous text fed back as the prompt. Mirrors faster-whisper's defaults.

use std::sync::atomic::{AtomicBool, Ordering};

use std::io::Write;

use rand::SeedableRng;

use super::context::{Context, Piece};
use super::logits::LogitRules;
use super::options::{DecodeOptions, Task};
use super::search::{generate, Generation, SearchParams, Strategy};
use super::words::add_word_timestamps;
use super::{DecodeError, Specials};
use crate::mel::{Features, N_FRAMES};
use crate::transcript::{Segment, Transcript};
use crate::whisper::{CrossKv, Whisper};

/// Seconds per output timestamp step.
pub const TIME_PRECISION: f64 = 0.02;
/// Mel frames per second (hop 160 at 16 kHz).
pub const FRAMES_PER_SECOND: f64 = 100.0;
/// Mel frames per encoder position (the second convolution has stride 2).
pub const INPUT_STRIDE: usize = 2;
/// Whisper's text context.
pub const MAX_LENGTH: usize = 448;
/// A last window with less audio than this (1 s) is not decoded when an earlier window
/// already covered the audio up to it. Such a tail is almost all padding, and Whisper's
/// answer to padding is a hallucinated repeat of the previous text (seen on the dev set,
/// where faster-whisper's output for the same tail changes from run to run with its sampling
/// seed). whisper.cpp stops at the same point.
pub const MIN_TAIL_FRAMES: usize = 100;

/// Progress callback: (seconds processed, total seconds).
pub type Progress<'a> = &'a mut dyn FnMut(f64, f64);

/// zlib-compressed size ratio of the text: high for repetitive loops.
pub fn compression_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(bytes).expect("writing to memory");
    let compressed = enc.finish().expect("writing to memory");
    bytes.len() as f64 / compressed.len() as f64
}

/// Called with each segment as soon as it is final (a server streams them).
pub type OnSegment<'a> = &'a mut dyn FnMut(&Segment);

/// Transcribes a whole log-mel spectrogram.
pub fn transcribe(
    ctx: &Context,
    mel: &dyn Features,
    opts: &DecodeOptions,
    progress: Option<Progress>,
) -> Result<Transcript, DecodeError> {
    transcribe_streaming(
        ctx,
        mel,
        opts,
        progress,
        &mut |_| {},
        &AtomicBool::new(false),
    )
}

/// [`transcribe`], handing each segment to `on_segment` when its window is decoded, and
/// giving up with [`DecodeError::Cancelled`] before the next window once `cancel` is set.
pub fn transcribe_streaming(
    ctx: &Context,
    mel: &dyn Features,
    opts: &DecodeOptions,
    mut progress: Option<Progress>,
    on_segment: OnSegment,
    cancel: &AtomicBool,
) -> Result<Transcript, DecodeError> {
    opts.validate()?;
    let sp = &ctx.specials;
    let content_frames = mel.n_frames().saturating_sub(1);
    let duration = content_frames as f64 / FRAMES_PER_SECOND;
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let (language, language_probability, mut first_window) =
        choose_language(ctx, mel, opts, content_frames)?;
    let sot_sequence = sot_sequence(ctx, &language, opts.task)?;
    let suppress = ctx.suppress_list(opts);
    let suppress_begin = suppress_at_begin(ctx);
    let max_initial_timestamp_index = (opts.max_initial_timestamp / TIME_PRECISION).round() as u32;
    let rules = || LogitRules {
        specials: sp,
        suppress: &suppress,
        suppress_begin: &suppress_begin,
        suppress_blank: opts.suppress_blank,
        timestamps: !opts.without_timestamps,
        max_initial_timestamp_index: Some(max_initial_timestamp_index),
    };

    let mut all_tokens: Vec<u32> = Vec::new();
    if let Some(p) = &opts.initial_prompt {
        all_tokens.extend(ctx.tokenizer.encode(&format!(" {}", p.trim())));
    }
    let mut prompt_reset_since = 0usize;
    let mut segments: Vec<Segment> = Vec::new();
    let mut seek = 0usize;
    let mut last_speech_timestamp = 0.0f64;

    while seek < content_frames {
        if seek > 0 && content_frames - seek < MIN_TAIL_FRAMES {
            break;
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(DecodeError::Cancelled {
                seconds: seek as f64 / FRAMES_PER_SECOND,
            });
        }
        let time_offset = seek as f64 / FRAMES_PER_SECOND;
        let segment_size = N_FRAMES.min(content_frames - seek);
        let segment_duration = segment_size as f64 / FRAMES_PER_SECOND;
        let cross = match first_window.take() {
            Some(c) if seek == 0 => c,
            _ => encode_window(ctx.model, mel, seek, segment_size)?,
        };
        let previous = &all_tokens[prompt_reset_since..];
        let (prompt, sot_index) = window_prompt(sp, previous, &sot_sequence, opts);
        let decoded = decode_with_fallback(ctx, &cross, &prompt, sot_index, opts, &rules, &mut rng);
        if is_silence(&decoded, opts) {
            seek += segment_size;
            report(&mut progress, seek.min(content_frames), content_frames);
            continue;
        }

        let previous_seek = seek;
        let tokens = &decoded.result.tokens;
        let (mut pieces, next_seek) = split_by_timestamps(
            sp,
            tokens,
            time_offset,
            segment_size,
            segment_duration,
            seek,
        );
        seek = next_seek;
        if opts.word_timestamps {
            add_word_timestamps(
                ctx,
                &cross,
                &sot_sequence,
                &mut pieces,
                segment_size,
                opts,
                &mut last_speech_timestamp,
            );
        }
        for piece in pieces {
            if let Some(segment) = segment(ctx, piece, previous_seek, segments.len() + 1, &decoded)
            {
                all_tokens.extend(&segment.tokens);
                on_segment(&segment);
                segments.push(segment);
            }
        }
        if !opts.condition_on_previous_text
            || decoded.temperature > opts.prompt_reset_on_temperature
        {
            prompt_reset_since = all_tokens.len();
        }
        report(&mut progress, seek.min(content_frames), content_frames);
    }
    Ok(Transcript {
        language,
        language_probability,
        duration,
        segments,
    })
}

/// The language and its probability: given, English for English-only models, else detected
/// on the first window (whose cross-attention K/V come back for its decoding).
fn choose_language(
    ctx: &Context,
    mel: &dyn Features,
    opts: &DecodeOptions,
    content_frames: usize,
) -> Result<(String, f64, Option<CrossKv>), DecodeError> {
    Ok(match (&opts.language, ctx.multilingual()) {
        (_, false) => ("en".to_string(), 1.0, None),
        (Some(code), true) => (code.clone(), 1.0, None),
        (None, true) => {
            let size = content_frames.min(N_FRAMES);
            let cross = encode_window(ctx.model, mel, 0, size)?;
            let (language, probability) = ctx.detect_language(&cross)?[0].clone();
            (language, probability, Some(cross))
        }
    })
}

/// Start of transcript, then (multilingual models) the language and task tokens.
fn sot_sequence(ctx: &Context, language: &str, task: Task) -> Result<Vec<u32>, DecodeError> {
    let sp = &ctx.specials;
    let mut sot_sequence = vec![sp.sot];
    if ctx.multilingual() {
        let lang_token = ctx
            .tokenizer
            .language_token(language)
            .ok_or_else(|| DecodeError::UnknownLanguage(language.to_string()))?;
        sot_sequence.push(lang_token);
        sot_sequence.push(match task {
            Task::Transcribe => sp.transcribe,
            Task::Translate => sp.translate,
        });
    }
    Ok(sot_sequence)
}

/// Tokens suppressed at the first sampled position: the model's list, else a blank and
/// end-of-text.
fn suppress_at_begin(ctx: &Context) -> Vec<u32> {
    if ctx.config.suppress_ids_begin.is_empty() {
        ctx.tokenizer
            .encode(" ")
            .into_iter()
            .chain([ctx.specials.eot])
            .collect()
    } else {
        ctx.config.suppress_ids_begin.clone()
    }
}

/// A window's prompt: the previous text (its last half context) after `sot_prev`, the start
/// sequence, and `no_timestamps` if asked; and the index of the start of transcript in it.
fn window_prompt(
    sp: &Specials,
    previous: &[u32],
    sot_sequence: &[u32],
    opts: &DecodeOptions,
) -> (Vec<u32>, usize) {
    let mut prompt = Vec::new();
    if !previous.is_empty() {
        prompt.push(sp.sot_prev);
        let keep = MAX_LENGTH / 2 - 1;
        prompt.extend_from_slice(&previous[previous.len().saturating_sub(keep)..]);
    }
    let sot_index = prompt.len();
    prompt.extend_from_slice(sot_sequence);
    if opts.without_timestamps {
        prompt.push(sp.no_timestamps);
    }
    (prompt, sot_index)
}

/// Whether a window is skipped as silence: no-speech probability above the threshold, unless
/// the decoding is confident enough.
fn is_silence(decoded: &Decoded, opts: &DecodeOptions) -> bool {
    let Some(threshold) = opts.no_speech_threshold else {
        return false;
    };
    decoded.result.no_speech_prob > threshold
        && !opts
            .log_prob_threshold
            .is_some_and(|lp| decoded.avg_logprob > lp)
}

/// A piece of a window decoded from `seek` as the segment `id`; none for an empty piece.
fn segment(
    ctx: &Context,
    piece: Piece,
    seek: usize,
    id: usize,
    decoded: &Decoded,
) -> Option<Segment> {
    let text = ctx.tokenizer.decode(&piece.tokens);
    if piece.start == piece.end || text.trim().is_empty() {
        return None;
    }
    Some(Segment {
        id,
        seek,
        start: round3(piece.start),
        end: round3(piece.end),
        text,
        tokens: piece.tokens,
        temperature: decoded.temperature,
        avg_logprob: decoded.avg_logprob,
        compression_ratio: decoded.compression_ratio,
        no_speech_prob: decoded.result.no_speech_prob,
        words: piece.words,
    })
}

/// The encoder on one window of the log-mel, and that window's cross-attention K/V.
fn encode_window(
    model: &Whisper,
    mel: &dyn Features,
    seek: usize,
    frames: usize,
) -> Result<CrossKv, DecodeError> {
    let window = mel.window(seek, frames).map_err(DecodeError::Features)?;
    let start = std::time::Instant::now();
    let audio = model.encode(&window);
    let encoded = start.elapsed();
    let cross = model.decoder.cross_kv(&audio);
    tracing::debug!(seek, ?encoded, cross_kv = ?(start.elapsed() - encoded), "window encoded");
    Ok(cross)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn report(progress: &mut Option<Progress>, done: usize, total: usize) {
    if let Some(p) = progress {
        p(
            done as f64 / FRAMES_PER_SECOND,
            total as f64 / FRAMES_PER_SECOND,
        );
    }
}

/// One window's decoding after fallback.
pub struct Decoded {
    pub result: Generation,
    pub avg_logprob: f64,
    pub temperature: f64,
    pub compression_ratio: f64,
}

fn decode_with_fallback<'r>(
    ctx: &Context,
    cross: &CrossKv,
    prompt: &[u32],
    sot_index: usize,
    opts: &DecodeOptions,
    rules: &dyn Fn() -> LogitRules<'r>,
    rng: &mut rand::rngs::StdRng,
) -> Decoded {
    let mut all: Vec<Decoded> = Vec::new();
    let mut below_cr: Vec<usize> = Vec::new();
    let temps = if opts.temperatures.is_empty() {
        vec![0.0]
    } else {
        opts.temperatures.clone()
    };
    for &t in &temps {
        let strategy = if t > 0.0 {
            Strategy::Sample {
                best_of: opts.best_of,
                temperature: t,
            }
        } else {
            Strategy::Beam {
                beam_size: opts.beam_size,
                patience: opts.patience,
            }
        };
        let params = SearchParams {
            rules: rules(),
            strategy,
            max_length: MAX_LENGTH,
            length_penalty: opts.length_penalty,
            sot_index,
            no_speech: ctx.specials.no_speech,
        };
        let result = generate(&ctx.model.decoder, cross, prompt, &params, rng);
        let avg_logprob = result.sum_logprob / (result.tokens.len() + 1) as f64;
        let text = ctx.tokenizer.decode(&result.tokens);
        let cr = compression_ratio(text.trim());
        tracing::debug!(temperature = t, avg_logprob, compression_ratio = cr, no_speech_prob = result.no_speech_prob, tokens = ?result.tokens, "window decoded");
        let decoded = Decoded {
            result,
            avg_logprob,
            temperature: t,
            compression_ratio: cr,
        };
        let mut needs_fallback = false;
        if let Some(th) = opts.compression_ratio_threshold {
            if cr > th {
                needs_fallback = true;
            } else {
                below_cr.push(all.len());
            }
        }
        if opts.log_prob_threshold.is_some_and(|lp| avg_logprob < lp) {
            needs_fallback = true;
        }
        if opts
            .no_speech_threshold
            .is_some_and(|ns| decoded.result.no_speech_prob > ns)
            && opts.log_prob_threshold.is_some_and(|lp| avg_logprob < lp)
        {
            needs_fallback = false; // silence: no better decoding will come
        }
        if !needs_fallback {
            return decoded;
        }
        all.push(decoded);
    }
    // Every temperature failed: the best average log-probability among those not too repetitive.
    // `validate` (run by `transcribe`) refuses an empty temperature list.
    #[allow(clippy::unwrap_used)]
    let last_t = *temps.last().unwrap();
    let pool: Vec<usize> = if below_cr.is_empty() {
        (0..all.len()).collect()
    } else {
        below_cr
    };
    let best = pool
        .into_iter()
        .max_by(|&a, &b| all[a].avg_logprob.total_cmp(&all[b].avg_logprob))
        .expect("at least one decoding");
    let mut chosen = all.swap_remove(best);
    chosen.temperature = last_t;
    chosen
}

/// Cuts a window's tokens at consecutive timestamp pairs; returns the pieces and the next seek.
pub fn split_by_timestamps(
    sp: &Specials,
    tokens: &[u32],
    time_offset: f64,
    segment_size: usize,
    segment_duration: f64,
    seek: usize,
) -> (Vec<Piece>, usize) {
    let tb = sp.timestamp_begin;
    let is_ts = |t: u32| t >= tb;
    let n = tokens.len();
    let single_timestamp_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
    let consecutive: Vec<usize> = (1..n)
        .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
        .collect();
    let mut pieces = Vec::new();
    if !consecutive.is_empty() {
        let mut slices = consecutive.clone();
        if single_timestamp_ending {
            slices.push(n);
        }
        let mut last = 0;
        for &cut in &slices {
            let sliced = &tokens[last..cut];
            let start = time_offset + (sliced[0] - tb) as f64 * TIME_PRECISION;
            let end = time_offset + (sliced[sliced.len() - 1] - tb) as f64 * TIME_PRECISION;
            pieces.push(Piece {
                start,
                end,
                tokens: sliced.to_vec(),
                words: None,
            });
            last = cut;
        }
        let next_seek = if single_timestamp_ending {
            seek + segment_size
        } else {
            seek + (tokens[last - 1] - tb) as usize * INPUT_STRIDE
        };
        (pieces, next_seek)
    } else {
        let mut duration = segment_duration;
        if let Some(&last_ts) = tokens.iter().rev().find(|&&t| is_ts(t)) {
            if last_ts != tb {
                duration = (last_ts - tb) as f64 * TIME_PRECISION;
            }
        }
        pieces.push(Piece {
            start: time_offset,
            end: time_offset + duration,
            tokens: tokens.to_vec(),
            words: None,
        });
        (pieces, seek + segment_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Specials {
        Specials {
            sot: 50258,
            eot: 50257,
            transcribe: 50359,
            translate: 50358,
            sot_prev: 50361,
            sot_lm: 50360,
            no_speech: 50362,
            no_timestamps: 50363,
            timestamp_begin: 50364,
        }
    }

    #[test]
    fn splits_at_timestamp_pairs_and_seeks_to_last_complete_segment() {
        let tb = 50364;
        // <0.00> a b <1.00><1.00> c <2.50>  (ends with a single timestamp: the window is done)
        let toks = [tb, 1, 2, tb + 50, tb + 50, 3, tb + 125];
        let (pieces, seek) = split_by_timestamps(&sp(), &toks, 10.0, 3000, 30.0, 1000);
        assert_eq!(pieces.len(), 2);
        assert_eq!((pieces[0].start, pieces[0].end), (10.0, 11.0));
        assert_eq!((pieces[1].start, pieces[1].end), (11.0, 12.5));
        assert_eq!(seek, 4000);
        // Unfinished last segment: seek to the last complete timestamp (1.00 s = 100 frames).
        let toks = [tb, 1, 2, tb + 50, tb + 50, 3];
        let (pieces, seek) = split_by_timestamps(&sp(), &toks, 0.0, 3000, 30.0, 0);
        assert_eq!(pieces.len(), 1);
        assert_eq!(seek, 100);
    }

    #[test]
    fn no_pairs_is_one_segment_to_last_timestamp() {
        let tb = 50364;
        let toks = [tb, 1, 2, tb + 100];
        let (pieces, seek) = split_by_timestamps(&sp(), &toks, 0.0, 1234, 12.34, 0);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].end, 2.0);
        assert_eq!(seek, 1234);
    }

    #[test]
    fn compression_ratio_flags_repetition() {
        let plain = compression_ratio(
            "And so my fellow Americans, ask not what your country can do for you.",
        );
        let loop_ = compression_ratio(&"I'm going to go. ".repeat(20));
        assert!(plain < 2.0, "{plain}");
        assert!(loop_ > 2.4, "{loop_}");
    }
}
