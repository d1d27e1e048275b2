//! Whole op designs (FIFOs, memtile split/join, runtime-sequence access patterns, kernels) run
//! in the host simulator, against the f64 references.

use aiec::ops::matmul::Requant;
use aiec::ops::{attention, layernorm, matmul, softmax};
use aiec::sim::{self, HostData};
use half::bf16;

#[allow(dead_code)]
mod common;
use common::layout::kv_rows;
use common::rng::Xorshift as Rng;
use common::specs::{attention_toml, build as design, matmul_toml, mel_toml, rowwise_toml};

#[test]
fn int8_matmul_over_two_columns_is_bit_exact() {
    let (m, k, n) = (64, 96, 64);
    let text = matmul_toml(["matmul", "t", "int8"], [m, k, n], [8, 32, 16], [2, 4]);
    let d = design(&(text + "requant = { shift = 10, scale = 3 }\n"));
    let mut rng = Rng(7);
    let (a, b) = (rng.i8s(m * k), rng.i8s(k * n));
    let out = sim::run(&d, vec![HostData::I8(a.clone()), HostData::I8(b.clone())]).unwrap();
    let HostData::I8(c) = &out[0] else {
        panic!("{:?}", out[0])
    };
    let want = matmul::reference_int8(
        &a,
        &b,
        m,
        k,
        n,
        Requant {
            shift: 10,
            scale: 3,
        },
    );
    assert_eq!(c, &want);
}

#[test]
fn causal_softmax_and_layernorm_designs_match_references() {
    let (rows, cols) = (32, 24);
    let mut rng = Rng(11);
    let x: Vec<f32> = (0..rows * cols)
        .map(|_| rng.uniform(-8.0, 8.0) as f32)
        .collect();
    let x64: Vec<f64> = x.iter().map(|v| *v as f64).collect();
    let text = rowwise_toml(["softmax", "t", "f32"], [rows, cols], 2, [2, 4]);
    let d = design(&(text + "causal = true\n"));
    let out = sim::run(&d, vec![HostData::F32(x.clone())]).unwrap();
    let HostData::F32(y) = &out[0] else { panic!() };
    let want = softmax::reference(&x64, rows, cols, true);
    for (i, (g, w)) in y.iter().zip(&want).enumerate() {
        assert!((*g as f64 - w).abs() <= 1e-5, "softmax [{i}] {g} vs {w}");
    }

    let text = rowwise_toml(["layernorm", "t", "bf16"], [rows, cols], 4, [1, 4]);
    let d = design(&(text + "epsilon = 1e-5\n"));
    let xb: Vec<bf16> = x.iter().map(|v| bf16::from_f32(*v)).collect();
    let gamma: Vec<f64> = (0..cols).map(|j| 0.5 + j as f64 / cols as f64).collect();
    let beta: Vec<f64> = (0..cols).map(|j| j as f64 / 10.0 - 1.0).collect();
    let params: Vec<bf16> = gamma
        .iter()
        .chain(&beta)
        .map(|v| bf16::from_f64(*v))
        .collect();
    let out = sim::run(
        &d,
        vec![HostData::Bf16(xb.clone()), HostData::Bf16(params.clone())],
    )
    .unwrap();
    let HostData::Bf16(y) = &out[0] else { panic!() };
    let xr: Vec<f64> = xb.iter().map(|v| v.to_f64()).collect();
    let g: Vec<f64> = params[..cols].iter().map(|v| v.to_f64()).collect();
    let b: Vec<f64> = params[cols..].iter().map(|v| v.to_f64()).collect();
    let want = layernorm::reference(&xr, rows, cols, &g, &b, 1e-5);
    for (i, (g, w)) in y.iter().zip(&want).enumerate() {
        let g = g.to_f64();
        assert!(
            (g - w).abs() <= layernorm::TOLERANCE * (1.0 + w.abs()),
            "layernorm [{i}] {g} vs {w}"
        );
    }
}

