//! Whisper's log-mel front end on the array: frames x periodic Hann window x DFT (a matmul with
//! cos/sin tables) -> power -> Slaney mel filter bank -> log10(max(p, 1e-10)).
//!
//! Host side, before: the 16 kHz samples get 160 zero samples appended and 200 reflected
//! samples on each side (the centred STFT); the design reads frame `t` as samples
//! `[t*hop, t*hop + n_fft)` of that padded signal straight from host memory (the shim DMA's
//! access pattern overlaps consecutive frames, stride `hop`), and writes `[n_mels, frames]`,
//! Whisper's layout, through the memtile join's access pattern.
//!
//! `layout = "frame_major"` writes `[frames, n_mels]` instead, the layout of
//! [`aiec_runtime::backend::Backend::log_mel`]'s output (`--device sim` uses it). The
//! transpose then lives in the core's store index (`y[f][m]` instead of `y[m][f]`), which
//! costs nothing, and the join and drain become contiguous runs of whole frames. It cannot
//! live in a shim pattern: a BD's innermost stride must be 1 (aie-opt checks it), so a DMA
//! never transposes.
//!
//! Host side, after: the clamp at (global max - 8) needs the max over the whole file, which no
//! core sees, so [`finish_on_host`] applies `max(x, gmax - 8)` then `(x + 4) / 4` in one pass
//! over the output. This is the honest split: the array does all the O(n_fft x bins) work,
//! the host one max and one clamp per value.
//!
//! Tables (f32 `memref.global` constants, one copy per core, ~37 KiB for 80 mels): the window,
//! `cos(2 pi k / n_fft)` and `sin(...)` for `k < n_fft`, the per-bin lane rotations that let
//! the DFT run 16 samples per vector step with contiguous loads only (see [`lane_rotations`]),
//! and the filter bank stored as a band: each mel filter's first nonzero bin and `band`
//! weights from there, `band` a whole number of vector chunks (the triangles are narrow;
//! zeros outside the band are exact).

use crate::design::{
    BufferType, Design, DesignError, ElemType, KernelCtx, KernelWork, Port, Program,
    TensorAccessPattern,
};
use crate::ops::kir::{add_f32_table, Emit, KResult, Lanes, F32_LANES};
use crate::ops::{core, expect_args, kernel, memtile};
use melior::ir::{Block, Value};

mod spec;
pub use spec::{MelLayout, MelSpec};

/// The front end the tables are built for (the Whisper constants).
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const SAMPLE_RATE: u32 = 16_000;

/// After [`finish_on_host`], in (log10(p) + 4) / 4 units: f32 DFT sums over 400 samples
/// against the f64 reference; differences only show in bins far below the clamp floor.
/// Check `|y - ref| <= TOLERANCE`.
pub const TOLERANCE: f64 = 2e-3;

/// The filter bank as a band: `(first bin of each filter, band width, weights [n_mels][band])`.
pub fn banded_filter_bank(n_mels: usize) -> (Vec<usize>, usize, Vec<f32>) {
    banded_filter_bank_for(n_mels, |band| band)
}

/// [`banded_filter_bank`] with the band widened by `widen` (the kernel's whole chunks).
fn banded_filter_bank_for(
    n_mels: usize,
    widen: impl Fn(usize) -> usize,
) -> (Vec<usize>, usize, Vec<f32>) {
    let bins = N_FFT / 2 + 1;
    let dense = aiec_runtime::mel::mel_filter_bank(n_mels);
    let mut spans = Vec::with_capacity(n_mels);
    for m in 0..n_mels {
        let row = &dense[m * bins..(m + 1) * bins];
        let first = row.iter().position(|w| *w != 0.0).unwrap_or(0);
        let last = row.iter().rposition(|w| *w != 0.0).unwrap_or(0);
        spans.push((first, last.max(first)));
    }
    let band = widen(spans.iter().map(|(f, l)| l - f + 1).max().unwrap_or(1));
    let mut starts = Vec::with_capacity(n_mels);
    let mut weights = vec![0f32; n_mels * band];
    for (m, (first, _)) in spans.iter().enumerate() {
        // Keep the band inside the spectrum; the extra weights read are zeros.
        let start = (*first).min(bins - band);
        starts.push(start);
        for w in 0..band {
            weights[m * band + w] = dense[m * bins + start + w] as f32;
        }
    }
    (starts, band, weights)
}

