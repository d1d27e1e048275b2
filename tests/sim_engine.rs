//! The simulator engine on hand-written designs: JIT-compiled kernels, FIFO depth and
//! broadcast, memtile split/join, 4-D DMA patterns, bf16 arithmetic, and the failure reports
//! (deadlock, out-of-bounds pattern, memory budget, timeout, bad inputs).
//! References are computed independently in Rust (f64 / exact integer arithmetic).

use std::time::Duration;

use aiec::design::{
    BufferType, CoreStmt, Design, ElemType, Kernel, Port, RuntimeSequence, TensorAccessPattern,
    TileId, Worker,
};
use aiec::ops::kernel;
use aiec::sim::{self, HostData, SimError, SimOptions};
use half::bf16;
use melior::{
    dialect::arith,
    ir::{attribute::FloatAttribute, r#type::IntegerType},
    ir::{BlockLike, Type, Value},
};
use rand::{Rng, SeedableRng};

#[allow(dead_code)]
mod common;
use common::design::{
    acquire, call, drain, fifo, fill, host, int_const, link, map_loop, map_step, pattern, release,
    wait,
};

const SHIM: TileId = TileId::new(0, 0);
const MEM: TileId = TileId::new(0, 1);
const CORE: TileId = TileId::new(0, 2);
const CORE2: TileId = TileId::new(0, 3);

/// `out[i] = in[i] * mul + add` over `n` elements: plain scf.for + memref.load/store + arith,
/// integer (i32) or float (bf16/f32), the shape of code the op kernels emit.
fn affine_kernel(n: usize, elem: ElemType, mul: f64, add: f64) -> Kernel {
    let name = format!("affine_{n}_{}", elem.mlir());
    kernel(&name, move |k, block, args| {
        let (ctx, loc) = (k.context, k.location);
        map_loop(k, block, args, n, |body, x| {
            let int = elem == ElemType::I32;
            let (m, a) = if int {
                let i32t: Type = IntegerType::new(ctx, 32).into();
                let c = |v: f64| int_const(k, body, i32t, v as i64);
                (c(mul), c(add))
            } else {
                let ft = if elem == ElemType::Bf16 {
                    Type::bfloat16(ctx)
                } else {
                    Type::float32(ctx)
                };
                let fc = |v: f64| -> Value {
                    let op = arith::constant(ctx, FloatAttribute::new(ctx, ft, v).into(), loc);
                    body.append_operation(op).result(0).unwrap().into()
                };
                (fc(mul), fc(add))
            };
            let product = if int {
                arith::muli(x, m, loc)
            } else {
                arith::mulf(x, m, loc)
            };
            let p: Value = body.append_operation(product).result(0).unwrap().into();
            let sum = if int {
                arith::addi(p, a, loc)
            } else {
                arith::addf(p, a, loc)
            };
            body.append_operation(sum).result(0).unwrap().into()
        })
    })
}

/// A worker that, `iters` times, maps one buffer of `input` into one buffer of `output`.
fn map_worker(tile: TileId, input: &str, output: &str, iters: u64, kernel: Kernel) -> Worker {
    Worker {
        tile,
        stack_bytes: 1024,
        program: vec![CoreStmt::Loop {
            count: iters,
            body: map_step(input, output, ["x", "y"], kernel),
        }],
    }
}

/// shim -> @in -> core (y = 3x + 1) -> @out -> shim, `iters` buffers of `n` i32.
fn stream_design(n: usize, iters: usize, depth: u32, input: TensorAccessPattern) -> Design {
    let ty = BufferType::new([n], ElemType::I32);
    Design {
        name: "stream".into(),
        device: "npu1_1col".into(),
        tiles: vec![SHIM, CORE],
        fifos: vec![
            fifo("in", SHIM, &[CORE], depth, ty.clone()),
            fifo("out", CORE, &[SHIM], depth, ty),
        ],
        links: vec![],
        workers: vec![map_worker(
            CORE,
            "in",
            "out",
            iters as u64,
            affine_kernel(n, ElemType::I32, 3.0, 1.0),
        )],
        sequence: RuntimeSequence {
            args: vec![
                host("a", n * iters, ElemType::I32),
                host("c", n * iters, ElemType::I32),
            ],
            ops: vec![
                fill("in", 0, input),
                drain("out", 1, TensorAccessPattern::linear(0, n * iters)),
                wait("out"),
            ],
        },
    }
}

/// Runs `design` on one i32 input, with the default options (timings and core counts too).
fn run_on_i32(design: &Design, a: &[i32]) -> sim::SimRun {
    sim::run_with(
        design,
        vec![HostData::I32(a.to_vec())],
        &SimOptions::default(),
    )
    .unwrap()
}

fn random_i32(len: usize, seed: u64) -> Vec<i32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1000..1000)).collect()
}

