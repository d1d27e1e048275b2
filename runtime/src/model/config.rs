//! `config.json` of a CTranslate2 Whisper model (written by the converter; it carries the
//! decoding hints faster-whisper uses).

use std::path::Path;

use serde::Deserialize;

use super::ModelError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct WhisperConfig {
    /// (decoder layer, head) pairs whose cross-attention follows the audio (word timestamps).
    #[serde(default)]
    pub alignment_heads: Vec<(usize, usize)>,
    /// Token ids of the language tokens the model was trained with.
    #[serde(default)]
    pub lang_ids: Vec<u32>,
    /// Tokens never sampled (-1 stands for openai-whisper's "non-speech symbols" set).
    #[serde(default)]
    pub suppress_ids: Vec<i64>,
    /// Tokens not allowed as the first sampled token (blank, <|endoftext|>).
    #[serde(default)]
    pub suppress_ids_begin: Vec<u32>,
}

impl WhisperConfig {
    pub fn load(path: &Path) -> Result<WhisperConfig, ModelError> {
        let text = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        WhisperConfig::parse(path, &text)
    }

    /// Parses config.json bytes; `path` is only used in messages.
    pub fn parse(path: &Path, json: &[u8]) -> Result<WhisperConfig, ModelError> {
        serde_json::from_slice(json).map_err(|source| ModelError::Config {
            path: path.to_path_buf(),
            source,
        })
    }
}
