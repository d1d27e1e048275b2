//! int8 × int8 → int32 products with the [`crate::quant`] numerics: AVX-512 VNNI
//! (`vpdpbusd`), AVX2 (`vpmaddwd` on sign-extended bytes) and a scalar kernel, chosen at run
//! time. All three compute the same exact int32 sums, so their accumulators are identical.
//!
//! Weights are quantised and packed once at load in the order the kernels read them:
//! blocks of 16 output columns; inside a block, groups of 4 consecutive `k`; inside a group,
//! the 4 bytes of each of the 16 columns (`[block][k / 4][16][4]`, 64 bytes per group, one
//! zmm load). `k` is padded to a multiple of 4 and `n` to a multiple of 16 with zeros.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes: activations go in as `x + 128` and each
//! column's `128 · Σ_k w` (computed at load) is subtracted from its sum.

use rayon::prelude::*;

use crate::quant;

/// Output columns per block (one zmm of int32).
pub const BLOCK_COLS: usize = 16;
/// Rows per register tile.
const TILE_ROWS: usize = 8;
/// Products with fewer multiply-adds run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// A dense layer's int8 weights, packed.
pub struct PackedI8 {
    pub n: usize,
    pub k: usize,
    /// `k` rounded up to a multiple of 4.
    pub k4: usize,
    pub blocks: usize,
    data: Vec<i8>,
    /// Per output column: `max|w_col| / 127`.
    pub col_scale: Vec<f32>,
    /// Per (padded) output column: `128 · Σ_k w_q`.
    comp: Vec<i32>,
    pub bias: Option<Vec<f32>>,
    /// `col_scale` and the bias (zeros without one) padded to whole blocks, for the fused
    /// epilogue's vector loads.
    col_scale_padded: Vec<f32>,
    bias_padded: Vec<f32>,
}

impl PackedI8 {
    /// Quantises `w` (`[n, k]`, one row per output channel) per channel and packs it.
    pub fn new(w: &[f32], bias: Option<Vec<f32>>, n: usize, k: usize) -> Self {
        let (q, col_scale) = quant::quantize_rows(w, k);
        let k4 = k.div_ceil(4) * 4;
        let blocks = n.div_ceil(BLOCK_COLS);
        let mut data = vec![0i8; blocks * k4 * BLOCK_COLS];
        let mut comp = vec![0i32; blocks * BLOCK_COLS];
        for j in 0..n {
            let (blk, lane) = (j / BLOCK_COLS, j % BLOCK_COLS);
            let row = &q[j * k..(j + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                data[Self::offset(k4, blk, kk, lane)] = v;
            }
            comp[j] = 128 * row.iter().map(|&v| v as i32).sum::<i32>();
        }
        let padded = |v: Option<&[f32]>| {
            let mut out = vec![0.0f32; blocks * BLOCK_COLS];
            if let Some(v) = v {
                out[..n].copy_from_slice(v);
            }
            out
        };
        let col_scale_padded = padded(Some(&col_scale));
        let bias_padded = padded(bias.as_deref());
        Self {
            n,
            k,
            k4,
            blocks,
            data,
            col_scale,
            comp,
            bias,
            col_scale_padded,
            bias_padded,
        }
    }

    /// Where weight (column `blk·16 + lane`, input `kk`) is stored.
    #[inline(always)]
    fn offset(k4: usize, blk: usize, kk: usize, lane: usize) -> usize {
        blk * k4 * BLOCK_COLS + (kk / 4) * 64 + lane * 4 + kk % 4
    }

    /// Padded output width.
    pub fn n_padded(&self) -> usize {
        self.blocks * BLOCK_COLS
    }
}

/// The int32 kernel variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Vnni,
    Avx2,
    Scalar,
}

impl Kernel {
    /// The variants this CPU can run, fastest first.
    pub fn available() -> Vec<Kernel> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Kernel::Vnni);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Kernel::Avx2);
            }
        }
        v.push(Kernel::Scalar);
        v
    }

    pub fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Kernel::available()[0])
    }
}

