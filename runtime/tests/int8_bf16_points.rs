//! `--precision int8` on the cpu is the NPU plan's numerics, bf16 points included: its
//! layernorm, GELU and attention give what f32 gives with the values rounded to bf16 where
//! the plan's kernels hold bf16 (outputs, attention's Q/K/V, the KV caches). The rounding
//! reference is written here from the bf16 definition (the top 16 bits of the f32, round to
//! nearest, ties to even), not taken from the library the backend uses.

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{
    AttentionCall, Backend, KvRows, KvShape, KvSource, NormWeights, Precision, Queries,
};

/// `x` rounded to the nearest bf16, ties to even (finite inputs).
fn bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    f32::from_bits(rounded & 0xffff_0000)
}

fn rounded(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| bf16(v)).collect()
}

/// Deterministic values in about [-2, 2] with many mantissa bits set.
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.618_034 + seed as f32 * 1.3).sin() * 2.0) + 1e-3)
        .collect()
}

fn backends() -> (CpuBackend, CpuBackend) {
    (
        CpuBackend::new(Precision::Int8),
        CpuBackend::new(Precision::F32),
    )
}

/// `int8 == bf16(f32 of the same inputs)` element for element, and the rounding did
/// something (so the f32 values were not already bf16).
fn assert_bf16_of(int8: &[f32], f32_ref: &[f32], what: &str) {
    assert_eq!(int8.len(), f32_ref.len());
    for (i, (&a, &r)) in int8.iter().zip(f32_ref).enumerate() {
        assert_eq!(
            a.to_bits(),
            bf16(r).to_bits(),
            "{what}[{i}]: {a} vs bf16({r})"
        );
    }
    assert!(
        int8.iter().zip(f32_ref).any(|(a, r)| a != r),
        "{what}: no value changed by the bf16 rounding"
    );
}

#[test]
fn layer_norm_output_is_the_f32_norm_rounded_to_bf16() {
    let (int8, f32b) = backends();
    let (rows, dim) = (3, 64);
    let weights = || NormWeights {
        name: "ln".into(),
        gamma: values(dim, 1),
        beta: values(dim, 2),
    };
    let x = values(rows * dim, 3);
    let (mut a, mut r) = (vec![0.0; rows * dim], vec![0.0; rows * dim]);
    int8.layer_norm(&*int8.prepare_layer_norm(weights()).unwrap(), &x, &mut a);
    f32b.layer_norm(&*f32b.prepare_layer_norm(weights()).unwrap(), &x, &mut r);
    assert_bf16_of(&a, &r, "layernorm");
}

#[test]
fn gelu_output_is_the_f32_gelu_rounded_to_bf16() {
    let (int8, f32b) = backends();
    let mut a = values(500, 4);
    let mut r = a.clone();
    int8.gelu(&mut a);
    f32b.gelu(&mut r);
    assert_bf16_of(&a, &r, "gelu");
}

#[test]
fn encoder_attention_reads_bf16_q_k_v_and_gives_bf16() {
    let (int8, f32b) = backends();
    let (heads, d, n) = (2, 16, 7);
    let data = values(n * 3 * heads * d, 5);
    // The int8 backend on the raw rows against the f32 backend on the bf16-rounded rows.
    let a = attend(&int8, &data, heads, d, n, inline(heads, d));
    let r = attend(&f32b, &rounded(&data), heads, d, n, inline(heads, d));
    assert_bf16_of(&a, &r, "encoder attention");
}

/// `heads` heads of attention of the `n` query rows of `data` (laid out `[q | k | v]`, one
/// sequence) over `kv`.
fn attend(
    backend: &dyn Backend,
    data: &[f32],
    heads: usize,
    d: usize,
    n: usize,
    kv: KvSource,
) -> Vec<f32> {
    let width = heads * d;
    let mut out = vec![0.0; n * width];
    let call = AttentionCall {
        heads,
        q: Queries {
            data,
            stride: 3 * width,
            offset: 0,
            batch: 1,
            per_batch: n,
        },
        kv,
        keep_heads: &[],
    };
    backend.attention(call, &mut out);
    out
}

/// The keys and values beside the queries (the encoder's self-attention).
fn inline(heads: usize, d: usize) -> KvSource<'static> {
    KvSource::Inline {
        k_offset: heads * d,
        v_offset: 2 * heads * d,
    }
}

#[test]
fn decoder_cache_holds_bf16_and_causal_attention_gives_bf16() {
    let (int8, f32b) = backends();
    let (heads, d, n) = (2, 16, 5);
    let width = heads * d;
    let data = values(n * 3 * width, 6);
    let shape = KvShape {
        layers: 1,
        batch: 1,
        capacity: 8,
        heads,
        head_dim: d,
    };
    let run = |backend: &dyn Backend, data: &[f32]| -> Vec<f32> {
        let mut cache = backend.new_kv_cache(shape);
        let rows = KvRows {
            data,
            stride: 3 * width,
            k_offset: width,
            v_offset: 2 * width,
            n_new: n,
        };
        backend.kv_write(&mut *cache, 0, 0, rows);
        let kv = KvSource::Causal {
            cache: &*cache,
            layer: 0,
            past: 0,
        };
        attend(backend, data, heads, d, n, kv)
    };
    let a = run(&int8, &data);
    let r = run(&f32b, &rounded(&data));
    assert_bf16_of(&a, &r, "causal attention");
}
