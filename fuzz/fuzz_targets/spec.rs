//! A kernel spec (TOML) through parsing, field checks, device validation and design building:
//! any input must end in a value or a `SpecError`, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("libfuzzer_main.rs");
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = aiec::spec::Spec::parse(text, Path::new("fuzz.toml")) else {
        return;
    };
    if let Ok(device) = spec.device() {
        let _ = spec.validate(&device);
    }
    let _ = spec.build();
});
