//! Matrix multiply `C[M x N] = A[M x K] * B[K x N]`, int8 (int32 accumulate, requantised to
//! int8) or bf16 (f32 accumulate, bf16 out), over `columns x cores_per_column` cores.
//!
//! Partitioning: the cores of a column split M (core `r` owns row block `r` of each group of
//! `cores_per_column x tile.m` rows); the columns split N (column `c` owns the `tile.n`-wide
//! column blocks `c, c + columns, ...`).
//!
//! Data movement per column `c` (memtile `(c,1)`):
//! - `a_in{c}`: shim -> memtile, `cores x m x k` (the row group); linked as a split into
//!   `a{c}_{r}` (`m x k`, one per core, at offset `r*m*k`).
//! - `b_in{c}`: shim -> memtile, `k x n`; linked to `b{c}`, broadcast to every core.
//! - `c{c}_{r}`: core -> memtile, `m x n`; joined (offset `r*m*n`) into `c_out{c}` -> shim.
//! - `acc{c}_{r}`: a FIFO whose producer and consumer are the same core (no DMA): the
//!   int32/f32 accumulator the k-loop adds into, handed from the MAC phase to the
//!   requantisation phase through acquire/release.
//!
//! The runtime sequence, per row group `g` and column `c`, moves A rows
//! `[g*cores*m, (g+1)*cores*m)` once per (n block, k block), B's column blocks of column `c`
//! and C back, as 4-D access patterns (highest dimension first), then waits on every `c_out`.

use crate::design::{
    BufferType, Design, DesignError, ElemType, Fifo, HostArg, Kernel, KernelWork, Port, Program,
    Runtime, TensorAccessPattern, WorkerBody,
};
use crate::ops::kir::{Emit, KResult};
use crate::ops::{core, emit_kernel, memtile};
use crate::spec::Dtype;
use melior::ir::Value;

mod spec;
pub(crate) mod vmac;
pub(crate) use spec::check_split;
pub use spec::{MatmulShape, MatmulSpec, Requant};

/// int8 results are bit-exact: the kernels and the reference use the same integer formula.
pub const TOLERANCE_INT8: i32 = 0;

/// bf16: relative error bound of one bf16 rounding of the f32 sum (2^-8), plus the f32
/// accumulation error, taken as `K * 2^-24` of the sum of |a*b| (both on the f64 reference).
/// Check `|y - ref| <= TOLERANCE * |ref| + K * 2^-24 * sum|a||b|`.
pub const TOLERANCE: f64 = 1.0 / 256.0;

/// Requantisation exactly as the kernel does it, in integers:
/// `clamp((acc * scale + 2^(shift-1)) >> shift, -128, 127)` with an arithmetic shift
/// (floor), i.e. round half up.
pub fn requantize(acc: i32, rq: Requant) -> i8 {
    let v = (acc as i64 * rq.scale as i64 + (1i64 << (rq.shift - 1))) >> rq.shift;
    v.clamp(-128, 127) as i8
}

/// f64 reference of the int8 matmul: exact sums, then `floor(sum*scale/2^shift + 0.5)`
/// clamped to int8 (the same rounding the integer formula implements).
pub fn reference_int8(a: &[i8], b: &[i8], m: usize, k: usize, n: usize, rq: Requant) -> Vec<i8> {
    let mut out = vec![0i8; m * n];
    for (i, row) in out.chunks_mut(n.max(1)).enumerate().take(m) {
        reference_int8_row(a, b, i, (k, n), rq, row);
    }
    out
}

/// Row `i` (`n` values) of [`reference_int8`], so `aiec sim` can compute it in blocks.
pub fn reference_int8_row(
    a: &[i8],
    b: &[i8],
    i: usize,
    (k, n): (usize, usize),
    rq: Requant,
    out: &mut [i8],
) {
    for (j, y) in out.iter_mut().enumerate().take(n) {
        let mut s = 0f64;
        for l in 0..k {
            s += a[i * k + l] as f64 * b[l * n + j] as f64;
        }
        let v = (s * rq.scale as f64 / 2f64.powi(rq.shift as i32) + 0.5).floor();
        *y = v.clamp(-128.0, 127.0) as i8;
    }
}

/// f64 reference of the float matmul (inputs as f32, typically bf16-representable).
pub fn reference_f64(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0f64; m * n];
    for (i, row) in out.chunks_mut(n.max(1)).enumerate().take(m) {
        reference_f64_row(a, b, i, (k, n), row);
    }
    out
}

