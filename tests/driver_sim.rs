//! The NPU driver trait with its simulator implementation: kernel specs loaded from their
//! artefacts (the checked-in golden `insts.bin` words, byte-identical to aie-translate's; an
//! xclbin we package) and run through the same buffer-object path an XRT run takes, checked
//! against the ops' float64 references. Also: kernels are loaded once, bad artefacts and
//! inputs are refused with their cause, and the XRT header probe refuses Debian's 2.13.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aiec::driver::sim::SimDriver;
use aiec::driver::{insts_words, probe, xrt_headers, Artefacts, Loader, NpuKernel, KERNEL_NAME};
use aiec::sim::inputs::InputGen;
use aiec::sim::verify::Deadline;
use aiec::sim::HostData;
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::specs::shipped_text;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn spec(name: &str) -> Spec {
    let rel = format!("{name}.toml");
    Spec::parse(&shipped_text(&rel), Path::new(&rel)).unwrap()
}

/// The artefacts of shipped spec `name` with its golden instruction stream.
fn golden_artefacts(name: &str, xclbin: Option<PathBuf>) -> Artefacts {
    let spec = spec(name);
    let design = spec.build().unwrap();
    let bytes = std::fs::read(root().join(format!("golden/insts/{name}.bin"))).unwrap();
    Artefacts {
        name: spec.name().to_string(),
        design,
        xclbin,
        kernel: KERNEL_NAME.to_string(),
        insts: insts_words(name, &bytes).unwrap(),
    }
}

/// Runs shipped spec `name` through the trait on the op's test inputs; the comparison with
/// its float64 reference.
fn check_through_driver(name: &str, seed: u64) -> aiec::sim::verify::Comparison {
    let a = golden_artefacts(name, None);
    // The golden words are what our lowering writes today (tests/npu_insts.rs checks them
    // against aie-translate), so the driver runs what `aiec run --device npu` would load.
    let ours = Artefacts::for_design(&a.name, &a.design, None).unwrap();
    assert_eq!(ours.insts, a.insts, "{name}: golden and lowering differ");
    let case = spec(name)
        .op_spec()
        .test_case(&a.design, &mut InputGen::new(seed));
    let kernel = NpuKernel::load(&SimDriver::default(), &a).unwrap();
    let inputs: Vec<&HostData> = case.inputs.iter().collect();
    let (outputs, _) = kernel.launch(&inputs).unwrap();
    (case.judge)(&outputs, &Deadline::new(Duration::from_secs(600))).unwrap()
}

#[test]
fn kernel_specs_through_the_sim_driver_pass_their_float64_references() {
    let mut checked = Vec::new();
    for name in ["add", "gelu", "layernorm", "linear_int8", "softmax", "mel"] {
        let c = check_through_driver(name, 7);
        assert!(
            c.passed() && c.elements > 0,
            "{name}: {} of {} elements outside `{}` (worst {:?})",
            c.violations,
            c.elements,
            c.bound,
            c.worst
        );
        checked.push(format!("{name}: rel L2 {:.2e}", c.rel_l2_error));
    }
    eprintln!("{}", checked.join("\n"));
}

#[test]
fn the_bo_layout_is_one_bo_per_sequence_argument_in_order() {
    let a = golden_artefacts("add", None);
    let bos = a.bos();
    let args = &a.design.sequence.args;
    assert_eq!(bos.len(), args.len());
    for (bo, arg) in bos.iter().zip(args) {
        assert_eq!(bo.name, arg.name);
        assert_eq!(bo.len, arg.ty.shape.iter().product::<usize>());
    }
    // add: two filled inputs, one drained output.
    let roles: Vec<(bool, bool)> = bos.iter().map(|b| (b.filled, b.drained)).collect();
    assert_eq!(roles, [(true, false), (true, false), (false, true)]);
}

