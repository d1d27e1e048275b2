//! A transcript as OpenAI's `response_format`s: `json`, `text`, `srt`, `vtt` (the CLI's
//! writers in `aiec_runtime::output`), `verbose_json`, and the `stream=true` events.

use std::convert::Infallible;
use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use aiec_runtime::decode::Task;
use aiec_runtime::model::languages::language_name;
use aiec_runtime::output::{self, Format};
use aiec_runtime::transcript::Transcript;

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    Srt,
    VerboseJson,
    Vtt,
}

impl ResponseFormat {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        Ok(match value.map(str::trim).unwrap_or("json") {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "verbose_json" => Self::VerboseJson,
            "vtt" => Self::Vtt,
            other => {
                return Err(ApiError::bad_param(
                    "response_format",
                    "invalid_value",
                    format!(
                    "response_format: `{other}` is not one of json, text, srt, verbose_json, vtt"
                ),
                ))
            }
        })
    }
}

/// Which timestamps `verbose_json` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularities {
    pub segment: bool,
    pub word: bool,
}

impl Granularities {
    /// OpenAI's rule: segments unless only words were asked for.
    pub fn parse(values: &[String]) -> Result<Self, ApiError> {
        let mut g = Granularities {
            segment: values.is_empty(),
            word: false,
        };
        for v in values {
            match v.trim() {
                "segment" => g.segment = true,
                "word" => g.word = true,
                other => {
                    return Err(ApiError::bad_param(
                        "timestamp_granularities[]",
                        "invalid_value",
                        format!("timestamp_granularities[]: `{other}` is not segment or word"),
                    ))
                }
            }
        }
        Ok(g)
    }
}

fn with_type(body: String, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub fn render(
    t: &Transcript,
    format: ResponseFormat,
    task: Task,
    granularities: Granularities,
) -> Response {
    match format {
        ResponseFormat::Json => axum::Json(serde_json::json!({"text": t.text()})).into_response(),
        ResponseFormat::Text => with_type(t.text() + "\n", "text/plain; charset=utf-8"),
        ResponseFormat::Srt => with_type(
            output::render(Format::Srt, t),
            "application/x-subrip; charset=utf-8",
        ),
        ResponseFormat::Vtt => with_type(output::render(Format::Vtt, t), "text/vtt; charset=utf-8"),
        ResponseFormat::VerboseJson => {
            axum::Json(verbose_json(t, task, granularities)).into_response()
        }
    }
}

#[derive(Serialize)]
struct VerboseSegment<'a> {
    id: usize,
    seek: usize,
    start: f64,
    end: f64,
    text: &'a str,
    tokens: &'a [u32],
    temperature: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
}

#[derive(Serialize)]
struct VerboseWord<'a> {
    word: &'a str,
    start: f64,
    end: f64,
}

/// OpenAI's verbose transcription: the language by name (as OpenAI reports it), the
/// duration, the text, and segments and/or words as asked.
fn verbose_json(t: &Transcript, task: Task, g: Granularities) -> serde_json::Value {
    let mut v = serde_json::json!({
        "task": match task { Task::Transcribe => "transcribe", Task::Translate => "translate" },
        "language": language_name(&t.language).unwrap_or(&t.language),
        "duration": t.duration,
        "text": t.text(),
    });
    if g.segment {
        let segments: Vec<VerboseSegment> = t
            .segments
            .iter()
            .map(|s| VerboseSegment {
                id: s.id,
                seek: s.seek,
                start: s.start,
                end: s.end,
                text: &s.text,
                tokens: &s.tokens,
                temperature: s.temperature,
                avg_logprob: s.avg_logprob,
                compression_ratio: s.compression_ratio,
                no_speech_prob: s.no_speech_prob,
            })
            .collect();
        v["segments"] = serde_json::to_value(segments).unwrap_or_default();
    }
    if g.word {
        let words: Vec<VerboseWord> = t
            .segments
            .iter()
            .flat_map(|s| s.words.iter().flatten())
            .map(|w| VerboseWord {
                word: w.word.trim(),
                start: w.start,
                end: w.end,
            })
            .collect();
        v["words"] = serde_json::to_value(words).unwrap_or_default();
    }
    v
}

