//! What validation derives from a design (`aiec::design::validate` -> `DesignInfo`), checked
//! against numbers worked out by hand or read back from the lowered module.

use std::path::Path;

use aiec::design::info::{MemoryItem, SeqStep};
use aiec::design::validate::validate_on_named_device;
use aiec::design::{
    BufferType, CoreStmt, Design, ElemType, HostBuffer, ObjectFifo, Port, RuntimeSequence, SeqOp,
    TensorAccessPattern, TileId, Worker,
};
use aiec::mlir;
use aiec::spec::Spec;

const SHIM: TileId = TileId::new(0, 0);
const CORE: TileId = TileId::new(0, 2);

fn fifo(name: &str, producer: TileId, consumer: TileId, depth: u32) -> ObjectFifo {
    ObjectFifo {
        name: name.into(),
        producer,
        consumers: vec![consumer],
        depth,
        ty: BufferType::new([16], ElemType::I32),
    }
}

/// shim -> @in -> core (through the core-local @tmp) -> @out -> shim; the sequence
/// is `ops` over one 64-element input and one 64-element output.
fn stream(ops: Vec<SeqOp>) -> Design {
    // Data moves through the buffers' hand-over alone: the kernels are not what is tested.
    let hand_over = |from: &str, to: &str| {
        [
            CoreStmt::acquire_one(from, Port::Consume, "x"),
            CoreStmt::acquire_one(to, Port::Produce, "y"),
            CoreStmt::release_one(from, Port::Consume),
            CoreStmt::release_one(to, Port::Produce),
        ]
    };
    let body = [hand_over("in", "tmp"), hand_over("tmp", "out")].concat();
    let host = |name: &str| HostBuffer {
        name: name.into(),
        ty: BufferType::new([64], ElemType::I32),
    };
    Design {
        name: "stream".into(),
        device: "npu1_1col".into(),
        tiles: vec![SHIM, CORE],
        fifos: vec![
            fifo("in", SHIM, CORE, 2),
            fifo("tmp", CORE, CORE, 2),
            fifo("out", CORE, SHIM, 2),
        ],
        links: vec![],
        workers: vec![Worker {
            tile: CORE,
            program: vec![CoreStmt::Loop { count: 4, body }],
            stack_bytes: 1024,
        }],
        sequence: RuntimeSequence {
            args: vec![host("a"), host("b")],
            ops,
        },
    }
}

fn fill(offset: usize, len: usize) -> SeqOp {
    SeqOp::Fill {
        fifo: "in".into(),
        arg: 0,
        pattern: TensorAccessPattern::linear(offset, len),
    }
}

fn drain(offset: usize, len: usize) -> SeqOp {
    SeqOp::Drain {
        fifo: "out".into(),
        arg: 1,
        pattern: TensorAccessPattern::linear(offset, len),
    }
}

fn wait() -> SeqOp {
    SeqOp::Wait { fifo: "out".into() }
}

#[test]
fn shim_bds_are_reused_after_a_wait_and_tokens_mark_awaited_transfers() {
    let d = stream(vec![
        fill(0, 64),
        drain(0, 32),
        wait(),
        drain(32, 32),
        wait(),
    ]);
    let info = mlir::verify(&d).unwrap();
    // Two channels on the shim: MM2S into @in, S2MM out of @out.
    assert_eq!(info.shim_dmas.len(), 2);
    assert_eq!(info.shim_dmas[0].end.port, Port::Produce);
    assert_eq!(info.shim_dmas[1].end.port, Port::Consume);
    let t = |dma, bd, issue_token| SeqStep::Transfer {
        dma,
        bd,
        issue_token,
    };
    // The fill is never awaited, so it keeps BD 0; each drain takes BD 1, freed by its wait.
    assert_eq!(
        info.sequence,
        vec![
            t(0, 0, false),
            t(1, 1, true),
            SeqStep::Wait { dma: 1 },
            t(1, 1, true),
            SeqStep::Wait { dma: 1 }
        ]
    );
    let text = mlir::emit(&d).unwrap();
    assert!(
        text.contains("{id = 1 : i64, issue_token = true, metadata = @out}"),
        "{text}"
    );
}