/// Row `i` (`n` values) of [`reference_f64`].
pub fn reference_f64_row(a: &[f32], b: &[f32], i: usize, (k, n): (usize, usize), out: &mut [f64]) {
    for (j, y) in out.iter_mut().enumerate().take(n) {
        let mut s = 0f64;
        for l in 0..k {
            s += a[i * k + l] as f64 * b[l * n + j] as f64;
        }
        *y = s;
    }
}

/// The per-element bound for the bf16 variant given the f64 reference row sums of |a*b|.
pub fn bf16_bound(reference: f64, abs_sum: f64, k: usize) -> f64 {
    TOLERANCE * reference.abs() + k as f64 * 2f64.powi(-24) * abs_sum + 1e-30
}

/// One core's block sizes and element type, as the MAC building blocks see them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tile {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub dtype: Dtype,
    pub requant: Option<Requant>,
    /// The AIE generation whose `mmul` block shapes the MAC kernel uses.
    pub arch: vmac::Arch,
}

impl Tile {
    /// The accumulator's element type: i32 for int8 operands, f32 otherwise.
    pub fn acc_elem(&self) -> ElemType {
        match self.dtype {
            Dtype::Int8 => ElemType::I32,
            _ => ElemType::F32,
        }
    }
}

/// The zero kernel's work: one vector store per 16 accumulator elements.
pub(crate) fn zero_work(t: &Tile) -> KernelWork {
    KernelWork::rows(t.m, t.n, 1.0)
}

/// `acc = 0` (vector stores where `tile.n` allows, see [`vmac`]).
pub(crate) fn emit_zero<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], t: Tile) -> KResult<()> {
    vmac::emit_zero(e, args[0], t)
}

/// `acc[i][j] += sum_l a[i][l] * b[l][j]` (int8 widened to i32, bf16 to f32), `l < t.k`, in
/// AIE-ML `mmul` blocks where the tile allows, scalar loops otherwise (see [`vmac`]). A and B
/// buffers may be wider / taller than the tile (columns or rows past `t.k` are not read),
/// which is how the linear op carries its epilogue vectors in them.
pub(crate) fn emit_mac<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], t: Tile) -> KResult<()> {
    vmac::emit_mac(e, [args[0], args[1], args[2]], t)
}

/// `c = requant(acc)` (int8) or `c = bf16(acc)`.
fn emit_store<'c>(e: &Emit<'c, '_>, args: &[Value<'c, '_>], t: Tile) -> KResult<()> {
    let (acc, c) = (args[0], args[1]);
    match (t.dtype, t.requant) {
        (Dtype::Int8, Some(rq)) => {
            let scale = e.int(64, rq.scale as i64)?;
            let half = e.int(64, 1i64 << (rq.shift - 1))?;
            let shift = e.int(64, rq.shift as i64)?;
            let lo = e.int(64, -128)?;
            let hi = e.int(64, 127)?;
            e.for_n(t.m, |e, i| {
                e.for_n(t.n, |e, j| {
                    let v = e.cast("arith.extsi", e.load(acc, &[i, j])?, e.int_type(64))?;
                    let v = e.addi(e.muli(v, scale)?, half)?;
                    let v = e.shrsi(v, shift)?;
                    let v = e.minsi(e.maxsi(v, lo)?, hi)?;
                    // Narrow through `index` rather than `arith.trunci`: mlir-aie's
                    // convert-vector-to-aievec (first pass of the aiecc pipeline) crashes on a
                    // scalar trunci (its LowerTruncOpPattern assumes a vector). The value is
                    // already clamped to [-128, 127], so both spellings give the same i8.
                    let v = e.cast("arith.index_cast", v, e.index_type())?;
                    let v = e.cast("arith.index_cast", v, e.int_type(8))?;
                    e.store(v, c, &[i, j])
                })
            })
        }
        (Dtype::Int8, None) => Err(DesignError::Kernel {
            kernel: "matmul_store".into(),
            message: "int8 matmul without requantisation parameters".into(),
        }),
        (dtype, _) => e.for_n(t.m, |e, i| {
            e.for_n(t.n, |e, j| {
                let v = e.load(acc, &[i, j])?;
                e.store_f32(v, c, &[i, j], dtype.elem())
            })
        }),
    }
}

