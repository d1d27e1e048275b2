//! Our verifier: each structural mistake gives one error naming the op and the problem.

use std::sync::Arc;

use aiec::design::{
    BufArg, BufferType, CoreStmt, Design, ElemType, FifoLink, HostBuffer, Kernel, ObjectFifo, Port,
    RuntimeSequence, SeqOp, TensorAccessPattern, TileId, Worker,
};
use aiec::mlir::{self, MlirError};
use melior::ir::{operation::OperationBuilder, BlockLike};

fn copy_kernel() -> Kernel {
    Kernel {
        name: "copy".into(),
        const_bytes: 0,
        emit: Arc::new(|cx, block, args| {
            let copy = OperationBuilder::new("memref.copy", cx.location)
                .add_operands(&[args[0], args[1]])
                .build()
                .expect("memref.copy");
            block.append_operation(copy);
            Ok(())
        }),
    }
}

fn acquire(fifo: &str, port: Port, count: u32, binding: &str) -> CoreStmt {
    CoreStmt::Acquire {
        fifo: fifo.into(),
        port,
        count,
        binding: binding.into(),
    }
}

fn release(fifo: &str, port: Port, count: u32) -> CoreStmt {
    CoreStmt::Release {
        fifo: fifo.into(),
        port,
        count,
    }
}

fn arg(binding: &str, index: u32) -> BufArg {
    BufArg {
        binding: binding.into(),
        index,
    }
}

