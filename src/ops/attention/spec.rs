//! The attention spec: its fields, their rules, and its `aiec sim` test case.

use super::{reference, TOLERANCE};
use crate::design::{Design, DesignError};
use crate::device::DeviceModel;
use crate::ops::registry::OpSpec;
use crate::ops::SHIM_MAX_REPEAT;
use crate::sim::inputs::InputGen;
use crate::sim::verify::{Comparison, TestCase};
use crate::sim::HostData;
use crate::spec::{check_positive, Dtype, Fields, SpecError};

crate::op_spec! {
    pub struct AttentionSpec {
        pub heads: usize,
        pub q_len: usize,
        pub kv_len: usize,
        pub head_dim: usize,
        /// Query rows per step.
        pub q_tile: usize,
        /// Key/value rows per step (streamed; an online softmax carries max and sum).
        pub kv_tile: usize,
        #[serde(default)]
        pub causal: bool,
        /// Score scale; defaults to `1/sqrt(head_dim)`.
        pub scale: Option<f64>,
        /// Host layout of Q, KV and O (see the module docs).
        #[serde(default)]
        pub layout: Layout,
    }
    buffer_fields = "q_tile/kv_tile, depth or stack_bytes";
}

/// How the host buffers order heads and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `Q [heads, q_len, d]`, `KV [heads, kv_len, 2d]`, `O [heads, q_len, d]`.
    #[default]
    HeadMajor,
    /// `Q [q_len, heads, d]`, `KV [kv_len, heads, 2d]`, `O [q_len, heads, d]`: what the
    /// projections write when their rows are tokens (K/V weight columns ordered per head,
    /// `K_h` then `V_h`), so the runtime passes them without a transpose.
    TokenMajor,
}

impl AttentionSpec {
    pub fn score_scale(&self) -> f64 {
        self.scale.unwrap_or(1.0 / (self.head_dim as f64).sqrt())
    }

    fn check_blocks(&self, f: &Fields) -> Result<(), SpecError> {
        // Q/O patterns repeat over q blocks and KV patterns over kv blocks in the outermost
        // dimension of a shim BD, which counts at most 64 iterations.
        for (field, blocks) in [
            ("q_tile", self.q_len / self.q_tile),
            ("kv_tile", self.kv_len / self.kv_tile),
        ] {
            if blocks > SHIM_MAX_REPEAT {
                return Err(f.fail(
                    field,
                    format!(
                        "{blocks} blocks exceed the {SHIM_MAX_REPEAT} repeats of a shim buffer descriptor"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl OpSpec for AttentionSpec {
    fn check(&self, f: &Fields, dev: &DeviceModel) -> Result<(), SpecError> {
        f.common(self.common(), &[Dtype::Bf16, Dtype::F32], "attention", dev)?;
        check_positive!(f, self, [heads, q_len, kv_len, head_dim, q_tile, kv_tile]);
        f.divides("q_len", self.q_len, self.q_tile, "q_tile")?;
        f.divides("kv_len", self.kv_len, self.kv_tile, "kv_tile")?;
        // One head per core at a time; heads are dealt to cores round-robin.
        let cores = self.array.cores();
        f.divides("heads", self.heads, cores, "columns x cores_per_column")?;
        self.check_blocks(f)?;
        if self.causal && self.q_len != self.kv_len {
            return Err(f.fail(
                "causal",
                format!(
                    "a causal mask needs q_len == kv_len (got {} and {})",
                    self.q_len, self.kv_len
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
        super::build(self)
    }

    fn test_case(&self, _design: &Design, gen: &mut InputGen) -> TestCase {
        let (h, ql, kl, d) = (self.heads, self.q_len, self.kv_len, self.head_dim);
        let elem = self.dtype.elem();
        let q = gen.normal_data(elem, h * ql * d, 0.0, 1.0);
        // Host layout KV[head, j] = K_j then V_j.
        let kv = gen.normal_data(elem, h * kl * 2 * d, 0.0, 1.0);
        let (qf, kvf) = (q.to_f64(), kv.to_f64());
        let mut r = Vec::with_capacity(h * ql * d);
        let mut bounds = Vec::with_capacity(h);
        for head in 0..h {
            let rows = &kvf[head * kl * 2 * d..(head + 1) * kl * 2 * d];
            let half = |from: usize| -> Vec<f64> {
                rows.chunks(2 * d)
                    .flat_map(|row| row[from..from + d].to_vec())
                    .collect()
            };
            let (k, v) = (half(0), half(d));
            let qh = &qf[head * ql * d..(head + 1) * ql * d];
            let scale = self.score_scale();
            r.extend(reference(qh, &k, &v, ql, kl, d, scale, self.causal));
            let max_v = v.iter().fold(0f64, |m, x| m.max(x.abs()));
            bounds.push(TOLERANCE * max_v);
        }
        let token_major = self.layout == Layout::TokenMajor;
        let inputs = if token_major {
            vec![swap_outer(&q, h, ql, d), swap_outer(&kv, h, kl, 2 * d)]
        } else {
            vec![q, kv]
        };
        TestCase {
            inputs,
            judge: crate::sim::verify::precomputed(move |out: &[HostData]| {
                // Back to head-major, where the reference and its bounds live.
                let o = if token_major {
                    swap_outer(&out[0], ql, h, d)
                } else {
                    out[0].clone()
                };
                Comparison::new(
                    &o.to_f64(),
                    &r,
                    false,
                    "|o - ref| <= TOLERANCE max|V| (per head)",
                    |i, _| bounds[i / (ql * d)],
                )
            }),
        }
    }
}

/// `[a, b, n]` -> `[b, a, n]`.
fn swap_outer(x: &HostData, a: usize, b: usize, n: usize) -> HostData {
    let v = x.to_f64();
    let mut out = Vec::with_capacity(v.len());
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&v[(i * b + j) * n..][..n]);
        }
    }
    HostData::from_f64(x.elem(), &out)
}