#[test]
fn attention_design_deals_heads_and_streams_kv() {
    let (heads, len, dh) = (4, 16, 8);
    let d = design(&attention_toml(heads, [len, len, dh], [4, 8], [1, 2], true));
    let mut rng = Rng(5);
    let mut gen =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect() };
    let (q, k, v) = (
        gen(heads * len * dh),
        gen(heads * len * dh),
        gen(heads * len * dh),
    );
    // Host layout KV [heads, len, 2*dh]: row j = K_j then V_j.
    let kv = kv_rows(&k, &v, dh, 0..heads * len);
    let out = sim::run(&d, vec![HostData::F32(q.clone()), HostData::F32(kv)]).unwrap();
    let HostData::F32(o) = &out[0] else { panic!() };
    let f = |x: &[f32]| x.iter().map(|v| *v as f64).collect::<Vec<_>>();
    for h in 0..heads {
        let s = h * len * dh..(h + 1) * len * dh;
        let want = attention::reference(
            &f(&q[s.clone()]),
            &f(&k[s.clone()]),
            &f(&v[s.clone()]),
            len,
            len,
            dh,
            1.0 / (dh as f64).sqrt(),
            true,
        );
        for (i, (g, w)) in o[s.clone()].iter().zip(&want).enumerate() {
            assert!((*g as f64 - w).abs() <= 1e-4, "head {h} [{i}] {g} vs {w}");
        }
    }
}

#[test]
fn mel_design_plus_host_finish_matches_the_runtime_front_end() {
    use aiec::ops::mel;
    let frames = 48;
    let d = design(&mel_toml(frames, 2, [2, 4]));
    // Whisper keeps (len + 160) / 160 frames: choose len so that is exactly `frames`.
    let len = frames * mel::HOP - mel::HOP;
    let mut rng = Rng(2024);
    let samples: Vec<f32> = (0..len)
        .map(|i| {
            let t = i as f64 / 16000.0;
            (0.2 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() * (1.0 + (7.0 * t).sin())
                + rng.uniform(-0.02, 0.02)) as f32
        })
        .collect();
    let (padded, kept) = mel::pad_for_stft(&samples);
    assert_eq!(kept, frames);
    let padded = padded[..(frames - 1) * mel::HOP + mel::N_FFT].to_vec();
    let out = sim::run(&d, vec![HostData::F32(padded)]).unwrap();
    let HostData::F32(mut y) = out.into_iter().next().unwrap() else {
        panic!()
    };
    mel::finish_on_host(&mut y);
    let want = aiec_runtime::mel::log_mel(&samples, 80);
    assert_eq!(want.n_frames, frames);
    let mut worst = 0f64;
    for (g, w) in y.iter().zip(&want.data) {
        worst = worst.max((*g as f64 - *w as f64).abs());
    }
    assert!(worst <= mel::TOLERANCE, "worst {worst}");
}

#[test]
fn one_row_matmul_with_more_n_blocks_than_a_bd_repeats() {
    // 70 column blocks per column > 64 repeats of a shim BD: the fills go in two chunks.
    let (m, k, n) = (1, 32, 4 * 70 * 2);
    let text = matmul_toml(["matmul", "t", "int8"], [m, k, n], [1, 16, 4], [2, 1]);
    let d = design(&(text + "requant = { shift = 6, scale = 1 }\n"));
    aiec::mlir::verify(&d).unwrap();
    let mut rng = Rng(3);
    let (a, b) = (rng.i8s(m * k), rng.i8s(k * n));
    let out = sim::run(&d, vec![HostData::I8(a.clone()), HostData::I8(b.clone())]).unwrap();
    let HostData::I8(c) = &out[0] else { panic!() };
    assert_eq!(
        c,
        &matmul::reference_int8(&a, &b, m, k, n, Requant { shift: 6, scale: 1 })
    );
}

#[test]
fn gelu_design_over_three_columns_matches_erf_gelu() {
    use aiec::ops::gelu;
    let (rows, cols) = (24, 64);
    let text = rowwise_toml(["gelu", "t", "bf16"], [rows, cols], 2, [3, 4]);
    let d = design(&(text + "table = { min = -4.0, max = 4.0, step = 0.03125 }\n"));
    let x: Vec<bf16> = (0..rows * cols)
        .map(|i| bf16::from_f64(-6.0 + 12.0 * i as f64 / (rows * cols) as f64))
        .collect();
    let out = sim::run(&d, vec![HostData::Bf16(x.clone())]).unwrap();
    let HostData::Bf16(y) = &out[0] else { panic!() };
    for (i, (xi, yi)) in x.iter().zip(y).enumerate() {
        let want = gelu::reference(xi.to_f64());
        let bound = gelu::TOLERANCE + want.abs() / 256.0;
        assert!(
            (yi.to_f64() - want).abs() <= bound,
            "[{i}] gelu({xi}) = {yi} vs {want}"
        );
    }
}
