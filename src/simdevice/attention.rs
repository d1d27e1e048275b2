//! Attention on the `attention` and `attention_decode` designs (bf16 in and out, f32 scores
//! and online softmax inside), one launch per call:
//!
//! | call | design | operands |
//! |------|--------|----------|
//! | encoder self (`Inline`) | `attention`, token-major | Q and K/V gathered from the fused projection rows |
//! | cross (`Shared`) | `attention`, head-major | KV = the store's buffer as it is ([`SimKv`], one sequence) |
//! | decoder step (`Causal`, one query per sequence) | `attention_decode` | KV = the store's buffer as it is; `LEN` = valid rows |
//! | decoder prompt (`Causal` from position 0, several queries) | `attention`, head-major, causal | (sequence, head) pairs as the design's heads |
//!
//! The host only gathers query rows into the design's layout and scatters the output back
//! (data movement, no arithmetic); the key/value operands of cross and step attention are
//! borrowed device buffers, not copied per call.

use std::time::Duration;

use super::kernels::{self, narrow, Kernel};
use super::kv::SimKv;
use super::linear::npu1;
use super::SimDeviceError;
use crate::ops::attention::{bucket_for, kv_len_buckets, length_param};
use crate::plan::tiling;
use crate::sim::HostData;
use aiec_runtime::backend::Queries;

/// The `heads x d` wide query rows, `[rows, heads, d]`.
fn gather_queries(q: &Queries, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(q.rows() * width);
    for r in 0..q.rows() {
        out.extend_from_slice(&q.data[r * q.stride + q.offset..][..width]);
    }
    out
}

/// The start of each `d`-wide row in both layouts: `(token-major offset, head-major offset)`
/// for `[groups x rows, heads, d]` and `[groups x heads, padded, d]`.
fn head_major_rows(
    groups: usize,
    rows: usize,
    padded: usize,
    heads: usize,
    d: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..groups).flat_map(move |g| {
        (0..rows).flat_map(move |r| {
            (0..heads).map(move |h| {
                (
                    ((g * rows + r) * heads + h) * d,
                    ((g * heads + h) * padded + r) * d,
                )
            })
        })
    })
}

/// Query rows `[groups x rows, heads, d]` (group-major) as head-major
/// `[groups x heads, rows_padded, d]`, zero rows past `rows`.
fn to_head_major(
    x: &[f32],
    groups: usize,
    rows: usize,
    padded: usize,
    heads: usize,
    d: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; groups * heads * padded * d];
    for (token, head) in head_major_rows(groups, rows, padded, heads, d) {
        out[head..head + d].copy_from_slice(&x[token..token + d]);
    }
    out
}

/// The inverse of [`to_head_major`]: `[groups x rows, heads x d]`.
fn from_head_major(
    o: &[f32],
    groups: usize,
    rows: usize,
    padded: usize,
    heads: usize,
    d: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; groups * rows * heads * d];
    for (token, head) in head_major_rows(groups, rows, padded, heads, d) {
        out[token..token + d].copy_from_slice(&o[head..head + d]);
    }
    out
}

/// `KV [rows, heads, 2d]` from rows holding every head's key at `k_offset` and value at
/// `v_offset` (the encoder's fused projection).
fn gather_inline(
    q: &Queries,
    k_offset: usize,
    v_offset: usize,
    heads: usize,
    d: usize,
) -> Vec<f32> {
    let rows = q.rows();
    let mut kv = Vec::with_capacity(rows * heads * 2 * d);
    for r in 0..rows {
        let row = &q.data[r * q.stride..];
        for h in 0..heads {
            kv.extend_from_slice(&row[k_offset + h * d..][..d]);
            kv.extend_from_slice(&row[v_offset + h * d..][..d]);
        }
    }
    kv
}

/// The shape of one `attention` launch.
#[derive(Clone, Copy)]
struct AttentionShape {
    heads: usize,
    q_len: usize,
    kv_len: usize,
    d: usize,
    causal: bool,
    token_major: bool,
}

