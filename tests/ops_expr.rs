//! Element-wise expressions: parse errors with their position, f64 evaluation against hand
//! values, and whole elementwise designs run in the host simulator against the f64 reference
//! within the documented per-element bound.

use std::path::Path;
use std::time::Duration;

use aiec::design::{BufferType, ElemType};
use aiec::expr::{self, Decl, Env, ExprError};
use aiec::ops::elementwise::{self, ElementwiseSpec};
use aiec::ops::registry::OpSpec;
use aiec::ops::{gelu, rowwise};
use aiec::sim::inputs::InputGen;
use aiec::sim::verify::Deadline;
use aiec::sim::{self, HostData};
use aiec::spec::{Fields, Spec, SpecError};
use half::bf16;

#[allow(dead_code)]
mod common;
use common::specs::{rowwise_toml, shipped_text};

fn err(src: &str, decl: &Decl) -> ExprError {
    expr::parse(src, decl).expect_err(src)
}

fn x_only() -> Decl {
    Decl::scalars(&["x"])
}

#[test]
fn syntax_errors_give_line_column_and_text() {
    let e = err("x +", &x_only());
    assert_eq!((e.line, e.column), (1, 4), "{e}");
    assert_eq!(e.text, "end of input");
    assert!(e.message.contains("expected"), "{e}");

    let e = err("x * (1 +\n   2 ))", &x_only());
    assert_eq!((e.line, e.column), (2, 7), "{e}");
    assert_eq!(e.text, ")");

    let e = err("x ** 2", &x_only());
    assert_eq!((e.line, e.column), (1, 4), "{e}");
    assert!(
        e.to_string().starts_with("line 1, column 4: syntax error"),
        "{e}"
    );
}

#[test]
fn check_errors_name_the_offending_text() {
    let decl = Decl::scalars(&["acc", "residual"]).with_vectors(&["bias", "sa"]);
    let e = err("acc * foo", &decl);
    assert_eq!((e.line, e.column, e.text.as_str()), (1, 7, "foo"));
    assert!(e.message.contains("unknown variable `foo`"), "{e}");
    assert!(e.message.contains("`acc`, `residual`"), "{e}");

    let e = err("acc + erff(acc)", &decl);
    assert_eq!((e.column, e.text.as_str()), (7, "erff"));
    assert!(e.message.contains("unknown function `erff`"), "{e}");

    let e = err("max(acc)", &decl);
    assert_eq!((e.column, e.text.as_str()), (1, "max(acc)"));
    assert!(e.message.contains("takes 2 arguments, got 1"), "{e}");

    let e = err("acc * bias[i]", &decl);
    assert_eq!((e.column, e.text.as_str()), (12, "i"));
    assert!(e.message.contains("`row` or `col`"), "{e}");

    let e = err("acc + bias", &decl);
    assert!(e.message.contains("is a vector"), "{e}");
    let e = err("acc + w[col]", &decl);
    assert!(e.message.contains("unknown vector `w`"), "{e}");
}

