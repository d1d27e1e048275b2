//! The real mlir-aie tools on our output. Needs aie-opt and aie-translate built from
//! mlir-aie (checked with commit c668d2cb): point `AIEC_AIE_OPT` / `AIEC_AIE_TRANSLATE` at them
//! and run `cargo test --release -p aiec --test mlir_aie_opt -- --ignored`.
//!
//! For every spec that builds: aie-opt parses our custom syntax and prints it back
//! byte-identically; the NPU lowering passes succeed; aie-translate makes an instruction
//! stream. Also, the generic form is accepted by aie-opt and means the same module.

use std::path::PathBuf;
use std::process::Command;

#[allow(dead_code)]
mod common;
use common::specs::spec_files;

fn tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set {var} to the tool's path"));
    assert!(p.is_file(), "{var}={} is not a file", p.display());
    p
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

#[test]
#[ignore = "needs the real aie-opt/aie-translate (AIEC_AIE_OPT, AIEC_AIE_TRANSLATE)"]
fn aie_opt_accepts_every_spec_that_builds() {
    let aie_opt = tool("AIEC_AIE_OPT");
    let aie_translate = tool("AIEC_AIE_TRANSLATE");
    let all = spec_files();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &all {
        let Ok(design) = aiec::spec::Spec::load(path).and_then(|s| s.build()) else {
            continue;
        };
        let Ok(text) = aiec::mlir::emit(&design) else {
            continue; // rejected by our verifier; mlir_golden reports those
        };
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let file = dir.path().join(format!("{name}.mlir"));
        std::fs::write(&file, &text).unwrap();
        let check = || -> Result<(), String> {
            let printed = run(Command::new(&aie_opt).arg("--verify-each").arg(&file))?;
            if printed != text {
                return Err("aie-opt prints our custom syntax differently".into());
            }
            let generic = dir.path().join(format!("{name}.generic.mlir"));
            std::fs::write(&generic, aiec::mlir::emit_generic(&design).unwrap()).unwrap();
            let from_generic = run(Command::new(&aie_opt).arg(&generic))?;
            if from_generic != text {
                return Err("aie-opt reads our generic form as a different module".into());
            }
            let npu = dir.path().join(format!("{name}.npu.mlir"));
            run(Command::new(&aie_opt)
                .args([
                    "--verify-each",
                    "--aie-objectFifo-stateful-transform",
                    "--aie-assign-lock-ids",
                    "--aie-assign-bd-ids",
                    "--aie-assign-buffer-addresses",
                    "--aie-create-pathfinder-flows",
                    "--aie-dma-to-npu",
                ])
                .arg(&file)
                .arg("-o")
                .arg(&npu))?;
            let insts = dir.path().join(format!("{name}.insts.bin"));
            run(Command::new(&aie_translate)
                .args(["--aie-npu-to-binary", "--aie-output-binary"])
                .arg(&npu)
                .arg("-o")
                .arg(&insts))?;
            let bytes = std::fs::metadata(&insts).map_err(|e| e.to_string())?.len();
            if bytes == 0 || bytes % 4 != 0 {
                return Err(format!(
                    "insts.bin has {bytes} bytes, not whole 32-bit words"
                ));
            }
            Ok(())
        };
        if let Err(e) = check() {
            failures.push(format!("{name}: {e}"));
        }
        checked += 1;
    }
    assert!(checked > 0, "no spec built");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The add op's 16-lane body becomes accumulator adds under mlir-aie's vectoriser for AIE-ML
/// (what its module docs claim): f32 moves into the accumulator by `aievec.cast
/// {isResAcc = true}`, bf16 by `aievec.ups` and back by `aievec.srs`; none of the vector adds
/// is left as `arith.addf`.
#[test]
#[ignore = "needs the real aie-opt (AIEC_AIE_OPT)"]
fn add_body_lowers_to_accumulator_adds() {
    let aie_opt = tool("AIEC_AIE_OPT");
    let dir = tempfile::tempdir().unwrap();
    let shipped = common::specs::shipped_text("add.toml");
    let bf16 = shipped.replace("dtype = \"f32\"", "dtype = \"bf16\"");
    for (dtype, text, into_acc) in [
        ("f32", shipped.as_str(), "isResAcc = true"),
        ("bf16", bf16.as_str(), "aievec.srs"),
    ] {
        let design = common::specs::build(text);
        let file = dir.path().join(format!("add_{dtype}.mlir"));
        std::fs::write(&file, aiec::mlir::emit(&design).unwrap()).unwrap();
        let out = run(Command::new(&aie_opt)
            .arg("--pass-pipeline=builtin.module(convert-vector-to-aievec{aie-target=aie2 target-backend=llvmir})")
            .arg(&file))
        .unwrap_or_else(|e| panic!("{dtype}: {e}"));
        // Every core has one vector loop: 8 cores, one add each.
        assert_eq!(out.matches("aievec.add_elem").count(), 8, "{dtype}: {out}");
        assert!(out.contains(into_acc), "{dtype}: {out}");
        assert!(
            !out.lines()
                .any(|l| l.contains("arith.addf") && l.contains("vector<")),
            "{dtype}: a vector add was not converted: {out}"
        );
    }
}

/// `aie-opt` with mlir-aie's AIE-ML vectoriser on the shipped spec `file` (as the add test).
fn to_aievec(aie_opt: &std::path::Path, file: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let design = common::specs::build(&common::specs::shipped_text(file));
    let path = dir.path().join("design.mlir");
    std::fs::write(&path, aiec::mlir::emit(&design).unwrap()).unwrap();
    run(Command::new(aie_opt)
        .arg("--pass-pipeline=builtin.module(convert-vector-to-aievec{aie-target=aie2 target-backend=llvmir})")
        .arg(&path))
    .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Lines of `out` that still hold op `op` on a 16-lane vector (not converted to aievec).
fn vector_ops_left(out: &str, op: &str) -> usize {
    out.lines()
        .filter(|l| l.contains(&format!("= {op} ")) && l.contains("vector<16x"))
        .count()
}

/// The norm row kernels' 16-lane bodies under mlir-aie's vectoriser for AIE-ML: the bf16
/// rows widen by `aievec.ups` and narrow by `aievec.srs`, the sums and the centring become
/// accumulator `add_elem` / `sub_elem`, each `vector.reduction <add>` a tree of 4
/// `aievec.shift` and `add_elem` halvings, the scaling by the row's `1 / sqrt(var + eps)` a
/// `mul_elem`. What it leaves: each f32 `mulf` whose only user is an `addf` (`d * d` into
/// the variance sum, `(..) * gamma` before `+ beta`), which its legality keeps for an FMA
/// fusion it implements only for bf16 operands (`mac_elem`), so they reach Peano as plain
/// `vector<16xf32>` multiplies.
#[test]
#[ignore = "needs the real aie-opt (AIEC_AIE_OPT)"]
fn norm_bodies_lower_to_aie_ml_vector_ops() {
    let aie_opt = tool("AIEC_AIE_OPT");
    // The shipped layernorm and rmsnorm run on 12 cores, one body each. Per body: bf16 loads
    // widened by `ups`, reductions, `sub_elem`s, `mul_elem`s, f32 `mulf`s left.
    let cores = 12;
    for (file, ups, reductions, subs, muls, left) in [
        // x three times (sum, variance, output), gamma, beta.
        ("layernorm.toml", 5, 2, 2, 1, 2),
        ("whisper-base/enc_layernorm.toml", 5, 2, 2, 1, 2),
        // No centring: `x * gamma` (two widened bf16: a bf16 `mul_elem` reading them
        // unwidened) then `* inv`; `x * x` into the sum is the one left.
        ("rmsnorm.toml", 1, 1, 0, 2, 1),
    ] {
        let out = to_aievec(&aie_opt, file);
        let count = |s: &str| out.matches(s).count();
        assert_eq!(count("aievec.srs"), cores, "{file}: one narrowing store");
        assert_eq!(count("aievec.ups"), ups * cores, "{file}");
        assert_eq!(count("aievec.shift"), 4 * reductions * cores, "{file}");
        assert_eq!(count("aievec.sub_elem"), subs * cores, "{file}");
        assert_eq!(count("aievec.mul_elem"), muls * cores, "{file}");
        let ops = [
            "vector.reduction",
            "arith.addf",
            "arith.subf",
            "arith.extf",
            "arith.truncf",
        ];
        for op in ops {
            assert_eq!(vector_ops_left(&out, op), 0, "{file}: {op} left: {out}");
        }
        assert_eq!(vector_ops_left(&out, "arith.mulf"), left * cores, "{file}");
    }
}

/// The GELU table body (the op and the `lut` expression form, 12 cores each) under mlir-aie's
/// AIE-ML vectoriser. Converted: the bf16 widening (`ups`) and narrowing (`srs`), the clamp
/// (`aievec.max` / `min`, f32 and i32), `- min` and `* 1/step` (`sub_elem`, `mul_elem`), the
/// interpolation's differences and sum, the tail tests and selects (`aievec.cmp` /
/// `aievec.sel`). Left for Peano: both `vector.gather`s (AIE-ML has no gather unit and
/// mlir-aie no pattern, so they become 16 scalar loads each), the i32 <-> f32 conversions
/// and `+ 1` on the index, and `frac * (l1 - l0)` (an f32 `mulf` feeding an `addf`, kept for
/// an FMA fusion that exists only for bf16).
#[test]
#[ignore = "needs the real aie-opt (AIEC_AIE_OPT)"]
fn gelu_table_body_lowers_to_aie_ml_vector_ops_but_its_gathers() {
    let aie_opt = tool("AIEC_AIE_OPT");
    let cores = 12;
    for file in ["gelu.toml", "gelu_lut_expr.toml"] {
        let out = to_aievec(&aie_opt, file);
        let count = |s: &str| out.matches(s).count();
        for (op, per_core) in [
            ("aievec.ups", 1),
            ("aievec.srs", 1),
            ("aievec.mul_elem", 1),
            ("aievec.cmp", 2),
            ("aievec.sel", 2),
            ("vector.gather", 2),
        ] {
            assert_eq!(count(op), per_core * cores, "{file}: {op}");
        }
        for (op, left) in [
            ("arith.mulf", 1),
            ("arith.fptosi", 1),
            ("arith.sitofp", 1),
            ("arith.addi", 1),
            ("arith.subf", 0),
            ("arith.addf", 0),
            ("arith.select", 0),
            ("arith.cmpf", 0),
            ("arith.maximumf", 0),
            ("arith.minimumf", 0),
            ("arith.extf", 0),
            ("arith.truncf", 0),
        ] {
            assert_eq!(vector_ops_left(&out, op), left * cores, "{file}: {op}");
        }
    }
}

/// The erf-expression form of GELU over bf16 data stays scalar: vectorised, its first op,
/// `x * 0.5` on the widened bf16 input, is an f32 `mulf` of an `arith.extf` result by an f32
/// constant, which mlir-aie's AIE-ML vectoriser marks illegal (it wants a bf16 `mul_elem` of
/// two widened bf16 operands) and has no pattern for, so the whole pass failed. The scalar
/// body passes, and the f32 expression form still vectorises.
#[test]
#[ignore = "needs the real aie-opt (AIEC_AIE_OPT)"]
fn gelu_expression_body_passes_the_aie_ml_vectoriser() {
    let aie_opt = tool("AIEC_AIE_OPT");
    let dir = tempfile::tempdir().unwrap();
    let text = aiec::mlir::emit(&common::specs::build(&common::specs::shipped_text(
        "gelu_expr.toml",
    )))
    .unwrap();
    assert!(
        !text.contains("vector<16xf32>"),
        "the bf16 expression body is scalar"
    );
    let path = dir.path().join("design.mlir");
    std::fs::write(&path, &text).unwrap();
    run(Command::new(&aie_opt)
        .arg("--pass-pipeline=builtin.module(convert-vector-to-aievec{aie-target=aie2 target-backend=llvmir})")
        .arg(&path))
    .expect("convert-vector-to-aievec accepts the gelu_expr body");
}

/// The log-mel body under mlir-aie's AIE-ML vectoriser: its DFT steps 16 samples at a time
/// with contiguous loads only (the twiddles come from angle addition, no gather), so every
/// vector op of it is converted but the f32 `mulf`s that feed an `addf` (as in the norms):
/// per core 3 sums become `aievec.shift` trees (real part, imaginary part, filter band), the
/// twiddles' `c0 * lc - s0 * ls` one `sub_elem`, the four splat factors `broadcast_scalar`.
#[test]
#[ignore = "needs the real aie-opt (AIEC_AIE_OPT)"]
fn mel_body_lowers_to_aie_ml_vector_ops_without_gathers() {
    let aie_opt = tool("AIEC_AIE_OPT");
    let cores = 12;
    for file in ["mel.toml", "whisper-base/mel.toml"] {
        let out = to_aievec(&aie_opt, file);
        let count = |s: &str| out.matches(s).count();
        assert_eq!(count("vector.gather"), 0, "{file}");
        assert_eq!(count("aievec.shift"), 3 * 4 * cores, "{file}");
        assert_eq!(count("aievec.sub_elem"), cores, "{file}");
        assert_eq!(count("aievec.broadcast_scalar"), 4 * cores, "{file}");
        for op in [
            "vector.reduction",
            "vector.broadcast",
            "arith.addf",
            "arith.subf",
        ] {
            assert_eq!(vector_ops_left(&out, op), 0, "{file}: {op} left");
        }
        // xw * twiddle (twice), s0 * lc and c0 * ls into the imaginary twiddle's add, p * w.
        assert_eq!(vector_ops_left(&out, "arith.mulf"), 5 * cores, "{file}");
    }
}
