//! Tiling choices: for each op, the candidate (array, tile) pairs in order of preference,
//! derived from the problem shape and the device model. The spec validators decide: the
//! first candidate whose spec passes `Spec::build()` (field rules, then memory, locks, BDs
//! and DMA channels of the built design) is kept.
//!
//! Preferences, and why:
//! - **arrays**: more cores first; among equal core counts, full columns first (leaves whole
//!   columns free and keeps each column's memtile split wide).
//! - **matmul**: columns split N in blocks of [`MATMUL_TILE_N`], the cores of a column split M;
//!   tiles up to 32 x 64 x 32 (int8: the A, B and C blocks stay a few KiB each, so double
//!   buffering fits next to the accumulator). Rows that do not divide are padded.
//! - **attention**: one head per core, so the core count divides the heads; q/kv tiles up to
//!   32 rows (the q_tile x kv_tile f32 score block stays within 4 KiB) and at most
//!   `SHIM_MAX_REPEAT` blocks.
//! - **row-wise ops** (layernorm, GELU): the largest row tile that fits core memory (fewer,
//!   longer transfers).
//! - **mel**: the smallest frame tile whose step count fits the `SHIM_MAX_REPEAT` repeats of
//!   the drain's buffer descriptor (the mel tables already take a large share of the core).

use std::path::Path;

use super::doc::{Array, Mnk, SpecDoc};
use super::PlanError;
use crate::device::DeviceModel;
use crate::ops::SHIM_MAX_REPEAT;
use crate::spec::Spec;

/// Output columns per core block of the matmul design.
pub const MATMUL_TILE_N: usize = 32;
const MATMUL_MAX_TILE_M: usize = 32;
const MATMUL_MAX_TILE_K: usize = 64;
/// Conv operands are bf16 only and its K (3 c_in) is larger; a K block of up to 80 keeps
/// conv1's K = 240 in 3 blocks (one per tap) with the A and B blocks 4-5 KiB each.
const CONV_MAX_TILE_K: usize = 80;
const ATTENTION_MAX_TILE: usize = 32;

/// Divisors of `n`, largest first.
fn divisors_desc(n: usize) -> Vec<usize> {
    (1..=n).rev().filter(|d| n.is_multiple_of(*d)).collect()
}

/// The largest divisor of `n` that is at most `cap`.
fn largest_divisor_upto(n: usize, cap: usize) -> usize {
    (1..=cap.min(n))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1)
}

/// `n` rounded up to a multiple of `m`.
pub fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Every array of the device, most cores first, then most cores per column.
pub fn arrays(dev: &DeviceModel) -> Vec<Array> {
    let mut all: Vec<Array> = (1..=dev.columns)
        .flat_map(|columns| {
            (1..=dev.cores_per_column()).map(move |cores_per_column| Array {
                columns,
                cores_per_column,
            })
        })
        .collect();
    all.sort_by_key(|a| {
        (
            std::cmp::Reverse(a.cores()),
            std::cmp::Reverse(a.cores_per_column),
        )
    });
    all
}

/// One matmul tiling: the padded shape, the per-core tile and the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulTiling {
    pub shape: Mnk,
    pub tile: Mnk,
    pub array: Array,
}

/// Matmul candidates for `m x k x n`. N is padded to whole column blocks when it does not
/// divide into [`MATMUL_TILE_N`] (the vocabulary), M to whole row tiles (decoder rows).
pub fn matmul_candidates(m: usize, k: usize, n: usize, dev: &DeviceModel) -> Vec<MatmulTiling> {
    tilings(m, k, n, MATMUL_MAX_TILE_K, dev)
}

/// Rows of AIE-ML's `mmul` blocks (int8 `4x8x8`, bf16 `4x8x4`).
pub const MMUL_ROWS: usize = 4;