#[test]
fn jit_core_maps_a_stream_through_depth_two_fifos() {
    let (n, iters) = (64, 8);
    let design = stream_design(n, iters, 2, TensorAccessPattern::linear(0, n * iters));
    let a = random_i32(n * iters, 1);
    let out = sim::run(&design, vec![HostData::I32(a.clone())]).unwrap();
    let expected: Vec<i32> = a.iter().map(|&x| 3 * x + 1).collect();
    assert_eq!(out, vec![HostData::I32(expected)]);
}

#[test]
fn fill_follows_the_4d_access_pattern_highest_dimension_first() {
    // An 8x8 row-major matrix read column by column: sizes [1, 1, 8 cols, 8 rows].
    let n = 64;
    let transpose = pattern(0, [1, 1, 8, 8], [0, 0, 1, 8]);
    let design = stream_design(n, 1, 2, transpose);
    let a = random_i32(n, 2);
    let out = sim::run(&design, vec![HostData::I32(a.clone())]).unwrap();
    let expected: Vec<i32> = (0..n).map(|k| 3 * a[(k % 8) * 8 + k / 8] + 1).collect();
    assert_eq!(out, vec![HostData::I32(expected)]);
}

#[test]
fn memtile_split_and_join_keep_their_offsets() {
    // shim -> @a (128) -> memtile split @a0 = a[0..64], @a1 = a[64..128] -> two cores
    // (core 0: 3x+1, core 1: 5x-2) -> @c0/@c1 -> memtile join at offsets 0/64 -> @c -> shim.
    let half_ty = BufferType::new([64], ElemType::I32);
    let full_ty = BufferType::new([128], ElemType::I32);
    let iters = 4;
    let design = Design {
        name: "split_join".into(),
        device: "npu1_1col".into(),
        tiles: vec![SHIM, MEM, CORE, CORE2],
        fifos: vec![
            fifo("a", SHIM, &[MEM], 2, full_ty.clone()),
            fifo("a0", MEM, &[CORE], 2, half_ty.clone()),
            fifo("a1", MEM, &[CORE2], 2, half_ty.clone()),
            fifo("c0", CORE, &[MEM], 2, half_ty.clone()),
            fifo("c1", CORE2, &[MEM], 2, half_ty),
            fifo("c", MEM, &[SHIM], 2, full_ty),
        ],
        links: vec![
            link(&["a"], &["a0", "a1"], vec![], vec![0, 64]),
            link(&["c0", "c1"], &["c"], vec![0, 64], vec![]),
        ],
        workers: vec![
            map_worker(
                CORE,
                "a0",
                "c0",
                iters,
                affine_kernel(64, ElemType::I32, 3.0, 1.0),
            ),
            map_worker(
                CORE2,
                "a1",
                "c1",
                iters,
                affine_kernel(64, ElemType::I32, 5.0, -2.0),
            ),
        ],
        sequence: RuntimeSequence {
            args: vec![
                host("a", 128 * 4, ElemType::I32),
                host("c", 128 * 4, ElemType::I32),
            ],
            ops: vec![
                fill("a", 0, TensorAccessPattern::linear(0, 512)),
                drain("c", 1, TensorAccessPattern::linear(0, 512)),
                wait("c"),
            ],
        },
    };
    let a = random_i32(512, 3);
    let run = run_on_i32(&design, &a);
    let expected: Vec<i32> = (0..512)
        .map(|k| {
            if k % 128 < 64 {
                3 * a[k] + 1
            } else {
                5 * a[k] - 2
            }
        })
        .collect();
    assert_eq!(run.outputs, vec![HostData::I32(expected)]);
    assert_eq!(
        run.compiled_cores, 2,
        "different kernels are compiled separately"
    );
}

