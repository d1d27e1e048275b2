//! Checking the programs a test runs.

use std::process::Output;

/// Panics, showing `what` and the program's stderr, unless it exited with success.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