/// [`matmul_candidates`] with the rows padded to whole `mmul` row blocks and the tilings whose
/// row tile is a whole number of blocks first: a core then runs the vectorised MAC
/// ([`crate::ops::matmul`]'s `vector.contract` at `mmul` shape) instead of its scalar fallback,
/// which a decoder step's few rows split over the 4 cores of a column would otherwise get. The
/// order among equals is [`matmul_candidates`]'. The sim device picks its linears this way;
/// `aiec plan` does not yet (its decoder linears get `m = 2` tiles, which the performance
/// model prices at ~0.015 TOPS: 60.7 ms a step against 15.1 ms with this rule).
pub fn vector_matmul_candidates(
    m: usize,
    k: usize,
    n: usize,
    dev: &DeviceModel,
) -> Vec<MatmulTiling> {
    let mut tilings = matmul_candidates(round_up(m, MMUL_ROWS), k, n, dev);
    tilings.sort_by_key(|t| !t.tile.m.is_multiple_of(MMUL_ROWS));
    tilings
}

/// Conv candidates for the im2col product `[out_frames, 3 c_in] x [3 c_in, c_out]`: the
/// matmul tilings that need no padding (the conv's shape follows from its fields).
pub fn conv_candidates(
    out_frames: usize,
    c_in: usize,
    c_out: usize,
    dev: &DeviceModel,
) -> Vec<MatmulTiling> {
    let k = crate::ops::conv::TAPS * c_in;
    tilings(out_frames, k, c_out, CONV_MAX_TILE_K, dev)
        .into_iter()
        .filter(|t| t.shape.m == out_frames && t.shape.n == c_out)
        .collect()
}

fn tilings(
    m: usize,
    k: usize,
    n: usize,
    max_tile_k: usize,
    dev: &DeviceModel,
) -> Vec<MatmulTiling> {
    let tile_k = largest_divisor_upto(k, max_tile_k);
    let n_padded = if n.is_multiple_of(MATMUL_TILE_N) {
        n
    } else {
        round_up(n, MATMUL_TILE_N * dev.columns as usize)
    };
    let mut out = Vec::new();
    for cores_per_column in (1..=dev.cores_per_column()).rev() {
        let cpc = cores_per_column as usize;
        let per_core = m.div_ceil(cpc);
        // Small row counts (decoder beams): one tile per core, padded. Large ones: the largest
        // divisor of the per-core rows from 16 to 32, else pad to 32-row tiles.
        let tile_m = if per_core <= MATMUL_MAX_TILE_M {
            per_core
        } else {
            match largest_divisor_upto(per_core, MATMUL_MAX_TILE_M) {
                d if d >= MATMUL_MAX_TILE_M / 2 => d,
                _ => MATMUL_MAX_TILE_M,
            }
        };
        let m_padded = round_up(m, tile_m * cpc);
        for columns in (1..=dev.columns).rev() {
            if !n_padded.is_multiple_of(MATMUL_TILE_N * columns as usize) {
                continue;
            }
            out.push(MatmulTiling {
                shape: Mnk {
                    m: m_padded,
                    k,
                    n: n_padded,
                },
                tile: Mnk {
                    m: tile_m,
                    k: tile_k,
                    n: MATMUL_TILE_N,
                },
                array: Array {
                    columns,
                    cores_per_column,
                },
            });
        }
    }
    out
}

/// Attention candidates: `(array, q_tile, kv_tile)`.
pub fn attention_candidates(
    heads: usize,
    q_len: usize,
    kv_len: usize,
    dev: &DeviceModel,
) -> Vec<(Array, usize, usize)> {
    let q_tile = largest_divisor_upto(q_len, ATTENTION_MAX_TILE);
    let kv_tile = largest_divisor_upto(kv_len, ATTENTION_MAX_TILE);
    if q_len / q_tile > SHIM_MAX_REPEAT || kv_len / kv_tile > SHIM_MAX_REPEAT {
        return Vec::new();
    }
    arrays(dev)
        .into_iter()
        .filter(|a| heads.is_multiple_of(a.cores()))
        .map(|a| (a, q_tile, kv_tile))
        .collect()
}

