//! Host buffers: what `sim::run` takes and returns, one per runtime-sequence argument.

use half::bf16;

use crate::design::ElemType;

/// The contents of one host buffer, typed like the runtime-sequence argument it feeds.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    Bf16(Vec<bf16>),
    F32(Vec<f32>),
}

impl HostData {
    /// `len` zero elements of `elem`.
    pub fn zeros(elem: ElemType, len: usize) -> Self {
        match elem {
            ElemType::I8 => HostData::I8(vec![0; len]),
            ElemType::I16 => HostData::I16(vec![0; len]),
            ElemType::I32 => HostData::I32(vec![0; len]),
            ElemType::Bf16 => HostData::Bf16(vec![bf16::ZERO; len]),
            ElemType::F32 => HostData::F32(vec![0.0; len]),
        }
    }

    /// `values` rounded to `elem` (integers: to nearest, saturating).
    pub fn from_f64(elem: ElemType, values: &[f64]) -> Self {
        let int = |v: f64, lo: f64, hi: f64| v.round().clamp(lo, hi);
        match elem {
            ElemType::F32 => HostData::F32(values.iter().map(|&v| v as f32).collect()),
            ElemType::Bf16 => HostData::Bf16(values.iter().map(|&v| bf16::from_f64(v)).collect()),
            ElemType::I8 => HostData::I8(
                values
                    .iter()
                    .map(|&v| int(v, -128.0, 127.0) as i8)
                    .collect(),
            ),
            ElemType::I16 => HostData::I16(
                values
                    .iter()
                    .map(|&v| int(v, -32768.0, 32767.0) as i16)
                    .collect(),
            ),
            ElemType::I32 => HostData::I32(values.iter().map(|&v| v.round() as i32).collect()),
        }
    }

    pub fn elem(&self) -> ElemType {
        match self {
            HostData::I8(_) => ElemType::I8,
            HostData::I16(_) => ElemType::I16,
            HostData::I32(_) => ElemType::I32,
            HostData::Bf16(_) => ElemType::Bf16,
            HostData::F32(_) => ElemType::F32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HostData::I8(v) => v.len(),
            HostData::I16(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::Bf16(v) => v.len(),
            HostData::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element widened to f64 (exact for all our element types).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            HostData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::Bf16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            HostData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        }
    }

    /// Little-endian bytes, the layout the JIT-compiled cores read (the host is little-endian).
    pub(crate) fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            HostData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            HostData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::Bf16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
            HostData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Inverse of [`HostData::to_le_bytes`]; `bytes.len()` must be a multiple of the element size.
    pub(crate) fn from_le_bytes(elem: ElemType, bytes: &[u8]) -> Self {
        match elem {
            ElemType::I8 => HostData::I8(bytes.iter().map(|&b| b as i8).collect()),
            ElemType::I16 => HostData::I16(decode(bytes, i16::from_le_bytes)),
            ElemType::I32 => HostData::I32(decode(bytes, i32::from_le_bytes)),
            ElemType::Bf16 => {
                HostData::Bf16(decode(bytes, |b| bf16::from_bits(u16::from_le_bytes(b))))
            }
            ElemType::F32 => HostData::F32(decode(bytes, f32::from_le_bytes)),
        }
    }
}

/// `bytes` as consecutive `N`-byte elements, each read by `from`.
fn decode<const N: usize, T>(bytes: &[u8], from: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| from(c.try_into().expect("chunks_exact gives N bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_every_type() {
        let cases = [
            HostData::I8(vec![-128, 0, 127]),
            HostData::I16(vec![-32768, 1, 32767]),
            HostData::I32(vec![i32::MIN, -1, i32::MAX]),
            HostData::Bf16(vec![bf16::from_f32(-1.5), bf16::from_f32(3.0e38)]),
            HostData::F32(vec![-0.25, 1.0e-30, f32::MAX]),
        ];
        for data in cases {
            let bytes = data.to_le_bytes();
            assert_eq!(bytes.len(), data.len() * data.elem().bytes());
            assert_eq!(HostData::from_le_bytes(data.elem(), &bytes), data);
        }
    }
}
