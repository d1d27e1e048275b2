//! `aiec serve`: an OpenAI-compatible transcription server (`/v1/audio/transcriptions`,
//! `/v1/audio/translations`, `/v1/models`, `/health`) on axum/tokio.
//!
//! Each `--model` is loaded once and shared by all requests. A request's decoding options go
//! through the same code as `aiec run`'s flags ([`crate::cli::decoding`]). Work is bounded:
//! `--max-concurrent` transcriptions at a time, `--queue` more waiting, the rest refused
//! with 429. SIGTERM (or Ctrl-C) stops accepting connections, lets in-flight requests finish,
//! then exits.

mod admission;
mod check;
mod error;
mod request;
mod respond;
mod routes;

// For fuzz/multipart only: the request checks without a server.
#[doc(hidden)]
pub use check::{check_request, Accepted, Rejected};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _};

use aiec_runtime::model::install;
use aiec_runtime::pipeline::Transcriber;

use super::run::{backend_for, DeviceKind, PrecisionArg};
use admission::Gate;
use routes::{AppState, Limits};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on; keep the default unless other machines should reach it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// A model to serve (`whisper-base`, `tiny.en`); repeat for several. Requests name it in
    /// their `model` field.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Transcriptions running at once (each uses all worker threads).
    #[arg(long, default_value_t = 1)]
    pub max_concurrent: usize,
    /// Requests that may wait for a worker; more get 429.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Largest accepted audio upload, in bytes.
    #[arg(long, default_value_t = 25 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Seconds a client may take to send its upload (slow clients get 408).
    #[arg(long, default_value_t = 30.0)]
    pub upload_timeout: f64,
    /// Seconds a transcription may take once it runs (then 504).
    #[arg(long, default_value_t = 600.0)]
    pub request_timeout: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print each request's backend op times to stderr.
    #[arg(long)]
    pub timings: bool,
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        bail!("--{flag} {s}: must be a number of seconds above 0");
    }
    Ok(Duration::from_secs_f64(s))
}

fn check(args: &Args) -> anyhow::Result<Limits> {
    if args.max_concurrent == 0 {
        bail!("--max-concurrent 0: must be at least 1");
    }
    if args.max_upload_bytes == 0 {
        bail!("--max-upload-bytes 0: must be at least 1");
    }
    if args.threads == Some(0) {
        bail!("--threads 0: must be at least 1");
    }
    for (i, m) in args.models.iter().enumerate() {
        if args.models[..i].contains(m) {
            bail!("--model {m}: given twice");
        }
    }
    Ok(Limits {
        upload_bytes: args.max_upload_bytes,
        upload_timeout: seconds("upload-timeout", args.upload_timeout)?,
        request_timeout: seconds("request-timeout", args.request_timeout)?,
    })
}

/// Resolves and loads every model, each once, on one backend.
fn load_models(args: &Args) -> anyhow::Result<Vec<Arc<Transcriber>>> {
    let (backend, _sim) = backend_for(args.device, args.precision)?;
    args.models
        .iter()
        .map(|name| {
            let dir = install::resolve(name)?;
            let t = Transcriber::load_with(&dir, backend.clone())
                .with_context(|| format!("loading model {name} from {}", dir.display()))?;
            tracing::info!(model = %name, "model loaded");
            Ok(Arc::new(t))
        })
        .collect()
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let limits = check(&args)?;
    // Resolve names first so a missing model fails before the port is taken.
    for name in &args.models {
        install::resolve(name).with_context(|| format!("--model {name}"))?;
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up worker threads")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, limits))
}

async fn serve(args: Args, limits: Limits) -> anyhow::Result<()> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // On stdout, so a supervisor (or a test) learns the port chosen for `--port 0`.
    println!("listening on http://{local}");
    let state = Arc::new(AppState {
        names: args.models.clone(),
        models: OnceLock::new(),
        gate: Gate::new(args.max_concurrent, args.queue),
        limits,
        draining: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        timings: args.timings,
        vad: std::sync::Mutex::new(None),
    });
    let app = routes::router(state.clone());
    let shutdown_state = state.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        shutdown_state.draining.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: finishing in-flight requests");
    });
    let loader = {
        let state = state.clone();
        async move {
            let models = tokio::task::spawn_blocking(move || load_models(&args))
                .await
                .context("the model-loading thread failed")??;
            let _ = state.models.set(models);
            tracing::info!("ready");
            std::future::pending::<anyhow::Result<()>>().await
        }
    };
    tokio::select! {
        served = server => served.context("serving"),
        failed = loader => failed,
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