#[test]
fn broadcast_feeds_every_consumer_and_identical_cores_share_one_body() {
    let ty = BufferType::new([32], ElemType::I32);
    let kernel = affine_kernel(32, ElemType::I32, 3.0, 1.0);
    let design = Design {
        name: "broadcast".into(),
        device: "npu1_1col".into(),
        tiles: vec![SHIM, CORE, CORE2],
        fifos: vec![
            fifo("in", SHIM, &[CORE, CORE2], 1, ty.clone()),
            fifo("o0", CORE, &[SHIM], 2, ty.clone()),
            fifo("o1", CORE2, &[SHIM], 2, ty),
        ],
        links: vec![],
        workers: vec![
            map_worker(CORE, "in", "o0", 3, kernel.clone()),
            map_worker(CORE2, "in", "o1", 3, kernel),
        ],
        sequence: RuntimeSequence {
            args: vec![
                host("a", 96, ElemType::I32),
                host("b", 96, ElemType::I32),
                host("c", 96, ElemType::I32),
            ],
            ops: vec![
                fill("in", 0, TensorAccessPattern::linear(0, 96)),
                drain("o0", 1, TensorAccessPattern::linear(0, 96)),
                drain("o1", 2, TensorAccessPattern::linear(0, 96)),
                wait("o0"),
                wait("o1"),
            ],
        },
    };
    let a = random_i32(96, 4);
    let run = run_on_i32(&design, &a);
    let expected = HostData::I32(a.iter().map(|&x| 3 * x + 1).collect());
    assert_eq!(run.outputs, vec![expected.clone(), expected]);
    assert_eq!(run.compiled_cores, 1);
    assert_eq!(run.core_source, sim::CoreSource::AieModule);
}

#[test]
fn bf16_arithmetic_is_computed_in_f32_and_rounded_to_bf16_on_store() {
    let n = 256;
    let ty = BufferType::new([n], ElemType::Bf16);
    let mut design = stream_design(n, 1, 2, TensorAccessPattern::linear(0, n));
    design.fifos = vec![
        fifo("in", SHIM, &[CORE], 2, ty.clone()),
        fifo("out", CORE, &[SHIM], 2, ty),
    ];
    design.workers = vec![map_worker(
        CORE,
        "in",
        "out",
        1,
        affine_kernel(n, ElemType::Bf16, 1.5, 0.3),
    )];
    design.sequence.args = vec![host("a", n, ElemType::Bf16), host("c", n, ElemType::Bf16)];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let a: Vec<bf16> = (0..n)
        .map(|_| bf16::from_f64(rng.random_range(-100.0..100.0)))
        .collect();
    let out = sim::run(&design, vec![HostData::Bf16(a.clone())]).unwrap();
    // MLIR's bf16 emulation marks the f32 intermediates contractible, so `x * 1.5 + c` stays
    // in f32 (like AIE-ML's f32 accumulators) and is rounded to bf16 (nearest-even) once, when
    // stored. The constants are bf16 themselves.
    let (m, c) = (bf16::from_f64(1.5).to_f32(), bf16::from_f64(0.3).to_f32());
    let expected: Vec<bf16> = a
        .iter()
        .map(|x| bf16::from_f32(x.to_f32() * m + c))
        .collect();
    assert_eq!(out, vec![HostData::Bf16(expected.clone())]);
    // Rounding after each op would differ somewhere: the test can tell the two apart.
    let twice: Vec<bf16> = a
        .iter()
        .map(|x| bf16::from_f32(bf16::from_f32(x.to_f32() * m).to_f32() + c))
        .collect();
    assert_ne!(twice, expected);
}

#[test]
fn acquiring_more_than_the_depth_is_reported_as_a_deadlock() {
    let ty = BufferType::new([16], ElemType::I32);
    let mut design = stream_design(16, 4, 2, TensorAccessPattern::linear(0, 64));
    design.fifos[0] = fifo("in", SHIM, &[CORE], 2, ty);
    design.workers[0].program = vec![
        acquire("in", Port::Consume, 3, "x"),
        release("in", Port::Consume, 3),
    ];
    let err = sim::run(&design, vec![HostData::I32(random_i32(64, 6))]).unwrap_err();
    let SimError::Deadlock { report } = &err else {
        panic!("expected a deadlock, got {err}")
    };
    assert!(
        report.contains("worker tile(0, 2): waits to acquire 3 buffer(s) of @in (Consume), holds 0; @in has depth 2, 2 filled"),
        "{report}"
    );
    assert!(
        report.contains("shim DMA MM2S -> @in: waits to acquire 1 buffer(s) of @in (Produce)"),
        "{report}"
    );
    assert!(
        report.contains("runtime sequence: waits in dma_wait"),
        "{report}"
    );
}

