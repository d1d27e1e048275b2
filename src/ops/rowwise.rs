//! The design shared by the row-wise ops (GELU, softmax, layernorm): `rows x cols`
//! activations, rows dealt to columns in contiguous chunks, each chunk streamed through the
//! column's memtile in steps of `cores x tile_rows` rows, split so core `r` gets rows
//! `[r*tile_rows, (r+1)*tile_rows)` of each step, and joined back the same way.
//!
//! FIFOs per column `c`: `in{c}` (shim -> memtile) split into `x{c}_{r}`; `y{c}_{r}` joined into
//! `out{c}` (memtile -> shim); optionally `p{c}` (shim -> every core, broadcast): a parameter
//! buffer (layernorm's gamma and beta) acquired once and held for the whole run.

use crate::design::{
    BufArg, BufferType, CoreStmt, Design, DesignError, ElemType, FifoLink, HostBuffer, Kernel,
    ObjectFifo, Port, RuntimeSequence, SeqOp, TensorAccessPattern, Worker,
};
use crate::ops::registry::SpecCommon;
use crate::ops::{core, memtile, shim};
use crate::spec::{ArraySpec, RowsShape};

/// What a row-wise op plugs into the shared design.
pub struct RowwisePlan<'a> {
    pub name: &'a str,
    pub device: &'a str,
    pub rows: usize,
    pub cols: usize,
    pub tile_rows: usize,
    pub array: ArraySpec,
    pub depth: u32,
    pub stack_bytes: usize,
    pub elem: ElemType,
    /// Optional parameter buffer broadcast to every core (shape, element type).
    pub params: Option<BufferType>,
    /// The kernel for one step on core `core_index` (global, column-major) at step `step`;
    /// it receives `(x, y)` or `(x, y, params)`. `None` for `step` means one kernel for all
    /// steps (a plain loop); `Some` unrolls the steps (for kernels that need the absolute row).
    pub kernel_for: &'a dyn Fn(usize, Option<usize>) -> Kernel,
    /// Whether the kernel needs to know its step (row offset): unrolls the step loop.
    pub needs_step: bool,
}

impl<'a> RowwisePlan<'a> {
    /// The plan of a row-wise spec: `shape` in tiles of `tile_rows` rows, one kernel for
    /// every step, no parameter buffer.
    pub fn new(
        common: SpecCommon<'a>,
        shape: RowsShape,
        tile_rows: usize,
        kernel_for: &'a dyn Fn(usize, Option<usize>) -> Kernel,
    ) -> Self {
        RowwisePlan {
            name: common.name,
            device: common.device,
            rows: shape.rows,
            cols: shape.cols,
            tile_rows,
            array: common.array,
            depth: common.depth,
            stack_bytes: common.stack_bytes,
            elem: common.dtype.elem(),
            params: None,
            kernel_for,
            needs_step: false,
        }
    }

    /// Adds the parameter buffer broadcast to every core.
    pub fn with_params(mut self, ty: BufferType) -> Self {
        self.params = Some(ty);
        self
    }

    /// Unrolls the steps when `yes`, so each kernel knows its first row.
    pub fn stepped(mut self, yes: bool) -> Self {
        self.needs_step = yes;
        self
    }

    /// Rows a column handles.
    pub fn rows_per_column(&self) -> usize {
        self.rows / self.array.columns as usize
    }

    /// Steps each core makes.
    pub fn steps(&self) -> usize {
        self.rows / (self.tile_rows * (self.array.columns * self.array.cores_per_column) as usize)
    }

    /// First global row of core `(col, r)` at `step`.
    pub fn first_row(&self, col: usize, r: usize, step: usize) -> usize {
        let per_step = self.tile_rows * self.array.cores_per_column as usize;
        col * self.rows_per_column() + step * per_step + r * self.tile_rows
    }
}