/// Unclamped log10 mel in f64 of `frames` frames of an already padded signal, `[n_mels, frames]`,
/// by the textbook DFT (independent of the kernel's table indexing and of any FFT).
pub fn reference(padded: &[f64], frames: usize, n_mels: usize) -> Vec<f64> {
    let bins = N_FFT / 2 + 1;
    let bank = aiec_runtime::mel::mel_filter_bank(n_mels);
    let mut out = vec![0f64; n_mels * frames];
    let tau = 2.0 * std::f64::consts::PI;
    for t in 0..frames {
        let frame: Vec<f64> = (0..N_FFT)
            .map(|n| padded[t * HOP + n] * (0.5 - 0.5 * (tau * n as f64 / N_FFT as f64).cos()))
            .collect();
        let power: Vec<f64> = (0..bins)
            .map(|b| {
                let (mut re, mut im) = (0.0, 0.0);
                for (n, x) in frame.iter().enumerate() {
                    let a = tau * (b * n) as f64 / N_FFT as f64;
                    re += x * a.cos();
                    im -= x * a.sin();
                }
                re * re + im * im
            })
            .collect();
        for m in 0..n_mels {
            let p: f64 = (0..bins).map(|b| bank[m * bins + b] * power[b]).sum();
            out[m * frames + t] = p.max(1e-10).log10();
        }
    }
    out
}

/// Whisper's final step over the whole file: clamp below at (max - 8), then (x + 4) / 4.
pub fn finish_on_host(log_mel: &mut [f32]) {
    let max = log_mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let floor = max - 8.0;
    for v in log_mel.iter_mut() {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
}

/// The padded signal the design reads: 160 zeros appended, 200 samples reflected each side.
/// Returns it with the number of frames Whisper keeps (`(len + 160) / 160`).
pub fn pad_for_stft(samples: &[f32]) -> (Vec<f32>, usize) {
    let mut x: Vec<f32> = samples.to_vec();
    x.extend(std::iter::repeat_n(0.0, HOP));
    let half = N_FFT / 2;
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * half);
    // numpy "reflect": x[half], ..., x[1] | x | x[n-2], ..., x[n-1-half]
    out.extend((1..=half).rev().map(|i| x[i.min(n - 1)]));
    out.extend_from_slice(&x);
    out.extend((0..half).map(|i| x[n.saturating_sub(2 + i)]));
    let frames = (samples.len() + HOP) / HOP;
    (out, frames)
}

/// Samples per vector chunk: 16 f32 lanes, one AIE-ML `v16accfloat` register (400 = 25 x 16).
const LANES: usize = F32_LANES;

/// The per-bin twiddle rotations: row `b` holds `cos(2 pi (b l mod N) / N)` (or `sin`) for
/// the lanes `l < 16`.
///
/// Bin `b` over the sample chunk `n0..n0+16` needs `exp(-i 2 pi b (n0 + l) / N)` per lane.
/// Read from the flat `N`-entry table that is a gather at index `b (n0 + l) mod N`, which
/// the AIE-ML vector unit cannot do. Split instead by angle addition:
/// `exp(i b (n0 + l) t) = exp(i b n0 t) * exp(i b l t)`: the first factor is one entry of the
/// flat table splat over the lanes, the second this table's row `b`, loaded once per bin.
/// Every load is then a plain `vector.load`, for two 201 x 16 tables (26 KiB together; the
/// dense `[N][bins]` DFT matrix, 630 KiB, would not fit a core's 64 KiB).
fn lane_rotations(f: fn(f64) -> f64) -> Vec<f32> {
    let tau = 2.0 * std::f64::consts::PI;
    (0..N_FFT / 2 + 1)
        .flat_map(|b| {
            (0..LANES).map(move |l| f(tau * ((b * l) % N_FFT) as f64 / N_FFT as f64) as f32)
        })
        .collect()
}

/// The filter band rounded up to whole chunks, so the filter bank is a vector dot product.
fn vector_band(band: usize) -> usize {
    band.div_ceil(LANES) * LANES
}

/// Bytes of every table one core holds.
fn table_bytes(n_mels: usize) -> usize {
    let bins = N_FFT / 2 + 1;
    let (_, band, _) = banded_filter_bank_for(n_mels, vector_band);
    (3 * N_FFT + 2 * bins * LANES + n_mels + n_mels * band) * 4
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    ft: usize,
    n_mels: usize,
    frame_major: bool,
}