/// Quantises each `k`-wide row of `x` into `[rows, k4]` bytes (zero padded); returns them
/// and the row scales.
pub fn quantize_activations(x: &[f32], rows: usize, k: usize, k4: usize) -> (Vec<i8>, Vec<f32>) {
    quantize_rows_into(x, rows, k, k4, |_| {})
}

/// As [`quantize_activations`], each byte then offset by 128 (`vpdpbusd`'s unsigned operand).
fn quantize_activations_unsigned(
    x: &[f32],
    rows: usize,
    k: usize,
    k4: usize,
) -> (Vec<u8>, Vec<f32>) {
    let (q, scales) = quantize_rows_into(x, rows, k, k4, |row| {
        row.iter_mut().for_each(|v| *v = ((*v as u8) ^ 0x80) as i8)
    });
    // The same bytes, read as unsigned.
    let q = q.into_iter().map(|v| v as u8).collect();
    (q, scales)
}

/// Quantises the rows of `x` into `[rows, k4]` bytes, `finish` applied to each row's bytes.
fn quantize_rows_into(
    x: &[f32],
    rows: usize,
    k: usize,
    k4: usize,
    finish: impl Fn(&mut [i8]) + Sync,
) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; rows * k4];
    let mut scales = vec![0.0f32; rows];
    let work = |((xr, qr), s): ((&[f32], &mut [i8]), &mut f32)| {
        *s = quant::quantize_row(xr, qr);
        finish(qr);
    };
    if rows >= 64 {
        x.par_chunks_exact(k)
            .zip(q.par_chunks_exact_mut(k4))
            .zip(scales.par_iter_mut())
            .for_each(work);
    } else {
        x.chunks_exact(k)
            .zip(q.chunks_exact_mut(k4))
            .zip(scales.iter_mut())
            .for_each(work);
    }
    (q, scales)
}

