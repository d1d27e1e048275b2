//! The config-only PDI fixture (tests/data/xclbin/add_npu1_config_only.pdi) remade with the
//! real tools: `aiec build` with mlir-aie c668d2cb's aie-opt/aie-translate (no Peano), the
//! CDOs from aie-translate, bootgen over the fixture's bif. Point `AIEC_AIE_OPT` /
//! `AIEC_AIE_TRANSLATE` at the tools and run
//! `cargo test --release --test xclbin_tools -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set {var} to the tool's path"));
    assert!(p.is_file(), "{var}={} is not a file", p.display());
    p
}

fn ok(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "needs the real aie-opt/aie-translate (AIEC_AIE_OPT, AIEC_AIE_TRANSLATE) and bootgen"]
fn the_config_only_pdi_fixture_is_what_the_tools_make() {
    let (aie_opt, aie_translate) = (tool("AIEC_AIE_OPT"), tool("AIEC_AIE_TRANSLATE"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("add");
    ok(Command::new(env!("CARGO_BIN_EXE_aiec"))
        .arg("build")
        .arg(root.join("kernel-specs/add.toml"))
        .arg("-o")
        .arg(&out)
        .env("AIEC_AIE_OPT", &aie_opt)
        .env("AIEC_AIE_TRANSLATE", &aie_translate)
        .env_remove("PEANO_INSTALL_DIR"));
    ok(Command::new(&aie_translate)
        .args([
            "--aie-generate-cdo",
            "--aie-device-name=main",
            "input_physical.mlir",
        ])
        .current_dir(&out));
    // No ELFs: the ELF CDO is an empty CDO (header and NOP only).
    assert_eq!(
        std::fs::metadata(out.join("main_aie_cdo_elfs.bin"))
            .unwrap()
            .len(),
        24
    );
    let bif = root.join("tests/data/xclbin/add_npu1_config_only.bif");
    ok(Command::new("bootgen")
        .args(["-arch", "versal", "-image"])
        .arg(&bif)
        .args(["-o", "remade.pdi", "-w"])
        .current_dir(&out));
    let fixture = std::fs::read(root.join("tests/data/xclbin/add_npu1_config_only.pdi")).unwrap();
    assert!(std::fs::read(out.join("remade.pdi")).unwrap() == fixture);
}
