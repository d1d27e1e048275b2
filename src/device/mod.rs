//! Target models of the Ryzen AI NPUs (AIE-ML arrays): how many columns a design may use,
//! which row is what, and the per-tile resources the spec validator checks against.
//!
//! Sources (facts, not code):
//! - Array shape and device names: mlir-aie `include/aie/Dialect/AIE/IR/AIETargetModel.h`
//!   (`NPU1TargetModel`: 4 usable columns, 6 rows = shim row 0, memtile row 1, core rows 2-5;
//!   `NPU2TargetModel`: 8 columns, same rows) and `AIETargetModel.cpp` (`npu1_1col`..
//!   `npu1_3col`, `npu2_1col`..`npu2_7col` are the same arrays restricted to fewer columns).
//! - Memories, locks, BDs, DMA channels: AMD AM020 "Versal AI Engine ML architecture"
//!   (core tile: 64 KiB data memory, 16 locks, 16 BDs, 2 S2MM + 2 MM2S channels; memory tile:
//!   512 KiB, 64 locks, 48 BDs, 6 S2MM + 6 MM2S; shim: 16 locks, 16 BDs, 2 + 2 channels),
//!   matching `getNumLocks`/`getNumBDs`/`getNumSourceSwitchboxConnections` in the target model.
//! - MAC rates: AM020 "AIE-ML vector unit": 256 int8 x int8 MACs/cycle, 128 bf16 MACs/cycle
//!   per core (AIE2P/Strix doubles int8 to 512 per the XDNA2 material; we keep the
//!   conservative AIE-ML figure for npu2 bf16 and use 512 for its int8).
//! - Clocks: Phoenix NPU ~1.0 GHz, Strix NPU ~1.8 GHz (public product figures, approximate).

use std::fmt;

/// Which generation of the AIE array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// AIE-ML (Phoenix, Hawk Point): `npu1*`.
    Aie2,
    /// AIE-ML v2 (Strix, Krackan): `npu2*`.
    Aie2p,
}

/// Resources of one tile kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileResources {
    /// Data memory in bytes (0 for the shim, which has none).
    pub memory_bytes: usize,
    pub locks: u32,
    pub bds: u32,
    /// Stream-to-memory (incoming) DMA channels.
    pub s2mm_channels: u32,
    /// Memory-to-stream (outgoing) DMA channels.
    pub mm2s_channels: u32,
}

/// One NPU target as aie-opt names it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceModel {
    /// The `aie.device(...)` spelling: `npu1`, `npu1_2col`, `npu2`, ...
    pub name: &'static str,
    pub arch: Arch,
    /// Columns a design may place tiles in (0..columns).
    pub columns: u32,
    /// Total rows: shim row 0, memtile row 1, core rows 2..rows.
    pub rows: u32,
    pub shim_row: u32,
    pub memtile_row: u32,
    pub first_core_row: u32,
    pub core: TileResources,
    pub memtile: TileResources,
    pub shim: TileResources,
    /// int8 x int8 multiply-accumulates per cycle per core.
    pub int8_macs_per_cycle: u32,
    /// bf16 x bf16 multiply-accumulates per cycle per core.
    pub bf16_macs_per_cycle: u32,
    /// Array clock in MHz (approximate, for throughput estimates only).
    pub clock_mhz: u32,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown device `{name}`; known devices: {known}")]
    Unknown { name: String, known: String },
}

const CORE: TileResources = TileResources {
    memory_bytes: 64 * 1024,
    locks: 16,
    bds: 16,
    s2mm_channels: 2,
    mm2s_channels: 2,
};

const MEMTILE: TileResources = TileResources {
    memory_bytes: 512 * 1024,
    locks: 64,
    bds: 48,
    s2mm_channels: 6,
    mm2s_channels: 6,
};

const SHIM: TileResources = TileResources {
    memory_bytes: 0,
    locks: 16,
    bds: 16,
    s2mm_channels: 2,
    mm2s_channels: 2,
};

