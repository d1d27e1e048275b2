//! The backend's build plan: steps, order, file names and exact flags of the aiecc-equivalent
//! NPU flow, its determinism, what changes between npu1 and npu2, and bad requests.

use std::path::PathBuf;

use aiec::backend::{build_steps, AieTarget, BackendError, BuildRequest, Internal, StepKind, Tool};

fn request(device: &str, cores: Vec<(u32, u32)>) -> BuildRequest {
    BuildRequest::new("/art/design.mlir", "/art", device, cores).unwrap()
}

/// The rendered plan's command lines (comment lines dropped).
fn commands(req: &BuildRequest) -> Vec<String> {
    build_steps(req)
        .unwrap()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.ends_with(needle) || l.contains(&format!("{needle} ")))
        .unwrap_or_else(|| panic!("no line contains `{needle}`:\n{}", lines.join("\n")))
}

#[test]
fn npu1_plan_has_every_step_in_order_with_aiecc_file_names() {
    let lines = commands(&request("npu1", vec![(0, 2), (1, 3)]));
    let order = [
        "cd /art",
        "(aiec) render templates -> design.bif mem_topology.json aie_partition.json kernels.json",
        "design.mlir -o input_with_addresses.mlir",
        "aie-opt --aie-create-pathfinder-flows input_with_addresses.mlir -o input_physical.mlir",
        "-o main_core_0_2.opt.mlir",
        "-o main_core_0_2.ld.script",
        "-o main_core_0_2.ll",
        "main_core_0_2.ll -> main_core_0_2.llpeanohack.ll",
        "-o main_core_0_2.stripped.ll",
        "-o main_core_0_2.o",
        "-o main_core_0_2.elf",
        "-o main_core_1_3.opt.mlir",
        "-o main_core_1_3.elf",
        "attach-elf-files input_physical.mlir main_core_0_2.elf main_core_1_3.elf -> input_physical_with_elfs.mlir",
        "input_physical_with_elfs.mlir -o npu_insts.mlir",
        "-o insts.bin",
        "--aie-generate-cdo",
        "bootgen",
        "(aiec) package-xclbin design.pdi -> final.xclbin",
    ];
    let mut last = 0;
    for needle in order {
        let at = position(&lines, needle);
        assert!(
            at >= last,
            "`{needle}` (line {at}) comes before line {last}"
        );
        last = at;
    }
    assert_eq!(
        last,
        lines.len() - 1,
        "packaging the xclbin is the last step"
    );
    // 1 render + 2 whole-design aie-opt + 7 per core + attach + npu lowering + insts + cdo
    // + bootgen + our xclbin packager.
    assert_eq!(lines.len() - 1, 1 + 2 + 2 * 7 + 1 + 1 + 1 + 1 + 1 + 1);
}

#[test]
fn npu1_plan_uses_upstream_flags() {
    let lines = commands(&request("npu1", vec![(0, 2)]));
    let exact = [
        "aie-translate input_with_addresses.mlir --aie-generate-ldscript --aie-device-name=main \
         --tilecol=0 --tilerow=2 -o main_core_0_2.ld.script",
        "aie-translate --mlir-to-llvmir main_core_0_2.opt.mlir -o main_core_0_2.ll",
        "${PEANO_INSTALL_DIR}/bin/opt '--passes=default<O2>,strip' -S main_core_0_2.llpeanohack.ll \
         -o main_core_0_2.stripped.ll",
        "${PEANO_INSTALL_DIR}/bin/llc main_core_0_2.stripped.ll -O2 --march=aie2 --function-sections \
         --filetype=obj -o main_core_0_2.o",
        "${PEANO_INSTALL_DIR}/bin/clang -O2 --target=aie2-none-unknown-elf main_core_0_2.o \
         -Wl,--gc-sections -Wl,--orphan-handling=error -Wl,-T,main_core_0_2.ld.script -o main_core_0_2.elf",
        "aie-translate --aie-npu-to-binary --aie-output-binary --aie-device-name=main npu_insts.mlir -o insts.bin",
        "aie-translate --aie-generate-cdo --aie-device-name=main input_physical_with_elfs.mlir",
        "bootgen -arch versal -image design.bif -o design.pdi -w",
        "(aiec) package-xclbin design.pdi -> final.xclbin",
    ];
    for want in exact {
        assert!(
            lines.iter().any(|l| l == want),
            "missing exact line\n  {want}\nin\n{}",
            lines.join("\n")
        );
    }
    let lowering = &lines[position(&lines, "-o main_core_0_2.opt.mlir")];
    assert_eq!(
        lowering,
        "aie-opt '--pass-pipeline=builtin.module(aie.device(aie-localize-locks,\
         aie-normalize-address-spaces,aie-transform-bfp-types),aie-standard-lowering{device=main \
         tilecol=0 tilerow=2},aiex-standard-lowering,convert-aievec-to-llvm{aie-target=aie2},\
         canonicalize,cse,convert-vector-to-llvm,expand-strided-metadata,lower-affine,arith-expand,finalize-memref-to-llvm,\
         convert-func-to-llvm{use-bare-ptr-memref-call-conv=true},convert-to-llvm{dynamic=true},\
         canonicalize,cse)' input_with_addresses.mlir -o main_core_0_2.opt.mlir"
    );
    let resources = &lines[position(&lines, "-o input_with_addresses.mlir")];
    for pass in [
        "convert-vector-to-aievec{aie-target=aie2 target-backend=llvmir}",
        "aie-assign-lock-ids,aie-register-objectFifos,aie-objectFifo-stateful-transform{",
        "aie-assign-bd-ids",
        "aie-assign-buffer-addresses",
        "),convert-scf-to-cf)",
    ] {
        assert!(resources.contains(pass), "`{pass}` not in {resources}");
    }
    let npu = &lines[position(&lines, "-o npu_insts.mlir")];
    assert!(npu.contains(
        "aie-materialize-bd-chains,aie-substitute-shim-dma-allocations,\
         aie-assign-runtime-sequence-bd-ids,aie-dma-tasks-to-npu,aie-dma-to-npu,aie-lower-set-lock"
    ));
}

