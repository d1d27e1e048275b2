//! The CTranslate2 `model.bin` reader on arbitrary bytes, then the accessors a model load uses
//! (every variable converted to f32, scalars read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(bin) = aiec_runtime::model::ModelBin::parse(Path::new("model.bin"), data.to_vec())
    else {
        return;
    };
    let names: Vec<String> = bin.names().map(str::to_string).collect();
    for name in &names {
        if let Ok(var) = bin.get(name) {
            let _ = var.to_f32();
            let _ = var.scalar_i64();
        }
    }
});
