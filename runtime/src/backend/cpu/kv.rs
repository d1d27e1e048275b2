//! The cpu backend's key/value stores, per layer in the layout the attention kernel streams:
//! keys transposed `[batch, heads, head_dim, capacity]`, values
//! `[batch, heads, capacity, head_dim]` (see [`super::attend::HeadKv`]).

use super::attend::HeadKv;
use crate::backend::{KvCache, KvRows, KvShape};

pub struct CpuKv {
    shape: KvShape,
    kt: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// A store-sized buffer reused by [`CpuKv::reorder`].
    spare: Vec<f32>,
}

impl KvCache for CpuKv {
    fn shape(&self) -> KvShape {
        self.shape
    }
}

pub fn cpu_kv(cache: &dyn KvCache) -> &CpuKv {
    cache
        .as_any()
        .downcast_ref()
        .expect("a key/value store made by another backend was passed to the cpu backend")
}

pub fn cpu_kv_mut(cache: &mut dyn KvCache) -> &mut CpuKv {
    cache
        .as_any_mut()
        .downcast_mut()
        .expect("a key/value store made by another backend was passed to the cpu backend")
}

impl CpuKv {
    pub fn new(shape: KvShape) -> Self {
        let size = shape.batch * shape.capacity * shape.heads * shape.head_dim;
        Self {
            shape,
            kt: (0..shape.layers).map(|_| vec![0.0; size]).collect(),
            v: (0..shape.layers).map(|_| vec![0.0; size]).collect(),
            spare: Vec::new(),
        }
    }

    fn per_sequence(&self) -> usize {
        self.shape.capacity * self.shape.heads * self.shape.head_dim
    }

    /// Head `h` of sequence `seq` in layer `layer`, with `len` valid positions.
    pub fn head(&self, layer: usize, seq: usize, h: usize, len: usize) -> HeadKv<'_> {
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
                        kt[head + j * cap + p] = kv;
                    }
                    let vs = &src[rows.v_offset + h * hd..rows.v_offset + (h + 1) * hd];
                    v[head + p * hd..head + (p + 1) * hd].copy_from_slice(vs);
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
                self.spare = vec![0.0f32; order.len() * per_seq];
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
