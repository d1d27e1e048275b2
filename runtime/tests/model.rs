//! Tests of model loading on synthetic CTranslate2 files: the parser's corners and error
//! paths, the Whisper checks on top, config and languages. The real whisper-base model is
//! tested in model_real.rs, installation in model_install.rs.

use std::path::Path;

use aiec_runtime::model::languages::{language_code, language_name, LANGUAGES};
use aiec_runtime::model::{DType, ModelBin, ModelError, WhisperConfig, WhisperDims};

mod common;
use common::model_bin::{all_dtypes, le_f32, le_u16, put_str, var, write_bin, Var};

fn parse(bytes: Vec<u8>) -> Result<ModelBin, ModelError> {
    ModelBin::parse(Path::new("synthetic/model.bin"), bytes)
}

#[test]
fn parses_every_dtype() {
    let bin = parse(write_bin(6, &all_dtypes(), &[])).unwrap();
    assert_eq!(bin.binary_version, 6);
    assert_eq!(bin.spec_name, "WhisperSpec");
    assert_eq!(bin.spec_revision, 3);
    assert_eq!(bin.len(), 7);
    assert_eq!(
        bin.names().collect::<Vec<_>>(),
        ["f32", "i8", "i16", "i32", "f16", "bf16", "num_heads"]
    );
    let get = |n| bin.get(n).unwrap();
    assert_eq!(get("f32").dtype, DType::F32);
    assert_eq!(get("f32").to_f32().unwrap(), [1.5, -0.25, 1e-3]);
    assert_eq!(get("i8").shape, [2, 2]);
    assert_eq!(get("i8").numel(), 4);
    assert_eq!(get("i8").to_f32().unwrap(), [127.0, -128.0, -1.0, 5.0]);
    assert_eq!(get("i8").to_i8().unwrap().unwrap(), [127, -128, -1, 5]);
    assert_eq!(get("i16").to_f32().unwrap(), [32767.0, -32768.0]);
    assert_eq!(get("i32").to_f32().unwrap(), [-7.0, 123456.0]);
    assert_eq!(get("f16").dtype, DType::F16);
    assert_eq!(
        get("f16").to_f32().unwrap(),
        [1.5, -2.25, 65504.0, 2f32.powi(-24)]
    );
    assert_eq!(get("bf16").to_f32().unwrap(), [1.0, -3.0, 2f32.powi(100)]);
    assert_eq!(get("num_heads").shape, Vec::<usize>::new());
    assert_eq!(get("num_heads").numel(), 1);
    assert_eq!(get("num_heads").scalar_i64(), Some(8));
    assert_eq!(bin.scalar_i64("num_heads").unwrap(), 8);
    assert_eq!(get("f32").scalar_i64(), None);
    let err = bin.scalar_i64("f32").unwrap_err().to_string();
    assert!(
        err.contains("f32") && err.contains("not an integer scalar"),
        "{err}"
    );
}

#[test]
fn parses_old_binary_versions() {
    // v1: no spec name, no aliases; v2: spec; v3: aliases; all with item size + count.
    for version in 1..=3 {
        let vars = vec![
            var("w", &[2], 0, le_f32(&[2.0, -4.0])),
            var("q", &[3], 1, vec![1, 2, 0xfe]),
            var("h", &[1], 2, le_u16(&[0xffff])),
        ];
        let aliases: &[(&str, &str)] = if version >= 3 {
            &[("w_alias", "w")]
        } else {
            &[]
        };
        let bin = parse(write_bin(version, &vars, aliases)).unwrap();
        assert_eq!(bin.binary_version, version);
        assert_eq!(bin.get("w").unwrap().to_f32().unwrap(), [2.0, -4.0]);
        assert_eq!(bin.get("q").unwrap().dtype, DType::I8);
        assert_eq!(bin.get("q").unwrap().to_f32().unwrap(), [1.0, 2.0, -2.0]);
        assert_eq!(bin.get("h").unwrap().to_f32().unwrap(), [-1.0]);
        assert_eq!(bin.spec_name, if version >= 2 { "WhisperSpec" } else { "" });
        assert_eq!(bin.contains("w_alias"), version >= 3);
    }
}

