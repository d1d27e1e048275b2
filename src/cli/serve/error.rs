//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the
//! status a client can act on (400 fix the request, 404 wrong model, 413 smaller file,
//! 429/503 come back after `Retry-After`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error` for the client's fault, `server_error`
    /// otherwise.
    pub kind: &'static str,
    /// The form field at fault, if one is.
    pub param: Option<&'static str>,
    pub code: &'static str,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            message,
            kind,
            param: None,
            code,
            retry_after: None,
        }
    }

    /// 400: the request is wrong in `param`.
    pub fn bad_param(param: &'static str, code: &'static str, message: String) -> Self {
        Self {
            param: Some(param),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                code,
                message,
            )
        }
    }

    /// 400 that no single field is to blame for (a broken multipart body).
    pub fn bad_request(code: &'static str, message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    pub fn model_not_found(model: &str, served: &[String]) -> Self {
        Self {
            param: Some("model"),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!(
                    "the model `{model}` is not served here (served: {})",
                    served.join(", ")
                ),
            )
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self {
            param: Some("file"),
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "file_too_large",
                format!("the upload exceeds this server's limit of {limit} bytes"),
            )
        }
    }

    /// 429: every worker and queue slot is taken.
    pub fn queue_full(retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "queue_full",
                "the transcription queue is full; retry later".into(),
            )
        }
    }

    /// 503: loading models or shutting down.
    pub fn unavailable(message: String, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "unavailable",
                message,
            )
        }
    }

    pub fn upload_timeout(seconds: f64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "upload_timeout",
            format!("the upload did not complete within {seconds} s"),
        )
    }

    pub fn request_timeout(seconds: f64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            "timeout",
            format!("the transcription did not finish within {seconds} s"),
        )
    }

    pub fn internal(message: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_openais_four_fields() {
        let e = ApiError::bad_param("temperature", "invalid_value", "bad".into());
        let body = e.body();
        let inner = &body["error"];
        assert_eq!(inner["message"], "bad");
        assert_eq!(inner["type"], "invalid_request_error");
        assert_eq!(inner["param"], "temperature");
        assert_eq!(inner["code"], "invalid_value");
        assert_eq!(inner.as_object().unwrap().len(), 4);
    }

    #[test]
    fn queue_full_says_when_to_retry() {
        let r = ApiError::queue_full(3).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }
}