pub fn build(spec: &MatmulSpec) -> Result<Design, DesignError> {
    let (mm, kk, nn) = (spec.shape.m, spec.shape.k, spec.shape.n);
    let t = Tile {
        m: spec.tile.m,
        k: spec.tile.k,
        n: spec.tile.n,
        dtype: spec.dtype,
        requant: spec.requant,
        arch: vmac::Arch::of_device(&spec.device),
    };
    let geo = MacGeometry::new(&spec.name, spec.shape, t, spec.array)?;
    let elem = spec.dtype.elem();

    let zero =
        emit_kernel("matmul_zero", 1, move |e, a| emit_zero(e, a, t)).with_work(zero_work(&t));
    let mac =
        emit_kernel("matmul_mac", 3, move |e, a| emit_mac(e, a, t)).with_work(vmac::mac_work(&t));
    // The store is scalar loops: int8 requantisation is ~9 scalar ops an element (load,
    // extend, multiply, add, shift, max, min, narrow, store), the float store 3 (load,
    // convert, store).
    let store_ops = match t.dtype {
        Dtype::Int8 => 9,
        _ => 3,
    };
    let store = emit_kernel("matmul_store", 2, move |e, a| emit_store(e, a, t))
        .with_work(KernelWork::scalar((t.m * t.n * store_ops) as u64));

    let mut p = Program::new(&spec.name, &spec.device);
    let hosts = MacHosts {
        a: p.arg("A", BufferType::new([mm, kk], elem)),
        b: p.arg("B", BufferType::new([kk, nn], elem)),
        c: p.arg("C", BufferType::new([mm, nn], elem)),
        a_row_stride: kk,
    };
    let types = MacTypes {
        a: BufferType::new([t.m, t.k], elem),
        b: BufferType::new([t.k, t.n], elem),
        c: BufferType::new([t.m, t.n], elem),
        acc: BufferType::new([t.m, t.n], t.acc_elem()),
    };
    let columns = mac_columns(&mut p, &geo, spec.depth, &types, |w, fifos| {
        w.stack_bytes(spec.stack_bytes);
        mac_program(
            w,
            fifos,
            [geo.groups, geo.n_blocks, geo.k_blocks],
            [&zero, &mac, &store],
        );
    });
    p.sequence(|rt| mac_sequence(rt, &columns, &hosts, &geo));
    p.build()
}

/// How a matmul-shaped op splits `M x K x N` over the array (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MacGeometry {
    pub tile: Tile,
    /// Columns (split N) and cores per column (split M).
    pub cols: usize,
    pub rows: usize,
    /// Row groups (`cores x tile.m` rows each), column blocks per column, k blocks.
    pub groups: usize,
    pub n_blocks: usize,
    pub k_blocks: usize,
    /// The problem's N (B's and C's row length).
    pub n: usize,
}

impl MacGeometry {
    pub fn new(
        design: &str,
        shape: MatmulShape,
        t: Tile,
        array: crate::spec::ArraySpec,
    ) -> Result<Self, DesignError> {
        let (mm, kk, nn) = (shape.m, shape.k, shape.n);
        let (rows, cols) = (array.cores_per_column, array.columns);
        let (r, cn) = (rows as usize, cols as usize);
        if t.m * r == 0
            || t.n * cn == 0
            || t.k == 0
            || mm % (t.m * r) != 0
            || nn % (t.n * cn) != 0
            || kk % t.k != 0
        {
            return Err(DesignError::Invalid {
                design: design.to_string(),
                message: format!(
                    "shape {mm}x{kk}x{nn} does not tile by {}x{}x{} over {rows} cores x {cols} columns",
                    t.m, t.k, t.n
                ),
            });
        }
        Ok(MacGeometry {
            tile: t,
            cols: cn,
            rows: r,
            groups: mm / (t.m * r),
            n_blocks: nn / (t.n * cn),
            k_blocks: kk / t.k,
            n: nn,
        })
    }
}

/// The object types of one core's streams: its A block (`tile.m` rows, at least `tile.k`
/// columns), B block (at least `tile.k` rows, `tile.n` columns), C block and accumulator.
pub(crate) struct MacTypes {
    pub a: BufferType,
    pub b: BufferType,
    pub c: BufferType,
    pub acc: BufferType,
}

