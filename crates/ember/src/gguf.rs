//! GGUF files (llama.cpp's model format, versions 2 and 3): the metadata, the tensor table and
//! each tensor's bytes.
//!
//! A file is a header (magic `GGUF`, version, tensor and metadata counts), the metadata as
//! typed key–value pairs, one record per tensor (name, dimensions, element type, offset), then,
//! from the next multiple of `general.alignment` (32 unless the file says otherwise), the
//! tensors' data. Every count, length, dimension and offset is checked against the file's
//! size before anything is allocated, so a truncated or hostile file is an error naming the
//! file and the field, never a panic; what is allocated stays within a small multiple of the
//! file's size (at most 8 bytes per byte of an array of 1-byte integers).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tensor::quant::QuantType;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays of arrays are legal; deeper than this is not a model file.
const MAX_NESTING: usize = 4;
/// ggml tensors have at most 4 dimensions.
const MAX_DIMS: usize = 4;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// A metadata array, stored by element type so that a long array costs what the file does.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Bools(Vec<bool>),
    Strings(Vec<String>),
    Arrays(Vec<Array>),
}

impl Value {
    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        }
    }
}

/// One tensor's record: its name, dimensions (ggml's order: the first is the length of a
/// row), element type and where its bytes are.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<usize>,
    pub kind: QuantType,
    /// Offset of the tensor's bytes from the start of the file.
    pub offset: u64,
    /// Size of the tensor's bytes.
    pub size: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A GGUF file's header: its metadata and tensor table. Tensor bytes are read on demand.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Where the tensor data starts.
    pub data_start: u64,
    /// The file's size.
    pub len: u64,
}

