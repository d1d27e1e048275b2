//! The audio endpoints' request path without a socket or a model, for fuzz/multipart: a
//! request with any content type and body goes through axum's `Multipart` extractor, our
//! form reader (upload limit, text-field limit, UTF-8) and every field check, and stops where
//! the server would hand the upload to the audio decoder (fuzzed on its own by fuzz/audio).
//!
//! It builds its own request, so axum's default 2 MiB body limit stays on where the server
//! disables it; libFuzzer's inputs are kept below that (bench/fuzz.sh's `-max_len`), so the
//! limit never decides an outcome here.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest as _, Multipart};
use axum::http::{header, HeaderValue, Request};

use aiec_runtime::decode::Task;
use aiec_runtime::model::WhisperTokenizer;

use super::request;
use super::routes::CheckedForm;

/// A request the server would answer with an error: its HTTP status and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub status: u16,
    pub message: String,
}

/// What a request that passes every check carries on to the decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// Index into `names`.
    pub model: usize,
    pub upload_bytes: usize,
    pub ext: Option<String>,
}

/// Checks one request as `/v1/audio/transcriptions` (or `translations`, by `task`) would.
/// `body` arrives in pieces of `chunk` bytes (all at once for 0), as a client's packets
/// would; `max_file` is `--max-upload-bytes`; `tokenizers[i]` belongs to `names[i]`.
/// `None` when `content_type` could not be sent as an HTTP header at all.
pub async fn check_request(
    content_type: &[u8],
    body: &[u8],
    chunk: usize,
    max_file: usize,
    names: &[String],
    tokenizers: &[&WhisperTokenizer],
    task: Task,
) -> Option<Result<Accepted, Rejected>> {
    let content_type = HeaderValue::from_bytes(content_type).ok()?;
    let pieces: Vec<Result<Bytes, Infallible>> = if chunk == 0 {
        vec![Ok(Bytes::copy_from_slice(body))]
    } else {
        body.chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    };
    let mut req = Request::new(Body::from_stream(futures_util::stream::iter(pieces)));
    req.headers_mut().insert(header::CONTENT_TYPE, content_type);
    let checked = async {
        let multipart = Multipart::from_request(req, &())
            .await
            .map_err(request::not_multipart)?;
        let form = request::read(multipart, max_file).await?;
        CheckedForm::from_form(names, tokenizers, form, task)
    };
    Some(
        checked
            .await
            .map(|c| Accepted {
                model: c.model,
                upload_bytes: c.upload.len(),
                ext: c.ext,
            })
            .map_err(|e| Rejected {
                status: e.status.as_u16(),
                message: e.message,
            }),
    )
}
