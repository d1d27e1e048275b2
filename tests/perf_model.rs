//! The performance model ([`aiec::perf`]) against published whole-array GEMM figures, each an
//! independent measurement on real NPUs (sources in docs/perf-model.md):
//! - mlir-aie/IRON whole-array GEMM, bf16 1024^3: ~2 TFLOPS on npu1 (Phoenix), ~17 TFLOPS on
//!   npu2 (Strix);
//! - iree-amd-aie int8 matmul 2048x4096x2048 on Phoenix: 1.94 TOPS.
//!
//! The designs are ours (tests/data/perf/*.toml: our matmul op on the whole array, the
//! fastest tiling that fits), not theirs, so the error includes how our design differs from
//! theirs (docs/perf-model.md explains the gap). Each bound is the error measured when the
//! model was written, rounded up: a change to the model or the designs that moves a
//! prediction further from its published figure fails here.

use std::path::Path;

use aiec::perf::{predict, Bound};
use aiec::spec::Spec;

struct Published {
    spec: &'static str,
    device: &'static str,
    /// Tera-operations a second (2 per MAC) as published.
    tops: f64,
    /// The measured relative error of our prediction, rounded up.
    bound: f64,
}

const CALIBRATION: [Published; 3] = [
    Published {
        spec: "gemm_bf16_1024_npu1",
        device: "npu1",
        tops: 2.0,
        // predicted 0.986 TFLOPS: -50.7%
        bound: 0.52,
    },
    Published {
        spec: "gemm_bf16_1024_npu2",
        device: "npu2",
        tops: 17.0,
        // predicted 3.24 TFLOPS: -80.9%
        bound: 0.82,
    },
    Published {
        spec: "gemm_int8_2048x4096x2048_npu1",
        device: "npu1",
        tops: 1.94,
        // predicted 2.04 TOPS: +5.1%
        bound: 0.06,
    },
];

fn design(name: &str) -> aiec::design::Design {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/perf/{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    Spec::parse(&text, &path).and_then(|s| s.build()).unwrap()
}

#[test]
fn predictions_are_within_their_stated_error_of_the_published_figures() {
    let mut failures = Vec::new();
    for c in &CALIBRATION {
        let p = predict(&design(c.spec), c.device).unwrap();
        let error = p.tops() / c.tops - 1.0;
        eprintln!(
            "{} on {}: predicted {:.3} TOPS ({:.1} us, {}-bound), published {:.2}: error {:+.1}% (bound {:.0}%)",
            c.spec,
            c.device,
            p.tops(),
            p.total() * 1e6,
            p.bound().word(),
            c.tops,
            100.0 * error,
            100.0 * c.bound
        );
        if error.abs() > c.bound {
            failures.push(format!("{}: error {:+.1}%", c.spec, 100.0 * error));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn the_big_gemms_are_not_dispatch_bound() {
    // At these sizes the array time is milliseconds against 80 us of dispatch: a model that
    // called them dispatch-bound would have lost the MACs or the bytes somewhere.
    for c in &CALIBRATION {
        let p = predict(&design(c.spec), c.device).unwrap();
        assert_ne!(p.bound(), Bound::Dispatch, "{}", c.spec);
        let macs = match c.spec {
            "gemm_int8_2048x4096x2048_npu1" => 2048.0 * 4096.0 * 2048.0,
            _ => 1024f64.powi(3),
        };
        assert_eq!(p.macs, macs, "{}", c.spec);
    }
}

#[test]
fn emit_plan_prints_each_term_and_the_libraries_total_for_npu1_and_npu2() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-specs/softmax.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiec"))
        .args(["build", spec.to_str().unwrap(), "--emit", "plan"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let section = text
        .split("predicted time")
        .nth(1)
        .unwrap_or_else(|| panic!("no predicted time section:\n{text}"));
    let design = Spec::parse(&std::fs::read_to_string(&spec).unwrap(), &spec)
        .and_then(|s| s.build())
        .unwrap();
    for device in ["npu1", "npu2"] {
        let block = section
            .split(&format!("\n  {device} ("))
            .nth(1)
            .unwrap_or_else(|| panic!("no {device} block:\n{section}"));
        for term in [
            "compute",
            "shim DMA",
            "memtile DMA",
            "memtile port",
            "core DMA",
            "FIFO stall",
            "dispatch",
            "total",
        ] {
            assert!(block.contains(term), "{device}: `{term}` missing:\n{block}");
        }
        let total_line = block
            .lines()
            .find(|l| l.trim_start().starts_with("total"))
            .unwrap();
        let printed: f64 = total_line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let p = predict(&design, device).unwrap();
        assert!(
            (printed - p.total() * 1e6).abs() < 0.05,
            "{device}: {total_line}"
        );
        assert!(total_line.contains(&format!("{}-bound", p.bound().word())));
    }
}
