//! Each term of the model against numbers computed by hand for a tiny design: an int8
//! matmul `8x16x8` on one core, tile `8x8x8` (one row group, one column block, two k
//! blocks), on npu1 (1 GHz, 256 int8 MAC/cycle, shim 4 B/cycle, tile streams 4 B/cycle).

use std::path::Path;

use super::*;
use crate::spec::Spec;

fn tiny(depth: u32) -> Design {
    let toml = format!(
        r#"
op = "matmul"
name = "tiny"
device = "npu1_1col"
dtype = "int8"
shape = {{ m = 8, k = 16, n = 8 }}
tile = {{ m = 8, k = 8, n = 8 }}
array = {{ columns = 1, cores_per_column = 1 }}
depth = {depth}
stack_bytes = 1024
requant = {{ shift = 12, scale = 3 }}
"#
    );
    Spec::parse(&toml, Path::new("tiny.toml"))
        .and_then(|s| s.build())
        .expect("the tiny matmul builds")
}

fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 + 1e-9 * want.abs(),
        "got {got}, want {want}"
    );
}

#[test]
fn compute_term_by_hand() {
    let p = predict(&tiny(2), "npu1").unwrap();
    // mac call, block 4x8x8 (256 MACs = 1 issue): A block 32 B = 1 load, B block 64 B =
    // 2 loads -> 1.5 cycles a mmul (2 load units); 512 MACs = 2 mmuls -> 3 cycles. Two
    // 4x8 accumulator blocks of 128 B: 128/64 loads + 128/32 stores + 6 pipeline = 12 each
    // -> 24. Plus the call's 40: 67 cycles, twice (two k blocks): 134.
    // zero: 8x8 elements, 8 lanes do not fill 16 -> 64 scalar stores + 40 = 104.
    // store: 64 elements x 9 scalar ops + 40 = 616.
    let cycles = 134.0 + 104.0 + 616.0;
    close(p.compute, cycles / 1e9);
    close(p.macs, (8 * 16 * 8) as f64);
    // The ideal: 1024 MACs / 256 a cycle = 4 cycles.
    close(p.mac_efficiency, 4.0 / cycles);
}

#[test]
fn dma_terms_by_hand() {
    let p = predict(&tiny(2), "npu1").unwrap();
    // Shim: A is 8x16 int8 = 128 B on its own channel (B also 128 B, C 64 B): 128 / 4 B a
    // cycle = 32 cycles.
    close(p.shim_dma, 32e-9);
    // Memtile: the A split sends 2 buffers of 8x8 = 128 B to the core (and takes 128 B in):
    // 32 cycles.
    close(p.memtile_dma, 32e-9);
    // Core: 2 A buffers in on one channel, 2 B buffers on the other: 128 B each, 32 cycles.
    close(p.core_dma, 32e-9);
    // Memtile port: the memtile writes A 128 + B 128 + C 64 B and reads as many, at 30 GB/s.
    close(p.memtile_port, 320.0 / 30e9);
    close(p.fifo_stall, 0.0);
    close(p.dispatch, 80e-6);
    close(p.total(), 80e-6 + p.compute);
    assert_eq!(p.bound(), Bound::Dispatch);
}

#[test]
fn depth_one_fifos_serialise_transfer_and_compute() {
    let two = predict(&tiny(2), "npu1").unwrap();
    let one = predict(&tiny(1), "npu1").unwrap();
    close(one.compute, two.compute);
    // The core's depth-1 channels: A in 128 B, B in 128 B, C out 64 B -> 80 cycles that no
    // longer overlap the compute.
    close(one.fifo_stall, 80e-9);
    close(one.array(), two.array() + 80e-9);
}

#[test]
fn npu2_rates_apply_to_the_design_as_placed() {
    let p = predict(&tiny(2), "npu2").unwrap();
    // 1.8 GHz, 512 int8 MAC/cycle: a 4x8x8 mmul is half an issue but still 1.5 cycles of
    // loads -> the mac call is the same 67 cycles; shim at 8 B/cycle: 128 / 8 = 16 cycles.
    close(p.compute, (134.0 + 104.0 + 616.0) / 1.8e9);
    close(p.shim_dma, 16.0 / 1.8e9);
    close(p.mac_efficiency, 2.0 / (134.0 + 104.0 + 616.0));
}

#[test]
fn undeclared_kernels_are_reported() {
    let mut d = tiny(2);
    for w in &mut d.workers {
        fn strip(stmts: &mut [crate::design::CoreStmt]) {
            for s in stmts {
                match s {
                    crate::design::CoreStmt::Loop { body, .. } => strip(body),
                    crate::design::CoreStmt::Kernel { kernel, .. } => {
                        kernel.work = crate::design::KernelWork::Undeclared
                    }
                    _ => {}
                }
            }
        }
        strip(&mut w.program);
    }
    let p = predict(&d, "npu1").unwrap();
    // zero, 2 mac and store calls.
    close(p.undeclared_calls, 4.0);
    assert!(p.to_string().contains("declare no work"), "{p}");
}
