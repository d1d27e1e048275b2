//! Decoder-step self attention (`op = "attention_decode"`): one new query row per live beam
//! attends to that beam's KV cache, whose valid length grows by one every step.
//!
//! # Length buckets plus a runtime length
//! A design reads a fixed number of cache rows per step (`kv_len`, its *bucket*) and masks
//! the rows at and past the runtime valid length, which it reads from a small host buffer.
//! The runtime picks the smallest bucket `>= valid` ([`kv_len_buckets`], [`bucket_for`]).
//! - One design for all lengths (bucket = `n_ctx`) would compile once but move and skip the
//!   whole 448-row cache every step: at a typical 50-150 live rows that is 3-9x the DMA
//!   traffic of the live rows, per layer and step (the sim pays it as copies too).
//! - One design per length would need no mask but 448 compiles per beam count.
//! - Doubling buckets (`64, 128, 256, 448` for whisper-base) cost four compiles per beam
//!   count and at most 2x the live rows of traffic; the core loops stop at the valid length,
//!   so the masked rows cost DMA only, no compute. Every bucket's K/V pattern stays one shim
//!   BD per (round, column) with at most `kv_len / kv_tile <= 64` repeats (checked).
//!
//! The runtime length cannot come in its own i32 stream: a core has two input DMA channels
//! (Q and K/V) and a shim two outgoing ones, all taken. It rides the Q stream instead, as the
//! first buffer of the step (the `LEN` argument, sent to every core by a shim-BD repeat), in
//! the design's element type: `valid = 256 * LEN[0] + LEN[1]`, two integers bf16 holds
//! exactly ([`length_param`] writes it).
//!
//! # Host buffers (runtime-sequence argument order)
//! 0. `Q [beams, heads, head_dim]`: the step's query rows, as the Q projection writes them.
//! 1. `KV [beams, heads, n_ctx, 2 * head_dim]`: the cache; row `j` of (beam, head) is `K_j`
//!    then `V_j`. The runtime keeps it across steps and writes row `valid - 1` (the new
//!    token's K/V) before the call; rows `>= valid` are never read into a score.
//! 2. `LEN [head_dim]`: the valid length, `1..=kv_len` ([`length_param`]). A longer one
//!    reads as `kv_len` (the design never sees past its bucket); 0 gives 0/0 = NaN rows.
//! 3. `O [beams, heads, head_dim]`: the output, ready for the out projection.
//!
//! The (beam, head) pairs `p = beam * heads + head` are dealt to the cores round-robin as
//! the heads of [`super::AttentionSpec`] are; `dtype` is the element type of all four
//! (bf16 or f32); scores, softmax state and sums are f32.

use super::{columns, Mask, Shape, TOLERANCE};
use crate::design::{BufferType, Design, DesignError, ElemType, Program, TensorAccessPattern};
use crate::device::DeviceModel;
use crate::ops::registry::OpSpec;
use crate::ops::SHIM_MAX_REPEAT;
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{check_positive, Dtype, Fields, SpecError};

crate::op_spec! {
    pub struct AttentionDecodeSpec {
        /// Live beams: the query rows of one step, each with its own cache.
        pub beams: usize,
        pub heads: usize,
        pub head_dim: usize,
        /// Rows each (beam, head) cache holds (the decoder's context, n_text_ctx).
        pub n_ctx: usize,
        /// The bucket: cache rows read per step; serves valid lengths `1..=kv_len`.
        pub kv_len: usize,
        /// Cache rows per streamed block.
        pub kv_tile: usize,
        /// Score scale; defaults to `1/sqrt(head_dim)`.
        pub scale: Option<f64>,
    }
    buffer_fields = "kv_tile, depth or stack_bytes";
}

/// The buckets a decoder of `n_ctx` positions compiles: `first`, doubling while below
/// `n_ctx`, then `n_ctx` itself (`first = 64, n_ctx = 448`: 64, 128, 256, 448).
pub fn kv_len_buckets(n_ctx: usize, first: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut b = first.max(1);
    while b < n_ctx {
        out.push(b);
        b *= 2;
    }
    out.push(n_ctx);
    out
}

/// The smallest of `buckets` that serves `valid` rows, if any.
pub fn bucket_for(buckets: &[usize], valid: usize) -> Option<usize> {
    buckets.iter().copied().filter(|&b| b >= valid).min()
}