/// Decoder-step attention candidates: `(array, kv_tile)`, one (beam, head) pair or more per
/// core, so the core count divides the pairs; KV blocks of up to 32 rows.
pub fn attention_decode_candidates(
    pairs: usize,
    kv_len: usize,
    dev: &DeviceModel,
) -> Vec<(Array, usize)> {
    let kv_tile = largest_divisor_upto(kv_len, ATTENTION_MAX_TILE);
    arrays(dev)
        .into_iter()
        .filter(|a| pairs.is_multiple_of(a.cores()))
        .map(|a| (a, kv_tile))
        .collect()
}

/// Row-wise candidates: `(array, tile_rows)`, rows split evenly over the cores.
pub fn rowwise_candidates(rows: usize, dev: &DeviceModel) -> Vec<(Array, usize)> {
    arrays(dev)
        .into_iter()
        .filter(|a| rows.is_multiple_of(a.cores()))
        .flat_map(|a| {
            divisors_desc(rows / a.cores())
                .into_iter()
                .map(move |t| (a, t))
        })
        .collect()
}

/// Add candidates: the row-wise tilings on at most the cores per column a memtile's outgoing
/// channels feed ([`crate::ops::add::max_cores_per_column`]), those whose `tile_rows x cols`
/// buffers of `elem_bytes` fit two to a core memory bank first: the six FIFO buffers (X, R
/// and Y, double-buffered) then get bank-aware placement from aie-opt (larger ones make it
/// fall back to sequential allocation, DMA and core sharing banks).
pub fn add_candidates(
    rows: usize,
    cols: usize,
    elem_bytes: usize,
    dev: &DeviceModel,
) -> Vec<(Array, usize)> {
    let most = crate::ops::add::max_cores_per_column(dev);
    let mut all: Vec<(Array, usize)> = rowwise_candidates(rows, dev)
        .into_iter()
        .filter(|(a, _)| a.cores_per_column <= most)
        .collect();
    // Stable: within each group the row-wise order (most cores, then the largest tile) holds.
    all.sort_by_key(|(_, tile_rows)| {
        tile_rows * cols * elem_bytes > crate::ops::add::BANK_BYTES / 2
    });
    all
}

/// Mel candidates: `(array, frame_tile)`.
pub fn mel_candidates(frames: usize, dev: &DeviceModel) -> Vec<(Array, usize)> {
    arrays(dev)
        .into_iter()
        .filter(|a| frames.is_multiple_of(a.cores()))
        .flat_map(|a| {
            let per_core = frames / a.cores();
            let mut tiles = divisors_desc(per_core);
            tiles.reverse();
            tiles
                .into_iter()
                .filter(move |t| per_core / t <= SHIM_MAX_REPEAT)
                .map(move |t| (a, t))
        })
        .collect()
}

/// A spec that passed `Spec::build()`, with its text.
#[derive(Debug, Clone)]
pub struct Built {
    pub doc: SpecDoc,
    pub toml: String,
    pub spec: Spec,
}

/// Serialises `doc` and checks it: parse, field rules, build, resources.
pub fn build_doc(doc: SpecDoc) -> Result<Built, PlanError> {
    let toml = doc.to_toml().map_err(|e| PlanError::Serialize {
        spec: doc.name.clone(),
        message: e.to_string(),
    })?;
    let spec = Spec::parse(&toml, Path::new(&doc.name))?;
    spec.build()?;
    Ok(Built { doc, toml, spec })
}

/// The first candidate that builds; the error names the entry and the last rejection.
pub fn first_that_builds(
    entry: &str,
    shape: &str,
    candidates: impl IntoIterator<Item = SpecDoc>,
) -> Result<Built, PlanError> {
    let mut tried = 0;
    let mut last = None;
    for doc in candidates {
        tried += 1;
        match build_doc(doc) {
            Ok(b) => return Ok(b),
            Err(PlanError::Spec(e)) => last = Some(aiec_runtime::errors::chain(&e)),
            Err(e) => return Err(e),
        }
    }
    Err(PlanError::NoTiling {
        entry: entry.to_string(),
        shape: shape.to_string(),
        tried,
        last: last.unwrap_or_else(|| "no array and tile sizes divide the shape".into()),
    })
}
