//! Word error rate by the dev set's rules (`../shared/speech/README.md`), and the set itself.

use std::path::PathBuf;

/// The dev set's normalisation (/work/shared/speech/README.md): lowercase; hyphens to
/// spaces; anything not a letter, digit, underscore, whitespace or apostrophe to a space;
/// apostrophes not inside a word to spaces; split on whitespace.
pub fn normalise(text: &str) -> Vec<String> {
    let lower: Vec<char> = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '\'' || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    let kept: String = (0..lower.len())
        .map(|i| {
            let inside = i > 0
                && i + 1 < lower.len()
                && lower[i - 1].is_alphanumeric()
                && lower[i + 1].is_alphanumeric();
            if lower[i] == '\'' && !inside {
                ' '
            } else {
                lower[i]
            }
        })
        .collect();
    kept.split_whitespace().map(str::to_string).collect()
}

/// Word edit distance / reference words.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (edits, words) = edits(reference, hypothesis);
    edits as f64 / words as f64
}

/// (word edits, reference words) after normalisation.
pub fn edits(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// `../shared/speech` beside the checkout, or `AIEC_SPEECH_DIR`.
pub fn speech_dir() -> PathBuf {
    if let Ok(d) = std::env::var("AIEC_SPEECH_DIR") {
        return PathBuf::from(d);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/speech");
    assert!(
        p.join("references.tsv").exists(),
        "dev speech set not found at {} (set AIEC_SPEECH_DIR)",
        p.display()
    );
    p
}

/// The reference transcript of `file` (a path relative to the set) in references.tsv.
pub fn reference_text(file: &str) -> String {
    let text =
        std::fs::read_to_string(speech_dir().join("references.tsv")).expect("references.tsv");
    text.lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0] == file).then(|| cols[cols.len() - 1].to_string())
        })
        .unwrap_or_else(|| panic!("{file} is not in references.tsv"))
}

/// Every file of the dev set, as references.tsv lists them.
pub fn dev_set_files() -> Vec<String> {
    let text =
        std::fs::read_to_string(speech_dir().join("references.tsv")).expect("references.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}