#[test]
fn eval_follows_precedence_and_hand_values() {
    let at = |src: &str, x: f64| {
        expr::parse(src, &x_only())
            .unwrap()
            .eval(&Env::with("x", x))
    };
    assert_eq!(at("2 + 3 * 4", 0.0), 14.0);
    assert_eq!(at("(2 + 3) * 4", 0.0), 20.0);
    assert_eq!(at("1 - 2 - 3", 0.0), -4.0);
    assert_eq!(at("8 / 4 / 2", 0.0), 1.0);
    assert_eq!(at("-x * 3", 2.0), -6.0);
    assert_eq!(at("2 * -x", 2.0), -4.0);
    assert_eq!(at("--x", 2.0), 2.0);
    assert_eq!(at("1e-3 + .5 + 2.", 0.0), 2.501);
    assert_eq!(at("max(x, 0)", -3.0), 0.0);
    assert_eq!(at("min(x, 0)", -3.0), -3.0);
    assert_eq!(at("relu(x) + abs(x)", -3.0), 3.0);
    assert_eq!(at("sqrt(x) * rsqrt(x)", 7.0), 1.0);
    // GELU(1) = Phi(1) = 0.841344746068543, by the erf formula and by the builtin.
    let erf_gelu = "x * 0.5 * (1 + erf(x * 0.7071067811865476))";
    assert!((at(erf_gelu, 1.0) - 0.841_344_746_068_543).abs() < 1e-12);
    assert!((at("gelu(x)", -1.0) + 0.158_655_253_931_457).abs() < 1e-12);
    // SiLU(1) = 1 / (1 + e^-1) = 0.731058578630005, tanh(0.5) = 0.46211715726001.
    assert!((at("silu(x)", 1.0) - 0.731_058_578_630_005).abs() < 1e-12);
    assert!((at("x * sigmoid(x)", 1.0) - 0.731_058_578_630_005).abs() < 1e-12);
    assert!((at("tanh(x)", 0.5) - 0.462_117_157_260_010).abs() < 1e-12);
    assert!((at("exp(x)", 1.0) - std::f64::consts::E).abs() < 1e-15);
}

#[test]
fn epilogue_reads_indexed_vectors_by_row_and_column() {
    let decl = Decl::scalars(&["acc", "residual"]).with_vectors(&["sa", "sw", "bias"]);
    let e = expr::parse(
        "gelu(acc * sa[row] * sw[col] + bias[col]) + residual",
        &decl,
    )
    .unwrap();
    let (sa, sw, bias) = ([1.0, 2.0], [0.5, 0.25, 4.0], [0.0, 1.0, -1.0]);
    let env = Env {
        scalars: vec![("acc", 3.0), ("residual", 10.0)],
        vectors: vec![("sa", &sa), ("sw", &sw), ("bias", &bias)],
        row: 1,
        col: 2,
    };
    // gelu(3 * 2 * 4 - 1) + 10 = gelu(23) + 10 = 33 (GELU(23) = 23 to 1e-100).
    assert!((e.eval(&env) - 33.0).abs() < 1e-12, "{}", e.eval(&env));
}

/// A small instance: 24 x 64 over 3 columns x 4 cores, 2-row tiles.
fn small_text(body: &str, dtype: &str) -> String {
    rowwise_toml(["elementwise", "t", dtype], [24, 64], 2, [3, 4]) + body + "\n"
}

/// Parses an elementwise spec through the registry.
fn from_toml(text: &str, path: &Path) -> Result<ElementwiseSpec, SpecError> {
    let spec = Spec::parse(text, path)?;
    Ok(spec
        .downcast::<ElementwiseSpec>()
        .expect("an elementwise spec")
        .clone())
}

fn check(spec: &ElementwiseSpec, dev: &aiec::device::DeviceModel) -> Result<(), SpecError> {
    spec.check(&Fields::new(&spec.name), dev)
}

fn small(body: &str, dtype: &str) -> ElementwiseSpec {
    from_toml(&small_text(body, dtype), Path::new("t.toml")).unwrap()
}

/// Inputs over [-6, 6] evenly plus the seeded normal draws of `aiec sim`; returns
/// (input, output, comparison).
fn simulate(spec: &ElementwiseSpec) -> (HostData, HostData, sim::verify::Comparison) {
    let dev = aiec::device::DeviceModel::get(&spec.device).unwrap();
    check(spec, &dev).unwrap();
    let design = elementwise::build(spec).unwrap();
    let n = spec.shape.rows * spec.shape.cols;
    let ramp = (0..n).map(|i| -6.0 + 12.0 * i as f64 / (n - 1) as f64);
    let x = match spec.dtype {
        aiec::spec::Dtype::Bf16 => HostData::Bf16(ramp.map(bf16::from_f64).collect()),
        _ => HostData::F32(ramp.map(|v| v as f32).collect()),
    };
    let y = sim::run(&design, vec![x.clone()]).unwrap().remove(0);
    let c = elementwise::compare(spec, &x, &y);
    // The seeded random inputs of `aiec sim` as well.
    let case = spec.test_case(&design, &mut InputGen::new(5));
    let outputs = sim::run(&design, case.inputs).unwrap();
    let cr = (case.judge)(&outputs, &Deadline::new(Duration::from_secs(600))).unwrap();
    assert!(cr.passed(), "random inputs: {cr:?}");
    (x, y, c)
}

