//! The kernel plan of a Whisper model: the spec of every kernel its forward needs, derived
//! from the model's dims ([`WhisperDims`]) and the device model, so any CTranslate2 Whisper
//! (whisper-base, tiny.en, ...) gets its own plan.
//!
//! - [`forward`] lists the forward's tensor ops with their shapes and counts (per 30 s window,
//!   per decoder step);
//! - [`kernels`] turns each wanted shape into candidate specs, [`tiling`] orders the
//!   candidates and keeps the first that passes `Spec::build()`;
//! - forward ops that need the same kernel share one entry (its counts are the sums);
//! - [`render`] prints the plan table and writes one TOML per entry.
//!
//! Kernels: `conv` (im2col in the DMA pattern, GELU fused), `linear` (int8 with the
//! dequantising epilogue, or bf16; bias and fc1's GELU fused), `quantize` (int8 plans),
//! `attention` (encoder; token-major cross attention), `attention_decode` (one entry per KV
//! length bucket), `layernorm`, `add` (residuals and the encoder's positions, f32), `mel`. What is not fused, and why, is in [`forward`] and the
//! notes entries carry.

pub mod doc;
pub mod forward;
pub mod kernels;
pub mod render;
pub mod tiling;

use aiec_runtime::model::WhisperDims;

use crate::device::{DeviceError, DeviceModel};
use crate::spec::{Spec, SpecError};
use forward::{Shapes, Use, Want};
use kernels::Namer;

/// Matmul operand precision of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// int8 x int8 -> int32 (the NPU numerics).
    #[default]
    Int8,
    /// bf16 weights and activations, f32 accumulate.
    Bf16,
}

/// What a plan is made for besides the model's dims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// The model's name, as the spec files' headers give it.
    pub model: String,
    /// Prefix of every spec name (`wb` for whisper-base), see [`spec_prefix`].
    pub spec_prefix: String,
    /// Device model name (`npu1`, `npu2`, ...).
    pub device: String,
    /// Live beams of a decoder step (5: the default beam size; greedy decoding uses 1 row of
    /// the same kernels).
    pub beams: usize,
    pub precision: Precision,
}

impl PlanOptions {
    /// Defaults for `model` (a name or a directory) on `device`: 5 beams, int8.
    pub fn new(model: &str, device: &str) -> Self {
        PlanOptions {
            model: model.to_string(),
            spec_prefix: spec_prefix(model),
            device: device.to_string(),
            beams: 5,
            precision: Precision::Int8,
        }
    }
}

/// Initials of the model name's words: `whisper-base` -> `wb`, `tiny.en` -> `te`; a model
/// directory is named by its last component.
pub fn spec_prefix(model: &str) -> String {
    let name = std::path::Path::new(model)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.to_string());
    let initials: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.chars().next())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if initials.is_empty() {
        "model".into()
    } else {
        initials
    }
}

#[derive(thiserror::Error, Debug)]
pub enum PlanError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("the model's dims cannot be planned: {message}")]
    Dims { message: String },
    #[error(
        "plan entry `{entry}` ({shape}): no tiling of the {tried} tried fits the device: {last}"
    )]
    NoTiling {
        entry: String,
        shape: String,
        tried: usize,
        last: String,
    },
    #[error("spec `{spec}`: cannot serialise: {message}")]
    Serialize { spec: String, message: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// One forward op an entry serves, with its own counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serves {
    /// e.g. `encoder.layers[*].self_attn.qkv`, `decoder.step.layers[*].self_attn`, `logits`.
    pub forward: String,
    pub per_window: usize,
    /// Launches per decoder step; with `steps`, per step whose valid length is in it.
    pub per_step: usize,
    /// The valid KV lengths (inclusive) of the steps this entry serves: a length bucket runs
    /// on those steps only, one bucket per step. `None`: every step.
    pub steps: Option<(usize, usize)>,
}

impl Serves {
    /// `6`, or `6 if len 65..=128` for a length bucket.
    pub fn per_step_text(&self) -> String {
        match self.steps {
            Some((lo, hi)) => format!("{} if len {lo}..={hi}", self.per_step),
            None => self.per_step.to_string(),
        }
    }
}

/// A spec field the plan padded beyond the model's shape (the host pads and drops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padding {
    /// The spec field, e.g. `shape.n`.
    pub field: &'static str,
    /// The model's size.
    pub from: usize,
    /// The kernel's size.
    pub to: usize,
}

/// One kernel of the plan.
#[derive(Debug, Clone)]
pub struct PlanEntry {
    /// Entry and file name, e.g. `enc_qkv`.
    pub name: String,
    pub serves: Vec<Serves>,
    pub padding: Vec<Padding>,
    /// Why the entry looks as it does where another branch will change it.
    pub notes: Vec<&'static str>,
    /// The spec text (what `Spec::parse` reads).
    pub toml: String,
    /// The parsed spec (it passed `Spec::build()`).
    pub spec: Spec,
    /// The problem shape, e.g. `1500x512x1536`.
    pub shape: String,
}

