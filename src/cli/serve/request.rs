//! The multipart form of `/v1/audio/transcriptions` and `/v1/audio/translations`, read
//! field by field with the upload limit applied while reading. An over-size file is not
//! kept but still read to its end, so the client receives the 413 instead of a reset
//! connection.

use axum::extract::multipart::MultipartRejection;
use axum::extract::Multipart;
use futures_util::StreamExt as _;

use super::error::ApiError;

/// How long a text field may be; prompts are the longest legitimate ones.
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// A request's form, fields as sent (checked later, by the shared decoding code).
#[derive(Debug, Default)]
pub struct Form {
    pub file: Option<Upload>,
    pub model: Option<String>,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<String>,
    pub response_format: Option<String>,
    /// `timestamp_granularities[]`, each occurrence.
    pub granularities: Vec<String>,
    pub stream: Option<String>,
    pub vad_filter: Option<String>,
    /// `vad_threshold`, `vad_min_silence_duration_ms`, ...: the `aiec run` flags' names.
    pub vad: crate::cli::decoding::VadChoices,
}

#[derive(Debug)]
pub struct Upload {
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// The answer to a request that is no multipart form at all (wrong content type, no boundary).
pub fn not_multipart(e: MultipartRejection) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!("expected a multipart/form-data upload: {}", e.body_text()),
    )
}

fn broken(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!(
            "the multipart upload is malformed or incomplete: {}",
            e.body_text()
        ),
    )
}

/// Reads the whole form. `max_file` bounds the `file` field; the limit is reported after
/// the body has been consumed.
pub async fn read(mut multipart: Multipart, max_file: usize) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut too_large = false;
    while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let filename = field.file_name().map(str::to_string);
            let mut bytes = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(broken)?;
                if bytes.len() + chunk.len() > max_file {
                    too_large = true;
                    bytes = Vec::new();
                }
                if !too_large {
                    bytes.extend_from_slice(&chunk);
                }
            }
            form.file = Some(Upload { filename, bytes });
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(broken)?;
            if text.len() + chunk.len() > MAX_TEXT_FIELD {
                return Err(ApiError::bad_request(
                    "field_too_long",
                    format!("the form field `{name}` is longer than {MAX_TEXT_FIELD} bytes"),
                ));
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text).map_err(|_| {
            ApiError::bad_request(
                "invalid_value",
                format!("the form field `{name}` is not UTF-8 text"),
            )
        })?;
        match name.as_str() {
            "model" => form.model = Some(text),
            "language" => form.language = Some(text),
            "prompt" => form.prompt = Some(text),
            "temperature" => form.temperature = Some(text),
            "response_format" => form.response_format = Some(text),
            "timestamp_granularities[]" | "timestamp_granularities" => {
                form.granularities.push(text)
            }
            "stream" => form.stream = Some(text),
            "vad_filter" => form.vad_filter = Some(text),
            "vad_threshold" => form.vad.threshold = Some(text),
            "vad_neg_threshold" => form.vad.neg_threshold = Some(text),
            "vad_min_speech_duration_ms" => form.vad.min_speech_duration_ms = Some(text),
            "vad_max_speech_duration_s" => form.vad.max_speech_duration_s = Some(text),
            "vad_min_silence_duration_ms" => form.vad.min_silence_duration_ms = Some(text),
            "vad_speech_pad_ms" => form.vad.speech_pad_ms = Some(text),
            // OpenAI adds fields over time (`chunking_strategy`, `include[]`); ignoring an
            // unknown one keeps newer clients working.
            _ => {}
        }
    }
    if too_large {
        return Err(ApiError::too_large(max_file));
    }
    Ok(form)
}

/// `true`/`false` as form values (the openai client sends `true` / `false`).
pub fn parse_bool(param: &'static str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" || v.is_empty() => Ok(false),
        Some(v) => Err(ApiError::bad_param(
            param,
            "invalid_value",
            format!("{param}: `{v}` is not true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_the_clients_spellings_only() {
        assert!(parse_bool("stream", Some("true")).unwrap());
        assert!(!parse_bool("stream", Some("False")).unwrap());
        assert!(!parse_bool("stream", None).unwrap());
        let e = parse_bool("stream", Some("yes please")).unwrap_err();
        assert_eq!(e.param, Some("stream"));
    }
}
