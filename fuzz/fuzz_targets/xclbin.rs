//! Any bytes through our xclbin reader and `aiec xclbin`'s text: a file, or a located error.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("libfuzzer_main.rs");

fuzz_target!(|data: &[u8]| {
    if let Ok(x) = aiec::npu::xclbin::read(data) {
        let _ = aiec::npu::xclbin::describe::describe(&x);
    }
});