/// The host arguments a matmul-shaped sequence moves, and the elements between two rows of
/// A in its host buffer (K for a plain matrix; more when rows carry extra data, less when
/// they overlap, as im2col rows do).
pub(crate) struct MacHosts {
    pub a: HostArg,
    pub b: HostArg,
    pub c: HostArg,
    pub a_row_stride: usize,
}

/// One column's shim-side FIFOs.
pub(crate) struct MacColumn {
    pub a_in: Fifo,
    pub b_in: Fifo,
    pub c_out: Fifo,
}

/// The FIFO network of a matmul-shaped op: per column, A row groups split over the cores
/// through the memtile, B broadcast to them, C joined back; `core` writes each core's
/// program from its FIFOs.
pub(crate) fn mac_columns(
    p: &mut Program,
    geo: &MacGeometry,
    depth: u32,
    types: &MacTypes,
    mut core_program: impl FnMut(&mut WorkerBody, MacFifos),
) -> Vec<MacColumn> {
    let r = geo.rows;
    let stacked = |ty: &BufferType| {
        let mut shape = ty.shape.clone();
        shape[0] *= r;
        BufferType::new(shape, ty.elem)
    };
    let mut columns = Vec::new();
    for c in 0..geo.cols as u32 {
        let a_in = p.fifo(format!("a_in{c}"), stacked(&types.a), depth);
        let b_in = p.fifo(format!("b_in{c}"), types.b.clone(), depth);
        let b = p.fifo(format!("b{c}"), types.b.clone(), depth);
        p.forward(&b_in, memtile(c), &b);
        let (mut a_parts, mut c_parts) = (Vec::new(), Vec::new());
        for i in 0..r as u32 {
            let a = p.fifo(format!("a{c}_{i}"), types.a.clone(), depth);
            let cc = p.fifo(format!("c{c}_{i}"), types.c.clone(), depth);
            let acc = p.fifo(format!("acc{c}_{i}"), types.acc.clone(), 1);
            p.worker(core(c, i), |w| {
                let fifos = MacFifos {
                    a: &a,
                    b: &b,
                    acc: &acc,
                    c: &cc,
                };
                core_program(w, fifos);
            });
            a_parts.push(a);
            c_parts.push(cc);
        }
        let a_offsets = (0..r).map(|i| i * types.a.numel()).collect();
        p.split(&a_in, memtile(c), &a_parts, a_offsets);
        let c_out = p.fifo(format!("c_out{c}"), stacked(&types.c), depth);
        let c_offsets = (0..r).map(|i| i * types.c.numel()).collect();
        p.join(&c_parts, memtile(c), &c_out, c_offsets);
        columns.push(MacColumn { a_in, b_in, c_out });
    }
    columns
}

/// The runtime sequence of a matmul-shaped op. Per row group: the C drain first (it
/// completes last), then A and B in chunks of at most SHIM_MAX_REPEAT n blocks (the
/// outermost BD dimension's repeat limit), waiting on each chunk's fills so shim BDs are
/// recycled, then wait on C. A's and B's objects may be wider / taller than the tile (their
/// types say how much); the k blocks still step by `tile.k`.
pub(crate) fn mac_sequence(
    rt: &mut Runtime,
    columns: &[MacColumn],
    hosts: &MacHosts,
    geo: &MacGeometry,
) {
    let (t, r, cn, nn) = (geo.tile, geo.rows, geo.cols, geo.n);
    let (a_cols, b_rows) = (columns[0].a_in.ty().shape[1], columns[0].b_in.ty().shape[0]);
    for g in 0..geo.groups {
        for (c, col) in columns.iter().enumerate() {
            let tap = TensorAccessPattern {
                offset: g * r * t.m * nn + c * t.n,
                sizes: [1, geo.n_blocks, r * t.m, t.n],
                strides: [0, t.n * cn, nn, 1],
            };
            rt.drain(&col.c_out, &hosts.c, tap);
        }
        let mut first = 0;
        while first < geo.n_blocks {
            let count = (geo.n_blocks - first).min(crate::ops::SHIM_MAX_REPEAT);
            for (c, col) in columns.iter().enumerate() {
                // A: the row group, repeated for each n block (stride 0), k blocks, rows, cols.
                let a_tap = TensorAccessPattern {
                    offset: g * r * t.m * hosts.a_row_stride,
                    sizes: [count, geo.k_blocks, r * t.m, a_cols],
                    strides: [0, t.k, hosts.a_row_stride, 1],
                };
                rt.fill(&col.a_in, &hosts.a, a_tap);
                // B: this column's n blocks (every `cols`-th), k blocks, rows, cols.
                let b_tap = TensorAccessPattern {
                    offset: c * t.n + first * t.n * cn,
                    sizes: [count, geo.k_blocks, b_rows, t.n],
                    strides: [t.n * cn, t.k * nn, nn, 1],
                };
                rt.fill(&col.b_in, &hosts.b, b_tap);
            }
            for col in columns {
                rt.wait(&col.a_in);
                rt.wait(&col.b_in);
            }
            first += count;
        }
        for col in columns {
            rt.wait(&col.c_out);
        }
    }
}

