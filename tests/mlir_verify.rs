//! Our verifier: each structural mistake gives one error naming the op and the problem.

use aiec::design::{
    BufferType, CoreStmt, Design, ElemType, Kernel, Port, RuntimeSequence, TensorAccessPattern,
    TileId, Worker,
};
use aiec::mlir::{self, MlirError};
use aiec::ops::kernel;
use melior::ir::{operation::OperationBuilder, BlockLike};

#[allow(dead_code)]
mod common;
use common::design::{
    acquire, call, drain, fifo, fill, host, link, map_step, pattern, release, wait,
};

fn copy_kernel() -> Kernel {
    kernel("copy", |cx, block, args| {
        let copy = OperationBuilder::new("memref.copy", cx.location)
            .add_operands(&[args[0], args[1]])
            .build()
            .expect("memref.copy");
        block.append_operation(copy);
        Ok(())
    })
}

/// Host -> shim -> memtile (split in two) -> two cores (copy) -> shim -> host.
fn split_design() -> Design {
    let shim = TileId::new(0, 0);
    let mem = TileId::new(0, 1);
    let (c2, c3) = (TileId::new(0, 2), TileId::new(0, 3));
    let half = BufferType::new([32], ElemType::I16);
    let whole = BufferType::new([64], ElemType::I16);
    let worker = |tile, inp: &str, out: &str| Worker {
        tile,
        stack_bytes: 1024,
        program: vec![CoreStmt::Loop {
            count: 8,
            body: map_step(inp, out, ["a", "b"], copy_kernel()),
        }],
    };
    let rows_of_32 = |offset| pattern(offset, [1, 1, 8, 32], [0, 0, 64, 1]);
    Design {
        name: "split".into(),
        device: "npu1_1col".into(),
        tiles: vec![shim, mem, c2, c3],
        fifos: vec![
            fifo("in", shim, &[mem], 2, whole),
            fifo("in_a", mem, &[c2], 2, half.clone()),
            fifo("in_b", mem, &[c3], 2, half.clone()),
            fifo("out_a", c2, &[shim], 2, half.clone()),
            fifo("out_b", c3, &[shim], 2, half),
        ],
        links: vec![link(&["in"], &["in_a", "in_b"], vec![], vec![0, 32])],
        workers: vec![worker(c2, "in_a", "out_a"), worker(c3, "in_b", "out_b")],
        sequence: RuntimeSequence {
            args: vec![host("x", 512, ElemType::I16), host("y", 512, ElemType::I16)],
            ops: vec![
                fill("in", 0, TensorAccessPattern::linear(0, 512)),
                drain("out_a", 1, rows_of_32(0)),
                drain("out_b", 1, rows_of_32(32)),
                wait("out_a"),
                wait("out_b"),
            ],
        },
    }
}

/// The error for a broken design, as text.
fn error_of(design: &Design) -> String {
    let err = mlir::verify(design).expect_err("the verifier must reject this design");
    assert!(matches!(err, MlirError::Invalid { .. }), "{err:?}");
    // Lowering refuses it with the same error: validation's, or the verifier's on top of it.
    let context = mlir::context();
    match aiec::design::validate::validate_on_named_device(design) {
        Ok(info) => assert_eq!(
            mlir::lower(&context, design, &info).err(),
            Some(err.clone())
        ),
        Err(e) => assert_eq!(MlirError::from(e), err),
    }
    err.to_string()
}

