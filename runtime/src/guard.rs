//! Containing panics in third-party decoders.
//!
//! symphonia asserts on some malformed headers instead of returning an error (a WAV with a
//! sample rate of 0 panics building its time base). An input must never take the process
//! down, so [`contain`] turns such a panic into an error of the caller's choosing, and
//! [`inside_contained`] lets a process-wide panic hook stay quiet about a panic that is about
//! to be reported as an ordinary error.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread is running inside [`contain`].
pub fn inside_contained() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Runs `f`; a panic in it becomes `Err(message)`. `f` only reads its input and builds fresh
/// state, so nothing half-updated survives the unwind (hence `AssertUnwindSafe`).
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder panicked".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_depth_unwinds() {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        let got = contain(|| -> u32 { panic!("bad header {}", 7) });
        panic::set_hook(previous);
        assert_eq!(got, Err("bad header 7".to_string()));
        assert!(!inside_contained());
        assert_eq!(contain(inside_contained), Ok(true));
    }
}
