//! One attention kernel for the encoder's self-attention, the decoder's causal
//! self-attention over its cache and the cross attention over the encoder frames: heads
//! (and, for the cache, sequences; for the encoder, tiles of query rows) run in parallel;
//! each is a few-row pass that keeps scores in registers ([`attend_rows`]) or two products
//! around a tile of scores small enough to stay in cache.

use rayon::prelude::*;

use super::attend::{attend_rows, HeadKv, RowQueries};
use super::kv::{cpu_kv, AnyKv};
use crate::backend::{AttentionCall, KvSource, Queries};
use crate::whisper::ops::{matmul_strided, softmax_in_place};

/// Up to this many query rows, a head runs as direct per-row loops (decoder steps).
const FEW_ROWS: usize = 8;

/// Query rows per task over a whole sequence (the encoder's 1500 frames): a task's scores,
/// `[QUERY_TILE, len]`, stay in the core's L2 (768 KB for 1500 keys) between the two
/// products and the softmax, instead of a `[len, len]` matrix per head going out to memory.
/// Every row's softmax still sees all its keys, so the tiles change no value.
const QUERY_TILE: usize = 128;

/// One head's keys and values: key dimension `j` of position `t` is
/// `k[j * k_strides.0 + t * k_strides.1]`, value row `t` starts at `v[t * v_stride]`.
struct HeadView<'a> {
    k: &'a [f32],
    k_strides: (usize, usize),
    v: &'a [f32],
    v_stride: usize,
    len: usize,
}

/// A store's f32 head (keys transposed, value rows `hd` apart).
fn stored(h: HeadKv<'_>, hd: usize) -> HeadView<'_> {
    HeadView {
        k: h.kt,
        k_strides: (h.kt_stride, 1),
        v: h.v,
        v_stride: hd,
        len: h.len,
    }
}

/// A task's keys and values.
enum View<'a> {
    /// f32, with strides: the encoder's inline keys and values, or an f32 store's head.
    Dense(HeadView<'a>),
    /// A bf16 store's head (the NPU numerics' caches).
    Bf16(HeadKv<'a, half::bf16>),
}

impl View<'_> {
    fn len(&self) -> usize {
        match self {
            View::Dense(v) => v.len,
            View::Bf16(h) => h.len,
        }
    }
}

/// Head `h` of sequence `seq` in `layer` of a store, `len` positions, in its element type.
fn stored_head<'a>(
    store: &AnyKv<'a>,
    at: (usize, usize, usize),
    len: usize,
    hd: usize,
) -> View<'a> {
    let (layer, seq, h) = at;
    match *store {
        AnyKv::F32(s) => View::Dense(stored(s.head(layer, seq, h, len), hd)),
        AnyKv::Bf16(s) => View::Bf16(s.head(layer, seq, h, len)),
    }
}

/// A unit of parallel work: query rows `row0 .. row0 + rows` against head `head` of one
/// sequence's keys and values.
struct Task<'a> {
    row0: usize,
    rows: usize,
    head: usize,
    view: View<'a>,
    /// Positions visible to query `i` of the task: `past + i + 1` when causal.
    causal_past: Option<usize>,
}

pub fn attend(call: AttentionCall, out: &mut [f32]) -> Vec<Vec<f32>> {
    let AttentionCall {
        heads,
        q,
        kv,
        keep_heads,
    } = call;
    let rows = q.rows();
    let d = out.len() / rows.max(1);
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let tasks = tasks(heads, hd, &q, kv);
    let results: Vec<(Vec<f32>, Option<Vec<f32>>)> = tasks
        .par_iter()
        .map(|t| {
            let qs = &q.data[(t.row0 * q.stride + q.offset + t.head * hd)..];
            attend_head(qs, q.stride, t, hd, scale, keep_heads.contains(&t.head))
        })
        .collect();
    let mut weights: Vec<Vec<f32>> = vec![Vec::new(); keep_heads.len()];
    for (t, (o, w)) in tasks.iter().zip(results) {
        for i in 0..t.rows {
            let r = t.row0 + i;
            out[r * d + t.head * hd..r * d + (t.head + 1) * hd]
                .copy_from_slice(&o[i * hd..(i + 1) * hd]);
        }
        if let Some(w) = w {
            for (slot, _) in keep_heads.iter().enumerate().filter(|(_, &h)| h == t.head) {
                weights[slot].extend_from_slice(&w);
            }
        }
    }
    weights
}

