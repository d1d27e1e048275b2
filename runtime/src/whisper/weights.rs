//! Loading the Whisper layers from a CTranslate2 `model.bin`, with shape checks (fp16/int8
//! weights are upcast / dequantised to f32 at load).

use super::ops::{LayerNorm, Linear};
use crate::model::{ModelBin, ModelError};

/// Where layer weights come from: the parsed `model.bin`.
pub struct WeightSource<'a> {
    pub bin: &'a ModelBin,
}

impl WeightSource<'_> {
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        self.bin.weight_f32(name, shape)
    }

    pub fn has(&self, name: &str) -> bool {
        self.bin.get(name).is_ok()
    }
}

/// `prefix/weight [out, in]` and, if present, `prefix/bias [out]`.
pub fn linear(
    w: &WeightSource,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) -> Result<Linear, ModelError> {
    let weight = w.f32(&format!("{prefix}/weight"), &[out_dim, in_dim])?;
    let bias_name = format!("{prefix}/bias");
    let bias = if w.has(&bias_name) {
        Some(w.f32(&bias_name, &[out_dim])?)
    } else {
        None
    };
    Ok(Linear {
        weight,
        bias,
        out_dim,
        in_dim,
    })
}

pub fn layer_norm(w: &WeightSource, prefix: &str, d: usize) -> Result<LayerNorm, ModelError> {
    Ok(LayerNorm {
        gamma: w.f32(&format!("{prefix}/gamma"), &[d])?,
        beta: w.f32(&format!("{prefix}/beta"), &[d])?,
    })
}
