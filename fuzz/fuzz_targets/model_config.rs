//! A model directory's config.json through the parser and the dims derived from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = aiec_runtime::model::WhisperConfig::parse(Path::new("config.json"), data);
});