fn assert_within(what: &str, spec: &ElementwiseSpec) -> f64 {
    let (_, _, c) = simulate(spec);
    eprintln!(
        "{what}: max |y - ref| = {:.3e}, worst {:?}",
        c.max_abs_error, c.worst
    );
    assert!(c.passed(), "{what}: {c:?}");
    c.max_abs_error
}

#[test]
fn gelu_by_erf_relu_silu_and_tanh_designs_match_f64() {
    let gelu = format!("expr = {:?}", "x * 0.5 * (1 + erf(x * 0.7071067811865476))");
    assert_within("bf16 gelu-erf", &small(&gelu, "bf16"));
    // ReLU of bf16 inputs is exact.
    assert_eq!(
        assert_within("bf16 relu", &small(r#"expr = "max(x, 0)""#, "bf16")),
        0.0
    );
    assert_within("bf16 silu", &small(r#"expr = "x * sigmoid(x)""#, "bf16"));
    assert_within("bf16 tanh", &small(r#"expr = "tanh(x)""#, "bf16"));
}

#[test]
fn f32_erf_kernel_stays_within_its_documented_bound() {
    // f32 output: the bound is the lowering's own (A&S 7.1.26 + roundings), not bf16's.
    let spec = small(r#"expr = "erf(x)""#, "f32");
    let (x, y, c) = simulate(&spec);
    assert!(c.passed(), "{c:?}");
    let worst = x
        .to_f64()
        .iter()
        .zip(y.to_f64())
        .map(|(a, b)| (b - libm::erf(*a)).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "f32 erf: max error {worst:.3e}, bound {:.3e}",
        expr::ERF_ERROR
    );
    assert!(worst <= expr::ERF_ERROR, "{worst}");
    // The bound is not vacuous: the approximation's error is a real fraction of it.
    assert!(worst > expr::ERF_ERROR / 10.0, "{worst}");
    // f32 outputs show the lowering's own error (bf16 outputs are dominated by rounding).
    for body in [
        r#"expr = "gelu(x)""#,
        r#"expr = "x * 0.5 * (1 + erf(x * 0.7071067811865476))""#,
        r#"expr = "silu(x)""#,
        r#"expr = "tanh(x)""#,
        r#"lut = { fn = "gelu", range = [-4.0, 4.0], step = 0.03125 }"#,
    ] {
        assert!(assert_within(&format!("f32 {body}"), &small(body, "f32")) > 0.0);
    }
}

#[test]
fn lut_form_reproduces_the_gelu_op_bit_for_bit() {
    let lut = r#"lut = { fn = "gelu", range = [-4.0, 4.0], step = 0.03125 }"#;
    let spec = small(lut, "bf16");
    let max_err = assert_within("bf16 gelu lut", &spec);
    let body = elementwise::body(&spec).unwrap();
    let aiec::expr::MapBody::Lut { lut, .. } = &body else {
        panic!("{body:?}")
    };
    let t = aiec::expr::lut::LutSpec {
        min: -4.0,
        max: 4.0,
        step: 0.03125,
    };
    assert_eq!(lut.table(), gelu::table(&t));
    assert!(
        lut.error_bound() <= gelu::TOLERANCE,
        "{}",
        lut.error_bound()
    );
    assert!(max_err > lut.error_bound() / 10.0, "{max_err}");

    // The GELU op on the same input gives the same bits.
    let table = "table = { min = -4.0, max = 4.0, step = 0.03125 }";
    let gelu_text = small_text(table, "bf16").replace("\"elementwise\"", "\"gelu\"");
    let gelu_spec = aiec::spec::Spec::parse(&gelu_text, Path::new("g.toml")).unwrap();
    let (x, y, _) = simulate(&spec);
    let y_op = sim::run(&gelu_spec.build().unwrap(), vec![x])
        .unwrap()
        .remove(0);
    assert_eq!(y, y_op);
}

#[test]
fn lut_tails_and_expressions_in_x() {
    // sigmoid's limits are 0 and 1; an explicit expression table with explicit tails.
    let sig = r#"lut = { fn = "sigmoid", range = [-8.0, 8.0], step = 0.0625 }"#;
    assert_within("bf16 sigmoid lut", &small(sig, "bf16"));
    let silu = r#"lut = { fn = "x / (1 + exp(-x))", range = [-8.0, 8.0], step = 0.0625, below = "0", above = "x" }"#;
    assert_within("bf16 silu lut", &small(silu, "bf16"));
}

#[test]
fn spec_errors_are_field_errors() {
    let dev = aiec::device::DeviceModel::get("npu1").unwrap();
    let check = |s: &ElementwiseSpec| check(s, &dev).unwrap_err().to_string();
    let e = check(&small(r#"expr = "x +* 2""#, "bf16"));
    assert!(e.contains("field `expr`: line 1, column 4"), "{e}");
    let e = check(&small(r#"expr = "y""#, "bf16"));
    assert!(e.contains("unknown variable `y`"), "{e}");
    let e = check(&small(
        r#"lut = { fn = "gelu", range = [-4.0, 4.0], step = 0.3 }"#,
        "bf16",
    ));
    assert!(e.contains("field `lut.step`"), "{e}");
    let e = check(&small(
        r#"lut = { fn = "gelu", range = [-4.0, 4.0], step = 0.0001 }"#,
        "bf16",
    ));
    assert!(e.contains("limit 16384"), "{e}");
    let e = check(&small(
        r#"lut = { fn = "nope(x)", range = [-4.0, 4.0], step = 0.5 }"#,
        "bf16",
    ));
    assert!(e.contains("unknown function `nope`"), "{e}");
    let e = check(&small("", "bf16"));
    assert!(e.contains("exactly one of `expr` and `lut`"), "{e}");
    let e = check(&small(r#"expr = "x""#, "int8"));
    assert!(e.contains("does not support int8"), "{e}");
    let bad = "op = \"elementwise\"\nname = \"t\"\nexpr = \"x\"\nfoo = 1\n";
    let e = from_toml(bad, Path::new("t.toml")).unwrap_err().to_string();
    assert!(e.contains("unknown field `foo`"), "{e}");
}

#[test]
fn shipped_specs_check_build_and_run_at_a_small_shape() {
    for file in ["gelu_expr.toml", "gelu_lut_expr.toml"] {
        let full = from_toml(&shipped_text(file), Path::new(file)).unwrap();
        let dev = aiec::device::DeviceModel::get(&full.device).unwrap();
        check(&full, &dev).unwrap();
        elementwise::build(&full).unwrap();
        let mut spec = full.clone();
        spec.shape.rows = 24;
        spec.tile_rows = 2;
        assert_within(file, &spec);
    }
}

/// 8 rows of `cols` on the row-wise design, one column of 4 cores, 2-row tiles, `kernel` on
/// every core.
fn four_cores(
    name: &str,
    cols: usize,
    elem: ElemType,
    params: Option<BufferType>,
    kernel: &aiec::design::Kernel,
) -> aiec::design::Design {
    rowwise::build(&rowwise::RowwisePlan {
        name,
        device: "npu1",
        rows: 8,
        cols,
        tile_rows: 2,
        array: aiec::spec::ArraySpec {
            columns: 1,
            cores_per_column: 4,
        },
        depth: 2,
        stack_bytes: 1024,
        elem,
        out: (elem, cols),
        params,
        kernel_for: &|_, _| kernel.clone(),
        needs_step: false,
        second_input: false,
    })
    .unwrap()
}

/// 8 x 64 bf16 rows over 4 cores in 2-row tiles running `kernel`; with `flat`, every buffer is
/// 1-D (same layout), as in the DSL example.
fn relu_design(flat: bool) -> aiec::design::Design {
    let shape: Vec<usize> = if flat { vec![128] } else { vec![2, 64] };
    let ty = BufferType::new(shape, ElemType::Bf16);
    let relu = expr::kernel("relu", "max(x, 0)", &ty).unwrap();
    let mut design = four_cores("relu", 64, ElemType::Bf16, None, &relu);
    if flat {
        let flatten = |t: &mut BufferType| *t = BufferType::new([t.numel()], t.elem);
        design.fifos.iter_mut().for_each(|f| flatten(&mut f.ty));
        design
            .sequence
            .args
            .iter_mut()
            .for_each(|a| flatten(&mut a.ty));
    }
    design
}

#[test]
fn expr_kernel_helper_builds_working_1d_and_2d_kernels() {
    let ty = BufferType::new([2, 64], ElemType::Bf16);
    let err = expr::kernel("relu", "max(x)", &ty).err().unwrap();
    assert_eq!((err.line, err.column), (1, 1));
    let x: Vec<bf16> = (0..8 * 64)
        .map(|i| bf16::from_f64(i as f64 / 16.0 - 16.0))
        .collect();
    for flat in [false, true] {
        let out = sim::run(&relu_design(flat), vec![HostData::Bf16(x.clone())]).unwrap();
        let HostData::Bf16(y) = &out[0] else {
            panic!("{:?}", out[0])
        };
        for (a, b) in x.iter().zip(y) {
            assert_eq!(b.to_f64(), a.to_f64().max(0.0), "flat {flat}");
        }
    }
}

#[test]
fn lowered_vectors_read_by_column_match_eval() {
    // y[i][j] = gelu(x * 2 + bias[j]) - bias[j] with bias broadcast to every core as the
    // row-wise design's parameter buffer: exercises vector loads at the column index.
    let (rows, cols) = (8, 32); // as four_cores lays them out
    let src = "gelu(x * 2 + bias[col]) - bias[col]";
    let decl = Decl::scalars(&["x"]).with_vectors(&["bias"]);
    let tree = expr::parse(src, &decl).unwrap();
    let body = tree.clone();
    let kernel = aiec::ops::kernel("bias_gelu", move |ctx, block, args| {
        let e = aiec::ops::kir::Emit::new(ctx, block, "bias_gelu");
        let (x, y, bias) = (args[0], args[1], args[2]);
        e.for_n(2, |e, i| {
            e.for_n(cols, |e, j| {
                let v = e.load_f32(x, &[i, j])?;
                let env = expr::LowerEnv {
                    scalars: vec![("x", v)],
                    vectors: vec![("bias", bias)],
                    row: None,
                    col: Some(j),
                    ..expr::LowerEnv::default()
                };
                let out = expr::lower(e, &body, &env)?;
                e.store_f32(out, y, &[i, j], ElemType::F32)
            })
        })
    });
    let params = Some(BufferType::new([cols], ElemType::F32));
    let design = four_cores("bias_gelu", cols, ElemType::F32, params, &kernel);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| (i as f32 - 128.0) / 40.0)
        .collect();
    let bias: Vec<f32> = (0..cols).map(|j| j as f32 / 8.0 - 2.0).collect();
    let bias64: Vec<f64> = bias.iter().map(|b| *b as f64).collect();
    let out = sim::run(&design, vec![HostData::F32(x.clone()), HostData::F32(bias)]).unwrap();
    let y = out[0].to_f64();
    for (k, (xi, yi)) in x.iter().zip(&y).enumerate() {
        let env = Env {
            scalars: vec![("x", *xi as f64)],
            vectors: vec![("bias", &bias64)],
            row: k / cols,
            col: k % cols,
        };
        let (want, bound) = tree.eval_bound(&env);
        assert!(
            (yi - want).abs() <= bound,
            "[{k}] {yi} vs {want} (bound {bound:e})"
        );
    }
}