#[test]
fn plan_steps_declare_their_files() {
    let p = build_steps(&request("npu1", vec![(0, 2)])).unwrap();
    let xclbin = p.steps.last().unwrap();
    assert_eq!(xclbin.kind, StepKind::Internal(Internal::PackageXclbin));
    assert!(p
        .steps
        .iter()
        .all(|s| s.needs_tool() != Some(Tool::Xclbinutil)));
    assert_eq!(xclbin.outputs, vec![PathBuf::from("final.xclbin")]);
    assert!(xclbin.inputs.contains(&PathBuf::from("design.pdi")));
    let cdo = p
        .steps
        .iter()
        .find(|s| s.args.first().map(String::as_str) == Some("--aie-generate-cdo"))
        .unwrap();
    assert_eq!(
        cdo.outputs,
        [
            "main_aie_cdo_elfs.bin",
            "main_aie_cdo_init.bin",
            "main_aie_cdo_enable.bin"
        ]
        .map(PathBuf::from)
        .to_vec()
    );
    // Every input is the design or an output of an earlier step.
    let mut made = vec![PathBuf::from("design.mlir")];
    for step in &p.steps {
        for input in &step.inputs {
            assert!(
                made.contains(input),
                "{} is read before it is made",
                input.display()
            );
        }
        made.extend(step.outputs.iter().cloned());
    }
}

#[test]
fn rendering_is_deterministic() {
    let req = request("npu2", vec![(0, 2), (3, 5)]);
    let first = build_steps(&req).unwrap().render();
    for _ in 0..3 {
        assert_eq!(build_steps(&req).unwrap().render(), first);
    }
    // Only the `cd` line depends on where the artefact directory is.
    let elsewhere =
        BuildRequest::new("/other/design.mlir", "/other", "npu2", req.cores.clone()).unwrap();
    let other = build_steps(&elsewhere).unwrap().render();
    let differing: Vec<(&str, &str)> = first
        .lines()
        .zip(other.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(differing, vec![("cd /art", "cd /other")]);
}

#[test]
fn npu2_differs_from_npu1_in_target_only() {
    let cores = vec![(0, 2)];
    let p1 = build_steps(&request("npu1", cores.clone())).unwrap();
    let p2 = build_steps(&request("npu2", cores)).unwrap();
    assert_eq!(p1.target, AieTarget::Aie2);
    assert_eq!(p2.target, AieTarget::Aie2p);
    let (r1, r2) = (p1.render(), p2.render());
    assert!(r2.contains("--target=aie2p-none-unknown-elf"));
    assert!(r2.contains("--march=aie2p "));
    assert!(r2.contains("convert-vector-to-aievec{aie-target=aie2p target-backend=llvmir}"));
    assert!(r2.contains("convert-aievec-to-llvm{aie-target=aie2p}"));
    assert!(!r2.contains("aie2-none-unknown-elf") && !r2.contains("--march=aie2 "));
    // Same steps, same files: swapping the target names maps one plan onto the other.
    let header = |r: &str| r.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        header(&r1)
            .replace("aie2-none", "aie2p-none")
            .replace("aie-target=aie2", "aie-target=aie2p")
            .replace("--march=aie2", "--march=aie2p")
            .replace("compile for aie2", "compile for aie2p"),
        header(&r2)
    );
    assert_eq!(p1.request.columns, 4);
    assert_eq!(p2.request.columns, 8);
}