#[test]
fn a_loader_loads_each_kernel_once_and_reuses_its_bos() {
    let loader = Loader::new(Box::new(SimDriver::default()));
    let loads = AtomicUsize::new(0);
    let artefacts = || {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(golden_artefacts("add", None))
    };
    let spec = spec("add");
    let design = spec.build().unwrap();
    let mut outputs = Vec::new();
    for seed in [1, 2, 1] {
        let case = spec.op_spec().test_case(&design, &mut InputGen::new(seed));
        let kernel = loader.kernel("add-hash", artefacts).unwrap();
        let inputs: Vec<&HostData> = case.inputs.iter().collect();
        let (out, _) = kernel.launch(&inputs).unwrap();
        let c = (case.judge)(&out, &Deadline::new(Duration::from_secs(60))).unwrap();
        assert!(c.passed(), "seed {seed}: {c:?}");
        outputs.push(out);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(loader.loaded(), 1);
    // The BOs persist between runs; a run's outputs depend only on its own inputs.
    assert_eq!(outputs[0], outputs[2]);
    assert_ne!(outputs[0], outputs[1]);
}

#[test]
fn an_xclbin_we_package_is_accepted_and_a_foreign_kernel_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = golden_artefacts("add", None);
    let request = aiec::backend::BuildRequest::for_design(
        &a.design,
        dir.path().join("design.mlir"),
        dir.path(),
    )
    .unwrap();
    let pdi = std::fs::read(root().join("tests/data/xclbin/add_npu1_config_only.pdi")).unwrap();
    let xclbin = dir.path().join("final.xclbin");
    std::fs::write(
        &xclbin,
        aiec::backend::package_xclbin(&request, &pdi).unwrap(),
    )
    .unwrap();

    let with_xclbin = golden_artefacts("add", Some(xclbin.clone()));
    let kernel = NpuKernel::load(&SimDriver::default(), &with_xclbin).unwrap();
    assert_eq!(kernel.bos.len(), 3);

    let mut foreign = golden_artefacts("add", Some(xclbin));
    foreign.kernel = "DPU_PDI_0".into();
    let err = NpuKernel::load(&SimDriver::default(), &foreign)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("its xclbin has no kernel `DPU_PDI_0` (it has: MLIR_AIE)"),
        "{err}"
    );

    let bytes = std::fs::read(root().join("tests/data/xclbin/add_npu1_config_only.pdi")).unwrap();
    let err = with_xclbin.check_xclbin(&bytes).unwrap_err().to_string();
    assert!(err.contains("its xclbin cannot be read"), "{err}");
}

#[test]
fn bad_artefacts_and_inputs_are_refused_with_their_cause() {
    let err = insts_words("add", &[1, 2, 3]).unwrap_err().to_string();
    assert!(
        err.contains("3 bytes is not a whole number of 32-bit words"),
        "{err}"
    );

    // A stream cut after its header's ops count no longer decodes: the load says so.
    let mut cut = golden_artefacts("add", None);
    cut.insts.truncate(cut.insts.len() - 3);
    let err = NpuKernel::load(&SimDriver::default(), &cut)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(
            "kernel `add`: loading on the simulator failed: the instruction words do not decode"
        ),
        "{err}"
    );

    let a = golden_artefacts("add", None);
    let kernel = NpuKernel::load(&SimDriver::default(), &a).unwrap();
    let short = HostData::zeros(a.bos()[0].elem, 5);
    let err = kernel.launch(&[&short, &short]).unwrap_err().to_string();
    assert!(err.contains("input 0: BO 0"), "{err}");
    assert!(err.contains("the input has 5"), "{err}");
    let err = kernel.launch(&[&short]).unwrap_err().to_string();
    assert!(
        err.contains("the kernel takes 2 inputs, 1 were given"),
        "{err}"
    );
}

#[test]
fn debians_xrt_2_13_is_refused_for_lacking_hw_context() {
    let version_h = Path::new("/usr/include/xrt/version.h");
    assert!(
        version_h.exists(),
        "{} is missing: install libxrt-dev (scripts/setup.sh does)",
        version_h.display()
    );
    let text = std::fs::read_to_string(version_h).unwrap();
    let v = xrt_headers::parse_version(&text).unwrap();
    assert!(
        v < (2, 17, 0),
        "this machine's XRT {v:?} is new enough: the refusal is not tested"
    );
    let err = xrt_headers::find(&xrt_headers::candidate_roots(None)).unwrap_err();
    assert!(
        err.contains(&format!(
            "/usr/include/xrt holds XRT {}.{}.{}, which has no xrt_hw_context.h",
            v.0, v.1, v.2
        )),
        "{err}"
    );
    assert!(err.contains("XRT >= 2.17"), "{err}");
}

