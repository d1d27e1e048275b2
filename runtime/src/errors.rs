//! Rendering an error with its causes on one line.
//!
//! Error types here say what failed and leave the underlying cause to `source()` (so a
//! printer that walks the chain, as anyhow's `{:#}` does, never shows a cause twice). Code
//! that flattens an error into a string must therefore walk the chain too: [`chain`].

use std::error::Error;

/// `e` and each of its sources, joined by `": "`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(thiserror::Error, Debug)]
    #[error("cannot read x.wav")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_appears_once() {
        let e = Outer {
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(super::chain(&e), "cannot read x.wav: disk on fire");
    }
}
