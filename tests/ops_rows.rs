//! The row kernels (layernorm, its fused quantising variant, rmsnorm, softmax, quantize) on
//! and off the vector width: rows of 16 f32 lanes where 16 divides `cols` (here 16 and 48),
//! the scalar fallback otherwise (8 and 24). Each design runs on the simulator against its
//! float64 reference; quantize must also give the runtime's int8 rule bit for bit.

use aiec::sim::{self, HostData, SimOptions};
use aiec::spec::Spec;
use aiec_runtime::quant::quantize_row;

#[allow(dead_code)]
mod common;
use common::rng::Xorshift as Rng;
use common::specs::{parse, rowwise_toml};

/// Row lengths on the vector width (16, 48: one and three chunks) and off it (8, 24).
const COLS: [(usize, bool); 4] = [(16, true), (48, true), (8, false), (24, false)];

/// Whether the design's kernels use 16-lane f32 vectors, and whether any vector at all.
fn vector_use(spec: &Spec) -> (bool, bool) {
    let mlir = aiec::mlir::emit(&spec.build().unwrap()).unwrap();
    (mlir.contains("vector<16xf32>"), mlir.contains("vector<"))
}

/// A row-wise spec of `op` over `rows x cols` on 1 x 2 cores, two rows per tile.
fn spec(op: &str, dtype: &str, rows: usize, cols: usize, extra: &str) -> Spec {
    parse(&(rowwise_toml([op, "t", dtype], [rows, cols], 2, [1, 2]) + extra))
}

/// Builds, checks the vector shape, and runs the spec against its float64 reference.
fn assert_matches_reference(spec: &Spec, cols: usize, vector: bool, what: &str) {
    assert_eq!(vector_use(spec), (vector, vector), "{what}");
    let check = sim::verify::check_spec(spec, cols as u64, &SimOptions::default()).unwrap();
    let c = &check.comparison;
    assert!(c.passed(), "{what}: {c:?}");
    assert!(c.elements > 0, "{what}");
}

#[test]
fn norms_on_and_off_the_vector_width_match_the_reference() {
    for (cols, vector) in COLS {
        for dtype in ["bf16", "f32"] {
            for (op, extra) in [
                ("layernorm", "epsilon = 1e-5\n"),
                ("layernorm", "epsilon = 1e-5\nquantize = true\n"),
                ("rmsnorm", "epsilon = 1e-6\n"),
            ] {
                let what = format!("{op} {dtype} cols {cols} ({})", extra.trim());
                assert_matches_reference(&spec(op, dtype, 8, cols, extra), cols, vector, &what);
            }
        }
    }
}

#[test]
fn softmax_on_and_off_the_vector_width_matches_the_reference() {
    // Causal rows end inside a chunk (row r sees r + 1 columns), so every mask position of
    // the last chunk occurs; with 48 rows and columns the diagonal crosses all three chunks.
    for (cols, vector) in COLS {
        for (dtype, causal) in [("bf16", false), ("bf16", true), ("f32", true)] {
            let extra = format!("causal = {causal}\n");
            let s = spec("softmax", dtype, cols.max(8), cols, &extra);
            let what = format!("softmax {dtype} cols {cols} causal {causal}");
            assert_matches_reference(&s, cols, vector, &what);
        }
    }
}

#[test]
fn quantize_on_and_off_the_vector_width_matches_the_reference() {
    for (cols, vector) in COLS {
        for dtype in ["bf16", "f32"] {
            let what = format!("quantize {dtype} cols {cols}");
            // bf16 input stays scalar (src/ops/quantize.rs: mlir-aie's vectoriser rejects it).
            let vector = vector && dtype == "f32";
            assert_matches_reference(&spec("quantize", dtype, 8, cols, ""), cols, vector, &what);
        }
    }
}