/// Host -> shim -> memtile (split in two) -> two cores (copy) -> shim -> host.
fn split_design() -> Design {
    let shim = TileId::new(0, 0);
    let mem = TileId::new(0, 1);
    let (c2, c3) = (TileId::new(0, 2), TileId::new(0, 3));
    let half = BufferType::new([32], ElemType::I16);
    let whole = BufferType::new([64], ElemType::I16);
    let f = |name: &str, p, c: Vec<TileId>, ty: &BufferType| ObjectFifo {
        name: name.into(),
        producer: p,
        consumers: c,
        depth: 2,
        ty: ty.clone(),
    };
    let worker = |tile, inp: &str, out: &str| Worker {
        tile,
        stack_bytes: 1024,
        program: vec![CoreStmt::Loop {
            count: 8,
            body: vec![
                acquire(inp, Port::Consume, 1, "a"),
                acquire(out, Port::Produce, 1, "b"),
                CoreStmt::Kernel {
                    kernel: copy_kernel(),
                    args: vec![arg("a", 0), arg("b", 0)],
                },
                release(inp, Port::Consume, 1),
                release(out, Port::Produce, 1),
            ],
        }],
    };
    Design {
        name: "split".into(),
        device: "npu1_1col".into(),
        tiles: vec![shim, mem, c2, c3],
        fifos: vec![
            f("in", shim, vec![mem], &whole),
            f("in_a", mem, vec![c2], &half),
            f("in_b", mem, vec![c3], &half),
            f("out_a", c2, vec![shim], &half),
            f("out_b", c3, vec![shim], &half),
        ],
        links: vec![FifoLink {
            srcs: vec!["in".into()],
            dsts: vec!["in_a".into(), "in_b".into()],
            src_offsets: vec![],
            dst_offsets: vec![0, 32],
        }],
        workers: vec![worker(c2, "in_a", "out_a"), worker(c3, "in_b", "out_b")],
        sequence: RuntimeSequence {
            args: vec![
                HostBuffer {
                    name: "x".into(),
                    ty: BufferType::new([512], ElemType::I16),
                },
                HostBuffer {
                    name: "y".into(),
                    ty: BufferType::new([512], ElemType::I16),
                },
            ],
            ops: vec![
                SeqOp::Fill {
                    fifo: "in".into(),
                    arg: 0,
                    pattern: TensorAccessPattern::linear(0, 512),
                },
                SeqOp::Drain {
                    fifo: "out_a".into(),
                    arg: 1,
                    pattern: TensorAccessPattern {
                        offset: 0,
                        sizes: [1, 1, 8, 32],
                        strides: [0, 0, 64, 1],
                    },
                },
                SeqOp::Drain {
                    fifo: "out_b".into(),
                    arg: 1,
                    pattern: TensorAccessPattern {
                        offset: 32,
                        sizes: [1, 1, 8, 32],
                        strides: [0, 0, 64, 1],
                    },
                },
                SeqOp::Wait {
                    fifo: "out_a".into(),
                },
                SeqOp::Wait {
                    fifo: "out_b".into(),
                },
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

#[test]
fn duplicate_tile() {
    let mut d = split_design();
    d.tiles.push(TileId::new(0, 2));
    assert_mentions(&error_of(&d), &["aie.tile(0, 2)", "declared twice"]);
}

#[test]
fn tile_outside_device() {
    let mut d = split_design();
    d.tiles.push(TileId::new(1, 2));
    assert_mentions(
        &error_of(&d),
        &["aie.tile(1, 2)", "outside device npu1_1col"],
    );
}

#[test]
fn unknown_device() {
    let mut d = split_design();
    d.device = "npu9".into();
    assert_mentions(&error_of(&d), &["aie.device(npu9)", "npu9"]);
}

#[test]
fn undeclared_consumer() {
    let mut d = split_design();
    d.fifos[1].consumers = vec![TileId::new(0, 5)];
    assert_mentions(
        &error_of(&d),
        &[
            "aie.objectfifo @in_a",
            "consumer aie.tile(0, 5) is not declared",
        ],
    );
}

#[test]
fn duplicate_fifo_name() {
    let mut d = split_design();
    d.fifos[2].name = "in_a".into();
    assert_mentions(&error_of(&d), &["aie.objectfifo @in_a", "used twice"]);
}

#[test]
fn core_on_memtile_row() {
    let mut d = split_design();
    d.workers[0].tile = TileId::new(0, 1);
    assert_mentions(&error_of(&d), &["aie.core(aie.tile(0, 1))", "rows >= 2"]);
}

#[test]
fn link_offset_out_of_range() {
    let mut d = split_design();
    d.links[0].dst_offsets = vec![0, 40];
    assert_mentions(
        &error_of(&d),
        &[
            "aie.objectfifo.link [@in] -> [@in_a, @in_b]",
            "offset 40",
            "exceeds",
        ],
    );
}

#[test]
fn link_through_a_core_tile() {
    let mut d = split_design();
    d.fifos[1].producer = TileId::new(0, 3);
    d.fifos[2].producer = TileId::new(0, 3);
    d.fifos[2].consumers = vec![TileId::new(0, 2)];
    assert_mentions(&error_of(&d), &["aie.objectfifo.link", "not a memtile"]);
}

#[test]
fn link_to_unknown_fifo() {
    let mut d = split_design();
    d.links[0].dsts[1] = "nope".into();
    assert_mentions(
        &error_of(&d),
        &["aie.objectfifo.link", "unknown FIFO @nope"],
    );
}

#[test]
fn acquire_more_than_depth() {
    let mut d = split_design();
    body_mut(&mut d, 0)[0] = acquire("in_a", Port::Consume, 3, "a");
    body_mut(&mut d, 0)[3] = release("in_a", Port::Consume, 3);
    assert_mentions(
        &error_of(&d),
        &["aie.objectfifo.acquire @in_a(Consume, 3)", "depth 2"],
    );
}

#[test]
fn acquire_on_the_wrong_port() {
    let mut d = split_design();
    body_mut(&mut d, 0)[0] = acquire("in_a", Port::Produce, 1, "a");
    assert_mentions(&error_of(&d), &["@in_a(Produce, 1)", "not the producer"]);
}

#[test]
fn unbalanced_loop_body() {
    let mut d = split_design();
    body_mut(&mut d, 0).remove(3); // no release of in_a
    assert_mentions(
        &error_of(&d),
        &[
            "aie.core(aie.tile(0, 2))",
            "unbalanced on @in_a(Consume)",
            "0 buffers held on entry, 1 on exit",
        ],
    );
}

#[test]
fn release_without_acquire() {
    let mut d = split_design();
    body_mut(&mut d, 0).push(release("in_a", Port::Consume, 1));
    assert_mentions(
        &error_of(&d),
        &["aie.objectfifo.release @in_a(Consume, 1)", "0 are held"],
    );
}

#[test]
fn kernel_uses_released_buffer() {
    let mut d = split_design();
    let body = body_mut(&mut d, 0);
    let kernel = body.remove(2);
    body.insert(3, kernel); // after release of in_a
    assert_mentions(&error_of(&d), &["kernel `copy` uses `a` after its release"]);
}

#[test]
fn kernel_uses_unknown_binding() {
    let mut d = split_design();
    body_mut(&mut d, 0)[2] = CoreStmt::Kernel {
        kernel: copy_kernel(),
        args: vec![arg("zz", 0)],
    };
    assert_mentions(&error_of(&d), &["unknown binding `zz`"]);
}

#[test]
fn fill_into_fifo_not_fed_by_shim() {
    let mut d = split_design();
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in_a".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(0, 32),
    };
    assert_mentions(
        &error_of(&d),
        &[
            "aiex.npu.dma_memcpy_nd #0 (metadata = @in_a)",
            "not a shim tile",
        ],
    );
}

#[test]
fn drain_from_fifo_no_shim_consumes() {
    let mut d = split_design();
    d.sequence.ops[1] = SeqOp::Drain {
        fifo: "in".into(),
        arg: 1,
        pattern: TensorAccessPattern::linear(0, 64),
    };
    assert_mentions(&error_of(&d), &["metadata = @in", "no shim tile consumes"]);
}

#[test]
fn pattern_beyond_host_buffer() {
    let mut d = split_design();
    d.sequence.ops[2] = SeqOp::Drain {
        fifo: "out_b".into(),
        arg: 1,
        pattern: TensorAccessPattern {
            offset: 64,
            sizes: [1, 1, 8, 32],
            strides: [0, 0, 64, 1],
        },
    };
    assert_mentions(
        &error_of(&d),
        &["metadata = @out_b", "reaches element 543", "512 elements"],
    );
}

#[test]
fn pattern_with_strided_innermost_dimension() {
    let mut d = split_design();
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern {
            offset: 0,
            sizes: [1, 1, 1, 64],
            strides: [0, 0, 0, 2],
        },
    };
    assert_mentions(&error_of(&d), &["innermost stride must be 1"]);
}

#[test]
fn pattern_not_whole_objects() {
    let mut d = split_design();
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(0, 100),
    };
    assert_mentions(
        &error_of(&d),
        &["moves 100 elements", "64-element @in objects"],
    );
}

#[test]
fn drain_never_awaited() {
    let mut d = split_design();
    d.sequence.ops.pop();
    assert_mentions(&error_of(&d), &["metadata = @out_b", "never awaited"]);
}

#[test]
fn wait_without_dma() {
    let mut d = split_design();
    d.sequence.ops.insert(
        0,
        SeqOp::Wait {
            fifo: "out_a".into(),
        },
    );
    assert_mentions(
        &error_of(&d),
        &["aiex.npu.dma_wait {symbol = @out_a}", "no DMA in flight"],
    );
}

#[test]
fn host_buffer_argument_missing() {
    let mut d = split_design();
    d.sequence.args.pop();
    assert_mentions(&error_of(&d), &["%arg1 does not exist"]);
}

#[test]
fn too_many_dmas_in_flight() {
    let mut d = split_design();
    d.sequence.ops = (0..17)
        .map(|_| SeqOp::Fill {
            fifo: "in".into(),
            arg: 0,
            pattern: TensorAccessPattern::linear(0, 64),
        })
        .collect();
    assert_mentions(
        &error_of(&d),
        &["more than 16 DMAs in flight on shim aie.tile(0, 0)"],
    );
}

#[test]
fn dma_ids_are_reused_after_waits() {
    let mut d = split_design();
    let fill = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(0, 64),
    };
    let wait = SeqOp::Wait { fifo: "in".into() };
    d.sequence.ops = vec![fill.clone(), wait.clone(), fill, wait];
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
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern {
            offset: 0,
            sizes: [1, 1, 2, 2048],
            strides: [0, 0, 2048, 1],
        },
    };
    assert_mentions(
        &error_of(&d),
        &["innermost size 2048 is 1024 words", "at most 1023"],
    );
    // The same amount as one plain linear transfer is fine.
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(0, 4096),
    };
    mlir::verify(&d).unwrap();
    // More than 65 outer iterations.
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern {
            offset: 0,
            sizes: [66, 1, 1, 32],
            strides: [32, 0, 0, 1],
        },
    };
    assert_mentions(
        &error_of(&d),
        &["outermost size 66 exceeds the 65 iterations"],
    );
    // Odd i16 offsets are not 4-byte aligned.
    d.sequence.ops[0] = SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(1, 64),
    };
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
