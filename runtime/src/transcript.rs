//! What a transcription produces: segments with timing, tokens and decoding statistics.
//! The output writers (`output`) and the decoder (`decode`) meet here.

use serde::Serialize;

/// One word with its time span, from DTW over cross-attention (`--word-timestamps`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    /// The word as decoded, with its leading space if it had one.
    pub word: String,
    pub probability: f64,
}

/// One decoded segment, as faster-whisper reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub id: usize,
    /// Mel frame at which the 30 s window holding this segment started.
    pub seek: usize,
    pub start: f64,
    pub end: f64,
    /// Text with its leading space, as Whisper emits it.
    pub text: String,
    pub tokens: Vec<u32>,
    pub temperature: f64,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<Word>>,
}

/// The whole result for one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    pub language: String,
    pub language_probability: f64,
    /// Audio duration in seconds.
    pub duration: f64,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The full text: segment texts joined, trimmed at both ends.
    pub fn text(&self) -> String {
        let joined: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        joined.trim().to_string()
    }
}
