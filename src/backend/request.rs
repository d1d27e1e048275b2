//! What `aiec build` asks the backend for, and the facts derived from it (AIE generation,
//! partition shape).

use std::path::PathBuf;

use super::BackendError;

/// The AIE architecture generation of a device: it picks Peano's target and aievec's
/// lowering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AieTarget {
    /// AIE-ML, `npu1` (Phoenix, Hawk Point).
    Aie2,
    /// AIE-ML v2, `npu2` (Strix, Krackan).
    Aie2p,
}

impl AieTarget {
    /// Lower-case name, as `--march=` and pass options spell it.
    pub const fn name(self) -> &'static str {
        match self {
            AieTarget::Aie2 => "aie2",
            AieTarget::Aie2p => "aie2p",
        }
    }

    /// Peano's target triple (aiecc: `aie_target.lower() + "-none-unknown-elf"`).
    pub const fn peano_triple(self) -> &'static str {
        match self {
            AieTarget::Aie2 => "aie2-none-unknown-elf",
            AieTarget::Aie2p => "aie2p-none-unknown-elf",
        }
    }
}

/// The shape of a device as the xclbin partition describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    pub target: AieTarget,
    /// Columns of the device (the partition's `column_width`).
    pub columns: u32,
    /// Rows including shim (0) and memtile (1); cores are rows 2..rows.
    pub rows: u32,
    /// Whether this is a whole-array device (`npu1`, `npu2`) rather than a column slice.
    pub whole_array: bool,
}

/// Looks up a device name as aie-opt spells it: `npu1`, `npu1_1col`..`npu1_4col`, `npu2`,
/// `npu2_1col`..`npu2_8col`.
pub fn device_info(device: &str) -> Option<DeviceInfo> {
    let (target, full_columns, rest) = if let Some(rest) = device.strip_prefix("npu1") {
        (AieTarget::Aie2, 4, rest)
    } else if let Some(rest) = device.strip_prefix("npu2") {
        (AieTarget::Aie2p, 8, rest)
    } else {
        return None;
    };
    let rows = 6;
    if rest.is_empty() {
        return Some(DeviceInfo {
            target,
            columns: full_columns,
            rows,
            whole_array: true,
        });
    }
    let n: u32 = rest.strip_prefix('_')?.strip_suffix("col")?.parse().ok()?;
    if n == 0 || n > full_columns {
        return None;
    }
    Some(DeviceInfo {
        target,
        columns: n,
        rows,
        whole_array: false,
    })
}

/// Everything the backend needs to plan a build of one `design.mlir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The design in aie-opt syntax (written by `aiec build` before calling the backend).
    pub design_mlir: PathBuf,
    /// The artefact directory; every intermediate and output goes here.
    pub out_dir: PathBuf,
    /// Device as aie-opt spells it (`npu1`, `npu2`, `npu1_2col`, ...).
    pub device: String,
    /// Symbol of the `aie.device` op; mlir-aie names an unnamed device `main`.
    pub device_symbol: String,
    /// Runtime sequence to turn into `insts.bin`; `None` lets aie-translate take the only one.
    pub sequence_name: Option<String>,
    /// Core tiles `(col, row)` that run code; each gets its own ELF.
    pub cores: Vec<(u32, u32)>,
    /// Kernel name in the xclbin (what the host opens with `xrt::kernel`).
    pub kernel_name: String,
    /// `dpu_kernel_id` tying the kernel to the PDI.
    pub kernel_id: String,
    /// Kernel instance name in the xclbin.
    pub instance_name: String,
    /// Partition width in columns; must equal the device's column count.
    pub columns: u32,
    /// Host buffer arguments (`bo0..`); the xclbin declares at least aiecc's 5.
    pub host_buffers: u32,
    /// Optimisation level for Peano (`-O<n>`), 0..=3.
    pub opt_level: u8,
}

impl BuildRequest {
    /// A request with aiecc's defaults (kernel `MLIR_AIE`, instance `MLIRAIE`, id `0x901`,
    /// device symbol `main`, `-O2`, partition as wide as the device).
    pub fn new(
        design_mlir: impl Into<PathBuf>,
        out_dir: impl Into<PathBuf>,
        device: &str,
        cores: Vec<(u32, u32)>,
    ) -> Result<Self, BackendError> {
        let info = device_info(device).ok_or_else(|| unknown_device(device))?;
        let req = BuildRequest {
            design_mlir: design_mlir.into(),
            out_dir: out_dir.into(),
            device: device.to_string(),
            device_symbol: "main".to_string(),
            sequence_name: None,
            cores,
            kernel_name: "MLIR_AIE".to_string(),
            kernel_id: "0x901".to_string(),
            instance_name: "MLIRAIE".to_string(),
            columns: info.columns,
            host_buffers: 5,
            opt_level: 2,
        };
        req.validate()?;
        Ok(req)
    }

