//! Lowering a small hand-written design: aie-opt custom syntax (snapshot in golden/), the
//! generic form's round trip through MLIR's parser, determinism, and the MLIR verifier.

use std::sync::Arc;

use aiec::design::{
    BufArg, BufferType, CoreStmt, Design, DesignError, ElemType, FifoLink, HostBuffer, Kernel,
    ObjectFifo, Port, RuntimeSequence, SeqOp, TensorAccessPattern, TileId, Worker,
};
use aiec::mlir::{self, MlirError};
use melior::{
    dialect::{arith, memref, scf},
    ir::{
        attribute::IntegerAttribute, operation::OperationLike, r#type::IntegerType, Block,
        BlockLike, Module, Region, RegionLike, Type,
    },
};

/// `out[i] = in[i] + 1` over a 1-D i32 buffer, as scf/arith/memref.
fn add_one(n: usize) -> Kernel {
    Kernel {
        name: "add_one".into(),
        const_bytes: 0,
        emit: Arc::new(move |cx, block, args| {
            let (ctx, loc) = (cx.context, cx.location);
            let index = Type::index(ctx);
            let i32t: Type = IntegerType::new(ctx, 32).into();
            fn c<'c, 'b>(
                ctx: &'c melior::Context,
                b: &'b Block<'c>,
                v: i64,
                t: Type<'c>,
            ) -> melior::ir::Value<'c, 'b> {
                let loc = melior::ir::Location::unknown(ctx);
                b.append_operation(arith::constant(
                    ctx,
                    IntegerAttribute::new(t, v).into(),
                    loc,
                ))
                .result(0)
                .unwrap()
                .into()
            }
            let lo = c(ctx, block, 0, index);
            let hi = c(ctx, block, n as i64, index);
            let step = c(ctx, block, 1, index);
            let body = Block::new(&[(index, loc)]);
            let iv = body.argument(0).unwrap().into();
            let x = body
                .append_operation(memref::load(args[0], &[iv], loc))
                .result(0)
                .unwrap()
                .into();
            let one = c(ctx, &body, 1, i32t);
            let y = body
                .append_operation(arith::addi(x, one, loc))
                .result(0)
                .unwrap()
                .into();
            body.append_operation(memref::store(y, args[1], &[iv], loc));
            body.append_operation(scf::r#yield(&[], loc));
            let region = Region::new();
            region.append_block(body);
            block.append_operation(scf::r#for(lo, hi, step, region, loc));
            Ok(())
        }),
    }
}

/// Host -> shim -> memtile -> core (+1) -> memtile -> shim -> host, 4 tiles of 64.
fn add_one_design() -> Design {
    let shim = TileId::new(0, 0);
    let mem = TileId::new(0, 1);
    let core = TileId::new(0, 2);
    let ty = BufferType::new([64], ElemType::I32);
    let fifo = |name: &str, p, c| ObjectFifo {
        name: name.into(),
        producer: p,
        consumers: vec![c],
        depth: 2,
        ty: ty.clone(),
    };
    let host = BufferType::new([256], ElemType::I32);
    Design {
        name: "add_one".into(),
        device: "npu1_1col".into(),
        tiles: vec![shim, mem, core],
        fifos: vec![
            fifo("in0", shim, mem),
            fifo("in1", mem, core),
            fifo("out1", core, mem),
            fifo("out0", mem, shim),
        ],
        links: vec![
            FifoLink {
                srcs: vec!["in0".into()],
                dsts: vec!["in1".into()],
                src_offsets: vec![],
                dst_offsets: vec![],
            },
            FifoLink {
                srcs: vec!["out1".into()],
                dsts: vec!["out0".into()],
                src_offsets: vec![],
                dst_offsets: vec![],
            },
        ],
        workers: vec![Worker {
            tile: core,
            stack_bytes: 1024,
            program: vec![CoreStmt::Loop {
                count: 4,
                body: vec![
                    CoreStmt::Acquire {
                        fifo: "in1".into(),
                        port: Port::Consume,
                        count: 1,
                        binding: "x".into(),
                    },
                    CoreStmt::Acquire {
                        fifo: "out1".into(),
                        port: Port::Produce,
                        count: 1,
                        binding: "y".into(),
                    },
                    CoreStmt::Kernel {
                        kernel: add_one(64),
                        args: vec![
                            BufArg {
                                binding: "x".into(),
                                index: 0,
                            },
                            BufArg {
                                binding: "y".into(),
                                index: 0,
                            },
                        ],
                    },
                    CoreStmt::Release {
                        fifo: "in1".into(),
                        port: Port::Consume,
                        count: 1,
                    },
                    CoreStmt::Release {
                        fifo: "out1".into(),
                        port: Port::Produce,
                        count: 1,
                    },
                ],
            }],
        }],
        sequence: RuntimeSequence {
            args: vec![
                HostBuffer {
                    name: "input".into(),
                    ty: host.clone(),
                },
                HostBuffer {
                    name: "output".into(),
                    ty: host,
                },
            ],
            ops: vec![
                SeqOp::Fill {
                    fifo: "in0".into(),
                    arg: 0,
                    pattern: TensorAccessPattern::linear(0, 256),
                },
                SeqOp::Drain {
                    fifo: "out0".into(),
                    arg: 1,
                    pattern: TensorAccessPattern {
                        offset: 0,
                        sizes: [1, 4, 2, 32],
                        strides: [0, 64, 32, 1],
                    },
                },
                SeqOp::Wait {
                    fifo: "out0".into(),
                },
            ],
        },
    }
}

#[test]
fn custom_syntax_matches_golden() {
    let text = mlir::emit(&add_one_design()).unwrap();
    insta::with_settings!({snapshot_path => "../golden", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("add_one_custom", text);
    });
}

#[test]
fn custom_syntax_has_aie_opt_spelling() {
    let text = mlir::emit(&add_one_design()).unwrap();
    let expect = [
        "  aie.device(npu1_1col) {",
        "    %shim_noc_tile_0_0 = aie.tile(0, 0)",
        "    %tile_0_2 = aie.tile(0, 2)",
        "    aie.objectfifo @in0(%shim_noc_tile_0_0, {%mem_tile_0_1}, 2 : i32) : !aie.objectfifo<memref<64xi32>> ",
        "    aie.objectfifo.link [@in0] -> [@in1]([] [])",
        "    %core_0_2 = aie.core(%tile_0_2) {",
        "      scf.for %arg0 = %c0 to %c4 step %c1 {",
        "        %0 = aie.objectfifo.acquire @in1(Consume, 1) : !aie.objectfifosubview<memref<64xi32>>",
        "        %1 = aie.objectfifo.subview.access %0[0] : !aie.objectfifosubview<memref<64xi32>> -> memref<64xi32>",
        "        aie.objectfifo.release @out1(Produce, 1)",
        "      aie.end",
        "    aie.runtime_sequence(%arg0: memref<256xi32>, %arg1: memref<256xi32>) {",
        "      aiex.npu.dma_memcpy_nd(%arg0[0, 0, 0, 0][1, 1, 1, 256][0, 0, 0, 1]) {id = 0 : i64, metadata = @in0} : memref<256xi32>",
        "      aiex.npu.dma_memcpy_nd(%arg1[0, 0, 0, 0][1, 4, 2, 32][0, 64, 32, 1]) {id = 1 : i64, issue_token = true, metadata = @out0} : memref<256xi32>",
        "      aiex.npu.dma_wait {symbol = @out0}",
    ];
    for line in expect {
        assert!(
            text.lines().any(|l| l == line),
            "missing line\n{line}\nin\n{text}"
        );
    }
    // No aie op may fall back to MLIR's generic form.
    assert!(!text.contains("\"aie."), "{text}");
    assert!(!text.contains("\"aiex."), "{text}");
}

#[test]
fn output_is_deterministic() {
    let a = mlir::emit(&add_one_design()).unwrap();
    let b = mlir::emit(&add_one_design()).unwrap();
    assert_eq!(a, b);
    let a = mlir::emit_generic(&add_one_design()).unwrap();
    let b = mlir::emit_generic(&add_one_design()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn generic_form_round_trips_through_mlir() {
    let text = mlir::emit_generic(&add_one_design()).unwrap();
    let context = mlir::context();
    let module = Module::parse(&context, &text).expect("MLIR parses our generic output");
    assert!(module.as_operation().verify());
    let again = mlir::print::generic(&module).unwrap();
    assert_eq!(text, again);
    // The re-parsed module prints to the same custom syntax, up to the tile/core SSA names
    // that only name locations (not printed in generic form) carry.
    let reparsed = mlir::print::print_module(&module).unwrap();
    let original = mlir::emit(&add_one_design()).unwrap();
    assert_eq!(reparsed.lines().count(), original.lines().count());
    assert!(reparsed.contains("%0 = aie.tile(0, 0)"), "{reparsed}");
}

#[test]
fn lowered_module_is_usable_by_other_passes() {
    let context = mlir::context();
    let module = mlir::lower(
        &context,
        &add_one_design(),
        &mlir::verify(&add_one_design()).unwrap(),
    )
    .unwrap();
    let mut aie_ops = 0;
    module
        .as_operation()
        .walk(melior::ir::operation::WalkOrder::PreOrder, |op| {
            if op
                .name()
                .as_string_ref()
                .as_str()
                .unwrap()
                .starts_with("aie")
            {
                aie_ops += 1;
            }
            melior::ir::operation::WalkResult::Advance
        });
    // device, 3 tiles, 4 fifos, 2 links, core, 2 acquires, 2 accesses, 2 releases, 2 ends,
    // runtime_sequence, 2 DMAs, 1 wait.
    assert_eq!(aie_ops, 1 + 3 + 4 + 2 + 1 + 2 + 2 + 2 + 2 + 1 + 2 + 1);
}

#[test]
fn kernel_type_errors_are_reported_by_mlir_verifier() {
    let mut design = add_one_design();
    let bad = Kernel {
        name: "bad".into(),
        const_bytes: 0,
        emit: Arc::new(|cx, block, args| {
            // memref.load with no index on a 1-D memref: MLIR's verifier must reject it.
            block.append_operation(memref::load(args[0], &[], cx.location));
            Ok(())
        }),
    };
    if let CoreStmt::Loop { body, .. } = &mut design.workers[0].program[0] {
        body[2] = CoreStmt::Kernel {
            kernel: bad,
            args: vec![BufArg {
                binding: "x".into(),
                index: 0,
            }],
        };
    }
    let err = mlir::emit(&design).unwrap_err();
    match err {
        MlirError::MlirVerify { diagnostics, .. } => {
            assert!(
                diagnostics.contains("memref.load") || diagnostics.contains("indices"),
                "{diagnostics}"
            )
        }
        other => panic!("expected an MLIR verifier error, got {other}"),
    }
}

#[test]
fn kernel_emitter_errors_propagate() {
    let mut design = add_one_design();
    let failing = Kernel {
        name: "failing".into(),
        const_bytes: 0,
        emit: Arc::new(|_, _, _| {
            Err(DesignError::Kernel {
                kernel: "failing".into(),
                message: "tile too small".into(),
            })
        }),
    };
    if let CoreStmt::Loop { body, .. } = &mut design.workers[0].program[0] {
        body[2] = CoreStmt::Kernel {
            kernel: failing,
            args: vec![],
        };
    }
    let err = mlir::emit(&design).unwrap_err().to_string();
    assert!(
        err.contains("failing") && err.contains("tile too small"),
        "{err}"
    );
}

#[test]
fn kernels_may_add_device_level_globals() {
    use melior::ir::{operation::OperationBuilder, Attribute, Identifier};
    let mut design = add_one_design();
    let with_lut = Kernel {
        name: "lut".into(),
        const_bytes: 0,
        emit: Arc::new(|cx, block, _args| {
            let ctx = cx.context;
            let attr = |s: &str| Attribute::parse(ctx, s).unwrap();
            let global = OperationBuilder::new("memref.global", cx.location)
                .add_attributes(&[
                    (Identifier::new(ctx, "sym_name"), attr("\"lut\"")),
                    (Identifier::new(ctx, "sym_visibility"), attr("\"private\"")),
                    (Identifier::new(ctx, "type"), attr("memref<4xf32>")),
                    (
                        Identifier::new(ctx, "initial_value"),
                        attr("dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>"),
                    ),
                    (Identifier::new(ctx, "constant"), attr("unit")),
                ])
                .build()
                .unwrap();
            cx.device_block.append_operation(global);
            let get = OperationBuilder::new("memref.get_global", cx.location)
                .add_attributes(&[(Identifier::new(ctx, "name"), attr("@lut"))])
                .add_results(&[Type::parse(ctx, "memref<4xf32>").unwrap()])
                .build()
                .unwrap();
            block.append_operation(get);
            Ok(())
        }),
    };
    if let CoreStmt::Loop { body, .. } = &mut design.workers[0].program[0] {
        body[2] = CoreStmt::Kernel {
            kernel: with_lut,
            args: vec![],
        };
    }
    let text = mlir::emit(&design).unwrap();
    assert!(
        text.contains("memref.global \"private\" constant @lut : memref<4xf32> = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]>"),
        "{text}"
    );
    assert!(
        text.contains(" = memref.get_global @lut : memref<4xf32>"),
        "{text}"
    );
    assert!(
        !text.contains("\"memref."),
        "upstream ops must print in custom form:\n{text}"
    );

    // A use of a global nobody defined is caught.
    if let CoreStmt::Loop { body, .. } = &mut design.workers[0].program[0] {
        body[2] = CoreStmt::Kernel {
            kernel: Kernel {
                name: "dangling".into(),
                const_bytes: 0,
                emit: Arc::new(|cx, block, _| {
                    let get = OperationBuilder::new("memref.get_global", cx.location)
                        .add_attributes(&[(
                            Identifier::new(cx.context, "name"),
                            Attribute::parse(cx.context, "@nowhere").unwrap(),
                        )])
                        .add_results(&[Type::parse(cx.context, "memref<4xf32>").unwrap()])
                        .build()
                        .unwrap();
                    block.append_operation(get);
                    Ok(())
                }),
            },
            args: vec![],
        };
    }
    let err = mlir::emit(&design).unwrap_err().to_string();
    assert!(err.contains("memref.get_global @nowhere"), "{err}");
}
