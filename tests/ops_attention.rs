//! Whisper's decoder attention on the simulator: the decoder-step op (`attention_decode`) at
//! several runtime lengths and buckets, in bf16 and f32, against the float64 reference; the
//! cross-attention instance with a few query rows; and the specs they must refuse.

use std::time::Duration;

use aiec::ops::attention::{self, decode_case, length_param, AttentionDecodeSpec};
use aiec::sim::inputs::InputGen;
use aiec::sim::verify::Deadline;
use aiec::sim::{self, HostData};
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::specs::{assert_shipped_errors, parse, shipped_text as spec_text, try_parse};

fn step_spec(dtype: &str, kv_len: usize) -> Spec {
    let text = spec_text("whisper-base/dec_step_self_attention.toml")
        .replace("dtype = \"bf16\"", &format!("dtype = \"{dtype}\""))
        .replace("kv_len = 448", &format!("kv_len = {kv_len}"));
    parse(&text)
}

/// Runs the decoder-step design of `spec` at `valid` live rows; returns (passed, max error).
fn run_step(spec: &Spec, valid: usize, seed: u64) -> (bool, f64) {
    let design = spec.build().unwrap();
    let op = spec.downcast::<AttentionDecodeSpec>().unwrap();
    let case = decode_case(op, valid, &mut InputGen::new(seed));
    let out = sim::run(&design, case.inputs).unwrap();
    let cmp = (case.judge)(&out, &Deadline::new(Duration::from_secs(600))).unwrap();
    (cmp.passed(), cmp.max_abs_error)
}

#[test]
fn decoder_step_matches_the_reference_at_every_kind_of_length() {
    // First row, a tile edge either side, mid-bucket, and the full context.
    for (dtype, valid) in [
        ("bf16", 1),
        ("bf16", 31),
        ("bf16", 33),
        ("bf16", 448),
        ("f32", 32),
        ("f32", 257),
    ] {
        let (ok, err) = run_step(&step_spec(dtype, 448), valid, valid as u64);
        assert!(ok, "{dtype} valid {valid}: max error {err}");
        if dtype == "f32" {
            // f32 in and out: only f32 summation order separates it from f64.
            assert!(err < 1e-5, "f32 valid {valid}: {err}");
        }
    }
}

