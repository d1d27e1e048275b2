//! The cpu backend's key/value stores, per layer in the layout the attention kernel streams:
//! keys transposed `[batch, heads, head_dim, capacity]`, values
//! `[batch, heads, capacity, head_dim]` (see [`super::attend::HeadKv`]). Elements are f32, or
//! bf16 under the NPU numerics (`--precision int8`), whose caches are bf16 buffers on the
//! device: half the bytes a decoder step streams, and the cross-attention keys and values of
//! whisper-base (18 MB) then fit in the last-level cache.

use super::attend::HeadKv;
use crate::backend::{KvCache, KvRows, KvShape};
use crate::whisper::stream::StreamWeight;

/// An element a store can hold: written from f32, read widened.
pub trait KvElem: StreamWeight + Default {
    /// `v` in this type (for bf16: rounded to nearest, ties to even).
    fn narrow(v: f32) -> Self;
}

impl KvElem for f32 {
    #[inline(always)]
    fn narrow(v: f32) -> Self {
        v
    }
}

impl KvElem for half::bf16 {
    #[inline(always)]
    fn narrow(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
}

pub struct CpuKv<W = f32> {
    shape: KvShape,
    kt: Vec<Vec<W>>,
    v: Vec<Vec<W>>,
    /// A store-sized buffer reused by [`CpuKv::reorder`].
    spare: Vec<W>,
}

impl<W: KvElem> KvCache for CpuKv<W> {
    fn shape(&self) -> KvShape {
        self.shape
    }
}

const FOREIGN: &str = "a key/value store made by another backend was passed to the cpu backend";

/// The cpu store behind `cache`, in whichever element type it holds.
pub enum AnyKv<'a> {
    F32(&'a CpuKv<f32>),
    Bf16(&'a CpuKv<half::bf16>),
}

pub fn cpu_kv(cache: &dyn KvCache) -> AnyKv<'_> {
    let any = cache.as_any();
    if let Some(s) = any.downcast_ref::<CpuKv<f32>>() {
        return AnyKv::F32(s);
    }
    AnyKv::Bf16(any.downcast_ref().expect(FOREIGN))
}

/// The cpu store behind `cache`, mutable, in whichever element type it holds.
pub enum AnyKvMut<'a> {
    F32(&'a mut CpuKv<f32>),
    Bf16(&'a mut CpuKv<half::bf16>),
}

pub fn cpu_kv_mut(cache: &mut dyn KvCache) -> AnyKvMut<'_> {
    let any = cache.as_any_mut();
    if any.is::<CpuKv<f32>>() {
        return AnyKvMut::F32(any.downcast_mut().expect("checked just above"));
    }
    AnyKvMut::Bf16(any.downcast_mut().expect(FOREIGN))
}

impl AnyKvMut<'_> {
    /// [`CpuKv::write`] in the store's element type (a bf16 store rounds as it writes).
    pub fn write(self, layer: usize, pos: usize, rows: KvRows) {
        match self {
            AnyKvMut::F32(s) => s.write(layer, pos, rows),
            AnyKvMut::Bf16(s) => s.write(layer, pos, rows),
        }
    }

    /// [`CpuKv::reorder`] in the store's element type.
    pub fn reorder(self, order: &[usize], len: usize) {
        match self {
            AnyKvMut::F32(s) => s.reorder(order, len),
            AnyKvMut::Bf16(s) => s.reorder(order, len),
        }
    }
}

impl<W: KvElem> CpuKv<W> {
    pub fn new(shape: KvShape) -> Self {
        let size = shape.batch * shape.capacity * shape.heads * shape.head_dim;
        Self {
            shape,
            kt: (0..shape.layers)
                .map(|_| vec![W::default(); size])
                .collect(),
            v: (0..shape.layers)
                .map(|_| vec![W::default(); size])
                .collect(),
            spare: Vec::new(),
        }
    }

    fn per_sequence(&self) -> usize {
        self.shape.capacity * self.shape.heads * self.shape.head_dim
    }

    /// Head `h` of sequence `seq` in layer `layer`, with `len` valid positions.
    pub fn head(&self, layer: usize, seq: usize, h: usize, len: usize) -> HeadKv<'_, W> {
        let (cap, hd) = (self.shape.capacity, self.shape.head_dim);
        let base = (seq * self.shape.heads + h) * hd * cap;
        HeadKv {
            kt: &self.kt[layer][base..base + hd * cap],
            kt_stride: cap,
            v: &self.v[layer][base..base + cap * hd],
            len,
        }
    }

    /// Positions `pos .. pos + rows.n_new` of every sequence from `rows`.
    pub fn write(&mut self, layer: usize, pos: usize, rows: KvRows) {
        let KvShape {
            batch,
            capacity: cap,
            heads,
            head_dim: hd,
            ..
        } = self.shape;
        assert!(
            pos + rows.n_new <= cap,
            "key/value store of {cap} positions exceeded"
        );
        let (kt, v) = (&mut self.kt[layer], &mut self.v[layer]);
        for seq in 0..batch {
            for i in 0..rows.n_new {
                let src = &rows.data[(seq * rows.n_new + i) * rows.stride..];
                let p = pos + i;
                for h in 0..heads {
                    let head = (seq * heads + h) * hd * cap;
                    let ks = &src[rows.k_offset + h * hd..rows.k_offset + (h + 1) * hd];
                    for (j, &kv) in ks.iter().enumerate() {
                        kt[head + j * cap + p] = W::narrow(kv);
                    }
                    let vs = &src[rows.v_offset + h * hd..rows.v_offset + (h + 1) * hd];
                    for (dst, &x) in v[head + p * hd..head + (p + 1) * hd].iter_mut().zip(vs) {
                        *dst = W::narrow(x);
                    }
                }
            }
        }
    }

    /// Keeps sequence `order[i]` as the new sequence `i`; copies only the `len` valid
    /// positions, into a buffer kept from the previous call.
    pub fn reorder(&mut self, order: &[usize], len: usize) {
        if order.len() == self.shape.batch && order.iter().enumerate().all(|(i, &o)| i == o) {
            return;
        }
        let (cap, hd, heads) = (self.shape.capacity, self.shape.head_dim, self.shape.heads);
        let per_seq = self.per_sequence();
        // Keys: one run of `len` per (head, dimension) row; values: one run per head.
        let key_runs: Vec<(usize, usize)> = (0..heads * hd).map(|r| (r * cap, len)).collect();
        let value_runs: Vec<(usize, usize)> =
            (0..heads).map(|h| (h * cap * hd, len * hd)).collect();
        for (store, runs) in self
            .kt
            .iter_mut()
            .map(|c| (c, &key_runs))
            .chain(self.v.iter_mut().map(|c| (c, &value_runs)))
        {
            if self.spare.len() != order.len() * per_seq {
                self.spare = vec![W::default(); order.len() * per_seq];
            }
            for (i, &src) in order.iter().enumerate() {
                for &(off, n) in runs {
                    let (to, from) = (i * per_seq + off, src * per_seq + off);
                    self.spare[to..to + n].copy_from_slice(&store[from..from + n]);
                }
            }
            std::mem::swap(store, &mut self.spare);
        }
        self.shape.batch = order.len();
    }
}
