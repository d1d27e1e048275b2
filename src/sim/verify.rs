//! Spec-level checking: build the op's design from its spec, draw inputs, simulate, and compare
//! the outputs with the op's float64 reference under the bound documented in the op's module.

use std::time::{Duration, Instant};

use super::inputs::InputGen;
use super::{HostData, Prepared, SimError, SimOptions, SimRun};
use crate::spec::{Spec, SpecError};

#[derive(thiserror::Error, Debug)]
pub enum VerifyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Timeout(#[from] Expired),
    #[error("spec `{spec}` needs about {needed} of memory (host buffers, random inputs and the float64 reference) but only {available} is available; make the shape smaller")]
    Memory {
        spec: String,
        needed: Bytes,
        available: Bytes,
    },
}

/// The end of one check's wall-clock budget (`aiec sim --timeout`). Work that can take long
/// (the float64 references of the O(n^3) ops) runs in blocks and looks at it in between, so
/// the limit ends the check itself instead of leaving it running behind the error.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    limit: Duration,
}

/// A check cut short by its [`Deadline`].
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("the check exceeded its time limit of {} s while {phase}", limit.as_secs_f64())]
pub struct Expired {
    pub limit: Duration,
    /// What was running: `computing the float64 reference`, `simulating`, ...
    pub phase: &'static str,
}

impl Deadline {
    /// `limit` from now.
    pub fn new(limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            limit,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.started.elapsed())
    }

    /// `Err` once the limit has passed, naming `phase` as the work cut short.
    pub fn check(&self, phase: &'static str) -> Result<(), Expired> {
        if self.started.elapsed() < self.limit {
            Ok(())
        } else {
            Err(Expired {
                limit: self.limit,
                phase,
            })
        }
    }

    /// `rows` rows of `cols` values, each filled by `row(i, out_row)`, with a look at the
    /// deadline before every row: the block size of a lazily computed reference. One row of
    /// a 4096^3 matmul is 16.8M multiply-adds, about 20 ms here.
    pub fn rows<T: Clone + Default>(
        &self,
        rows: usize,
        cols: usize,
        mut row: impl FnMut(usize, &mut [T]),
    ) -> Result<Vec<T>, Expired> {
        let mut out = vec![T::default(); rows * cols];
        for (i, out_row) in out.chunks_mut(cols.max(1)).enumerate().take(rows) {
            self.check(REFERENCE)?;
            row(i, out_row);
        }
        Ok(out)
    }
}

/// The phase a lazily computed reference reports when its deadline passes.
pub const REFERENCE: &str = "computing the float64 reference";

/// A byte count shown in GB/MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0 as f64;
        if b >= 1e9 {
            write!(f, "{:.1} GB", b / 1e9)
        } else {
            write!(f, "{:.1} MB", b / 1e6)
        }
    }
}

/// Bytes per input element beyond its own storage: the ops' references convert inputs to
/// f32 or f64 (the float matmul keeps the values and their absolute values in f32).
const REFERENCE_BYTES_PER_INPUT: u64 = 16;
/// Bytes per output element beyond the simulated buffer and the drained copy: the f64
/// reference, the f64 view of the output, and a per-element bound (the float matmul's
/// `sum |a||b|`).
const REFERENCE_BYTES_PER_OUTPUT: u64 = 24;

/// An upper estimate of the host memory [`check_spec`] needs for `design`: every host buffer
/// (outputs twice: simulated and drained), plus what the inputs' generation and the float64
/// reference keep per element. Checked before anything is allocated.
pub fn memory_estimate(design: &crate::design::Design) -> u64 {
    let (inputs, outputs) = super::io_args(design);
    let args = &design.sequence.args;
    let elements = |a: usize| -> (u64, u64) {
        let ty = &args[a].ty;
        let numel = ty
            .shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d as u64));
        (numel, ty.elem.bytes() as u64)
    };
    let mut total = 0u64;
    for &a in inputs.iter().filter(|&&a| a < args.len()) {
        let (n, bytes) = elements(a);
        total = total.saturating_add(n.saturating_mul(bytes + REFERENCE_BYTES_PER_INPUT));
    }
    for &a in outputs.iter().filter(|&&a| a < args.len()) {
        let (n, bytes) = elements(a);
        total = total.saturating_add(n.saturating_mul(2 * bytes + REFERENCE_BYTES_PER_OUTPUT));
    }
    total
}

