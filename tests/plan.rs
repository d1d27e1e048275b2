//! The kernel plan derived from a model's dims: `aiec plan whisper-base` reproduces the
//! reviewed specs in kernel-specs/whisper-base/, tiny.en gets its own plan whose specs build
//! on npu1 and npu2, counts follow the layer counts, and bad input gets one clear error.
//! Needs whisper-base and tiny.en installed (`aiec models install whisper-base tiny.en`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aiec::ops::attention::{bucket_for, AttentionDecodeSpec, AttentionSpec, Layout};
use aiec::ops::conv::ConvSpec;
use aiec::ops::linear::LinearSpec;
use aiec::plan::{Plan, PlanError, PlanOptions, Precision};
use aiec::spec::Spec;
use aiec_runtime::model::{install, WhisperDims, WhisperModelFiles};

#[allow(dead_code)]
mod common;
use common::process::assert_success;

fn dims_of(model: &str) -> WhisperDims {
    let dir = install::resolve(model).unwrap_or_else(|e| panic!("{e} (the plan tests need it)"));
    WhisperModelFiles::load(&dir).unwrap().dims
}

fn plan(model: &str, device: &str, precision: Precision) -> Plan {
    let options = PlanOptions {
        precision,
        ..PlanOptions::new(model, device)
    };
    Plan::for_model(&dims_of(model), &options).unwrap_or_else(|e| panic!("{model}: {e}"))
}

/// A spec normalised for comparison: the op's typed struct with defaults filled in (what the
/// compiler reads), not the comments or the layout of the file.
fn normalised(spec: &Spec) -> String {
    format!("{} {:?}", spec.op(), spec.op_spec())
}

fn whisper_base_specs() -> BTreeMap<String, Spec> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-specs/whisper-base");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, Spec::load(&p).unwrap())
        })
        .collect()
}

