//! Attention per head: `O = softmax(Q K^T * scale [+ causal mask]) V`, one head per core at a
//! time (heads dealt round-robin: core `i` of `cores` takes heads `i, i + cores, ...`).
//!
//! K and V are streamed in `kv_tile`-row blocks with an online softmax (running row max `m`,
//! running sum `l`, unnormalised output `o`, all f32), so sequence length is not limited by
//! the 64 KiB core memory. Each core keeps that state in a FIFO it both produces and
//! consumes (acquired once, held for the whole run), `[q_tile + 1, head_dim + 2 + kv_tile]` f32
//! (the width rounded up to 16 when the rows are vectorised, so each `o` row is aligned):
//! rows `0..q_tile` hold `o` (cols `0..d`), `m` (col `d`), `l` (col `d+1`) and the current
//! scores/probabilities (cols `d+2..`); the last row holds the kv-block and q-block counters
//! that give the causal mask its absolute positions.
//!
//! The kernel bodies ([`body`]) walk every `head_dim` row in 16-lane f32 vectors (bf16 rows
//! loaded as `vector<16xbf16>` and widened), the width of AIE-ML's f32 accumulator register
//! and of the bf16 vector MAC's output, so Peano's vectoriser and the host JIT (one AVX-512
//! register) both run them at SIMD width; a `head_dim` that 16 does not divide runs the same
//! loops on scalars.
//!
//! Host layout (`layout = "head_major"`, the default): `Q [heads, q_len, d]`,
//! `KV [heads, kv_len, 2d]` (row `j` is `K_j` then `V_j`), `O [heads, q_len, d]`. With
//! `layout = "token_major"`: `Q [q_len, heads, d]`, `KV [kv_len, heads, 2d]`,
//! `O [q_len, heads, d]`, as projections over token rows write them (the K/V weight columns
//! ordered per head, `K_h` then `V_h`); the shim patterns stride over the heads instead of
//! the runtime transposing. Per column the memtile
//! splits a `[cores, q_tile, d]` Q buffer and a `[cores, kv_tile, 2d]` KV buffer to the
//! column's cores and joins their O tiles. That takes `2 x cores + 1` memtile MM2S channels,
//! so at most 2 cores per column (the validator reports more as a channel overflow).

use crate::design::{
    BufferType, Design, DesignError, ElemType, Kernel, KernelWork, Program, TensorAccessPattern,
};
use crate::ops::emit_kernel;
use crate::ops::kir::Lanes;

mod body;
mod columns;
mod decode;
mod spec;
pub use decode::{bucket_for, decode_case, kv_len_buckets, length_param, AttentionDecodeSpec};
pub use spec::{AttentionSpec, Layout};

/// Bound relative to the largest |V| entry. Every output is a convex combination of V rows,
/// so one bf16 rounding of the output costs at most 2^-8 of max|V|; bf16 rounding of the Q/K
/// inputs moves the scores, which we allow another 2^-8 for; the scores, probabilities and
/// sums stay f32 (error < 1e-5). Check `|o - ref| <= TOLERANCE * max|V|`.
pub const TOLERANCE: f64 = 1.0 / 128.0;

/// f64 attention of one head: `q [q_len, d]`, `k`, `v [kv_len, d]`.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    q_len: usize,
    kv_len: usize,
    d: usize,
    scale: f64,
    causal: bool,
) -> Vec<f64> {
    let mut out = vec![0.0; q_len * d];
    for i in 0..q_len {
        let visible = if causal { (i + 1).min(kv_len) } else { kv_len };
        let s: Vec<f64> = (0..visible)
            .map(|j| (0..d).map(|x| q[i * d + x] * k[j * d + x]).sum::<f64>() * scale)
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let p: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = p.iter().sum();
        for x in 0..d {
            out[i * d + x] = (0..visible).map(|j| p[j] * v[j * d + x]).sum::<f64>() / sum;
        }
    }
    out
}

/// Which key columns a query row sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mask {
    /// Every column.
    None,
    /// Columns up to the row's own position (q_len == kv_len).
    Causal,
    /// Columns below a length read at run time into the state's counter row (col 2); the
    /// columns past it are never loaded, so the cache rows there may hold anything.
    Length,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    qt: usize,
    kt: usize,
    d: usize,
    q_blocks: usize,
    scale: f64,
    mask: Mask,
    elem: ElemType,
}

impl Shape {
    /// How the kernels walk a `head_dim` row (see [`body`]).
    fn lanes(&self) -> Lanes {
        Lanes::dividing(self.d, body::LANES)
    }

    /// `o`, `m`, `l` and the scores; with vector rows the width is rounded up to whole
    /// vectors so every row's `o` starts 64-byte aligned (AIE-ML's vector loads and stores
    /// take 256-bit aligned addresses; unaligned ones need extra shifts).
    fn state_cols(&self) -> usize {
        (self.d + 2 + self.kt).next_multiple_of(self.lanes().0)
    }
}

