//! Field rules: the checks op modules make of their spec fields against the device shape.
//! Every failure names the spec, the field (its TOML path) and the rule.

use super::{ArraySpec, Dtype, SpecError};
use crate::device::DeviceModel;
use crate::ops::registry::SpecCommon;

/// Checks that each listed field of `$spec` is at least 1, in the order given, naming it by
/// its TOML path: `check_positive!(f, self, [beams, shape.m])` checks `self.beams` as
/// `beams`, then `self.shape.m` as `shape.m`. The path is written once, so the name in the
/// error cannot drift from the field checked.
macro_rules! check_positive {
    ($f:expr, $spec:expr, [$($head:ident $(. $tail:ident)*),+ $(,)?]) => {
        $(
            $f.positive(
                concat!(stringify!($head) $(, ".", stringify!($tail))*),
                $spec.$head $(.$tail)*,
            )?;
        )+
    };
}
pub(crate) use check_positive;

/// Checks the fields of one spec (named in every error).
pub struct Fields<'a> {
    spec: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(spec: &'a str) -> Self {
        Self { spec }
    }

    pub fn fail(&self, field: &str, message: String) -> SpecError {
        SpecError::Field {
            spec: self.spec.to_string(),
            field: field.to_string(),
            message,
        }
    }

    pub fn positive(&self, field: &str, v: usize) -> Result<(), SpecError> {
        if v == 0 {
            return Err(self.fail(field, "must be at least 1".into()));
        }
        Ok(())
    }

    /// `total` must split into whole `parts` (names both fields and the remainder).
    pub fn divides(
        &self,
        field: &str,
        total: usize,
        by: usize,
        by_desc: &str,
    ) -> Result<(), SpecError> {
        if by == 0 || !total.is_multiple_of(by) {
            return Err(self.fail(
                field,
                format!(
                    "{total} is not divisible by {by_desc} = {by} (remainder {})",
                    if by == 0 { total } else { total % by }
                ),
            ));
        }
        Ok(())
    }

    pub fn array(&self, a: &ArraySpec, dev: &DeviceModel) -> Result<(), SpecError> {
        if a.columns == 0 || a.columns > dev.columns {
            return Err(self.fail(
                "array.columns",
                format!(
                    "{} columns requested, device {} has {} (1..={})",
                    a.columns, dev.name, dev.columns, dev.columns
                ),
            ));
        }
        let rows = dev.cores_per_column();
        if a.cores_per_column == 0 || a.cores_per_column > rows {
            return Err(self.fail(
                "array.cores_per_column",
                format!(
                    "{} cores per column requested, device {} has {} core rows",
                    a.cores_per_column, dev.name, rows
                ),
            ));
        }
        Ok(())
    }

    pub fn depth(&self, depth: u32) -> Result<(), SpecError> {
        if !(1..=8).contains(&depth) {
            return Err(self.fail("depth", format!("{depth} is outside 1..=8")));
        }
        Ok(())
    }

    pub fn dtype_in(&self, dtype: Dtype, allowed: &[Dtype], op: &str) -> Result<(), SpecError> {
        if !allowed.contains(&dtype) {
            let names: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
            return Err(self.fail(
                "dtype",
                format!(
                    "{op} does not support {}; supported: {}",
                    dtype.name(),
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    }
    /// Rows-per-core split shared by the row-wise ops: `rows` into tiles of `tile_rows`,
    /// spread evenly over every core.
    fn rowwise(
        &self,
        shape: &super::RowsShape,
        tile_rows: usize,
        array: &ArraySpec,
    ) -> Result<(), SpecError> {
        self.positive("shape.rows", shape.rows)?;
        self.positive("shape.cols", shape.cols)?;
        self.positive("tile_rows", tile_rows)?;
        self.divides("shape.rows", shape.rows, tile_rows, "tile_rows")?;
        self.divides(
            "shape.rows",
            shape.rows,
            tile_rows * array.cores(),
            "tile_rows x columns x cores_per_column",
        )
    }

    /// The field rules of a row-wise op (`rows x cols` activations in `tile_rows`-row tiles,
    /// bf16 or f32): placement, depth, dtype and the row split.
    pub fn rowwise_op(
        &self,
        op: &str,
        common: SpecCommon<'_>,
        shape: &super::RowsShape,
        tile_rows: usize,
        device: &DeviceModel,
    ) -> Result<(), SpecError> {
        self.common(common, &[Dtype::Bf16, Dtype::F32], op, device)?;
        self.rowwise(shape, tile_rows, &common.array)
    }

    /// The checks every spec shares: the array fits the device, the FIFO depth, and `dtype`
    /// is one `op` supports.
    pub fn common(
        &self,
        common: SpecCommon<'_>,
        dtypes: &[Dtype],
        op: &str,
        device: &DeviceModel,
    ) -> Result<(), SpecError> {
        self.array(&common.array, device)?;
        self.depth(common.depth)?;
        self.dtype_in(common.dtype, dtypes, op)
    }
}
