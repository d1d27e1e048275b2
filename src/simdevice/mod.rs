//! `--device sim`: the Whisper [`Backend`] whose tensor ops run as compiled AIE designs on the
//! host simulator ([`crate::sim`]).
//!
//! For every call the backend derives the spec of the call's shape with the plan's tiling
//! search (rows padded to whole tiles), looks it up in a process-wide cache keyed by the spec
//! text ([`kernels`]; built and JIT-compiled on a miss, once per process, MLIR written to
//! `$AIEC_HOME/kernels/<hash>.mlir`), converts the f32 activations to the design's host types,
//! runs it and converts back.
//!
//! What runs where:
//!
//! | op | where | design |
//! |----|-------|--------|
//! | linear, logits | sim | `linear` (bf16, or int8 with the dequantising epilogue; GELU fused) |
//! | log_mel | sim | `mel`, `frame_major` (the trait's layout); the file-wide max − 8 clamp stays on the host (the runtime's, as [`crate::ops::mel::finish_on_host`]): it needs every window's maximum ([`mel`]) |
//! | conv1d | sim | `conv`: im2col in the A pattern, bf16 in every precision ([`Precision::conv`]), GELU fused; the host stages the zero-bordered bf16 input, transposing conv1's mel window ([`conv`]) |
//! | layer_norm | sim | `layernorm` (bf16) |
//! | gelu (unfused) | sim | `gelu` (bf16 table) |
//! | attention, encoder self (`Inline`) | sim | `attention`, `token_major` (bf16) |
//! | attention, cross (`Shared`) | sim | `attention`, `head_major` over the store's buffer, q rows = beams x new tokens |
//! | attention, decoder step (`Causal`, one query per sequence) | sim | `attention_decode` over the store's buffer (length buckets 64, 128, 256, n_ctx; runtime length) |
//! | attention, decoder prompt (`Causal` from position 0) | sim | causal `attention`, `head_major`, the (sequence, head) pairs as heads |
//! | attention, several queries after position 0; `keep_heads` (word timestamps) | host (f32) | the first never occurs in our decoding (the prompt goes in one call); the design returns no weights |
//! | kv_write, kv_reorder | host | data movement into the backend's store ([`kv::SimKv`]: device buffers in the attention designs' layout, persistent across steps) |
//! | linear's residual `+=` | sim | `add` (f32) after the `linear` launch: the linear op rejects a fused residual (third input stream) |
//! | add (positions) | sim | `add` (f32, rows of up to 512) |
//!
//! Host work is counted separately ([`SimBackend::host_stats`], printed by `--timings`):
//! every launch there is a piece of a tensor op the simulator did not run. The main table's
//! device time is the simulated time; it is 0 for an op that ran wholly on the host.
//!
//! Weights stay where they were packed: a launch borrows them
//! ([`crate::sim::Prepared::run_ref`]), so the logits matrix is not copied per decoder step.
//!
//! Precision: `Int8` runs the int8 linear (per-output-channel weight scales from the linear
//! op's packing, per-row activation scales from the `quantize` design, which applies the cpu
//! int8 path's own rule, [`aiec_runtime::quant`], and its dequantisation order, so the two devices' int8
//! accumulators and outputs are bit-identical: `tests/int8_accumulators.rs`); `Bf16` and
//! `F32` run the bf16 linear (the device has no f32 matmul). The convolutions and the
//! logits are bf16 in every precision ([`Precision::conv`], [`Precision::logits`]).
//!
//! A simulation failure inside a trait call (which cannot return an error) panics with the
//! spec name and the simulator's message: it is a defect of a design, not of the input.

pub mod add;
pub mod attention;
pub mod conv;
pub mod kernels;
pub mod kv;
pub mod linear;
pub mod mel;
pub mod predicted;
pub mod rowwise;

use std::time::{Duration, Instant};

