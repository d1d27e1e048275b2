//! Encoder self attention and decoder cross attention on the `attention` design in its
//! `token_major` layout (`Q [q_len, heads, d]`, `KV [kv_len, heads, 2d]` with `K_h` then
//! `V_h`, `O [q_len, heads, d]`), bf16 in and out, f32 scores and online softmax inside.
//!
//! The host gathers the operands into those buffers (data movement, no arithmetic): for the
//! encoder from the fused Q/K/V projection rows, for cross attention from the cpu-owned
//! key/value store the cross K/V were written into once per window.

use std::time::Duration;

use super::kernels::{self, narrow};
use super::linear::npu1;
use super::SimDeviceError;
use crate::plan::tiling;
use aiec_runtime::backend::cpu::attend::HeadKv;
use aiec_runtime::backend::Queries;

/// Query rows gathered as `[rows, heads, d]`.
pub fn gather_queries(q: &Queries, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(q.rows() * width);
    for r in 0..q.rows() {
        out.extend_from_slice(&q.data[r * q.stride + q.offset..][..width]);
    }
    out
}

/// `KV [rows, heads, 2d]` from rows holding every head's key at `k_offset` and value at
/// `v_offset` (the encoder's fused projection).
pub fn gather_inline(
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

/// `KV [len, heads, 2d]` from one sequence's per-head store (`kt` transposed `[d, cap]`, `v`
/// `[cap, d]`).
pub fn gather_store<'a>(heads: &[HeadKv<'a>], d: usize, len: usize) -> Vec<f32> {
    let mut kv = Vec::with_capacity(len * heads.len() * 2 * d);
    for j in 0..len {
        for h in heads {
            kv.extend((0..d).map(|x| h.kt[x * h.kt_stride + j]));
            kv.extend_from_slice(&h.v[j * d..][..d]);
        }
    }
    kv
}

fn candidates(heads: usize, q_len: usize, kv_len: usize, d: usize) -> Vec<String> {
    tiling::attention_candidates(heads, q_len, kv_len, &npu1())
        .into_iter()
        .map(|(a, q_tile, kv_tile)| {
            format!(
                "op = \"attention\"\nname = \"sim_attention_{heads}x{q_len}x{kv_len}x{d}\"\n\
                 device = \"npu1\"\ndtype = \"bf16\"\nheads = {heads}\nq_len = {q_len}\n\
                 kv_len = {kv_len}\nhead_dim = {d}\nq_tile = {q_tile}\nkv_tile = {kv_tile}\n\
                 array = {{ columns = {}, cores_per_column = {} }}\ncausal = false\n\
                 layout = \"token_major\"\n",
                a.columns, a.cores_per_column
            )
        })
        .collect()
}

/// Non-causal attention of `q [q_len, heads, d]` over `kv [kv_len, heads, 2d]`: `O` as
/// `[q_len, heads, d]` f32 and the simulated time.
pub fn attend(
    heads: usize,
    d: usize,
    q: &[f32],
    kv: &[f32],
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    let (q_len, kv_len) = (q.len() / (heads * d), kv.len() / (heads * 2 * d));
    let q_rows = padded_q_len(heads, q_len, kv_len);
    let key = format!("attention {heads}x{q_rows}x{kv_len}x{d}");
    let kernel = kernels::first_that_builds(&key, || candidates(heads, q_rows, kv_len, d))?;
    let q_host = if q_rows > q_len {
        let mut padded = q.to_vec();
        padded.resize(q_rows * heads * d, 0.0);
        narrow(kernel.input_elems[0], &padded)
    } else {
        narrow(kernel.input_elems[0], q)
    };
    let inputs = vec![q_host, narrow(kernel.input_elems[1], kv)];
    let launch = kernel.launch(inputs)?;
    let mut o = launch
        .outputs
        .into_iter()
        .next()
        .expect("the design drains O");
    o.truncate(q_len * heads * d);
    Ok((o, launch.device))
}

/// Query rows to run: `q_len`, or rounded up to whole 32-row tiles when `q_len` has no tiling
/// (a prime length, e.g. 109 prompt rows of a long-form window, tiles only by 1 row, past the
/// shim's repeat limit). Non-causal query rows are independent, so the zero rows added change
/// no other row and are dropped.
fn padded_q_len(heads: usize, q_len: usize, kv_len: usize) -> usize {
    if tiling::attention_candidates(heads, q_len, kv_len, &npu1()).is_empty() {
        tiling::round_up(q_len, 32)
    } else {
        q_len
    }
}

/// Decoder-step causal self attention on the `attention_decode` design: one query row per
/// sequence (`q [batch, heads, d]`) over the first `valid` positions of each sequence's
/// store, gathered into the design's `KV [batch, heads, n_ctx, 2d]` (rows past `valid` zero);
/// the design reads the smallest length bucket holding `valid` and masks by the `LEN` buffer.
pub fn attend_step(
    q: &[f32],
    stores: &[Vec<HeadKv<'_>>],
    (d, n_ctx, valid): (usize, usize, usize),
) -> Result<(Vec<f32>, Duration), SimDeviceError> {
    use crate::ops::attention::{bucket_for, kv_len_buckets, length_param};
    let (beams, heads) = (stores.len(), stores.first().map_or(0, Vec::len));
    let buckets = kv_len_buckets(n_ctx, 64);
    let kv_len = bucket_for(&buckets, valid).unwrap_or(n_ctx);
    let kv_tile = (1..=32.min(kv_len))
        .rev()
        .find(|t| kv_len.is_multiple_of(*t))
        .unwrap_or(1);
    let key = format!("attention_decode {beams}x{heads}x{d} ctx {n_ctx} len {kv_len}");
    let kernel = kernels::first_that_builds(&key, || {
        tiling::arrays(&npu1())
            .into_iter()
            .filter(|a| (beams * heads).is_multiple_of(a.cores()))
            .map(|a| {
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
    let mut kv = vec![0.0f32; beams * heads * n_ctx * 2 * d];
    for (b, store) in stores.iter().enumerate() {
        for (h, head) in store.iter().enumerate() {
            let base = (b * heads + h) * n_ctx * 2 * d;
            for j in 0..valid {
                let row = &mut kv[base + j * 2 * d..][..2 * d];
                for (x, k) in row[..d].iter_mut().enumerate() {
                    *k = head.kt[x * head.kt_stride + j];
                }
                row[d..].copy_from_slice(&head.v[j * d..][..d]);
            }
        }
    }
    let len = length_param(kernel.input_elems[2], d, valid);
    let inputs = vec![
        narrow(kernel.input_elems[0], q),
        narrow(kernel.input_elems[1], &kv),
        len,
    ];
    let launch = kernel.launch(inputs)?;
    Ok((launch.outputs[0].clone(), launch.device))
}
