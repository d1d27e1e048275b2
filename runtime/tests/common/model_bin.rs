//! A tiny model.bin writer, written from the format description (not from our reader), for
//! the synthetic model files of the model tests.

pub struct Var {
    pub name: String,
    pub shape: Vec<u32>,
    pub dtype: u8,
    pub data: Vec<u8>,
}

pub fn var(name: &str, shape: &[u32], dtype: u8, data: Vec<u8>) -> Var {
    Var {
        name: name.to_string(),
        shape: shape.to_vec(),
        dtype,
        data,
    }
}

/// A CTranslate2 string: u16 length (with the NUL), bytes, NUL.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Writes a model.bin of `version` (v4+ layout: dtype id + byte count; v1-3: item size +
/// element count). Aliases are written for v3+.
pub fn write_bin(version: u32, vars: &[Var], aliases: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_le_bytes());
    if version >= 2 {
        put_str(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
    }
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for v in vars {
        put_str(&mut out, &v.name);
        out.push(v.shape.len() as u8);
        for d in &v.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        if version >= 4 {
            out.push(v.dtype);
            out.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
        } else {
            let item = [4u8, 1, 2, 4, 2, 2][v.dtype as usize];
            out.push(item);
            out.extend_from_slice(&((v.data.len() / item as usize) as u32).to_le_bytes());
        }
        out.extend_from_slice(&v.data);
    }
    if version >= 3 {
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            put_str(&mut out, a);
            put_str(&mut out, t);
        }
    }
    out
}

pub fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn le_u16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One variable of every dtype, with bit patterns written by hand so the expected values
/// do not come from the `half` crate the reader uses.
pub fn all_dtypes() -> Vec<Var> {
    vec![
        var("f32", &[3], 0, le_f32(&[1.5, -0.25, 1e-3])),
        var("i8", &[2, 2], 1, vec![0x7f, 0x80, 0xff, 0x05]),
        var("i16", &[2], 2, le_u16(&[0x7fff, 0x8000])),
        var(
            "i32",
            &[2],
            3,
            [-7i32, 123456]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        // f16: 1.5 = 0x3E00, -2.25 = 0xC080, 65504 = 0x7BFF, 2^-24 = 0x0001 (subnormal)
        var("f16", &[4], 4, le_u16(&[0x3E00, 0xC080, 0x7BFF, 0x0001])),
        // bf16: 1.0 = 0x3F80, -3.0 = 0xC040, 2^100 = 0x7180
        var("bf16", &[3], 5, le_u16(&[0x3F80, 0xC040, 0x7180])),
        var("num_heads", &[], 2, le_u16(&[8])),
    ]
}
