//! The decoding choices a user makes, from `aiec run` flags or an `aiec serve` request, and
//! the one function that turns them into checked [`DecodeOptions`]. Both front ends go
//! through [`DecodeChoices::options`], [`DecodeChoices::vad_options`], [`load_vad_model`]
//! and [`resolve_language`], so a request decodes exactly as the same flags would.

use std::fmt;
use std::sync::Arc;

use aiec_runtime::decode::{DecodeOptions, Task};
use aiec_runtime::model::install;
use aiec_runtime::model::WhisperTokenizer;
use aiec_runtime::vad::{self, SileroVad, VadOptions};

/// `--beam-size` / the server's beam width when a request names none.
pub const DEFAULT_BEAM_SIZE: usize = 5;
/// `--best-of`.
pub const DEFAULT_BEST_OF: usize = 5;
/// `--temperature`: faster-whisper's fallback list.
pub const DEFAULT_TEMPERATURES: &str = "0,0.2,0.4,0.6,0.8,1.0";

/// What a user can set; everything else keeps [`DecodeOptions`]' defaults.
#[derive(Debug, Clone)]
pub struct DecodeChoices {
    pub task: Task,
    pub beam_size: usize,
    pub best_of: usize,
    /// One temperature or a comma-separated fallback list.
    pub temperature: String,
    pub initial_prompt: Option<String>,
    pub word_timestamps: bool,
    pub condition_on_previous_text: bool,
    pub without_timestamps: bool,
    pub seed: u64,
    /// Decode only the speech the VAD finds (`--vad-filter`, `vad_filter`); `None`: all audio.
    pub vad: Option<VadChoices>,
}

/// The VAD parameters a user set, as text (a flag's value, a form field); each one absent
/// keeps faster-whisper's default. Both front ends parse and check them here.
#[derive(Debug, Clone, Default)]
pub struct VadChoices {
    pub threshold: Option<String>,
    pub neg_threshold: Option<String>,
    pub min_speech_duration_ms: Option<String>,
    pub max_speech_duration_s: Option<String>,
    pub min_silence_duration_ms: Option<String>,
    pub speech_pad_ms: Option<String>,
}

/// The user-facing names of the VAD parameters, as [`VadChoices::set`] reports them.
const VAD_NAMES: [&str; 6] = [
    "vad_threshold",
    "vad_neg_threshold",
    "vad_min_speech_duration_ms",
    "vad_max_speech_duration_s",
    "vad_min_silence_duration_ms",
    "vad_speech_pad_ms",
];

/// Longest duration a millisecond parameter may name: an hour keeps sample counts far from
/// overflow and catches seconds given as milliseconds.
const MAX_VAD_MS: f64 = 3_600_000.0;

fn parse_number(option: &'static str, text: &Option<String>) -> Result<Option<f64>, BadChoice> {
    text.as_deref()
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| BadChoice::NotANumber {
                option,
                text: t.to_string(),
            })
        })
        .transpose()
}

fn parse_ms(option: &'static str, text: &Option<String>) -> Result<Option<u32>, BadChoice> {
    parse_number(option, text)?
        .map(|v| {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_VAD_MS {
                Ok(v as u32)
            } else {
                Err(BadChoice::OutOfRange {
                    option,
                    value: v,
                    expected: "a whole number of milliseconds from 0 to 3600000",
                })
            }
        })
        .transpose()
}