#[test]
fn more_transfers_in_flight_than_shim_bds_are_refused() {
    let shim_bds = aiec::device::DeviceModel::get("npu1_1col")
        .unwrap()
        .shim
        .bds as usize;
    // 4-element fills: 16 fit the 64-element input, the 17th needs a BD that is not free.
    let mut ops: Vec<SeqOp> = (0..=shim_bds).map(|i| fill(4 * (i % 16), 4)).collect();
    ops.extend([drain(0, 64), wait()]);
    let mut d = stream(ops);
    d.fifos[0].ty = BufferType::new([4], ElemType::I32);
    let err = validate_on_named_device(&d).unwrap_err().to_string();
    assert!(
        err.contains(&format!("aiex.npu.dma_memcpy_nd #{shim_bds}"))
            && err.contains(&format!("more than {shim_bds} DMAs in flight")),
        "{err}"
    );
}

#[test]
fn per_tile_use_counts_a_local_fifo_once() {
    let d = stream(vec![fill(0, 64), drain(0, 64), wait()]);
    let info = validate_on_named_device(&d).unwrap();
    let core = &info.tiles[&CORE];
    // @in and @out: 2 x 64 B each end; @tmp: 2 x 64 B once (producer and consumer are the core).
    assert_eq!(core.fifo_bytes(), 3 * 2 * 64);
    assert_eq!(core.memory_bytes(), 3 * 2 * 64 + 1024);
    let tmp = core
        .memory
        .iter()
        .filter(|m| m.item == MemoryItem::Fifo { fifo: 1 })
        .count();
    assert_eq!(tmp, 1);
    // Lock pairs: @in, @tmp, @out; BDs and channels only for the two that cross tiles.
    assert_eq!((core.locks, core.bds, core.s2mm, core.mm2s), (6, 4, 1, 1));
    let shim = &info.tiles[&SHIM];
    assert_eq!((shim.memory_bytes(), shim.locks, shim.bds), (0, 4, 2));
    // The worker numbers its FIFO ends in order of first use.
    let ends: Vec<(usize, Port)> = info.workers[0]
        .ports
        .iter()
        .map(|e| (e.fifo, e.port))
        .collect();
    assert_eq!(
        ends,
        vec![
            (0, Port::Consume),
            (1, Port::Produce),
            (1, Port::Consume),
            (2, Port::Produce)
        ]
    );
}

/// Bytes of the distinct `memref.global`s of an aie-opt-syntax module, read off their types.
fn global_bytes(mlir_text: &str) -> usize {
    let mut seen = Vec::new();
    let mut total = 0;
    for line in mlir_text.lines().filter(|l| l.contains("memref.global")) {
        let name = line
            .split('@')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        if seen.contains(&name.to_string()) {
            continue;
        }
        seen.push(name.to_string());
        let ty = line.split(": memref<").nth(1).unwrap();
        let ty = &ty[..ty.find('>').unwrap()];
        let dims: Vec<&str> = ty.split('x').collect();
        let (elem, dims) = dims.split_last().unwrap();
        assert_eq!(*elem, "f32", "{line}");
        total += dims
            .iter()
            .map(|d| d.parse::<usize>().unwrap())
            .product::<usize>()
            * 4;
    }
    total
}

#[test]
fn constant_tables_are_the_bytes_of_the_lowered_globals() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-specs");
    for name in ["gelu.toml", "mel.toml", "gelu_lut_expr.toml"] {
        let spec = Spec::load(root.join(name)).unwrap();
        let design = spec.build().unwrap();
        let info = mlir::verify(&design).unwrap();
        let lowered = global_bytes(&mlir::emit(&design).unwrap());
        assert!(lowered > 0, "{name}: no tables in the module");
        for w in &design.workers {
            assert_eq!(info.tiles[&w.tile].table_bytes(), lowered, "{name}");
        }
    }
}