    /// The request for a DSL [`Design`](crate::design::Design) written to `design_mlir`:
    /// its device, one core per worker, one `bo` argument per host buffer.
    pub fn for_design(
        design: &crate::design::Design,
        design_mlir: impl Into<PathBuf>,
        out_dir: impl Into<PathBuf>,
    ) -> Result<Self, BackendError> {
        let cores = design
            .workers
            .iter()
            .map(|w| (w.tile.col, w.tile.row))
            .collect();
        let mut req = Self::new(design_mlir, out_dir, &design.device, cores)?;
        req.host_buffers = u32::try_from(design.sequence.args.len()).unwrap_or(u32::MAX);
        req.validate()?;
        Ok(req)
    }

    /// The device's facts; errors on a device name aie-opt would not accept.
    pub fn device_info(&self) -> Result<DeviceInfo, BackendError> {
        device_info(&self.device).ok_or_else(|| unknown_device(&self.device))
    }

    /// Checks everything a tool would otherwise reject much later and less clearly.
    pub fn validate(&self) -> Result<(), BackendError> {
        let info = self.device_info()?;
        let invalid = |message: String| Err(BackendError::InvalidRequest { message });
        if self.columns != info.columns {
            return invalid(format!(
                "partition width {} does not match device `{}`, which has {} column(s)",
                self.columns, self.device, info.columns
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &(col, row) in &self.cores {
            if col >= info.columns || row < 2 || row >= info.rows {
                return invalid(format!(
                    "core tile ({col}, {row}) is not a compute tile of `{}` (columns 0..{}, rows 2..{})",
                    self.device, info.columns, info.rows
                ));
            }
            if !seen.insert((col, row)) {
                return invalid(format!("core tile ({col}, {row}) is listed twice"));
            }
        }
        if !is_symbol(&self.device_symbol) {
            return invalid(format!(
                "device symbol `{}` is not a valid MLIR symbol name",
                self.device_symbol
            ));
        }
        if let Some(seq) = &self.sequence_name {
            if !is_symbol(seq) {
                return invalid(format!(
                    "sequence name `{seq}` is not a valid MLIR symbol name"
                ));
            }
        }
        for (what, value) in [
            ("kernel name", &self.kernel_name),
            ("instance name", &self.instance_name),
        ] {
            if !is_symbol(value) {
                return invalid(format!(
                    "{what} `{value}` must be a non-empty identifier (letters, digits, `_`)"
                ));
            }
        }
        let id = self.kernel_id.strip_prefix("0x").unwrap_or("");
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return invalid(format!(
                "kernel id `{}` must be a hex number like 0x901",
                self.kernel_id
            ));
        }
        self.start_columns()?;
        if self.opt_level > 3 {
            return invalid(format!("opt level {} is not 0..=3", self.opt_level));
        }
        if self.design_mlir.as_os_str().is_empty() || self.out_dir.as_os_str().is_empty() {
            return invalid("design path and artefact directory must be given".to_string());
        }
        Ok(())
    }

    /// `start_columns` of the xclbin partition, as aiecc computes them: 0 for a whole-array
    /// device, otherwise every start column a slice of this width may be placed at.
    pub fn start_columns(&self) -> Result<Vec<u32>, BackendError> {
        let info = self.device_info()?;
        let starts: Vec<u32> = if info.whole_array {
            vec![0]
        } else {
            (1..6u32.saturating_sub(info.columns)).collect()
        };
        // xclbinutil rejects a partition without start columns.
        if starts.is_empty() {
            return Err(BackendError::InvalidRequest {
                message: format!(
                    "device `{}`: a {}-column slice has no start column under aiecc's \
                     placement rule (columns 1..5); use the whole device",
                    self.device, info.columns
                ),
            });
        }
        Ok(starts)
    }
}

fn unknown_device(device: &str) -> BackendError {
    BackendError::InvalidRequest {
        message: format!(
            "unknown device `{device}` (expected npu1, npu1_1col..npu1_4col, npu2, npu2_1col..npu2_8col)"
        ),
    }
}

/// MLIR bare identifiers: `[A-Za-z_][A-Za-z0-9_$.]*`.
fn is_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_table() {
        let npu1 = device_info("npu1").unwrap();
        assert_eq!(
            (npu1.target, npu1.columns, npu1.whole_array),
            (AieTarget::Aie2, 4, true)
        );
        let npu2 = device_info("npu2").unwrap();
        assert_eq!((npu2.target, npu2.columns), (AieTarget::Aie2p, 8));
        assert_eq!(device_info("npu1_2col").unwrap().columns, 2);
        assert_eq!(device_info("npu2_3col").unwrap().target, AieTarget::Aie2p);
        for bad in [
            "npu3",
            "npu1_0col",
            "npu1_5col",
            "npu1_col",
            "npu1x",
            "xcvc1902",
            "",
        ] {
            assert!(device_info(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn start_columns_follow_aiecc() {
        let whole = BuildRequest::new("d.mlir", "out", "npu1", vec![]).unwrap();
        assert_eq!(whole.start_columns().unwrap(), vec![0]);
        let one = BuildRequest::new("d.mlir", "out", "npu1_1col", vec![]).unwrap();
        assert_eq!(one.start_columns().unwrap(), vec![1, 2, 3, 4]);
        let err = BuildRequest::new("d.mlir", "out", "npu2_5col", vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("5-column slice has no start column"), "{err}");
    }
}
