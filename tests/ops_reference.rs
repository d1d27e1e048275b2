//! The op kernels, JIT-compiled on the host exactly as emitted (MLIR's LLVM lowering), against
//! the f64 references within each op's documented bound.

use aiec::design::{CoreStmt, Design, ElemType, Kernel, KernelCtx};
use aiec::ops::matmul::Requant;
use aiec::ops::{gelu, layernorm, matmul, softmax};
use half::bf16;
use melior::{
    dialect::func,
    ir::{
        attribute::{StringAttribute, TypeAttribute},
        block::BlockLike,
        operation::OperationLike,
        r#type::{FunctionType, MemRefType},
        Attribute, Block, Identifier, Location, Module, Region, RegionLike, Type,
    },
    pass::PassManager,
    utility::parse_pass_pipeline,
    Context, ExecutionEngine,
};

#[allow(dead_code)]
mod common;
use common::layout::kv_rows;
use common::rng::Xorshift as Rng;
use common::specs::{attention_toml, build as design, matmul_toml, mel_toml, rowwise_toml};

const PIPELINE: &str = "builtin.module(\
    func.func(math-extend-to-supported-types{target-type=f32}),\
    arith-emulate-unsupported-floats{source-types=bf16 target-type=f32},\
    convert-vector-to-scf{full-unroll=true},\
    lower-affine,\
    convert-scf-to-cf,\
    arith-expand{include-bf16=true},\
    convert-math-to-llvm,\
    convert-math-to-libm,\
    expand-strided-metadata,\
    convert-vector-to-llvm{vector-contract-lowering=outerproduct},\
    finalize-memref-to-llvm,\
    convert-arith-to-llvm,\
    convert-cf-to-llvm,\
    convert-func-to-llvm,\
    convert-ub-to-llvm,\
    reconcile-unrealized-casts)";

/// A host buffer handed to a kernel as a 2-D (or 1-D) memref.
struct Buf {
    shape: Vec<usize>,
    elem: ElemType,
    bytes: Vec<u8>,
}

