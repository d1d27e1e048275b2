//! Specs for the tests: the shipped ones under `kernel-specs/`, and the TOML of small
//! instances of each op (one template per op, so a spec format change is made once).

use std::path::{Path, PathBuf};

use aiec::design::Design;
use aiec::spec::{Spec, SpecError};

pub fn kernel_specs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-specs")
}

/// The text of a shipped spec, `rel` from `kernel-specs/`.
pub fn shipped_text(rel: &str) -> String {
    std::fs::read_to_string(kernel_specs().join(rel)).unwrap()
}

/// Every `.toml` below `dir`, sorted (directories in their place among the files).
pub fn spec_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        if p.is_dir() {
            out.extend(spec_files_in(&p));
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
    out
}

/// Every shipped spec.
pub fn spec_files() -> Vec<PathBuf> {
    spec_files_in(&kernel_specs())
}

pub fn try_parse(text: &str) -> Result<Spec, SpecError> {
    Spec::parse(text, Path::new("test.toml"))
}

pub fn parse(text: &str) -> Spec {
    try_parse(text).unwrap()
}

pub fn build(text: &str) -> Design {
    parse(text).build().unwrap()
}

/// The build error of the shipped spec `file` with `old` (which must be there) replaced by
/// `new`.
pub fn shipped_with(file: &str, old: &str, new: &str) -> String {
    let text = shipped_text(file);
    assert!(text.contains(old), "{file}: {old}");
    parse(&text.replace(old, new))
        .build()
        .unwrap_err()
        .to_string()
}

/// An impossible variant: the text replaced, its replacement, and what the error must say.
pub type Case<'a> = (&'a str, &'a str, &'a [&'a str]);

/// Each case's error, from `error_of(old, new)`, contains all its fragments; a failure names
/// the spec and the case.
pub fn assert_errors(spec: &str, cases: &[Case], error_of: impl Fn(&str, &str) -> String) {
    for (old, new, fragments) in cases {
        let err = error_of(old, new);
        for f in *fragments {
            assert!(
                err.contains(f),
                "{spec}: `{old}` -> `{new}`: `{f}` missing from: {err}"
            );
        }
    }
}

/// [`assert_errors`] for the build errors of variants of the shipped spec `file`.
pub fn assert_shipped_errors(file: &str, cases: &[Case]) {
    assert_errors(file, cases, |old, new| shipped_with(file, old, new));
}

/// The lines every spec starts with; `head` is `[op, name, dtype]`, on npu1.
fn head([op, name, dtype]: [&str; 3]) -> String {
    format!("op = \"{op}\"\nname = \"{name}\"\ndevice = \"npu1\"\ndtype = \"{dtype}\"\n")
}

fn array([columns, cores]: [usize; 2]) -> String {
    format!("array = {{ columns = {columns}, cores_per_column = {cores} }}\n")
}

/// A matmul-shaped op (`matmul`, `linear`): `m x k` by `k x n` in `tile`s over `array`
/// (`[columns, cores_per_column]`); the op's own fields are appended by the caller.
pub fn matmul_toml(
    head3: [&str; 3],
    [m, k, n]: [usize; 3],
    [tm, tk, tn]: [usize; 3],
    cores: [usize; 2],
) -> String {
    format!(
        "{}shape = {{ m = {m}, k = {k}, n = {n} }}\ntile = {{ m = {tm}, k = {tk}, n = {tn} }}\n{}",
        head(head3),
        array(cores)
    )
}

/// A row-wise op (`softmax`, `layernorm`, `gelu`, `quantize`, `elementwise`): `rows x cols`
/// in blocks of `tile_rows` over `array`; the op's own fields are appended by the caller.
pub fn rowwise_toml(
    head3: [&str; 3],
    [rows, cols]: [usize; 2],
    tile_rows: usize,
    cores: [usize; 2],
) -> String {
    format!(
        "{}shape = {{ rows = {rows}, cols = {cols} }}\ntile_rows = {tile_rows}\n{}",
        head(head3),
        array(cores)
    )
}

/// f32 attention named `t`: `heads` of `q_len x head_dim` queries over `kv_len` keys, in
/// `[q_tile, kv_tile]` blocks over `array`.
pub fn attention_toml(
    heads: usize,
    [q_len, kv_len, head_dim]: [usize; 3],
    [q_tile, kv_tile]: [usize; 2],
    cores: [usize; 2],
    causal: bool,
) -> String {
    format!(
        "{}heads = {heads}\nq_len = {q_len}\nkv_len = {kv_len}\nhead_dim = {head_dim}\n\
         q_tile = {q_tile}\nkv_tile = {kv_tile}\n{}causal = {causal}\n",
        head(["attention", "t", "f32"]),
        array(cores)
    )
}

/// f32 Whisper log-mel named `t` over `frames` frames, `frame_tile` per step over `array`.
pub fn mel_toml(frames: usize, frame_tile: usize, cores: [usize; 2]) -> String {
    format!(
        "{}frames = {frames}\nn_fft = 400\nhop = 160\nn_mels = 80\nsample_rate = 16000\n\
         frame_tile = {frame_tile}\n{}",
        head(["mel", "t", "f32"]),
        array(cores)
    )
}
