//! Whisper's dimensions, derived from the tensors of a CTranslate2 `WhisperSpec` model,
//! and the check that every tensor the forward pass reads exists with a consistent shape.

use super::{ModelBin, ModelError};

/// Sizes of a Whisper network (whisper-base: 80 mels, d_model 512, 8+8 heads, 6+6 layers,
/// 1500 audio positions, 448 text positions, 51865 tokens, FFN 2048).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhisperDims {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_heads_enc: usize,
    pub n_heads_dec: usize,
    pub n_layers_enc: usize,
    pub n_layers_dec: usize,
    /// Encoder positions (1500 = 3000 mel frames after the stride-2 conv).
    pub n_audio_ctx: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    pub n_vocab: usize,
    pub ffn_dim: usize,
}

impl WhisperDims {
    /// Per-head width of the attention layers.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads_enc
    }

    /// Reads the dimensions off the weights and validates every tensor of the forward pass.
    pub fn from_model(bin: &ModelBin) -> Result<WhisperDims, ModelError> {
        let conv1 = bin.get("encoder/conv1/weight")?;
        let [d_model, n_mels, 3] = conv1.shape[..] else {
            return Err(shape_err(
                bin,
                "encoder/conv1/weight",
                "[d_model, n_mels, 3]",
                &conv1.shape,
            ));
        };
        let n_audio_ctx = first_dim(bin, "encoder/position_encodings/encodings")?;
        let n_text_ctx = first_dim(bin, "decoder/position_encodings/encodings")?;
        let n_vocab = first_dim(bin, "decoder/embeddings/weight")?;
        let ffn_dim = first_dim(bin, "encoder/layer_0/ffn/linear_0/weight")?;
        let dims = WhisperDims {
            n_mels,
            d_model,
            n_heads_enc: heads(bin, "encoder/num_heads", d_model)?,
            n_heads_dec: heads(bin, "decoder/num_heads", d_model)?,
            n_layers_enc: count_layers(bin, "encoder/layer_"),
            n_layers_dec: count_layers(bin, "decoder/layer_"),
            n_audio_ctx,
            n_text_ctx,
            n_vocab,
            ffn_dim,
        };
        // A corrupt name like `encoder/layer_4000000000/...` must not make us list billions
        // of tensors: each layer holds several variables, so there are fewer layers than those.
        if dims.n_layers_enc + dims.n_layers_dec > bin.len() {
            return Err(ModelError::Inconsistent {
                path: bin.path.clone(),
                message: format!(
                    "layer numbers ({} encoder, {} decoder) exceed the {} stored variables",
                    dims.n_layers_enc,
                    dims.n_layers_dec,
                    bin.len()
                ),
            });
        }
        if dims.n_layers_enc == 0 || dims.n_layers_dec == 0 {
            return Err(ModelError::Inconsistent {
                path: bin.path.clone(),
                message: format!(
                    "a Whisper model needs encoder and decoder layers, found {} and {}",
                    dims.n_layers_enc, dims.n_layers_dec
                ),
            });
        }
        if d_model == 0
            || n_mels == 0
            || n_audio_ctx == 0
            || n_text_ctx == 0
            || n_vocab == 0
            || ffn_dim == 0
        {
            return Err(ModelError::Inconsistent {
                path: bin.path.clone(),
                message: format!("zero-sized dimension in {dims:?}"),
            });
        }
        for (name, shape) in dims.expected_tensors() {
            bin.get_shaped(&name, &shape)?;
        }
        Ok(dims)
    }

    /// Every tensor the Whisper forward pass reads, with the shape it must have.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.d_model;
        let mut t: Vec<(String, Vec<usize>)> = Vec::new();
        let mut add = |name: String, shape: &[usize]| t.push((name, shape.to_vec()));
        // A pre-norm sub-layer `{prefix}`: its layer norm, then `linear_{i}` of the
        // `[out, in]` shapes in order.
        let sub_layer =
            |add: &mut dyn FnMut(String, &[usize]), prefix: &str, linears: &[(usize, usize)]| {
                add(format!("{prefix}/layer_norm/gamma"), &[d]);
                add(format!("{prefix}/layer_norm/beta"), &[d]);
                for (i, &(out, inp)) in linears.iter().enumerate() {
                    add(format!("{prefix}/linear_{i}/weight"), &[out, inp]);
                    add(format!("{prefix}/linear_{i}/bias"), &[out]);
                }
            };
        // An encoder or decoder stack `{name}`: positions, `n_layers` layers of the
        // `(name, linears)` sub-layers, the final layer norm.
        let stack = |add: &mut dyn FnMut(String, &[usize]),
                     (name, n_ctx, n_layers): (&str, usize, usize),
                     sub_layers: &[(&str, &[(usize, usize)])]| {
            add(format!("{name}/position_encodings/encodings"), &[n_ctx, d]);
            for i in 0..n_layers {
                for (sub, linears) in sub_layers {
                    sub_layer(&mut *add, &format!("{name}/layer_{i}/{sub}"), linears);
                }
            }
            add(format!("{name}/layer_norm/gamma"), &[d]);
            add(format!("{name}/layer_norm/beta"), &[d]);
        };
        let self_attention: &[(usize, usize)] = &[(3 * d, d), (d, d)];
        let cross_attention: &[(usize, usize)] = &[(d, d), (2 * d, d), (d, d)];
        let ffn: &[(usize, usize)] = &[(self.ffn_dim, d), (d, self.ffn_dim)];

        add("encoder/conv1/weight".into(), &[d, self.n_mels, 3]);
        add("encoder/conv1/bias".into(), &[d]);
        add("encoder/conv2/weight".into(), &[d, d, 3]);
        add("encoder/conv2/bias".into(), &[d]);
        stack(
            &mut add,
            ("encoder", self.n_audio_ctx, self.n_layers_enc),
            &[("self_attention", self_attention), ("ffn", ffn)],
        );
        add("decoder/embeddings/weight".into(), &[self.n_vocab, d]);
        stack(
            &mut add,
            ("decoder", self.n_text_ctx, self.n_layers_dec),
            &[
                ("self_attention", self_attention),
                ("attention", cross_attention),
                ("ffn", ffn),
            ],
        );
        add("decoder/projection/weight".into(), &[self.n_vocab, d]);
        t
    }
}

fn shape_err(bin: &ModelBin, name: &str, expected: &str, found: &[usize]) -> ModelError {
    ModelError::Inconsistent {
        path: bin.path.clone(),
        message: format!("variable {name} has shape {found:?}, expected {expected}"),
    }
}

/// The leading dimension of a rank-2 tensor.
fn first_dim(bin: &ModelBin, name: &str) -> Result<usize, ModelError> {
    let var = bin.get(name)?;
    match var.shape[..] {
        [rows, _] => Ok(rows),
        _ => Err(shape_err(bin, name, "a matrix", &var.shape)),
    }
}

fn heads(bin: &ModelBin, name: &str, d_model: usize) -> Result<usize, ModelError> {
    let n = bin.scalar_i64(name)?;
    if n <= 0 || !d_model.is_multiple_of(n as usize) {
        return Err(ModelError::Inconsistent {
            path: bin.path.clone(),
            message: format!("{name} = {n} does not divide d_model = {d_model}"),
        });
    }
    Ok(n as usize)
}

/// 1 + the highest `N` in names `<prefix>N/...`; a gap below it shows up later as a
/// missing tensor of that layer.
fn count_layers(bin: &ModelBin, prefix: &str) -> usize {
    bin.names()
        .filter_map(|name| {
            name.strip_prefix(prefix)?
                .split('/')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}
