//! IDX files (the MNIST format), plain or gzip-compressed, of any element type and rank.
//!
//! Layout: two zero bytes, a type code, the number of dimensions, each dimension as a
//! big-endian u32, then the values, big-endian.

use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Largest buffer reserved up front: a corrupt header must not make us allocate terabytes.
const MAX_RESERVE: usize = 1 << 26;

/// Reads an IDX file into an `f32` tensor with the file's dimensions. Files whose first bytes
/// are the gzip magic number are decompressed on the fly.
///
/// Errors name the file: bad magic number, unknown type code, truncated header or data,
/// trailing bytes, corrupt compression.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    // Streamed, not read whole: what it allocates is bounded by MAX_VALUES instead.
    let (mut file, _) = crate::read::open(path)?;
    let mut magic = [0u8; 2];
    let gzip = match file.read_exact(&mut magic) {
        Ok(()) => magic == [0x1f, 0x8b],
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            return Err(Error::data(
                path,
                "not an IDX file: shorter than its 4-byte magic number",
            ))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::new(file))
    };
    read_idx_from(reader, path)
}

/// [`read_idx`] on a file's bytes, plain or gzip-compressed; `path` names it in errors.
pub fn read_idx_bytes(bytes: &[u8], path: &Path) -> Result<Tensor> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_idx_from(BufReader::new(MultiGzDecoder::new(bytes)), path)
    } else {
        read_idx_from(bytes, path)
    }
}

/// The most values one IDX file may hold: 2^28 (1 GiB as f32; MNIST's training images are
/// 47 million, EMNIST's 88 million).
pub const MAX_VALUES: usize = 1 << 28;

/// Reads IDX data from any reader; `path` is only used in error messages.
pub fn read_idx_from(mut reader: impl Read, path: &Path) -> Result<Tensor> {
    let read_err = |e: std::io::Error, what: &str| match e.kind() {
        ErrorKind::UnexpectedEof => Error::data(path, format!("truncated {what}")),
        ErrorKind::InvalidData | ErrorKind::InvalidInput => {
            Error::data(path, format!("corrupt compressed data in {what}: {e}"))
        }
        _ => Error::io(path, e),
    };
    let mut header = [0u8; 4];
    reader
        .read_exact(&mut header)
        .map_err(|e| read_err(e, "magic number"))?;
    if header[0] != 0 || header[1] != 0 {
        return Err(Error::data(
            path,
            format!(
                "bad magic number {:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
                header[0], header[1], header[2], header[3]
            ),
        ));
    }
    let element = ElementType::from_code(header[2]).ok_or_else(|| {
        Error::data(
            path,
            format!("unknown IDX element type code 0x{:02x}", header[2]),
        )
    })?;
    let rank = header[3] as usize;
    if rank == 0 {
        return Err(Error::data(path, "IDX header declares zero dimensions"));
    }
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        let mut d = [0u8; 4];
        reader
            .read_exact(&mut d)
            .map_err(|e| read_err(e, "header (dimensions)"))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::data(path, format!("dimensions {dims:?} overflow")))?;
    // A small compressed file can declare (and hold) billions of zeros: refuse what no data
    // set here needs before decompressing it.
    if count > MAX_VALUES {
        return Err(Error::data(
            path,
            format!(
                "dimensions {dims:?} declare {count} values, more than Ember reads from one \
                 IDX file ({MAX_VALUES})"
            ),
        ));
    }

    let size = element.size();
    let mut values = Vec::with_capacity(count.min(MAX_RESERVE));
    let mut chunk = vec![0u8; 1 << 16];
    let mut carry = 0; // bytes of a value split across chunks, kept at the start of `chunk`
    while values.len() < count {
        let want = (count - values.len())
            .saturating_mul(size)
            .min(chunk.len() - carry);
        let n = match reader.read(&mut chunk[carry..carry + want]) {
            Ok(0) => {
                return Err(Error::data(
                    path,
                    format!(
                    "truncated data: dimensions {dims:?} need {count} values, the file holds {}",
                    values.len()
                ),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e, "data")),
        };
        let available = carry + n;
        let whole = available / size * size;
        values.extend(chunk[..whole].chunks_exact(size).map(|b| element.decode(b)));
        chunk.copy_within(whole..available, 0);
        carry = available - whole;
    }
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(Error::data(
                path,
                format!("trailing bytes after the {count} values its dimensions {dims:?} declare"),
            ))
        }
        Err(e) => return Err(read_err(e, "data")),
    }
    Tensor::new(&dims, values)
}

#[derive(Clone, Copy, Debug)]
enum ElementType {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl ElementType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => ElementType::U8,
            0x09 => ElementType::I8,
            0x0B => ElementType::I16,
            0x0C => ElementType::I32,
            0x0D => ElementType::F32,
            0x0E => ElementType::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            ElementType::U8 | ElementType::I8 => 1,
            ElementType::I16 => 2,
            ElementType::I32 | ElementType::F32 => 4,
            ElementType::F64 => 8,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            ElementType::U8 => b[0] as f32,
            ElementType::I8 => b[0] as i8 as f32,
            ElementType::I16 => i16::from_be_bytes([b[0], b[1]]) as f32,
            ElementType::I32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f32,
            ElementType::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            ElementType::F64 => {
                f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
        }
    }
}

