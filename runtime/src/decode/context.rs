//! What the decoding steps share: the model with its tokenizer and config (one [`Context`]
//! per model), and the [`Piece`]s a window's tokens are cut into before their text is
//! decoded (made by the long-form loop, given word timings by the aligner).

use super::options::DecodeOptions;
use super::{DecodeError, Specials};
use crate::model::{WhisperConfig, WhisperTokenizer};
use crate::transcript::Word;
use crate::whisper::{CrossKv, Whisper};

/// Everything fixed for one model.
pub struct Context<'a> {
    pub model: &'a Whisper,
    pub tokenizer: &'a WhisperTokenizer,
    pub config: &'a WhisperConfig,
    pub specials: Specials,
}

impl<'a> Context<'a> {
    pub fn new(
        model: &'a Whisper,
        tokenizer: &'a WhisperTokenizer,
        config: &'a WhisperConfig,
    ) -> Result<Self, DecodeError> {
        Ok(Self {
            model,
            tokenizer,
            config,
            specials: Specials::from_tokenizer(tokenizer)?,
        })
    }

    pub(super) fn multilingual(&self) -> bool {
        self.tokenizer.is_multilingual
    }

    /// Language probabilities from the logits at the start-of-transcript token, best first.
    pub fn detect_language(&self, cross: &CrossKv) -> Result<Vec<(String, f64)>, DecodeError> {
        let dec = &self.model.decoder;
        let mut state = dec.new_state(1);
        let out = dec.forward(&mut state, &[vec![self.specials.sot]], cross, &[]);
        let logits = dec.logits(&out.hidden);
        let langs = self.tokenizer.language_tokens();
        if langs.is_empty() {
            return Err(DecodeError::Tokenizer(
                "the tokenizer has no language tokens".into(),
            ));
        }
        let max = langs
            .iter()
            .map(|(_, id)| logits[*id as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = langs
            .iter()
            .map(|(_, id)| ((logits[*id as usize] - max) as f64).exp())
            .collect();
        let total: f64 = exps.iter().sum();
        let mut probs: Vec<(String, f64)> = langs
            .iter()
            .zip(exps)
            .map(|((code, _), e)| (code.clone(), e / total))
            .collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(probs)
    }

    pub(super) fn suppress_list(&self, opts: &DecodeOptions) -> Vec<u32> {
        let sp = &self.specials;
        let mut ids: Vec<u32> = self
            .config
            .suppress_ids
            .iter()
            .filter(|&&i| i >= 0)
            .map(|&i| i as u32)
            .collect();
        ids.extend(&opts.suppress_tokens);
        ids.extend([
            sp.transcribe,
            sp.translate,
            sp.sot,
            sp.sot_prev,
            sp.sot_lm,
            sp.no_speech,
        ]);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// A segment before its text is decoded.
pub struct Piece {
    pub start: f64,
    pub end: f64,
    pub tokens: Vec<u32>,
    pub words: Option<Vec<Word>>,
}
