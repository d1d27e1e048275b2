//! Word-level timestamps: the decoder is re-run over the chosen text with the cross-attention
//! of the model's alignment heads captured; the normalised, median-filtered attention is
//! aligned to audio frames by dynamic time warping; jumps in the path give word boundaries.

use super::context::{Context, Piece};
use super::options::DecodeOptions;
use crate::transcript::Word;
use crate::whisper::CrossKv;

/// Audio positions (encoder frames) per second.
const TOKENS_PER_SECOND: f64 = 50.0;
const MEDIAN_FILTER_WIDTH: usize = 7;

struct AlignedWord {
    word: String,
    tokens: Vec<u32>,
    start: f64,
    end: f64,
    probability: f64,
}

/// Adds `words` to each piece of one window and tightens the piece bounds to its words.
pub fn add_word_timestamps(
    ctx: &Context,
    cross: &CrossKv,
    sot_sequence: &[u32],
    pieces: &mut [Piece],
    segment_size: usize,
    opts: &DecodeOptions,
    last_speech_timestamp: &mut f64,
) {
    let eot = ctx.specials.eot;
    let text_tokens: Vec<u32> = pieces
        .iter()
        .flat_map(|p| p.tokens.iter().copied().filter(|&t| t < eot))
        .collect();
    if text_tokens.is_empty() || pieces.is_empty() {
        return;
    }
    let mut aligned = find_alignment(ctx, cross, sot_sequence, &text_tokens, segment_size);
    merge_punctuations(
        &mut aligned,
        &opts.prepend_punctuations,
        &opts.append_punctuations,
    );
    // Long words at sentence ends are often stretched over silence: cap them.
    let durations: Vec<f64> = aligned
        .iter()
        .map(|w| w.end - w.start)
        .filter(|&d| d > 0.0)
        .collect();
    let median = median_of(&durations).min(0.7);
    let max_duration = median * 2.0;
    if !durations.is_empty() {
        let sentence_end = ".。!！?？";
        for i in 1..aligned.len() {
            if aligned[i].end - aligned[i].start > max_duration {
                if sentence_end.contains(aligned[i].word.trim())
                    && !aligned[i].word.trim().is_empty()
                {
                    aligned[i].end = aligned[i].start + max_duration;
                } else if sentence_end.contains(aligned[i - 1].word.trim())
                    && !aligned[i - 1].word.trim().is_empty()
                {
                    aligned[i].start = aligned[i].end - max_duration;
                }
            }
        }
    }
    let time_offset = pieces[0].start.min(f64::MAX);
    let window_offset = {
        // Piece times are absolute; alignment times are relative to the window start.
        let first_ts = pieces[0].tokens.first().copied().unwrap_or(0);
        let tb = ctx.specials.timestamp_begin;
        if first_ts >= tb {
            time_offset - (first_ts - tb) as f64 * super::transcribe::TIME_PRECISION
        } else {
            time_offset
        }
    };
    let mut word_iter = aligned
        .into_iter()
        .filter(|w| !w.word.is_empty())
        .peekable();
    for piece in pieces.iter_mut() {
        let n_text = piece.tokens.iter().filter(|&&t| t < eot).count();
        let mut taken = 0;
        let mut words = Vec::new();
        while taken < n_text {
            let Some(w) = word_iter.next() else { break };
            taken += w.tokens.len();
            words.push(Word {
                start: round2(window_offset + w.start),
                end: round2(window_offset + w.end),
                word: w.word,
                probability: w.probability,
            });
        }
        if let (Some(first), Some(last)) = (words.first(), words.last()) {
            if first.start < piece.end && first.start >= 0.0 {
                piece.start = piece
                    .start
                    .max(first.start)
                    .min(first.start.max(piece.start));
                piece.start = first.start.max(piece.start.min(first.start));
            }
            piece.end = last.end.max(piece.start);
            *last_speech_timestamp = last.end;
        }
        piece.words = Some(words);
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn median_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Runs the decoder over `sot_sequence + <|notimestamps|> + text + eot`, captures the
/// alignment heads, and returns one timed word per group of tokens.
fn find_alignment(
    ctx: &Context,
    cross: &CrossKv,
    sot_sequence: &[u32],
    text: &[u32],
    num_frames: usize,
) -> Vec<AlignedWord> {
    let sp = &ctx.specials;
    let dec = &ctx.model.decoder;
    let mut heads: Vec<(usize, usize)> = ctx.config.alignment_heads.clone();
    if heads.is_empty() {
        // No alignment heads in config.json: use every head of the second half of the layers.
        let n = dec.n_layers();
        heads = (n / 2..n)
            .flat_map(|l| (0..dec.n_heads).map(move |h| (l, h)))
            .collect();
    }
    let mut tokens = sot_sequence.to_vec();
    tokens.push(sp.no_timestamps);
    tokens.extend_from_slice(text);
    tokens.push(sp.eot);
    let mut state = dec.new_state(1);
    let out = dec.forward(&mut state, &[tokens.clone()], cross, &heads);
    let d = dec.d_model;
    let n_tok = tokens.len();
    let first = sot_sequence.len();
    // Probability of each text token where it was predicted.
    let logits = dec.logits(&out.hidden[first * d..(first + text.len()) * d]);
    let v = dec.n_vocab;
    let probs: Vec<f64> = text
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let mut row = logits[i * v..(i + 1) * v].to_vec();
            crate::whisper::ops::softmax_in_place(&mut row);
            row[t as usize] as f64
        })
        .collect();
    let frames = (num_frames / 2).clamp(1, cross.t_audio);
    // Average of the normalised, filtered heads: [n_tok, frames].
    let mut matrix = vec![0.0f64; n_tok * frames];
    for w in &out.cross_weights {
        let mut m: Vec<f64> = (0..n_tok)
            .flat_map(|i| {
                let row = &w[i * cross.t_audio..i * cross.t_audio + frames];
                let s: f64 = row.iter().map(|&x| x as f64).sum::<f64>().max(1e-30);
                row.iter().map(move |&x| x as f64 / s)
            })
            .collect();
        // Standardise each frame column over the tokens.
        for f in 0..frames {
            let col: Vec<f64> = (0..n_tok).map(|i| m[i * frames + f]).collect();
            let mean = col.iter().sum::<f64>() / n_tok as f64;
            let std = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n_tok as f64)
                .sqrt()
                .max(1e-12);
            for i in 0..n_tok {
                m[i * frames + f] = (m[i * frames + f] - mean) / std;
            }
        }
        for i in 0..n_tok {
            let filtered = median_filter(&m[i * frames..(i + 1) * frames], MEDIAN_FILTER_WIDTH);
            for f in 0..frames {
                matrix[i * frames + f] += filtered[f] / out.cross_weights.len() as f64;
            }
        }
    }
    // Rows from <|notimestamps|> up to the last text token.
    let rows = text.len() + 1;
    let cost: Vec<f64> = matrix[first * frames..(first + rows) * frames]
        .iter()
        .map(|x| -x)
        .collect();
    let (text_idx, time_idx) = dtw(&cost, rows, frames);
    let mut jump_times = Vec::new();
    for k in 0..text_idx.len() {
        if k == 0 || text_idx[k] != text_idx[k - 1] {
            jump_times.push(time_idx[k] as f64 / TOKENS_PER_SECOND);
        }
    }
    let mut with_eot = text.to_vec();
    with_eot.push(sp.eot);
    let (words, word_tokens) = split_to_word_tokens(ctx, &with_eot);
    let mut out_words = Vec::new();
    let mut boundary = 0usize;
    for (word, toks) in words.iter().zip(&word_tokens) {
        if toks.first().is_some_and(|&t| t >= sp.eot) {
            break;
        }
        let start = jump_times.get(boundary).copied().unwrap_or(0.0);
        let end = jump_times
            .get(boundary + toks.len())
            .copied()
            .unwrap_or(start);
        let p = probs[boundary..(boundary + toks.len()).min(probs.len())]
            .iter()
            .sum::<f64>()
            / toks.len() as f64;
        out_words.push(AlignedWord {
            word: word.clone(),
            tokens: toks.clone(),
            start,
            end,
            probability: (p * 10000.0).round() / 10000.0,
        });
        boundary += toks.len();
    }
    out_words
}