fn assert_mentions(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` missing from error: {text}");
    }
}

fn body_mut(d: &mut Design, worker: usize) -> &mut Vec<CoreStmt> {
    match &mut d.workers[worker].program[0] {
        CoreStmt::Loop { body, .. } => body,
        _ => unreachable!(),
    }
}

#[test]
fn the_valid_design_passes_and_lowers() {
    let d = split_design();
    mlir::verify(&d).unwrap();
    let text = mlir::emit(&d).unwrap();
    assert!(
        text.contains("aie.objectfifo.link [@in] -> [@in_a, @in_b]([] [0, 32])"),
        "{text}"
    );
    assert!(text.contains("%core_0_3 = aie.core(%tile_0_3)"), "{text}");
}

/// A broken variant of the split design: what is changed, and what its error must name.
type Mistake = (&'static str, fn(&mut Design), &'static [&'static str]);

const MISTAKES: &[Mistake] = &[
    (
        "duplicate_tile",
        |d| {
            d.tiles.push(TileId::new(0, 2));
        },
        &["aie.tile(0, 2)", "declared twice"],
    ),
    (
        "tile_outside_device",
        |d| {
            d.tiles.push(TileId::new(1, 2));
        },
        &["aie.tile(1, 2)", "outside device npu1_1col"],
    ),
    (
        "unknown_device",
        |d| {
            d.device = "npu9".into();
        },
        &["aie.device(npu9)", "npu9"],
    ),
    (
        "undeclared_consumer",
        |d| {
            d.fifos[1].consumers = vec![TileId::new(0, 5)];
        },
        &[
            "aie.objectfifo @in_a",
            "consumer aie.tile(0, 5) is not declared",
        ],
    ),
    (
        "duplicate_fifo_name",
        |d| {
            d.fifos[2].name = "in_a".into();
        },
        &["aie.objectfifo @in_a", "used twice"],
    ),
    (
        "core_on_memtile_row",
        |d| {
            d.workers[0].tile = TileId::new(0, 1);
        },
        &["aie.core(aie.tile(0, 1))", "rows >= 2"],
    ),
    (
        "link_offset_out_of_range",
        |d| {
            d.links[0].dst_offsets = vec![0, 40];
        },
        &[
            "aie.objectfifo.link [@in] -> [@in_a, @in_b]",
            "offset 40",
            "exceeds",
        ],
    ),
    (
        "link_through_a_core_tile",
        |d| {
            d.fifos[1].producer = TileId::new(0, 3);
            d.fifos[2].producer = TileId::new(0, 3);
            d.fifos[2].consumers = vec![TileId::new(0, 2)];
        },
        &["aie.objectfifo.link", "not a memtile"],
    ),
    (
        "link_to_unknown_fifo",
        |d| {
            d.links[0].dsts[1] = "nope".into();
        },
        &["aie.objectfifo.link", "unknown FIFO @nope"],
    ),
    (
        "acquire_more_than_depth",
        |d| {
            body_mut(d, 0)[0] = acquire("in_a", Port::Consume, 3, "a");
            body_mut(d, 0)[3] = release("in_a", Port::Consume, 3);
        },
        &["aie.objectfifo.acquire @in_a(Consume, 3)", "depth 2"],
    ),
    (
        "acquire_on_the_wrong_port",
        |d| {
            body_mut(d, 0)[0] = acquire("in_a", Port::Produce, 1, "a");
        },
        &["@in_a(Produce, 1)", "not the producer"],
    ),
    (
        "unbalanced_loop_body",
        |d| {
            body_mut(d, 0).remove(3); // no release of in_a
        },
        &[
            "aie.core(aie.tile(0, 2))",
            "unbalanced on @in_a(Consume)",
            "0 buffers held on entry, 1 on exit",
        ],
    ),
    (
        "release_without_acquire",
        |d| {
            body_mut(d, 0).push(release("in_a", Port::Consume, 1));
        },
        &["aie.objectfifo.release @in_a(Consume, 1)", "0 are held"],
    ),
    (
        "kernel_uses_released_buffer",
        |d| {
            let body = body_mut(d, 0);
            let kernel = body.remove(2);
            body.insert(3, kernel); // after release of in_a
        },
        &["kernel `copy` uses `a` after its release"],
    ),
    (
        "kernel_uses_unknown_binding",
        |d| {
            body_mut(d, 0)[2] = call(copy_kernel(), &["zz"]);
        },
        &["unknown binding `zz`"],
    ),
    (
        "fill_into_fifo_not_fed_by_shim",
        |d| {
            d.sequence.ops[0] = fill("in_a", 0, TensorAccessPattern::linear(0, 32));
        },
        &[
            "aiex.npu.dma_memcpy_nd #0 (metadata = @in_a)",
            "not a shim tile",
        ],
    ),
    (
        "drain_from_fifo_no_shim_consumes",
        |d| {
            d.sequence.ops[1] = drain("in", 1, TensorAccessPattern::linear(0, 64));
        },
        &["metadata = @in", "no shim tile consumes"],
    ),
    (
        "pattern_beyond_host_buffer",
        |d| {
            d.sequence.ops[2] = drain("out_b", 1, pattern(64, [1, 1, 8, 32], [0, 0, 64, 1]));
        },
        &["metadata = @out_b", "reaches element 543", "512 elements"],
    ),
    (
        "pattern_with_strided_innermost_dimension",
        |d| {
            d.sequence.ops[0] = fill("in", 0, pattern(0, [1, 1, 1, 64], [0, 0, 0, 2]));
        },
        &["innermost stride must be 1"],
    ),
    (
        "pattern_not_whole_objects",
        |d| {
            d.sequence.ops[0] = fill("in", 0, TensorAccessPattern::linear(0, 100));
        },
        &["moves 100 elements", "64-element @in objects"],
    ),
    (
        "drain_never_awaited",
        |d| {
            d.sequence.ops.pop();
        },
        &["metadata = @out_b", "never awaited"],
    ),
    (
        "wait_without_dma",
        |d| {
            d.sequence.ops.insert(0, wait("out_a"));
        },
        &["aiex.npu.dma_wait {symbol = @out_a}", "no DMA in flight"],
    ),
    (
        "host_buffer_argument_missing",
        |d| {
            d.sequence.args.pop();
        },
        &["%arg1 does not exist"],
    ),
    (
        "too_many_dmas_in_flight",
        |d| {
            d.sequence.ops = (0..17)
                .map(|_| fill("in", 0, TensorAccessPattern::linear(0, 64)))
                .collect();
        },
        &["more than 16 DMAs in flight on shim aie.tile(0, 0)"],
    ),
];

/// Each structural mistake gives one error naming the op and the problem.
#[test]
fn each_mistake_is_one_error_naming_the_op() {
    for (name, break_it, parts) in MISTAKES {
        let mut d = split_design();
        break_it(&mut d);
        let err = error_of(&d);
        for p in *parts {
            assert!(err.contains(p), "{name}: `{p}` missing from error: {err}");
        }
    }
}

#[test]
fn dma_ids_are_reused_after_waits() {
    let mut d = split_design();
    let (fill_in, wait_in) = (
        fill("in", 0, TensorAccessPattern::linear(0, 64)),
        wait("in"),
    );
    d.sequence.ops = vec![fill_in.clone(), wait_in.clone(), fill_in, wait_in];
    let text = mlir::emit(&d).unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dma_memcpy_nd"))
        .map(|l| l.split("id = ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(ids, ["0", "0"]);
    assert_eq!(text.matches("issue_token = true").count(), 2);
}

#[test]
fn shim_bd_limits_match_aie_opt() {
    // 2048 i16 = 1024 words in the innermost dimension of a strided pattern: aie-opt says
    // "Size 0 exceeds the [0:1023] range".
    let mut d = split_design();
    d.sequence.args[0].ty = BufferType::new([4096], ElemType::I16);
    d.sequence.ops[0] = fill("in", 0, pattern(0, [1, 1, 2, 2048], [0, 0, 2048, 1]));
    assert_mentions(
        &error_of(&d),
        &["innermost size 2048 is 1024 words", "at most 1023"],
    );
    // The same amount as one plain linear transfer is fine.
    d.sequence.ops[0] = fill("in", 0, TensorAccessPattern::linear(0, 4096));
    mlir::verify(&d).unwrap();
    // More than 65 outer iterations.
    d.sequence.ops[0] = fill("in", 0, pattern(0, [66, 1, 1, 32], [32, 0, 0, 1]));
    assert_mentions(
        &error_of(&d),
        &["outermost size 66 exceeds the 65 iterations"],
    );
    // Odd i16 offsets are not 4-byte aligned.
    d.sequence.ops[0] = fill("in", 0, TensorAccessPattern::linear(1, 64));
    assert_mentions(&error_of(&d), &["offset 1 is not 4-byte aligned"]);
}

#[test]
fn validation_counts_memory_per_tile() {
    let d = split_design();
    let info = mlir::verify(&d).unwrap();
    let mem = &info.tiles;
    // Memtile: @in's 2 x 64 i16 buffers; the split's destinations are views into them.
    assert_eq!(mem[&TileId::new(0, 1)].memory_bytes(), 2 * 64 * 2);
    // Each core: 2 x 32 i16 in, 2 x 32 i16 out, plus its stack.
    let core = &mem[&TileId::new(0, 2)];
    assert_eq!(core.fifo_bytes(), 2 * (2 * 32 * 2));
    assert_eq!(core.stack_bytes(), 1024);
    // The shim has no data memory (its side of a FIFO is host memory), only locks and BDs.
    assert_eq!(mem[&TileId::new(0, 0)].memory_bytes(), 0);
    let text = mlir::describe::describe(&d).unwrap();
    assert!(
        text.contains("(0, 2) core: 1280 B of 65536 B (2.0%)"),
        "{text}"
    );
    assert!(text.contains("(0, 1) memtile: 256 B of 524288 B"), "{text}");
    assert!(!text.contains("(0, 0) shim:"), "{text}");
}
