//! Lowering a small hand-written design: aie-opt custom syntax (snapshot in golden/), the
//! generic form's round trip through MLIR's parser, determinism, and the MLIR verifier.

use aiec::design::{
    BufferType, CoreStmt, Design, DesignError, ElemType, Kernel, RuntimeSequence,
    TensorAccessPattern, TileId, Worker,
};
use aiec::mlir::{self, MlirError};
use aiec::ops::kernel;
use melior::{
    dialect::{arith, memref},
    ir::{operation::OperationLike, r#type::IntegerType, BlockLike, Module, Type},
};

#[allow(dead_code)]
mod common;
use common::design::{
    call, drain, fifo, fill, host, int_const, link, map_loop, map_step, pattern, wait,
};

/// `out[i] = in[i] + 1` over a 1-D i32 buffer, as scf/arith/memref.
fn add_one(n: usize) -> Kernel {
    kernel("add_one", move |cx, block, args| {
        map_loop(cx, block, args, n, |body, x| {
            let i32t: Type = IntegerType::new(cx.context, 32).into();
            let one = int_const(cx, body, i32t, 1);
            body.append_operation(arith::addi(x, one, cx.location))
                .result(0)
                .unwrap()
                .into()
        })
    })
}

/// Host -> shim -> memtile -> core (+1) -> memtile -> shim -> host, 4 tiles of 64.
fn add_one_design() -> Design {
    let shim = TileId::new(0, 0);
    let mem = TileId::new(0, 1);
    let core = TileId::new(0, 2);
    let ty = BufferType::new([64], ElemType::I32);
    let fifo = |name: &str, p, c| fifo(name, p, &[c], 2, ty.clone());
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
            link(&["in0"], &["in1"], vec![], vec![]),
            link(&["out1"], &["out0"], vec![], vec![]),
        ],
        workers: vec![Worker {
            tile: core,
            stack_bytes: 1024,
            program: vec![CoreStmt::Loop {
                count: 4,
                body: map_step("in1", "out1", ["x", "y"], add_one(64)),
            }],
        }],
        sequence: RuntimeSequence {
            args: vec![
                host("input", 256, ElemType::I32),
                host("output", 256, ElemType::I32),
            ],
            ops: vec![
                fill("in0", 0, TensorAccessPattern::linear(0, 256)),
                drain("out0", 1, pattern(0, [1, 4, 2, 32], [0, 64, 32, 1])),
                wait("out0"),
            ],
        },
    }
}

/// `add_one_design` with its kernel call replaced by `kernel` on `bindings`, lowered.
fn emit_with_kernel(kernel: Kernel, bindings: &[&str]) -> Result<String, MlirError> {
    let mut design = add_one_design();
    match &mut design.workers[0].program[0] {
        CoreStmt::Loop { body, .. } => body[2] = call(kernel, bindings),
        _ => unreachable!(),
    }
    mlir::emit(&design)
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
    let bad = kernel("bad", |cx, block, args| {
        // memref.load with no index on a 1-D memref: MLIR's verifier must reject it.
        block.append_operation(memref::load(args[0], &[], cx.location));
        Ok(())
    });
    let err = emit_with_kernel(bad, &["x"]).unwrap_err();
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
    let failing = kernel("failing", |_, _, _| {
        Err(DesignError::Kernel {
            kernel: "failing".into(),
            message: "tile too small".into(),
        })
    });
    let err = emit_with_kernel(failing, &[]).unwrap_err().to_string();
    assert!(
        err.contains("failing") && err.contains("tile too small"),
        "{err}"
    );
}

#[test]
fn kernels_may_add_device_level_globals() {
    use melior::ir::{operation::OperationBuilder, Attribute, Identifier};
    let with_lut = kernel("lut", |cx, block, _args| {
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
    });
    let text = emit_with_kernel(with_lut, &[]).unwrap();
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
    let dangling = kernel("dangling", |cx, block, _| {
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
    });
    let err = emit_with_kernel(dangling, &[]).unwrap_err().to_string();
    assert!(err.contains("memref.get_global @nowhere"), "{err}");
}