impl Gguf {
    /// Reads the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<(Gguf, File)> {
        let (file, len) = crate::read::open(path)?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let gguf = Gguf::parse(&mut reader, len, path)?;
        Ok((gguf, reader.into_inner()))
    }

    /// Reads a GGUF header from `reader`, a file of `len` bytes positioned at its start;
    /// `path` names it in errors.
    pub fn parse(reader: &mut impl Read, len: u64, path: &Path) -> Result<Gguf> {
        let mut r = Reader {
            inner: reader,
            pos: 0,
            len,
            path,
        };
        let magic = r.bytes(4, "the magic number")?;
        if magic != MAGIC {
            return Err(r.error(format!(
                "not a GGUF file (it starts with {:?}, a GGUF file with \"GGUF\")",
                String::from_utf8_lossy(&magic)
            )));
        }
        let version = r.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(r.error(format!(
                "GGUF version {version} is not supported (this Ember reads versions 2 and 3)"
            )));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata count")?;
        // Each metadata pair takes at least 13 bytes (key length, type, one byte of value),
        // each tensor record at least 24: counts beyond what the file can hold are lies.
        r.check_count(kv_count, 13, "the metadata count")?;
        r.check_count(tensor_count, 24, "the tensor count")?;

        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut keys = std::collections::HashSet::new();
        for i in 0..kv_count {
            let key = r.string(&format!("the key of metadata entry {i}"))?;
            let kind = r.u32(&format!("the type of '{key}'"))?;
            let value = r.value(kind, &key, 0)?;
            if !keys.insert(key.clone()) {
                return Err(r.error(format!("metadata key '{key}' appears twice")));
            }
            metadata.push((key, value));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(r.error(format!(
                        "general.alignment is {v:?}, not a power of two up to 1 MiB"
                    )))
                }
            },
        };

        let mut records = Vec::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let name = r.string(&format!("the name of tensor {i}"))?;
            let n_dims = r.u32(&format!("the dimension count of tensor '{name}'"))? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(r.error(format!(
                    "tensor '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} are possible)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for d in 0..n_dims {
                let dim = r.u64(&format!("dimension {d} of tensor '{name}'"))?;
                dims.push(dim);
            }
            let type_id = r.u32(&format!("the type of tensor '{name}'"))?;
            let offset = r.u64(&format!("the offset of tensor '{name}'"))?;
            records.push((name, dims, type_id, offset));
        }
        let data_start = r.pos.div_ceil(alignment) * alignment;
        if data_start > len {
            return Err(r.error(format!(
                "the tensor data would start at byte {data_start}, past the end of the file ({len} bytes)"
            )));
        }

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(records.len());
        let mut names = std::collections::HashSet::new();
        for (name, dims, type_id, offset) in records {
            let bad = |m: String| Error::data(path, format!("tensor '{name}': {m}"));
            let kind = QuantType::from_ggml(type_id).ok_or_else(|| {
                bad(format!(
                    "element type {} is not supported",
                    type_name(type_id)
                ))
            })?;
            let mut elements: u64 = 1;
            for &d in &dims {
                if d == 0 {
                    return Err(bad(format!("dimensions {dims:?} include 0")));
                }
                elements = elements
                    .checked_mul(d)
                    .filter(|&e| e <= len.saturating_mul(8))
                    .ok_or_else(|| bad(format!("dimensions {dims:?} are larger than the file")))?;
            }
            let block = kind.block_len() as u64;
            if dims[0] % block != 0 {
                return Err(bad(format!(
                    "its rows of {} elements are not whole {kind} blocks of {block}",
                    dims[0]
                )));
            }
            let size = elements / block * kind.block_bytes() as u64;
            if offset % alignment != 0 {
                return Err(bad(format!(
                    "its offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            let start = data_start
                .checked_add(offset)
                .ok_or_else(|| bad(format!("its offset {offset} is past the end of the file")))?;
            if start.checked_add(size).is_none_or(|end| end > len) {
                return Err(bad(format!(
                    "its {size} bytes at offset {offset} run past the end of the file ({} bytes of data)",
                    len - data_start
                )));
            }
            if !names.insert(name.clone()) {
                return Err(bad("the name appears twice".into()));
            }
            tensors.push(TensorInfo {
                dims: dims.iter().map(|&d| d as usize).collect(),
                name,
                kind,
                offset: start,
                size: size as usize,
            });
        }
        // Each tensor its own bytes: a record whose type was changed (Q8_0 to F16, say) can
        // keep its offset and reach into its neighbour's data.
        let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
        by_offset.sort_by_key(|t| t.offset);
        for pair in by_offset.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.offset + a.size as u64 > b.offset {
                return Err(Error::data(
                    path,
                    format!(
                        "tensor '{}': its {} bytes at offset {} overlap tensor '{}' at offset {}",
                        a.name,
                        a.size,
                        a.offset - data_start,
                        b.name,
                        b.offset - data_start
                    ),
                ));
            }
        }
        Ok(Gguf {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_start,
            len,
        })
    }

    /// The value of metadata `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn missing(&self, key: &str, what: &str) -> Error {
        match self.get(key) {
            None => Error::data(&self.path, format!("metadata '{key}' is missing")),
            Some(v) => Error::data(
                &self.path,
                format!("metadata '{key}' is a {}, not {what}", v.type_name()),
            ),
        }
    }

    /// Metadata `key` as an unsigned integer; an error naming the key when absent or not one.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.missing(key, "an integer"))
    }

    /// Metadata `key` as a number.
    pub fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| self.missing(key, "a number"))
    }

    /// Metadata `key` as text.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| self.missing(key, "a string"))
    }

    /// Metadata `key` as an array.
    pub fn array(&self, key: &str) -> Result<&Array> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(self.missing(key, "an array")),
        }
    }

    /// The record of tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of `tensor`, read from `source` (the file this header came from).
    pub fn read_tensor(
        &self,
        source: &mut (impl Read + Seek),
        tensor: &TensorInfo,
    ) -> Result<Vec<u8>> {
        let io = |e| Error::io(&self.path, e);
        source.seek(SeekFrom::Start(tensor.offset)).map_err(io)?;
        let mut bytes = vec![0u8; tensor.size];
        source.read_exact(&mut bytes).map_err(|e| {
            Error::data(
                &self.path,
                format!(
                    "tensor '{}': cannot read its {} bytes: {e}",
                    tensor.name, tensor.size
                ),
            )
        })?;
        Ok(bytes)
    }
}

