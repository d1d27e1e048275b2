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

    /// The elements as little-endian bytes, the layout the JIT-compiled cores read: on a
    /// little-endian host that is the vector's own memory, borrowed.
    pub(crate) fn as_le_bytes(&self) -> &[u8] {
        fn view<T>(v: &[T]) -> &[u8] {
            // SAFETY: every element type here is plain data without padding (i8, i16, i32,
            // bf16 = repr(transparent) u16, f32), so its memory is `size_of_val` valid bytes.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        }
        match self {
            HostData::I8(v) => view(v),
            HostData::I16(v) => view(v),
            HostData::I32(v) => view(v),
            HostData::Bf16(v) => view(v),
            HostData::F32(v) => view(v),
        }
    }

    /// [`HostData::as_le_bytes`], writable: a drained buffer is filled in place, so a launch's
    /// output moves out of the run without a byte copy.
    pub(crate) fn as_le_bytes_mut(&mut self) -> &mut [u8] {
        fn view_mut<T>(v: &mut [T]) -> &mut [u8] {
            // SAFETY: as in `as_le_bytes`; every bit pattern is a valid value of these types.
            unsafe {
                std::slice::from_raw_parts_mut(
                    v.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(v),
                )
            }
        }
        match self {
            HostData::I8(v) => view_mut(v),
            HostData::I16(v) => view_mut(v),
            HostData::I32(v) => view_mut(v),
            HostData::Bf16(v) => view_mut(v),
            HostData::F32(v) => view_mut(v),
        }
    }

    /// Little-endian bytes, copied ([`HostData::as_le_bytes`]).
    #[cfg(test)]
    pub(crate) fn to_le_bytes(&self) -> Vec<u8> {
        self.as_le_bytes().to_vec()
    }

    /// Inverse of [`HostData::as_le_bytes`]; `bytes.len()` must be a multiple of the element
    /// size.
    pub(crate) fn from_le_bytes(elem: ElemType, bytes: &[u8]) -> Self {
        let mut data = HostData::zeros(elem, bytes.len() / elem.bytes());
        let dst = data.as_le_bytes_mut();
        let n = dst.len();
        dst.copy_from_slice(&bytes[..n]);
        data
    }
}

// The byte views above are the little-endian layout only on a little-endian host.
#[cfg(not(target_endian = "little"))]
compile_error!("the simulator's host buffers assume a little-endian host");

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
