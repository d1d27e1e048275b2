//! Token search over one 30 s window: greedy, beam search (Whisper's: candidates ranked by
//! cumulative log-probability, finished hypotheses collected until `beam · patience`, the best
//! chosen by length-normalised score) and temperature sampling (best of N).

use rand::Rng;

use super::logits::LogitRules;
use crate::whisper::ops::{log_softmax, softmax_in_place};
use crate::whisper::{CrossKv, Decoder, DecoderState};

/// The chosen hypothesis of one window.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated tokens, without the prompt and without the final end-of-text.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the generated tokens, end-of-text included.
    pub sum_logprob: f64,
    /// Probability of the no-speech token at the start-of-transcript position.
    pub no_speech_prob: f64,
}

pub enum Strategy {
    /// Beam search; `beam_size` 1 is greedy.
    Beam { beam_size: usize, patience: f64 },
    /// `best_of` independent samples at `temperature`.
    Sample { best_of: usize, temperature: f64 },
}

pub struct SearchParams<'a> {
    pub rules: LogitRules<'a>,
    pub strategy: Strategy,
    /// Total sequence length limit, prompt included (Whisper's 448).
    pub max_length: usize,
    pub length_penalty: f64,
    /// Index of the start-of-transcript token in the prompt.
    pub sot_index: usize,
    pub no_speech: u32,
}

struct Hyp {
    tokens: Vec<u32>,
    sum_logprob: f64,
}

/// Runs the prompt, then searches; returns the best hypothesis.
pub fn generate(
    decoder: &Decoder,
    cross: &CrossKv,
    prompt: &[u32],
    p: &SearchParams,
    rng: &mut impl Rng,
) -> Generation {
    let d = decoder.d_model;
    let mut state = decoder.new_state(1);
    let out = decoder.forward(&mut state, &[prompt.to_vec()], cross, &[]);
    let last = prompt.len() - 1;
    let mut rows = out.hidden[p.sot_index * d..(p.sot_index + 1) * d].to_vec();
    rows.extend_from_slice(&out.hidden[last * d..(last + 1) * d]);
    let logits = decoder.logits(&rows);
    let v = decoder.n_vocab;
    let mut sot_probs = logits[..v].to_vec();
    softmax_in_place(&mut sot_probs);
    let no_speech_prob = sot_probs.get(p.no_speech as usize).copied().unwrap_or(0.0) as f64;
    let first = logits[v..].to_vec();
    let budget = p.max_length.saturating_sub(prompt.len()).max(1);
    let best = match p.strategy {
        Strategy::Beam {
            beam_size,
            patience,
        } => beam_search(
            decoder,
            cross,
            state,
            first,
            p,
            beam_size.max(1),
            patience,
            budget,
        ),
        Strategy::Sample {
            best_of,
            temperature,
        } => sample(
            decoder,
            cross,
            state,
            first,
            p,
            best_of.max(1),
            temperature,
            budget,
            rng,
        ),
    };
    Generation {
        tokens: best.tokens,
        sum_logprob: best.sum_logprob,
        no_speech_prob,
    }
}

fn score(h: &Hyp, length_penalty: f64) -> f64 {
    let len = h.tokens.len().max(1) as f64;
    h.sum_logprob / len.powf(length_penalty)
}

fn pick_best(mut hyps: Vec<Hyp>, length_penalty: f64) -> Hyp {
    // Stable choice: the first of equal scores wins, as a max over a ranked list would.
    let mut best = 0;
    for i in 1..hyps.len() {
        if score(&hyps[i], length_penalty) > score(&hyps[best], length_penalty) {
            best = i;
        }
    }
    hyps.swap_remove(best)
}