#[test]
fn resolves_aliases_and_chains() {
    let vars = vec![var("emb", &[2, 2], 0, le_f32(&[1.0, 2.0, 3.0, 4.0]))];
    let bin = parse(write_bin(6, &vars, &[("proj", "emb"), ("proj2", "proj")])).unwrap();
    assert_eq!(
        bin.get("proj").unwrap().to_f32().unwrap(),
        [1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(bin.get("proj2").unwrap().shape, [2, 2]);
    assert_eq!(
        bin.weight_f32("proj2", &[2, 2]).unwrap(),
        [1.0, 2.0, 3.0, 4.0]
    );
    // Aliases are not stored variables.
    assert_eq!(bin.len(), 1);
    let mut aliases: Vec<_> = bin.aliases().collect();
    aliases.sort();
    assert_eq!(aliases, [("proj", "emb"), ("proj2", "emb")]);
}

#[test]
fn dangling_alias_is_an_error() {
    let vars = vec![var("emb", &[1], 0, le_f32(&[1.0]))];
    let err = parse(write_bin(6, &vars, &[("proj", "nothing")])).unwrap_err();
    assert!(matches!(err, ModelError::DanglingAlias { .. }), "{err}");
    assert!(err.to_string().contains("proj") && err.to_string().contains("nothing"));
}

#[test]
fn missing_variable_names_variable_and_file() {
    let bin = parse(write_bin(6, &all_dtypes(), &[])).unwrap();
    let err = bin.get("decoder/nothing").unwrap_err().to_string();
    assert!(
        err.contains("decoder/nothing") && err.contains("synthetic/model.bin"),
        "{err}"
    );
}

/// Dequantised values computed here in f64 from the stored integers and scales.
fn dequant_reference(q: &[i64], scales: &[f64], row_len: usize) -> Vec<f32> {
    q.iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 / scales[i / row_len]) as f32)
        .collect()
}

#[test]
fn int8_weights_are_dequantised_per_row() {
    let q: Vec<i8> = vec![127, -127, 64, 0, -5, 100];
    let scales = [127.0f32 / 0.5, 127.0 / 2.0];
    let vars = vec![
        var(
            "lin/weight",
            &[2, 3],
            1,
            q.iter().map(|&x| x as u8).collect(),
        ),
        var("lin/weight_scale", &[2], 0, le_f32(&scales)),
        // A conv weight [out, in, k]: one scale per output channel over in*k values.
        var(
            "conv/weight",
            &[2, 1, 3],
            1,
            q.iter().map(|&x| x as u8).collect(),
        ),
        var("conv/weight_scale", &[2], 0, le_f32(&[4.0, 8.0])),
    ];
    let bin = parse(write_bin(6, &vars, &[("tied/weight", "lin/weight")])).unwrap();
    let qi: Vec<i64> = q.iter().map(|&x| x as i64).collect();
    let expect = dequant_reference(&qi, &[scales[0] as f64, scales[1] as f64], 3);
    let got = bin.weight_f32("lin/weight", &[2, 3]).unwrap();
    assert_eq!(got, expect);
    assert!((got[0] - 0.5).abs() < 1e-6 && (got[5] - 100.0 / 63.5).abs() < 1e-6);
    // The alias carries its scale with it, as in CTranslate2.
    assert_eq!(bin.weight_f32("tied/weight", &[2, 3]).unwrap(), expect);
    assert_eq!(
        bin.weight_f32("conv/weight", &[2, 1, 3]).unwrap(),
        dequant_reference(&qi, &[4.0, 8.0], 3)
    );
}