/// Cuts segment texts into deltas that concatenate to exactly [`Transcript::text`]: no
/// leading whitespace before the first text, and whitespace at a delta's end held back
/// until more text follows it (so the trailing whitespace of the whole is never sent).
#[derive(Default)]
pub struct DeltaCutter {
    started: bool,
    held: String,
}

impl DeltaCutter {
    pub fn push(&mut self, text: &str) -> Option<String> {
        let text = if self.started {
            text
        } else {
            text.trim_start()
        };
        let body = text.trim_end();
        if body.is_empty() {
            if self.started {
                self.held.push_str(text);
            }
            return None;
        }
        self.started = true;
        let delta = std::mem::take(&mut self.held) + body;
        self.held = text[body.len()..].to_string();
        Some(delta)
    }
}

fn event(value: serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// Server-sent events as OpenAI streams a transcription: a `transcript.text.delta` per
/// segment as the decoder finishes it (`segments`), then `transcript.text.done` with the
/// whole text, or an `error` event if the transcription fails after the stream began.
pub fn stream_events(
    segments: UnboundedReceiver<String>,
    done: impl Future<Output = Result<Transcript, ApiError>> + Send + 'static,
) -> Response {
    let deltas = futures_util::stream::unfold(
        (segments, DeltaCutter::default()),
        |(mut rx, mut cutter)| async move {
            loop {
                let text = rx.recv().await?;
                if let Some(d) = cutter.push(&text) {
                    let e = event(serde_json::json!({"type": "transcript.text.delta", "delta": d}));
                    return Some((Ok::<_, Infallible>(e), (rx, cutter)));
                }
            }
        },
    );
    let end = futures_util::stream::once(async move {
        Ok(match done.await {
            Ok(t) => event(serde_json::json!({"type": "transcript.text.done", "text": t.text()})),
            Err(e) => event(e.body()),
        })
    });
    let body = Body::from_stream(deltas.chain(end));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiec_runtime::transcript::Segment;

    fn transcript(texts: &[&str]) -> Transcript {
        Transcript {
            language: "en".into(),
            language_probability: 1.0,
            duration: 3.0,
            segments: texts
                .iter()
                .enumerate()
                .map(|(i, text)| Segment {
                    id: i + 1,
                    seek: 0,
                    start: i as f64,
                    end: i as f64 + 1.0,
                    text: text.to_string(),
                    tokens: vec![],
                    temperature: 0.0,
                    avg_logprob: -0.1,
                    compression_ratio: 1.0,
                    no_speech_prob: 0.0,
                    words: None,
                })
                .collect(),
        }
    }

    #[test]
    fn deltas_concatenate_to_the_text() {
        for texts in [
            vec![" Hello there.", " General Kenobi. "],
            vec!["  ", " a", " b  "],
            vec![" a ", "  ", " b"],
            vec![],
        ] {
            let t = transcript(&texts);
            let mut cutter = DeltaCutter::default();
            let deltas: Vec<String> = texts.iter().filter_map(|s| cutter.push(s)).collect();
            assert_eq!(deltas.concat(), t.text(), "{texts:?}");
            assert!(deltas.iter().all(|d| !d.is_empty()));
        }
    }

    #[test]
    fn only_words_means_no_segments() {
        let g = Granularities::parse(&["word".into()]).unwrap();
        assert_eq!(
            g,
            Granularities {
                segment: false,
                word: true
            }
        );
        let v = verbose_json(&transcript(&[" x"]), Task::Transcribe, g);
        assert!(v.get("segments").is_none());
        assert_eq!(v["words"], serde_json::json!([]));
        assert_eq!(v["language"], "english");
    }

    #[test]
    fn unknown_formats_and_granularities_name_their_field() {
        assert_eq!(
            ResponseFormat::parse(Some("xml")).unwrap_err().param,
            Some("response_format")
        );
        assert!(Granularities::parse(&["char".into()]).is_err());
    }
}