/// Every device name we accept, in the order they are listed in errors.
pub const KNOWN_DEVICES: &[&str] = &[
    "npu1",
    "npu1_1col",
    "npu1_2col",
    "npu1_3col",
    "npu1_4col",
    "npu2",
    "npu2_1col",
    "npu2_2col",
    "npu2_3col",
    "npu2_4col",
    "npu2_5col",
    "npu2_6col",
    "npu2_7col",
];

impl DeviceModel {
    /// The model for a device name (`npu1`, `npu1_2col`, `npu2`, ...).
    pub fn get(name: &str) -> Result<DeviceModel, DeviceError> {
        let known =
            KNOWN_DEVICES
                .iter()
                .find(|k| **k == name)
                .ok_or_else(|| DeviceError::Unknown {
                    name: name.to_string(),
                    known: KNOWN_DEVICES.join(", "),
                })?;
        let (arch, full_columns, rest) = if let Some(rest) = known.strip_prefix("npu1") {
            (Arch::Aie2, 4, rest)
        } else {
            let rest = known.strip_prefix("npu2").unwrap_or_default();
            (Arch::Aie2p, 8, rest)
        };
        // "_Ncol" restricts the array to its first N columns.
        let columns = match rest.strip_prefix('_').and_then(|r| r.strip_suffix("col")) {
            Some(n) => n.parse::<u32>().unwrap_or(full_columns),
            None => full_columns,
        };
        let (int8, bf16, clock) = match arch {
            Arch::Aie2 => (256, 128, 1000),
            Arch::Aie2p => (512, 128, 1800),
        };
        Ok(DeviceModel {
            name: known,
            arch,
            columns,
            rows: 6,
            shim_row: 0,
            memtile_row: 1,
            first_core_row: 2,
            core: CORE,
            memtile: MEMTILE,
            shim: SHIM,
            int8_macs_per_cycle: int8,
            bf16_macs_per_cycle: bf16,
            clock_mhz: clock,
        })
    }

    /// Core rows per column (4 on every NPU).
    pub fn cores_per_column(&self) -> u32 {
        self.rows - self.first_core_row
    }

    /// Peak MACs per second of the whole array for one element type.
    pub fn peak_macs_per_second(&self, int8: bool) -> f64 {
        let per_core = if int8 {
            self.int8_macs_per_cycle
        } else {
            self.bf16_macs_per_cycle
        };
        per_core as f64
            * (self.columns * self.cores_per_column()) as f64
            * self.clock_mhz as f64
            * 1e6
    }
}

impl fmt::Display for DeviceModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} columns x {} core rows)",
            self.name,
            self.columns,
            self.cores_per_column()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npu1_is_four_columns_of_four_cores() {
        let d = DeviceModel::get("npu1").unwrap();
        assert_eq!(d.columns, 4);
        assert_eq!(d.cores_per_column(), 4);
        assert_eq!(d.core.memory_bytes, 65536);
        assert_eq!(d.memtile.memory_bytes, 524288);
        assert_eq!(d.memtile.locks, 64);
        assert_eq!(d.memtile.bds, 48);
        assert_eq!(d.int8_macs_per_cycle, 256);
        assert_eq!(d.bf16_macs_per_cycle, 128);
    }

    #[test]
    fn column_restricted_devices() {
        assert_eq!(DeviceModel::get("npu1_1col").unwrap().columns, 1);
        assert_eq!(DeviceModel::get("npu1_3col").unwrap().columns, 3);
        assert_eq!(DeviceModel::get("npu2").unwrap().columns, 8);
        assert_eq!(DeviceModel::get("npu2_5col").unwrap().columns, 5);
        assert_eq!(DeviceModel::get("npu2").unwrap().arch, Arch::Aie2p);
    }

    #[test]
    fn unknown_device_lists_the_known_ones() {
        let err = DeviceModel::get("npu3").unwrap_err().to_string();
        assert!(err.contains("npu3"), "{err}");
        assert!(err.contains("npu1, npu1_1col"), "{err}");
        assert!(err.contains("npu2_7col"), "{err}");
    }
}