pub fn build(plan: &RowwisePlan) -> Result<Design, DesignError> {
    let cols_n = plan.array.columns as usize;
    let r_n = plan.array.cores_per_column as usize;
    let tr = plan.tile_rows;
    if tr == 0 || !plan.rows.is_multiple_of(tr * cols_n * r_n) {
        return Err(DesignError::Invalid {
            design: plan.name.into(),
            message: format!(
                "{} rows do not split into {tr}-row tiles over {cols_n} x {r_n} cores",
                plan.rows
            ),
        });
    }
    let steps = plan.steps();
    let step_ty = BufferType::new([r_n * tr, plan.cols], plan.elem);
    let core_ty = BufferType::new([tr, plan.cols], plan.elem);
    let mut tiles = Vec::new();
    let mut fifos = Vec::new();
    let mut links = Vec::new();
    let mut workers = Vec::new();
    let mut ops = Vec::new();

    for c in 0..plan.array.columns {
        tiles.extend([shim(c), memtile(c)]);
        let cores: Vec<_> = (0..plan.array.cores_per_column)
            .map(|i| core(c, i))
            .collect();
        tiles.extend(cores.iter().copied());
        let input = format!("in{c}");
        let output = format!("out{c}");
        fifos.push(ObjectFifo {
            name: input.clone(),
            producer: shim(c),
            consumers: vec![memtile(c)],
            depth: plan.depth,
            ty: step_ty.clone(),
        });
        fifos.push(ObjectFifo {
            name: output.clone(),
            producer: memtile(c),
            consumers: vec![shim(c)],
            depth: plan.depth,
            ty: step_ty.clone(),
        });
        let params = plan.params.as_ref().map(|ty| {
            let name = format!("p{c}");
            fifos.push(ObjectFifo {
                name: name.clone(),
                producer: shim(c),
                consumers: cores.clone(),
                depth: 1,
                ty: ty.clone(),
            });
            name
        });
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (r, &tile) in cores.iter().enumerate() {
            let x = format!("x{c}_{r}");
            let y = format!("y{c}_{r}");
            for (name, producer, consumer) in [(&x, memtile(c), tile), (&y, tile, memtile(c))] {
                fifos.push(ObjectFifo {
                    name: name.clone(),
                    producer,
                    consumers: vec![consumer],
                    depth: plan.depth,
                    ty: core_ty.clone(),
                });
            }
            let core_index = c as usize * r_n + r;
            let step_body = |kernel: Kernel| {
                let mut args = vec![arg("x"), arg("y")];
                if params.is_some() {
                    args.push(arg("p"));
                }
                vec![
                    acquire(&x, Port::Consume, "x"),
                    acquire(&y, Port::Produce, "y"),
                    CoreStmt::Kernel { kernel, args },
                    release(&x, Port::Consume),
                    release(&y, Port::Produce),
                ]
            };
            let mut program = Vec::new();
            if let Some(p) = &params {
                program.push(acquire(p, Port::Consume, "p"));
            }
            if plan.needs_step {
                for s in 0..steps {
                    program.extend(step_body((plan.kernel_for)(core_index, Some(s))));
                }
            } else {
                program.push(CoreStmt::Loop {
                    count: steps as u64,
                    body: step_body((plan.kernel_for)(core_index, None)),
                });
            }
            if let Some(p) = &params {
                program.push(release(p, Port::Consume));
            }
            workers.push(Worker {
                tile,
                program,
                stack_bytes: plan.stack_bytes,
            });
            xs.push(x);
            ys.push(y);
        }
        links.push(FifoLink {
            srcs: vec![input.clone()],
            dsts: xs,
            src_offsets: vec![],
            dst_offsets: (0..r_n).map(|r| r * core_ty.numel()).collect(),
        });
        links.push(FifoLink {
            srcs: ys,
            dsts: vec![output.clone()],
            src_offsets: (0..r_n).map(|r| r * core_ty.numel()).collect(),
            dst_offsets: vec![],
        });

        // Host side: the column's contiguous chunk of rows, in steps of `cores x tile_rows`.
        let chunk_offset = c as usize * plan.rows_per_column() * plan.cols;
        // A step's rows are contiguous: move them as one 2-D block that fits a BD's wraps.
        let step_len = r_n * tr * plan.cols;
        let (x, y) = crate::ops::contiguous_2d(step_len, plan.elem.bytes());
        let pattern = TensorAccessPattern {
            offset: chunk_offset,
            sizes: [1, steps, x, y],
            strides: [0, step_len, y, 1],
        };
        if let (Some(p), Some(ty)) = (&params, &plan.params) {
            let (x, y) = crate::ops::contiguous_2d(ty.numel(), ty.elem.bytes());
            ops.push(SeqOp::Fill {
                fifo: p.clone(),
                arg: 2,
                pattern: TensorAccessPattern {
                    offset: 0,
                    sizes: [1, 1, x, y],
                    strides: [0, 0, y, 1],
                },
            });
        }
        ops.push(SeqOp::Fill {
            fifo: input,
            arg: 0,
            pattern: pattern.clone(),
        });
        ops.push(SeqOp::Drain {
            fifo: output,
            arg: 1,
            pattern,
        });
    }
    crate::ops::settle(&mut ops);

    let mut args = vec![
        HostBuffer {
            name: "X".into(),
            ty: BufferType::new([plan.rows, plan.cols], plan.elem),
        },
        HostBuffer {
            name: "Y".into(),
            ty: BufferType::new([plan.rows, plan.cols], plan.elem),
        },
    ];
    if let Some(ty) = &plan.params {
        args.push(HostBuffer {
            name: "P".into(),
            ty: ty.clone(),
        });
    }
    Ok(Design {
        name: plan.name.into(),
        device: plan.device.into(),
        tiles,
        fifos,
        links,
        workers,
        sequence: RuntimeSequence { args, ops },
    })
}

fn arg(binding: &str) -> BufArg {
    BufArg {
        binding: binding.into(),
        index: 0,
    }
}

fn acquire(fifo: &str, port: Port, binding: &str) -> CoreStmt {
    CoreStmt::Acquire {
        fifo: fifo.into(),
        port,
        count: 1,
        binding: binding.into(),
    }
}

fn release(fifo: &str, port: Port) -> CoreStmt {
    CoreStmt::Release {
        fifo: fifo.into(),
        port,
        count: 1,
    }
}
