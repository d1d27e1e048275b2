//! Decoding as faster-whisper does it by default: language detection, beam search with
//! temperature fallback, timestamp rules, long-form seeking across 30 s windows, conditioning
//! on previous text, optional word timestamps.

pub mod context;
pub mod logits;
pub mod options;
pub mod search;
pub mod transcribe;
pub mod words;

pub use context::{Context, Piece};
pub use options::{DecodeOptions, OptionsError, Task};
pub use transcribe::{transcribe, transcribe_streaming, OnSegment, Progress};

use crate::model::{ModelError, WhisperTokenizer};

#[derive(thiserror::Error, Debug)]
pub enum DecodeError {
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("unknown language `{0}`")]
    UnknownLanguage(String),
    /// The caller's cancel flag was set (a server whose client timed out).
    #[error("cancelled after {seconds:.1} s of audio")]
    Cancelled { seconds: f64 },
    /// A window of a spilled log-mel could not be read back from its temporary file.
    #[error("reading the log-mel back from its temporary file")]
    Features(#[source] std::io::Error),
}

/// Ids of Whisper's special tokens in the model's vocabulary.
#[derive(Debug, Clone)]
pub struct Specials {
    pub sot: u32,
    pub eot: u32,
    pub transcribe: u32,
    pub translate: u32,
    pub sot_prev: u32,
    pub sot_lm: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
}

impl Specials {
    pub fn from_tokenizer(tok: &WhisperTokenizer) -> Result<Self, DecodeError> {
        let id = |names: &[&str]| -> Result<u32, DecodeError> {
            names
                .iter()
                .find_map(|n| tok.token_to_id(n))
                .ok_or_else(|| {
                    DecodeError::Tokenizer(format!(
                        "tokenizer has no special token {}",
                        names.join(" or ")
                    ))
                })
        };
        let no_timestamps = id(&["<|notimestamps|>"])?;
        Ok(Self {
            sot: id(&["<|startoftranscript|>"])?,
            eot: id(&["<|endoftext|>"])?,
            transcribe: id(&["<|transcribe|>"])?,
            translate: id(&["<|translate|>"])?,
            sot_prev: id(&["<|startofprev|>"])?,
            sot_lm: id(&["<|startoflm|>"])?,
            no_speech: id(&["<|nospeech|>", "<|nocaptions|>"])?,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
        })
    }
}
