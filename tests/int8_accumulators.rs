//! One int8 scheme on every device: given the same activations, the compiled `linear` design
//! (`--device sim`) and the cpu's int8 kernels (`--device cpu --precision int8`, VNNI/AVX2)
//! quantise to the same bytes and produce bit-identical int32 accumulators, so their
//! dequantised outputs are bit-identical too.
//!
//! Checked on real data: the input of whisper-base's conv2 on the JFK clip (log-mel, then
//! conv1 and GELU in f32, then im2col), with the model's own conv2 weights. Needs the
//! whisper-base model installed (`aiec models install whisper-base`).

use std::path::Path;

use aiec::device::DeviceModel;
use aiec::ops::linear::layout::quantize_row;
use aiec::ops::linear::LinearSpec;
use aiec::plan::tiling::matmul_candidates;
use aiec::sim::{HostData, Prepared, SimOptions};
use aiec::simdevice::SimBackend;
use aiec::spec::Spec;
use aiec_runtime::backend::cpu::int8::{self, Kernel, PackedI8};
use aiec_runtime::backend::cpu::{im2col, CpuBackend};
use aiec_runtime::backend::{Backend, ConvInput, ConvLayout, Epilogue, LinearWeights, Precision};
use aiec_runtime::model::WhisperModelFiles;

/// Rows of conv2's im2col input used (of 1500): enough to cover speech and silence frames.
const ROWS: usize = 96;

/// conv2's weights (`[d, 3 d]`) and a slice of its real input rows (`[ROWS, 3 d]`).
fn conv2_weights_and_input() -> (LinearWeights, Vec<f32>) {
    let dir = aiec_runtime::model::install::resolve("whisper-base")
        .expect("the whisper-base model is installed (aiec models install whisper-base)");
    let files = WhisperModelFiles::load(&dir).expect("whisper-base loads");
    let (d, n_mels) = (files.dims.d_model, files.dims.n_mels);
    let tensor = |name: &str| files.bin.get(name).expect(name).to_f32().expect(name);
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audio/jfk.wav");
    let samples = aiec_runtime::audio::load(&clip).expect("jfk.wav decodes");
    let mel = aiec_runtime::mel::log_mel(&samples, n_mels);
    let frames = 3000;
    let window = mel.window(0, frames);
    // conv1 + GELU in f32, as the reference forward computes it.
    let cpu = CpuBackend::new(Precision::F32);
    let conv1 = cpu
        .prepare_linear(LinearWeights {
            name: "encoder/conv1".into(),
            weight: tensor("encoder/conv1/weight"),
            bias: Some(tensor("encoder/conv1/bias")),
            n: d,
            k: n_mels * 3,
        })
        .unwrap();
    let mut h1 = vec![0.0f32; frames * d];
    let input = ConvInput {
        x: &window,
        layout: ConvLayout::ChannelMajor,
        frames,
        stride: 1,
    };
    cpu.conv1d(&*conv1, input, Epilogue::GELU, &mut h1);
    let cols = im2col(
        ConvInput {
            x: &h1,
            layout: ConvLayout::TimeMajor,
            frames,
            stride: 2,
        },
        d,
    );
    let weights = LinearWeights {
        name: "encoder/conv2".into(),
        weight: tensor("encoder/conv2/weight"),
        bias: Some(tensor("encoder/conv2/bias")),
        n: d,
        k: 3 * d,
    };
    (weights, cols[..ROWS * 3 * d].to_vec())
}

fn copy(w: &LinearWeights) -> LinearWeights {
    LinearWeights {
        name: w.name.clone(),
        weight: w.weight.clone(),
        bias: w.bias.clone(),
        n: w.n,
        k: w.k,
    }
}

