//! The sim backend's key/value store: device buffers in the layout the attention designs
//! read, kept across decoder steps.
//!
//! Per layer one bf16 buffer `[batch, heads, capacity, 2 * head_dim]`: row `j` of (sequence,
//! head) is `K_j` then `V_j`. That is the `attention_decode` design's `KV` argument as it is
//! (`n_ctx = capacity`), so a decoder step borrows the buffer instead of gathering the live
//! rows, and for one sequence it is the head-major `attention` design's `KV [heads, len, 2d]`
//! (cross attention over the encoder frames, `len = capacity`).
//!
//! [`SimKv::write`] is where the K/V projection's output lands (on the NPU the projection's
//! output DMA writes the cache rows; here the host copies them, rounding to bf16 as the
//! design's drain would). [`SimKv::reorder`] is the beam bookkeeping after a step.

use half::bf16;

use crate::sim::HostData;
use aiec_runtime::backend::cpu::kv::CpuKv;
use aiec_runtime::backend::{KvCache, KvRows, KvShape};

pub struct SimKv {
    shape: KvShape,
    layers: Vec<HostData>,
}

impl KvCache for SimKv {
    fn shape(&self) -> KvShape {
        self.shape
    }
}

/// The sim store behind a cache the runtime hands back.
pub fn sim_kv(cache: &dyn KvCache) -> &SimKv {
    cache
        .as_any()
        .downcast_ref()
        .expect("a key/value store made by another backend was passed to the sim backend")
}

pub fn sim_kv_mut(cache: &mut dyn KvCache) -> &mut SimKv {
    cache
        .as_any_mut()
        .downcast_mut()
        .expect("a key/value store made by another backend was passed to the sim backend")
}

impl SimKv {
    pub fn new(shape: KvShape) -> Self {
        let size = shape.batch * shape.heads * shape.capacity * 2 * shape.head_dim;
        SimKv {
            shape,
            layers: (0..shape.layers)
                .map(|_| HostData::Bf16(vec![bf16::ZERO; size]))
                .collect(),
        }
    }

    /// Elements of one (sequence, head) block: `capacity` rows of `2 * head_dim`.
    fn head_block(&self) -> usize {
        self.shape.capacity * 2 * self.shape.head_dim
    }

    /// Layer `layer`'s buffer, `[batch, heads, capacity, 2 * head_dim]`.
    pub fn buffer(&self, layer: usize) -> &HostData {
        &self.layers[layer]
    }

    fn values(&self, layer: usize) -> &[bf16] {
        match &self.layers[layer] {
            HostData::Bf16(v) => v,
            _ => unreachable!("the store is made of bf16 buffers"),
        }
    }

    fn values_mut(&mut self, layer: usize) -> &mut [bf16] {
        match &mut self.layers[layer] {
            HostData::Bf16(v) => v,
            _ => unreachable!("the store is made of bf16 buffers"),
        }
    }

    /// Rows `0..rows` of every (sequence, head) block of sequence `seq`, as
    /// `[heads, rows, 2 * head_dim]` f32 (rows past `capacity` are not read).
    pub fn rows_of(&self, layer: usize, seq: usize, rows: usize) -> Vec<f32> {
        let (heads, width) = (self.shape.heads, 2 * self.shape.head_dim);
        let block = self.head_block();
        let store = self.values(layer);
        let mut out = Vec::with_capacity(heads * rows * width);
        for h in 0..heads {
            let base = (seq * heads + h) * block;
            out.extend(store[base..base + rows * width].iter().map(|v| v.to_f32()));
        }
        out
    }