impl VadChoices {
    /// The parameters that are set, by user-facing name (they mean nothing without the
    /// filter, so a front end refuses them then).
    pub fn set(&self) -> Vec<&'static str> {
        [
            &self.threshold,
            &self.neg_threshold,
            &self.min_speech_duration_ms,
            &self.max_speech_duration_s,
            &self.min_silence_duration_ms,
            &self.speech_pad_ms,
        ]
        .iter()
        .zip(VAD_NAMES)
        .filter(|(v, _)| v.is_some())
        .map(|(_, name)| name)
        .collect()
    }

    /// Parsed, unchecked (see [`DecodeChoices::vad_options`]).
    fn options(&self) -> Result<VadOptions, BadChoice> {
        let d = VadOptions::default();
        let [threshold, neg, min_speech, max_speech, min_silence, pad] = VAD_NAMES;
        Ok(VadOptions {
            threshold: parse_number(threshold, &self.threshold)?.map_or(d.threshold, |v| v as f32),
            neg_threshold: parse_number(neg, &self.neg_threshold)?
                .map(|v| v as f32)
                .or(d.neg_threshold),
            min_speech_duration_ms: parse_ms(min_speech, &self.min_speech_duration_ms)?
                .unwrap_or(d.min_speech_duration_ms),
            max_speech_duration_s: parse_number(max_speech, &self.max_speech_duration_s)?
                .unwrap_or(d.max_speech_duration_s),
            min_silence_duration_ms: parse_ms(min_silence, &self.min_silence_duration_ms)?
                .unwrap_or(d.min_silence_duration_ms),
            speech_pad_ms: parse_ms(pad, &self.speech_pad_ms)?.unwrap_or(d.speech_pad_ms),
        })
    }
}

impl Default for DecodeChoices {
    fn default() -> Self {
        Self {
            task: Task::Transcribe,
            beam_size: DEFAULT_BEAM_SIZE,
            best_of: DEFAULT_BEST_OF,
            temperature: DEFAULT_TEMPERATURES.into(),
            initial_prompt: None,
            word_timestamps: false,
            condition_on_previous_text: true,
            without_timestamps: false,
            seed: 0,
            vad: None,
        }
    }
}

/// A choice that cannot be decoded with. `option` is the user-facing name without any
/// `--` (`temperature`, `beam_size`); each front end spells it its own way.
#[derive(Debug, Clone, PartialEq)]
pub enum BadChoice {
    NotANumber {
        option: &'static str,
        text: String,
    },
    OutOfRange {
        option: &'static str,
        value: f64,
        expected: &'static str,
    },
}

impl BadChoice {
    pub fn option(&self) -> &'static str {
        match self {
            BadChoice::NotANumber { option, .. } | BadChoice::OutOfRange { option, .. } => option,
        }
    }
}

impl fmt::Display for BadChoice {
    /// Without the option name, which the front end puts first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadChoice::NotANumber { text, .. } => write!(f, "`{text}` is not a number"),
            BadChoice::OutOfRange {
                value, expected, ..
            } => write!(f, "{value}: must be {expected}"),
        }
    }
}

fn parse_temperatures(s: &str) -> Result<Vec<f64>, BadChoice> {
    s.split(',')
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| BadChoice::NotANumber {
                option: "temperature",
                text: t.to_string(),
            })
        })
        .collect()
}

impl DecodeChoices {
    /// The decoding options, checked (`DecodeOptions::validate`) so a bad value fails before
    /// any model work. The language is set separately ([`resolve_language`]): it needs the
    /// model's tokenizer.
    pub fn options(&self) -> Result<DecodeOptions, BadChoice> {
        let opts = DecodeOptions {
            task: self.task,
            beam_size: self.beam_size,
            best_of: self.best_of,
            temperatures: parse_temperatures(&self.temperature)?,
            initial_prompt: self.initial_prompt.clone(),
            word_timestamps: self.word_timestamps,
            condition_on_previous_text: self.condition_on_previous_text,
            without_timestamps: self.without_timestamps,
            seed: self.seed,
            ..DecodeOptions::default()
        };
        opts.validate().map_err(|e| BadChoice::OutOfRange {
            option: match e.option {
                "temperatures" => "temperature",
                option => option,
            },
            value: e.value,
            expected: e.expected,
        })?;
        Ok(opts)
    }
}

