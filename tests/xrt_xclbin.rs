//! Our `final.xclbin` read by XRT's own parser: `xrt::xclbin` from a file (XRT 2.13, Debian
//! `libxrt-dev`, installed by scripts/setup.sh), through the checker in
//! tests/xrt_xclbin/xclbin_facts.cpp, compiled here with the system C++ compiler. XRT's view
//! (kernels, argument names/offsets/sizes/memories, memory topology, uuid) must be what we
//! packaged, what aiecc's layout prescribes, and what XRT reads from FastFlowLM's real
//! mlir-aie xclbin. XRT 2.13 predates AIE_PARTITION; tests/xclbin_flm.rs checks that part
//! with our reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiec::npu::xclbin::{self, memory};

const XRT_HEADER: &str = "/usr/include/xrt/experimental/xrt_xclbin.h";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles the checker into `dir`.
fn checker(dir: &Path) -> PathBuf {
    assert!(
        Path::new(XRT_HEADER).exists(),
        "{XRT_HEADER} is missing: install libxrt-dev and uuid-dev (scripts/setup.sh does)"
    );
    let exe = dir.join("xclbin_facts");
    let out = Command::new("c++")
        .args(["-std=c++17", "-I/usr/include/xrt", "-o"])
        .arg(&exe)
        .arg(root().join("tests/xrt_xclbin/xclbin_facts.cpp"))
        .args(["-lxrt_coreutil", "-luuid"])
        .output()
        .expect("the system C++ compiler `c++` runs");
    assert!(
        out.status.success(),
        "compiling the XRT checker failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// XRT's facts about `xclbin`, one line each.
fn xrt_facts(checker: &Path, xclbin: &Path) -> Vec<String> {
    let out = Command::new(checker).arg(xclbin).output().unwrap();
    assert!(
        out.status.success(),
        "XRT could not parse {}: {}",
        xclbin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `aiec build kernel-specs/add.toml --pdi <bootgen's config-only PDI>` with no AIE tool.
fn build_add(dir: &Path) -> PathBuf {
    let empty = dir.join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let out_dir = dir.join("add");
    let out = Command::new(env!("CARGO_BIN_EXE_aiec"))
        .arg("build")
        .arg(root().join("kernel-specs/add.toml"))
        .arg("-o")
        .arg(&out_dir)
        .arg("--pdi")
        .arg(root().join("tests/data/xclbin/add_npu1_config_only.pdi"))
        .env("PATH", &empty)
        .env_remove("AIEC_AIE_OPT")
        .env_remove("AIEC_AIE_TRANSLATE")
        .env_remove("PEANO_INSTALL_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aiec build --pdi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir.join("final.xclbin")
}

#[test]
fn xrt_parses_our_xclbin_as_we_packaged_it() {
    let dir = tempfile::tempdir().unwrap();
    let exe = checker(dir.path());
    let path = build_add(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let ours = xclbin::read(&bytes).unwrap();
    let facts = xrt_facts(&exe, &path);

    // What we packaged, in the checker's line format.
    let mut want = vec![format!(
        "uuid {}",
        uuid::Uuid::from_bytes(ours.uuid).hyphenated()
    )];
    let mems = ours.mem_topology.as_ref().unwrap();
    assert_eq!(mems, &memory::npu_memories());
    for (i, m) in mems.iter().enumerate() {
        want.push(format!(
            "mem {i} tag={} used=1 type={} base={:#x} size_kb={:#x}",
            m.tag, m.mem_type, m.base_address, m.size_kb
        ));
    }
    let k = &ours.kernels.as_ref().unwrap()[0];
    want.push(format!("kernel {} args={} cus=1", k.name, k.args.len()));
    let conn = ours.connectivity.as_ref().unwrap();
    for (i, a) in k.args.iter().enumerate() {
        let tags: Vec<&str> = conn
            .iter()
            .filter(|c| c.0 == i as i32)
            .map(|c| mems[c.2 as usize].tag.as_str())
            .collect();
        want.push(format!(
            "arg {} {i} name={} offset={:#x} size={:#x} host_type={} mems={}",
            k.name,
            a.name,
            a.offset,
            a.size,
            a.ty,
            tags.join(",")
        ));
    }
    want.push(format!(
        "cu {} {}",
        k.name,
        ours.ip_layout.as_ref().unwrap()[0].name
    ));
    assert_eq!(facts, want);

    // And what aiecc's layout prescribes, independently of our reader.
    for line in [
        "kernel MLIR_AIE args=8 cus=1",
        "arg MLIR_AIE 0 name=opcode offset=0x0 size=0x8 host_type=uint64_t mems=",
        "arg MLIR_AIE 1 name=instr offset=0x8 size=0x8 host_type=char * mems=SRAM",
        "arg MLIR_AIE 2 name=ninstr offset=0x10 size=0x4 host_type=uint32_t mems=",
        "arg MLIR_AIE 3 name=bo0 offset=0x14 size=0x8 host_type=void* mems=HOST",
        "arg MLIR_AIE 7 name=bo4 offset=0x34 size=0x8 host_type=void* mems=HOST",
        "mem 0 tag=HOST used=1 type=2 base=0x4000000 size_kb=0x10000",
        "mem 1 tag=SRAM used=1 type=2 base=0x4000000 size_kb=0xc000",
        "cu MLIR_AIE MLIR_AIE:MLIRAIE",
    ] {
        assert!(
            facts.iter().any(|f| f == line),
            "XRT did not report `{line}`:\n{facts:#?}"
        );
    }
    // The PDI inside is the one given, byte for byte.
    let pdi = std::fs::read(root().join("tests/data/xclbin/add_npu1_config_only.pdi")).unwrap();
    assert_eq!(ours.aie_partition.unwrap().pdis[0].image, pdi);
}

#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn xrt_sees_the_same_kernel_and_memories_in_ours_as_in_fastflowlms() {
    let dir = tempfile::tempdir().unwrap();
    let exe = checker(dir.path());
    let ours = xrt_facts(&exe, &build_add(dir.path()));
    let flm =
        std::path::PathBuf::from(std::env::var_os("AIEC_FLM_XCLBIN").expect("AIEC_FLM_XCLBIN"));
    let theirs = xrt_facts(&exe, &flm);
    assert_eq!(theirs[0], "uuid 712cda6e-ddea-3910-3d8a-5755d9ea7a7c");
    // Everything but the uuid.
    assert_eq!(ours[1..], theirs[1..]);
}
