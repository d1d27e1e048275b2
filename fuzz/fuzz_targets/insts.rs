//! An NPU instruction stream (`insts.bin`) through our transaction decoder and the
//! disassembler `aiec disasm` prints: any bytes end in a stream or a located error.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("libfuzzer_main.rs");

fuzz_target!(|data: &[u8]| {
    if let Ok(stream) = aiec::npu::txn::Stream::decode(data) {
        let _ = aiec::npu::disasm::disasm(&stream);
        // What decodes, re-encoded, decodes to the same stream (the encoder's bytes are
        // canonical; the decoder skips reserved words, so the input need not be).
        let again = aiec::npu::txn::Stream::decode(&stream.encode());
        assert_eq!(again.as_ref().ok(), Some(&stream), "encode then decode changed the stream");
    }
});
