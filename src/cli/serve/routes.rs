//! The HTTP surface: the two audio endpoints, `/v1/models` and `/health`, over one shared
//! [`AppState`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use aiec_runtime::audio::{self, SAMPLE_RATE};
use aiec_runtime::decode::{DecodeError, Task};
use aiec_runtime::model::WhisperTokenizer;
use aiec_runtime::pipeline::{PipelineError, Transcriber};
use aiec_runtime::transcript::{Segment, Transcript};
use aiec_runtime::vad::{SileroVad, VadFilter, VadOptions};

use super::admission::Gate;
use super::error::ApiError;
use super::request::{self, parse_bool, Form};
use super::respond::{self, Granularities, ResponseFormat};
use crate::cli::decoding::{load_vad_model, resolve_language, DecodeChoices};

/// The server's limits (`aiec serve` flags).
#[derive(Debug, Clone)]
pub struct Limits {
    pub upload_bytes: usize,
    pub upload_timeout: Duration,
    pub request_timeout: Duration,
}

pub struct AppState {
    /// Names in `--model` order; the models themselves once loaded.
    pub names: Vec<String>,
    pub models: OnceLock<Vec<Arc<Transcriber>>>,
    pub gate: Gate,
    pub limits: Limits,
    pub draining: AtomicBool,
    pub next_id: AtomicU64,
    pub timings: bool,
    /// The VAD model, loaded by the first `vad_filter` request (a failed load is retried,
    /// so installing the model while the server runs is enough).
    pub vad: Mutex<Option<Arc<SileroVad>>>,
}

impl AppState {
    fn vad_model(&self) -> anyhow::Result<Arc<SileroVad>> {
        let mut slot = self.vad.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let m = load_vad_model()?;
        *slot = Some(m.clone());
        Ok(m)
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/v1/audio/translations", post(translations))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        // The upload limit is enforced while the form is read (`request::read`), which can
        // then answer 413 after consuming the body.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (status, word) = if state.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if state.models.get().is_none() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else {
        (StatusCode::OK, "ready")
    };
    let body = serde_json::json!({
        "status": word,
        "models": state.names,
        "queued": state.gate.waiting(),
    });
    (status, Json(body)).into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let data: Vec<_> = state
        .names
        .iter()
        .map(
            |id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "aiec"}),
        )
        .collect();
    Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

async fn transcriptions(
    State(state): State<Arc<AppState>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    handle(state, multipart, Task::Transcribe).await
}

async fn translations(
    State(state): State<Arc<AppState>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    handle(state, multipart, Task::Translate).await
}

/// What the log line of one request reports.
#[derive(Default, Clone)]
struct Outcome {
    streamed: bool,
    model: String,
    audio_seconds: f64,
    decode_seconds: f64,
}

async fn handle(
    state: Arc<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Response {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut response = match transcribe(&state, multipart, task, &mut outcome, (id, started)).await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(request_id = id, model = %outcome.model, status = e.status.as_u16(), code = e.code, error = %e.message, "request failed");
            e.into_response()
        }
    };
    // A stream logs itself when it ends.
    if response.status() == StatusCode::OK && !outcome.streamed {
        log_success(id, task, &outcome, started);
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn log_success(id: u64, task: Task, outcome: &Outcome, started: Instant) {
    tracing::info!(
        request_id = id,
        model = %outcome.model,
        task = ?task,
        stream = outcome.streamed,
        audio_seconds = format_args!("{:.2}", outcome.audio_seconds),
        decode_seconds = format_args!("{:.3}", outcome.decode_seconds),
        realtime_factor = format_args!("{:.4}", outcome.decode_seconds / outcome.audio_seconds.max(1e-9)),
        total_seconds = format_args!("{:.3}", started.elapsed().as_secs_f64()),
        status = 200,
        "transcribed"
    );
}

fn required<T>(value: Option<T>, param: &'static str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::bad_param(
            param,
            "missing_required_parameter",
            format!("the form field `{param}` is required"),
        )
    })
}

