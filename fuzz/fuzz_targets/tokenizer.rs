//! tokenizer.json as a model directory holds it, through our loader (the tokenizers crate's
//! parser, contained, then our Whisper wrapper: special tokens, languages).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

include!("contained_panics.rs");

fuzz_target!(|data: &[u8]| {
    pass_contained_panics();
    let _ = aiec_runtime::model::WhisperTokenizer::from_bytes(Path::new("tokenizer.json"), data);
});
