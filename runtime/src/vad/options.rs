//! The VAD's parameters, with faster-whisper's `VadOptions` defaults, and their ranges.

/// Speech detection settings (faster-whisper's `VadOptions`, same names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct VadOptions {
    /// A chunk whose speech probability is at least this starts (or continues) speech.
    pub threshold: f32,
    /// Below this a chunk is silence; `None`: `max(threshold - 0.15, 0.01)`. Between the two,
    /// a chunk keeps whatever state the previous one had (hysteresis).
    pub neg_threshold: Option<f32>,
    /// Speech spans not longer than this are dropped.
    pub min_speech_duration_ms: u32,
    /// Longer spans are split, at a silence of at least 98 ms if there was one.
    pub max_speech_duration_s: f64,
    /// Silence this long ends a span; shorter silences are kept inside it.
    pub min_silence_duration_ms: u32,
    /// Each kept span grows by this much on both sides (less where neighbours are close).
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 0,
            max_speech_duration_s: f64::INFINITY,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 400,
        }
    }
}

/// A parameter outside its range; `option` is the field name.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("{option} {value}: must be {expected}")]
pub struct BadVadOption {
    pub option: &'static str,
    pub value: f64,
    pub expected: &'static str,
}

/// Upper bounds that keep sample counts far from overflow and catch unit mix-ups
/// (milliseconds given as seconds are 1000 times too big, not wrong in sign).
const MAX_MS: u32 = 3_600_000;

impl VadOptions {
    pub fn validate(&self) -> Result<(), BadVadOption> {
        let bad = |option, value: f64, expected| {
            Err(BadVadOption {
                option,
                value,
                expected,
            })
        };
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad(
                "threshold",
                self.threshold.into(),
                "between 0 and 1 (exclusive)",
            );
        }
        if let Some(n) = self.neg_threshold {
            if !(n > 0.0 && n <= self.threshold) {
                return bad(
                    "neg_threshold",
                    n.into(),
                    "above 0 and at most the threshold",
                );
            }
        }
        // A span must hold more than one 32 ms chunk plus both pads (faster-whisper's
        // max_speech_samples would otherwise be negative and split at every chunk).
        let min_max_speech = 0.032 + 2.0 * f64::from(self.speech_pad_ms) / 1000.0;
        if self.max_speech_duration_s.is_nan() || self.max_speech_duration_s <= min_max_speech {
            return bad(
                "max_speech_duration_s",
                self.max_speech_duration_s,
                "more than 0.032 s plus twice speech_pad_ms (or inf)",
            );
        }
        for (option, v) in [
            ("min_speech_duration_ms", self.min_speech_duration_ms),
            ("min_silence_duration_ms", self.min_silence_duration_ms),
            ("speech_pad_ms", self.speech_pad_ms),
        ] {
            if v > MAX_MS {
                return bad(option, v.into(), "at most 3600000 (one hour)");
            }
        }
        Ok(())
    }

    /// The silence threshold in effect.
    pub fn neg_threshold(&self) -> f32 {
        self.neg_threshold
            .unwrap_or((self.threshold - 0.15).max(0.01))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_faster_whispers() {
        let o = VadOptions::default();
        o.validate().unwrap();
        assert_eq!(o.neg_threshold(), 0.35);
        assert_eq!(o.min_silence_duration_ms, 2000);
        assert_eq!(o.speech_pad_ms, 400);
    }

    #[test]
    fn out_of_range_values_are_named() {
        let e = VadOptions {
            threshold: 1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.option, "threshold");
        let e = VadOptions {
            max_speech_duration_s: 0.5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.option, "max_speech_duration_s");
        let e = VadOptions {
            speech_pad_ms: MAX_MS + 1,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.option, "speech_pad_ms");
    }
}