/// One call: `ft` frames of `N_FFT` samples in, `ft` frames of `n_mels` log10 powers out.
/// Per frame and bin, the real and imaginary DFT sums run over the samples 16 at a time in
/// f32 vector accumulators (one `vector.reduction` each at the end); each filter's band is
/// then a vector dot product over the power spectrum.
fn emit<'c>(
    ctx: &KernelCtx<'c, '_>,
    block: &Block<'c>,
    args: &[Value<'c, '_>],
    s: Shape,
) -> KResult<()> {
    expect_args("mel", args, 3)?;
    let bins = N_FFT / 2 + 1;
    let tau = 2.0 * std::f64::consts::PI;
    let window: Vec<f32> = (0..N_FFT)
        .map(|n| (0.5 - 0.5 * (tau * n as f64 / N_FFT as f64).cos()) as f32)
        .collect();
    let cos: Vec<f32> = (0..N_FFT)
        .map(|k| (tau * k as f64 / N_FFT as f64).cos() as f32)
        .collect();
    let sin: Vec<f32> = (0..N_FFT)
        .map(|k| (tau * k as f64 / N_FFT as f64).sin() as f32)
        .collect();
    let (starts, band, weights) = banded_filter_bank_for(s.n_mels, vector_band);
    let starts_f: Vec<f32> = starts.iter().map(|v| *v as f32).collect();
    let names = [
        format!("mel_window_{N_FFT}"),
        format!("mel_cos_{N_FFT}"),
        format!("mel_sin_{N_FFT}"),
        format!("mel_lane_cos_{bins}x{LANES}"),
        format!("mel_lane_sin_{bins}x{LANES}"),
        format!("mel_start_{}", s.n_mels),
        format!("mel_weights_{}x{band}", s.n_mels),
    ];
    let t_win = add_f32_table(ctx, &names[0], &[N_FFT], &window)?;
    let t_cos = add_f32_table(ctx, &names[1], &[N_FFT], &cos)?;
    let t_sin = add_f32_table(ctx, &names[2], &[N_FFT], &sin)?;
    let t_lcos = add_f32_table(ctx, &names[3], &[bins, LANES], &lane_rotations(f64::cos))?;
    let t_lsin = add_f32_table(ctx, &names[4], &[bins, LANES], &lane_rotations(f64::sin))?;
    let t_start = add_f32_table(ctx, &names[5], &[s.n_mels], &starts_f)?;
    let t_w = add_f32_table(ctx, &names[6], &[s.n_mels, band], &weights)?;

    let e = Emit::new(ctx, block, "mel");
    let (x, y, pw) = (args[0], args[1], args[2]);
    let win = e.get_global(&names[0], t_win)?;
    let cs = e.get_global(&names[1], t_cos)?;
    let sn = e.get_global(&names[2], t_sin)?;
    let lcs = e.get_global(&names[3], t_lcos)?;
    let lsn = e.get_global(&names[4], t_lsin)?;
    let st = e.get_global(&names[5], t_start)?;
    let wt = e.get_global(&names[6], t_w)?;
    let lanes = Lanes(LANES);
    let zeros = lanes.f32(&e, 0.0)?;
    let floor = e.f32(1e-10)?;
    let n_fft = e.index(N_FFT)?;
    e.for_n(s.ft, |e, f| {
        e.for_n(bins, |e, b| {
            let lc = e.vload(lcs, &[b, e.index(0)?], LANES)?;
            let ls = e.vload(lsn, &[b, e.index(0)?], LANES)?;
            // X[b] = sum_n x[n] w[n] exp(-i 2 pi b n / N), 16 samples per step; the chunk's
            // factor exp(i 2 pi b n0 / N) sits at index b n0 mod N of the flat tables.
            // (The sign of the imaginary part does not matter for the power.)
            let dft = |imaginary: bool| -> KResult<Value<'c, '_>> {
                let sums = lanes.fold_chunks(e, N_FFT, zeros, |e, n0, acc| {
                    let xw = e.mulf(e.vload(x, &[f, n0], LANES)?, e.vload(win, &[n0], LANES)?)?;
                    let k = e.bin("arith.remui", e.muli(b, n0)?, n_fft)?;
                    let c0 = lanes.splat(e, e.load(cs, &[k])?)?;
                    let s0 = lanes.splat(e, e.load(sn, &[k])?)?;
                    // cos(a + c) = cos a cos c - sin a sin c; sin(a + c) = sin a cos c + cos a sin c.
                    let twiddle = match imaginary {
                        false => e.subf(e.mulf(c0, lc)?, e.mulf(s0, ls)?)?,
                        true => e.addf(e.mulf(s0, lc)?, e.mulf(c0, ls)?)?,
                    };
                    lanes.mul_add(e, xw, twiddle, acc)
                })?;
                lanes.sum(e, sums)
            };
            let re = dft(false)?;
            let im = dft(true)?;
            let p = e.addf(e.mulf(re, re)?, e.mulf(im, im)?)?;
            e.store(p, pw, &[b])
        })?;
        e.for_n(s.n_mels, |e, m| {
            let start = e.cast("arith.fptosi", e.load(st, &[m])?, e.int_type(32))?;
            let start = e.cast("arith.index_cast", start, e.index_type())?;
            let sums = lanes.fold_chunks(e, band, zeros, |e, w, acc| {
                let p = e.vload(pw, &[e.addi(start, w)?], LANES)?;
                lanes.mul_add(e, p, e.vload(wt, &[m, w], LANES)?, acc)
            })?;
            let sum = lanes.sum(e, sums)?;
            let v = e.unary("math.log10", e.maxf(sum, floor)?)?;
            e.store(v, y, &if s.frame_major { [f, m] } else { [m, f] })
        })
    })
}

