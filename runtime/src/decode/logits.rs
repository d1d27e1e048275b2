//! Logit filters applied before each token choice, in Whisper's order: suppress blank at the
//! first step, suppress the non-speech token list, then the timestamp rules.

use super::Specials;
use crate::whisper::vecmath::{self, log_sum_exp};

/// Everything the filters need to know about the decoding task.
pub struct LogitRules<'a> {
    pub specials: &'a Specials,
    pub suppress: &'a [u32],
    /// Suppressed at the first generated step only (blank and end-of-text).
    pub suppress_begin: &'a [u32],
    pub suppress_blank: bool,
    pub timestamps: bool,
    /// Largest timestamp index allowed as the first token (1.0 s / 0.02 s = 50).
    pub max_initial_timestamp_index: Option<u32>,
}

impl LogitRules<'_> {
    /// Applies every rule to `logits` for a hypothesis that has generated `generated` so far.
    pub fn apply(&self, logits: &mut [f32], generated: &[u32]) {
        let neg = f32::NEG_INFINITY;
        if self.suppress_blank && generated.is_empty() {
            for &t in self.suppress_begin {
                if let Some(v) = logits.get_mut(t as usize) {
                    *v = neg;
                }
            }
        }
        for &t in self.suppress {
            if let Some(v) = logits.get_mut(t as usize) {
                *v = neg;
            }
        }
        if self.timestamps {
            self.apply_timestamp_rules(logits, generated);
        }
    }

    fn apply_timestamp_rules(&self, logits: &mut [f32], generated: &[u32]) {
        let neg = f32::NEG_INFINITY;
        let sp = self.specials;
        let ts = sp.timestamp_begin as usize;
        let eot = sp.eot as usize;
        if let Some(v) = logits.get_mut(sp.no_timestamps as usize) {
            *v = neg;
        }
        let is_ts = |t: u32| t >= sp.timestamp_begin;
        let last_was_ts = generated.last().is_some_and(|&t| is_ts(t));
        let penultimate_was_ts = generated.len() < 2 || is_ts(generated[generated.len() - 2]);
        // Timestamps come in pairs: after a closing timestamp text must follow; after an
        // opening one, only another timestamp or end-of-text.
        if last_was_ts {
            if penultimate_was_ts {
                logits[ts..].fill(neg);
            } else {
                logits[..eot].fill(neg);
            }
        }
        // Timestamps never go backwards (and an opening one may not repeat the last).
        if let Some(&last_ts) = generated.iter().rev().find(|&&t| is_ts(t)) {
            let floor = if last_was_ts && !penultimate_was_ts {
                last_ts
            } else {
                last_ts + 1
            };
            let end = (floor as usize).min(logits.len());
            logits[ts..end].fill(neg);
        }
        if generated.is_empty() {
            // The first token is a timestamp, no later than the allowed initial offset.
            logits[..ts].fill(neg);
            if let Some(max) = self.max_initial_timestamp_index {
                let cut = ts + max as usize + 1;
                if cut < logits.len() {
                    logits[cut..].fill(neg);
                }
            }
        }
        // If the timestamps together are likelier than any single text token, take a timestamp.
        // Both sides are log-probabilities under the same normaliser, which cancels: compare
        // the log-sum-exp of the timestamp logits with the largest text logit directly.
        let ts_lse = log_sum_exp(&logits[ts..]);
        let text_max = vecmath::max(&logits[..ts]);
        if ts_lse > text_max {
            logits[..ts].fill(neg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> Specials {
        // A toy vocabulary: text 0..10, eot 10, no_timestamps 11, timestamps 12..20.
        Specials {
            sot: 13,
            eot: 10,
            transcribe: 14,
            translate: 15,
            sot_prev: 16,
            sot_lm: 17,
            no_speech: 18,
            no_timestamps: 11,
            timestamp_begin: 12,
        }
    }

    fn rules(sp: &Specials) -> LogitRules<'_> {
        LogitRules {
            specials: sp,
            suppress: &[],
            suppress_begin: &[0, 10],
            suppress_blank: true,
            timestamps: true,
            max_initial_timestamp_index: Some(2),
        }
    }

    #[test]
    fn first_token_is_an_early_timestamp() {
        let sp = specials();
        let mut l = vec![0.0f32; 20];
        rules(&sp).apply(&mut l, &[]);
        let allowed: Vec<usize> = (0..20).filter(|&i| l[i].is_finite()).collect();
        assert_eq!(allowed, vec![12, 13, 14]);
    }

    #[test]
    fn after_opening_timestamp_text_or_timestamp_not_earlier() {
        let sp = specials();
        let mut l = vec![0.0f32; 20];
        // text, then an opening timestamp at 15: next is a timestamp >= 15 or eot; with flat
        // logits the timestamps together outweigh eot, so only timestamps remain.
        rules(&sp).apply(&mut l, &[12, 3, 15]);
        let allowed: Vec<usize> = (0..20).filter(|&i| l[i].is_finite()).collect();
        assert_eq!(allowed, vec![15, 16, 17, 18, 19]);
        let mut l = vec![0.0f32; 20];
        l[10] = 10.0;
        rules(&sp).apply(&mut l, &[12, 3, 15]);
        let allowed: Vec<usize> = (0..20).filter(|&i| l[i].is_finite()).collect();
        assert_eq!(allowed, vec![10, 15, 16, 17, 18, 19]);
    }

    #[test]
    fn after_a_pair_text_must_follow() {
        let sp = specials();
        let mut l = vec![5.0f32; 20];
        rules(&sp).apply(&mut l, &[12, 3, 15, 15]);
        assert!((12..20).all(|i| l[i] == f32::NEG_INFINITY));
        assert!(l[3].is_finite());
    }

    #[test]
    fn likely_timestamps_win_over_text() {
        let sp = specials();
        let mut l = vec![0.0f32; 20];
        for v in &mut l[12..] {
            *v = 1.0;
        }
        rules(&sp).apply(&mut l, &[12, 3]);
        assert!(l[..12].iter().all(|v| *v == f32::NEG_INFINITY));
    }
}