/// The FIFOs one matmul core works on.
pub(crate) struct MacFifos<'a> {
    pub a: &'a Fifo,
    pub b: &'a Fifo,
    pub acc: &'a Fifo,
    pub c: &'a Fifo,
}

/// A matmul core's program, a building block for matmul-shaped ops: for each of `groups`
/// row groups and `n_blocks` column blocks, zero the accumulator, add `k_blocks` products of
/// A and B blocks into it, then hand it (through the core-local `acc` FIFO) to the store
/// kernel that writes the C block.
pub(crate) fn mac_program(
    w: &mut WorkerBody,
    f: MacFifos,
    [groups, n_blocks, k_blocks]: [usize; 3],
    [zero, mac, store]: [&Kernel; 3],
) {
    w.repeat(groups as u64, |w| {
        w.repeat(n_blocks as u64, |w| {
            let acc = w.acquire_as("acc", f.acc, Port::Produce, 1);
            w.call(zero, [acc.first()]);
            w.repeat(k_blocks as u64, |w| {
                let a = w.acquire_as("a", f.a, Port::Consume, 1);
                let b = w.acquire_as("b", f.b, Port::Consume, 1);
                w.call(mac, [a.first(), b.first(), acc.first()]);
                w.release(a);
                w.release(b);
            });
            w.release(acc);
            let sum = w.acquire_as("sum", f.acc, Port::Consume, 1);
            let c = w.acquire_as("c", f.c, Port::Produce, 1);
            w.call(store, [sum.first(), c.first()]);
            w.release(sum);
            w.release(c);
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantisation_rounds_half_up_and_clamps() {
        let rq = Requant { shift: 4, scale: 1 };
        // 8/16 = 0.5 -> 1; 7/16 -> 0; -8/16 = -0.5 -> 0 (half up); -9/16 -> -1; 24/16=1.5 -> 2
        assert_eq!(requantize(8, rq), 1);
        assert_eq!(requantize(7, rq), 0);
        assert_eq!(requantize(-8, rq), 0);
        assert_eq!(requantize(-9, rq), -1);
        assert_eq!(requantize(24, rq), 2);
        assert_eq!(requantize(-24, rq), -1);
        assert_eq!(requantize(1 << 20, rq), 127);
        assert_eq!(requantize(-(1 << 20), rq), -128);
        let rq = Requant {
            shift: 10,
            scale: 3,
        };
        // 1000*3/1024 = 2.93 -> 3
        assert_eq!(requantize(1000, rq), 3);
    }

    #[test]
    fn int8_reference_matches_the_integer_formula() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<i8> = (0..m * k)
            .map(|i| (i as i32 * 37 % 255 - 127) as i8)
            .collect();
        let b: Vec<i8> = (0..k * n)
            .map(|i| (i as i32 * 91 % 255 - 127) as i8)
            .collect();
        let rq = Requant { shift: 7, scale: 5 };
        let got = reference_int8(&a, &b, m, k, n, rq);
        for i in 0..m {
            for j in 0..n {
                let acc: i32 = (0..k)
                    .map(|l| a[i * k + l] as i32 * b[l * n + j] as i32)
                    .sum();
                assert_eq!(got[i * n + j], requantize(acc, rq));
            }
        }
    }

    #[test]
    fn f64_reference_of_a_hand_computed_product() {
        // [1 2; 3 4] * [5 6; 7 8] = [19 22; 43 50]
        let out = reference_f64(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2);
        assert_eq!(out, vec![19., 22., 43., 50.]);
    }
}
