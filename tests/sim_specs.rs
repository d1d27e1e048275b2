//! Every spec under `kernel-specs/` (the whisper-base shapes included) simulates and matches
//! its op's float64 reference within the op's documented bound; `aiec sim` reports and fails
//! as it should.

use std::process::Command;

use aiec::sim::verify::{check_spec, Comparison};
use aiec::sim::SimOptions;
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::process::assert_success;
use common::specs::{kernel_specs, matmul_toml, spec_files};

#[test]
fn every_kernel_spec_matches_its_reference_in_the_simulator() {
    let paths = spec_files();
    assert!(
        paths.len() >= 4,
        "expected the kernel specs, found {paths:?}"
    );
    let mut failures = Vec::new();
    for path in &paths {
        let spec = Spec::load(path).unwrap();
        match check_spec(&spec, 1, &SimOptions::default()) {
            Ok(check) => {
                let c = &check.comparison;
                // Designs the compiler's verifier rejects (hardware limits) still simulate, from
                // the Design; which path ran is printed for the record.
                eprintln!(
                    "{}: {} elements, max abs {:.3e}, rel L2 {:.3e}, violations {}, run {:.3} s, cores {:?}",
                    path.display(),
                    c.elements,
                    c.max_abs_error,
                    c.rel_l2_error,
                    c.violations,
                    check.run.run_time.as_secs_f64(),
                    check.run.core_source
                );
                if !c.passed() {
                    failures.push(format!(
                        "{}: {} outside {} (worst {:?})",
                        path.display(),
                        c.violations,
                        c.bound,
                        c.worst
                    ));
                }
                if let Some(exact) = c.exact_matches {
                    if c.passed() && exact != c.elements {
                        failures.push(format!(
                            "{}: bit-exact op with {exact}/{} exact",
                            path.display(),
                            c.elements
                        ));
                    }
                }
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparison_counts_elements_outside_the_bound() {
    let y = [1.0, 2.0, 3.5, f64::NAN];
    let r = [1.0, 2.1, 3.0, 4.0];
    let c = Comparison::new(&y, &r, false, "0.2", |_, _| 0.2);
    assert_eq!(c.violations, 2, "3.5 vs 3.0 and NaN");
    assert!(!c.passed());
    assert_eq!(c.max_abs_error, f64::INFINITY);
    let c = Comparison::new(&[1.0, 2.0], &[1.0, 2.0], true, "exact", |_, _| 0.0);
    assert!(c.passed());
    assert_eq!(c.exact_matches, Some(2));
    assert_eq!(c.rel_l2_error, 0.0);
    let c = Comparison::new(&[3.0, 4.0], &[0.0, 0.0], false, "x", |_, _| 10.0);
    assert_eq!(
        c.rel_l2_error, 5.0,
        "an all-zero reference falls back to the absolute L2 error"
    );
}

fn aiec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aiec"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_reports_errors_and_exact_matches() {
    // An int8 matmul with fixed-shift requant: bit-exact against its reference.
    let spec = kernel_specs().join("matmul.toml");
    let out = aiec(&["sim", spec.to_str().unwrap(), "--seed", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, &format!("aiec sim (stdout: {stdout})"));
    assert!(stdout.contains("max abs err  0.000000e0"), "{stdout}");
    assert!(stdout.contains("exact        262144 / 262144"), "{stdout}");
    assert!(
        stdout.contains("cores        aie.core bodies of the MLIR-AIE module"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("PASS"), "{stdout}");

    let out = aiec(&["sim", "/nonexistent/spec.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/spec.toml"));

    let out = aiec(&["sim", spec.to_str().unwrap(), "--timeout=-1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
}

#[test]
fn a_spec_the_device_cannot_hold_is_refused_before_simulating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("too_big.toml");
    std::fs::write(
        &path,
        matmul_toml(["matmul", "too_big", "int8"], [512; 3], [128; 3], [4, 4])
            + "requant = { shift = 12, scale = 3 }\n",
    )
    .unwrap();
    let out = aiec(&["sim", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too_big"), "{stderr}");
}

/// The O(m k n) references (matmul, linear, and conv through linear's) are computed in the
/// judge, row by row within the check's deadline: for these 4096^3 shapes they take minutes,
/// and a 1 s deadline must stop them within about a row (tens of milliseconds).
#[test]
fn the_float64_reference_stops_at_the_deadline() {
    use aiec::sim::inputs::InputGen;
    use aiec::sim::verify::{Deadline, Expired, REFERENCE};
    use aiec::sim::HostData;
    use std::time::{Duration, Instant};

    let big = "shape = { m = 4096, k = 4096, n = 4096 }";
    // (file, its shape line, as the bf16 variant without requantisation)
    let specs = [
        (
            "matmul.toml",
            "shape = { m = 512, k = 512, n = 512 }",
            false,
        ),
        ("matmul.toml", "shape = { m = 512, k = 512, n = 512 }", true),
        (
            "linear_int8.toml",
            "shape = { m = 64, k = 128, n = 64 }",
            false,
        ),
    ];
    for (file, shape, bf16) in specs {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("kernel-specs")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(shape), "{file} changed its shape");
        let mut text = text.replace(shape, big);
        if bf16 {
            text = text
                .replace("dtype = \"int8\"", "dtype = \"bf16\"")
                .lines()
                .filter(|l| !l.starts_with("requant"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let spec = Spec::parse(&text, &path).unwrap();
        let design = spec.build().unwrap();
        let case = spec.op_spec().test_case(&design, &mut InputGen::new(1));
        let outputs = vec![HostData::F32(vec![0.0; 4096 * 4096])];
        let limit = Duration::from_secs(1);
        let started = Instant::now();
        let judged = (case.judge)(&outputs, &Deadline::new(limit));
        let took = started.elapsed();
        assert_eq!(
            judged.err(),
            Some(Expired {
                limit,
                phase: REFERENCE
            }),
            "{}",
            spec.name()
        );
        assert!(
            took < Duration::from_secs(3),
            "{}: took {took:?}",
            spec.name()
        );
    }
}