use aiec_runtime::backend::cpu::CpuBackend;
use aiec_runtime::backend::{
    AttentionCall, Backend, BackendError, ConvInput, Epilogue, KvCache, KvRows, KvShape, KvSource,
    LinearWeights, NormWeights, OpKind, OpStats, Precision, PreparedLinear, PreparedNorm,
};
use conv::SimConv;
use kv::{sim_kv, sim_kv_mut, SimKv};
use linear::SimLinear;
use rowwise::SimNorm;

#[derive(thiserror::Error, Debug)]
pub enum SimDeviceError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("{spec}: simulation failed: {message}")]
    Sim { spec: String, message: String },
    #[error("{what}: no tiling builds: {last}")]
    NoTiling { what: String, last: String },
    #[error("{name}: packing the weights failed: {message}")]
    Pack { name: String, message: String },
}

/// The matmul number format on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimPrecision {
    Bf16,
    Int8,
}

/// The simulator backend.
pub struct SimBackend {
    precision: SimPrecision,
    stats: OpStats,
    /// The parts of ops that ran on the host (subset of `stats`' launches).
    host: OpStats,
    /// Runs the host parts (f32).
    cpu: CpuBackend,
    /// The performance model's NPU time of the launches, by op kind and phase.
    predicted: std::sync::Mutex<predicted::Predicted>,
}

impl SimBackend {
    pub fn new(precision: Precision) -> Result<Self, SimDeviceError> {
        let precision = match precision {
            Precision::Int8 => SimPrecision::Int8,
            Precision::Bf16 | Precision::F32 => SimPrecision::Bf16,
        };
        Ok(SimBackend {
            precision,
            stats: OpStats::default(),
            host: OpStats::default(),
            cpu: CpuBackend::new(Precision::F32),
            predicted: Default::default(),
        })
    }

    /// Launches and time of the op parts that ran on the host.
    pub fn host_stats(&self) -> &OpStats {
        &self.host
    }

    /// Records a call of `kind`: its wall time, and the simulated time of its launches.
    fn record(&self, kind: OpKind, started: Instant, device: Duration) {
        self.stats.record(kind, started.elapsed(), device);
        self.predicted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(kind);
    }