/// Rows for the bit-exactness check: random magnitudes, a zero row, and a row whose max is
/// 127 (so `inv = 1` and `x · inv = x` exactly) holding exact half-integer ties.
fn quantize_rows(rows: usize, cols: usize, rng: &mut Rng) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let s = rng.uniform(0.01, 40.0);
        x.extend((0..cols).map(|j| match r {
            1 => 0.0,
            2 if j == 0 => -127.0,
            2 => [0.5, 1.5, 2.5, -2.5, -0.5, 126.5, -126.5, 3.0][j % 8],
            _ => (rng.uniform(-1.0, 1.0) * s) as f32,
        }));
    }
    x
}

#[test]
fn quantize_gives_the_runtimes_int8_rule_bit_for_bit() {
    // The sim int8 path's A operand comes from this design, the cpu int8 path's from
    // `aiec_runtime::quant::quantize_row`: their accumulators agree only if the bytes do.
    let rows = 8;
    for (cols, vector) in COLS {
        let s = spec("quantize", "f32", rows, cols, "");
        assert_eq!(vector_use(&s).0, vector, "cols {cols}");
        let x = quantize_rows(rows, cols, &mut Rng(cols as u64 + 3));
        let out = sim::run(&s.build().unwrap(), vec![HostData::F32(x.clone())]).unwrap();
        let HostData::I8(y) = &out[0] else {
            panic!("{:?}", out[0])
        };
        let mut ties = 0;
        for (r, (row, got)) in x.chunks(cols).zip(y.chunks(cols + 4)).enumerate() {
            let mut want = vec![0i8; cols];
            let scale = quantize_row(row, &mut want);
            assert_eq!(&got[..cols], &want[..], "cols {cols} row {r}");
            let bytes: Vec<u8> = got[cols..].iter().map(|&b| b as u8).collect();
            let got_scale = f32::from_le_bytes(bytes.try_into().unwrap());
            assert_eq!(got_scale.to_bits(), scale.to_bits(), "cols {cols} row {r}");
            ties += row.iter().filter(|v| v.fract().abs() == 0.5).count();
        }
        // The tie row took part, and its ties went to even (1.5 -> 2, 2.5 -> 2, -0.5 -> 0).
        assert!(ties >= cols / 2, "cols {cols}: {ties} ties");
        let tie_row = &y[2 * (cols + 4)..2 * (cols + 4) + 8];
        assert_eq!(tie_row, &[-127, 2, 2, -2, 0, 126, -126, 3], "cols {cols}");
    }
}

#[test]
fn gelu_and_elementwise_on_and_off_the_vector_width_match_the_reference() {
    // Inputs N(0, 2^2) cross the table and both tails, so the lane selects of the lookup
    // (below / inside / above) all occur in each chunk shape.
    let bodies = [
        (
            "gelu",
            "table = { min = -4.0, max = 4.0, step = 0.03125 }\n",
        ),
        (
            "elementwise",
            "expr = \"x * 0.5 * (1 + erf(x * 0.7071067811865476))\"\n",
        ),
        (
            "elementwise",
            "expr = \"tanh(x) + sigmoid(x) - relu(x) * silu(x) / 4\"\n",
        ),
        (
            "elementwise",
            "lut = { fn = \"gelu\", range = [-4, 4], step = 0.03125 }\n",
        ),
        (
            "elementwise",
            "lut = { fn = \"x * x\", range = [-2, 2], step = 0.0625 }\n",
        ),
    ];
    for (cols, vector) in COLS {
        for dtype in ["bf16", "f32"] {
            for (op, extra) in bodies {
                let what = format!("{op} {dtype} cols {cols} ({})", extra.trim());
                // An expression over bf16 stays scalar (mlir-aie's vectoriser rejects its
                // widened-bf16-times-f32 multiplies; src/expr/mod.rs says why).
                let vector = vector && !(dtype == "bf16" && extra.starts_with("expr"));
                assert_matches_reference(&spec(op, dtype, 8, cols, extra), cols, vector, &what);
            }
        }
    }
}