/// Every file in kernel-specs/whisper-base/ is the generator's entry of the same name:
/// `npu2_X` of the npu2 plan, `X_bf16` of the bf16 plan, `X` of the default (npu1, int8)
/// plan; and every entry of the default plan has its file.
#[test]
fn whisper_base_plan_reproduces_the_reviewed_specs() {
    let npu1 = plan("whisper-base", "npu1", Precision::Int8);
    let npu2 = plan("whisper-base", "npu2", Precision::Int8);
    let bf16 = plan("whisper-base", "npu1", Precision::Bf16);
    let files = whisper_base_specs();
    let mut mismatches = Vec::new();
    for (stem, spec) in &files {
        let (source, entry) = if let Some(e) = stem.strip_prefix("npu2_") {
            (&npu2, e)
        } else if let Some(e) = stem.strip_suffix("_bf16") {
            (&bf16, e)
        } else {
            (&npu1, stem.as_str())
        };
        let Some(generated) = source.entry(entry) else {
            mismatches.push(format!("{stem}: no plan entry `{entry}`"));
            continue;
        };
        if normalised(&generated.spec) != normalised(spec) {
            mismatches.push(format!(
                "{stem}:\n  file:      {}\n  generated: {}",
                normalised(spec),
                normalised(&generated.spec)
            ));
        }
    }
    for e in &npu1.entries {
        if !files.contains_key(&e.name) {
            mismatches.push(format!("plan entry `{}` has no spec file", e.name));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Launch counts from the layer counts, computed here from the dims: per window, per step
/// (for every step length), and per step at each valid length for the self-attention
/// buckets (exactly one bucket per step).
fn check_counts(plan: &Plan, d: &WhisperDims) {
    let (le, ld) = (d.n_layers_enc, d.n_layers_dec);
    let expected: &[(&str, usize, usize)] = &[
        ("mel", 1, 0),
        ("enc_conv1", 1, 0),
        ("enc_conv2", 1, 0),
        // The positional embedding, then the residuals after out_proj and fc2 of each layer.
        ("enc_add", 2 * le + 1, 0),
        ("enc_layernorm", 2 * le + 1, 0),
        // Inputs of qkv, out_proj, fc1 (per layer) and of the cross K/V (once).
        ("enc_quantize", 3 * le + 1, 0),
        ("enc_qkv", le, 0),
        ("enc_attention", le, 0),
        ("enc_out_proj", le, 0),
        ("enc_fc1", le, 0),
        ("enc_quantize_ffn", le, 0),
        ("enc_fc2", le, 0),
        ("dec_cross_kv", ld, 0),
        ("dec_layernorm", 0, 3 * ld + 1),
        // Inputs of qkv, self out_proj, cross q, cross out_proj, fc1; and of the logits.
        ("dec_quantize", 0, 5 * ld + 1),
        ("dec_qkv", 0, ld),
        ("dec_proj", 0, 3 * ld),
        ("dec_step_cross_attention", 0, ld),
        ("dec_fc1", 0, ld),
        ("dec_quantize_ffn", 0, ld),
        ("dec_fc2", 0, ld),
        // The residuals after self attention, cross attention and the FFN of each layer.
        ("dec_add", 0, 3 * ld),
        ("dec_logits", 0, 1),
    ];
    for &(name, window, step) in expected {
        let e = plan
            .entry(name)
            .unwrap_or_else(|| panic!("no entry {name}"));
        assert_eq!(
            (e.per_window(), e.per_step()),
            (window, step),
            "{name} counts"
        );
    }
    for gone in ["conv1_gelu", "enc_gelu", "dec_gelu", "dec_self_attention"] {
        assert!(plan.entry(gone).is_none(), "{gone} is fused or replaced");
    }
    let buckets: Vec<&aiec::plan::PlanEntry> = plan
        .entries
        .iter()
        .filter(|e| e.op() == "attention_decode")
        .collect();
    assert_eq!(buckets.len(), 4, "buckets 64, 128, 256, {}", d.n_text_ctx);
    for len in 1..=d.n_text_ctx {
        let running: Vec<_> = buckets.iter().filter(|e| e.per_step_at(len) > 0).collect();
        assert_eq!(running.len(), 1, "valid length {len}");
        let spec = running[0].spec.downcast::<AttentionDecodeSpec>().unwrap();
        // The smallest bucket that holds the length, as the op's own rule picks it.
        let all: Vec<usize> = buckets
            .iter()
            .map(|e| e.spec.downcast::<AttentionDecodeSpec>().unwrap().kv_len)
            .collect();
        assert_eq!(Some(spec.kv_len), bucket_for(&all, len), "length {len}");
        assert_eq!(running[0].per_step_at(len), ld);
    }
}

/// The spec of the plan's entry `name`, which must be a `T`.
fn entry_spec<T: Clone + 'static>(plan: &Plan, name: &str) -> T {
    plan.entry(name)
        .unwrap()
        .spec
        .downcast::<T>()
        .unwrap_or_else(|| panic!("{name} is not a {}", std::any::type_name::<T>()))
        .clone()
}

fn linear(plan: &Plan, name: &str) -> LinearSpec {
    entry_spec(plan, name)
}

/// Shapes and epilogues the forward needs, read back from the generated specs.
fn check_shapes(plan: &Plan, d: &WhisperDims, beams: usize) {
    let logits = linear(plan, "dec_logits");
    assert!(logits.shape.n >= d.n_vocab && logits.shape.n - d.n_vocab < 32 * 8);
    assert_eq!(logits.shape.k, d.d_model);
    assert!(logits.shape.m >= beams);
    assert_eq!(logits.epilogue, "acc * sa[row] * sw[col]");
    let pad = &plan.entry("dec_logits").unwrap().padding;
    assert!(pad
        .iter()
        .any(|p| p.field == "shape.n" && p.from == d.n_vocab && p.to == logits.shape.n));
    let qkv = linear(plan, "enc_qkv");
    assert_eq!(
        (qkv.shape.m, qkv.shape.k, qkv.shape.n),
        (d.n_audio_ctx, d.d_model, 3 * d.d_model)
    );
    let dequant_bias = "acc * sa[row] * sw[col] + bias[col]";
    for name in [
        "enc_qkv",
        "enc_out_proj",
        "enc_fc2",
        "dec_cross_kv",
        "dec_qkv",
        "dec_proj",
    ] {
        assert_eq!(linear(plan, name).epilogue, dequant_bias, "{name}");
    }
    for name in ["enc_fc1", "dec_fc1"] {
        assert_eq!(
            linear(plan, name).epilogue,
            format!("gelu({dequant_bias})"),
            "{name}"
        );
    }
    let conv = |name: &str| entry_spec::<ConvSpec>(plan, name);
    let (conv1, conv2) = (conv("enc_conv1"), conv("enc_conv2"));
    assert_eq!(
        (conv1.c_in, conv1.frames, conv1.stride),
        (d.n_mels, 2 * d.n_audio_ctx, 1)
    );
    assert_eq!((conv2.c_in, conv2.out_frames()), (d.d_model, d.n_audio_ctx));
    assert_eq!(conv2.epilogue, "gelu(acc + bias[col])");
    let fc2 = linear(plan, "dec_fc2");
    assert_eq!((fc2.shape.k, fc2.shape.n), (d.ffn_dim, d.d_model));
    let att = |name: &str| entry_spec::<AttentionSpec>(plan, name);
    let enc = att("enc_attention");
    assert_eq!(
        (enc.heads, enc.q_len, enc.head_dim),
        (d.n_heads_enc, d.n_audio_ctx, d.d_model / d.n_heads_enc)
    );
    let cross = att("dec_step_cross_attention");
    assert_eq!(
        (cross.heads, cross.q_len, cross.kv_len, cross.layout),
        (d.n_heads_dec, beams, d.n_audio_ctx, Layout::TokenMajor)
    );
    let step: AttentionDecodeSpec = entry_spec(plan, "dec_step_self_attention");
    assert_eq!(
        (step.beams, step.heads, step.n_ctx, step.kv_len),
        (beams, d.n_heads_dec, d.n_text_ctx, d.n_text_ctx)
    );
}

/// The bf16 plan: bf16 linear layers with bias (no scales), no quantize kernels.
#[test]
fn bf16_plan_has_bf16_linears_and_no_quantize() {
    let p = plan("whisper-base", "npu1", Precision::Bf16);
    assert!(p.entries.iter().all(|e| e.op() != "quantize"));
    let fc1 = linear(&p, "enc_fc1");
    assert_eq!(fc1.epilogue, "gelu(acc + bias[col])");
    assert_eq!(fc1.dtype.name(), "bf16");
    assert_eq!(linear(&p, "dec_logits").epilogue, "acc");
    assert!(p.entry("enc_fc1").unwrap().spec.name().ends_with("_bf16"));
}

#[test]
fn tiny_en_gets_its_own_plan_that_builds_on_npu1_and_npu2() {
    let d = dims_of("tiny.en");
    assert_eq!(
        (d.d_model, d.n_heads_enc, d.n_layers_enc, d.n_layers_dec),
        (384, 6, 4, 4)
    );
    for device in ["npu1", "npu2"] {
        let p = plan("tiny.en", device, Precision::Int8);
        check_counts(&p, &d);
        check_shapes(&p, &d, 5);
        for e in &p.entries {
            // Independently of the generator's own check: the text parses and builds.
            let spec = Spec::parse(&e.toml, Path::new(&e.name)).unwrap();
            assert_eq!(spec.device_name(), device, "{}", e.name);
            assert!(spec.name().starts_with("te_"), "{}", spec.name());
            spec.build()
                .unwrap_or_else(|err| panic!("tiny.en {device} {}: {err}", e.name));
        }
    }
}

#[test]
fn whisper_base_counts_and_shapes_follow_the_dims() {
    let d = dims_of("whisper-base");
    for device in ["npu1", "npu2"] {
        let p = plan("whisper-base", device, Precision::Int8);
        check_counts(&p, &d);
        check_shapes(&p, &d, 5);
    }
}

#[test]
fn greedy_plan_has_one_live_row_padded_to_the_column() {
    let options = PlanOptions {
        beams: 1,
        ..PlanOptions::new("whisper-base", "npu1")
    };
    let p = Plan::for_model(&dims_of("whisper-base"), &options).unwrap();
    let qkv = p.entry("dec_qkv").unwrap();
    assert!(
        qkv.padding
            .iter()
            .any(|x| x.field == "shape.m" && x.from == 1 && x.to == 4),
        "{:?}",
        qkv.padding
    );
    let cross = p.entry("dec_step_cross_attention").unwrap();
    assert!(cross.shape.contains(" 1x1500x"), "{}", cross.shape);
    let step = p.entry("dec_step_self_attention_kv64").unwrap();
    assert!(step.shape.starts_with("1b "), "{}", step.shape);
}

#[test]
fn dims_that_cannot_tile_are_one_clear_error() {
    let mut d = dims_of("tiny.en");
    // 1499 audio positions (prime): no tile divides them within the shim repeat limit.
    d.n_audio_ctx = 1499;
    let err = Plan::for_model(&d, &PlanOptions::new("odd", "npu1")).unwrap_err();
    assert!(matches!(err, PlanError::NoTiling { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no tiling") && text.contains("mel 2998x80"),
        "{text}"
    );

    let mut d = dims_of("tiny.en");
    d.n_heads_enc = 7;
    let err = Plan::for_model(&d, &PlanOptions::new("odd", "npu1")).unwrap_err();
    assert!(err.to_string().contains("do not divide d_model"), "{err}");

    let err = Plan::for_model(&dims_of("tiny.en"), &PlanOptions::new("x", "npu9")).unwrap_err();
    assert!(err.to_string().contains("unknown device `npu9`"), "{err}");
}

fn aiec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aiec"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aiec-plan-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `aiec plan whisper-base -o DIR` writes exactly the default plan: one file per entry, each
/// the same spec as kernel-specs/whisper-base/ holds under that name.
#[test]
fn cli_writes_the_whisper_base_specs_and_prints_the_table() {
    let out_dir = scratch("wb");
    let out = aiec()
        .args(["plan", "whisper-base", "-o"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, "aiec plan");
    assert!(stdout.starts_with("entry"), "{stdout}");
    let logits_line = stdout
        .lines()
        .find(|l| l.starts_with("dec_logits "))
        .unwrap();
    assert!(
        logits_line.contains("shape.n 51865->51968"),
        "{logits_line}"
    );
    let reviewed = whisper_base_specs();
    let mut written = 0;
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let spec = Spec::load(&path).unwrap();
        let want = reviewed
            .get(&stem)
            .unwrap_or_else(|| panic!("{stem} is not in kernel-specs/whisper-base"));
        assert_eq!(normalised(&spec), normalised(want), "{stem}");
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{stem} "))),
            "{stem}"
        );
        written += 1;
    }
    let reviewed_npu1 = reviewed
        .keys()
        .filter(|k| !k.starts_with("npu2_") && !k.ends_with("_bf16"))
        .count();
    assert_eq!(written, reviewed_npu1);
    let _ = std::fs::remove_dir_all(&out_dir);
}

fn assert_clean_failure(args: &[&str], needle: &str) {
    let out = aiec().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
}

#[test]
fn cli_bad_input_is_one_clear_error() {
    assert_clean_failure(&["plan", "whisper-huge-v9"], "whisper-huge-v9");
    assert_clean_failure(
        &["plan", "whisper-base", "--device", "npu7"],
        "unknown device `npu7`",
    );
    // A model directory without its config.json.
    let dir = scratch("noconfig");
    std::fs::create_dir_all(&dir).unwrap();
    let model = install::resolve("tiny.en").unwrap();
    for f in ["model.bin", "tokenizer.json"] {
        std::os::unix::fs::symlink(model.join(f), dir.join(f)).unwrap();
    }
    assert_clean_failure(&["plan", dir.to_str().unwrap()], "config.json");
    let _ = std::fs::remove_dir_all(&dir);
}