#[test]
fn small_buckets_give_the_full_buckets_answer_bit_for_bit() {
    // Same cache and length through the 64- and 448-row designs: blocks past the length
    // contribute nothing, so the outputs are identical.
    let valid = 50;
    let outputs: Vec<Vec<HostData>> = [64, 448]
        .iter()
        .map(|&kv_len| {
            let spec = step_spec("bf16", kv_len);
            let op = spec.downcast::<AttentionDecodeSpec>().unwrap();
            let case = decode_case(op, valid, &mut InputGen::new(9));
            sim::run(&spec.build().unwrap(), case.inputs).unwrap()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn one_live_row_returns_its_value_exactly() {
    // valid = 1: softmax over one key is 1, so O is V_0 of each (beam, head), whatever Q is
    // and whatever the other cache rows hold.
    let spec = step_spec("f32", 64);
    let design = spec.build().unwrap();
    let (beams, heads, d, n_ctx) = (5, 8, 64, 448);
    let q: Vec<f32> = (0..beams * heads * d)
        .map(|i| (i % 7) as f32 - 3.0)
        .collect();
    let cache: Vec<f32> = (0..beams * heads * n_ctx * 2 * d)
        .map(|i| {
            if i % (n_ctx * 2 * d) < 2 * d {
                (i % 13) as f32
            } else {
                1e6
            }
        })
        .collect();
    let len = length_param(aiec::design::ElemType::F32, d, 1);
    let out = sim::run(
        &design,
        vec![HostData::F32(q), HostData::F32(cache.clone()), len],
    )
    .unwrap();
    let HostData::F32(o) = &out[0] else {
        panic!("f32 output expected")
    };
    for p in 0..beams * heads {
        let v0 = &cache[p * n_ctx * 2 * d + d..][..d];
        assert_eq!(&o[p * d..(p + 1) * d], v0, "pair {p}");
    }
}

#[test]
fn cross_attention_with_one_to_five_query_rows_matches_the_reference() {
    let text = spec_text("whisper-base/dec_step_cross_attention.toml");
    for (rows, dtype) in [(1, "bf16"), (5, "bf16"), (2, "f32")] {
        let t = text
            .replace("q_len = 5", &format!("q_len = {rows}"))
            .replace("q_tile = 5", &format!("q_tile = {rows}"))
            .replace("dtype = \"bf16\"", &format!("dtype = \"{dtype}\""));
        let check = sim::verify::check_spec(&parse(&t), 3, &sim::SimOptions::default()).unwrap();
        let c = &check.comparison;
        assert!(c.passed(), "{rows} rows {dtype}: {c:?}");
        assert_eq!(c.elements, 8 * rows * 64);
        if dtype == "f32" {
            assert!(c.max_abs_error < 1e-5, "{c:?}");
        }
    }
}

#[test]
fn impossible_decoder_steps_are_refused_naming_the_field() {
    assert_shipped_errors(
        "whisper-base/dec_step_self_attention.toml",
        &[
            (
                "kv_len = 448",
                "kv_len = 480",
                &["`kv_len`", "longer than the 448-row cache"],
            ),
            ("kv_tile = 32", "kv_tile = 4", &["`kv_tile`", "112 blocks"]),
            (
                "heads = 8",
                "heads = 6",
                &["`heads`", "30 (beam, head) pairs"],
            ),
            (
                "kv_len = 448",
                "kv_len = 440",
                &["`kv_len`", "kv_tile = 32"],
            ),
            // One 448-row block per core: 2 x 112 KiB of K/V cannot sit in 64 KiB.
            ("kv_tile = 32", "kv_tile = 448", &["memory", "kv_tile"]),
        ],
    );
}

#[test]
fn cross_attention_rows_must_split_into_query_tiles() {
    assert_shipped_errors(
        "whisper-base/dec_step_cross_attention.toml",
        &[("q_tile = 5", "q_tile = 2", &["`q_len`", "q_tile = 2"])],
    );
}

#[test]
fn bucket_list_serves_every_valid_length_of_whisper() {
    let buckets = attention::kv_len_buckets(448, 64);
    for valid in 1..=448 {
        let b = attention::bucket_for(&buckets, valid).unwrap();
        assert!(b >= valid && b <= 2 * valid.max(64), "{valid} -> {b}");
        // Every bucket is a shipped-spec-compatible length: a whole number of 32-row tiles.
        assert_eq!(b % 32, 0);
    }
}

#[test]
fn an_unknown_layout_is_refused_naming_the_choices() {
    let text = spec_text("whisper-base/dec_step_cross_attention.toml")
        .replace("layout = \"token_major\"", "layout = \"rows_first\"");
    let err = try_parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("rows_first") && err.contains("token_major"),
        "{err}"
    );
}

/// How many of the design's MLIR lines hold a 16-lane f32 multiply (the multiply-adds are
/// `mulf` + `addf`: mlir-aie's vectoriser has no f32 `vector.fma`), and whether any line
/// mentions a vector at all.
fn vector_use(spec: &Spec) -> (usize, bool) {
    let mlir = aiec::mlir::emit(&spec.build().unwrap()).unwrap();
    let mul_adds = mlir
        .lines()
        .filter(|l| l.contains("arith.mulf") && l.contains(": vector<16xf32>"))
        .count();
    (mul_adds, mlir.contains("vector<"))
}

#[test]
fn head_dims_on_and_off_the_vector_width_match_the_reference() {
    // 16 and 48 (one and three chunks) run the 16-lane bodies; 24 and 8 the scalar
    // fallback. Causal and not, bf16 and f32, against the float64 reference.
    for (d, vector) in [(16, true), (48, true), (24, false), (8, false)] {
        for (dtype, causal) in [("bf16", false), ("bf16", true), ("f32", true)] {
            let spec = parse(&format!(
                "op = \"attention\"\nname = \"t\"\ndevice = \"npu1\"\ndtype = \"{dtype}\"\n\
                 heads = 2\nq_len = 24\nkv_len = 24\nhead_dim = {d}\nq_tile = 8\nkv_tile = 12\n\
                 causal = {causal}\narray = {{ columns = 1, cores_per_column = 2 }}\n"
            ));
            let (mul_adds, any_vector) = vector_use(&spec);
            // One multiply-add in the Q·K dot and one in the P·V update, plus the rescale of
            // the output row by the correction, per core body (2 cores).
            assert_eq!(mul_adds, if vector { 6 } else { 0 }, "d {d}");
            assert_eq!(any_vector, vector, "d {d}");
            let opts = sim::SimOptions::default();
            let check = sim::verify::check_spec(&spec, d as u64, &opts).unwrap();
            let c = &check.comparison;
            assert!(c.passed(), "d {d} {dtype} causal {causal}: {c:?}");
            assert_eq!(c.elements, 2 * 24 * d);
            if dtype == "f32" {
                assert!(c.max_abs_error < 1e-5, "d {d} f32: {c:?}");
            }
        }
    }
}

#[test]
fn decoder_step_off_the_vector_width_matches_the_reference() {
    // head_dim 24 takes the scalar fallback under the runtime length mask; 48 the vectors.
    for d in [24, 48] {
        let text = spec_text("whisper-base/dec_step_self_attention.toml")
            .replace("head_dim = 64", &format!("head_dim = {d}"))
            .replace("kv_len = 448", "kv_len = 64");
        let spec = parse(&text);
        assert_eq!(vector_use(&spec).1, d % 16 == 0, "d {d}");
        for valid in [1, 33, 64] {
            let (ok, err) = run_step(&spec, valid, valid as u64);
            assert!(ok, "d {d} valid {valid}: max error {err}");
        }
    }
}