/// Median filter along one row with reflect padding (as scipy's `mode="reflect"` of torch's pad).
fn median_filter(row: &[f64], width: usize) -> Vec<f64> {
    let n = row.len();
    let pad = width / 2;
    if n <= pad {
        return row.to_vec();
    }
    let at = |i: isize| -> f64 {
        let j = if i < 0 {
            -i
        } else if i as usize >= n {
            2 * (n as isize - 1) - i
        } else {
            i
        };
        row[j.clamp(0, n as isize - 1) as usize]
    };
    (0..n)
        .map(|i| {
            let mut w: Vec<f64> = (0..width)
                .map(|k| at(i as isize + k as isize - pad as isize))
                .collect();
            w.sort_by(f64::total_cmp);
            w[pad]
        })
        .collect()
}

/// Dynamic time warping over a `[rows, cols]` cost; returns the monotonic path (row, col) pairs.
fn dtw(cost: &[f64], rows: usize, cols: usize) -> (Vec<usize>, Vec<usize>) {
    let inf = f64::INFINITY;
    let w = cols + 1;
    let mut acc = vec![inf; (rows + 1) * w];
    let mut trace = vec![0u8; (rows + 1) * w];
    acc[0] = 0.0;
    for i in 1..=rows {
        for j in 1..=cols {
            let c0 = acc[(i - 1) * w + j - 1];
            let c1 = acc[(i - 1) * w + j];
            let c2 = acc[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i * w + j] = cost[(i - 1) * cols + j - 1] + c;
            trace[i * w + j] = t;
        }
    }
    let (mut i, mut j) = (rows, cols);
    let mut path = Vec::new();
    while i > 0 || j > 0 {
        path.push((i as isize - 1, j as isize - 1));
        if i == 0 {
            j -= 1;
            continue;
        }
        if j == 0 {
            i -= 1;
            continue;
        }
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path.into_iter()
        .filter(|&(a, b)| a >= 0 && b >= 0)
        .map(|(a, b)| (a as usize, b as usize))
        .unzip()
}

/// Groups tokens into words: at spaces and punctuation for space-delimited languages, at
/// every decodable unicode run otherwise.
fn split_to_word_tokens(ctx: &Context, tokens: &[u32]) -> (Vec<String>, Vec<Vec<u32>>) {
    let eot = ctx.specials.eot;
    // Runs of tokens that decode to whole characters.
    let mut subwords = Vec::new();
    let mut sub_tokens: Vec<Vec<u32>> = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    for &t in tokens {
        current.push(t);
        if t >= eot {
            subwords.push(String::new());
            sub_tokens.push(std::mem::take(&mut current));
            continue;
        }
        let decoded = ctx.tokenizer.decode(&current);
        if !decoded.contains('\u{fffd}') {
            subwords.push(decoded);
            sub_tokens.push(std::mem::take(&mut current));
        }
    }
    let mut words: Vec<String> = Vec::new();
    let mut word_tokens: Vec<Vec<u32>> = Vec::new();
    for (sw, st) in subwords.into_iter().zip(sub_tokens) {
        let special = st[0] >= eot;
        let with_space = sw.starts_with(' ');
        let trimmed = sw.trim();
        let punctuation = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_punctuation());
        match (words.last_mut(), word_tokens.last_mut()) {
            (Some(word), Some(tokens)) if !(special || with_space || punctuation) => {
                word.push_str(&sw);
                tokens.extend(st);
            }
            _ => {
                words.push(sw);
                word_tokens.push(st);
            }
        }
    }
    (words, word_tokens)
}