#[allow(clippy::too_many_arguments)]
fn beam_search(
    decoder: &Decoder,
    cross: &CrossKv,
    mut state: DecoderState,
    first_logits: Vec<f32>,
    p: &SearchParams,
    beam: usize,
    patience: f64,
    budget: usize,
) -> Hyp {
    let eot = p.rules.specials.eot;
    let max_finished = ((beam as f64 * patience).round() as usize).max(1);
    let mut live = vec![Hyp {
        tokens: Vec::new(),
        sum_logprob: 0.0,
    }];
    let mut logits_rows = vec![first_logits];
    let mut finished: Vec<Hyp> = Vec::new();
    for step in 0..budget {
        // Candidates: each live hypothesis extended by its best beam+1 tokens.
        let mut cands: Vec<(f64, usize, u32)> = Vec::new();
        for (hi, (h, logits)) in live.iter().zip(logits_rows.iter_mut()).enumerate() {
            p.rules.apply(logits, &h.tokens);
            let lp = log_softmax(logits);
            for (tok, l) in top_k(&lp, beam + 1) {
                cands.push((h.sum_logprob + l as f64, hi, tok));
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut next: Vec<Hyp> = Vec::new();
        let mut order = Vec::new();
        for (s, hi, tok) in cands {
            if tok == eot {
                if finished.len() < max_finished {
                    finished.push(Hyp {
                        tokens: live[hi].tokens.clone(),
                        sum_logprob: s,
                    });
                }
            } else {
                let mut tokens = live[hi].tokens.clone();
                tokens.push(tok);
                next.push(Hyp {
                    tokens,
                    sum_logprob: s,
                });
                order.push(hi);
            }
            if next.len() == beam {
                break;
            }
        }
        if finished.len() >= max_finished || next.is_empty() || step + 1 == budget {
            live = next;
            break;
        }
        state.reorder(&order);
        // Every hypothesis in `next` has just been extended by a token.
        #[allow(clippy::unwrap_used)]
        let feed: Vec<Vec<u32>> = next
            .iter()
            .map(|h| vec![*h.tokens.last().unwrap()])
            .collect();
        logits_rows = step_logits(decoder, &mut state, &feed, cross);
        live = next;
    }
    if finished.is_empty() {
        finished = live;
    }
    pick_best(finished, p.length_penalty)
}

#[allow(clippy::too_many_arguments)]
fn sample(
    decoder: &Decoder,
    cross: &CrossKv,
    mut state: DecoderState,
    first_logits: Vec<f32>,
    p: &SearchParams,
    n: usize,
    temperature: f64,
    budget: usize,
    rng: &mut impl Rng,
) -> Hyp {
    let eot = p.rules.specials.eot;
    state.reorder(&vec![0; n]);
    let mut hyps: Vec<Hyp> = (0..n)
        .map(|_| Hyp {
            tokens: Vec::new(),
            sum_logprob: 0.0,
        })
        .collect();
    let mut done = vec![false; n];
    let mut logits_rows = vec![first_logits; n];
    for _ in 0..budget {
        let mut feed = Vec::with_capacity(n);
        for i in 0..n {
            if done[i] {
                feed.push(vec![eot]);
                continue;
            }
            let logits = &mut logits_rows[i];
            p.rules.apply(logits, &hyps[i].tokens);
            let lp = log_softmax(logits);
            let tok = sample_token(logits, temperature, rng);
            hyps[i].sum_logprob += lp[tok as usize] as f64;
            if tok == eot {
                done[i] = true;
            } else {
                hyps[i].tokens.push(tok);
            }
            feed.push(vec![tok]);
        }
        if done.iter().all(|&d| d) {
            break;
        }
        logits_rows = step_logits(decoder, &mut state, &feed, cross);
    }
    pick_best(hyps, p.length_penalty)
}

/// One decoder step of every sequence (`feed[i]` its new tokens): the logits, a row per
/// sequence.
fn step_logits(
    decoder: &Decoder,
    state: &mut DecoderState,
    feed: &[Vec<u32>],
    cross: &CrossKv,
) -> Vec<Vec<f32>> {
    let out = decoder.forward(state, feed, cross, &[]);
    decoder
        .logits(&out.hidden)
        .chunks_exact(decoder.n_vocab)
        .map(|r| r.to_vec())
        .collect()
}

fn sample_token(logits: &[f32], temperature: f64, rng: &mut impl Rng) -> u32 {
    let t = temperature as f32;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| (((l - max) / t) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut r = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        r -= w;
        if r <= 0.0 && *w > 0.0 {
            return i as u32;
        }
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0) as u32
}

/// The `k` largest entries as (index, value), best first; ties by lower index.
fn top_k(v: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &x) in v.iter().enumerate() {
        if x == f32::NEG_INFINITY {
            continue;
        }
        if best.len() < k || x > best[best.len() - 1].1 {
            let pos = best.partition_point(|&(_, y)| y >= x);
            best.insert(pos, (i as u32, x));
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_skips_masked() {
        let v = [0.1f32, f32::NEG_INFINITY, 0.5, 0.3, 0.5];
        assert_eq!(top_k(&v, 3), vec![(2, 0.5), (4, 0.5), (3, 0.3)]);
    }

    #[test]
    fn sampling_follows_the_distribution() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let logits = [0.0f32, (3.0f32).ln(), f32::NEG_INFINITY];
        let n = 20000;
        let ones = (0..n)
            .filter(|_| sample_token(&logits, 1.0, &mut rng) == 1)
            .count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "{frac}");
    }
}