pub fn build(spec: &AttentionSpec) -> Result<Design, DesignError> {
    let (cols, rows) = (spec.array.columns, spec.array.cores_per_column);
    let (cn, r_n) = (cols as usize, rows as usize);
    let cores = cn * r_n;
    let d = spec.head_dim;
    let (qt, kt) = (spec.q_tile, spec.kv_tile);
    if cores == 0
        || !spec.heads.is_multiple_of(cores)
        || !spec.q_len.is_multiple_of(qt)
        || !spec.kv_len.is_multiple_of(kt)
    {
        return Err(DesignError::Invalid {
            design: spec.name.clone(),
            message: "heads/q_len/kv_len do not split over the cores and tiles".into(),
        });
    }
    let per_core = spec.heads / cores;
    let (q_blocks, kv_blocks) = (spec.q_len / qt, spec.kv_len / kt);
    let elem = spec.dtype.elem();
    let s = Shape {
        qt,
        kt,
        d,
        q_blocks,
        scale: spec.score_scale(),
        mask: if spec.causal {
            Mask::Causal
        } else {
            Mask::None
        },
        elem,
    };

    let h = spec.heads;
    let mut p = Program::new(&spec.name, &spec.device);
    let (q_ty, kv_ty) = match spec.layout {
        Layout::HeadMajor => ([h, spec.q_len, d], [h, spec.kv_len, 2 * d]),
        Layout::TokenMajor => ([spec.q_len, h, d], [spec.kv_len, h, 2 * d]),
    };
    let q_host = p.arg("Q", BufferType::new(q_ty, elem));
    let kv_host = p.arg("KV", BufferType::new(kv_ty, elem));
    let o_host = p.arg("O", BufferType::new(q_ty, elem));
    // Element strides (head, row) of Q/O and of KV in the host layout.
    let (q_step, kv_step) = match spec.layout {
        Layout::HeadMajor => ((spec.q_len * d, d), (spec.kv_len * 2 * d, 2 * d)),
        Layout::TokenMajor => ((d, h * d), (2 * d, h * 2 * d)),
    };
    let columns = columns::build(
        &mut p,
        &columns::Topology {
            common: spec.common(),
            shape: s,
            counts: [per_core, q_blocks, kv_blocks],
            read_len: false,
        },
    );
    // Per round of heads: O drains and Q fills first (they complete last), then one KV fill
    // per q block (every q block re-reads the head's K/V), each awaited so shim BDs recycle.
    p.sequence(|rt| {
        for round in 0..per_core {
            let head0 = |c: usize| c * r_n + cores * round;
            for (c, col) in columns.iter().enumerate() {
                // Heads of this column's cores in round p: c*R + r + cores*p for r in 0..R.
                let q_pattern = TensorAccessPattern {
                    offset: head0(c) * q_step.0,
                    sizes: [q_blocks, r_n, qt, d],
                    strides: [qt * q_step.1, q_step.0, q_step.1, 1],
                };
                rt.drain(&col.o_out, &o_host, q_pattern.clone());
                rt.fill(&col.q_in, &q_host, q_pattern);
            }
            for _ in 0..q_blocks {
                let (sizes, strides) = ([kv_blocks, r_n, kt, 2 * d], [kv_step.0, kv_step.1]);
                columns::fill_kv(rt, &columns, &kv_host, sizes, strides, |c| {
                    head0(c) * kv_step.0
                });
            }
            columns::wait_q_and_o(rt, &columns);
        }
    });
    p.build()
}

/// The kernels of an attention core (`read_len` only runs in length-masked designs).
struct Kernels {
    setup: Kernel,
    init: Kernel,
    step: Kernel,
    finish: Kernel,
    read_len: Kernel,
}

impl Kernels {
    fn new(s: Shape) -> Self {
        // One K/V block (see `body`): Q·K_j and P·V are each `qt x kt` rows of `d/16` fma
        // chunks, plus the correction `o *= corr` per row chunk; the scores, their max, exp
        // (~20 ops, a range reduction and polynomial) and sum stay scalar: ~25 ops a score.
        let vector = s.lanes().is_vector();
        let step = KernelWork::rows_vectorised(s.qt * s.kt * 2 + s.qt, s.d, 1.0, vector)
            .plus(KernelWork::scalar((s.qt * s.kt * 25) as u64));
        Kernels {
            setup: emit_kernel("attention_setup", 1, move |e, a| body::emit_setup(e, a, s))
                .with_work(KernelWork::scalar(2)),
            init: emit_kernel("attention_init", 1, move |e, a| body::emit_init(e, a, s))
                .with_work(KernelWork::rows_vectorised(s.qt, s.d, 1.0, vector)),
            step: emit_kernel("attention_step", 3, move |e, a| body::emit_step(e, a, s))
                .with_work(step),
            finish: emit_kernel("attention_finish", 2, move |e, a| {
                body::emit_finish(e, a, s)
            })
            .with_work(KernelWork::rows_vectorised(s.qt, s.d, 3.0, vector)),
            read_len: emit_kernel("attention_read_len", 2, move |e, a| {
                body::emit_read_len(e, a, s)
            })
            .with_work(KernelWork::scalar(4)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gives_its_value_and_equal_scores_average() {
        // One visible key: the output is exactly V_0.
        let o = reference(&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0], 1, 1, 2, 1.0, false);
        assert_eq!(o, vec![5.0, 6.0]);
        // Equal scores over two keys: the mean of the values.
        let o = reference(
            &[0.0, 0.0],
            &[1.0, 1.0, 2.0, 2.0],
            &[1.0, 3.0, 3.0, 5.0],
            1,
            2,
            2,
            1.0,
            false,
        );
        assert!((o[0] - 2.0).abs() < 1e-15 && (o[1] - 4.0).abs() < 1e-15);
    }

    #[test]
    fn causal_first_row_sees_only_the_first_key() {
        let q = [1.0, 0.0, 0.0, 1.0];
        let k = [1.0, 0.0, 0.0, 1.0];
        let v = [10.0, 0.0, 0.0, 10.0];
        let o = reference(&q, &k, &v, 2, 2, 2, 1.0, true);
        assert_eq!(&o[0..2], &[10.0, 0.0]);
        // Row 1: scores [0, 1] -> weights e^0, e^1.
        let w1 = 1.0f64.exp() / (1.0 + 1.0f64.exp());
        assert!((o[3] - 10.0 * w1).abs() < 1e-12);
    }
}
