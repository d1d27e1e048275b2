//! Shared helpers of the model tests: where the model and the dev speech set are, and WER.
#![allow(dead_code)]

pub mod model_bin;

use std::path::PathBuf;

/// The whisper-base directory: `AIEC_TEST_MODEL_DIR`, else the installed cache. A missing
/// model is a failure with instructions, never a silent skip.
pub fn model_dir(name: &str) -> PathBuf {
    if let Ok(d) = std::env::var("AIEC_TEST_MODEL_DIR") {
        if name == "whisper-base" {
            return PathBuf::from(d);
        }
    }
    match aiec_runtime::model::install::resolve(name) {
        Ok(p) => p,
        Err(e) => panic!(
            "{e}\n(the model tests need it: run `cargo run --release -- models install {name}`)"
        ),
    }
}

/// `../shared/speech` beside the checkout, or `AIEC_SPEECH_DIR`.
pub fn speech_dir() -> PathBuf {
    if let Ok(d) = std::env::var("AIEC_SPEECH_DIR") {
        return PathBuf::from(d);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/speech");
    assert!(
        p.join("references.tsv").exists(),
        "dev speech set not found at {} (set AIEC_SPEECH_DIR)",
        p.display()
    );
    p
}

/// (file, reference transcript) rows of references.tsv.
pub fn references() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(speech_dir().join("references.tsv")).expect("references.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_string(), cols[cols.len() - 1].to_string())
        })
        .collect()
}

/// The dev set README's normalisation.
pub fn normalise(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace('-', " ");
    let chars: Vec<char> = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c.is_whitespace() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let word_char = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let cleaned: String = (0..chars.len())
        .map(|i| {
            let c = chars[i];
            if c == '\'' && !(i > 0 && word_char(chars.get(i - 1)) && word_char(chars.get(i + 1))) {
                ' '
            } else {
                c
            }
        })
        .collect();
    cleaned.split_whitespace().map(str::to_string).collect()
}

/// Word-level edit distance.
pub fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Corpus WER: summed edits over summed reference words.
pub fn wer(pairs: &[(String, String)]) -> (f64, usize) {
    let (mut edits, mut words) = (0, 0);
    for (reference, hypothesis) in pairs {
        let r = normalise(reference);
        edits += edit_distance(&r, &normalise(hypothesis));
        words += r.len();
    }
    (edits as f64 / words.max(1) as f64, words)
}

/// faster-whisper's outputs on the dev set: file -> (text, [(start, end)]).
pub fn faster_whisper(beam: usize) -> std::collections::HashMap<String, (String, Vec<(f64, f64)>)> {
    let path = speech_dir().join(format!("fw-whisper-base-float32-b{beam}.jsonl"));
    let text = std::fs::read_to_string(&path).expect("faster-whisper outputs");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl row");
            let segs = v["segments"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                s["start"].as_f64().unwrap_or(0.0),
                                s["end"].as_f64().unwrap_or(0.0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                v["file"].as_str().unwrap().to_string(),
                (v["text"].as_str().unwrap_or("").to_string(), segs),
            )
        })
        .collect()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A file under runtime/tests/data.
pub fn data_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A C-order little-endian `.npy` file of float32 (`<f4`) or int16 (`<i2`): (shape, values).
/// int16 values are 16-bit samples and come back divided by 32768, as faster-whisper's
/// `decode_audio` scales them.
pub fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let name = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name}: not a .npy file");
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len]).unwrap();
    assert!(
        header.contains("'fortran_order': False"),
        "{name}: {header}"
    );
    let shape_text = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape_text[..shape_text.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let body = &bytes[header_start + header_len..];
    let data: Vec<f32> = if header.contains("'descr': '<f4'") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else if header.contains("'descr': '<i2'") {
        body.chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
            .collect()
    } else {
        panic!("{name}: only <f4 and <i2 arrays are read: {header}")
    };
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{name}");
    (shape, data)
}

/// Root mean square.
pub fn rms(x: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    (sum / n.max(1) as f64).sqrt()
}

/// Largest |a - b| and RMS(a - b) / RMS(b) over the common length.
pub fn compare(ours: &[f32], reference: &[f32]) -> (f32, f64) {
    let n = ours.len().min(reference.len());
    let max = (0..n)
        .map(|i| (ours[i] - reference[i]).abs())
        .fold(0.0f32, f32::max);
    let err = rms((0..n).map(|i| ours[i] as f64 - reference[i] as f64));
    (max, err / rms(reference[..n].iter().map(|&v| v as f64)))
}
