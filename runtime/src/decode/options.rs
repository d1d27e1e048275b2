//! The decoding knobs ([`DecodeOptions`], faster-whisper's defaults) and their one check
//! ([`DecodeOptions::validate`]), which callers run before loading a model so a bad value
//! fails at once.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Transcribe,
    Translate,
}

/// Largest `beam_size`: each beam carries its own decoder key/value cache, so memory grows
/// with it (`--beam-size 1000` took 5.7 GB on a 1 s clip); past a few beams accuracy no
/// longer improves (faster-whisper and whisper.cpp default to 5).
pub const MAX_BEAM_SIZE: usize = 32;

/// Largest `best_of` (candidates sampled per window at a temperature above 0), for the same
/// reason as [`MAX_BEAM_SIZE`].
pub const MAX_BEST_OF: usize = 32;

/// The knobs, with faster-whisper's defaults.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub task: Task,
    /// Language code (`en`); `None` detects it on the first window.
    pub language: Option<String>,
    pub beam_size: usize,
    pub best_of: usize,
    pub patience: f64,
    pub length_penalty: f64,
    pub temperatures: Vec<f64>,
    pub compression_ratio_threshold: Option<f64>,
    pub log_prob_threshold: Option<f64>,
    pub no_speech_threshold: Option<f64>,
    pub condition_on_previous_text: bool,
    pub prompt_reset_on_temperature: f64,
    pub initial_prompt: Option<String>,
    pub suppress_blank: bool,
    /// Extra token ids to suppress besides the model's non-speech list.
    pub suppress_tokens: Vec<u32>,
    pub without_timestamps: bool,
    pub max_initial_timestamp: f64,
    pub word_timestamps: bool,
    pub prepend_punctuations: String,
    pub append_punctuations: String,
    pub seed: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            task: Task::Transcribe,
            language: None,
            beam_size: 5,
            best_of: 5,
            patience: 1.0,
            length_penalty: 1.0,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: Some(2.4),
            log_prob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
            condition_on_previous_text: true,
            prompt_reset_on_temperature: 0.5,
            initial_prompt: None,
            suppress_blank: true,
            suppress_tokens: Vec::new(),
            without_timestamps: false,
            max_initial_timestamp: 1.0,
            word_timestamps: false,
            prepend_punctuations: "\"'“¿([{-".into(),
            append_punctuations: "\"'.。,，!！?？:：”)]}、".into(),
            seed: 0,
        }
    }
}

/// A decoding option outside the values it can take; names the field.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("{option} = {value}: must be {expected}")]
pub struct OptionsError {
    /// The [`DecodeOptions`] field.
    pub option: &'static str,
    pub value: f64,
    pub expected: &'static str,
}

impl DecodeOptions {
    /// Checks every numeric option; the first bad one is the error. Cheap and independent
    /// of the model, so a front end can call it before loading anything (`transcribe` calls
    /// it too).
    pub fn validate(&self) -> Result<(), OptionsError> {
        let check = |option, value: f64, ok: bool, expected| {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(OptionsError {
                    option,
                    value,
                    expected,
                })
            }
        };
        check(
            "beam_size",
            self.beam_size as f64,
            (1..=MAX_BEAM_SIZE).contains(&self.beam_size),
            "between 1 and 32 (MAX_BEAM_SIZE)",
        )?;
        check(
            "best_of",
            self.best_of as f64,
            (1..=MAX_BEST_OF).contains(&self.best_of),
            "between 1 and 32 (MAX_BEST_OF)",
        )?;
        check(
            "patience",
            self.patience,
            self.patience > 0.0,
            "a number above 0",
        )?;
        check(
            "length_penalty",
            self.length_penalty,
            self.length_penalty >= 0.0,
            "a number of at least 0",
        )?;
        if self.temperatures.is_empty() {
            check(
                "temperatures",
                f64::NAN,
                false,
                "a list of at least one temperature",
            )?;
        }
        for &t in &self.temperatures {
            check(
                "temperatures",
                t,
                (0.0..=2.0).contains(&t),
                "between 0 and 2",
            )?;
        }
        if let Some(c) = self.compression_ratio_threshold {
            check(
                "compression_ratio_threshold",
                c,
                c > 0.0,
                "a number above 0",
            )?;
        }
        if let Some(l) = self.log_prob_threshold {
            check(
                "log_prob_threshold",
                l,
                l <= 0.0,
                "a log-probability (at most 0)",
            )?;
        }
        if let Some(p) = self.no_speech_threshold {
            let probability = (0.0..=1.0).contains(&p);
            check(
                "no_speech_threshold",
                p,
                probability,
                "a probability (0 to 1)",
            )?;
        }
        let reset = self.prompt_reset_on_temperature;
        check(
            "prompt_reset_on_temperature",
            reset,
            (0.0..=2.0).contains(&reset),
            "between 0 and 2",
        )?;
        let max_ts = self.max_initial_timestamp;
        check(
            "max_initial_timestamp",
            max_ts,
            max_ts >= 0.0,
            "at least 0 seconds",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(DecodeOptions::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_names_its_option() {
        type Spoil = fn(&mut DecodeOptions);
        let cases: [(&str, Spoil); 14] = [
            ("beam_size", |o| o.beam_size = 0),
            ("beam_size", |o| o.beam_size = MAX_BEAM_SIZE + 1),
            ("best_of", |o| o.best_of = 0),
            ("best_of", |o| o.best_of = MAX_BEST_OF + 1),
            ("patience", |o| o.patience = 0.0),
            ("length_penalty", |o| o.length_penalty = f64::NAN),
            ("temperatures", |o| o.temperatures = vec![0.0, 2.5]),
            ("temperatures", |o| o.temperatures = vec![-0.1]),
            ("temperatures", |o| o.temperatures = vec![]),
            ("compression_ratio_threshold", |o| {
                o.compression_ratio_threshold = Some(-1.0)
            }),
            ("log_prob_threshold", |o| o.log_prob_threshold = Some(0.5)),
            ("no_speech_threshold", |o| o.no_speech_threshold = Some(1.5)),
            ("prompt_reset_on_temperature", |o| {
                o.prompt_reset_on_temperature = f64::INFINITY
            }),
            ("max_initial_timestamp", |o| o.max_initial_timestamp = -1.0),
        ];
        for (option, spoil) in cases {
            let mut opts = DecodeOptions::default();
            spoil(&mut opts);
            let err = opts.validate().unwrap_err();
            assert_eq!(err.option, option, "{err}");
            assert!(err.to_string().starts_with(option), "{err}");
        }
    }

    #[test]
    fn thresholds_may_be_switched_off_and_the_edges_are_allowed() {
        let opts = DecodeOptions {
            compression_ratio_threshold: None,
            log_prob_threshold: None,
            temperatures: vec![0.0, 2.0],
            no_speech_threshold: Some(1.0),
            ..Default::default()
        };
        assert_eq!(opts.validate(), Ok(()));
    }
}