    /// The predicted NPU time of the launches so far, and resets it (see [`predicted`]).
    pub fn take_predicted(&self) -> predicted::Predicted {
        std::mem::take(&mut *self.predicted.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the host as a part of `kind`.
    fn on_host<T>(&self, kind: OpKind, f: impl FnOnce() -> T) -> T {
        self.host.time(kind, f)
    }

    /// A product on the `linear` design as the call of `kind` that started at `started`;
    /// a residual `+=` runs the `add` design on the product's `rows x n` (f32, as the cpu
    /// path adds), its simulated time counted with the call's.
    fn linear_into(
        &self,
        (kind, started): (OpKind, Instant),
        w: &SimLinear,
        x: &[f32],
        epi: Epilogue,
        out: &mut [f32],
    ) {
        let rows = w.rows_of(x);
        let (y, mut device) = w.run(x, rows, epi.gelu).unwrap_or_else(|e| fail(e));
        if epi.accumulate && !y.is_empty() {
            let n = y.len() / rows;
            let (sum, added) = add::add(&out[..y.len()], &y, n).unwrap_or_else(|e| fail(e));
            out[..sum.len()].copy_from_slice(&sum);
            device += added;
        } else {
            out[..y.len()].copy_from_slice(&y);
        }
        self.record(kind, started, device);
    }
}

/// An attention call the designs do not serve (weights kept for word timestamps, or several
/// queries per sequence after position 0), in f32 on the host over a copy of the store.
fn host_attention(cpu: &CpuBackend, call: AttentionCall, out: &mut [f32]) -> Vec<Vec<f32>> {
    let (cache, layer, len) = match call.kv {
        KvSource::Inline { .. } => return cpu.attention(call, out),
        KvSource::Causal { cache, layer, past } => (cache, layer, past + call.q.per_batch),
        KvSource::Shared { cache, layer, len } => (cache, layer, len),
    };
    let copy = sim_kv(cache).to_cpu(layer, len);
    let kv = match call.kv {
        KvSource::Causal { past, .. } => KvSource::Causal {
            cache: &copy,
            layer: 0,
            past,
        },
        _ => KvSource::Shared {
            cache: &copy,
            layer: 0,
            len,
        },
    };
    cpu.attention(AttentionCall { kv, ..call }, out)
}

fn fail(e: SimDeviceError) -> ! {
    panic!("sim backend: {e}")
}

fn sim_linear(w: &dyn PreparedLinear) -> &SimLinear {
    w.as_any()
        .downcast_ref()
        .expect("a layer prepared by another backend was passed to the sim backend")
}

fn sim_norm(n: &dyn PreparedNorm) -> &SimNorm {
    n.as_any()
        .downcast_ref()
        .expect("a norm prepared by another backend was passed to the sim backend")
}

/// A dense layer packed for the linear design in `precision`.
fn prepare(
    w: LinearWeights,
    precision: SimPrecision,
) -> Result<Box<dyn PreparedLinear>, BackendError> {
    w.validate()?;
    let name = w.name.clone();
    let (n, k) = (w.n, w.k);
    SimLinear::new(w, precision)
        .map(|l| Box::new(l) as Box<dyn PreparedLinear>)
        .map_err(|e| {
            // The trait's errors are shape errors; a layer no design fits is reported with its
            // name and shape the same way.
            tracing::error!("{name}: {e}");
            BackendError::WeightShape {
                name: format!("{name} (no sim design: {e})"),
                got: n * k,
                n,
                k,
            }
        })
}

impl Backend for SimBackend {
    fn name(&self) -> String {
        match self.precision {
            SimPrecision::Bf16 => "sim-bf16".into(),
            SimPrecision::Int8 => "sim-int8".into(),
        }
    }

    fn prepare_linear(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        prepare(w, self.precision)
    }

    /// Packed for the `conv` design, which is bf16 in every precision ([`Precision::conv`]).
    fn prepare_conv(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        w.validate()?;
        let (name, n, k) = (w.name.clone(), w.n, w.k);
        SimConv::new(w)
            .map(|c| Box::new(c) as Box<dyn PreparedLinear>)
            .map_err(|e| BackendError::WeightShape {
                name: format!("{name} (no sim design: {e})"),
                got: n * k,
                n,
                k,
            })
    }

    /// The logits run the bf16 linear design under `Int8` too ([`Precision::logits`]).
    fn prepare_logits(&self, w: LinearWeights) -> Result<Box<dyn PreparedLinear>, BackendError> {
        prepare(w, SimPrecision::Bf16)
    }

    fn prepare_layer_norm(&self, w: NormWeights) -> Result<Box<dyn PreparedNorm>, BackendError> {
        w.validate()?;
        Ok(Box::new(SimNorm::new(w)))
    }

    fn log_mel(&self, signal: &[f32], n_frames: usize, n_mels: usize, out: &mut [f32]) {
        let started = Instant::now();
        let (y, device) = mel::log_mel(signal, n_frames, n_mels).unwrap_or_else(|e| fail(e));
        out[..y.len()].copy_from_slice(&y);
        self.record(OpKind::LogMel, started, device);
    }

    fn conv1d(&self, w: &dyn PreparedLinear, input: ConvInput, epi: Epilogue, out: &mut [f32]) {
        let started = Instant::now();
        let w: &SimConv = w
            .as_any()
            .downcast_ref()
            .expect("a conv prepared by another backend was passed to the sim backend");
        let a = self.on_host(OpKind::Conv, || w.stage(&input));
        let shape = (input.frames, input.stride);
        let (y, device) = w.run(&a, shape, epi.gelu).unwrap_or_else(|e| fail(e));
        if epi.accumulate {
            self.on_host(OpKind::Conv, || {
                out.iter_mut().zip(&y).for_each(|(o, v)| *o += v)
            });
        } else {
            out[..y.len()].copy_from_slice(&y);
        }
        self.record(OpKind::Conv, started, device);
    }

    fn linear(&self, w: &dyn PreparedLinear, x: &[f32], epi: Epilogue, out: &mut [f32]) {
        let call = (OpKind::Linear, Instant::now());
        self.linear_into(call, sim_linear(w), x, epi, out)
    }

    fn logits(&self, w: &dyn PreparedLinear, x: &[f32], out: &mut [f32]) {
        let call = (OpKind::Logits, Instant::now());
        self.linear_into(call, sim_linear(w), x, Epilogue::NONE, out)
    }

    fn layer_norm(&self, norm: &dyn PreparedNorm, x: &[f32], out: &mut [f32]) {
        let started = Instant::now();
        let (y, device) = rowwise::layer_norm(sim_norm(norm), x).unwrap_or_else(|e| fail(e));
        out[..y.len()].copy_from_slice(&y);
        self.record(OpKind::LayerNorm, started, device);
    }

    fn gelu(&self, x: &mut [f32]) {
        let started = Instant::now();
        // Row width only shapes the tiling: the widest divisor of the length up to 2048.
        let cols = (1..=2048.min(x.len()))
            .rev()
            .find(|c| x.len().is_multiple_of(*c))
            .unwrap_or(1);
        let (y, device) = rowwise::gelu(x, cols).unwrap_or_else(|e| fail(e));
        x.copy_from_slice(&y);
        self.record(OpKind::Gelu, started, device);
    }

    fn add(&self, x: &mut [f32], y: &[f32]) {
        let started = Instant::now();
        // The cpu backend's `zip`: the shorter length counts.
        let n = x.len().min(y.len());
        let mut device = Duration::ZERO;
        if n > 0 {
            let (sum, d) = add::add(&x[..n], &y[..n], add::add_rows(n)).unwrap_or_else(|e| fail(e));
            x[..n].copy_from_slice(&sum);
            device = d;
        }
        self.record(OpKind::Add, started, device);
    }

    fn new_kv_cache(&self, shape: KvShape) -> Box<dyn KvCache> {
        Box::new(SimKv::new(shape))
    }

    fn kv_write(&self, cache: &mut dyn KvCache, layer: usize, pos: usize, rows: KvRows) {
        let started = Instant::now();
        self.on_host(OpKind::KvWrite, || {
            sim_kv_mut(cache).write(layer, pos, rows)
        });
        self.record(OpKind::KvWrite, started, Duration::ZERO);
    }

    fn kv_reorder(&self, cache: &mut dyn KvCache, order: &[usize], len: usize) {
        let started = Instant::now();
        self.on_host(OpKind::KvReorder, || sim_kv_mut(cache).reorder(order, len));
        self.record(OpKind::KvReorder, started, Duration::ZERO);
    }

    fn attention(&self, call: AttentionCall, out: &mut [f32]) -> Vec<Vec<f32>> {
        let started = Instant::now();
        let AttentionCall {
            heads,
            q,
            kv,
            keep_heads,
        } = call;
        let on_device = match kv {
            // The weights of the alignment heads (word timestamps) are not a design output.
            _ if !keep_heads.is_empty() => None,
            KvSource::Inline { k_offset, v_offset } => {
                let d = out.len() / q.rows().max(1) / heads;
                Some(attention::encoder(&q, (k_offset, v_offset), heads, d))
            }
            KvSource::Shared { cache, layer, len } => {
                Some(attention::cross(&q, sim_kv(cache), layer, len))
            }
            KvSource::Causal { cache, layer, past } if q.per_batch == 1 => {
                Some(attention::step(&q, sim_kv(cache), layer, past + 1))
            }
            KvSource::Causal {
                cache,
                layer,
                past: 0,
            } => Some(attention::prompt(&q, sim_kv(cache), layer)),
            KvSource::Causal { .. } => None,
        };
        let Some(result) = on_device else {
            let w = self.on_host(OpKind::Attention, || host_attention(&self.cpu, call, out));
            self.record(OpKind::Attention, started, Duration::ZERO);
            return w;
        };
        let (o, device) = result.unwrap_or_else(|e| fail(e));
        out[..o.len()].copy_from_slice(&o);
        self.record(OpKind::Attention, started, device);
        Vec::new()
    }

    fn stats(&self) -> &OpStats {
        &self.stats
    }
}
