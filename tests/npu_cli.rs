//! `aiec run --device npu` on a machine or build without the NPU path: one error naming every
//! missing piece (the `xrt` feature, XRT >= 2.17, an NPU device, a PDI/xclbin per kernel from
//! Peano), a non-zero exit, no panic, and nothing loaded or transcribed first.

use std::path::{Path, PathBuf};
use std::process::Command;

fn aiec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aiec"))
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audio/jfk.wav")
}

#[test]
fn device_npu_names_everything_it_lacks_and_exits_non_zero() {
    // An empty cache: no kernel xclbins (and no model: the device is refused before loading).
    let home = tempfile::tempdir().unwrap();
    let out = aiec()
        .args(["run", "whisper-base"])
        .arg(sample())
        .args(["--device", "npu"])
        .env("AIEC_HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(
        stderr.starts_with("error: --device npu cannot run: "),
        "{stderr}"
    );
    for needle in [
        "built without cargo feature `xrt`",
        "XRT >= 2.17",
        "no xrt::hw_context",
        &format!(
            "no kernel xclbin in {}",
            home.path().join("kernels").display()
        ),
        "final.xclbin per kernel",
        "Peano",
        "--device sim",
    ] {
        assert!(stderr.contains(needle), "no `{needle}` in: {stderr}");
    }
    // The device part follows this machine: named when it has no accel node, not otherwise.
    let has_npu = !aiec::driver::probe::accel_devices(Path::new("/dev/accel")).is_empty();
    assert_eq!(
        stderr.contains("no NPU device (no /dev/accel/accel*"),
        !has_npu,
        "{stderr}"
    );
}
