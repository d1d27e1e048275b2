//! The Whisper linear-layer kernels chained as the runtime uses them: float activations
//! quantised by the `quantize` design, fed unchanged to the `linear` design with weights from
//! `pack_weights`, compared with the float layer in f64; the quantiser bit-identical to the
//! runtime's rule; conv's packed weights against a direct convolution.

use aiec::ops::conv::ConvSpec;
use aiec::ops::linear::layout::quantize_row;
use aiec::ops::linear::LinearSpec;
use aiec::sim::inputs::InputGen;
use aiec::sim::HostData;
use aiec::spec::Spec;
use half::bf16;

#[allow(dead_code)]
mod common;
use common::specs::{matmul_toml, parse as spec, rowwise_toml};

/// bf16 activations 32 x 64 quantised to int8 rows on 2 x 2 cores.
fn quantize() -> String {
    rowwise_toml(["quantize", "q", "bf16"], [32, 64], 4, [2, 2])
}

/// The int8 layer on them, dequantised to f32 by its epilogue.
fn linear() -> String {
    let text = matmul_toml(["linear", "l", "int8"], [32, 64, 32], [8, 16, 8], [2, 2]);
    text + "epilogue = \"acc * sa[row] * sw[col] + bias[col]\"\nout_dtype = \"f32\"\n"
}

fn simulate(spec: &Spec, inputs: Vec<HostData>) -> Vec<HostData> {
    aiec::sim::run(&spec.build().unwrap(), inputs).unwrap()
}

#[test]
fn quantised_layer_matches_the_float_layer_within_the_quantisation_bound() {
    let (m, k, n) = (32, 64, 32);
    let mut gen = InputGen::new(7);
    let x: Vec<bf16> = (0..m * k)
        .map(|i| bf16::from_f64(gen.normal() * (1.0 + (i / k) as f64)))
        .collect();
    let w: Vec<f32> = (0..n * k).map(|_| (0.1 * gen.normal()) as f32).collect();
    let bias: Vec<f32> = (0..n).map(|_| gen.normal() as f32).collect();

    // The quantiser's output is exactly the runtime's rule, row by row.
    let q = simulate(&spec(&quantize()), vec![HostData::Bf16(x.clone())]).remove(0);
    let HostData::I8(q) = q else {
        panic!("quantize output is {:?}", q.elem())
    };
    let mut scales = Vec::new();
    for (r, row) in x.chunks(k).enumerate() {
        let xf: Vec<f32> = row.iter().map(|v| v.to_f32()).collect();
        let (want, scale) = quantize_row(&xf);
        let got = &q[r * (k + 4)..(r + 1) * (k + 4)];
        assert_eq!(&got[..k], &want[..], "row {r}");
        let bytes: Vec<u8> = got[k..].iter().map(|&b| b as u8).collect();
        assert_eq!(
            f32::from_le_bytes(bytes.try_into().unwrap()),
            scale,
            "row {r}"
        );
        scales.push(f64::from(scale));
    }

    let lin = spec(&linear());
    let packed = lin
        .downcast::<LinearSpec>()
        .unwrap()
        .pack_weights(&w, Some(&bias))
        .unwrap();
    let sw: Vec<f64> = packed
        .weight_scales
        .unwrap()
        .iter()
        .map(|&s| s.into())
        .collect();
    let y = simulate(&lin, vec![HostData::I8(q), packed.b])
        .remove(0)
        .to_f64();

    // y = x W^T + b in f64; each operand is off by at most half its quantisation step.
    let mut worst = 0f64;
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut bound) = (f64::from(bias[j]), 1e-5);
            for l in 0..k {
                let (a, b) = (x[i * k + l].to_f64(), f64::from(w[j * k + l]));
                want += a * b;
                bound += a.abs() * sw[j] / 2.0 + b.abs() * scales[i] / 2.0;
                bound += scales[i] * sw[j] / 4.0;
            }
            let err = (y[i * n + j] - want).abs();
            assert!(
                err <= bound,
                "({i}, {j}): {} vs {want}, bound {bound}",
                y[i * n + j]
            );
            worst = worst.max(err / bound);
        }
    }
    // The bound is not vacuous: the error uses a visible part of it.
    assert!(worst > 0.01, "worst error / bound {worst}");
}

const CONV: &str = r#"
op = "conv"
name = "c"
device = "npu1"
dtype = "bf16"
c_in = 16
c_out = 32
frames = 32
stride = 2
tile = { m = 4, k = 16, n = 8 }
array = { columns = 2, cores_per_column = 2 }
epilogue = "acc + bias[col]"
out_dtype = "f32"
"#;

#[test]
fn conv_with_packed_checkpoint_weights_is_the_direct_convolution() {
    let s = spec(CONV);
    let conv = s.downcast::<ConvSpec>().unwrap();
    let (ci, co, frames, stride) = (conv.c_in, conv.c_out, conv.frames, conv.stride);
    let mut gen = InputGen::new(3);
    // Checkpoint layout w[o][c][j], already bf16-representable so packing is exact.
    let w: Vec<f32> = (0..co * ci * 3)
        .map(|_| bf16::from_f64(gen.normal()).to_f32())
        .collect();
    let bias: Vec<f32> = (0..co).map(|_| gen.normal() as f32).collect();
    let x: Vec<f64> = (0..frames * ci)
        .map(|_| bf16::from_f64(gen.normal()).to_f64())
        .collect();
    // Time-major, zero-padded input.
    let mut padded = vec![bf16::ZERO; (frames + 2) * ci];
    for (i, v) in x.iter().enumerate() {
        padded[ci + i] = bf16::from_f64(*v);
    }
    let packed = conv.pack_weights(&w, Some(&bias)).unwrap();
    let y = simulate(&s, vec![HostData::Bf16(padded), packed.b])
        .remove(0)
        .to_f64();
    let out_frames = conv.out_frames();
    assert_eq!(y.len(), out_frames * co);
    for t in 0..out_frames {
        for o in 0..co {
            let (mut want, mut abs) = (f64::from(bias[o]), f64::from(bias[o]).abs());
            for c in 0..ci {
                for j in 0..3 {
                    // Input frame t*stride + j - 1 (padding 1), zero outside.
                    let Some(f) = (t * stride + j).checked_sub(1).filter(|&f| f < frames) else {
                        continue;
                    };
                    let p = x[f * ci + c] * f64::from(w[(o * ci + c) * 3 + j]);
                    want += p;
                    abs += p.abs();
                }
            }
            let bound = (3 * ci + 4) as f64 * 2f64.powi(-24) * abs;
            let got = y[t * co + o];
            assert!((got - want).abs() <= bound, "({t}, {o}): {got} vs {want}");
        }
    }
}
