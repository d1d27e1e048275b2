//! Reader for CTranslate2's `model.bin`.
//!
//! Layout (little endian), as written by `ctranslate2/specs/model_spec.py` and read by
//! `src/models/model.cc`:
//!
//! ```text
//! u32 binary_version                      (1..=6)
//! [v>=2] string spec_name, u32 spec_revision
//! u32 variable_count
//! per variable: string name, u8 rank, u32 dims[rank],
//!               [v>=4] u8 dtype, u32 byte_count
//!               [v<4]  u8 item_size, u32 element_count
//!               bytes data
//! [v>=3] u32 alias_count, per alias: string alias, string target
//! ```
//! A string is a u16 length that counts a trailing NUL, then that many bytes.
//!
//! [`ModelBin::load`] reads the header fields and the small variables, and only records where
//! each large tensor lies: a tensor's bytes are read from the file when it is converted
//! (`Variable::to_f32`), so loading a network holds one tensor's bytes at a time rather than
//! the whole file (145 MB for whisper-base) on top of the network's own weights.
//! [`ModelBin::parse`] does the same over bytes already in memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::{bf16, f16};

/// Variables up to this size are read while parsing (scalars, biases, norms).
const EAGER_BYTES: usize = 64 * 1024;

/// Where a variable's bytes are.
enum Store {
    Memory(Vec<u8>),
    File { file: std::fs::File, path: PathBuf },
}