impl PlanEntry {
    pub fn op(&self) -> &'static str {
        self.spec.op()
    }

    /// Launches per 30 s window (encoder side, cross K/V).
    pub fn per_window(&self) -> usize {
        self.serves.iter().map(|s| s.per_window).sum()
    }

    /// Launches per decoder step (one step runs every live beam); for a length bucket, per
    /// step whose valid length it serves.
    pub fn per_step(&self) -> usize {
        self.serves.iter().map(|s| s.per_step).sum()
    }

    /// Launches in a decoder step whose valid KV length is `len`.
    pub fn per_step_at(&self, len: usize) -> usize {
        self.serves
            .iter()
            .filter(|s| s.steps.is_none_or(|(lo, hi)| (lo..=hi).contains(&len)))
            .map(|s| s.per_step)
            .sum()
    }

    /// The per-step column of the table: `18`, or `6 if len 65..=128`.
    pub fn per_step_text(&self) -> String {
        match self.serves.as_slice() {
            [one] => one.per_step_text(),
            _ => self.per_step().to_string(),
        }
    }
}

/// The kernels a model needs on one device.
#[derive(Debug, Clone)]
pub struct Plan {
    pub options: PlanOptions,
    pub dims: WhisperDims,
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// Derives the plan of a model with `dims`; every spec in it passed `Spec::build()`.
    pub fn for_model(dims: &WhisperDims, options: &PlanOptions) -> Result<Plan, PlanError> {
        let dev = DeviceModel::get(&options.device)?;
        let shapes = Shapes::new(
            dims,
            options.beams,
            dev.cores_per_column() as usize,
            options.precision,
        )?;
        let namer = Namer { opts: options };
        let mut entries: Vec<(Want, PlanEntry)> = Vec::new();
        for u in shapes.uses() {
            let serves = Serves {
                forward: u.forward.clone(),
                per_window: u.per_window,
                per_step: u.per_step,
                steps: u.steps,
            };
            if let Some((want, e)) = entries.iter_mut().find(|(_, e)| e.name == u.entry) {
                if *want != u.want {
                    return Err(PlanError::Dims {
                        message: format!(
                            "`{}` needs {} but entry `{}` is {}",
                            u.forward,
                            u.want.describe(),
                            u.entry,
                            want.describe()
                        ),
                    });
                }
                e.serves.push(serves);
                continue;
            }
            let entry = plan_entry(&namer, &u, &dev, serves)?;
            entries.push((u.want, entry));
        }
        Ok(Plan {
            options: options.clone(),
            dims: *dims,
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        })
    }

    pub fn entry(&self, name: &str) -> Option<&PlanEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Why an entry looks as it does where the forward does more than its kernel.
fn notes_for(entry: &str) -> Vec<&'static str> {
    match entry {
        "enc_out_proj" | "enc_fc2" => vec![
            "the residual add is not fused (the linear op refuses `residual`: a core's 2 input DMA channels carry A and B); it runs on `enc_add`",
        ],
        "dec_proj" | "dec_fc2" => vec![
            "the residual add is not fused (the linear op refuses `residual`: a core's 2 input DMA channels carry A and B); it runs on `dec_add`",
        ],
        "enc_add" | "dec_add" => vec![
            "f32: the residual stream keeps the cpu path's numerics (one f32 rounding per add)",
            "at most 2 cores per column: the memtile's 6 MM2S channels carry X and R to every core and Y back",
        ],
        "dec_qkv" | "enc_qkv" | "dec_cross_kv" => {
            vec!["k_proj has no bias in Whisper: its bias columns are zero"]
        }
        "dec_logits" => vec!["the tied token embedding: no bias, f32 logits"],
        _ if entry.starts_with("dec_step_self_attention") => vec![
            "one of the length buckets runs per step: the smallest whose kv_len holds the valid length, passed in the LEN buffer",
        ],
        _ => Vec::new(),
    }
}

fn plan_entry(
    namer: &Namer,
    u: &Use,
    dev: &DeviceModel,
    serves: Serves,
) -> Result<PlanEntry, PlanError> {
    let candidates = kernels::candidates(namer, &u.entry, u.want, dev);
    let built = tiling::first_that_builds(&u.entry, &u.want.describe(), candidates)?;
    let padding = kernels::padding_of(u.want, u.live_rows, &built.doc.body)
        .into_iter()
        .map(|(field, from, to)| Padding { field, from, to })
        .collect();
    Ok(PlanEntry {
        name: u.entry.clone(),
        serves: vec![serves],
        padding,
        notes: notes_for(&u.entry),
        shape: built.doc.body.shape_text(),
        toml: built.toml,
        spec: built.spec,
    })
}
