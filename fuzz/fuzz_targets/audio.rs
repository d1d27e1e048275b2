//! Audio decoding from bytes: every container symphonia serves (wav, flac, ogg, mp3, mkv,
//! caf, ...) and our mp4 edit-list path, then the resampler; errors only, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("contained_panics.rs");

fuzz_target!(|data: &[u8]| {
    pass_contained_panics();
    // The first byte picks the extension hint, as a file name would; content still decides.
    let hints = [None, Some("wav"), Some("flac"), Some("ogg"), Some("mp3"), Some("m4a")];
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = hints[pick as usize % hints.len()];
    let _ = aiec_runtime::audio::decode_bytes(bytes.to_vec(), hint, "fuzz");
});
