//! Whisper's tokenizer: the byte-level BPE of `tokenizer.json` (via the HF `tokenizers`
//! crate) plus Whisper's special tokens.
//!
//! The tokenizer.json shipped with CTranslate2 models stops at `<|notimestamps|>`; the
//! 1501 timestamp tokens `<|0.00|>`..`<|30.00|>` that follow it in the model's vocabulary
//! are not in the file, so they are computed here.

use std::path::{Path, PathBuf};

use super::{languages, ModelError};

/// Number of timestamp tokens: 0.00 s to 30.00 s in 0.02 s steps.
pub const N_TIMESTAMPS: usize = 1501;
/// Seconds per timestamp token.
pub const TIMESTAMP_STEP: f32 = 0.02;

pub struct WhisperTokenizer {
    inner: tokenizers::Tokenizer,
    /// Where it was loaded from (for messages).
    path: PathBuf,
    /// `<|endoftext|>`; every id below it is text.
    pub eot: u32,
    /// `<|startoftranscript|>`
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    /// `<|startoflm|>`
    pub sot_lm: u32,
    /// `<|startofprev|>`
    pub sot_prev: u32,
    /// `<|nospeech|>` or, in older vocabularies, `<|nocaptions|>`.
    pub no_speech: u32,
    /// `<|notimestamps|>`
    pub no_timestamps: u32,
    /// `<|0.00|>` = no_timestamps + 1.
    pub timestamp_begin: u32,
    /// Multilingual vocabularies have 51865 or more tokens; English-only ones 51864.
    pub is_multilingual: bool,
    vocab_size: usize,
    languages: Vec<(String, u32)>,
}

impl std::fmt::Debug for WhisperTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("eot", &self.eot)
            .field("sot", &self.sot)
            .field("is_multilingual", &self.is_multilingual)
            .field("languages", &self.languages.len())
            .finish()
    }
}