/// Exact int32 sums `acc[blk][i][lane] = Σ_k xq[i, k] · w[blk·16 + lane, k]` for the `rows`
/// rows of `xq` (`[rows, k4]`), block-major: `acc` is `[blocks, rows, 16]`.
pub fn accumulate(kernel: Kernel, xq: &[i8], rows: usize, p: &PackedI8, acc: &mut [i32]) {
    assert!(xq.len() >= rows * p.k4 && acc.len() >= p.blocks * rows * BLOCK_COLS);
    if rows == 0 {
        return;
    }
    // Unsigned activations for vpdpbusd, made once per call.
    let xu: Vec<u8> = match kernel {
        Kernel::Vnni => xq[..rows * p.k4]
            .iter()
            .map(|&v| (v as u8) ^ 0x80)
            .collect(),
        _ => Vec::new(),
    };
    let per_block = rows * BLOCK_COLS;
    let blocks_per_task = blocks_per_task(p, rows);
    let run = |(task, out): (usize, &mut [i32])| {
        let t = Blocks {
            p,
            rows,
            blk0: task * blocks_per_task,
            nblk: out.len() / per_block,
        };
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Vnni` is only offered when the CPU has the features.
            Kernel::Vnni => unsafe {
                let len = out.len();
                vnni::blocks(&xu, t, vnni::Sink::Sums(out.as_mut_ptr()), len)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            Kernel::Avx2 => unsafe { avx2::blocks(xq, t, out) },
            _ => scalar_blocks(xq, t, out),
        }
    };
    let acc = &mut acc[..p.blocks * per_block];
    if blocks_per_task >= p.blocks {
        run((0, acc));
    } else {
        acc.par_chunks_mut(blocks_per_task * per_block)
            .enumerate()
            .for_each(run);
    }
}

/// Column blocks per parallel task: all of them (one task) for small products, else about
/// eight tasks per thread.
fn blocks_per_task(p: &PackedI8, rows: usize) -> usize {
    let macs = rows * p.n * p.k;
    let threads = rayon::current_num_threads();
    if macs >= PARALLEL_MIN_MACS && threads > 1 {
        (p.blocks / (threads * 8)).clamp(1, 64)
    } else {
        p.blocks
    }
}

/// One task of [`accumulate`]: blocks `blk0 .. blk0 + nblk` of `p` against all `rows` rows
/// of the activations (`[rows, k4]`), into `out` `[nblk, rows, 16]`.
#[derive(Clone, Copy)]
struct Blocks<'a> {
    p: &'a PackedI8,
    rows: usize,
    blk0: usize,
    nblk: usize,
}

impl<'a> Blocks<'a> {
    /// `(p, rows, blk0, nblk)` after checking that activations of `x_len` bytes and an
    /// output of `out_len` sums hold the task (the SIMD kernels index them unchecked).
    fn checked(self, x_len: usize, out_len: usize) -> (&'a PackedI8, usize, usize, usize) {
        let Blocks { p, rows, nblk, .. } = self;
        assert!(x_len >= rows * p.k4 && out_len >= nblk * rows * BLOCK_COLS);
        (p, rows, self.blk0, nblk)
    }
}

fn scalar_blocks(xq: &[i8], t: Blocks, out: &mut [i32]) {
    let (p, rows, blk0, nblk) = t.checked(xq.len(), out.len());
    let groups = p.k4 / 4;
    for b in 0..nblk {
        let w = &p.data[(blk0 + b) * p.k4 * BLOCK_COLS..][..p.k4 * BLOCK_COLS];
        for i in 0..rows {
            let x = &xq[i * p.k4..(i + 1) * p.k4];
            let o = &mut out[(b * rows + i) * BLOCK_COLS..][..BLOCK_COLS];
            for (lane, acc) in o.iter_mut().enumerate() {
                *acc = (0..groups)
                    .map(|g| {
                        (0..4)
                            .map(|t| x[g * 4 + t] as i32 * w[g * 64 + lane * 4 + t] as i32)
                            .sum::<i32>()
                    })
                    .sum();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Blocks, PackedI8, BLOCK_COLS, TILE_ROWS};
    use std::arch::x86_64::*;

    /// Where a finished register tile goes.
    #[derive(Clone, Copy)]
    pub enum Sink {
        /// The exact int32 sums, `[nblk, rows, 16]` (the task's part of [`super::accumulate`]).
        Sums(*mut i32),
        /// Dequantised straight into `y` (`[rows, n]`, all rows and columns of the product)
        /// with the per-row activation scales: the layer's output with no int32 buffer.
        Dequantised { y: *mut f32, row_scale: *const f32 },
    }

    /// `tile::<R, B>` for a run-time row count `R` (1 to [`TILE_ROWS`]): the accumulators of
    /// a compile-time tile stay in registers.
    macro_rules! tile_of_rows {
        ($r:expr, $b:literal, $args:expr, $o:expr) => {
            match $r {
                8 => tile::<8, $b>($args, $o),
                7 => tile::<7, $b>($args, $o),
                6 => tile::<6, $b>($args, $o),
                5 => tile::<5, $b>($args, $o),
                4 => tile::<4, $b>($args, $o),
                3 => tile::<3, $b>($args, $o),
                2 => tile::<2, $b>($args, $o),
                _ => tile::<1, $b>($args, $o),
            }
        };
    }

    /// Blocks `blk0 .. blk0 + nblk` for all rows, two blocks at a time where possible.
    /// `out_len` is the length of what `sink` points to, checked against the task.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn blocks(xu: &[u8], t: Blocks, sink: Sink, out_len: usize) {
        let (p, rows, blk0, nblk) = match sink {
            Sink::Sums(_) => t.checked(xu.len(), out_len),
            Sink::Dequantised { .. } => {
                assert!(out_len >= t.rows * t.p.n && (t.blk0 + t.nblk) <= t.p.blocks);
                t.checked(xu.len(), t.nblk * t.rows * BLOCK_COLS)
            }
        };
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let r = TILE_ROWS.min(rows - r0);
            let mut b = 0;
            while b < nblk {
                let pair = nblk - b >= 2;
                let args = (xu.as_ptr().add(r0 * p.k4), rows, p, blk0 + b);
                let o = match sink {
                    Sink::Sums(out) => Sink::Sums(out.add((b * rows + r0) * BLOCK_COLS)),
                    Sink::Dequantised { y, row_scale } => Sink::Dequantised {
                        y: y.add(r0 * p.n),
                        row_scale: row_scale.add(r0),
                    },
                };
                // 8 rows × 2 blocks is 16 accumulators + 3 operands of the 32 zmm registers.
                if pair {
                    tile_of_rows!(r, 2, args, o)
                } else {
                    tile_of_rows!(r, 1, args, o)
                }
                b += if pair { 2 } else { 1 };
            }
        }
    }

    /// `R` rows × `B` blocks over the whole `k`, accumulators in registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn tile<const R: usize, const B: usize>(
        (x, rows, p, blk): (*const u8, usize, &PackedI8, usize),
        sink: Sink,
    ) {
        let block_bytes = p.k4 * BLOCK_COLS;
        let w = p.data.as_ptr().add(blk * block_bytes);
        let mut acc = [[_mm512_setzero_si512(); B]; R];
        for g in 0..p.k4 / 4 {
            let mut wv = [_mm512_setzero_si512(); B];
            for (bi, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(w.add(bi * block_bytes + g * 64) as *const _);
            }
            for (ri, a) in acc.iter_mut().enumerate() {
                let xb =
                    _mm512_set1_epi32((x.add(ri * p.k4 + g * 4) as *const i32).read_unaligned());
                for bi in 0..B {
                    a[bi] = _mm512_dpbusd_epi32(a[bi], xb, wv[bi]);
                }
            }
        }
        for bi in 0..B {
            let col = (blk + bi) * BLOCK_COLS;
            let comp = _mm512_loadu_si512(p.comp.as_ptr().add(col) as *const _);
            match sink {
                Sink::Sums(out) => {
                    for (ri, a) in acc.iter().enumerate() {
                        let dst = out.add((bi * rows + ri) * BLOCK_COLS);
                        _mm512_storeu_si512(dst as *mut _, _mm512_sub_epi32(a[bi], comp));
                    }
                }
                Sink::Dequantised { y, row_scale } => {
                    // quant::dequantize's order, lane by lane: (acc as f32) · (row · col) + bias,
                    // a multiply then an add (no fused multiply-add), so the bits match.
                    let col_scale = _mm512_loadu_ps(p.col_scale_padded.as_ptr().add(col));
                    let bias = _mm512_loadu_ps(p.bias_padded.as_ptr().add(col));
                    let valid = p.n.saturating_sub(col).min(BLOCK_COLS);
                    let mask: __mmask16 = ((1u32 << valid) - 1) as __mmask16;
                    for (ri, a) in acc.iter().enumerate() {
                        let sums = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[bi], comp));
                        let scale = _mm512_mul_ps(_mm512_set1_ps(*row_scale.add(ri)), col_scale);
                        let v = _mm512_add_ps(_mm512_mul_ps(sums, scale), bias);
                        _mm512_mask_storeu_ps(y.add(ri * p.n + col), mask, v);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Blocks, BLOCK_COLS};
    use std::arch::x86_64::*;

    /// One row and one block at a time: each 16-byte quarter of a group (4 columns × 4 k)
    /// is sign-extended to 16 bits and multiplied pairwise with the row's 4 values, leaving
    /// two partial sums per column that are added at the end.
    #[target_feature(enable = "avx2")]
    pub unsafe fn blocks(xq: &[i8], t: Blocks, out: &mut [i32]) {
        let (p, rows, blk0, nblk) = t.checked(xq.len(), out.len());
        let block_bytes = p.k4 * BLOCK_COLS;
        for b in 0..nblk {
            let w = p.data.as_ptr().add((blk0 + b) * block_bytes);
            for i in 0..rows {
                let x = xq.as_ptr().add(i * p.k4);
                let mut acc = [_mm256_setzero_si256(); 4];
                for g in 0..p.k4 / 4 {
                    let x4 = (x.add(g * 4) as *const i32).read_unaligned();
                    let xv = _mm256_cvtepi8_epi16(_mm_set1_epi32(x4));
                    for (quarter, a) in acc.iter_mut().enumerate() {
                        let wq = _mm_loadu_si128(w.add(g * 64 + quarter * 16) as *const _);
                        let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(wq), xv);
                        *a = _mm256_add_epi32(*a, prod);
                    }
                }
                let o = &mut out[(b * rows + i) * BLOCK_COLS..][..BLOCK_COLS];
                for (quarter, a) in acc.iter().enumerate() {
                    let mut lanes = [0i32; 8];
                    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, *a);
                    for c in 0..4 {
                        o[quarter * 4 + c] = lanes[2 * c] + lanes[2 * c + 1];
                    }
                }
            }
        }
    }
}

/// `y[rows, n] = dequantize(xq · wqᵀ) + b` with dynamically quantised rows of `x`.
pub fn forward(p: &PackedI8, x: &[f32], rows: usize, y: &mut [f32]) {
    forward_with(Kernel::best(), p, x, rows, y)
}

/// [`forward`] on a given kernel. VNNI dequantises each register tile as it finishes; the
/// others go through the int32 sums. All give the same bits.
pub fn forward_with(kernel: Kernel, p: &PackedI8, x: &[f32], rows: usize, y: &mut [f32]) {
    assert!(x.len() >= rows * p.k && y.len() >= rows * p.n);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Vnni {
        let (xu, row_scale) = quantize_activations_unsigned(x, rows, p.k, p.k4);
        let per_task = blocks_per_task(p, rows);
        /// The output, shared by tasks that write disjoint column blocks of every row.
        #[derive(Clone, Copy)]
        struct Out(*mut f32, usize);
        // SAFETY: each task writes only its own column blocks (see below).
        unsafe impl Send for Out {}
        unsafe impl Sync for Out {}
        impl Out {
            // A method, so closures capture the whole (Sync) wrapper, not its pointer field.
            fn parts(self) -> (*mut f32, usize) {
                (self.0, self.1)
            }
        }
        let out = Out(y.as_mut_ptr(), y.len());
        let run = |task: usize| {
            let blk0 = task * per_task;
            let t = Blocks {
                p,
                rows,
                blk0,
                nblk: per_task.min(p.blocks - blk0),
            };
            let (y, len) = out.parts();
            let sink = vnni::Sink::Dequantised {
                y,
                row_scale: row_scale.as_ptr(),
            };
            // SAFETY: `Kernel::Vnni` is only offered when the CPU has the features; the
            // task's blocks are its own, so no two tasks write the same element of `y`.
            unsafe { vnni::blocks(&xu, t, sink, len) }
        };
        let tasks = p.blocks.div_ceil(per_task);
        if tasks == 1 {
            run(0);
        } else {
            (0..tasks).into_par_iter().for_each(run);
        }
        return;
    }
    let (xq, row_scale) = quantize_activations(x, rows, p.k, p.k4);
    let mut acc = vec![0i32; p.blocks * rows * BLOCK_COLS];
    accumulate(kernel, &xq, rows, p, &mut acc);
    let n = p.n;
    let epilogue = |(i, yr): (usize, &mut [f32])| {
        for (j, v) in yr.iter_mut().enumerate() {
            let a = acc[((j / BLOCK_COLS) * rows + i) * BLOCK_COLS + j % BLOCK_COLS];
            let b = p.bias.as_ref().map_or(0.0, |b| b[j]);
            *v = quant::dequantize(a, row_scale[i], p.col_scale[j], b);
        }
    };
    let y = &mut y[..rows * n];
    if rows >= 64 {
        y.par_chunks_exact_mut(n).enumerate().for_each(epilogue);
    } else {
        y.chunks_exact_mut(n).enumerate().for_each(epilogue);
    }
}