#[test]
fn a_named_sequence_is_selected_explicitly() {
    let mut req = request("npu1", vec![(0, 2)]);
    req.sequence_name = Some("whisper_matmul".to_string());
    let lines = commands(&req);
    assert!(lines
        .iter()
        .any(|l| l
            .contains("--aie-device-name=main --aie-sequence-name=whisper_matmul npu_insts.mlir")));
}

#[test]
fn design_outside_the_artefact_directory_is_named_absolutely() {
    let req = BuildRequest::new("/src/design.mlir", "/art", "npu1", vec![]).unwrap();
    let lines = commands(&req);
    assert!(lines
        .iter()
        .any(|l| l.ends_with(" /src/design.mlir -o input_with_addresses.mlir")));
    // Without cores there are no per-core steps and no ELFs to attach.
    assert!(!lines.iter().any(|l| l.contains("_core_")));
}

fn invalid_message(result: Result<impl std::fmt::Debug, BackendError>) -> String {
    match result {
        Err(BackendError::InvalidRequest { message }) => message,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn bad_requests_are_rejected_with_the_cause() {
    let msg = invalid_message(BuildRequest::new("d.mlir", "out", "npu3", vec![]));
    assert!(msg.contains("unknown device `npu3`"), "{msg}");

    let msg = invalid_message(BuildRequest::new("d.mlir", "out", "npu1", vec![(4, 2)]));
    assert!(
        msg.contains("core tile (4, 2) is not a compute tile of `npu1`"),
        "{msg}"
    );

    let msg = invalid_message(BuildRequest::new(
        "d.mlir",
        "out",
        "npu1_1col",
        vec![(0, 1)],
    ));
    assert!(msg.contains("core tile (0, 1)"), "{msg}");

    let msg = invalid_message(BuildRequest::new(
        "d.mlir",
        "out",
        "npu2",
        vec![(1, 2), (1, 2)],
    ));
    assert!(msg.contains("listed twice"), "{msg}");

    let mut req = request("npu1", vec![(0, 2)]);
    req.columns = 8;
    let msg = invalid_message(build_steps(&req));
    assert!(
        msg.contains("partition width 8 does not match device `npu1`, which has 4"),
        "{msg}"
    );

    let mut req = request("npu1", vec![]);
    req.kernel_name = "my kernel".to_string();
    let msg = invalid_message(build_steps(&req));
    assert!(msg.contains("kernel name `my kernel`"), "{msg}");

    let mut req = request("npu1", vec![]);
    req.kernel_id = "901".to_string();
    let msg = invalid_message(build_steps(&req));
    assert!(msg.contains("kernel id `901`"), "{msg}");

    let mut req = request("npu1", vec![]);
    req.sequence_name = Some("1seq".to_string());
    let msg = invalid_message(build_steps(&req));
    assert!(msg.contains("sequence name `1seq`"), "{msg}");
}

#[test]
fn request_for_a_dsl_design_takes_its_cores_and_buffers() {
    use aiec::design::{BufferType, Design, ElemType, HostBuffer, RuntimeSequence, TileId, Worker};
    let worker = |col, row| Worker {
        tile: TileId::new(col, row),
        program: vec![],
        stack_bytes: 1024,
    };
    let buffer = |name: &str| HostBuffer {
        name: name.to_string(),
        ty: BufferType::new(vec![256], ElemType::I32),
    };
    let design = Design {
        name: "two_cores".into(),
        device: "npu2".into(),
        tiles: vec![TileId::new(0, 0), TileId::new(0, 2), TileId::new(1, 2)],
        fifos: vec![],
        links: vec![],
        workers: vec![worker(0, 2), worker(1, 2)],
        sequence: RuntimeSequence {
            args: (0..6).map(|i| buffer(&format!("b{i}"))).collect(),
            ops: vec![],
        },
    };
    let req = BuildRequest::for_design(&design, "/art/design.mlir", "/art").unwrap();
    assert_eq!(req.cores, vec![(0, 2), (1, 2)]);
    assert_eq!(req.host_buffers, 6);
    assert_eq!((req.device.as_str(), req.columns), ("npu2", 8));

    let mut bad = design.clone();
    bad.workers.push(worker(9, 2));
    let msg = invalid_message(BuildRequest::for_design(&bad, "/art/design.mlir", "/art"));
    assert!(msg.contains("core tile (9, 2)"), "{msg}");
}