/// Memory the kernel would give this process now (`MemAvailable` of `/proc/meminfo`);
/// `None` where that is unknown, and then nothing is refused.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// How the outputs compare with the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub elements: usize,
    pub max_abs_error: f64,
    /// `||y - ref|| / ||ref||`.
    pub rel_l2_error: f64,
    /// For integer outputs: elements equal to the reference.
    pub exact_matches: Option<usize>,
    /// Elements outside the op's bound.
    pub violations: usize,
    /// The worst element relative to its bound: (index, simulated, reference).
    pub worst: Option<(usize, f64, f64)>,
    /// The bound, as documented in the op's module.
    pub bound: String,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.violations == 0
    }

    /// Compares `y` with `reference` element by element; `bound(reference)` is the allowed
    /// absolute error of each element.
    pub fn new(
        y: &[f64],
        reference: &[f64],
        integer: bool,
        bound: &str,
        allowed: impl Fn(usize, f64) -> f64,
    ) -> Self {
        let mut max_abs = 0f64;
        let (mut err2, mut ref2) = (0f64, 0f64);
        let mut exact = 0;
        let mut violations = 0;
        let mut worst: Option<(usize, f64, f64)> = None;
        let mut worst_ratio = 0f64;
        for (i, (&v, &r)) in y.iter().zip(reference).enumerate() {
            let e = (v - r).abs();
            let e = if e.is_nan() { f64::INFINITY } else { e };
            max_abs = max_abs.max(e);
            err2 += e * e;
            ref2 += r * r;
            if v == r {
                exact += 1;
            }
            let limit = allowed(i, r);
            if e > limit {
                violations += 1;
            }
            let ratio = if limit > 0.0 {
                e / limit
            } else if e > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            if ratio > worst_ratio || worst.is_none() {
                worst_ratio = ratio;
                worst = Some((i, v, r));
            }
        }
        Comparison {
            elements: y.len(),
            max_abs_error: max_abs,
            rel_l2_error: if ref2 > 0.0 {
                (err2 / ref2).sqrt()
            } else {
                err2.sqrt()
            },
            exact_matches: integer.then_some(exact),
            violations: violations + reference.len().abs_diff(y.len()),
            worst,
            bound: bound.to_string(),
        }
    }
}

/// Compares the drained outputs with the op's reference: computed alongside the inputs when
/// it is cheap (see [`precomputed`]), or here, in blocks within the [`Deadline`].
pub type Judge = Box<dyn FnOnce(&[HostData], &Deadline) -> Result<Comparison, Expired>>;

/// A judge whose reference is already at hand (an O(elements) one, computed with the
/// inputs), so it needs no deadline.
pub fn precomputed(judge: impl FnOnce(&[HostData]) -> Comparison + 'static) -> Judge {
    Box::new(move |out: &[HostData], _: &Deadline| Ok(judge(out)))
}

/// What an op supplies for `aiec sim`: the design's host inputs, in argument order, and the
/// judge of its outputs (the op's float64 reference under its documented tolerance).
pub struct TestCase {
    pub inputs: Vec<HostData>,
    pub judge: Judge,
}

impl TestCase {
    /// Inputs whose single output is compared element by element with `reference`, each
    /// element allowed `allowed(index, reference)` of absolute error.
    pub fn elementwise(
        inputs: Vec<HostData>,
        reference: Vec<f64>,
        integer: bool,
        bound: &'static str,
        allowed: impl Fn(usize, f64) -> f64 + 'static,
    ) -> Self {
        TestCase {
            inputs,
            judge: precomputed(move |out: &[HostData]| {
                Comparison::new(&out[0].to_f64(), &reference, integer, bound, allowed)
            }),
        }
    }
}

/// A simulated spec and its comparison.
#[derive(Debug, Clone)]
pub struct SpecCheck {
    pub run: SimRun,
    pub comparison: Comparison,
}

/// Builds `spec`'s design (after validating it against its device), simulates it on inputs
/// drawn from `seed`, and compares with the op's reference. `options.timeout` bounds all of
/// it: each phase starts only within the limit, the simulation gets what is left after
/// compilation, and the heavy references stop between row blocks ([`Deadline`]). Only the
/// JIT compilation cannot be interrupted.
pub fn check_spec(spec: &Spec, seed: u64, options: &SimOptions) -> Result<SpecCheck, VerifyError> {
    let deadline = Deadline::new(options.timeout);
    let design = spec.build()?;
    let needed = memory_estimate(&design);
    if let Some(available) = available_memory().filter(|&a| needed > a) {
        return Err(VerifyError::Memory {
            spec: spec.name().to_string(),
            needed: Bytes(needed),
            available: Bytes(available),
        });
    }
    deadline.check("building the design")?;
    let mut gen = InputGen::new(seed);
    let case = spec.op_spec().test_case(&design, &mut gen);
    deadline.check("drawing the inputs")?;
    let mut prepared = Prepared::new(&design, options)?;
    deadline.check("compiling the cores")?;
    prepared.timeout = deadline.remaining();
    let run = prepared.run(case.inputs).map_err(|e| match e {
        SimError::Timeout { .. } => VerifyError::Timeout(Expired {
            limit: options.timeout,
            phase: "simulating",
        }),
        e => e.into(),
    })?;
    let comparison = (case.judge)(&run.outputs, &deadline)?;
    Ok(SpecCheck { run, comparison })
}
