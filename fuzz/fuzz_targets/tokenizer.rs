//! tokenizer.json as a model directory holds it: the tokenizers crate's loader, then our
//! Whisper wrapper (special tokens, languages), then a decode of a few ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(inner) = tokenizers::Tokenizer::from_bytes(data) else {
        return;
    };
    let Ok(tok) =
        aiec_runtime::model::WhisperTokenizer::from_tokenizer(Path::new("tokenizer.json"), inner)
    else {
        return;
    };
    let _ = format!("{tok:?}");
});
