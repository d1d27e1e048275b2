//! Every constant of the performance model, with where it comes from. Rates that are
//! properties of the target (MAC rates, clock, columns) are in [`crate::device`]; what is
//! here is what the device model does not hold: stream widths, per-call costs, dispatch.
//! The derivation and the calibration are in docs/perf-model.md.

use crate::device::{Arch, DeviceModel};

/// Bytes a cycle one shim DMA channel moves in one direction. AMD UG1603 ("Performance
/// Comparison Between AI Engine/PL and AI Engine/NoC Interfaces"): the AIE-ML NoC interface
/// tile's DMA has two 32-bit streams each way (4 B/cycle a channel); AIE-ML v2's are 64-bit
/// (8 B/cycle).
pub fn shim_bytes_per_cycle(device: &DeviceModel) -> f64 {
    match device.arch {
        Arch::Aie2 => 4.0,
        Arch::Aie2p => 8.0,
    }
}

/// Bytes a cycle of one memtile or core DMA channel: the stream switch ports are 32 bits
/// (AM020, "AIE-ML Memory Tile Overview and Features": 6 x 32-bit stream interfaces per
/// direction). Kept at 4 B/cycle on AIE-ML v2 as well (no published figure says otherwise).
pub const TILE_STREAM_BYTES_PER_CYCLE: f64 = 4.0;

/// Memtile memory bandwidth, bytes a second each way (AM020: "up to 30 GB/s read and
/// 30 GB/s write in parallel per memory tile").
pub const MEMTILE_BYTES_PER_SECOND: f64 = 30e9;

/// Bytes one vector load unit reads a cycle (AM020, AIE-ML: two 256-bit load units and one
/// 256-bit store unit per core).
pub const LOAD_BYTES_PER_CYCLE: f64 = 32.0;
/// Load units per core.
pub const LOAD_UNITS: f64 = 2.0;
/// Bytes the store unit writes a cycle.
pub const STORE_BYTES_PER_CYCLE: f64 = 32.0;

/// Cycles from the first `mmul` of an accumulator block to its result being writable: the
/// MAC pipeline depth the k loop cannot hide, paid once per accumulator block (an estimate
/// of the AIE-ML VMAC latency; AM020 gives the pipeline, not a single number).
pub const MMUL_PIPELINE_CYCLES: f64 = 6.0;

/// Cycles of one kernel call outside its loops: the call, the lock acquire/release pairs
/// around it and the loop set-up (an estimate; a core lock operation is a few cycles).
pub const KERNEL_CALL_CYCLES: f64 = 40.0;

/// Cycles per scalar multiply-accumulate of a body that falls back to scalar loops: two
/// loads, a multiply and an add on the scalar unit, with the loads in parallel slots.
pub const SCALAR_MAC_CYCLES: f64 = 2.0;

/// One XRT run's host overhead in seconds: the instruction buffer submit, the kernel start
/// and the completion wait. Published measurements: an empty mlir-aie kernel ~45 us and a
/// simple one ~60 us from `kernel()` to `wait()` (Xilinx/mlir-aie issue #2381, Xilinx/XRT
/// #9018); mlir-aie's vector_reduce_add test at 107-148 us a run (mlir-aie #2944). We take
/// 80 us, the middle of the 50-110 us these span once a kernel moves any data.
pub const DISPATCH_SECONDS: f64 = 80e-6;
