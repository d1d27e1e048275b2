//! A user's own kernel written with the DSL: ReLU over a bf16 vector on one core.
//!
//! `cargo run --release --example relu [-- --length N]` builds the design (a FIFO from the
//! host to the core and one back, a worker looping over 512-element chunks, the kernel from
//! the expression `max(x, 0)`), lowers it through melior and prints the MLIR in aie-opt's
//! syntax. N must be a multiple of 512.

use anyhow::{bail, Context as _, Result};

use aiec::design::{BufferType, Design, ElemType, Port, Program, TensorAccessPattern, TileId};

/// Elements per FIFO buffer.
const CHUNK: usize = 512;

fn relu_design(length: usize) -> Result<Design> {
    if length == 0 || !length.is_multiple_of(CHUNK) {
        bail!("--length {length} must be a positive multiple of {CHUNK}");
    }
    // y[i] = max(x[i], 0), computed in f32 and stored back as bf16.
    let chunk = BufferType::new([CHUNK], ElemType::Bf16);
    let relu = aiec::expr::kernel("relu", "max(x, 0)", &chunk)?;
    let mut p = Program::new("relu", "npu1_1col");
    let host = BufferType::new([length], ElemType::Bf16);
    let (x_host, y_host) = (p.arg("X", host.clone()), p.arg("Y", host));
    let (x, y) = (p.fifo("x", chunk.clone(), 2), p.fifo("y", chunk, 2));
    p.worker(TileId::new(0, 2), |w| {
        w.repeat((length / CHUNK) as u64, |w| {
            let (a, b) = (
                w.acquire(&x, Port::Consume, 1),
                w.acquire(&y, Port::Produce, 1),
            );
            w.call(&relu, [a.first(), b.first()]);
            w.release(a);
            w.release(b);
        })
    });
    p.sequence(|rt| {
        rt.fill(&x, &x_host, TensorAccessPattern::linear(0, length));
        rt.drain(&y, &y_host, TensorAccessPattern::linear(0, length));
        rt.wait(&y);
    });
    Ok(p.build()?)
}

fn main() -> Result<()> {
    let length = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 4096,
        [flag, v] if flag == "--length" => v.parse().with_context(|| format!("--length {v}"))?,
        other => bail!("unexpected arguments {other:?} (expected --length N)"),
    };
    let design = relu_design(length)?;
    aiec::mlir::verify(&design).context("verifying the relu design")?;
    print!(
        "{}",
        aiec::mlir::emit(&design).context("lowering the relu design")?
    );
    Ok(())
}