/// The `LEN` host buffer telling a design that `valid` cache rows are live.
pub fn length_param(elem: ElemType, head_dim: usize, valid: usize) -> HostData {
    let mut v = vec![0.0; head_dim];
    v[0] = (valid / 256) as f64;
    v[1] = (valid % 256) as f64;
    HostData::from_f64(elem, &v)
}

impl AttentionDecodeSpec {
    pub fn score_scale(&self) -> f64 {
        self.scale.unwrap_or(1.0 / (self.head_dim as f64).sqrt())
    }

    fn pairs(&self) -> usize {
        self.beams * self.heads
    }

    fn check_lengths(&self, f: &Fields) -> Result<(), SpecError> {
        if self.head_dim < 2 {
            return Err(f.fail(
                "head_dim",
                "must be at least 2 (the runtime length takes two elements of a Q row)".into(),
            ));
        }
        if self.kv_len > self.n_ctx {
            return Err(f.fail(
                "kv_len",
                format!(
                    "the bucket of {} rows is longer than the {}-row cache (n_ctx)",
                    self.kv_len, self.n_ctx
                ),
            ));
        }
        if self.n_ctx >= 256 * 256 {
            return Err(f.fail(
                "n_ctx",
                format!(
                    "{} rows: the runtime length is two base-256 digits",
                    self.n_ctx
                ),
            ));
        }
        f.divides("kv_len", self.kv_len, self.kv_tile, "kv_tile")?;
        let blocks = self.kv_len / self.kv_tile;
        if blocks > SHIM_MAX_REPEAT {
            return Err(f.fail(
                "kv_tile",
                format!(
                    "{blocks} blocks of the {}-row bucket exceed the {SHIM_MAX_REPEAT} repeats of a shim buffer descriptor",
                    self.kv_len
                ),
            ));
        }
        Ok(())
    }
}

impl OpSpec for AttentionDecodeSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.common(
            self.common(),
            &[Dtype::Bf16, Dtype::F32],
            "attention_decode",
            dev,
        )?;
        check_positive!(f, self, [beams, heads, head_dim, n_ctx, kv_len, kv_tile]);
        self.check_lengths(f)?;
        let cores = self.array.cores();
        if !self.pairs().is_multiple_of(cores) {
            return Err(f.fail(
                "heads",
                format!(
                    "beams x heads = {} (beam, head) pairs do not split over columns x cores_per_column = {cores} cores",
                    self.pairs()
                ),
            ));
        }
        if let Some(scale) = self.scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(f.fail("scale", format!("{scale} must be a positive number")));
            }
        }
        Ok(())
    }

    fn build(&self) -> Result<Design, DesignError> {
        build(self)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        // Any length of the bucket; a short one is as likely as a full one.
        let valid = 1 + (gen.normal().abs() * 1.0e6) as usize % self.kv_len;
        decode_case(self, valid, gen)
    }
}

/// Inputs for `valid` live rows (rows past it are NaN: a score that read one would show)
/// and the judge against the f64 reference.
pub fn decode_case(spec: &AttentionDecodeSpec, valid: usize, gen: &mut InputGen) -> TestCase {
    let (pairs, d, n_ctx) = (spec.pairs(), spec.head_dim, spec.n_ctx);
    let elem = spec.dtype.elem();
    let q = gen.normal_data(elem, pairs * d, 0.0, 1.0);
    let mut cache = Vec::with_capacity(pairs * n_ctx * 2 * d);
    for _ in 0..pairs {
        for j in 0..n_ctx {
            for _ in 0..2 * d {
                cache.push(if j < valid { gen.normal() } else { f64::NAN });
            }
        }
    }
    let kv = HostData::from_f64(elem, &cache);
    let (qf, kvf) = (q.to_f64(), kv.to_f64());
    let mut want = Vec::with_capacity(pairs * d);
    let mut bounds = Vec::with_capacity(pairs);
    for p in 0..pairs {
        let rows = &kvf[p * n_ctx * 2 * d..][..valid * 2 * d];
        let half = |from: usize| -> Vec<f64> {
            rows.chunks(2 * d)
                .flat_map(|row| row[from..from + d].to_vec())
                .collect()
        };
        let (k, v) = (half(0), half(d));
        let qp = &qf[p * d..(p + 1) * d];
        let scale = spec.score_scale();
        want.extend(super::reference(qp, &k, &v, 1, valid, d, scale, false));
        bounds.push(TOLERANCE * v.iter().fold(0f64, |m, x| m.max(x.abs())));
    }
    TestCase {
        inputs: vec![q, kv, length_param(elem, d, valid)],
        judge: crate::sim::verify::precomputed(move |out: &[HostData]| {
            Comparison::new(
                &out[0].to_f64(),
                &want,
                false,
                "|o - ref| <= TOLERANCE max|V| (per beam and head)",
                |i, _| bounds[i / d],
            )
        }),
    }
}