impl Buf {
    fn i8s(shape: &[usize], v: &[i8]) -> Buf {
        Buf {
            shape: shape.to_vec(),
            elem: ElemType::I8,
            bytes: v.iter().map(|x| *x as u8).collect(),
        }
    }
    fn zeros(shape: &[usize], elem: ElemType) -> Buf {
        let n: usize = shape.iter().product();
        Buf {
            shape: shape.to_vec(),
            elem,
            bytes: vec![0; n * elem.bytes()],
        }
    }
    fn f32s(shape: &[usize], v: &[f32]) -> Buf {
        Buf {
            shape: shape.to_vec(),
            elem: ElemType::F32,
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    fn bf16s(shape: &[usize], v: &[f32]) -> Buf {
        Buf {
            shape: shape.to_vec(),
            elem: ElemType::Bf16,
            bytes: v
                .iter()
                .flat_map(|x| bf16::from_f32(*x).to_bits().to_le_bytes())
                .collect(),
        }
    }
    fn to_i8(&self) -> Vec<i8> {
        self.bytes.iter().map(|b| *b as i8).collect()
    }
    fn to_i32(&self) -> Vec<i32> {
        self.bytes
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    fn to_f64(&self) -> Vec<f64> {
        match self.elem {
            ElemType::F32 => self
                .bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            ElemType::Bf16 => self
                .bytes
                .chunks(2)
                .map(|c| bf16::from_bits(u16::from_le_bytes(c.try_into().unwrap())).to_f64())
                .collect(),
            other => panic!("to_f64 of {other:?}"),
        }
    }
}

fn context() -> Context {
    aiec::mlir::jit_context()
}

fn elem_type(ctx: &Context, e: ElemType) -> Type<'_> {
    aiec::mlir::elem_type(ctx, e)
}

/// Memref descriptor as the C interface passes it (rank <= 2 here).
#[repr(C)]
struct Desc<const N: usize> {
    alloc: *mut u8,
    align: *mut u8,
    offset: i64,
    sizes: [i64; N],
    strides: [i64; N],
}

/// Builds `func @k(memrefs...) { kernel; return }`, verifies it, lowers it, runs it once.
fn run(kernel: &Kernel, bufs: &mut [Buf]) {
    let ctx = context();
    let loc = Location::unknown(&ctx);
    let module = Module::new(loc);
    let types: Vec<Type> = bufs
        .iter()
        .map(|b| {
            let dims: Vec<i64> = b.shape.iter().map(|d| *d as i64).collect();
            MemRefType::new(elem_type(&ctx, b.elem), &dims, None, None).into()
        })
        .collect();
    let block = Block::new(&types.iter().map(|t| (*t, loc)).collect::<Vec<_>>());
    {
        let body = module.body();
        let kctx = KernelCtx {
            context: &ctx,
            device_block: &body,
            location: loc,
        };
        let args: Vec<_> = (0..bufs.len())
            .map(|i| block.argument(i).unwrap().into())
            .collect();
        (kernel.emit)(&kctx, &block, &args).unwrap();
    }
    block.append_operation(func::r#return(&[], loc));
    let region = Region::new();
    region.append_block(block);
    let f = func::func(
        &ctx,
        StringAttribute::new(&ctx, "k"),
        TypeAttribute::new(FunctionType::new(&ctx, &types, &[]).into()),
        region,
        &[(
            Identifier::new(&ctx, "llvm.emit_c_interface"),
            Attribute::unit(&ctx),
        )],
        loc,
    );
    module.body().append_operation(f);
    assert!(
        module.as_operation().verify(),
        "kernel {} does not verify:\n{}",
        kernel.name,
        module.as_operation()
    );
    let mut module = module;
    let pm = PassManager::new(&ctx);
    parse_pass_pipeline(pm.as_operation_pass_manager(), PIPELINE).unwrap();
    pm.run(&mut module).unwrap();
    let engine = ExecutionEngine::new(&module, 2, &[], false, false);
    let mut d1: Vec<Desc<1>> = Vec::new();
    let mut d2: Vec<Desc<2>> = Vec::new();
    let mut order = Vec::new();
    for b in bufs.iter_mut() {
        let p = b.bytes.as_mut_ptr();
        match b.shape.len() {
            1 => {
                order.push((1, d1.len()));
                d1.push(Desc {
                    alloc: p,
                    align: p,
                    offset: 0,
                    sizes: [b.shape[0] as i64],
                    strides: [1],
                });
            }
            2 => {
                order.push((2, d2.len()));
                d2.push(Desc {
                    alloc: p,
                    align: p,
                    offset: 0,
                    sizes: [b.shape[0] as i64, b.shape[1] as i64],
                    strides: [b.shape[1] as i64, 1],
                });
            }
            r => panic!("rank {r}"),
        }
    }
    let ptrs: Vec<*mut ()> = order
        .iter()
        .map(|(rank, i)| {
            if *rank == 1 {
                &mut d1[*i] as *mut _ as *mut ()
            } else {
                &mut d2[*i] as *mut _ as *mut ()
            }
        })
        .collect();
    // `_mlir_ciface_k` takes one pointer to a memref descriptor per argument.
    let f = engine.lookup("_mlir_ciface_k");
    assert!(!f.is_null(), "no _mlir_ciface_k");
    type P = *mut ();
    unsafe {
        match ptrs.as_slice() {
            [a] => std::mem::transmute::<*mut (), unsafe extern "C" fn(P)>(f)(*a),
            [a, b] => std::mem::transmute::<*mut (), unsafe extern "C" fn(P, P)>(f)(*a, *b),
            [a, b, c] => {
                std::mem::transmute::<*mut (), unsafe extern "C" fn(P, P, P)>(f)(*a, *b, *c)
            }
            other => panic!("{} arguments", other.len()),
        }
    }
}

/// The kernels `worker` runs, in program order.
fn kernels(d: &Design, worker: usize) -> Vec<Kernel> {
    fn walk(stmts: &[CoreStmt], out: &mut Vec<Kernel>) {
        for s in stmts {
            match s {
                CoreStmt::Loop { body, .. } => walk(body, out),
                CoreStmt::Kernel { kernel, .. } => out.push(kernel.clone()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&d.workers[worker].program, &mut out);
    out
}

/// A 16 x 32 x 16 matmul in 4 x 16 x 8 tiles on 2 x 4 cores.
fn matmul_spec(dtype: &str, requant: &str) -> String {
    matmul_toml(["matmul", "t", dtype], [16, 32, 16], [4, 16, 8], [2, 4]) + requant
}

#[test]
fn int8_matmul_kernels_are_bit_exact_over_two_k_blocks() {
    let d = design(&matmul_spec("int8", "requant = { shift = 12, scale = 3 }"));
    let ks = kernels(&d, 0);
    let names: Vec<&str> = ks.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["matmul_zero", "matmul_mac", "matmul_store"]);
    let (m, k, n) = (4, 16, 8);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let a = rng.i8s(m * 2 * k);
    let b = rng.i8s(2 * k * n);
    let mut acc = Buf::zeros(&[m, n], ElemType::I32);
    acc.bytes.iter_mut().for_each(|x| *x = 0x55); // garbage that zero must clear
    let mut bufs = [acc];
    run(&ks[0], &mut bufs);
    let [mut acc] = bufs;
    for blk in 0..2 {
        let a_blk: Vec<i8> = (0..m)
            .flat_map(|i| a[i * 2 * k + blk * k..i * 2 * k + (blk + 1) * k].to_vec())
            .collect();
        let b_blk = b[blk * k * n..(blk + 1) * k * n].to_vec();
        let mut bufs = [Buf::i8s(&[m, k], &a_blk), Buf::i8s(&[k, n], &b_blk), acc];
        run(&ks[1], &mut bufs);
        let [_, _, next] = bufs;
        acc = next;
    }
    let sums = acc.to_i32();
    let mut bufs = [acc, Buf::zeros(&[m, n], ElemType::I8)];
    run(&ks[2], &mut bufs);
    let got = bufs[1].to_i8();
    let rq = Requant {
        shift: 12,
        scale: 3,
    };
    let want = matmul::reference_int8(&a, &b, m, 2 * k, n, rq);
    assert_eq!(got, want);
    // The sums are real (not all clamped): most outputs are strictly inside the int8 range.
    assert!(
        got.iter().filter(|v| **v > -128 && **v < 127).count() > m * n / 2,
        "{got:?} {sums:?}"
    );
}

#[test]
fn bf16_matmul_kernels_are_within_tolerance() {
    let d = design(&matmul_spec("bf16", ""));
    let ks = kernels(&d, 0);
    let (m, k, n) = (4, 16, 8);
    let mut rng = Rng(12345);
    let a: Vec<f32> = (0..m * k)
        .map(|_| bf16::from_f64(rng.uniform(-2.0, 2.0)).to_f32())
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|_| bf16::from_f64(rng.uniform(-2.0, 2.0)).to_f32())
        .collect();
    let mut bufs = [Buf::zeros(&[m, n], ElemType::F32)];
    run(&ks[0], &mut bufs);
    let [acc] = bufs;
    let mut bufs = [Buf::bf16s(&[m, k], &a), Buf::bf16s(&[k, n], &b), acc];
    run(&ks[1], &mut bufs);
    let [_, _, acc] = bufs;
    let mut bufs = [acc, Buf::zeros(&[m, n], ElemType::Bf16)];
    run(&ks[2], &mut bufs);
    let got = bufs[1].to_f64();
    let want = matmul::reference_f64(&a, &b, m, k, n);
    for i in 0..m {
        for j in 0..n {
            let abs: f64 = (0..k)
                .map(|l| (a[i * k + l] as f64 * b[l * n + j] as f64).abs())
                .sum();
            let bound = matmul::bf16_bound(want[i * n + j], abs, k);
            let err = (got[i * n + j] - want[i * n + j]).abs();
            assert!(
                err <= bound,
                "({i},{j}) got {} want {} bound {bound}",
                got[i * n + j],
                want[i * n + j]
            );
        }
    }
}

/// A row-wise op over one column of 4 cores, one block of rows each.
fn rowwise_spec(op: &str, dtype: &str, rows: usize, cols: usize, extra: &str) -> String {
    rowwise_toml([op, "t", dtype], [rows, cols], rows / 4, [1, 4]) + extra
}

#[test]
fn gelu_kernel_follows_erf_gelu_within_its_bound() {
    for dtype in ["f32", "bf16"] {
        let table = "table = { min = -4.0, max = 4.0, step = 0.03125 }";
        let d = design(&rowwise_spec("gelu", dtype, 8, 64, table));
        let ks = kernels(&d, 0);
        let (tr, cols) = (2, 64);
        // Cover below, inside and above the table, including the end points.
        let x: Vec<f32> = (0..tr * cols)
            .map(|i| {
                let v = -6.0 + 12.0 * i as f64 / (tr * cols - 1) as f64;
                if dtype == "bf16" {
                    bf16::from_f64(v).to_f32()
                } else {
                    v as f32
                }
            })
            .collect();
        let input = if dtype == "bf16" {
            Buf::bf16s(&[tr, cols], &x)
        } else {
            Buf::f32s(&[tr, cols], &x)
        };
        let elem = input.elem;
        let mut bufs = [input, Buf::zeros(&[tr, cols], elem)];
        run(&ks[0], &mut bufs);
        let got = bufs[1].to_f64();
        let rel = if dtype == "bf16" { 1.0 / 256.0 } else { 1e-6 };
        for (xi, yi) in x.iter().zip(&got) {
            let want = gelu::reference(*xi as f64);
            let bound = gelu::TOLERANCE + rel * want.abs();
            assert!(
                (yi - want).abs() <= bound,
                "{dtype} gelu({xi}) = {yi}, want {want}"
            );
        }
    }
}

#[test]
fn softmax_kernel_matches_reference_plain_and_causal() {
    let (rows, cols) = (8, 16);
    let mut rng = Rng(777);
    let x: Vec<f32> = (0..rows * cols)
        .map(|_| bf16::from_f64(rng.uniform(-20.0, 20.0)).to_f32())
        .collect();
    for causal in [false, true] {
        for dtype in ["f32", "bf16"] {
            let d = design(&rowwise_spec(
                "softmax",
                dtype,
                rows,
                cols,
                &format!("causal = {causal}"),
            ));
            let tr = rows / 4;
            // Core (0, r) handles rows r*tr..(r+1)*tr in its single step; check core 0 and 3.
            for core in [0usize, 3] {
                let ks = kernels(&d, core);
                let rows_here = &x[core * tr * cols..(core + 1) * tr * cols];
                let input = if dtype == "bf16" {
                    Buf::bf16s(&[tr, cols], rows_here)
                } else {
                    Buf::f32s(&[tr, cols], rows_here)
                };
                let elem = input.elem;
                let mut bufs = [input, Buf::zeros(&[tr, cols], elem)];
                run(&ks[0], &mut bufs);
                let got = bufs[1].to_f64();
                let x64: Vec<f64> = x.iter().map(|v| *v as f64).collect();
                let want_all = softmax::reference(&x64, rows, cols, causal);
                let want = &want_all[core * tr * cols..(core + 1) * tr * cols];
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= softmax::TOLERANCE,
                        "causal={causal} {dtype} core {core} [{i}] {g} vs {w}"
                    );
                }
                if causal && core == 0 {
                    // Row 0 sees only column 0.
                    assert_eq!(got[0], 1.0);
                    assert!(got[1..cols].iter().all(|v| *v == 0.0));
                }
            }
        }
    }
}

#[test]
fn layernorm_kernel_matches_reference() {
    let (rows, cols) = (8, 32);
    let d = design(&rowwise_spec(
        "layernorm",
        "f32",
        rows,
        cols,
        "epsilon = 1e-5",
    ));
    let ks = kernels(&d, 0);
    let tr = rows / 4;
    let mut rng = Rng(4242);
    let x: Vec<f32> = (0..tr * cols)
        .map(|_| rng.uniform(-3.0, 5.0) as f32)
        .collect();
    let gamma: Vec<f32> = (0..cols).map(|_| rng.uniform(0.5, 2.0) as f32).collect();
    let beta: Vec<f32> = (0..cols).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let params: Vec<f32> = gamma.iter().chain(&beta).copied().collect();
    let mut bufs = [
        Buf::f32s(&[tr, cols], &x),
        Buf::zeros(&[tr, cols], ElemType::F32),
        Buf::f32s(&[2, cols], &params),
    ];
    run(&ks[0], &mut bufs);
    let got = bufs[1].to_f64();
    let f = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<f64>>();
    let want = layernorm::reference(&f(&x), tr, cols, &f(&gamma), &f(&beta), 1e-5);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= layernorm::TOLERANCE * (1.0 + w.abs()),
            "{g} vs {w}"
        );
        // f32 math is far tighter than the bf16-driven tolerance.
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn attention_kernels_match_reference_plain_and_causal() {
    use aiec::ops::attention;
    let (heads, len, d, t) = (2, 8, 4, 4);
    for causal in [false, true] {
        let d_ = design(&attention_toml(
            heads,
            [len, len, d],
            [t, t],
            [1, 2],
            causal,
        ));
        let ks = kernels(&d_, 0);
        let names: Vec<&str> = ks.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "attention_setup",
                "attention_init",
                "attention_step",
                "attention_finish"
            ]
        );
        let mut rng = Rng(99);
        let mut gen =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect() };
        let (q, k, v) = (gen(len * d), gen(len * d), gen(len * d));
        let mut st = Buf::zeros(&[t + 1, d + 2 + t], ElemType::F32);
        st.bytes.iter_mut().for_each(|b| *b = 0x7f); // garbage the setup/init kernels must clear
        let mut bufs = [st];
        run(&ks[0], &mut bufs);
        let [mut st] = bufs;
        let mut out = vec![0f64; len * d];
        for qb in 0..len / t {
            let mut bufs = [st];
            run(&ks[1], &mut bufs);
            [st] = bufs;
            let q_tile = Buf::f32s(&[t, d], &q[qb * t * d..(qb + 1) * t * d]);
            let mut q_tile = Some(q_tile);
            for kb in 0..len / t {
                let kv = kv_rows(&k, &v, d, kb * t..(kb + 1) * t);
                let mut bufs = [q_tile.take().unwrap(), Buf::f32s(&[t, 2 * d], &kv), st];
                run(&ks[2], &mut bufs);
                let [qq, _, s2] = bufs;
                q_tile = Some(qq);
                st = s2;
            }
            let mut bufs = [st, Buf::zeros(&[t, d], ElemType::F32)];
            run(&ks[3], &mut bufs);
            let [s2, o] = bufs;
            st = s2;
            out[qb * t * d..(qb + 1) * t * d].copy_from_slice(&o.to_f64());
        }
        let f = |x: &[f32]| x.iter().map(|v| *v as f64).collect::<Vec<_>>();
        let want = attention::reference(
            &f(&q),
            &f(&k),
            &f(&v),
            len,
            len,
            d,
            1.0 / (d as f64).sqrt(),
            causal,
        );
        let vmax = v.iter().fold(0f64, |m, x| m.max(x.abs() as f64));
        for (i, (g, w)) in out.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= attention::TOLERANCE * vmax,
                "causal={causal} [{i}] {g} vs {w}"
            );
            assert!(
                (g - w).abs() <= 1e-5 * vmax,
                "f32 path is tighter: causal={causal} [{i}] {g} vs {w}"
            );
        }
    }
}

