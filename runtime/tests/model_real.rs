//! The real whisper-base model (from `AIEC_TEST_MODEL_DIR` or the cache): its dimensions,
//! weights and tokenizer. These fail (not skip) when it is absent.

use std::path::PathBuf;

use aiec_runtime::model::install;
use aiec_runtime::model::languages::LANGUAGES;
use aiec_runtime::model::{ModelBin, WhisperModelFiles};

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

/// Found by fuzz/tokenizer (this stop): the same `expect` in the tokenizers crate's decoder
/// deserialiser fires on a JSON syntax error inside the `decoder` object, here a `{` where
/// its closing brace belongs ("expected `,` or `}`"). The real tokenizer.json, so edited,
/// must fail cleanly, naming the file.
#[test]
fn a_syntax_error_in_the_decoder_is_an_error_not_a_panic() {
    use aiec_runtime::model::WhisperTokenizer;
    let path = real_model_dir().join("tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .find("\"decoder\"")
        .expect("tokenizer.json has a decoder");
    let close = at + text[at..].find('}').expect("the decoder object closes");
    let broken = format!("{}{{{}", &text[..close], &text[close + 1..]);
    let err = WhisperTokenizer::from_bytes(&path, broken.as_bytes())
        .expect_err("a malformed tokenizer is refused")
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    assert!(
        err.contains("malformed tokenizer file"),
        "not the contained parser panic: {err}"
    );
}

/// Found by fuzz/tokenizer: the tokenizers crate panics (an `expect` in its decoder
/// deserialiser) on a control character inside the `decoder` object. Our loader turns that
/// into this file's error; the real tokenizer.json, so edited, must fail cleanly.
#[test]
fn a_control_character_in_the_decoder_is_an_error_not_a_panic() {
    use aiec_runtime::model::WhisperTokenizer;
    let path = real_model_dir().join("tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .find("\"decoder\"")
        .expect("tokenizer.json has a decoder");
    let at = at + text[at..].find("\"type\"").unwrap();
    let broken = format!("{}\"x\u{1}\": 1, {}", &text[..at], &text[at..]);
    let err = WhisperTokenizer::from_bytes(&path, broken.as_bytes())
        .expect_err("a malformed tokenizer is refused")
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert!(
        err.contains("malformed tokenizer file"),
        "the parser panicked: {err}"
    );
    // The untouched file still loads.
    WhisperTokenizer::from_bytes(&path, text.as_bytes()).expect("the real tokenizer loads");
}