fn tasks<'a>(heads: usize, hd: usize, q: &Queries<'a>, kv: KvSource<'a>) -> Vec<Task<'a>> {
    match kv {
        KvSource::Inline { k_offset, v_offset } => {
            assert_eq!(q.batch, 1, "inline keys/values need a single sequence");
            let n = q.per_batch;
            (0..heads)
                .flat_map(|h| (0..n).step_by(QUERY_TILE).map(move |row0| (h, row0)))
                .map(|(h, row0)| Task {
                    row0,
                    rows: QUERY_TILE.min(n - row0),
                    head: h,
                    view: View::Dense(HeadView {
                        k: &q.data[k_offset + h * hd..],
                        k_strides: (1, q.stride),
                        v: &q.data[v_offset + h * hd..],
                        v_stride: q.stride,
                        len: n,
                    }),
                    causal_past: None,
                })
                .collect()
        }
        KvSource::Causal { cache, layer, past } => {
            let store = cpu_kv(cache);
            let n = q.per_batch;
            (0..q.batch)
                .flat_map(|seq| (0..heads).map(move |h| (seq, h)))
                .map(|(seq, h)| Task {
                    row0: seq * n,
                    rows: n,
                    head: h,
                    view: stored_head(&store, (layer, seq, h), past + n, hd),
                    causal_past: Some(past),
                })
                .collect()
        }
        KvSource::Shared { cache, layer, len } => {
            let store = cpu_kv(cache);
            (0..heads)
                .map(|h| Task {
                    row0: 0,
                    rows: q.rows(),
                    head: h,
                    view: stored_head(&store, (layer, 0, h), len, hd),
                    causal_past: None,
                })
                .collect()
        }
    }
}

/// One task's `[rows, hd]` output and, if `keep`, its `[rows, len]` weights.
fn attend_head(
    q: &[f32],
    q_stride: usize,
    t: &Task,
    hd: usize,
    scale: f32,
    keep: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (rows, len) = (t.rows, t.view.len());
    let mut out = vec![0.0f32; rows * hd];
    let visible = t.causal_past.map(|past| move |i: usize| past + i + 1);
    let rq = RowQueries {
        q,
        q_stride,
        rows,
        hd,
        visible: visible.as_ref().map(|f| f as &dyn Fn(usize) -> usize),
        scale,
        out_stride: hd,
        keep,
    };
    let widened;
    let v = match &t.view {
        View::Dense(v) if rows <= FEW_ROWS && v.k_strides.1 == 1 && v.v_stride == hd => {
            let head = HeadKv {
                kt: v.k,
                kt_stride: v.k_strides.0,
                v: v.v,
                len,
            };
            let w = attend_rows(&rq, &head, &mut out);
            return (out, w);
        }
        View::Bf16(head) if rows <= FEW_ROWS => {
            let w = attend_rows(&rq, head, &mut out);
            return (out, w);
        }
        View::Dense(v) => v,
        View::Bf16(head) => {
            // Many rows over a bf16 store (a long prompt): the products read f32.
            widened = widen_head(head, hd);
            &HeadView {
                k: &widened.0,
                k_strides: (len, 1),
                v: &widened.1,
                v_stride: hd,
                len,
            }
        }
    };
    let mut scores = vec![0.0f32; rows * len];
    matmul_strided(
        rows,
        len,
        hd,
        q,
        (q_stride, 1),
        v.k,
        v.k_strides,
        &mut scores,
        len,
        scale,
        false,
    );
    for (i, row) in scores.chunks_exact_mut(len).enumerate() {
        if let Some(f) = &visible {
            row[f(i).min(len)..].fill(f32::NEG_INFINITY);
        }
        softmax_in_place(row);
    }
    matmul_strided(
        rows,
        hd,
        len,
        &scores,
        (len, 1),
        v.v,
        (v.v_stride, 1),
        &mut out,
        hd,
        1.0,
        false,
    );
    (out, keep.then_some(scores))
}

/// A bf16 head's first `len` positions in f32: keys `[hd, len]` (transposed), values
/// `[len, hd]`.
fn widen_head(h: &HeadKv<'_, half::bf16>, hd: usize) -> (Vec<f32>, Vec<f32>) {
    let len = h.len;
    let mut kt = Vec::with_capacity(hd * len);
    for j in 0..hd {
        kt.extend(h.kt[j * h.kt_stride..][..len].iter().map(|v| v.to_f32()));
    }
    let v = h.v[..len * hd].iter().map(|v| v.to_f32()).collect();
    (kt, v)
}