/// Attaches leading punctuation to the following word and trailing punctuation to the previous.
fn merge_punctuations(words: &mut [AlignedWord], prepended: &str, appended: &str) {
    if words.len() < 2 {
        return;
    }
    let mut i = words.len() as isize - 2;
    let mut j = words.len() - 1;
    while i >= 0 {
        let iu = i as usize;
        let prev_word = words[iu].word.clone();
        if prev_word.starts_with(' ')
            && !prev_word.trim().is_empty()
            && prepended.contains(prev_word.trim())
        {
            let (a, b) = words.split_at_mut(j);
            b[0].word = format!("{}{}", a[iu].word, b[0].word);
            let mut t = std::mem::take(&mut a[iu].tokens);
            t.extend(&b[0].tokens);
            b[0].tokens = t;
            a[iu].word.clear();
        } else {
            j = iu;
        }
        i -= 1;
    }
    let mut i = 0;
    let mut j = 1;
    while j < words.len() {
        let follow = words[j].word.clone();
        if !words[i].word.ends_with(' ') && !follow.is_empty() && appended.contains(follow.as_str())
        {
            let (a, b) = words.split_at_mut(j);
            a[i].word.push_str(&follow);
            let t = std::mem::take(&mut b[0].tokens);
            a[i].tokens.extend(t);
            b[0].word.clear();
        } else {
            i = j;
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // Cost 0 on a staircase: row 0 -> cols 0-1, row 1 -> cols 2-3, row 2 -> col 4.
        let rows = 3;
        let cols = 5;
        let mut cost = vec![1.0; rows * cols];
        for (r, c) in [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4)] {
            cost[r * cols + c] = 0.0;
        }
        let (ti, tj) = dtw(&cost, rows, cols);
        assert_eq!(ti, vec![0, 0, 1, 1, 2]);
        assert_eq!(tj, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn median_filter_removes_spikes() {
        let row = [0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
        let f = median_filter(&row, 3);
        assert!(f.iter().all(|&x| x == 0.0));
    }
}