/// Encodes an IDX file of unsigned bytes (for tests and tools that write IDX data).
pub fn encode_u8(dims: &[usize], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(bytes: &[u8]) -> Result<Tensor> {
        read_idx_from(bytes, Path::new("test.idx"))
    }

    fn message(r: Result<Tensor>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn reads_every_element_type() {
        let t = parse(&encode_u8(&[2, 3], &[0, 1, 2, 253, 254, 255])).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.data(), &[0., 1., 2., 253., 254., 255.]);
        let t = parse(&[0, 0, 0x09, 1, 0, 0, 0, 2, 0xff, 0x05]).unwrap();
        assert_eq!(t.data(), &[-1., 5.]);
        let t = parse(&[0, 0, 0x0B, 1, 0, 0, 0, 1, 0xff, 0xfe]).unwrap();
        assert_eq!(t.data(), &[-2.]);
        let t = parse(&[0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 1, 0, 0]).unwrap();
        assert_eq!(t.data(), &[65536.]);
        let mut f = vec![0, 0, 0x0D, 1, 0, 0, 0, 1];
        f.extend_from_slice(&1.5f32.to_be_bytes());
        assert_eq!(parse(&f).unwrap().data(), &[1.5]);
        let mut d = vec![0, 0, 0x0E, 1, 0, 0, 0, 1];
        d.extend_from_slice(&(-0.25f64).to_be_bytes());
        assert_eq!(parse(&d).unwrap().data(), &[-0.25]);
    }

    #[test]
    fn values_split_across_read_chunks() {
        // 70000 i16 values cross the 64 KiB chunk boundary at an odd offset.
        let mut bytes = vec![0, 0, 0x0B, 1];
        bytes.extend_from_slice(&70000u32.to_be_bytes());
        for i in 0..70000u32 {
            bytes.extend_from_slice(&((i % 30000) as i16).to_be_bytes());
        }
        let t = parse(&bytes).unwrap();
        assert_eq!(t.len(), 70000);
        assert!(t
            .data()
            .iter()
            .enumerate()
            .all(|(i, &v)| v == (i % 30000) as f32));
    }

    #[test]
    fn malformed_files_give_clear_errors() {
        assert!(message(parse(&[0, 0])).contains("truncated magic number"));
        assert!(message(parse(&[1, 2, 8, 1, 0, 0, 0, 1, 0])).contains("bad magic number"));
        assert!(
            message(parse(&[0, 0, 0x42, 1, 0, 0, 0, 1, 0])).contains("unknown IDX element type")
        );
        assert!(message(parse(&[0, 0, 8, 0])).contains("zero dimensions"));
        assert!(message(parse(&[0, 0, 8, 2, 0, 0, 0, 1])).contains("truncated header"));
        let m = message(parse(&encode_u8(&[4], &[1, 2, 3])[..7]));
        assert!(m.contains("truncated"), "{m}");
        let mut short = encode_u8(&[4], &[1, 2, 3, 4]);
        short.pop();
        let m = message(parse(&short));
        assert!(
            m.contains("need 4 values, the file holds 3") && m.contains("test.idx"),
            "{m}"
        );
        let mut long = encode_u8(&[2], &[1, 2]);
        long.push(9);
        assert!(message(parse(&long)).contains("trailing bytes"));
        // A header claiming an absurd size fails on its header, without allocating it; a
        // large but allowed one fails on the missing data.
        let huge = [
            0, 0, 8, 3, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0, 0, 2, 7,
        ];
        assert!(message(parse(&huge)).contains("more than Ember reads"));
        let large = [0, 0, 8, 2, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 7];
        assert!(message(parse(&large)).contains("truncated data"));
        let overflowing = [
            0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2,
        ];
        assert!(message(parse(&overflowing)).contains("overflow"));
    }

    #[test]
    fn a_compressed_bomb_is_refused_from_its_header() {
        // A gzip file of a few kilobytes whose header declares 2^29 values (its zeros would
        // compress as well): the header alone says it is too much, before decompressing.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0, 0, 0x08, 2]).unwrap();
        gz.write_all(&(1u32 << 15).to_be_bytes()).unwrap();
        gz.write_all(&(1u32 << 14).to_be_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            gz.write_all(&zeros).unwrap();
        }
        let bytes = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.idx.gz");
        std::fs::write(&path, &bytes).unwrap();
        let err = read_idx(&path).unwrap_err().to_string();
        assert!(
            err.contains("bomb.idx.gz") && err.contains("declare 536870912 values"),
            "{err}"
        );
    }

    #[test]
    fn gzip_files_and_corrupt_gzip() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let raw = encode_u8(&[2, 2], &[1, 2, 3, 4]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        let path = dir.join("ok.gz");
        std::fs::write(&path, &gz).unwrap();
        assert_eq!(read_idx(&path).unwrap().data(), &[1., 2., 3., 4.]);
        let plain = dir.join("plain");
        std::fs::write(&plain, &raw).unwrap();
        assert_eq!(read_idx(&plain).unwrap().data(), &[1., 2., 3., 4.]);
        let truncated = dir.join("truncated.gz");
        std::fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
        let m = read_idx(&truncated).unwrap_err().to_string();
        assert!(m.contains("truncated.gz"), "{m}");
        let mut corrupt = gz.clone();
        for b in &mut corrupt[12..20] {
            *b ^= 0x5a;
        }
        let bad = dir.join("corrupt.gz");
        std::fs::write(&bad, &corrupt).unwrap();
        let m = read_idx(&bad).unwrap_err().to_string();
        assert!(m.contains("corrupt.gz"), "{m}");
        assert!(read_idx(dir.join("missing"))
            .unwrap_err()
            .to_string()
            .contains("missing"));
    }
}
