//! Loading the Whisper layers from a CTranslate2 `model.bin`, with shape checks: weights
//! are read as f32 (fp16/int8 upcast or dequantised) and handed to the backend once.

use std::sync::Arc;

use crate::backend::{Backend, LinearWeights, NormWeights, PreparedLinear, PreparedNorm};
use crate::model::{ModelBin, ModelError};

/// Where layer weights come from (the parsed `model.bin`) and who takes them.
pub struct WeightSource<'a> {
    pub bin: &'a ModelBin,
    pub backend: Arc<dyn Backend>,
}

impl WeightSource<'_> {
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        self.bin.weight_f32(name, shape)
    }

    /// The `[n_ctx, d]` position encodings of the `encoder` or `decoder` stack.
    pub fn positions(&self, stack: &str, n_ctx: usize, d: usize) -> Result<Vec<f32>, ModelError> {
        self.f32(
            &format!("{stack}/position_encodings/encodings"),
            &[n_ctx, d],
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.bin.get(name).is_ok()
    }

    /// `weight` `[n, k]` (any trailing shape that flattens to `k`) with an optional bias,
    /// prepared by the backend.
    pub fn prepare(
        &self,
        prefix: &str,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        n: usize,
        k: usize,
    ) -> Result<Box<dyn PreparedLinear>, ModelError> {
        Ok(self.backend.prepare_linear(LinearWeights {
            name: prefix.to_string(),
            weight,
            bias,
            n,
            k,
        })?)
    }

    /// The logits projection `weight` `[n_vocab, d]`, prepared by the backend in its logits
    /// format.
    pub fn prepare_logits(
        &self,
        prefix: &str,
        weight: Vec<f32>,
        n: usize,
        k: usize,
    ) -> Result<Box<dyn PreparedLinear>, ModelError> {
        let bias_name = format!("{prefix}/bias");
        let bias = if self.has(&bias_name) {
            Some(self.f32(&bias_name, &[n])?)
        } else {
            None
        };
        Ok(self.backend.prepare_logits(LinearWeights {
            name: prefix.to_string(),
            weight,
            bias,
            n,
            k,
        })?)
    }

    /// A k = 3 convolution's `weight` `[c_out, c_in, 3]` and bias, prepared by the backend as
    /// the im2col product `[c_out, 3 c_in]`.
    pub fn prepare_conv(
        &self,
        prefix: &str,
        c_in: usize,
        c_out: usize,
    ) -> Result<Box<dyn PreparedLinear>, ModelError> {
        let weight = self.f32(&format!("{prefix}/weight"), &[c_out, c_in, 3])?;
        let bias = self.f32(&format!("{prefix}/bias"), &[c_out])?;
        Ok(self.backend.prepare_conv(LinearWeights {
            name: prefix.to_string(),
            weight,
            bias: Some(bias),
            n: c_out,
            k: c_in * 3,
        })?)
    }
}

/// `prefix/weight [out, in]` and, if present, `prefix/bias [out]`.
pub fn linear(
    w: &WeightSource,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) -> Result<Box<dyn PreparedLinear>, ModelError> {
    let weight = w.f32(&format!("{prefix}/weight"), &[out_dim, in_dim])?;
    let bias_name = format!("{prefix}/bias");
    let bias = if w.has(&bias_name) {
        Some(w.f32(&bias_name, &[out_dim])?)
    } else {
        None
    };
    w.prepare(prefix, weight, bias, out_dim, in_dim)
}

pub fn layer_norm(
    w: &WeightSource,
    prefix: &str,
    d: usize,
) -> Result<Box<dyn PreparedNorm>, ModelError> {
    Ok(w.backend.prepare_layer_norm(NormWeights {
        name: prefix.to_string(),
        gamma: w.f32(&format!("{prefix}/gamma"), &[d])?,
        beta: w.f32(&format!("{prefix}/beta"), &[d])?,
    })?)
}