#[test]
fn two_workers_waiting_on_each_other_are_reported_with_their_holdings() {
    let ty = BufferType::new([8], ElemType::I32);
    let k = affine_kernel(8, ElemType::I32, 1.0, 0.0);
    let w = |tile, input: &str, output: &str| Worker {
        tile,
        stack_bytes: 1024,
        program: vec![
            acquire(output, Port::Produce, 1, "y"),
            acquire(input, Port::Consume, 1, "x"),
            call(k.clone(), &["x", "y"]),
            release(input, Port::Consume, 1),
            release(output, Port::Produce, 1),
        ],
    };
    let design = Design {
        name: "cycle".into(),
        device: "npu1_1col".into(),
        tiles: vec![CORE, CORE2],
        fifos: vec![
            fifo("a2b", CORE, &[CORE2], 1, ty.clone()),
            fifo("b2a", CORE2, &[CORE], 1, ty),
        ],
        links: vec![],
        workers: vec![w(CORE, "b2a", "a2b"), w(CORE2, "a2b", "b2a")],
        sequence: RuntimeSequence::default(),
    };
    let err = sim::run(&design, vec![]).unwrap_err();
    let SimError::Deadlock { report } = &err else {
        panic!("expected a deadlock, got {err}")
    };
    assert!(report.contains("worker tile(0, 2): waits to acquire 1 buffer(s) of @b2a (Consume), holds 0; @b2a has depth 1, 0 filled; holding @a2b (Produce) x1"), "{report}");
    assert!(report.contains("worker tile(0, 3): waits to acquire 1 buffer(s) of @a2b (Consume), holds 0; @a2b has depth 1, 0 filled; holding @b2a (Produce) x1"), "{report}");
    assert!(
        report.contains("runtime sequence: waits for the workers to finish"),
        "{report}"
    );
}

#[test]
fn out_of_bounds_access_pattern_names_the_dma_and_the_index() {
    // 64 elements starting at 10 in a 64-element buffer: the last one is element 73.
    let design = stream_design(64, 1, 2, TensorAccessPattern::linear(10, 64));
    let err = sim::run(&design, vec![HostData::I32(random_i32(64, 7))]).unwrap_err();
    assert_eq!(
        err,
        SimError::OutOfBounds {
            what: "runtime sequence op #0 (dma_memcpy_nd %arg0 -> @in)".into(),
            buffer: "%arg0 `a`".into(),
            index: 73,
            len: 64,
        }
    );
    assert!(err.to_string().contains("touches element 73"), "{err}");
}

#[test]
fn buffers_beyond_a_core_memory_are_refused_before_running() {
    // Two 32 KiB buffers in and two out on one core: 128 KiB + stack > 64 KiB.
    let n = 8192;
    let design = stream_design(n, 1, 2, TensorAccessPattern::linear(0, n));
    let err = sim::run(&design, vec![HostData::I32(random_i32(n, 8))]).unwrap_err();
    let SimError::MemoryBudget {
        tile,
        needed,
        available,
        detail,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(tile, "tile(0, 2)");
    assert_eq!(*needed, 4 * 32768 + 1024);
    assert_eq!(*available, 65536);
    assert!(detail.contains("@in (2 x 32768 B)"), "{detail}");
}

#[test]
fn the_wall_clock_limit_stops_a_run_with_a_report() {
    let design = stream_design(64, 8, 2, TensorAccessPattern::linear(0, 512));
    let options = SimOptions {
        timeout: Duration::ZERO,
        ..SimOptions::default()
    };
    let err =
        sim::run_with(&design, vec![HostData::I32(random_i32(512, 9))], &options).unwrap_err();
    let SimError::Timeout { report, .. } = &err else {
        panic!("{err}")
    };
    assert!(report.contains("runtime sequence"), "{report}");
}

#[test]
fn wrong_inputs_are_named() {
    let design = stream_design(64, 1, 2, TensorAccessPattern::linear(0, 64));
    let err = sim::run(&design, vec![]).unwrap_err();
    assert!(matches!(err, SimError::Input { .. }), "{err}");
    let err = sim::run(&design, vec![HostData::F32(vec![0.0; 64])]).unwrap_err();
    assert!(
        err.to_string().contains("%arg0 `a` is memref<64xi32>"),
        "{err}"
    );
}

#[test]
fn releasing_unheld_buffers_is_a_named_protocol_error() {
    let mut design = stream_design(16, 1, 2, TensorAccessPattern::linear(0, 16));
    design.workers[0].program = vec![release("in", Port::Consume, 1)];
    let err = sim::run(&design, vec![HostData::I32(random_i32(16, 10))]).unwrap_err();
    assert_eq!(
        err,
        SimError::Protocol {
            actor: "worker tile(0, 2)".into(),
            message: "releases 1 buffer(s) of @in (Consume) but holds 0".into()
        }
    );
}
