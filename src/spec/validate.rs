//! Field rules: everything that can be judged from the spec alone and the device shape.

use super::{ArraySpec, Dtype, Spec, SpecError};
use crate::device::DeviceModel;

struct Checker<'a> {
    spec: &'a str,
}

impl Checker<'_> {
    fn fail(&self, field: &str, message: String) -> SpecError {
        SpecError::Field {
            spec: self.spec.to_string(),
            field: field.to_string(),
            message,
        }
    }

    fn positive(&self, field: &str, v: usize) -> Result<(), SpecError> {
        if v == 0 {
            return Err(self.fail(field, "must be at least 1".into()));
        }
        Ok(())
    }

    /// `total` must split into whole `parts` (names both fields and the remainder).
    fn divides(
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

    fn array(&self, a: &ArraySpec, dev: &DeviceModel) -> Result<(), SpecError> {
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

    fn depth(&self, depth: u32) -> Result<(), SpecError> {
        if !(1..=8).contains(&depth) {
            return Err(self.fail("depth", format!("{depth} is outside 1..=8")));
        }
        Ok(())
    }

    fn dtype_in(&self, dtype: Dtype, allowed: &[Dtype], op: &str) -> Result<(), SpecError> {
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
}

/// Rows-per-core split shared by the row-wise ops: `rows` into tiles of `tile_rows`, spread
/// evenly over every core.
fn rowwise(
    c: &Checker,
    rows: usize,
    cols: usize,
    tile_rows: usize,
    array: &ArraySpec,
) -> Result<(), SpecError> {
    c.positive("shape.rows", rows)?;
    c.positive("shape.cols", cols)?;
    c.positive("tile_rows", tile_rows)?;
    c.divides("shape.rows", rows, tile_rows, "tile_rows")?;
    let cores = (array.columns * array.cores_per_column) as usize;
    c.divides(
        "shape.rows",
        rows,
        tile_rows * cores,
        "tile_rows x columns x cores_per_column",
    )
}

pub(super) fn check_fields(spec: &Spec, dev: &DeviceModel) -> Result<(), SpecError> {
    let c = Checker { spec: spec.name() };
    match spec {
        Spec::Matmul(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::Int8, Dtype::Bf16], "matmul")?;
            match (s.dtype, &s.requant) {
                (Dtype::Int8, None) => {
                    return Err(c.fail(
                        "requant",
                        "int8 matmul needs [requant] shift and scale to map int32 sums to int8"
                            .into(),
                    ))
                }
                (Dtype::Bf16, Some(_)) => {
                    return Err(c.fail(
                        "requant",
                        "bf16 matmul has no requantisation; remove [requant]".into(),
                    ))
                }
                (_, Some(r)) if !(1..=31).contains(&r.shift) => {
                    return Err(c.fail("requant.shift", format!("{} is outside 1..=31", r.shift)))
                }
                _ => {}
            }
            for (f, v) in [
                ("shape.m", s.shape.m),
                ("shape.k", s.shape.k),
                ("shape.n", s.shape.n),
                ("tile.m", s.tile.m),
                ("tile.k", s.tile.k),
                ("tile.n", s.tile.n),
            ] {
                c.positive(f, v)?;
            }
            let rows = s.array.cores_per_column as usize;
            let cols = s.array.columns as usize;
            // Cores of a column split M (row blocks); columns split N (column blocks).
            c.divides(
                "shape.m",
                s.shape.m,
                s.tile.m * rows,
                "tile.m x cores_per_column",
            )?;
            c.divides("shape.k", s.shape.k, s.tile.k, "tile.k")?;
            c.divides("shape.n", s.shape.n, s.tile.n * cols, "tile.n x columns")?;
        }
        Spec::Gelu(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::Bf16, Dtype::F32], "gelu")?;
            rowwise(&c, s.shape.rows, s.shape.cols, s.tile_rows, &s.array)?;
            let t = &s.table;
            if t.step.is_nan() || t.step <= 0.0 || !t.step.is_finite() {
                return Err(c.fail("table.step", format!("{} must be > 0", t.step)));
            }
            if t.max.is_nan() || t.min.is_nan() || t.max <= t.min {
                return Err(c.fail(
                    "table.max",
                    format!("{} must exceed table.min = {}", t.max, t.min),
                ));
            }
            let entries = (t.max - t.min) / t.step;
            if (entries - entries.round()).abs() > 1e-6 {
                return Err(c.fail(
                    "table.step",
                    format!(
                        "{} does not divide the range {}..{} into whole steps ({entries:.3})",
                        t.step, t.min, t.max
                    ),
                ));
            }
            let entries = entries.round() as usize + 1;
            // The table is f32 in core memory next to the buffers; cap it at 16 KiB.
            if entries * 4 > 16 * 1024 {
                return Err(c.fail(
                    "table.step",
                    format!(
                        "table needs {entries} entries = {} bytes, limit 16384 bytes",
                        entries * 4
                    ),
                ));
            }
        }
        Spec::Softmax(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::Bf16, Dtype::F32], "softmax")?;
            rowwise(&c, s.shape.rows, s.shape.cols, s.tile_rows, &s.array)?;
        }
        Spec::Layernorm(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::Bf16, Dtype::F32], "layernorm")?;
            rowwise(&c, s.shape.rows, s.shape.cols, s.tile_rows, &s.array)?;
            if !(s.epsilon > 0.0 && s.epsilon < 1.0) {
                return Err(c.fail("epsilon", format!("{} is outside (0, 1)", s.epsilon)));
            }
        }
        Spec::Attention(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::Bf16, Dtype::F32], "attention")?;
            for (f, v) in [
                ("heads", s.heads),
                ("q_len", s.q_len),
                ("kv_len", s.kv_len),
                ("head_dim", s.head_dim),
                ("q_tile", s.q_tile),
                ("kv_tile", s.kv_tile),
            ] {
                c.positive(f, v)?;
            }
            c.divides("q_len", s.q_len, s.q_tile, "q_tile")?;
            c.divides("kv_len", s.kv_len, s.kv_tile, "kv_tile")?;
            let cores = (s.array.columns * s.array.cores_per_column) as usize;
            // One head per core at a time; heads are dealt to cores round-robin.
            c.divides("heads", s.heads, cores, "columns x cores_per_column")?;
            // Q/O patterns repeat over q blocks and KV patterns over kv blocks in the
            // outermost dimension of a shim BD, which counts at most 64 iterations.
            for (field, blocks) in [
                ("q_tile", s.q_len / s.q_tile),
                ("kv_tile", s.kv_len / s.kv_tile),
            ] {
                if blocks > crate::ops::SHIM_MAX_REPEAT {
                    return Err(c.fail(
                        field,
                        format!(
                            "{blocks} blocks exceed the {} repeats of a shim buffer descriptor",
                            crate::ops::SHIM_MAX_REPEAT
                        ),
                    ));
                }
            }
            if s.causal && s.q_len != s.kv_len {
                return Err(c.fail(
                    "causal",
                    format!(
                        "a causal mask needs q_len == kv_len (got {} and {})",
                        s.q_len, s.kv_len
                    ),
                ));
            }
            if let Some(scale) = s.scale {
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(c.fail("scale", format!("{scale} must be a positive number")));
                }
            }
        }
        Spec::Mel(s) => {
            c.array(&s.array, dev)?;
            c.depth(s.depth)?;
            c.dtype_in(s.dtype, &[Dtype::F32], "mel")?;
            for (f, v) in [
                ("frames", s.frames),
                ("n_fft", s.n_fft),
                ("hop", s.hop),
                ("n_mels", s.n_mels),
                ("frame_tile", s.frame_tile),
            ] {
                c.positive(f, v)?;
            }
            // The kernel's tables are Whisper's front end (ops::mel): fixed n_fft/hop/rate.
            for (field, got, want) in [
                ("n_fft", s.n_fft, crate::ops::mel::N_FFT),
                ("hop", s.hop, crate::ops::mel::HOP),
                (
                    "sample_rate",
                    s.sample_rate as usize,
                    crate::ops::mel::SAMPLE_RATE as usize,
                ),
            ] {
                if got != want {
                    return Err(c.fail(
                        field,
                        format!("{got} is not Whisper's {want} (the only front end supported)"),
                    ));
                }
            }
            if s.n_mels != 80 && s.n_mels != 128 {
                return Err(c.fail(
                    "n_mels",
                    format!(
                        "{} is not one of Whisper's mel counts (80 or 128)",
                        s.n_mels
                    ),
                ));
            }
            if s.hop > s.n_fft {
                return Err(c.fail("hop", format!("{} exceeds n_fft = {}", s.hop, s.n_fft)));
            }
            if s.n_mels > s.n_fft / 2 + 1 {
                return Err(c.fail(
                    "n_mels",
                    format!("{} exceeds the {} FFT bins", s.n_mels, s.n_fft / 2 + 1),
                ));
            }
            let cores = (s.array.columns * s.array.cores_per_column) as usize;
            c.divides(
                "frames",
                s.frames,
                s.frame_tile * cores,
                "frame_tile x columns x cores_per_column",
            )?;
        }
    }
    Ok(())
}