fn build(spec: &AttentionDecodeSpec) -> Result<Design, DesignError> {
    let r_n = spec.array.cores_per_column as usize;
    let cores = spec.array.cores();
    let (d, kt, n_ctx) = (spec.head_dim, spec.kv_tile, spec.n_ctx);
    if cores == 0 || !spec.pairs().is_multiple_of(cores) || !spec.kv_len.is_multiple_of(kt) {
        return Err(DesignError::Invalid {
            design: spec.name.clone(),
            message: "beams x heads / kv_len do not split over the cores and tiles".into(),
        });
    }
    let rounds = spec.pairs() / cores;
    let kv_blocks = spec.kv_len / kt;
    let elem = spec.dtype.elem();
    let shape = Shape {
        qt: 1,
        kt,
        d,
        q_blocks: 1,
        scale: spec.score_scale(),
        mask: Mask::Length,
        elem,
    };
    let mut p = Program::new(&spec.name, &spec.device);
    let (b, h) = (spec.beams, spec.heads);
    let q_host = p.arg("Q", BufferType::new([b, h, d], elem));
    let kv_host = p.arg("KV", BufferType::new([b, h, n_ctx, 2 * d], elem));
    let len_host = p.arg("LEN", BufferType::new([d], elem));
    let o_host = p.arg("O", BufferType::new([b, h, d], elem));
    let columns = columns::build(
        &mut p,
        &columns::Topology {
            common: spec.common(),
            shape,
            counts: [rounds, 1, kv_blocks],
            read_len: true,
        },
    );
    p.sequence(|rt| {
        // The length first, repeated once per core of the column (stride-0 outer dimension).
        let len = TensorAccessPattern {
            offset: 0,
            sizes: [r_n, 1, 1, d],
            strides: [0, 0, 0, 1],
        };
        for col in &columns {
            rt.fill(&col.q_in, &len_host, len.clone());
        }
        for col in &columns {
            rt.wait(&col.q_in);
        }
        // Pair p = round * cores + c * R + r: all rounds of a column in one Q fill / O drain.
        for (c, col) in columns.iter().enumerate() {
            let rows = TensorAccessPattern {
                offset: c * r_n * d,
                sizes: [1, rounds, r_n, d],
                strides: [0, cores * d, d, 1],
            };
            rt.drain(&col.o_out, &o_host, rows.clone());
            rt.fill(&col.q_in, &q_host, rows);
        }
        // Per round, the first kv_len rows of each core's cache, awaited so BDs recycle.
        for round in 0..rounds {
            let (sizes, strides) = ([kv_blocks, r_n, kt, 2 * d], [n_ctx * 2 * d, 2 * d]);
            columns::fill_kv(rt, &columns, &kv_host, sizes, strides, |c| {
                (round * cores + c * r_n) * n_ctx * 2 * d
            });
        }
        columns::wait_q_and_o(rt, &columns);
    });
    p.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_double_up_to_the_context_and_serve_every_length() {
        let b = kv_len_buckets(448, 64);
        assert_eq!(b, vec![64, 128, 256, 448]);
        assert_eq!(bucket_for(&b, 1), Some(64));
        assert_eq!(bucket_for(&b, 64), Some(64));
        assert_eq!(bucket_for(&b, 65), Some(128));
        assert_eq!(bucket_for(&b, 448), Some(448));
        assert_eq!(bucket_for(&b, 449), None);
        assert_eq!(kv_len_buckets(64, 64), vec![64]);
    }

    #[test]
    fn the_length_survives_bf16() {
        for valid in [1, 255, 256, 257, 447, 448, 1500] {
            let v = length_param(ElemType::Bf16, 4, valid).to_f64();
            assert_eq!(v[0] * 256.0 + v[1], valid as f64, "{valid}");
        }
    }
}