impl AttentionShape {
    fn candidates(self) -> Vec<String> {
        let AttentionShape {
            heads,
            q_len,
            kv_len,
            d,
            causal,
            token_major,
        } = self;
        let layout = if token_major {
            "token_major"
        } else {
            "head_major"
        };
        tiling::attention_candidates(heads, q_len, kv_len, &npu1())
            .into_iter()
            .map(|(a, q_tile, kv_tile)| {
                format!(
                    "op = \"attention\"\nname = \"sim_attention_{heads}x{q_len}x{kv_len}x{d}\"\n\
                     device = \"npu1\"\ndtype = \"bf16\"\nheads = {heads}\nq_len = {q_len}\n\
                     kv_len = {kv_len}\nhead_dim = {d}\nq_tile = {q_tile}\nkv_tile = {kv_tile}\n\
                     array = {{ columns = {}, cores_per_column = {} }}\ncausal = {causal}\n\
                     layout = \"{layout}\"\n",
                    a.columns, a.cores_per_column
                )
            })
            .collect()
    }

    fn kernel(self) -> Result<std::sync::Arc<Kernel>, SimDeviceError> {
        let AttentionShape {
            heads,
            q_len,
            kv_len,
            d,
            causal,
            token_major,
        } = self;
        let key = format!(
            "attention {heads}x{q_len}x{kv_len}x{d} causal {causal} token-major {token_major}"
        );
        kernels::first_that_builds(&key, || self.candidates())
    }
}

/// Rows to run for `rows` queries over `kv_len` keys: `rows`, or rounded up to whole 32-row
/// tiles when `rows` has no tiling (a prime length, e.g. 109 prompt rows of a long-form
/// window, tiles only by 1 row, past the shim's repeat limit). Non-causal query rows are
/// independent and a causal row never sees a later one, so the zero rows added change no
/// other row and are dropped.
fn padded_rows(heads: usize, rows: usize, kv_len: usize) -> usize {
    if tiling::attention_candidates(heads, rows, kv_len, &npu1()).is_empty() {
        tiling::round_up(rows, 32)
    } else {
        rows
    }
}

/// Runs `kernel` on Q (f32, narrowed here) and a borrowed KV buffer; the first output, cut
/// to `keep` values.
fn launch(
    kernel: &Kernel,
    q: &[f32],
    kv: &HostData,
    extra: Option<&HostData>,
    keep: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let q = narrow(kernel.input_elems[0], q);
    let mut inputs = vec![&q, kv];
    inputs.extend(extra);
    let launch = kernel.launch_ref(&inputs)?;
    let mut o = launch.outputs.into_iter().next().unwrap_or_default();
    o.truncate(keep);
    Ok((o, launch.device))
}

/// Encoder self attention: every row of `q` over the keys and values in the same rows.
pub fn encoder(
    q: &Queries,
    (k_offset, v_offset): (usize, usize),
    heads: usize,
    d: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let rows = q.rows();
    let shape = AttentionShape {
        heads,
        q_len: padded_rows(heads, rows, rows),
        kv_len: rows,
        d,
        causal: false,
        token_major: true,
    };
    let kernel = shape.kernel()?;
    let mut queries = gather_queries(q, heads * d);
    queries.resize(shape.q_len * heads * d, 0.0);
    let kv = narrow(
        kernel.input_elems[1],
        &gather_inline(q, k_offset, v_offset, heads, d),
    );
    launch(&kernel, &queries, &kv, None, rows * heads * d)
}

/// Cross attention: every query row over the `len` positions of the one-sequence `store`.
pub fn cross(
    q: &Queries,
    store: &SimKv,
    layer: usize,
    len: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let shape_kv = aiec_runtime::backend::KvCache::shape(store);
    let (heads, d, rows) = (shape_kv.heads, shape_kv.head_dim, q.rows());
    let shape = AttentionShape {
        heads,
        q_len: padded_rows(heads, rows, len),
        kv_len: len,
        d,
        causal: false,
        token_major: false,
    };
    let kernel = shape.kernel()?;
    let queries = to_head_major(
        &gather_queries(q, heads * d),
        1,
        rows,
        shape.q_len,
        heads,
        d,
    );
    // The store's buffer is the head-major KV when it is read in full; a shorter length
    // takes its first rows.
    let part;
    let kv = if len == shape_kv.capacity {
        store.buffer(layer)
    } else {
        part = narrow(kernel.input_elems[1], &store.rows_of(layer, 0, len));
        &part
    };
    let (o, device) = launch(&kernel, &queries, kv, None, heads * shape.q_len * d)?;
    Ok((from_head_major(&o, 1, rows, shape.q_len, heads, d), device))
}

