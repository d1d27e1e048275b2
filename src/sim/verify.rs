//! Spec-level checking: build the op's design from its spec, draw inputs, simulate, and compare
//! the outputs with the op's float64 reference under the bound documented in the op's module.

use super::inputs::InputGen;
use super::{HostData, SimError, SimOptions, SimRun};
use crate::spec::{Spec, SpecError};

#[derive(thiserror::Error, Debug)]
pub enum VerifyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("spec `{spec}` needs about {needed} of memory (host buffers, random inputs and the float64 reference) but only {available} is available; make the shape smaller")]
    Memory {
        spec: String,
        needed: Bytes,
        available: Bytes,
    },
}

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

/// Compares the drained outputs with the reference computed alongside the inputs.
pub type Judge = Box<dyn FnOnce(&[HostData]) -> Comparison>;

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
            judge: Box::new(move |out: &[HostData]| {
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
/// drawn from `seed`, and compares with the op's reference.
pub fn check_spec(spec: &Spec, seed: u64, options: &SimOptions) -> Result<SpecCheck, VerifyError> {
    let design = spec.build()?;
    let needed = memory_estimate(&design);
    if let Some(available) = available_memory().filter(|&a| needed > a) {
        return Err(VerifyError::Memory {
            spec: spec.name().to_string(),
            needed: Bytes(needed),
            available: Bytes(available),
        });
    }
    let mut gen = InputGen::new(seed);
    let case = spec.op_spec().test_case(&design, &mut gen);
    let run = super::run_with(&design, case.inputs, options)?;
    let comparison = (case.judge)(&run.outputs);
    Ok(SpecCheck { run, comparison })
}
