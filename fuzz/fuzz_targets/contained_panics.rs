// `include!`d by the targets whose code runs third-party parsers inside
// `aiec_runtime::guard::contain` (tokenizer.json, audio containers).
//
// libfuzzer-sys's panic hook aborts on every panic, even one that `contain` catches and turns
// into the input's error, so such an input was reported as a crash although aiec answers it
// with a clean error (the campaign then stopped on the tokenizers crate's known `expect`).
// This hook lets a contained panic unwind to `contain` and keeps libfuzzer-sys's hook, abort
// included, for every other panic.
fn pass_contained_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !aiec_runtime::guard::inside_contained() {
                fuzzer_hook(info)
            }
        }));
    });
}
