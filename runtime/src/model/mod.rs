//! Whisper models: CTranslate2 model.bin, config.json, tokenizer, installation.
//!
//! [`WhisperModelFiles::load`] reads a model directory as faster-whisper ships it
//! (`model.bin`, `config.json`, `tokenizer.json`), derives the network's dimensions from
//! the weights and checks that every tensor the Whisper forward pass reads is present
//! with a consistent shape, so the encoder/decoder code can index weights without
//! re-checking.

pub mod config;
pub mod ct2;
mod dims;
pub mod install;
pub mod languages;
pub mod tokenizer;

use std::path::{Path, PathBuf};

pub use config::WhisperConfig;
pub use ct2::{DType, ModelBin, Variable};
pub use dims::WhisperDims;
pub use tokenizer::WhisperTokenizer;

/// Everything that can be wrong with a model directory or its files.
#[derive(thiserror::Error, Debug)]
pub enum ModelError {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unsupported CTranslate2 binary version {version} (expected 1..={max})", max = ct2::MAX_BINARY_VERSION)]
    BadVersion { path: PathBuf, version: u32 },
    #[error("{path} is truncated: {what} needs {needed} bytes at offset {offset}, only {remaining} remain")]
    Truncated {
        path: PathBuf,
        what: String,
        needed: usize,
        remaining: usize,
        offset: usize,
    },
    #[error("{path}: {what} at offset {offset} is not a NUL-terminated UTF-8 string")]
    BadString {
        path: PathBuf,
        what: String,
        offset: usize,
    },
    #[error("{path}: variable {name} has unknown dtype id {id} (known: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16)")]
    UnknownDType { path: PathBuf, name: String, id: u8 },
    #[error("{path}: variable {name} has unsupported item size {size} (expected 1, 2 or 4)")]
    UnknownItemSize {
        path: PathBuf,
        name: String,
        size: u8,
    },
    #[error("{path}: variable {name} {shape:?} {dtype} needs {expected} bytes but the file declares {found}")]
    ByteCountMismatch {
        path: PathBuf,
        name: String,
        shape: Vec<usize>,
        dtype: DType,
        expected: u64,
        found: u64,
    },
    #[error("{path}: variable {name} is defined twice")]
    DuplicateVariable { path: PathBuf, name: String },
    #[error("{path}: alias {alias} points at {target}, which does not exist")]
    DanglingAlias {
        path: PathBuf,
        alias: String,
        target: String,
    },
    #[error("{path}: {count} unexpected bytes after the end of the model at offset {offset}")]
    TrailingBytes {
        path: PathBuf,
        count: usize,
        offset: usize,
    },
    #[error("{path}: variable {name} not found")]
    MissingVariable { path: PathBuf, name: String },
    #[error("{path}: variable {name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: variable {name} ({dtype} {shape:?}) is not an integer scalar")]
    NotIntegerScalar {
        path: PathBuf,
        name: String,
        shape: Vec<usize>,
        dtype: DType,
    },
    #[error("{path}: quantisation scale {name} has {count} values for {rows} rows")]
    BadScale {
        path: PathBuf,
        name: String,
        count: usize,
        rows: usize,
    },
    #[error("{path}: quantisation scale {name} contains {value}")]
    BadScaleValue {
        path: PathBuf,
        name: String,
        value: f32,
    },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
    #[error("{path} is not a valid Whisper config.json")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is not a valid tokenizer.json: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("{path}: the vocabulary has no special token {token}")]
    MissingToken { path: PathBuf, token: String },
}

/// A loaded model directory: weights + config + tokenizer + dimensions derived from the weights.
#[derive(Debug)]
pub struct WhisperModelFiles {
    pub dir: PathBuf,
    pub bin: ModelBin,
    pub config: WhisperConfig,
    pub tokenizer: WhisperTokenizer,
    pub dims: WhisperDims,
}

impl WhisperModelFiles {
    /// Loads `dir/model.bin`, `dir/config.json` and `dir/tokenizer.json` and validates them
    /// against each other.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let bin = ModelBin::load(&dir.join("model.bin"))?;
        let dims = WhisperDims::from_model(&bin)?;
        let config = WhisperConfig::load(&dir.join("config.json"))?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = WhisperTokenizer::from_file(&tokenizer_path)?;
        if tokenizer.vocab_size() != dims.n_vocab {
            return Err(ModelError::Inconsistent {
                path: tokenizer_path,
                message: format!(
                    "the tokenizer implies {} tokens (timestamps included) but the model's embedding has {}",
                    tokenizer.vocab_size(),
                    dims.n_vocab
                ),
            });
        }
        // -1 in suppress_ids is openai-whisper's "non-speech symbols" marker.
        let bad_ids = config
            .suppress_ids
            .iter()
            .copied()
            .chain(config.suppress_ids_begin.iter().map(|&id| id as i64))
            .chain(config.lang_ids.iter().map(|&id| id as i64))
            .find(|&id| id < -1 || id >= dims.n_vocab as i64);
        if let Some(id) = bad_ids {
            return Err(ModelError::Inconsistent {
                path: dir.join("config.json"),
                message: format!(
                    "token id {id} is outside the vocabulary of {} tokens",
                    dims.n_vocab
                ),
            });
        }
        if let Some(&(layer, head)) = config
            .alignment_heads
            .iter()
            .find(|&&(l, h)| l >= dims.n_layers_dec || h >= dims.n_heads_dec)
        {
            return Err(ModelError::Inconsistent {
                path: dir.join("config.json"),
                message: format!(
                    "alignment head ({layer}, {head}) does not exist in a decoder of {} layers x {} heads",
                    dims.n_layers_dec, dims.n_heads_dec
                ),
            });
        }
        Ok(WhisperModelFiles {
            dir: dir.to_path_buf(),
            bin,
            config,
            tokenizer,
            dims,
        })
    }
}