/// The prompt: query `i` of each sequence (positions `0..n`) sees positions `..= i` of its
/// own sequence in `store`. The (sequence, head) pairs are the design's heads.
pub fn prompt(
    q: &Queries,
    store: &SimKv,
    layer: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let shape_kv = aiec_runtime::backend::KvCache::shape(store);
    let (heads, d) = (shape_kv.heads, shape_kv.head_dim);
    let (batch, n) = (q.batch, q.per_batch);
    let pairs = batch * heads;
    let padded = padded_rows(pairs, n, n);
    let shape = AttentionShape {
        heads: pairs,
        q_len: padded,
        kv_len: padded,
        d,
        causal: true,
        token_major: false,
    };
    let kernel = shape.kernel()?;
    let queries = to_head_major(&gather_queries(q, heads * d), batch, n, padded, heads, d);
    let mut kv = vec![0.0f32; pairs * padded * 2 * d];
    for seq in 0..batch {
        let rows = store.rows_of(layer, seq, n);
        for h in 0..heads {
            let to = (seq * heads + h) * padded * 2 * d;
            kv[to..to + n * 2 * d].copy_from_slice(&rows[h * n * 2 * d..][..n * 2 * d]);
        }
    }
    let kv = narrow(kernel.input_elems[1], &kv);
    let (o, device) = launch(&kernel, &queries, &kv, None, pairs * padded * d)?;
    Ok((from_head_major(&o, batch, n, padded, heads, d), device))
}

/// A decoder step: one query row per sequence (`q [batch, heads, d]`) over the first `valid`
/// positions of its sequence in `store`. The design reads the smallest length bucket
/// holding `valid` straight from the store's buffer and masks by the `LEN` buffer.
pub fn step(
    q: &Queries,
    store: &SimKv,
    layer: usize,
    valid: usize,
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let shape_kv = aiec_runtime::backend::KvCache::shape(store);
    let (beams, heads, d, n_ctx) = (
        q.batch,
        shape_kv.heads,
        shape_kv.head_dim,
        shape_kv.capacity,
    );
    let buckets = kv_len_buckets(n_ctx, 64);
    let kv_len = bucket_for(&buckets, valid).unwrap_or(n_ctx);
    let key = format!("attention_decode {beams}x{heads}x{d} ctx {n_ctx} len {kv_len}");
    let kernel = kernels::first_that_builds(&key, || {
        tiling::attention_decode_candidates(beams * heads, kv_len, &npu1())
            .into_iter()
            .map(|(a, kv_tile)| {
                format!(
                    "op = \"attention_decode\"\nname = \"sim_attention_decode_{beams}x{heads}x{d}_{kv_len}\"\n\
                     device = \"npu1\"\ndtype = \"bf16\"\nbeams = {beams}\nheads = {heads}\n\
                     head_dim = {d}\nn_ctx = {n_ctx}\nkv_len = {kv_len}\nkv_tile = {kv_tile}\n\
                     array = {{ columns = {}, cores_per_column = {} }}\n",
                    a.columns, a.cores_per_column
                )
            })
            .collect::<Vec<_>>()
    })?;
    let len = length_param(kernel.input_elems[2], d, valid);
    let queries = gather_queries(q, heads * d);
    launch(
        &kernel,
        &queries,
        store.buffer(layer),
        Some(&len),
        beams * heads * d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_major_round_trip_keeps_rows_and_zero_pads() {
        let (groups, rows, padded, heads, d) = (2, 3, 4, 2, 2);
        let x: Vec<f32> = (0..groups * rows * heads * d).map(|v| v as f32).collect();
        let hm = to_head_major(&x, groups, rows, padded, heads, d);
        // Group 1, head 0, row 2 came from token row 1*3 + 2 = 5, head 0.
        let at = (heads * padded + 2) * d;
        assert_eq!(&hm[at..at + d], &x[(5 * heads) * d..(5 * heads) * d + d]);
        // Padding row 3 of group 0, head 1 is zero.
        let pad = (padded + 3) * d; // head 1 of group 0
        assert_eq!(&hm[pad..pad + d], &[0.0, 0.0]);
        assert_eq!(from_head_major(&hm, groups, rows, padded, heads, d), x);
    }
}
