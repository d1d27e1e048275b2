//! The speech spans glued into one shorter audio, and times in that audio mapped back to the
//! original timeline (faster-whisper's `collect_chunks` and `SpeechTimestampsMap`, with its
//! rules for segments and words).

use super::timestamps::SpeechSpan;
use super::SAMPLE_RATE;
use crate::transcript::Segment;

/// The samples of every span, in order, back to back.
pub fn collect(samples: &[f32], spans: &[SpeechSpan]) -> Vec<f32> {
    let total = spans.iter().map(|s| s.end - s.start).sum();
    let mut out = Vec::with_capacity(total);
    for s in spans {
        out.extend_from_slice(&samples[s.start.min(samples.len())..s.end.min(samples.len())]);
    }
    out
}

/// Where each span ends in the glued audio, and how much silence was cut before it.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// End of span `i` in samples of the glued audio.
    glued_end: Vec<usize>,
    /// Seconds removed before span `i`.
    removed_before: Vec<f64>,
}

/// faster-whisper rounds restored times to centiseconds.
fn round_cs(t: f64) -> f64 {
    (t * 100.0).round() / 100.0
}

impl Timeline {
    pub fn new(spans: &[SpeechSpan]) -> Timeline {
        let mut removed = 0;
        let mut previous_end = 0;
        let mut glued_end = Vec::with_capacity(spans.len());
        let mut removed_before = Vec::with_capacity(spans.len());
        for s in spans {
            removed += s.start - previous_end;
            previous_end = s.end;
            glued_end.push(s.end - removed);
            removed_before.push(removed as f64 / SAMPLE_RATE as f64);
        }
        Timeline {
            glued_end,
            removed_before,
        }
    }

    /// The span a glued time falls in: the first ending after it; an end time exactly on a
    /// span's end belongs to that span, not the next.
    pub fn span_of(&self, time: f64, is_end: bool) -> usize {
        let sample = (time * SAMPLE_RATE as f64) as usize;
        if is_end {
            if let Some(i) = self.glued_end.iter().position(|&e| e == sample) {
                return i;
            }
        }
        let after = self.glued_end.partition_point(|&e| e <= sample);
        after.min(self.glued_end.len().saturating_sub(1))
    }

    /// A glued time on the original timeline, counted in span `span`.
    pub fn original_in(&self, time: f64, span: usize) -> f64 {
        round_cs(self.removed_before.get(span).copied().unwrap_or(0.0) + time)
    }

    /// A glued time on the original timeline.
    pub fn original(&self, time: f64, is_end: bool) -> f64 {
        self.original_in(time, self.span_of(time, is_end))
    }

    /// Moves a segment decoded from the glued audio onto the original timeline. With words,
    /// each word moves by the span holding its middle (so a word never straddles a cut) and
    /// the segment then spans its words; without, start and end move on their own.
    pub fn restore(&self, segment: &mut Segment) {
        match segment.words.as_mut().filter(|w| !w.is_empty()) {
            Some(words) => {
                for w in words.iter_mut() {
                    let span = self.span_of((w.start + w.end) / 2.0, false);
                    w.start = self.original_in(w.start, span);
                    w.end = self.original_in(w.end, span);
                }
                segment.start = words[0].start;
                segment.end = words[words.len() - 1].end;
            }
            None => {
                segment.start = self.original(segment.start, false);
                segment.end = self.original(segment.end, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech at 1-2 s and 5-6 s (16 kHz samples).
    const ONE_TO_TWO_AND_FIVE_TO_SIX: [SpeechSpan; 2] = [
        SpeechSpan {
            start: 16000,
            end: 32000,
        },
        SpeechSpan {
            start: 80000,
            end: 96000,
        },
    ];

    #[test]
    fn times_move_by_the_silence_cut_before_their_span() {
        // Spans 1-2 s and 5-6 s: 1 s cut before the first, 4 s before the second.
        let t = Timeline::new(&ONE_TO_TWO_AND_FIVE_TO_SIX);
        assert_eq!(t.original(0.5, false), 1.5);
        assert_eq!(t.original(1.5, false), 5.5);
        // 1.0 s is the first span's end: as an end it stays there, as a start it opens the next.
        assert_eq!(t.original(1.0, true), 2.0);
        assert_eq!(t.original(1.0, false), 5.0);
        // Past the last span: counted in it.
        assert_eq!(t.original(2.5, false), 6.5);
    }

    #[test]
    fn words_move_by_the_span_of_their_middle_and_the_segment_follows_them() {
        // Spans 1-2 s and 5-6 s, glued: 0-1 s and 1-2 s.
        let t = Timeline::new(&ONE_TO_TWO_AND_FIVE_TO_SIX);
        let word = |start, end| crate::transcript::Word {
            start,
            end,
            word: " w".into(),
            probability: 1.0,
        };
        let mut s = Segment {
            id: 1,
            seek: 0,
            start: 0.2,
            end: 1.9,
            text: " w w w".into(),
            tokens: vec![],
            temperature: 0.0,
            avg_logprob: 0.0,
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
            // The second word straddles the cut, its middle (0.95 s) in the first span: it
            // stays whole there, ending past the first span's original end.
            words: Some(vec![word(0.2, 0.6), word(0.8, 1.1), word(1.4, 1.9)]),
        };
        t.restore(&mut s);
        let words: Vec<(f64, f64)> = s
            .words
            .as_ref()
            .unwrap()
            .iter()
            .map(|w| (w.start, w.end))
            .collect();
        assert_eq!(words, vec![(1.2, 1.6), (1.8, 2.1), (5.4, 5.9)]);
        assert_eq!((s.start, s.end), (1.2, 5.9));
        // Without words, the start and end move on their own; an end on the cut stays in
        // the span it closes.
        let mut s = Segment {
            words: None,
            start: 0.5,
            end: 1.0,
            ..s
        };
        t.restore(&mut s);
        assert_eq!((s.start, s.end), (1.5, 2.0));
    }

    #[test]
    fn collect_glues_the_spans() {
        let samples: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let spans = [
            SpeechSpan { start: 1, end: 3 },
            SpeechSpan { start: 6, end: 8 },
        ];
        assert_eq!(collect(&samples, &spans), vec![1.0, 2.0, 6.0, 7.0]);
    }
}