#[test]
fn mel_kernel_matches_the_f64_dft_reference() {
    use aiec::ops::mel;
    let (frames, ft) = (8, 2);
    let d = design(&mel_toml(frames, ft, [1, 4]));
    let ks = kernels(&d, 0);
    // A chirp plus noise, so every mel band has energy.
    let mut rng = Rng(31337);
    let n = (ft - 1) * mel::HOP + mel::N_FFT;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            (0.3 * (2.0 * std::f64::consts::PI * (200.0 + 30000.0 * t) * t).sin()
                + rng.uniform(-0.01, 0.01)) as f32
        })
        .collect();
    let frames_in: Vec<f32> = (0..ft)
        .flat_map(|t| x[t * mel::HOP..t * mel::HOP + mel::N_FFT].to_vec())
        .collect();
    let mut bufs = [
        Buf::f32s(&[ft, mel::N_FFT], &frames_in),
        Buf::zeros(&[80, ft], ElemType::F32),
        Buf::zeros(&[201], ElemType::F32),
    ];
    run(&ks[0], &mut bufs);
    let got = bufs[1].to_f64();
    let x64: Vec<f64> = x.iter().map(|v| *v as f64).collect();
    let want = mel::reference(&x64, ft, 80);
    let max = want.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // Compare where Whisper's clamp keeps the value, in final (x + 4) / 4 units.
        let (g, w) = (g.max(max - 8.0) / 4.0, w.max(max - 8.0) / 4.0);
        assert!((g - w).abs() <= mel::TOLERANCE, "[{i}] {g} vs {w}");
    }
}
