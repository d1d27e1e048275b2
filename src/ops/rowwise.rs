//! The design shared by the row-wise ops (GELU, softmax, layernorm): `rows x cols`
//! activations, rows dealt to columns in contiguous chunks, each chunk streamed through the
//! column's memtile in steps of `cores x tile_rows` rows, split so core `r` gets rows
//! `[r*tile_rows, (r+1)*tile_rows)` of each step, and joined back the same way.
//!
//! FIFOs per column `c`: `in{c}` (shim -> memtile) split into `x{c}_{r}`; `y{c}_{r}` joined into
//! `out{c}` (memtile -> shim); optionally `p{c}` (shim -> every core, broadcast): a parameter
//! buffer (layernorm's gamma and beta) acquired once and held for the whole run; optionally
//! a second `rows x cols` stream (the add op's residual), `rin{c}` split into `r{c}_{r}` like
//! `in{c}`, on the core's second input DMA channel. A column's memtile then sends
//! `2 x cores + 1` streams (MM2S): with 6 channels, at most 2 cores per column.

use crate::design::{
    BufferType, Design, DesignError, ElemType, Kernel, Port, Program, TensorAccessPattern,
    WorkerBody,
};
use crate::ops::registry::SpecCommon;
use crate::ops::{core, memtile};
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
    /// The output's element type and row length (the input's unless a kernel changes them,
    /// as quantisation does: int8 rows with their scale bytes).
    pub out: (ElemType, usize),
    /// Optional parameter buffer broadcast to every core (shape, element type).
    pub params: Option<BufferType>,
    /// The kernel for one step on core `core_index` (global, column-major) at step `step`;
    /// it receives `(x, y)` or `(x, y, params)`. `None` for `step` means one kernel for all
    /// steps (a plain loop); `Some` unrolls the steps (for kernels that need the absolute row).
    pub kernel_for: &'a dyn Fn(usize, Option<usize>) -> Kernel,
    /// Whether the kernel needs to know its step (row offset): unrolls the step loop.
    pub needs_step: bool,
    /// A second input `R` of the input's shape, streamed and split like `X`: the kernel
    /// receives `(x, r, y)`, and the host arguments are `X, R, Y`.
    pub second_input: bool,
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
            out: (common.dtype.elem(), shape.cols),
            params: None,
            kernel_for,
            needs_step: false,
            second_input: false,
        }
    }

    /// Adds the second streamed input `R` (see [`RowwisePlan::second_input`]).
    pub fn with_second_input(mut self) -> Self {
        self.second_input = true;
        self
    }

    /// Adds the parameter buffer broadcast to every core.
    pub fn with_params(mut self, ty: BufferType) -> Self {
        self.params = Some(ty);
        self
    }

    /// Sets the output's element type and row length.
    pub fn with_output(mut self, elem: ElemType, cols: usize) -> Self {
        self.out = (elem, cols);
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
    let (out_elem, out_cols) = plan.out;
    let step_ty = BufferType::new([r_n * tr, plan.cols], plan.elem);
    let core_ty = BufferType::new([tr, plan.cols], plan.elem);
    let out_step_ty = BufferType::new([r_n * tr, out_cols], out_elem);
    let out_core_ty = BufferType::new([tr, out_cols], out_elem);
    let mut p = Program::new(plan.name, plan.device);
    let x_host = p.arg("X", BufferType::new([plan.rows, plan.cols], plan.elem));
    let r_host = plan
        .second_input
        .then(|| p.arg("R", BufferType::new([plan.rows, plan.cols], plan.elem)));
    let y_host = p.arg("Y", BufferType::new([plan.rows, out_cols], out_elem));
    let p_host = plan.params.clone().map(|ty| p.arg("P", ty));
    let offsets: Vec<usize> = (0..r_n).map(|r| r * core_ty.numel()).collect();
    let out_offsets: Vec<usize> = (0..r_n).map(|r| r * out_core_ty.numel()).collect();

    for c in 0..plan.array.columns {
        let input = p.fifo(format!("in{c}"), step_ty.clone(), plan.depth);
        let second = r_host
            .as_ref()
            .map(|_| p.fifo(format!("rin{c}"), step_ty.clone(), plan.depth));
        let output = p.fifo(format!("out{c}"), out_step_ty.clone(), plan.depth);
        let params = plan
            .params
            .as_ref()
            .map(|ty| p.fifo(format!("p{c}"), ty.clone(), 1));
        let mut xs = Vec::new();
        let mut rs = Vec::new();
        let mut ys = Vec::new();
        for r in 0..r_n {
            let x = p.fifo(format!("x{c}_{r}"), core_ty.clone(), plan.depth);
            let res = second
                .as_ref()
                .map(|_| p.fifo(format!("r{c}_{r}"), core_ty.clone(), plan.depth));
            let y = p.fifo(format!("y{c}_{r}"), out_core_ty.clone(), plan.depth);
            let core_index = c as usize * r_n + r;
            p.worker(core(c, r as u32), |w| {
                w.stack_bytes(plan.stack_bytes);
                let held = params
                    .as_ref()
                    .map(|f| w.acquire_as("p", f, Port::Consume, 1));
                let step = |w: &mut WorkerBody, kernel: Kernel| {
                    let a = w.acquire_as("x", &x, Port::Consume, 1);
                    let s = res.as_ref().map(|f| w.acquire_as("r", f, Port::Consume, 1));
                    let b = w.acquire_as("y", &y, Port::Produce, 1);
                    let args = std::iter::once(a.first())
                        .chain(s.as_ref().map(|s| s.first()))
                        .chain([b.first()])
                        .chain(held.as_ref().map(|h| h.first()));
                    w.call(&kernel, args);
                    w.release(a);
                    if let Some(s) = s {
                        w.release(s);
                    }
                    w.release(b);
                };
                if plan.needs_step {
                    for s in 0..steps {
                        step(w, (plan.kernel_for)(core_index, Some(s)));
                    }
                } else {
                    let kernel = (plan.kernel_for)(core_index, None);
                    w.repeat(steps as u64, |w| step(w, kernel));
                }
                if let Some(h) = held {
                    w.release(h);
                }
            });
            xs.push(x);
            rs.extend(res);
            ys.push(y);
        }
        let via = memtile(c);
        p.split(&input, via, &xs, offsets.clone());
        if let Some(second) = &second {
            p.split(second, via, &rs, offsets.clone());
        }
        p.join(&ys, via, &output, out_offsets.clone());

        // Host side: the column's contiguous chunk of rows, in steps of `cores x tile_rows`.
        // A step's rows are contiguous: move them as one 2-D block that fits a BD's wraps.
        let rows_pattern = |cols: usize, elem: ElemType| {
            let step_len = r_n * tr * cols;
            let (x, y) = crate::ops::contiguous_2d(step_len, elem.bytes());
            TensorAccessPattern {
                offset: c as usize * plan.rows_per_column() * cols,
                sizes: [1, steps, x, y],
                strides: [0, step_len, y, 1],
            }
        };
        p.sequence(|rt| {
            if let (Some(f), Some(arg)) = (&params, &p_host) {
                let (x, y) = crate::ops::contiguous_2d(arg.ty().numel(), arg.ty().elem.bytes());
                let whole = TensorAccessPattern {
                    offset: 0,
                    sizes: [1, 1, x, y],
                    strides: [0, 0, y, 1],
                };
                rt.fill(f, arg, whole);
            }
            rt.fill(&input, &x_host, rows_pattern(plan.cols, plan.elem));
            if let (Some(f), Some(arg)) = (&second, &r_host) {
                rt.fill(f, arg, rows_pattern(plan.cols, plan.elem));
            }
            rt.drain(&output, &y_host, rows_pattern(out_cols, out_elem));
        });
    }
    p.sequence(|rt| rt.settle());
    p.build()
}
