//! [`KernelWork`]: what one call of a kernel body computes, declared by the op that writes
//! the body. Bodies are MLIR emitters, so the amount of work is not data a design could be
//! asked for; the op knows it (block sizes, rows, lanes) and states it here for the
//! performance model ([`crate::perf`]).

/// Lanes of one AIE-ML vector op on f32 data (a 512-bit register; bf16 rows widen to it).
pub const F32_LANES: usize = 16;

/// Multiply-accumulates done through the `mmul` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacWork {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub int8: bool,
    /// The `mmul` block `[bm, bk, bn]` of the body's `vector.contract`s; `None` when the body
    /// falls back to scalar loops (one MAC a cycle).
    pub block: Option<[usize; 3]>,
}

impl MacWork {
    pub fn macs(&self) -> u64 {
        (self.m * self.k * self.n) as u64
    }
}

/// The work of one kernel call: MACs, vector ops (one issue each) and scalar ops.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KernelWork {
    pub mac: Option<MacWork>,
    /// Vector instructions issued (each up to [`F32_LANES`] elements).
    pub vector_ops: u64,
    /// Scalar instructions issued (one element each).
    pub scalar_ops: u64,
    /// False for a body whose op declared nothing: the model then assumes one vector op per
    /// 16 elements of its largest buffer and says so.
    pub declared: bool,
}

impl KernelWork {
    /// Nothing declared (the default of [`crate::ops::kernel`]).
    #[allow(non_upper_case_globals)]
    pub const Undeclared: KernelWork = KernelWork {
        mac: None,
        vector_ops: 0,
        scalar_ops: 0,
        declared: false,
    };

    pub fn mac(mac: MacWork) -> Self {
        Self {
            mac: Some(mac),
            declared: true,
            ..Self::default()
        }
    }

    pub fn vector(ops: u64) -> Self {
        Self {
            vector_ops: ops,
            declared: true,
            ..Self::default()
        }
    }

    pub fn scalar(ops: u64) -> Self {
        Self {
            scalar_ops: ops,
            declared: true,
            ..Self::default()
        }
    }

    /// `rows` rows of `cols` elements with `ops_per_chunk` ops per [`F32_LANES`]-wide chunk:
    /// vector ops when the lanes divide the row (as `kir::Lanes::f32_row` decides), else the
    /// same ops once per element on the scalar unit.
    pub fn rows(rows: usize, cols: usize, ops_per_chunk: f64) -> Self {
        Self::rows_vectorised(rows, cols, ops_per_chunk, cols.is_multiple_of(F32_LANES))
    }

    /// [`KernelWork::rows`] with the vector/scalar choice made by the body.
    pub fn rows_vectorised(rows: usize, cols: usize, ops_per_chunk: f64, vector: bool) -> Self {
        let elems = (rows * cols) as f64;
        if vector {
            Self::vector((elems / F32_LANES as f64 * ops_per_chunk).ceil() as u64)
        } else {
            Self::scalar((elems * ops_per_chunk).ceil() as u64)
        }
    }

    /// The sum of two works (a body with a vector part and a scalar part).
    pub fn plus(self, other: KernelWork) -> Self {
        Self {
            mac: self.mac.or(other.mac),
            vector_ops: self.vector_ops + other.vector_ops,
            scalar_ops: self.scalar_ops + other.scalar_ops,
            declared: self.declared || other.declared,
        }
    }
}
