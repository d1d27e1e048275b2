//! `aiec serve`'s upload path: any content type and body through axum's multipart extractor,
//! our form reader and every field check (model, response format, granularities, booleans,
//! temperature, prompt, language against the real tokenizers), up to where the upload would
//! go to the audio decoder. A client's request may be refused, always with a 4xx and a
//! message; a 5xx, a panic or an unbounded allocation is a bug.
//!
//! Input: one control byte (bit 0: translate instead of transcribe; bit 1: a 4 KiB upload
//! limit instead of the default 25 MiB; the rest picks the body's chunk size), the
//! Content-Type header value up to the first `\n`, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("libfuzzer_main.rs");

use std::sync::LazyLock;

use aiec_runtime::decode::Task;
use aiec_runtime::model::{install, WhisperTokenizer};

/// The models a test server would serve: one multilingual, one English-only, so `language`
/// is checked against both kinds of vocabulary.
const NAMES: [&str; 2] = ["whisper-base", "tiny.en"];

static TOKENIZERS: LazyLock<Vec<WhisperTokenizer>> = LazyLock::new(|| {
    NAMES
        .iter()
        .map(|name| {
            let dir = install::resolve(name)
                .unwrap_or_else(|e| panic!("fuzz/multipart needs {name} installed: {e}"));
            WhisperTokenizer::from_file(&dir.join("tokenizer.json"))
                .unwrap_or_else(|e| panic!("{name}'s tokenizer: {e}"))
        })
        .collect()
});

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

/// Pieces the body arrives in (0: all at once); byte-sized ones cross every boundary.
const CHUNKS: [usize; 10] = [0, 1, 2, 3, 5, 8, 13, 64, 511, 4096];
const SMALL_LIMIT: usize = 4096;
const DEFAULT_LIMIT: usize = 25 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (content_type, body) = (&rest[..newline], &rest[newline + 1..]);
    let task = if control & 1 == 0 {
        Task::Transcribe
    } else {
        Task::Translate
    };
    let max_file = if control & 2 == 0 {
        DEFAULT_LIMIT
    } else {
        SMALL_LIMIT
    };
    let chunk = CHUNKS[usize::from(control >> 2) % CHUNKS.len()];
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let tokenizers: Vec<&WhisperTokenizer> = TOKENIZERS.iter().collect();
    let outcome = RUNTIME.with(|rt| {
        rt.block_on(aiec::cli::serve::check_request(
            content_type,
            body,
            chunk,
            max_file,
            &names,
            &tokenizers,
            task,
        ))
    });
    match outcome {
        None => {} // not a header value a client could send
        Some(Ok(accepted)) => {
            assert!(accepted.model < NAMES.len(), "{accepted:?}");
            assert!(
                accepted.upload_bytes <= max_file,
                "{accepted:?} over {max_file}"
            );
        }
        Some(Err(rejected)) => {
            assert!(
                (400..500).contains(&rejected.status),
                "a request got a server error: {rejected:?}"
            );
            assert!(!rejected.message.is_empty(), "{rejected:?}");
        }
    }
});