/// The name of ggml type `id`, for errors about types Ember does not read.
fn type_name(id: u32) -> String {
    let known = [
        (6, "Q5_0"),
        (7, "Q5_1"),
        (9, "Q8_1"),
        (10, "Q2_K"),
        (11, "Q3_K"),
        (13, "Q5_K"),
        (15, "Q8_K"),
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (20, "IQ4_NL"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (23, "IQ4_XS"),
        (29, "IQ1_M"),
        (34, "TQ1_0"),
        (35, "TQ2_0"),
    ];
    match known.iter().find(|(k, _)| *k == id) {
        Some((_, name)) => format!(
            "{name} (ggml type {id}); Ember reads F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K"
        ),
        None => format!("{id}, which is not a ggml type"),
    }
}

/// A bounded reader: every length is checked against what is left of the file.
struct Reader<'a, R> {
    inner: &'a mut R,
    pos: u64,
    len: u64,
    path: &'a Path,
}

impl<R: Read> Reader<'_, R> {
    fn error(&self, message: String) -> Error {
        Error::data(self.path, message)
    }

    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<()> {
        if count > self.left() / min_bytes {
            return Err(self.error(format!(
                "{what} is {count}, more than the {} bytes left in the file can hold",
                self.left()
            )));
        }
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.left() {
            return Err(self.error(format!(
                "the file ends inside {what} (at byte {}, {n} bytes needed, {} left)",
                self.pos,
                self.left()
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| self.error(format!("cannot read {what} at byte {}: {e}", self.pos)))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.bytes(N as u64, what)?;
        Ok(b.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        let bytes = self.bytes(n, what)?;
        String::from_utf8(bytes).map_err(|_| self.error(format!("{what} is not UTF-8")))
    }

    fn value(&mut self, kind: u32, key: &str, depth: usize) -> Result<Value> {
        Ok(match kind {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match self.array::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.error(format!("'{key}' is a bool of value {b}"))),
            },
            8 => Value::String(self.string(&format!("the value of '{key}'"))?),
            9 => Value::Array(self.array_value(key, depth)?),
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(self.error(format!(
                    "metadata '{key}' has type {other}, which is not a GGUF type"
                )))
            }
        })
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array> {
        if depth >= MAX_NESTING {
            return Err(self.error(format!(
                "metadata '{key}' nests arrays more than {MAX_NESTING} deep"
            )));
        }
        let kind = self.u32(&format!("the element type of '{key}'"))?;
        let count = self.u64(&format!("the length of '{key}'"))?;
        let min_bytes = match kind {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            other => {
                return Err(self.error(format!(
                    "metadata '{key}' is an array of type {other}, which is not a GGUF type"
                )))
            }
        };
        self.check_count(count, min_bytes, &format!("the length of '{key}'"))?;
        let n = count as usize;
        let item = |i: usize| format!("{key}[{i}]");
        Ok(match kind {
            8 => Array::Strings(
                (0..n)
                    .map(|i| self.string(&item(i)))
                    .collect::<Result<_>>()?,
            ),
            9 => Array::Arrays(
                (0..n)
                    .map(|i| self.array_value(&item(i), depth + 1))
                    .collect::<Result<_>>()?,
            ),
            7 => Array::Bools(
                (0..n)
                    .map(|i| match self.value(7, &item(i), depth)? {
                        Value::Bool(b) => Ok(b),
                        _ => unreachable!("type 7 reads a bool"),
                    })
                    .collect::<Result<_>>()?,
            ),
            6 | 12 => Array::Floats(
                (0..n)
                    .map(|i| {
                        Ok(self
                            .value(kind, &item(i), depth)?
                            .as_f64()
                            .expect("a float"))
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => Array::Ints(
                (0..n)
                    .map(|i| {
                        Ok(match self.value(kind, &item(i), depth)? {
                            Value::U8(v) => v.into(),
                            Value::I8(v) => v.into(),
                            Value::U16(v) => v.into(),
                            Value::I16(v) => v.into(),
                            Value::U32(v) => v.into(),
                            Value::I32(v) => v.into(),
                            Value::U64(v) => v as i64,
                            Value::I64(v) => v,
                            _ => unreachable!("an integer type"),
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// Builds GGUF bytes: metadata pairs as (key, type, value bytes) and tensors as
    /// (name, dims, type, data).
    pub(crate) struct Builder {
        pub version: u32,
        pub kv: Vec<(String, u32, Vec<u8>)>,
        pub tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    pub(crate) fn gguf_string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }

    impl Builder {
        pub fn new() -> Self {
            Builder {
                version: 3,
                kv: Vec::new(),
                tensors: Vec::new(),
            }
        }

        pub fn kv_u32(mut self, key: &str, v: u32) -> Self {
            self.kv.push((key.into(), 4, v.to_le_bytes().to_vec()));
            self
        }

        pub fn kv_f32(mut self, key: &str, v: f32) -> Self {
            self.kv.push((key.into(), 6, v.to_le_bytes().to_vec()));
            self
        }

        pub fn kv_str(mut self, key: &str, v: &str) -> Self {
            self.kv.push((key.into(), 8, gguf_string(v)));
            self
        }

        pub fn kv_strings(mut self, key: &str, v: &[&str]) -> Self {
            let mut b = 8u32.to_le_bytes().to_vec();
            b.extend((v.len() as u64).to_le_bytes());
            for s in v {
                b.extend(gguf_string(s));
            }
            self.kv.push((key.into(), 9, b));
            self
        }

        pub fn kv_i32s(mut self, key: &str, v: &[i32]) -> Self {
            let mut b = 5u32.to_le_bytes().to_vec();
            b.extend((v.len() as u64).to_le_bytes());
            for x in v {
                b.extend(x.to_le_bytes());
            }
            self.kv.push((key.into(), 9, b));
            self
        }

        pub fn tensor_f32(mut self, name: &str, dims: &[u64], values: &[f32]) -> Self {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.tensors.push((name.into(), dims.to_vec(), 0, data));
            self
        }

        pub fn bytes(&self) -> Vec<u8> {
            let mut b = MAGIC.to_vec();
            b.extend(self.version.to_le_bytes());
            b.extend((self.tensors.len() as u64).to_le_bytes());
            b.extend((self.kv.len() as u64).to_le_bytes());
            for (k, t, v) in &self.kv {
                b.extend(gguf_string(k));
                b.extend(t.to_le_bytes());
                b.extend(v);
            }
            let mut offset = 0u64;
            let mut offsets = Vec::new();
            for (name, dims, t, data) in &self.tensors {
                b.extend(gguf_string(name));
                b.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    b.extend(d.to_le_bytes());
                }
                b.extend(t.to_le_bytes());
                b.extend(offset.to_le_bytes());
                offsets.push(offset);
                offset += (data.len() as u64).div_ceil(32) * 32;
            }
            while !b.len().is_multiple_of(32) {
                b.push(0);
            }
            let start = b.len();
            for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
                b.resize(start + off as usize, 0);
                b.extend(data);
            }
            b
        }
    }

    fn parse(bytes: &[u8]) -> Result<Gguf> {
        Gguf::parse(
            &mut Cursor::new(bytes),
            bytes.len() as u64,
            Path::new("m.gguf"),
        )
    }

    fn error(bytes: &[u8]) -> String {
        parse(bytes).expect_err("must fail").to_string()
    }

    fn sample() -> Builder {
        Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.block_count", 2)
            .kv_f32("llama.rope.freq_base", 10000.0)
            .kv_strings("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .kv_i32s("tokenizer.ggml.token_type", &[1, 1, 3])
            .tensor_f32("w", &[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.])
            .tensor_f32("norm", &[4], &[0.5; 4])
    }

    #[test]
    fn reads_metadata_tensors_and_their_bytes() {
        let bytes = sample().bytes();
        let g = parse(&bytes).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.str("general.architecture").unwrap(), "llama");
        assert_eq!(g.u64("llama.block_count").unwrap(), 2);
        assert_eq!(g.f64("llama.rope.freq_base").unwrap(), 10000.0);
        assert_eq!(
            g.array("tokenizer.ggml.tokens").unwrap(),
            &Array::Strings(vec!["a".into(), "b".into(), "ab".into()])
        );
        assert_eq!(
            g.array("tokenizer.ggml.token_type").unwrap(),
            &Array::Ints(vec![1, 1, 3])
        );
        let w = g.tensor("w").unwrap().clone();
        assert_eq!(
            (w.dims.clone(), w.kind, w.size),
            (vec![4, 2], QuantType::F32, 32)
        );
        let data = g.read_tensor(&mut Cursor::new(&bytes), &w).unwrap();
        assert_eq!(&data[..8], &[0, 0, 128, 63, 0, 0, 0, 64]);
        let norm = g.tensor("norm").unwrap();
        assert_eq!(norm.offset, g.data_start + 32, "aligned to 32 bytes");
        let e = g.u64("general.architecture").unwrap_err().to_string();
        assert_eq!(
            e,
            "m.gguf: metadata 'general.architecture' is a string, not an integer"
        );
        assert_eq!(
            g.f64("absent").unwrap_err().to_string(),
            "m.gguf: metadata 'absent' is missing"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().bytes();
        for cut in 0..bytes.len() - 1 {
            // The last tensor's bytes end the file; any cut shortens something.
            let e = error(&bytes[..cut]);
            assert!(e.starts_with("m.gguf: "), "{cut}: {e}");
        }
    }

    #[test]
    fn hostile_headers_are_clear_errors() {
        assert!(error(b"GGML\x03\0\0\0").contains("not a GGUF file"));
        let mut b = sample();
        b.version = 1;
        assert!(error(&b.bytes()).contains("GGUF version 1 is not supported"));
        // Counts far beyond the file.
        let mut bytes = sample().bytes();
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error(&bytes).contains("the tensor count is 18446744073709551615, more than"));
        let mut bytes = sample().bytes();
        bytes[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(error(&bytes).contains("the metadata count is 1099511627776"));
        // A string claiming a huge length.
        let mut bytes = sample().bytes();
        bytes[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(error(&bytes).contains("the file ends inside the key of metadata entry 0"));
        // An array claiming a billion elements.
        let mut b = Builder::new();
        let mut arr = 4u32.to_le_bytes().to_vec();
        arr.extend(1_000_000_000u64.to_le_bytes());
        b.kv.push(("big".into(), 9, arr));
        assert!(error(&b.bytes()).contains("the length of 'big' is 1000000000"));
        // Arrays nested without end.
        let mut nested = Vec::new();
        for _ in 0..10 {
            nested.extend(9u32.to_le_bytes());
            nested.extend(1u64.to_le_bytes());
        }
        nested.extend(vec![0u8; 64]);
        let mut b = Builder::new();
        b.kv.push(("deep".into(), 9, nested));
        assert!(error(&b.bytes()).contains("nests arrays more than 4 deep"));
        let mut b = Builder::new();
        b.kv.push(("odd".into(), 99, vec![0; 8]));
        assert!(error(&b.bytes()).contains("metadata 'odd' has type 99"));
    }

    #[test]
    fn hostile_tensor_records_are_clear_errors() {
        type Record = (String, Vec<u64>, u32, Vec<u8>);
        let with = |edit: &dyn Fn(&mut Record)| {
            let mut b = sample();
            edit(&mut b.tensors[0]);
            error(&b.bytes())
        };
        assert!(with(&|t| t.1 = vec![1 << 40, 1 << 40]).contains("tensor 'w': dimensions"));
        assert!(with(&|t| t.1 = vec![4, 0]).contains("include 0"));
        assert!(with(&|t| t.1 = vec![4, 4, 4, 4, 4]).contains("has 5 dimensions"));
        assert!(with(&|t| t.1 = vec![4, 200]).contains("run past the end of the file"));
        let e = with(&|t| t.2 = 13);
        assert!(e.contains("element type Q5_K (ggml type 13)"), "{e}");
        assert!(with(&|t| t.2 = 1000).contains("1000, which is not a ggml type"));
        // Q8_0 rows must be whole 32-element blocks.
        assert!(with(&|t| t.2 = 8).contains("rows of 4 elements are not whole Q8_0 blocks"));
        let mut b = sample();
        b.tensors[1].0 = "w".into();
        assert!(error(&b.bytes()).contains("the name appears twice"));
        // An offset that is not aligned, or past the end.
        let mut b = sample().bytes();
        let pos = find(&b, b"norm") + 4 + 4 + 8 + 4;
        b[pos..pos + 8].copy_from_slice(&7u64.to_le_bytes());
        assert!(error(&b).contains("offset 7 is not a multiple of the alignment 32"));
        b[pos..pos + 8].copy_from_slice(&(u64::MAX - 31).to_le_bytes());
        assert!(error(&b).contains("is past the end of the file"));
        // Two tensors sharing bytes.
        b[pos..pos + 8].copy_from_slice(&0u64.to_le_bytes());
        let e = error(&b);
        assert!(e.contains("overlap tensor"), "{e}");
    }

    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }
}