async fn transcribe(
    state: &Arc<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
    task: Task,
    outcome: &mut Outcome,
    (id, started): (u64, Instant),
) -> Result<Response, ApiError> {
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::unavailable(
            "the server is shutting down".into(),
            5,
        ));
    }
    let Some(loaded) = state.models.get() else {
        return Err(ApiError::unavailable(
            "the models are still loading".into(),
            2,
        ));
    };
    let multipart = multipart.map_err(request::not_multipart)?;
    let ticket = state
        .gate
        .admit()
        .ok_or_else(|| ApiError::queue_full(state.gate.retry_after()))?;
    let upload_timeout = state.limits.upload_timeout;
    let form = tokio::time::timeout(
        upload_timeout,
        request::read(multipart, state.limits.upload_bytes),
    )
    .await
    .map_err(|_| ApiError::upload_timeout(upload_timeout.as_secs_f64()))??;
    outcome.model = form.model.clone().unwrap_or_default();
    let job = Job::from_form(state, loaded, form, task)?;

    // Audio decoding is cheap next to Whisper and independent of the model, so it runs
    // before the worker wait: a corrupt file is answered at once, not after the queue.
    let (bytes, ext, name) = (job.upload, job.ext, job.display_name);
    let samples =
        tokio::task::spawn_blocking(move || audio::decode_bytes(bytes, ext.as_deref(), &name))
            .await
            .map_err(|e| ApiError::internal(format!("audio decoding thread failed: {e}")))?
            .map_err(|e| ApiError::bad_param("file", "invalid_audio", e.to_string()))?;
    outcome.audio_seconds = samples.len() as f64 / SAMPLE_RATE as f64;

    let permit = state.gate.run(ticket).await;
    let transcriber = job.transcriber.clone();
    let opts = job.options;
    let vad = job.vad;
    let timings = state.timings;
    let decode_started = Instant::now();
    let (segment_tx, segment_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stream = job.stream;
    // Set when the request ends for any reason (answered, timed out, client gone): a
    // decoding nobody waits for stops at its next window and frees its worker.
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let cancel_flag = cancel.0.clone();
    let work = tokio::task::spawn_blocking(move || {
        // The permit lives as long as the decoding, even if the request times out.
        let _permit = permit;
        let mut on_segment = |s: &Segment| {
            if stream {
                // A client that went away closed the channel; decoding just finishes.
                let _ = segment_tx.send(s.text.clone());
            }
        };
        let t = transcriber.transcribe_filtered(
            &samples,
            &opts,
            vad.as_ref(),
            None,
            &mut on_segment,
            &cancel_flag,
        );
        if let Err(e @ PipelineError::Decode(DecodeError::Cancelled { .. })) = &t {
            tracing::info!("decoding {e}: its request has ended");
        }
        if timings {
            let stats = transcriber.model.backend().stats();
            eprint!(
                "timing: {} ops\n{}",
                transcriber.model.backend().name(),
                stats.table()
            );
            stats.reset();
        }
        t
    });
    let deadline = tokio::time::Instant::now() + state.limits.request_timeout;
    let finished = {
        let state = state.clone();
        let request_timeout = state.limits.request_timeout.as_secs_f64();
        move |joined: Result<
            Result<Result<Transcript, PipelineError>, tokio::task::JoinError>,
            tokio::time::error::Elapsed,
        >| {
            let t = joined
                .map_err(|_| ApiError::request_timeout(request_timeout))?
                .map_err(|e| ApiError::internal(format!("transcription thread failed: {e}")))?
                .map_err(|e| match e {
                    PipelineError::Audio(e) => {
                        ApiError::bad_param("file", "invalid_audio", e.to_string())
                    }
                    e => ApiError::internal(e.to_string()),
                })?;
            state.gate.record(decode_started.elapsed().as_secs_f64());
            Ok::<_, ApiError>(t)
        }
    };
    if stream {
        outcome.streamed = true;
        let mut outcome = outcome.clone();
        let events = respond::stream_events(segment_rx, async move {
            let _cancel = cancel;
            let t = finished(tokio::time::timeout_at(deadline, work).await);
            match &t {
                Ok(_) => {
                    outcome.decode_seconds = decode_started.elapsed().as_secs_f64();
                    log_success(id, task, &outcome, started);
                }
                Err(e) => {
                    tracing::warn!(request_id = id, model = %outcome.model, status = e.status.as_u16(), code = e.code, error = %e.message, "stream failed")
                }
            }
            t
        });
        return Ok(events);
    }
    let transcript = finished(tokio::time::timeout_at(deadline, work).await)?;
    drop(cancel);
    outcome.decode_seconds = decode_started.elapsed().as_secs_f64();
    Ok(respond::render(
        &transcript,
        job.format,
        task,
        job.granularities,
    ))
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A request with every field checked, ready to run.
struct Job {
    transcriber: Arc<Transcriber>,
    upload: Vec<u8>,
    ext: Option<String>,
    display_name: String,
    options: aiec_runtime::decode::DecodeOptions,
    vad: Option<VadFilter>,
    format: ResponseFormat,
    granularities: Granularities,
    stream: bool,
}

impl Job {
    fn from_form(
        state: &AppState,
        loaded: &[Arc<Transcriber>],
        form: Form,
        task: Task,
    ) -> Result<Self, ApiError> {
        let tokenizers: Vec<&WhisperTokenizer> =
            loaded.iter().map(|t| &t.files.tokenizer).collect();
        let checked = CheckedForm::from_form(&state.names, &tokenizers, form, task)?;
        let transcriber = loaded.get(checked.model).cloned().ok_or_else(|| {
            ApiError::internal(format!(
                "model {} of {} is not loaded",
                checked.model,
                loaded.len()
            ))
        })?;
        // The model loads only once a request is otherwise valid (a bad parameter is a 400,
        // whether or not the model is installed).
        let vad = match checked.vad {
            Some(o) => {
                let unavailable = |e: String| {
                    ApiError::bad_param(
                        "vad_filter",
                        "unsupported_value",
                        format!("vad_filter: {e}"),
                    )
                };
                let model = state
                    .vad_model()
                    .map_err(|e| unavailable(format!("{e:#}")))?;
                Some(VadFilter::new(model, o).map_err(|e| unavailable(e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            transcriber,
            upload: checked.upload,
            ext: checked.ext,
            display_name: checked.display_name,
            options: checked.options,
            vad,
            format: checked.format,
            granularities: checked.granularities,
            stream: checked.stream,
        })
    }
}

/// A form with every field checked against the served models' names and tokenizers, but no
/// model attached: the checks need nothing heavier, so fuzz/multipart runs them as they are.
pub(super) struct CheckedForm {
    /// Index into the served names (and the loaded models, in the same order).
    pub model: usize,
    pub upload: Vec<u8>,
    pub ext: Option<String>,
    pub display_name: String,
    pub options: aiec_runtime::decode::DecodeOptions,
    /// The VAD parameters, checked, when `vad_filter` is on.
    pub vad: Option<VadOptions>,
    pub format: ResponseFormat,
    pub granularities: Granularities,
    pub stream: bool,
}

impl CheckedForm {
    /// `tokenizers[i]` is the tokenizer of the model named `names[i]`.
    pub(super) fn from_form(
        names: &[String],
        tokenizers: &[&WhisperTokenizer],
        form: Form,
        task: Task,
    ) -> Result<Self, ApiError> {
        let file = required(form.file, "file")?;
        let model_name = required(form.model, "model")?;
        let model = names
            .iter()
            .position(|n| *n == model_name)
            .ok_or_else(|| ApiError::model_not_found(&model_name, names))?;
        let tokenizer = tokenizers.get(model).ok_or_else(|| {
            ApiError::internal(format!("the model `{model_name}` has no tokenizer loaded"))
        })?;
        let format = ResponseFormat::parse(form.response_format.as_deref())?;
        let granularities = Granularities::parse(&form.granularities)?;
        let stream = parse_bool("stream", form.stream.as_deref())?;
        let vad_filter = parse_bool("vad_filter", form.vad_filter.as_deref())?;
        if let (false, Some(&name)) = (vad_filter, form.vad.set().first()) {
            return Err(ApiError::bad_param(
                name,
                "invalid_value",
                format!("{name} needs vad_filter=true"),
            ));
        }
        // The same choices, defaults and checks as `aiec run`'s flags.
        let defaults = DecodeChoices::default();
        let choices = DecodeChoices {
            task,
            temperature: form.temperature.unwrap_or(defaults.temperature.clone()),
            initial_prompt: form.prompt.filter(|p| !p.trim().is_empty()),
            word_timestamps: format == ResponseFormat::VerboseJson && granularities.word,
            vad: vad_filter.then_some(form.vad),
            ..defaults
        };
        let bad = |e: crate::cli::decoding::BadChoice| {
            ApiError::bad_param(e.option(), "invalid_value", format!("{}: {e}", e.option()))
        };
        let mut options = choices.options().map_err(bad)?;
        let vad = choices.vad_options().map_err(bad)?;
        if let Some(l) = form.language.filter(|l| !l.trim().is_empty()) {
            let code = resolve_language(tokenizer, l.trim()).ok_or_else(|| {
                ApiError::bad_param(
                    "language",
                    "invalid_value",
                    format!("language: unknown language `{l}`"),
                )
            })?;
            options.language = Some(code);
        }
        let ext = file
            .filename
            .as_deref()
            .and_then(|f| Path::new(f).extension())
            .and_then(|e| e.to_str())
            .map(str::to_string);
        let display_name = file.filename.clone().unwrap_or_else(|| "upload".into());
        Ok(Self {
            model,
            upload: file.bytes,
            ext,
            display_name,
            options,
            vad,
            format,
            granularities,
            stream,
        })
    }
}