pub fn build(spec: &MelSpec) -> Result<Design, DesignError> {
    let invalid = |message: String| DesignError::Invalid {
        design: spec.name.clone(),
        message,
    };
    if spec.n_fft != N_FFT || spec.hop != HOP || spec.sample_rate != SAMPLE_RATE {
        return Err(invalid(format!(
            "the tables are Whisper's: n_fft {N_FFT}, hop {HOP}, sample_rate {SAMPLE_RATE}"
        )));
    }
    let (cols, rows) = (spec.array.columns, spec.array.cores_per_column);
    let (cn, r_n, ft) = (cols as usize, rows as usize, spec.frame_tile);
    if ft == 0 || !spec.frames.is_multiple_of(ft * cn * r_n) {
        return Err(invalid(format!(
            "{} frames do not split into {ft}-frame tiles over {cn} x {r_n} cores",
            spec.frames
        )));
    }
    let per_column = spec.frames / cn;
    let steps = per_column / (r_n * ft);
    let frame_major = spec.layout == MelLayout::FrameMajor;
    let s = Shape {
        ft,
        n_mels: spec.n_mels,
        frame_major,
    };
    // The core's output block and the host buffer, in the spec's layout.
    let block = |frames: usize| match frame_major {
        true => [frames, spec.n_mels],
        false => [spec.n_mels, frames],
    };
    // Per frame: the DFT is `bins x n_fft/16` chunks of two fmas (cos, sin) and the lane
    // rotation (2): 4 issues; the power and filter bank ~n_mels chunks; log10 is scalar
    // (~20 ops, a range reduction and polynomial) per mel.
    let bins = N_FFT / 2 + 1;
    let mel_work = KernelWork::vector((ft * (bins * N_FFT.div_ceil(16) * 4 + s.n_mels * 4)) as u64)
        .plus(KernelWork::scalar((ft * s.n_mels * 20) as u64));
    let mel = kernel("mel", move |c, b, a| emit(c, b, a, s))
        .with_const_bytes(table_bytes(s.n_mels))
        .with_work(mel_work);
    let f32t = ElemType::F32;
    let samples = (spec.frames - 1) * HOP + N_FFT;
    let mut p = Program::new(&spec.name, &spec.device);
    let audio = p.arg("padded_audio", BufferType::new([samples], f32t));
    let log_mel = p.arg("log_mel", BufferType::new(block(spec.frames), f32t));
    for c in 0..cols {
        let input = p.fifo(
            format!("in{c}"),
            BufferType::new([r_n * ft, N_FFT], f32t),
            spec.depth,
        );
        let out_ty = match frame_major {
            true => BufferType::new([r_n * ft, spec.n_mels], f32t),
            false => BufferType::new([r_n * spec.n_mels, ft], f32t),
        };
        let output = p.fifo(format!("out{c}"), out_ty, spec.depth);
        let (mut xs, mut ys) = (vec![], vec![]);
        for r in 0..rows {
            let tile = core(c, r);
            let x = p.fifo(
                format!("x{c}_{r}"),
                BufferType::new([ft, N_FFT], f32t),
                spec.depth,
            );
            let y_ty = BufferType::new(block(ft), f32t);
            let y = p.fifo(format!("y{c}_{r}"), y_ty, spec.depth);
            let pw = p.state(format!("pw{c}_{r}"), BufferType::new([bins], f32t), tile);
            p.worker(tile, |w| {
                w.stack_bytes(spec.stack_bytes);
                let power = w.acquire_as("pw", &pw, Port::Produce, 1);
                w.repeat(steps as u64, |w| {
                    let a = w.acquire_as("x", &x, Port::Consume, 1);
                    let b = w.acquire_as("y", &y, Port::Produce, 1);
                    w.call(&mel, [a.first(), b.first(), power.first()]);
                    w.release(a);
                    w.release(b);
                });
                w.release(power);
            });
            xs.push(x);
            ys.push(y);
        }
        let x_offsets = (0..r_n).map(|r| r * ft * N_FFT).collect();
        p.split(&input, memtile(c), &xs, x_offsets);
        let y_offsets = (0..r_n).map(|r| r * spec.n_mels * ft).collect();
        p.join(&ys, memtile(c), &output, y_offsets);
        let first_frame = c as usize * per_column;
        p.sequence(|rt| {
            // Overlapping frames: consecutive frames start `hop` samples apart.
            let frames = TensorAccessPattern {
                offset: first_frame * HOP,
                sizes: [1, steps, r_n * ft, N_FFT],
                strides: [0, r_n * ft * HOP, HOP, 1],
            };
            rt.fill(&input, &audio, frames);
            let mels = match frame_major {
                // Join buffer [core, frame, mel] -> host [frames, mel]: contiguous.
                true => TensorAccessPattern {
                    offset: first_frame * spec.n_mels,
                    sizes: [steps, r_n, ft, spec.n_mels],
                    strides: [r_n * ft * spec.n_mels, ft * spec.n_mels, spec.n_mels, 1],
                },
                // Join buffer [core, mel, frame] -> host [mel, frames].
                false => TensorAccessPattern {
                    offset: first_frame,
                    sizes: [steps, r_n, spec.n_mels, ft],
                    strides: [r_n * ft, ft, spec.frames, 1],
                },
            };
            rt.drain(&output, &log_mel, mels);
        });
    }
    p.sequence(|rt| rt.settle());
    p.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_holds_every_nonzero_weight() {
        let bins = N_FFT / 2 + 1;
        let dense = aiec_runtime::mel::mel_filter_bank(80);
        let (starts, band, w) = banded_filter_bank(80);
        assert!(band < 40, "band {band}");
        for m in 0..80 {
            let in_band: f64 = (0..band).map(|i| w[m * band + i] as f64).sum();
            let all: f64 = dense[m * bins..(m + 1) * bins].iter().sum();
            assert!(
                (in_band - all).abs() <= 1e-6 * all.abs().max(1e-12),
                "mel {m}"
            );
            assert!(starts[m] + band <= bins);
        }
    }

    #[test]
    fn reference_of_a_pure_tone_peaks_at_its_mel_bin() {
        // 1 kHz sine: DFT bin 25; the largest mel value is a filter covering bin 25.
        let padded: Vec<f64> = (0..N_FFT + HOP)
            .map(|n| (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 16000.0).sin())
            .collect();
        let out = reference(&padded, 2, 80);
        let frame0: Vec<f64> = (0..80).map(|m| out[m * 2]).collect();
        let best = (0..80)
            .max_by(|a, b| frame0[*a].total_cmp(&frame0[*b]))
            .unwrap();
        let bins = N_FFT / 2 + 1;
        let bank = aiec_runtime::mel::mel_filter_bank(80);
        assert!(bank[best * bins + 25] > 0.0, "mel {best}");
        // Silence hits the 1e-10 floor: log10 = -10.
        let silent = reference(&vec![0.0; N_FFT], 1, 80);
        assert!(silent.iter().all(|v| *v == -10.0));
    }

    #[test]
    fn host_finish_clamps_at_max_minus_eight() {
        let mut v = vec![2.0f32, -7.0, -5.9, 1.0];
        finish_on_host(&mut v);
        // max 2 -> floor -6: (2+4)/4, (-6+4)/4, (-5.9+4)/4, (1+4)/4
        assert_eq!(v, vec![1.5, -0.5, (-5.9f32 + 4.0) / 4.0, 1.25]);
    }
}
