//! tokenizer.json as a model directory holds it, through our loader (the tokenizers crate's
//! parser, contained, then our Whisper wrapper: special tokens, languages).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = aiec_runtime::model::WhisperTokenizer::from_bytes(Path::new("tokenizer.json"), data);
});
