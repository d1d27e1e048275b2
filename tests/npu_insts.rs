//! Our instruction stream (`aiec::npu`) against the goldens in golden/insts/ and, gated on
//! the real tools, against aie-translate's.
//!
//! - Non-gated: every spec's `insts.bin` equals `golden/insts/<name>.bin`, and its
//!   disassembly equals the reviewed snapshot `golden/insts/<name>.disasm.snap`.
//!   To accept a reviewed change: `AIEC_BLESS_INSTS=1 INSTA_UPDATE=always cargo test
//!   --release --test npu_insts`.
//! - Gated (`AIEC_AIE_OPT`, `AIEC_AIE_TRANSLATE`, mlir-aie c668d2cb): for every spec on npu1
//!   and on npu2, aiecc's flow (input-with-addresses pipeline, `aie-create-pathfinder-flows`,
//!   the NPU lowering pipeline, `aie-translate --aie-npu-to-binary`) makes the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiec::backend::pipelines;
use aiec::backend::AieTarget;
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::specs::{kernel_specs, spec_files_in};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/insts")
}

/// `kernel-specs/whisper-base/enc_fc1.toml` -> `whisper-base__enc_fc1`.
fn name_of(root: &Path, spec: &Path) -> String {
    let rel = spec.strip_prefix(root).unwrap().with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("__")
}

fn ours(text: &str, origin: &Path) -> Result<Vec<u8>, String> {
    let design = Spec::parse(text, origin)
        .and_then(|s| s.build())
        .map_err(|e| e.to_string())?;
    aiec::npu::insts_bin(&design).map_err(|e| e.to_string())
}

