//! Running a plan: without tools (every tool reported missing, templates still written),
//! discovery of broken tools, and the bootgen step run for real with the `bootgen` that
//! `apt-get install xilinx-bootgen` provides.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aiec::backend::{
    build_steps, BackendError, BuildRequest, SearchPaths, StepStatus, Tool, ToolStatus, Toolchain,
};

const DESIGN: &str = "module {\n  aie.device(npu1) {\n  }\n}\n";

fn artefact_dir() -> (tempfile::TempDir, BuildRequest) {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("design.mlir");
    fs::write(&design, DESIGN).unwrap();
    let req = BuildRequest::new(&design, dir.path(), "npu1", vec![(0, 2), (1, 2)]).unwrap();
    (dir, req)
}

#[test]
fn empty_toolchain_reports_every_tool_missing_and_writes_templates() {
    let (dir, req) = artefact_dir();
    let report = build_steps(&req)
        .unwrap()
        .execute(&Toolchain::empty())
        .unwrap();

    let missing: Vec<Tool> = report.missing_tools.iter().map(|m| m.tool).collect();
    // Every tool but xclbinutil: aiec packages the xclbin itself.
    let needed: Vec<Tool> = Tool::ALL
        .into_iter()
        .filter(|&t| t != Tool::Xclbinutil)
        .collect();
    assert_eq!(missing, needed);
    let would_make = |tool: Tool| -> Vec<String> {
        report
            .missing_tools
            .iter()
            .find(|m| m.tool == tool)
            .unwrap()
            .would_make
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    assert_eq!(would_make(Tool::Bootgen), vec!["design.pdi"]);
    assert_eq!(
        would_make(Tool::PeanoClang),
        vec!["main_core_0_2.elf", "main_core_1_2.elf"]
    );
    let translate = would_make(Tool::AieTranslate);
    for f in [
        "insts.bin",
        "main_aie_cdo_elfs.bin",
        "main_core_1_2.ld.script",
        "main_core_0_2.ll",
    ] {
        assert!(translate.iter().any(|t| t == f), "{f} not in {translate:?}");
    }
    assert!(would_make(Tool::AieOpt).contains(&"input_physical.mlir".to_string()));

    // Only the template step ran; the in-process steps waited for inputs that never came.
    let ran: Vec<&Path> = report.produced_files();
    assert_eq!(
        ran,
        [
            "design.bif",
            "mem_topology.json",
            "aie_partition.json",
            "kernels.json"
        ]
        .map(Path::new)
        .to_vec()
    );
    let attach = report
        .steps
        .iter()
        .find(|s| s.command.contains("attach-elf-files"))
        .unwrap();
    assert_eq!(
        attach.status,
        StepStatus::SkippedInputMissing {
            input: PathBuf::from("input_physical.mlir")
        }
    );
    for name in ["mem_topology.json", "aie_partition.json", "kernels.json"] {
        let text = fs::read_to_string(dir.path().join(name)).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(dir.path().join("design.bif").exists());
    assert!(!dir.path().join("final.xclbin").exists());

    // Demanding the xclbin turns the missing tools into one clear error.
    match report.require_xclbin() {
        Err(BackendError::NotProduced { file, reasons }) => {
            assert_eq!(file, "final.xclbin");
            assert!(
                reasons.contains("bootgen: no toolchain was searched")
                    && reasons.contains("peano clang: no toolchain was searched")
                    && !reasons.contains("xclbinutil"),
                "{reasons}"
            );
        }
        other => panic!("expected NotProduced, got {other:?}"),
    }
    let manifest = report.to_json();
    assert_eq!(manifest["steps"][0]["status"], "ran");
    assert_eq!(manifest["steps"][0]["outputs"][0], "design.bif");
    let last = manifest["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "skipped");
    assert_eq!(
        last["command"],
        "(aiec) package-xclbin design.pdi -> final.xclbin"
    );
    assert_eq!(last["reason"], "input design.pdi was not made");
    assert_eq!(manifest["missing_tools"][0]["tool"], "aie-opt");
    let summary = report.summary();
    assert!(summary.starts_with("1 of 23 step(s) ran"), "{summary}");
    assert!(
        summary.contains("skipped bootgen: no toolchain was searched (would have made design.pdi)")
    );
    assert!(summary.contains(
        "skipped aie-opt: no toolchain was searched (would have made input_with_addresses.mlir, \
         input_physical.mlir, main_core_0_2.opt.mlir, main_core_1_2.opt.mlir, and 1 more)"
    ));
}

/// The tools found on `path` (a `PATH`-style list), with no overrides.
fn discover_on_path(path: impl Into<std::ffi::OsString>) -> Toolchain {
    Toolchain::discover_in(&SearchPaths {
        path: Some(path.into()),
        ..SearchPaths::default()
    })
}

/// The tools found with `tool` explicitly set to `path`.
fn discover_with_override(tool: Tool, path: &Path) -> Toolchain {
    Toolchain::discover_in(&SearchPaths {
        overrides: [(tool, path.to_path_buf())].into_iter().collect(),
        ..SearchPaths::default()
    })
}

/// Like Debian's `libxrt-utils` wrapper: it execs `unwrapped/xclbinutil`, which is not there,
/// and still exits 0.
const BROKEN_XCLBINUTIL: &str =
    "echo \"$0: line 39: /usr/bin/unwrapped/xclbinutil: No such file or directory\" >&2\nexit 0";

/// A host LLVM llc: works, but has no AIE target.
const HOST_LLC: &str = "echo 'LLVM version 22.1.8'\necho '  Registered Targets:'\necho '    x86-64 - 64-bit X86: EM_X86_64'";

/// A working bootgen, as far as `--version` tells.
const BOOTGEN: &str = "echo '****** Xilinx Bootgen v2022.2'";

/// A fresh directory of executable shell scripts, one per `(name, body)`; their paths.
fn scripts(tools: &[(&str, &str)]) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = tools
        .iter()
        .map(|(name, body)| {
            let path = dir.path().join(name);
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            path
        })
        .collect();
    (dir, paths)
}

#[test]
fn discovery_detects_a_broken_xclbinutil_and_a_host_llvm() {
    let (bin, paths) = scripts(&[("xclbinutil", BROKEN_XCLBINUTIL), ("llc", HOST_LLC)]);
    let [xclbinutil, llc] = &paths[..] else {
        unreachable!()
    };
    // A file that is not executable at all.
    fs::write(bin.path().join("aie-opt"), "not a program").unwrap();

    let tc = discover_on_path(bin.path());

    match tc.status(Tool::Xclbinutil) {
        ToolStatus::Broken { path, reason } => {
            assert_eq!(path, xclbinutil);
            assert_eq!(
                reason,
                &format!(
                    "`xclbinutil --version` printed nothing recognisable: {}: line 39: \
                     /usr/bin/unwrapped/xclbinutil: No such file or directory",
                    xclbinutil.display()
                )
            );
        }
        other => panic!("xclbinutil should be broken, got {other:?}"),
    }
    match tc.status(Tool::PeanoLlc) {
        ToolStatus::Broken { path, reason } => {
            assert_eq!(path, llc);
            assert!(reason.contains("not Peano"), "{reason}");
        }
        other => panic!("llc should be broken, got {other:?}"),
    }
    // A non-executable file is not a candidate on PATH: the tool is simply missing.
    assert!(matches!(
        tc.status(Tool::AieOpt),
        ToolStatus::Missing { .. }
    ));
    match tc.status(Tool::PeanoClang) {
        ToolStatus::Missing { reason } => assert!(reason.contains("PEANO_INSTALL_DIR"), "{reason}"),
        other => panic!("clang should be missing, got {other:?}"),
    }
    assert!(tc.path(Tool::Xclbinutil).is_none());

    // A broken tool is skipped like a missing one, with its reason in the report.
    let (_dir, req) = artefact_dir();
    let report = build_steps(&req).unwrap().execute(&tc).unwrap();
    let x = report
        .missing_tools
        .iter()
        .find(|m| m.tool == Tool::PeanoLlc)
        .unwrap();
    assert!(
        x.reason.contains("is broken: no AIE target registered"),
        "{}",
        x.reason
    );
    // xclbinutil, broken or not, is no step of the plan: aiec packages the xclbin.
    assert!(report
        .missing_tools
        .iter()
        .all(|m| m.tool != Tool::Xclbinutil));
}

#[test]
#[ignore = "needs Debian's xclbinutil wrapper without XRT (apt-get install libxrt-utils)"]
fn debians_own_xclbinutil_wrapper_is_broken_without_xrt() {
    // Present when `libxrt-utils` is installed; the real XRT would add the unwrapped binary.
    let wrapper = Path::new("/usr/bin/xclbinutil");
    let is_debian_wrapper = fs::read_to_string(wrapper)
        .map(|t| t.contains("unwrapped"))
        .unwrap_or(false);
    assert!(
        is_debian_wrapper && !Path::new("/usr/bin/unwrapped/xclbinutil").exists(),
        "no Debian xclbinutil wrapper without XRT on this machine"
    );
    match discover_on_path("/usr/bin").status(Tool::Xclbinutil) {
        ToolStatus::Broken { path, reason } => {
            assert_eq!(path, wrapper);
            assert!(reason.contains("No such file or directory"), "{reason}");
        }
        other => panic!("expected the wrapper to be broken, got {other:?}"),
    }
}

#[test]
fn explicit_override_wins_and_is_probed() {
    let (bin, paths) = scripts(&[("my-bootgen", BOOTGEN)]);
    let good = &paths[0];
    let tc = discover_with_override(Tool::Bootgen, good);
    assert_eq!(tc.path(Tool::Bootgen), Some(good.as_path()));

    let missing = bin.path().join("no-such-bootgen");
    match discover_with_override(Tool::Bootgen, &missing).status(Tool::Bootgen) {
        ToolStatus::Broken { path, reason } => {
            assert_eq!(path, &missing);
            assert_eq!(reason, "not a file");
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

/// A minimal valid CDO: the 5-word header (`NumWords=4`, ident "CDO", version 2.0, length,
/// one's-complement checksum) followed by a single no-operation command (0x111), which is
/// what mlir-aie's CDO writer pads every file with.
fn minimal_cdo() -> Vec<u8> {
    let header = [4u32, 0x004F_4443, 0x0000_0200, 1];
    let checksum = !header.iter().fold(0u32, |a, w| a.wrapping_add(*w));
    header
        .iter()
        .chain([checksum, 0x111].iter())
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// The three CDO files aie-translate writes for bootgen, each holding `bytes`.
fn write_cdos(dir: &Path, bytes: &[u8]) {
    for part in ["elfs", "init", "enable"] {
        fs::write(dir.join(format!("main_aie_cdo_{part}.bin")), bytes).unwrap();
    }
}

/// The real bootgen (scripts/setup.sh installs Debian's xilinx-bootgen).
fn real_bootgen() -> Toolchain {
    let search = SearchPaths {
        path: std::env::var_os("PATH"),
        ..SearchPaths::default()
    };
    let tc = Toolchain::discover_in(&search);
    assert!(
        tc.path(Tool::Bootgen).is_some(),
        "bootgen is not installed (scripts/setup.sh installs xilinx-bootgen)"
    );
    // Only bootgen: on a machine with the AIE tools the other steps would run on a design
    // that is not a real one.
    tc.restricted_to(&[Tool::Bootgen])
}

#[test]
fn bootgen_builds_the_pdi_from_our_bif() {
    let tc = real_bootgen();
    let (dir, req) = artefact_dir();
    // aie-translate would write these; without it, stand-ins in the real format.
    write_cdos(dir.path(), &minimal_cdo());
    let report = build_steps(&req).unwrap().execute(&tc).unwrap();
    assert!(report.produced("design.pdi"), "{}", report.summary());
    let pdi = fs::read(dir.path().join("design.pdi")).unwrap();
    // The bif's id_code ends up in the image header.
    let id_code = 0x14ca_8093u32.to_le_bytes();
    assert!(
        pdi.windows(4).any(|w| w == id_code),
        "id_code not in the PDI"
    );
    // The NOP command of each CDO is carried into the image.
    assert!(pdi.windows(4).any(|w| w == 0x111u32.to_le_bytes()));
}

#[test]
fn a_failing_tool_is_an_error_naming_it_with_its_stderr() {
    let tc = real_bootgen();
    let (dir, req) = artefact_dir();
    write_cdos(dir.path(), b"not a CDO");
    match build_steps(&req).unwrap().execute(&tc) {
        Err(BackendError::ToolFailed {
            tool,
            command,
            stderr_tail,
            ..
        }) => {
            assert_eq!(tool, Tool::Bootgen);
            assert!(
                command.ends_with("-arch versal -image design.bif -o design.pdi -w"),
                "{command}"
            );
            // bootgen's own complaint, not just an exit status.
            assert!(stderr_tail.contains("CDO"), "{stderr_tail}");
        }
        other => panic!("expected ToolFailed, got {other:?}"),
    }
    assert!(!dir.path().join("final.xclbin").exists());
}

const PHYSICAL: &str = "module {
  aie.device(npu1) {
    %tile_0_2 = aie.tile(0, 2)
    %tile_1_2 = aie.tile(1, 2)
    %core_0_2 = aie.core(%tile_0_2) {
      aie.end
    } {stack_size = 1024 : i32}
    %core_1_2 = aie.core(%tile_1_2) {
      aie.end
    }
  }
}
";

#[test]
fn in_process_steps_run_when_their_inputs_exist() {
    let (dir, req) = artefact_dir();
    // What aie-opt, aie-translate and Peano would have left behind.
    fs::write(dir.path().join("input_physical.mlir"), PHYSICAL).unwrap();
    fs::write(
        dir.path().join("main_core_0_2.ll"),
        "%p = getelementptr inbounds nuw i32, ptr %a, i64 1\n%v = load i32, ptr %p, align 4\n",
    )
    .unwrap();
    for elf in ["main_core_0_2.elf", "main_core_1_2.elf"] {
        fs::write(dir.path().join(elf), b"\x7fELF").unwrap();
    }
    let report = build_steps(&req)
        .unwrap()
        .execute(&Toolchain::empty())
        .unwrap();
    assert!(report.produced("main_core_0_2.llpeanohack.ll"));
    assert!(!report.produced("main_core_1_2.llpeanohack.ll"));
    assert_eq!(
        fs::read_to_string(dir.path().join("main_core_0_2.llpeanohack.ll")).unwrap(),
        "%p = getelementptr inbounds i32, ptr %a, i64 1\n%v = load i32, ptr %p\n"
    );
    assert!(report.produced("input_physical_with_elfs.mlir"));
    let with_elfs = fs::read_to_string(dir.path().join("input_physical_with_elfs.mlir")).unwrap();
    assert!(with_elfs.contains("} {elf_file = \"main_core_0_2.elf\", stack_size = 1024 : i32}"));
    assert!(with_elfs.contains("} {elf_file = \"main_core_1_2.elf\"}"));
}

#[test]
fn a_design_core_missing_from_the_request_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("design.mlir"), DESIGN).unwrap();
    fs::write(dir.path().join("input_physical.mlir"), PHYSICAL).unwrap();
    fs::write(dir.path().join("main_core_0_2.elf"), b"\x7fELF").unwrap();
    // The request forgets core (1, 2).
    let req = BuildRequest::new(
        dir.path().join("design.mlir"),
        dir.path(),
        "npu1",
        vec![(0, 2)],
    )
    .unwrap();
    match build_steps(&req).unwrap().execute(&Toolchain::empty()) {
        Err(BackendError::IrEdit { path, message }) => {
            assert_eq!(path, dir.path().join("input_physical.mlir"));
            assert_eq!(
                message,
                "the core on tile (1, 2) has no ELF: it is not among the build's cores"
            );
        }
        other => panic!("expected IrEdit, got {other:?}"),
    }
}

#[test]
fn a_dry_run_can_write_the_templates_alone() {
    let (dir, req) = artefact_dir();
    let p = build_steps(&req).unwrap();
    let written = p.write_artefacts().unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|w| w.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "design.bif",
            "mem_topology.json",
            "aie_partition.json",
            "kernels.json"
        ]
    );
    assert!(written
        .iter()
        .all(|w| w.starts_with(dir.path()) && w.exists()));
    // Same design, same bytes (the PDI uuid is derived, not random).
    let first = fs::read(dir.path().join("aie_partition.json")).unwrap();
    p.write_artefacts().unwrap();
    assert_eq!(
        fs::read(dir.path().join("aie_partition.json")).unwrap(),
        first
    );
    // A different design text changes the PDI uuid.
    fs::write(
        dir.path().join("design.mlir"),
        format!("{DESIGN}// changed\n"),
    )
    .unwrap();
    p.write_artefacts().unwrap();
    assert_ne!(
        fs::read(dir.path().join("aie_partition.json")).unwrap(),
        first
    );
}

#[test]
fn a_missing_design_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("design.mlir");
    let req = BuildRequest::new(&design, dir.path(), "npu1", vec![]).unwrap();
    match build_steps(&req).unwrap().execute(&Toolchain::empty()) {
        Err(BackendError::Io { path, source }) => {
            assert_eq!(path, design);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(!dir.path().join("design.bif").exists());
}

#[test]
fn the_package_step_packs_design_pdi_as_the_json_artefacts_describe_it() {
    let (dir, req) = artefact_dir();
    // What bootgen would have written (a real bootgen PDI, see tests/data/xclbin/README.md).
    let pdi = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/xclbin/add_npu1_config_only.pdi"),
    )
    .unwrap();
    fs::write(dir.path().join("design.pdi"), &pdi).unwrap();
    let report = build_steps(&req)
        .unwrap()
        .execute(&Toolchain::empty())
        .unwrap();
    assert_eq!(
        report.require_xclbin().unwrap(),
        dir.path().join("final.xclbin")
    );
    let bytes = fs::read(dir.path().join("final.xclbin")).unwrap();
    let x = aiec::npu::xclbin::read(&bytes).unwrap();

    // The binary sections say what the JSON artefacts handed to xclbinutil would have said.
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let part_json = json("aie_partition.json");
    let part = x.aie_partition.unwrap();
    let pdi_json = &part_json["aie_partition"]["PDIs"][0];
    let uuid = uuid::Uuid::from_bytes(part.pdis[0].uuid)
        .hyphenated()
        .to_string();
    assert_eq!(pdi_json["uuid"], uuid);
    assert_eq!(part.pdis[0].image, pdi);
    assert_eq!(
        part_json["aie_partition"]["partition"]["column_width"],
        u64::from(part.column_width)
    );
    let kernels = json("kernels.json");
    let kernel = &kernels["ps-kernels"]["kernels"][0];
    let ours = &x.kernels.unwrap()[0];
    assert_eq!(kernel["name"], ours.name.as_str());
    assert_eq!(
        kernel["extended-data"]["dpu_kernel_id"],
        ours.dpu_kernel_id.as_deref().unwrap()
    );
    let args = kernel["arguments"].as_array().unwrap();
    assert_eq!(args.len(), ours.args.len());
    for (j, a) in args.iter().zip(&ours.args) {
        assert_eq!(j["name"], a.name.as_str());
        assert_eq!(j["type"], a.ty.as_str());
        let offset = j["offset"].as_str().unwrap().trim_start_matches("0x");
        assert_eq!(
            u64::from_str_radix(offset, 16).unwrap(),
            a.offset,
            "{}",
            a.name
        );
    }
    let mems = json("mem_topology.json");
    for (j, m) in mems["mem_topology"]["m_mem_data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(x.mem_topology.unwrap())
    {
        assert_eq!(j["m_tag"], m.tag.as_str());
        assert_eq!(j["m_sizeKB"], format!("{:#x}", m.size_kb));
        assert_eq!(j["m_base_address"], format!("{:#x}", m.base_address));
    }
}