/// The int32 accumulators of `x Wᵀ` from the compiled `linear` design with the bare `acc`
/// epilogue (f32 output, exact below 2^24), on activations quantised by the shared rule.
fn sim_accumulators(w: &LinearWeights, x: &[f32], rows: usize) -> Vec<f32> {
    let (k, n) = (w.k, w.n);
    let dev = DeviceModel::get("npu1").unwrap();
    let tilings = matmul_candidates(rows, k, n, &dev);
    let (spec, design) = tilings
        .iter()
        .find_map(|t| {
            let toml = format!(
                "op = \"linear\"\nname = \"conv2_acc\"\ndevice = \"npu1\"\ndtype = \"int8\"\n\
                 shape = {{ m = {}, k = {k}, n = {n} }}\ntile = {{ m = {}, k = {}, n = {} }}\n\
                 array = {{ columns = {}, cores_per_column = {} }}\ndepth = 2\n\
                 epilogue = \"acc\"\nout_dtype = \"f32\"\n",
                t.shape.m, t.tile.m, t.tile.k, t.tile.n, t.array.columns, t.array.cores_per_column
            );
            let spec = Spec::parse(&toml, Path::new("conv2_acc.toml")).ok()?;
            let design = spec.build().ok()?;
            Some((spec, design))
        })
        .expect("a tiling of conv2's shape builds");
    let lin = spec.downcast::<LinearSpec>().unwrap();
    assert_eq!(lin.shape.n, n, "conv2's width needs no padding");
    let packed = lin.pack_weights(&w.weight, None).unwrap();
    let m = lin.shape.m;
    let mut a: Vec<i8> = x.chunks(k).flat_map(|row| quantize_row(row).0).collect();
    a.resize(m * k, 0);
    let prepared = Prepared::new(&design, &SimOptions::default()).unwrap();
    let run = prepared.run(vec![HostData::I8(a), packed.b]).unwrap();
    let c = run.outputs[0].to_f64();
    c[..rows * n].iter().map(|&v| v as f32).collect()
}

#[test]
fn sim_and_cpu_int8_accumulators_are_bit_identical_on_real_conv2_activations() {
    let (w, x) = conv2_weights_and_input();
    let (k, n) = (w.k, w.n);
    // The cpu path's own quantiser and kernel.
    let packed = PackedI8::new(&w.weight, None, n, k);
    let (xq, _) = int8::quantize_activations(&x, ROWS, k, packed.k4);
    // Block-major: `acc[blk][row][lane]`, 16 columns a block.
    let mut acc = vec![0i32; ROWS * packed.n_padded()];
    int8::accumulate(Kernel::best(), &xq, ROWS, &packed, &mut acc);
    let cpu_acc = |r: usize, j: usize| acc[((j / 16) * ROWS + r) * 16 + j % 16];
    // The shared rule gives the cpu's bytes.
    for (r, row) in x.chunks(k).enumerate() {
        let shared = quantize_row(row).0;
        let cpu_row = &xq[r * packed.k4..r * packed.k4 + k];
        let differing = shared.iter().zip(cpu_row).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing, 0,
            "row {r}: {differing} of {k} values quantise differently"
        );
    }
    let sim = sim_accumulators(&w, &x, ROWS);
    let mut largest = 0i64;
    for r in 0..ROWS {
        for j in 0..n {
            let cpu = cpu_acc(r, j);
            largest = largest.max(i64::from(cpu).abs());
            assert_eq!(
                sim[r * n + j],
                cpu as f32,
                "accumulator ({r}, {j}): sim {} vs cpu {cpu}",
                sim[r * n + j]
            );
        }
    }
    // f32 holds every integer below 2^24 exactly, so equal f32s are equal int32s.
    assert!(
        largest < 1 << 24,
        "accumulator {largest} too large to compare through f32"
    );
    assert!(
        largest > 10_000,
        "real activations give large sums, got {largest}"
    );
}

#[test]
fn sim_and_cpu_int8_linear_layers_agree_bit_for_bit_on_real_conv2_activations() {
    let (w, x) = conv2_weights_and_input();
    let n = w.n;
    let sim = SimBackend::new(Precision::Int8).unwrap();
    let cpu = CpuBackend::new(Precision::Int8);
    let (ws, wc) = (
        sim.prepare_linear(copy(&w)).unwrap(),
        cpu.prepare_linear(w).unwrap(),
    );
    let (mut ys, mut yc) = (vec![0.0; ROWS * n], vec![0.0; ROWS * n]);
    sim.linear(&*ws, &x, Epilogue::NONE, &mut ys);
    cpu.linear(&*wc, &x, Epilogue::NONE, &mut yc);
    let differing = ys.iter().zip(&yc).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} of {} outputs differ", ys.len());
    assert!(
        yc.iter().any(|&v| v.abs() > 0.1),
        "the layer's outputs are not trivial"
    );
}