impl DecodeChoices {
    /// The VAD options, checked, when the filter is on. Option names are the user-facing
    /// ones with a `vad_` prefix (`vad_threshold`).
    pub fn vad_options(&self) -> Result<Option<VadOptions>, BadChoice> {
        let Some(choices) = &self.vad else {
            return Ok(None);
        };
        let opts = choices.options()?;
        opts.validate().map_err(|e| BadChoice::OutOfRange {
            option: match e.option {
                "threshold" => "vad_threshold",
                "neg_threshold" => "vad_neg_threshold",
                "min_speech_duration_ms" => "vad_min_speech_duration_ms",
                "max_speech_duration_s" => "vad_max_speech_duration_s",
                "min_silence_duration_ms" => "vad_min_silence_duration_ms",
                "speech_pad_ms" => "vad_speech_pad_ms",
                other => other,
            },
            value: e.value,
            expected: e.expected,
        })?;
        Ok(Some(opts))
    }
}

/// The installed Silero VAD model of the environment's cache; the error names
/// `aiec models install silero-vad` when it is absent.
pub fn load_vad_model() -> anyhow::Result<Arc<SileroVad>> {
    let models = install::models_dir()?;
    Ok(Arc::new(vad::load_installed(&models)?))
}

/// A language code or name as the tokenizer's language code; `None` when the model knows
/// no such language.
pub fn resolve_language(tok: &WhisperTokenizer, code_or_name: &str) -> Option<String> {
    let id = tok.language_token(code_or_name)?;
    Some(tok.language_of(id).unwrap_or(code_or_name).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_faster_whispers() {
        let opts = DecodeChoices::default().options().unwrap();
        let reference = DecodeOptions::default();
        assert_eq!(opts.temperatures, reference.temperatures);
        assert_eq!(opts.beam_size, reference.beam_size);
        assert_eq!(opts.best_of, reference.best_of);
        assert_eq!(
            opts.condition_on_previous_text,
            reference.condition_on_previous_text
        );
    }

    #[test]
    fn a_temperature_that_is_no_number_names_the_text() {
        let c = DecodeChoices {
            temperature: "0,warm".into(),
            ..Default::default()
        };
        let e = c.options().unwrap_err();
        assert_eq!(e.option(), "temperature");
        assert_eq!(e.to_string(), "`warm` is not a number");
    }

    #[test]
    fn an_out_of_range_value_uses_the_user_facing_name() {
        let c = DecodeChoices {
            temperature: "3".into(),
            ..Default::default()
        };
        let e = c.options().unwrap_err();
        assert_eq!(e.option(), "temperature");
        assert_eq!(e.to_string(), "3: must be between 0 and 2");
        let c = DecodeChoices {
            beam_size: 0,
            ..Default::default()
        };
        assert_eq!(c.options().unwrap_err().option(), "beam_size");
    }

    #[test]
    fn vad_choices_default_to_faster_whispers_and_name_bad_values() {
        let on = DecodeChoices {
            vad: Some(VadChoices::default()),
            ..Default::default()
        };
        assert_eq!(on.vad_options().unwrap(), Some(VadOptions::default()));
        assert_eq!(DecodeChoices::default().vad_options().unwrap(), None);
        let bad = DecodeChoices {
            vad: Some(VadChoices {
                threshold: Some("1.5".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = bad.vad_options().unwrap_err();
        assert_eq!(e.option(), "vad_threshold");
        assert_eq!(e.to_string(), "1.5: must be between 0 and 1 (exclusive)");
        let negative = DecodeChoices {
            vad: Some(VadChoices {
                min_silence_duration_ms: Some("-100".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = negative.vad_options().unwrap_err();
        assert_eq!(e.option(), "vad_min_silence_duration_ms");
        assert_eq!(
            e.to_string(),
            "-100: must be a whole number of milliseconds from 0 to 3600000"
        );
        let words = DecodeChoices {
            vad: Some(VadChoices {
                threshold: Some("high".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            words.vad_options().unwrap_err().to_string(),
            "`high` is not a number"
        );
    }
}