    /// Layer `layer`'s first `len` positions as a one-layer cpu store (for the calls only the
    /// host serves).
    pub fn to_cpu(&self, layer: usize, len: usize) -> CpuKv {
        let KvShape {
            batch,
            heads,
            head_dim: d,
            ..
        } = self.shape;
        let mut cpu = CpuKv::new(KvShape {
            layers: 1,
            ..self.shape
        });
        // Rows `[batch, len]` of every head's key, then every head's value.
        let width = 2 * heads * d;
        let mut data = vec![0.0f32; batch * len * width];
        for seq in 0..batch {
            let block = self.rows_of(layer, seq, len);
            for h in 0..heads {
                for j in 0..len {
                    let from = (h * len + j) * 2 * d;
                    let row = (seq * len + j) * width;
                    data[row + h * d..][..d].copy_from_slice(&block[from..from + d]);
                    data[row + (heads + h) * d..][..d]
                        .copy_from_slice(&block[from + d..from + 2 * d]);
                }
            }
        }
        let rows = KvRows {
            data: &data,
            stride: width,
            k_offset: 0,
            v_offset: heads * d,
            n_new: len,
        };
        cpu.write(0, 0, rows);
        cpu
    }

    /// Positions `pos .. pos + rows.n_new` of every sequence from `rows`.
    pub fn write(&mut self, layer: usize, pos: usize, rows: KvRows) {
        let KvShape {
            batch,
            capacity,
            heads,
            head_dim: d,
            ..
        } = self.shape;
        assert!(
            pos + rows.n_new <= capacity,
            "key/value store of {capacity} positions exceeded"
        );
        let block = self.head_block();
        let store = self.values_mut(layer);
        for seq in 0..batch {
            for i in 0..rows.n_new {
                let src = &rows.data[(seq * rows.n_new + i) * rows.stride..];
                for h in 0..heads {
                    let at = (seq * heads + h) * block + (pos + i) * 2 * d;
                    let row = &mut store[at..at + 2 * d];
                    let k = &src[rows.k_offset + h * d..][..d];
                    let v = &src[rows.v_offset + h * d..][..d];
                    for (o, x) in row.iter_mut().zip(k.iter().chain(v)) {
                        *o = bf16::from_f32(*x);
                    }
                }
            }
        }
    }

    /// Keeps sequence `order[i]` as the new sequence `i`, copying the first `len` rows of
    /// each (sequence, head) block.
    pub fn reorder(&mut self, order: &[usize], len: usize) {
        let same =
            order.len() == self.shape.batch && order.iter().enumerate().all(|(i, &o)| i == o);
        if same {
            return;
        }
        let heads = self.shape.heads;
        let block = self.head_block();
        let live = len * 2 * self.shape.head_dim;
        for layer in 0..self.layers.len() {
            let old = self.values(layer);
            let mut new = vec![bf16::ZERO; order.len() * heads * block];
            for (i, &src) in order.iter().enumerate() {
                for h in 0..heads {
                    let (to, from) = ((i * heads + h) * block, (src * heads + h) * block);
                    new[to..to + live].copy_from_slice(&old[from..from + live]);
                }
            }
            self.layers[layer] = HostData::Bf16(new);
        }
        self.shape.batch = order.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batch: usize) -> KvShape {
        KvShape {
            layers: 1,
            batch,
            capacity: 4,
            heads: 2,
            head_dim: 2,
        }
    }

    #[test]
    fn write_places_k_then_v_per_head_and_reorder_moves_sequences() {
        let mut kv = SimKv::new(shape(2));
        // Two sequences, one new row each: [k_h0 k_h1 | v_h0 v_h1] = 4 + 4 values.
        let data: Vec<f32> = (0..16).map(|x| x as f32).collect();
        let rows = KvRows {
            data: &data,
            stride: 8,
            k_offset: 0,
            v_offset: 4,
            n_new: 1,
        };
        kv.write(0, 1, rows);
        // Sequence 1, head 1, position 1: K = data[8+2..8+4], V = data[8+6..8+8].
        let s1 = kv.rows_of(0, 1, 2);
        assert_eq!(&s1[8 + 4..8 + 8], &[10.0, 11.0, 14.0, 15.0]);
        assert_eq!(&s1[8..8 + 4], &[0.0; 4], "position 0 was not written");
        kv.reorder(&[1, 1], 2);
        assert_eq!(kv.rows_of(0, 0, 2), s1);
        assert_eq!(kv.rows_of(0, 1, 2), s1);
        kv.reorder(&[0], 2);
        assert_eq!(kv.shape().batch, 1);
        assert_eq!(kv.buffer(0).len(), 2 * 4 * 4);
    }
}