#[test]
fn int16_weights_use_global_scale() {
    let q: [i16; 4] = [1000, -2000, 3, 0];
    let vars = vec![
        var(
            "a/weight",
            &[2, 2],
            2,
            q.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        var("a/weight_scale", &[], 0, le_f32(&[100.0])),
        // Old int16 models have no scale: CTranslate2 assumes 1000.
        var(
            "b/weight",
            &[2, 2],
            2,
            q.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    ];
    let bin = parse(write_bin(6, &vars, &[])).unwrap();
    assert_eq!(
        bin.weight_f32("a/weight", &[2, 2]).unwrap(),
        [10.0, -20.0, 0.03, 0.0]
    );
    assert_eq!(
        bin.weight_f32("b/weight", &[2, 2]).unwrap(),
        [1.0, -2.0, 0.003, 0.0]
    );
}

#[test]
fn int8_weight_without_scale_or_with_bad_scale_is_an_error() {
    let vars = vec![
        var("a/weight", &[2, 2], 1, vec![1, 2, 3, 4]),
        var("b/weight", &[2, 2], 1, vec![1, 2, 3, 4]),
        var("b/weight_scale", &[3], 0, le_f32(&[1.0, 2.0, 3.0])),
        var("c/weight", &[2, 2], 1, vec![1, 2, 3, 4]),
        var("c/weight_scale", &[2], 0, le_f32(&[1.0, 0.0])),
    ];
    let bin = parse(write_bin(6, &vars, &[])).unwrap();
    let err = bin.weight_f32("a/weight", &[2, 2]).unwrap_err().to_string();
    assert!(
        err.contains("a/weight_scale") && err.contains("not found"),
        "{err}"
    );
    let err = bin.weight_f32("b/weight", &[2, 2]).unwrap_err().to_string();
    assert!(
        err.contains("b/weight_scale") && err.contains("3 values for 2 rows"),
        "{err}"
    );
    let err = bin.weight_f32("c/weight", &[2, 2]).unwrap_err().to_string();
    assert!(
        err.contains("c/weight_scale") && err.contains("contains 0"),
        "{err}"
    );
}

#[test]
fn weight_shape_mismatch_names_expected_and_found() {
    let bin = parse(write_bin(6, &all_dtypes(), &[])).unwrap();
    let err = bin.weight_f32("i8", &[4]).unwrap_err().to_string();
    assert!(
        err.contains("variable i8") && err.contains("[2, 2]") && err.contains("expected [4]"),
        "{err}"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = write_bin(6, &all_dtypes(), &[("f32_alias", "f32")]);
    assert!(parse(bytes.clone()).is_ok());
    for len in 0..bytes.len() {
        let result = std::panic::catch_unwind(|| parse(bytes[..len].to_vec()));
        let result = result.unwrap_or_else(|_| panic!("prefix of {len} bytes panicked"));
        assert!(
            result.is_err(),
            "prefix of {len} of {} bytes parsed",
            bytes.len()
        );
    }
    // The message says which variable is cut and by how much.
    let vars = vec![var("w", &[3], 0, le_f32(&[1.0, 2.0, 3.0]))];
    let bytes = write_bin(6, &vars, &[]);
    // Drop the alias count (4) and 7 of the 12 data bytes.
    let err = parse(bytes[..bytes.len() - 11].to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("truncated: variable w needs 12 bytes") && err.contains("only 5 remain"),
        "{err}"
    );
}

#[test]
fn bad_versions_are_rejected() {
    for version in [0u32, 7, 100, u32::MAX] {
        let mut bytes = write_bin(6, &all_dtypes(), &[]);
        bytes[..4].copy_from_slice(&version.to_le_bytes());
        let err = parse(bytes).unwrap_err();
        assert!(
            matches!(err, ModelError::BadVersion { version: v, .. } if v == version),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains(&format!("binary version {version}")));
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = write_bin(6, &all_dtypes(), &[]);
    bytes.extend_from_slice(&[0, 1, 2]);
    let err = parse(bytes).unwrap_err();
    assert!(
        matches!(err, ModelError::TrailingBytes { count: 3, .. }),
        "{err}"
    );
}

#[test]
fn unknown_dtype_names_the_variable() {
    let err = parse(write_bin(6, &[var("enc/w", &[1], 9, vec![0])], &[])).unwrap_err();
    assert!(
        matches!(err, ModelError::UnknownDType { id: 9, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("enc/w"));
    // Pre-v4 files: an item size that maps to no dtype.
    let mut bytes = write_bin(3, &[var("old", &[1], 0, le_f32(&[1.0]))], &[]);
    let pos = bytes.len() - 4 - 4 - 4 - 1; // alias count, data, element count, item size
    bytes[pos] = 3;
    let err = parse(bytes).unwrap_err();
    assert!(
        matches!(err, ModelError::UnknownItemSize { size: 3, .. }),
        "{err}"
    );
}

#[test]
fn byte_count_must_match_shape() {
    let err = parse(write_bin(
        6,
        &[var("w", &[2, 3], 0, le_f32(&[1.0; 5]))],
        &[],
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ByteCountMismatch {
                expected: 24,
                found: 20,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("variable w"));
    // A corrupt huge shape is caught before any allocation.
    let err = parse(write_bin(
        6,
        &[var("huge", &[u32::MAX, u32::MAX, u32::MAX], 0, vec![0; 4])],
        &[],
    ))
    .unwrap_err();
    assert!(matches!(err, ModelError::ByteCountMismatch { .. }), "{err}");
    // A huge declared byte count that matches a huge shape fails as truncation, no allocation.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&6u32.to_le_bytes());
    put_str(&mut bytes, "WhisperSpec");
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    put_str(&mut bytes, "big");
    bytes.push(1);
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&(u32::MAX - 3).to_le_bytes());
    let err = parse(bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ByteCountMismatch { .. } | ModelError::Truncated { .. }
        ),
        "{err}"
    );
}

#[test]
fn malformed_strings_and_duplicates_are_rejected() {
    let mut bytes = write_bin(6, &all_dtypes(), &[]);
    bytes[4 + 2 + 11] = b'x'; // the NUL ending "WhisperSpec"
    let err = parse(bytes).unwrap_err();
    assert!(matches!(err, ModelError::BadString { .. }), "{err}");
    let vars = vec![
        var("w", &[1], 0, le_f32(&[1.0])),
        var("w", &[1], 0, le_f32(&[2.0])),
    ];
    let err = parse(write_bin(6, &vars, &[])).unwrap_err();
    assert!(matches!(err, ModelError::DuplicateVariable { .. }), "{err}");
}

#[test]
fn load_reports_missing_file() {
    let err = ModelBin::load(Path::new("/nonexistent/dir/model.bin")).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/dir/model.bin"));
}

// ---------------------------------------------------------------------------------------
// Whisper dimensions and tensor validation on a miniature synthetic Whisper.

/// Names and shapes of a CTranslate2 WhisperSpec with d_model 4, 2 mels, 2 heads,
/// 2 encoder layers, 1 decoder layer, 3 audio / 5 text positions, 7 tokens, FFN 8.
fn mini_whisper_tensors() -> Vec<(String, Vec<u32>)> {
    let (d, mels, ffn, vocab) = (4u32, 2u32, 8u32, 7u32);
    let mut t: Vec<(String, Vec<u32>)> = vec![
        ("encoder/conv1/weight".into(), vec![d, mels, 3]),
        ("encoder/conv1/bias".into(), vec![d]),
        ("encoder/conv2/weight".into(), vec![d, d, 3]),
        ("encoder/conv2/bias".into(), vec![d]),
        ("encoder/position_encodings/encodings".into(), vec![3, d]),
        ("encoder/layer_norm/gamma".into(), vec![d]),
        ("encoder/layer_norm/beta".into(), vec![d]),
        ("decoder/embeddings/weight".into(), vec![vocab, d]),
        ("decoder/position_encodings/encodings".into(), vec![5, d]),
        ("decoder/layer_norm/gamma".into(), vec![d]),
        ("decoder/layer_norm/beta".into(), vec![d]),
    ];
    let mut block = |p: String, attn: &[(&str, u32)]| {
        for part in ["self_attention/layer_norm", "ffn/layer_norm"]
            .iter()
            .chain(if attn.len() == 3 {
                &["attention/layer_norm"][..]
            } else {
                &[][..]
            })
        {
            t.push((format!("{p}/{part}/gamma"), vec![d]));
            t.push((format!("{p}/{part}/beta"), vec![d]));
        }
        t.push((
            format!("{p}/self_attention/linear_0/weight"),
            vec![3 * d, d],
        ));
        t.push((format!("{p}/self_attention/linear_0/bias"), vec![3 * d]));
        t.push((format!("{p}/self_attention/linear_1/weight"), vec![d, d]));
        t.push((format!("{p}/self_attention/linear_1/bias"), vec![d]));
        for (name, out) in attn {
            t.push((format!("{p}/attention/{name}/weight"), vec![*out, d]));
            t.push((format!("{p}/attention/{name}/bias"), vec![*out]));
        }
        t.push((format!("{p}/ffn/linear_0/weight"), vec![ffn, d]));
        t.push((format!("{p}/ffn/linear_0/bias"), vec![ffn]));
        t.push((format!("{p}/ffn/linear_1/weight"), vec![d, ffn]));
        t.push((format!("{p}/ffn/linear_1/bias"), vec![d]));
    };
    block("encoder/layer_0".into(), &[]);
    block("encoder/layer_1".into(), &[]);
    block(
        "decoder/layer_0".into(),
        &[("linear_0", d), ("linear_1", 2 * d), ("linear_2", d)],
    );
    t
}

/// The mini Whisper as model.bin bytes, with `edit` applied to the tensor list first.
fn mini_whisper_bin(heads: u16, edit: impl FnOnce(&mut Vec<(String, Vec<u32>)>)) -> Vec<u8> {
    let mut tensors = mini_whisper_tensors();
    edit(&mut tensors);
    let mut vars: Vec<Var> = tensors
        .iter()
        .map(|(name, shape)| {
            let n: u32 = shape.iter().product();
            var(name, shape, 4, vec![0; 2 * n as usize])
        })
        .collect();
    vars.push(var("encoder/num_heads", &[], 2, le_u16(&[heads])));
    vars.push(var("decoder/num_heads", &[], 2, le_u16(&[2])));
    write_bin(
        6,
        &vars,
        &[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
}

#[test]
fn whisper_dims_come_from_the_weights() {
    let bin = parse(mini_whisper_bin(2, |_| {})).unwrap();
    let d = WhisperDims::from_model(&bin).unwrap();
    assert_eq!(
        d,
        WhisperDims {
            n_mels: 2,
            d_model: 4,
            n_heads_enc: 2,
            n_heads_dec: 2,
            n_layers_enc: 2,
            n_layers_dec: 1,
            n_audio_ctx: 3,
            n_text_ctx: 5,
            n_vocab: 7,
            ffn_dim: 8,
        }
    );
    // Every tensor the forward pass needs is listed (plus the projection alias).
    assert_eq!(d.expected_tensors().len(), mini_whisper_tensors().len() + 1);
}

#[test]
fn whisper_validation_names_each_missing_or_misshaped_tensor() {
    for (name, shape) in mini_whisper_tensors() {
        // Missing: parsing fails for the alias target (dangling alias), otherwise
        // validation names the tensor.
        let err = match parse(mini_whisper_bin(2, |t| t.retain(|(n, _)| *n != name))) {
            Err(e) => e,
            Ok(bin) => WhisperDims::from_model(&bin).unwrap_err(),
        };
        assert!(err.to_string().contains(&name), "without {name}: {err}");

        // Misshaped (last dimension off by one): the error names the tensor and its shape.
        let mut wrong = shape.clone();
        *wrong.last_mut().unwrap() += 1;
        let bytes = mini_whisper_bin(2, |t| {
            t.iter_mut()
                .filter(|(n, _)| *n == name)
                .for_each(|(_, s)| *s = wrong.clone())
        });
        let err = WhisperDims::from_model(&parse(bytes).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&name) && err.contains(&format!("{wrong:?}")),
            "{name} {wrong:?}: {err}"
        );
    }
    // Heads must divide d_model.
    let bin = parse(mini_whisper_bin(3, |_| {})).unwrap();
    let err = WhisperDims::from_model(&bin).unwrap_err().to_string();
    assert!(
        err.contains("encoder/num_heads = 3 does not divide d_model = 4"),
        "{err}"
    );
    // A corrupt huge layer number is an error, not a huge allocation.
    let bytes = mini_whisper_bin(2, |t| {
        t.push(("encoder/layer_4000000000/x".into(), vec![1]))
    });
    let err = WhisperDims::from_model(&parse(bytes).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceed"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Config and languages.

#[test]
fn config_parses_with_defaults_and_unknown_keys() {
    let json = br#"{"alignment_heads": [[3, 1], [4, 2]], "lang_ids": [50259, 50260],
        "suppress_ids": [-1, 220], "suppress_ids_begin": [220, 50257], "extra": {"a": 1}}"#;
    let c = WhisperConfig::parse(Path::new("config.json"), json).unwrap();
    assert_eq!(c.alignment_heads, [(3, 1), (4, 2)]);
    assert_eq!(c.lang_ids, [50259, 50260]);
    assert_eq!(c.suppress_ids, [-1, 220]);
    assert_eq!(c.suppress_ids_begin, [220, 50257]);
    assert_eq!(
        WhisperConfig::parse(Path::new("c.json"), b"{}").unwrap(),
        WhisperConfig::default()
    );
    let err =
        WhisperConfig::parse(Path::new("bad/config.json"), br#"{"lang_ids": "x"}"#).unwrap_err();
    assert!(err.to_string().contains("bad/config.json"), "{err}");
}

#[test]
fn language_names_and_codes() {
    assert_eq!(LANGUAGES.len(), 100);
    assert_eq!(language_code("en"), Some("en"));
    assert_eq!(language_code("English"), Some("en"));
    assert_eq!(language_code("castilian"), Some("es"));
    assert_eq!(language_code("yue"), Some("yue"));
    assert_eq!(language_code("klingon"), None);
    assert_eq!(language_name("de"), Some("german"));
    let mut codes: Vec<_> = LANGUAGES.iter().map(|(c, _)| c).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 100, "language codes are unique");
}

#[test]
fn a_file_reads_its_large_tensors_when_asked_and_as_parsed_bytes_give_them() {
    // 20 000 f32 (80 KB) is above the eager limit, so it stays in the file until converted.
    let big: Vec<f32> = (0..20_000).map(|i| i as f32 * 0.5 - 7.0).collect();
    let mut vars = all_dtypes();
    vars.push(var("big", &[100, 200], 0, le_f32(&big)));
    let bytes = write_bin(6, &vars, &[("big_alias", "big")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    std::fs::write(&path, &bytes).unwrap();
    let from_file = ModelBin::load(&path).unwrap();
    let from_memory = parse(bytes.clone()).unwrap();
    for name in from_memory.names().chain(["big_alias"]) {
        let (a, b) = (from_file.get(name).unwrap(), from_memory.get(name).unwrap());
        assert_eq!((&a.shape, a.dtype), (&b.shape, b.dtype), "{name}");
        assert_eq!(a.to_f32().unwrap(), b.to_f32().unwrap(), "{name}");
    }
    assert_eq!(from_file.get("big_alias").unwrap().to_f32().unwrap(), big);
    assert_eq!(
        from_file.scalar_i64("num_heads").unwrap(),
        from_memory.scalar_i64("num_heads").unwrap()
    );

    // A file cut short after parsing: the read names the file instead of returning garbage.
    let var = from_file.get("big").unwrap().clone();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = var.to_f32().unwrap_err().to_string();
    assert!(err.contains("model.bin"), "{err}");

    // Every truncation of the file is an error when loading, as when parsing.
    for len in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        assert!(
            ModelBin::load(&path).is_err(),
            "prefix of {len} bytes loaded"
        );
    }
}
