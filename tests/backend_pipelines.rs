//! The upstream-MLIR part of the planned pass pipelines, checked with the real LLVM 22
//! tools (the MLIR mlir-aie builds on): every non-AIE pass name and option must parse and
//! lower a kernel-shaped function to bare-pointer LLVM; the LLVM IR that results really
//! carries the syntax the peano-compat step removes; and the rewritten IR still passes the
//! planned `opt` command line. AIE passes need aie-opt and are checked by name in
//! `backend_plan.rs`.

use std::path::Path;

use aiec::backend::{build_steps, BuildRequest, StepKind, Tool};

#[allow(dead_code)]
mod common;
use common::process::assert_success;

const MLIR_OPT: &str = "/usr/lib/llvm-22/bin/mlir-opt";
const MLIR_TRANSLATE: &str = "/usr/lib/llvm-22/bin/mlir-translate";
const HOST_OPT: &str = "/usr/lib/llvm-22/bin/opt";

/// Splits a pass list at top-level commas (commas inside `(...)` or `{...}` stay).
fn top_level(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(list[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(list[start..].to_string());
    out
}

fn is_aie_pass(pass: &str) -> bool {
    pass.starts_with("aie")
        || pass.starts_with("convert-vector-to-aievec")
        || pass.starts_with("convert-aievec-to-llvm")
}

/// The module-level upstream passes of every aie-opt pipeline in a plan.
fn upstream_pipelines() -> Vec<String> {
    let req = BuildRequest::new("/art/design.mlir", "/art", "npu1", vec![(0, 2)]).unwrap();
    build_steps(&req)
        .unwrap()
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Tool(Tool::AieOpt))
        .filter_map(|s| {
            s.args
                .iter()
                .find_map(|a| a.strip_prefix("--pass-pipeline=builtin.module("))
                .map(|p| p.strip_suffix(')').unwrap().to_string())
        })
        .map(|inner| {
            top_level(&inner)
                .into_iter()
                .filter(|p| !is_aie_pass(p))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|p| !p.is_empty())
        .collect()
}

const SAMPLE: &str = r#"
func.func @k(%a: memref<16xf32>, %b: memref<16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  scf.for %i = %c0 to %c16 step %c1 {
    %x = memref.load %a[%i] : memref<16xf32>
    %y = math.exp %x : f32
    memref.store %y, %b[%i] : memref<16xf32>
  }
  return
}
"#;

/// Runs `program` in `dir` on `stdin`; its stdout, after checking it succeeded.
fn run_in(dir: &Path, program: &str, args: &[String], stdin: &str) -> String {
    let out = duct::cmd(program, args)
        .dir(dir)
        .stdin_bytes(stdin)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .unwrap();
    assert_success(&out, &format!("{program} {args:?}"));
    String::from_utf8(out.stdout).unwrap()
}

fn run(program: &str, args: &[String], stdin: &str) -> String {
    run_in(Path::new("."), program, args, stdin)
}

#[test]
fn upstream_passes_parse_and_run_in_mlir_opt() {
    for tool in [MLIR_OPT, MLIR_TRANSLATE, HOST_OPT] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is not installed (scripts/setup.sh installs mlir-22-tools and llvm-22)"
        );
    }
    let pipelines = upstream_pipelines();
    // Resource allocation (lower-affine, convert-scf-to-cf), then the core lowering.
    assert_eq!(pipelines.len(), 2, "{pipelines:?}");
    assert_eq!(pipelines[0], "lower-affine,convert-scf-to-cf");
    // convert-vector-to-llvm follows upstream's canonicalize,cse: the vectorised kernels leave
    // n-D vector.shape_cast around aievec.matmul that convert-to-llvm{dynamic} does not lower.
    assert!(
        pipelines[1].starts_with("canonicalize,cse,convert-vector-to-llvm,expand-strided-metadata")
    );

    // The same order as the build: input_with_addresses, then the per-core lowering.
    let with_cf = run(
        MLIR_OPT,
        &[format!("--pass-pipeline=builtin.module({})", pipelines[0])],
        SAMPLE,
    );
    assert!(
        with_cf.contains("cf.br") && !with_cf.contains("scf.for"),
        "{with_cf}"
    );
    let llvm = run(
        MLIR_OPT,
        &[format!("--pass-pipeline=builtin.module({})", pipelines[1])],
        &with_cf,
    );
    // Fully lowered, with bare-pointer memref arguments as Peano expects.
    assert!(
        llvm.contains("llvm.func @k(%arg0: !llvm.ptr, %arg1: !llvm.ptr)"),
        "{llvm}"
    );
    assert!(
        !llvm.contains("memref.") && !llvm.contains("cf.br"),
        "{llvm}"
    );

    // LLVM 22's IR carries what Peano cannot read; the peano-compat step removes it.
    let ir = run(MLIR_TRANSLATE, &["--mlir-to-llvmir".to_string()], &llvm);
    assert!(ir.contains("getelementptr inbounds nuw"), "{ir}");
    assert!(ir.contains(", align 4"), "{ir}");
    let compat = aiec::backend::peano_compat(&ir);
    assert!(
        !compat.contains(" nuw ") && !compat.contains("align "),
        "{compat}"
    );
    assert!(compat.contains("getelementptr inbounds float"), "{compat}");

    // The rewritten IR is still valid IR, and the plan's `opt` flags are accepted: run the
    // planned Peano `opt` command line with the host `opt` (the flags are target-neutral).
    let req = BuildRequest::new("/art/design.mlir", "/art", "npu1", vec![(0, 2)]).unwrap();
    let p = build_steps(&req).unwrap();
    let opt_step = p
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Tool(Tool::PeanoOpt))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&opt_step.inputs[0]), &compat).unwrap();
    run_in(dir.path(), HOST_OPT, &opt_step.args, "");
    let optimised = std::fs::read_to_string(dir.path().join(&opt_step.outputs[0])).unwrap();
    assert!(optimised.contains("define void @k(ptr"), "{optimised}");
}
