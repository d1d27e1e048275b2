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

#[cfg(test)]
mod tests {
    use super::*;
    use aiec_runtime::model::install;

    const BOUNDARY: &str = "------------------------d74496d66958873e";

    fn tokenizer(name: &str) -> WhisperTokenizer {
        let dir = install::resolve(name).unwrap_or_else(|e| panic!("needs {name}: {e}"));
        WhisperTokenizer::from_file(&dir.join("tokenizer.json")).unwrap()
    }

    /// A form as curl -F sends it: the file part, then text fields.
    fn body(file: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(file);
        for (name, value) in fields {
            b.extend_from_slice(
                format!("\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes(),
            );
        }
        b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        b
    }

    /// What the fuzz target reaches: acceptance, and each kind of refusal with its status.
    #[tokio::test]
    async fn requests_are_accepted_or_refused_with_the_servers_status() {
        let names = vec!["whisper-base".to_string(), "tiny.en".to_string()];
        let (base, tiny) = (tokenizer("whisper-base"), tokenizer("tiny.en"));
        let tokenizers = [&base, &tiny];
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let clip = vec![7u8; 6000];
        let check = |ct: String, body: Vec<u8>, chunk: usize, max: usize| {
            let (names, tokenizers) = (names.clone(), tokenizers);
            async move {
                check_request(
                    ct.as_bytes(),
                    &body,
                    chunk,
                    max,
                    &names,
                    &tokenizers,
                    Task::Transcribe,
                )
                .await
                .expect("a valid header value")
            }
        };
        let fields = [("model", "whisper-base"), ("language", "German")];
        for chunk in [0, 1, 13] {
            let ok = check(ct.clone(), body(&clip, &fields), chunk, 1 << 20).await;
            assert_eq!(
                ok,
                Ok(Accepted {
                    model: 0,
                    upload_bytes: 6000,
                    ext: Some("wav".into())
                }),
                "chunk {chunk}"
            );
        }
        let status = |r: Result<Accepted, Rejected>| r.expect_err("refused").status;
        assert_eq!(
            status(check(ct.clone(), body(&clip, &fields), 64, 4096).await),
            413
        );
        let unknown = [("model", "large-v3")];
        assert_eq!(
            status(check(ct.clone(), body(&clip, &unknown), 0, 1 << 20).await),
            404
        );
        let bad_language = [("model", "tiny.en"), ("language", "Klingon")];
        assert_eq!(
            status(check(ct.clone(), body(&clip, &bad_language), 0, 1 << 20).await),
            400
        );
        let no_boundary = "multipart/form-data".to_string();
        assert_eq!(
            status(check(no_boundary, body(&clip, &fields), 0, 1 << 20).await),
            400
        );
        let mut cut = body(&clip, &fields);
        cut.truncate(3000);
        assert_eq!(status(check(ct.clone(), cut, 0, 1 << 20).await), 400);
    }
}