#[test]
fn every_spec_matches_its_golden_stream_and_disassembly() {
    let root = kernel_specs();
    let bless = std::env::var_os("AIEC_BLESS_INSTS").is_some();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in spec_files_in(&root) {
        let name = name_of(&root, &path);
        let text = std::fs::read_to_string(&path).unwrap();
        let bytes = match ours(&text, &path) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let golden = golden_dir().join(format!("{name}.bin"));
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&golden, &bytes).unwrap();
        }
        match std::fs::read(&golden) {
            Ok(g) if g == bytes => {}
            Ok(_) => failures.push(format!("{name}: differs from {}", golden.display())),
            Err(e) => failures.push(format!("{name}: {}: {e}", golden.display())),
        }
        let stream = aiec::npu::Stream::decode(&bytes).unwrap();
        assert_eq!(stream.encode(), bytes, "{name}: decode/encode round trip");
        let text = aiec::npu::disasm::disasm(&stream);
        insta::with_settings!({
            snapshot_path => "../golden/insts",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("{name}.disasm"), text);
        });
        checked += 1;
    }
    assert!(checked > 40, "only {checked} specs checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A spec's text on `device`: the same design placed on another device model.
fn on_device(text: &str, device: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("device = ") {
                format!("device = \"{device}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set {var} to the tool's path"));
    assert!(p.is_file(), "{var}={} is not a file", p.display());
    p
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

#[test]
#[ignore = "needs the real aie-opt/aie-translate (AIEC_AIE_OPT, AIEC_AIE_TRANSLATE)"]
fn every_spec_matches_aie_translate_on_npu1_and_npu2() {
    use rayon::prelude::*;
    let aie_opt = tool("AIEC_AIE_OPT");
    let aie_translate = tool("AIEC_AIE_TRANSLATE");
    let root = kernel_specs();
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<(PathBuf, &str, AieTarget)> = spec_files_in(&root)
        .into_iter()
        .flat_map(|p| {
            [("npu1", AieTarget::Aie2), ("npu2", AieTarget::Aie2p)]
                .map(|(device, target)| (p.clone(), device, target))
        })
        .collect();
    /// One spec on one device: `None` when it does not fit the device, else what went wrong.
    type Outcome = Option<Result<(), String>>;
    // Each pair is a chain of tool processes: run the pairs on every core.
    let outcomes: Vec<(String, Outcome)> = jobs
        .par_iter()
        .map(|(path, device, target)| {
            let name = name_of(&root, path);
            let id = format!("{name} on {device}");
            let text = on_device(&std::fs::read_to_string(path).unwrap(), device);
            let Ok(design) = Spec::parse(&text, path).and_then(|s| s.build()) else {
                return (id, None); // the spec does not fit this device
            };
            let outcome = (|| -> Result<(), String> {
                let mine = aiec::npu::insts_bin(&design).map_err(|e| format!("ours: {e}"))?;
                let f = |ext: &str| dir.path().join(format!("{name}.{device}.{ext}"));
                std::fs::write(f("mlir"), aiec::mlir::emit(&design).unwrap()).unwrap();
                // aiecc's whole first stage, convert-vector-to-aievec on the kernel bodies
                // included: every body must pass mlir-aie's AIE-ML vectoriser too.
                run(Command::new(&aie_opt)
                    .arg(format!(
                        "--pass-pipeline={}",
                        pipelines::input_with_addresses(*target)
                    ))
                    .arg(f("mlir"))
                    .arg("-o")
                    .arg(f("iwa.mlir")))
                .map_err(|e| format!("input-with-addresses: {e}"))?;
                run(Command::new(&aie_opt)
                    .arg("--aie-create-pathfinder-flows")
                    .arg(f("iwa.mlir"))
                    .arg("-o")
                    .arg(f("phys.mlir")))?;
                run(Command::new(&aie_opt)
                    .arg(format!("--pass-pipeline={}", pipelines::npu_lowering()))
                    .arg(f("phys.mlir"))
                    .arg("-o")
                    .arg(f("npu.mlir")))?;
                run(Command::new(&aie_translate)
                    .args([
                        "--aie-npu-to-binary",
                        "--aie-output-binary",
                        "--aie-device-name=main",
                    ])
                    .arg(f("npu.mlir"))
                    .arg("-o")
                    .arg(f("bin")))?;
                let theirs = std::fs::read(f("bin")).unwrap();
                if theirs != mine {
                    let at = theirs.iter().zip(&mine).position(|(a, b)| a != b);
                    return Err(format!(
                        "differs (ours {} bytes, aie-translate {} bytes, first difference at {at:?})",
                        mine.len(),
                        theirs.len()
                    ));
                }
                Ok(())
            })();
            (id, Some(outcome))
        })
        .collect();
    let mut identical = 0;
    let mut failures = Vec::new();
    for (id, outcome) in outcomes {
        match outcome {
            None => {}
            Some(Ok(())) => identical += 1,
            Some(Err(e)) => failures.push(format!("{id}: {e}")),
        }
    }
    eprintln!("{identical} streams identical to aie-translate's");
    assert!(identical > 80, "only {identical} streams compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `aiec build` writes our `insts.bin` with no tool at all (a dry run runs none), and
/// `aiec disasm` prints its golden text; a truncated stream is a located error.
#[test]
fn build_writes_insts_and_disasm_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("add");
    let aiec = env!("CARGO_BIN_EXE_aiec");
    let spec = kernel_specs().join("add.toml");
    let o = Command::new(aiec)
        .arg("build")
        .arg(&spec)
        .arg("-o")
        .arg(&out)
        .arg("--dry-run")
        .env("PATH", "")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let insts = std::fs::read(out.join("insts.bin")).unwrap();
    assert_eq!(insts, std::fs::read(golden_dir().join("add.bin")).unwrap());

    let o = Command::new(aiec)
        .arg("disasm")
        .arg(out.join("insts.bin"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let snap = std::fs::read_to_string(golden_dir().join("add.disasm.snap")).unwrap();
    let body = snap.splitn(3, "---\n").nth(2).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), body);

    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &insts[..insts.len() - 8]).unwrap();
    let o = Command::new(aiec).arg("disasm").arg(&cut).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cut.bin is not an instruction stream"),
        "{err}"
    );
    assert!(err.contains("header says"), "{err}");
}

/// Found by fuzz/insts: the header's op count went straight into `Vec::with_capacity`, so a
/// stream whose count word says 2^32 - 1 aborted the process asking for 137 GB. It is now an
/// error naming the count, like any other disagreement with the header.
#[test]
fn a_forged_op_count_is_an_error_not_an_allocation() {
    let mut insts = std::fs::read(golden_dir().join("add.bin")).unwrap();
    insts[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = aiec::npu::txn::Stream::decode(&insts)
        .expect_err("the count disagrees with the ops")
        .to_string();
    assert!(err.contains("header says 4294967295 ops"), "{err}");
}