impl Store {
    fn len(&self) -> Result<usize, ModelError> {
        match self {
            Store::Memory(v) => Ok(v.len()),
            Store::File { file, path } => {
                file.metadata()
                    .map(|m| m.len() as usize)
                    .map_err(|source| ModelError::Io {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Bytes `range` (inside the store: callers check against [`Store::len`]).
    fn read(&self, range: Range<usize>) -> Result<Cow<'_, [u8]>, ModelError> {
        match self {
            Store::Memory(v) => Ok(Cow::Borrowed(&v[range])),
            Store::File { file, path } => {
                let mut buf = vec![0u8; range.len()];
                read_exact_at(file, &mut buf, range.start as u64).map_err(|source| {
                    ModelError::Io {
                        path: path.clone(),
                        source,
                    }
                })?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

use super::ModelError;

/// Newest binary version we understand (CTranslate2 3.x/4.x write 6).
pub const MAX_BINARY_VERSION: u32 = 6;

/// The scale CTranslate2 assumes for int16 weights saved without one (old models):
/// `ops::Quantize::global_int16_scale`.
const GLOBAL_INT16_SCALE: f32 = 1000.0;

/// Element type of a stored variable; discriminants are CTranslate2's `DataType` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32 = 0,
    I8 = 1,
    I16 = 2,
    I32 = 3,
    F16 = 4,
    BF16 = 5,
}

impl DType {
    /// The dtype with CTranslate2 id `id`, if any.
    pub fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Pre-v4 files only stored the item width; this is CTranslate2's own guess from it.
    fn from_item_size(size: u8) -> Option<DType> {
        Some(match size {
            4 => DType::F32,
            2 => DType::I16,
            1 => DType::I8,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    pub fn is_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        })
    }
}

/// One tensor of the model: its shape, element type and where its raw little-endian bytes
/// are (in memory, or a range of the model file read when needed).
#[derive(Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    store: Arc<Store>,
    range: Range<usize>,
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variable")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("bytes", &self.range.len())
            .finish()
    }
}

impl Variable {
    /// A variable owning `data` (used by tests and tools that build weights in memory).
    pub fn from_bytes(shape: Vec<usize>, dtype: DType, data: Vec<u8>) -> Variable {
        let len = data.len();
        Variable {
            shape,
            dtype,
            store: Arc::new(Store::Memory(data)),
            range: 0..len,
        }
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The raw little-endian bytes (read from the model file if they are not in memory).
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, ModelError> {
        self.store.read(self.range.clone())
    }

    /// The elements as f32: floats are upcast, integers converted by value (no scale).
    pub fn to_f32(&self) -> Result<Vec<f32>, ModelError> {
        let b = self.bytes()?;
        Ok(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => b.iter().map(|&x| x as i8 as f32).collect(),
            DType::I16 => b
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        })
    }

    /// The elements as i8 if this is an int8 variable (raw quantised values).
    pub fn to_i8(&self) -> Result<Option<Vec<i8>>, ModelError> {
        if self.dtype != DType::I8 {
            return Ok(None);
        }
        Ok(Some(self.bytes()?.iter().map(|&b| b as i8).collect()))
    }

    /// The value of a one-element integer variable (e.g. `encoder/num_heads`, an int16
    /// scalar); `None` if it is not a single integer.
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.numel() != 1 {
            return None;
        }
        // One element is at most 4 bytes: read while parsing, so in memory.
        let b = self.bytes().ok()?;
        match self.dtype {
            DType::I8 => Some(b[0] as i8 as i64),
            DType::I16 => Some(i16::from_le_bytes([b[0], b[1]]) as i64),
            DType::I32 => Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            _ => None,
        }
    }
}

/// A parsed `model.bin`.
#[derive(Debug, Clone)]
pub struct ModelBin {
    pub path: PathBuf,
    pub binary_version: u32,
    /// e.g. `WhisperSpec` (empty for version 1 files, which had none).
    pub spec_name: String,
    pub spec_revision: u32,
    /// Variable names in file order.
    names: Vec<String>,
    variables: HashMap<String, Variable>,
    /// alias -> stored variable it stands for (chains already followed).
    aliases: HashMap<String, String>,
}

impl ModelBin {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ModelBin, ModelError> {
        let file = std::fs::File::open(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let store = Store::File {
            file,
            path: path.to_path_buf(),
        };
        ModelBin::parse_store(path, store)
    }

    /// Parses the bytes of a model.bin; `path` is only used in messages.
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<ModelBin, ModelError> {
        ModelBin::parse_store(path, Store::Memory(data))
    }

    fn parse_store(path: &Path, store: Store) -> Result<ModelBin, ModelError> {
        let len = store.len()?;
        Parser {
            path,
            store: Arc::new(store),
            len,
            pos: 0,
        }
        .parse()
    }

    /// The variable called `name`, following aliases.
    pub fn get(&self, name: &str) -> Result<&Variable, ModelError> {
        self.lookup(name)
            .ok_or_else(|| ModelError::MissingVariable {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// Drops every variable's bytes (the file's contents), keeping the names: once a network
    /// holds its weights in its own form, the file need not stay in memory. Later lookups
    /// find nothing.
    pub fn release_tensors(&mut self) {
        self.variables.clear();
        self.aliases.clear();
    }

    /// Like [`get`](Self::get) but `None` when absent.
    pub fn lookup(&self, name: &str) -> Option<&Variable> {
        let target = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.variables.get(target)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// Stored variable names in file order (aliases not included).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Number of stored variables (aliases not included).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `(alias, target)` pairs.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// The value of an integer scalar variable such as `encoder/num_heads`.
    pub fn scalar_i64(&self, name: &str) -> Result<i64, ModelError> {
        let var = self.get(name)?;
        var.scalar_i64()
            .ok_or_else(|| ModelError::NotIntegerScalar {
                path: self.path.clone(),
                name: name.to_string(),
                shape: var.shape.clone(),
                dtype: var.dtype,
            })
    }

    /// Checks that `name` has shape `expected` and returns the variable.
    pub fn get_shaped(&self, name: &str, expected: &[usize]) -> Result<&Variable, ModelError> {
        let var = self.get(name)?;
        if var.shape != expected {
            return Err(ModelError::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: var.shape.clone(),
            });
        }
        Ok(var)
    }

    /// The weight `name` as f32 after checking its shape. Float weights are upcast;
    /// int8/int16 weights are dequantised with CTranslate2's scale `<name>_scale`
    /// (value = q / scale[row], one scale per output row, or one for the whole tensor).
    pub fn weight_f32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let var = self.get_shaped(name, expected_shape)?;
        if !matches!(var.dtype, DType::I8 | DType::I16) {
            return var.to_f32();
        }
        let scale_name = format!("{name}_scale");
        let scales = match self.lookup(&scale_name) {
            Some(s) => s.to_f32()?,
            // Old int16 models were saved without a scale; CTranslate2 then uses a global one.
            None if var.dtype == DType::I16 => vec![GLOBAL_INT16_SCALE],
            None => {
                return Err(ModelError::MissingVariable {
                    path: self.path.clone(),
                    name: scale_name,
                });
            }
        };
        let rows = var.shape.first().copied().unwrap_or(1);
        let numel = var.numel();
        let per_row = if scales.len() == 1 {
            None
        } else if scales.len() == rows && rows > 0 {
            Some(numel / rows)
        } else {
            return Err(ModelError::BadScale {
                path: self.path.clone(),
                name: scale_name,
                count: scales.len(),
                rows,
            });
        };
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s != 0.0)) {
            return Err(ModelError::BadScaleValue {
                path: self.path.clone(),
                name: scale_name,
                value: *bad,
            });
        }
        let mut values = var.to_f32()?;
        match per_row {
            None => values.iter_mut().for_each(|v| *v /= scales[0]),
            Some(row_len) if row_len > 0 => {
                for (row, chunk) in values.chunks_mut(row_len).enumerate() {
                    let s = scales[row];
                    chunk.iter_mut().for_each(|v| *v /= s);
                }
            }
            Some(_) => {}
        }
        Ok(values)
    }
}

/// Cursor over the file; every read checks the remaining length first so a corrupt header
/// can neither panic nor make us allocate more than the file holds.
struct Parser<'a> {
    path: &'a Path,
    store: Arc<Store>,
    len: usize,
    pos: usize,
}

impl Parser<'_> {
    fn remaining(&self) -> usize {
        self.len - self.pos
    }

    /// The next `n` bytes.
    fn bytes(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<Vec<u8>, ModelError> {
        let r = self.take(n, what)?;
        Ok(self.store.read(r)?.into_owned())
    }

    fn take(
        &mut self,
        n: usize,
        what: impl FnOnce() -> String,
    ) -> Result<Range<usize>, ModelError> {
        if n > self.remaining() {
            return Err(ModelError::Truncated {
                path: self.path.to_path_buf(),
                what: what(),
                needed: n,
                remaining: self.remaining(),
                offset: self.pos,
            });
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.bytes(1, || what.to_string())?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        let b = self.bytes(2, || what.to_string())?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.bytes(4, || what.to_string())?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let offset = self.pos;
        let len = self.u16(what)? as usize;
        let bytes = self.bytes(len, || what.to_string())?;
        // The length counts a terminating NUL; CTranslate2 reads up to it.
        let Some((&0, text)) = bytes.split_last() else {
            return Err(ModelError::BadString {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                offset,
            });
        };
        std::str::from_utf8(text)
            .ok()
            .filter(|s| !s.contains('\0'))
            .map(str::to_string)
            .ok_or_else(|| ModelError::BadString {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                offset,
            })
    }

    fn parse(mut self) -> Result<ModelBin, ModelError> {
        let path = self.path.to_path_buf();
        let binary_version = self.u32("binary version")?;
        if !(1..=MAX_BINARY_VERSION).contains(&binary_version) {
            return Err(ModelError::BadVersion {
                path,
                version: binary_version,
            });
        }
        let (spec_name, spec_revision) = if binary_version >= 2 {
            (self.string("spec name")?, self.u32("spec revision")?)
        } else {
            (String::new(), 1)
        };
        let count = self.u32("variable count")?;
        let mut names = Vec::new();
        let mut variables = HashMap::new();
        for index in 0..count {
            let name = self.string(&format!("name of variable #{index}"))?;
            let var = self.variable(binary_version, &name)?;
            if variables.insert(name.clone(), var).is_some() {
                return Err(ModelError::DuplicateVariable { path, name });
            }
            names.push(name);
        }
        let mut aliases = HashMap::new();
        if binary_version >= 3 {
            let n = self.u32("alias count")?;
            for index in 0..n {
                let alias = self.string(&format!("alias #{index}"))?;
                let target = self.string(&format!("target of alias {alias}"))?;
                // Aliases may point at earlier aliases; store the final stored variable.
                let resolved = aliases.get(&target).cloned().unwrap_or(target.clone());
                if !variables.contains_key(&resolved) {
                    return Err(ModelError::DanglingAlias {
                        path,
                        alias,
                        target,
                    });
                }
                if variables.contains_key(&alias) {
                    return Err(ModelError::DuplicateVariable { path, name: alias });
                }
                // CTranslate2 also aliases the quantisation scale of the target.
                let scale = format!("{resolved}_scale");
                if variables.contains_key(&scale) {
                    aliases.insert(format!("{alias}_scale"), scale);
                }
                aliases.insert(alias, resolved);
            }
        }
        if self.remaining() != 0 {
            return Err(ModelError::TrailingBytes {
                path,
                count: self.remaining(),
                offset: self.pos,
            });
        }
        Ok(ModelBin {
            path,
            binary_version,
            spec_name,
            spec_revision,
            names,
            variables,
            aliases,
        })
    }

    fn variable(&mut self, binary_version: u32, name: &str) -> Result<Variable, ModelError> {
        let path = self.path.to_path_buf();
        let rank = self.u8(&format!("rank of variable {name}"))? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(self.u32(&format!("shape of variable {name}"))? as usize);
        }
        let (dtype, byte_count) = if binary_version >= 4 {
            let id = self.u8(&format!("dtype of variable {name}"))?;
            let dtype = DType::from_id(id).ok_or_else(|| ModelError::UnknownDType {
                path: path.clone(),
                name: name.to_string(),
                id,
            })?;
            (
                dtype,
                self.u32(&format!("byte count of variable {name}"))? as usize,
            )
        } else {
            let size = self.u8(&format!("item size of variable {name}"))?;
            let dtype = DType::from_item_size(size).ok_or_else(|| ModelError::UnknownItemSize {
                path: path.clone(),
                name: name.to_string(),
                size,
            })?;
            let elements = self.u32(&format!("element count of variable {name}"))? as usize;
            (dtype, elements * size as usize)
        };
        // u64 so that a hostile shape cannot overflow before we compare.
        let expected = shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
        if expected != Some(byte_count as u64) {
            return Err(ModelError::ByteCountMismatch {
                path,
                name: name.to_string(),
                shape,
                dtype,
                expected: expected.unwrap_or(u64::MAX),
                found: byte_count as u64,
            });
        }
        let range = self.take(byte_count, || format!("variable {name}"))?;
        if byte_count <= EAGER_BYTES && matches!(*self.store, Store::File { .. }) {
            let data = self.store.read(range)?.into_owned();
            return Ok(Variable::from_bytes(shape, dtype, data));
        }
        Ok(Variable {
            shape,
            dtype,
            store: Arc::clone(&self.store),
            range,
        })
    }
}