impl WhisperTokenizer {
    pub fn from_file(path: &Path) -> Result<WhisperTokenizer, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        WhisperTokenizer::from_bytes(path, &bytes)
    }

    /// Parses tokenizer.json's bytes; `path` is only used in messages. The tokenizers crate
    /// panics on some malformed files instead of returning an error (0.21: a control
    /// character inside the `decoder` object hits an `expect`, found by fuzz/tokenizer), so
    /// the parse runs contained and such a panic becomes this file's error.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<WhisperTokenizer, ModelError> {
        let fail = |message: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let inner = crate::guard::contain(|| tokenizers::Tokenizer::from_bytes(bytes))
            .map_err(|panic| fail(format!("malformed tokenizer file ({panic})")))?
            .map_err(|e| fail(e.to_string()))?;
        WhisperTokenizer::from_tokenizer(path, inner)
    }

    /// Wraps an already-built tokenizer; `path` is only used in messages.
    pub fn from_tokenizer(
        path: &Path,
        inner: tokenizers::Tokenizer,
    ) -> Result<WhisperTokenizer, ModelError> {
        let special = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| ModelError::MissingToken {
                    path: path.to_path_buf(),
                    token: token.to_string(),
                })
        };
        let eot = special("<|endoftext|>")?;
        let sot = special("<|startoftranscript|>")?;
        let translate = special("<|translate|>")?;
        let transcribe = special("<|transcribe|>")?;
        let sot_lm = special("<|startoflm|>")?;
        let sot_prev = special("<|startofprev|>")?;
        let no_speech = special("<|nospeech|>").or_else(|_| special("<|nocaptions|>"))?;
        let no_timestamps = special("<|notimestamps|>")?;
        let timestamp_begin = no_timestamps.saturating_add(1);
        let vocab_size = inner
            .get_vocab_size(true)
            .max(timestamp_begin as usize + N_TIMESTAMPS);
        // Language tokens sit between <|startoftranscript|> and <|translate|>, in Whisper's order.
        let languages = (sot + 1..translate)
            .filter_map(|id| {
                let token = inner.id_to_token(id)?;
                let code = token.strip_prefix("<|")?.strip_suffix("|>")?.to_string();
                Some((code, id))
            })
            .collect();
        Ok(WhisperTokenizer {
            inner,
            path: path.to_path_buf(),
            eot,
            sot,
            translate,
            transcribe,
            sot_lm,
            sot_prev,
            no_speech,
            no_timestamps,
            timestamp_begin,
            is_multilingual: vocab_size >= 51865,
            vocab_size,
            languages,
        })
    }

    /// The underlying HF tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// All token ids the model can produce, timestamps included (51865 for multilingual
    /// models, 51864 for English-only ones).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Text to token ids, without adding special tokens.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Text to token ids, without adding special tokens. Byte-level BPE covers every
    /// input, so this cannot fail with a valid tokenizer; a failure is logged and gives
    /// no tokens (use [`try_encode`](Self::try_encode) to see the error).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text).unwrap_or_else(|e| {
            tracing::error!("cannot tokenize {text:?}: {e}");
            Vec::new()
        })
    }

    /// The text of `ids`, skipping special and timestamp tokens (ids >= eot).
    pub fn decode(&self, ids: &[u32]) -> String {
        let text: Vec<u32> = ids.iter().copied().filter(|&id| id < self.eot).collect();
        self.decode_text(&text)
    }

    fn decode_text(&self, ids: &[u32]) -> String {
        if ids.is_empty() {
            return String::new();
        }
        // Ids below eot are all in the BPE vocabulary, so decoding cannot fail.
        self.inner.decode(ids, false).unwrap_or_else(|e| {
            tracing::error!("cannot decode {ids:?}: {e}");
            String::new()
        })
    }

    /// Like [`decode`](Self::decode) but special tokens appear as `<|...|>` and timestamp
    /// tokens as `<|1.24|>`.
    pub fn decode_with_special(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut run = Vec::new();
        for &id in ids {
            if id < self.eot {
                run.push(id);
                continue;
            }
            out.push_str(&self.decode_text(&run));
            run.clear();
            match self.id_to_token(id) {
                Some(token) => out.push_str(&token),
                None => out.push_str(&format!("<|id={id}|>")),
            }
        }
        out.push_str(&self.decode_text(&run));
        out
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token).or_else(|| {
            let seconds: f32 = token.strip_prefix("<|")?.strip_suffix("|>")?.parse().ok()?;
            let step = (seconds / TIMESTAMP_STEP).round();
            if !(0.0..N_TIMESTAMPS as f32).contains(&step) {
                return None;
            }
            let id = self.timestamp_begin.checked_add(step as u32)?;
            // Only the exact spelling (`<|1.24|>`, not `<|1.23|>` or `<|1.240|>`).
            (self.id_to_token(id)? == token).then_some(id)
        })
    }

    /// The token string of `id` (BPE tokens in their byte-level form, e.g. `ĠAnd`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        if let Some(seconds) = self.timestamp_seconds(id) {
            return Some(format!("<|{seconds:.2}|>"));
        }
        self.inner.id_to_token(id)
    }

    /// The time of a timestamp token, `None` for any other id.
    pub fn timestamp_seconds(&self, id: u32) -> Option<f32> {
        let step = id.checked_sub(self.timestamp_begin)? as usize;
        (step < N_TIMESTAMPS).then_some(step as f32 * TIMESTAMP_STEP)
    }

    /// (code, token id) of every language token, in Whisper's order (`en` first).
    pub fn language_tokens(&self) -> Vec<(String, u32)> {
        self.languages.clone()
    }

    /// The token of a language given by code or English name (`en`, `English`).
    pub fn language_token(&self, code_or_name: &str) -> Option<u32> {
        let code = languages::language_code(code_or_name).unwrap_or(code_or_name);
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| *id)
    }

    /// The language code of a language token id.
    pub fn language_of(&self, id: u32) -> Option<&str> {
        self.languages
            .iter()
            .find(|(_, i)| *i == id)
            .map(|(c, _)| c.as_str())
    }
}
