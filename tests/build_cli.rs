//! `aiec build` as a user runs it: the built binary, its files, its exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn spec(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kernel-specs")
        .join(name)
}

/// Runs `aiec` with no AIE tools reachable (an empty PATH and no tool variables), so
/// results do not depend on what this machine has installed.
fn aiec(args: &[&str], cwd: &Path) -> Output {
    let empty = cwd.join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aiec"));
    cmd.args(args).current_dir(cwd).env("PATH", &empty);
    for var in [
        "PEANO_INSTALL_DIR",
        "MLIR_AIE_INSTALL_DIR",
        "AIEC_AIE_OPT",
        "AIEC_AIE_TRANSLATE",
        "AIEC_PEANO_CLANG",
        "AIEC_PEANO_OPT",
        "AIEC_PEANO_LLC",
        "AIEC_BOOTGEN",
        "AIEC_XCLBINUTIL",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("aiec runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `aiec build SPEC ARGS...` of the shipped spec `name` in `dir`, which must succeed.
fn build_ok(dir: &Path, name: &str, args: &[&str]) -> Output {
    let spec = spec(name);
    let mut all = vec!["build", spec.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = aiec(&all, dir);
    assert!(o.status.success(), "aiec {all:?}: {}", stderr(&o));
    o
}

#[test]
fn dry_run_writes_design_and_manifest_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = spec("softmax.toml");
    let spec_arg = spec_path.to_str().unwrap();
    let run = || {
        let o = aiec(&["build", spec_arg, "-o", "art", "--dry-run"], dir.path());
        assert!(o.status.success(), "stderr: {}", stderr(&o));
        let design = std::fs::read(dir.path().join("art/design.mlir")).unwrap();
        let manifest = std::fs::read(dir.path().join("art/manifest.json")).unwrap();
        (stdout(&o), design, manifest)
    };
    let (plan1, design1, manifest1) = run();
    let (plan2, design2, manifest2) = run();
    assert_eq!(plan1, plan2);
    assert_eq!(design1, design2, "same spec -> byte-identical design.mlir");
    assert_eq!(
        manifest1, manifest2,
        "same spec -> byte-identical manifest.json"
    );
    assert!(
        plan1.contains("aie-opt"),
        "the dry run prints the tool commands:\n{plan1}"
    );

    let design = String::from_utf8(design1).unwrap();
    assert!(
        design.starts_with("module {\n  aie.device(npu1) {\n"),
        "{design}"
    );
    assert!(design.contains("aie.runtime_sequence("), "{design}");

    let manifest: serde_json::Value = serde_json::from_slice(&manifest1).unwrap();
    let expected_sha: String = Sha256::digest(std::fs::read(&spec_path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(manifest["spec"]["sha256"], expected_sha.as_str());
    assert_eq!(manifest["spec"]["op"], "softmax");
    assert_eq!(manifest["device"], "npu1");
    assert_eq!(manifest["tools"]["dry_run"], true);
    let buffers = manifest["host_buffers"].as_array().unwrap();
    assert_eq!(buffers.len(), 2);
    assert_eq!(buffers[0]["index"], 0);
    // softmax_1500: 1500 x 1500 bf16 in and out.
    let bytes: u64 = buffers.iter().map(|b| b["bytes"].as_u64().unwrap()).sum();
    assert_eq!(bytes, 2 * 1500 * 1500 * 2);
}

#[test]
fn emit_mlir_prints_what_build_writes() {
    let dir = tempfile::tempdir().unwrap();
    let printed = build_ok(dir.path(), "layernorm.toml", &["--emit", "mlir"]);
    build_ok(dir.path(), "layernorm.toml", &["-o", "out", "--dry-run"]);
    let written = std::fs::read_to_string(dir.path().join("out/design.mlir")).unwrap();
    assert_eq!(stdout(&printed), written);
    // --emit writes nothing.
    assert!(!dir.path().join("build").exists());
}

#[test]
fn emit_plan_lists_tiles_fifos_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let plan = stdout(&build_ok(dir.path(), "softmax.toml", &["--emit", "plan"]));
    for part in [
        "tiles:",
        "object FIFOs:",
        "workers:",
        "runtime sequence:",
        "memory per tile:",
        "of 65536 B",
    ] {
        assert!(plan.contains(part), "`{part}` missing from plan:\n{plan}");
    }
}

#[test]
fn default_artefact_directory_is_build_stem() {
    let dir = tempfile::tempdir().unwrap();
    build_ok(dir.path(), "softmax.toml", &["--dry-run"]);
    assert!(dir.path().join("build/softmax/design.mlir").is_file());
    assert!(dir.path().join("build/softmax/manifest.json").is_file());
}

#[test]
fn missing_tools_are_named_and_only_fatal_with_xclbin() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("softmax.toml");
    let s = s.to_str().unwrap();
    // Without --xclbin missing tools are reported, not fatal.
    let o = build_ok(dir.path(), "softmax.toml", &["-o", "a"]);
    assert!(stderr(&o).contains("aie-opt"), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a/manifest.json")).unwrap())
            .unwrap();
    let missing = manifest["tools"]["missing_tools"].as_array().unwrap();
    assert!(
        missing.iter().any(|m| m["tool"] == "aie-opt"),
        "{manifest:#}"
    );

    let o = aiec(&["build", s, "-o", "b", "--xclbin"], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("final.xclbin") && err.contains("aie-opt"),
        "{err}"
    );
    // It says what the PDI needs and how to package one made elsewhere; no xclbin is left.
    assert!(
        err.contains("the PDI needs the core ELFs (Peano)") && err.contains("`--pdi FILE`"),
        "{err}"
    );
    assert!(!dir.path().join("b/final.xclbin").exists());
}

#[test]
fn pdi_flag_packages_a_given_pdi_and_rejects_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("add.toml");
    let s = s.to_str().unwrap();
    let pdi =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/xclbin/add_npu1_config_only.pdi");
    let o = aiec(
        &["build", s, "-o", "a", "--pdi", pdi.to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(dir.path().join("a/final.xclbin")).unwrap();
    let x = aiec::npu::xclbin::read(&bytes).unwrap();
    assert_eq!(
        x.aie_partition.unwrap().pdis[0].image,
        std::fs::read(&pdi).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["tools"]["given_pdi"], pdi.to_str().unwrap());

    // A file that is not a bootgen image, and one that does not exist: one clear error each.
    let spec_file = dir.path().join("not.pdi");
    std::fs::write(&spec_file, "all: { }").unwrap();
    let o = aiec(&["build", s, "-o", "b", "--pdi", "not.pdi"], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("cannot package not.pdi") && err.contains("is not a bootgen image"),
        "{err}"
    );
    assert!(!dir.path().join("b/final.xclbin").exists());
    let o = aiec(&["build", s, "-o", "c", "--pdi", "absent.pdi"], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read PDI absent.pdi"),
        "{}",
        stderr(&o)
    );
}

/// `aiec build` of a spec file `name` holding `text`, in `dir`: it must fail; its stderr.
fn failed_build(dir: &Path, name: &str, text: &str) -> String {
    let bad = dir.join(name);
    std::fs::write(&bad, text).unwrap();
    let o = aiec(&["build", bad.to_str().unwrap()], dir);
    assert!(!o.status.success());
    stderr(&o)
}

#[test]
fn malformed_spec_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = failed_build(
        dir.path(),
        "bad.toml",
        "op = \"softmax\"\nname = [unclosed\n",
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("bad.toml"), "the error names the file: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !dir.path().join("build").exists(),
        "nothing is written for a bad spec"
    );
}

#[test]
fn spec_with_unknown_op_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = failed_build(dir.path(), "conv3d.toml", "op = \"conv3d\"\nname = \"c\"\n");
    assert!(err.contains("unknown op `conv3d`"), "{err}");
}

#[test]
fn missing_spec_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = aiec(&["build", "no/such/spec.toml"], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("cannot read spec no/such/spec.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_flag_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("softmax.toml");
    let o = aiec(&["build", s.to_str().unwrap(), "--frobnicate"], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--frobnicate"), "{}", stderr(&o));
    let o = aiec(
        &["build", s.to_str().unwrap(), "--emit", "xclbin"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("xclbin"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn xclbin_command_describes_an_mlir_aie_xclbin_and_rejects_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let flm =
        std::path::PathBuf::from(std::env::var_os("AIEC_FLM_XCLBIN").expect("AIEC_FLM_XCLBIN"));
    let o = aiec(&["xclbin", flm.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    for line in [
        "xclbin 103916 bytes, format 2.21.75, uuid 712cda6e-ddea-3910-3d8a-5755d9ea7a7c, timestamp 1782852558",
        "section AIE_PARTITION          name=\"aie_partition\" offset=0x338 size=97880",
        "kernel MLIR_AIE type=dpu dpu_kernel_id=0x901 instances=MLIRAIE",
        "  arg 3 bo0: void* offset=0x14 size=0x8 (buffer)",
        "  pdi 271a38a8-cc71-41c0-a8b4-304f1d5aea7b (97456 bytes)",
        "    cdo group DPU type=1 pdi_id=0x1 dpu_kernel_ids=[0x901] pre_cdo_groups=[0xc1]",
    ] {
        assert!(out.lines().any(|l| l == line), "`{line}` not in\n{out}");
    }
    std::fs::write(dir.path().join("x.toml"), "[workspace]\n").unwrap();
    let o = aiec(&["xclbin", "x.toml"], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "cannot read x.toml as an xclbin: not an xclbin: it starts with \"[workspa\""
        ),
        "{}",
        stderr(&o)
    );
}