#[test]
fn the_header_probe_accepts_a_2_17_tree_with_hw_context() {
    // The layout of an XRT 2.17+ install (`/opt/xilinx/xrt/include`): version.h at the root,
    // the API under xrt/. Only the files the probe reads are made.
    let dir = tempfile::tempdir().unwrap();
    let inc = dir.path().join("include");
    std::fs::create_dir_all(inc.join("xrt")).unwrap();
    std::fs::write(inc.join("xrt/xrt_device.h"), "").unwrap();
    std::fs::write(
        inc.join("version.h"),
        "static const char xrt_build_version[] = \"2.17.319\";\n",
    )
    .unwrap();
    let roots = xrt_headers::candidate_roots(Some(dir.path()));
    assert_eq!(roots[0], inc);
    let err = xrt_headers::find(&roots[..1]).unwrap_err();
    assert!(
        err.contains("XRT 2.17.319, which has no xrt_hw_context.h"),
        "{err}"
    );
    std::fs::write(inc.join("xrt/xrt_hw_context.h"), "").unwrap();
    let found = xrt_headers::find(&roots[..1]).unwrap();
    assert_eq!(found.version, (2, 17, 319));
    assert_eq!(found.include, inc);
    std::fs::write(
        inc.join("version.h"),
        "static const char xrt_build_version[] = \"2.16.204\";\n",
    )
    .unwrap();
    let err = xrt_headers::find(&roots[..1]).unwrap_err();
    assert!(
        err.contains("XRT 2.16.204, which is older than 2.17"),
        "{err}"
    );
}

#[test]
fn the_npu_probe_names_exactly_what_is_missing() {
    let all = probe::Findings {
        xrt_feature: Some("2.17.319".into()),
        devices: vec![PathBuf::from("/dev/accel/accel0")],
        kernels_dir: Some(PathBuf::from("/h/kernels")),
        xclbins: 3,
    };
    assert_eq!(probe::missing(&all), None);
    let no_device = probe::Findings {
        devices: vec![],
        ..all.clone()
    };
    let m = probe::missing(&no_device).unwrap();
    assert!(m.contains("no NPU device (no /dev/accel/accel*"), "{m}");
    assert!(!m.contains("feature") && !m.contains("xclbin"), "{m}");
    let no_xclbins = probe::Findings {
        xclbins: 0,
        ..all.clone()
    };
    let m = probe::missing(&no_xclbins).unwrap();
    assert!(m.contains("no kernel xclbin in /h/kernels"), "{m}");
    assert!(m.contains("Peano"), "{m}");
    assert!(!m.contains("/dev/accel"), "{m}");

    let dir = tempfile::tempdir().unwrap();
    assert!(probe::accel_devices(dir.path()).is_empty());
    std::fs::write(dir.path().join("accel0"), "").unwrap();
    std::fs::write(dir.path().join("card0"), "").unwrap();
    assert_eq!(
        probe::accel_devices(dir.path()),
        [dir.path().join("accel0")]
    );
}

/// The load-time xclbin check against a real mlir-aie xclbin: aiecc's kernel `MLIR_AIE`
/// takes (opcode, instr, ninstr, bo0..bo4), so a 3-BO design fits it and a foreign kernel
/// name does not.
#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here: set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn the_xclbin_check_accepts_a_real_mlir_aie_xclbin() {
    let path = std::env::var_os("AIEC_FLM_XCLBIN")
        .expect("AIEC_FLM_XCLBIN: the path of FastFlowLM's dequant.xclbin");
    let bytes = std::fs::read(path).unwrap();
    let a = golden_artefacts("add", None);
    a.check_xclbin(&bytes).unwrap();
    let mut foreign = a.clone();
    foreign.kernel = "DPU".into();
    let err = foreign.check_xclbin(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("has no kernel `DPU` (it has: MLIR_AIE)"),
        "{err}"
    );
}
