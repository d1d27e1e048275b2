//! The log-mel front end on arbitrary sample buffers: NaN, infinities, huge and denormal
//! values, any length up to a few windows. Output must have the frame count's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mels, rest)) = data.split_first() else {
        return;
    };
    // Whisper's two filter-bank sizes.
    let n_mels = if mels & 1 == 0 { 80 } else { 128 };
    let samples: Vec<f32> = rest
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mel = aiec_runtime::mel::log_mel(&samples, n_mels);
    let frames = aiec_runtime::mel::frame_count(samples.len());
    assert_eq!(mel.row(0).len(), frames, "one column per frame");
    // Decoded audio lies in [-1, 1]; on such input every log-mel value must be a number.
    if samples.iter().all(|s| s.abs() <= 1.0) {
        assert!(mel.data.iter().all(|v| v.is_finite()), "non-finite log-mel");
    }
});
