//! A user's own kernel written with the DSL: ReLU over a bf16 vector on one core.
//!
//! `cargo run --release --example relu` builds the design (a shim -> core FIFO, a core -> shim
//! FIFO, a worker that loops over 1 KiB chunks), lowers it through melior and prints the MLIR in
//! aie-opt's syntax. Pass `--length N` to change the vector length (a multiple of 512).

use anyhow::{bail, Context as _, Result};

use aiec::design::{
    BufArg, BufferType, CoreStmt, Design, ElemType, HostBuffer, ObjectFifo, Port, RuntimeSequence,
    SeqOp, TensorAccessPattern, TileId, Worker,
};
use aiec::ops::kernel;
use aiec::ops::kir::Emit;

/// Elements per FIFO buffer.
const CHUNK: usize = 512;

/// `y[i] = max(x[i], 0)`, computed in f32 and stored back as bf16.
fn relu_kernel() -> aiec::design::Kernel {
    kernel("relu", |ctx, block, args| {
        let e = Emit::new(ctx, block, "relu");
        let (x, y) = (args[0], args[1]);
        let zero = e.f32(0.0)?;
        e.for_n(CHUNK, |e, i| {
            let v = e.load_f32(x, &[i])?;
            e.store_f32(e.maxf(v, zero)?, y, &[i], ElemType::Bf16)
        })
    })
}

fn relu_design(length: usize) -> Result<Design> {
    if length == 0 || !length.is_multiple_of(CHUNK) {
        bail!("--length {length} must be a positive multiple of {CHUNK}");
    }
    let (shim, core) = (TileId::new(0, 0), TileId::new(0, 2));
    let chunk = BufferType::new([CHUNK], ElemType::Bf16);
    let fifo = |name: &str, producer, consumer| ObjectFifo {
        name: name.into(),
        producer,
        consumers: vec![consumer],
        depth: 2,
        ty: chunk.clone(),
    };
    let arg = |b: &str| BufArg {
        binding: b.into(),
        index: 0,
    };
    let program = vec![CoreStmt::Loop {
        count: (length / CHUNK) as u64,
        body: vec![
            CoreStmt::Acquire {
                fifo: "x".into(),
                port: Port::Consume,
                count: 1,
                binding: "x".into(),
            },
            CoreStmt::Acquire {
                fifo: "y".into(),
                port: Port::Produce,
                count: 1,
                binding: "y".into(),
            },
            CoreStmt::Kernel {
                kernel: relu_kernel(),
                args: vec![arg("x"), arg("y")],
            },
            CoreStmt::Release {
                fifo: "x".into(),
                port: Port::Consume,
                count: 1,
            },
            CoreStmt::Release {
                fifo: "y".into(),
                port: Port::Produce,
                count: 1,
            },
        ],
    }];
    let host = BufferType::new([length], ElemType::Bf16);
    Ok(Design {
        name: "relu".into(),
        device: "npu1_1col".into(),
        tiles: vec![shim, core],
        fifos: vec![fifo("x", shim, core), fifo("y", core, shim)],
        links: vec![],
        workers: vec![Worker {
            tile: core,
            program,
            stack_bytes: 1024,
        }],
        sequence: RuntimeSequence {
            args: vec![
                HostBuffer {
                    name: "X".into(),
                    ty: host.clone(),
                },
                HostBuffer {
                    name: "Y".into(),
                    ty: host,
                },
            ],
            ops: vec![
                SeqOp::Fill {
                    fifo: "x".into(),
                    arg: 0,
                    pattern: TensorAccessPattern::linear(0, length),
                },
                SeqOp::Drain {
                    fifo: "y".into(),
                    arg: 1,
                    pattern: TensorAccessPattern::linear(0, length),
                },
                SeqOp::Wait { fifo: "y".into() },
            ],
        },
    })
}

fn main() -> Result<()> {
    let mut length = 4096;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--length" => {
                let v = args.next().context("--length needs a value")?;
                length = v
                    .parse()
                    .with_context(|| format!("--length {v}: not a number"))?;
            }
            other => bail!("unknown argument `{other}` (expected --length N)"),
        }
    }
    let design = relu_design(length)?;
    aiec::mlir::verify(&design).context("verifying the relu design")?;
    let text = aiec::mlir::emit(&design).context("lowering the relu design")?;
    print!("{text}");
    Ok(())
}
