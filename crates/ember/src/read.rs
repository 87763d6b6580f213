//! The one door every file a user names comes in by (and standard input): regular files
//! only, opened without blocking, and never more bytes than their kind of file can need.
//! It sits at the bottom, beside `atomic.rs` (the one way files are written), so that every
//! layer, from `data` up to the applications, reads through it.
//!
//! A FIFO, a device such as `/dev/zero`, a socket, or a folder where a file is expected is
//! an error naming the path and what it is; a symbolic link is followed to a regular file
//! and refused when it leads anywhere else. Each kind of file has a [`Limit`]: a read past it
//! stops with an error naming the file and the limit instead of growing until memory runs
//! out, and line-oriented kinds bound a single line too. Readers that stream a file of any
//! size (GGUF, IDX) take [`open`]'s file and check what they allocate against its length.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// The name standard input goes by in messages.
pub const STDIN: &str = "standard input";

/// A kind of file and the most Ember reads of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The kind, as messages name it: "a table".
    pub what: &'static str,
    /// The most bytes of one file.
    pub bytes: u64,
    /// The most bytes of one line, for line-oriented kinds.
    pub line: Option<u64>,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Limit {
    /// CSV tables (training, prediction, evaluation, FAQ pairs, documents by row) and numeric
    /// rows. MovieLens-25M's ratings.csv is 678 MB; parsed cells take a few times the bytes.
    pub const TABLE: Limit = Limit::new("a table", GIB);
    /// Ratings and side tables (user, item, value, … a line each).
    pub const RATINGS: Limit = Limit::new("a ratings file", GIB).lines(MIB);
    /// An input to predict on or explain: an image, an IDX file or CSV rows of numbers.
    pub const INPUT: Limit = Limit::new("an input", GIB);
    /// An image of a data set.
    pub const IMAGE: Limit = Limit::new("an image", 256 * MIB);
    /// A document (a text or an e-mail) to classify or train on.
    pub const DOCUMENT: Limit = Limit::new("a document", 256 * MIB);
    /// A file of texts, one a line (`embed --file`).
    pub const TEXT_LINES: Limit = Limit::new("a file of texts", 256 * MIB).lines(MIB);
    /// A prompt; longer than any context window by far.
    pub const PROMPT: Limit = Limit::new("a prompt", 16 * MIB);
    /// One message of a chat, a line of standard input.
    pub const CHAT: Limit = Limit::new("a chat", u64::MAX).lines(MIB);
    /// Written settings: model files, options and tune spaces (TOML), encoder configs (JSON).
    pub const SETTINGS: Limit = Limit::new("a settings file", 16 * MIB);
    /// A `tokenizer.json` (the largest vocabularies' are about 35 MB).
    pub const TOKENIZER: Limit = Limit::new("a tokenizer", 256 * MIB);
    /// A tuning study (`study.jsonl`): a line a trial; the first holds the model file.
    pub const STUDY: Limit = Limit::new("a study", 256 * MIB).lines(32 * MIB);
    /// A file read whole into memory as weights: a saved model, an encoder's weights, a FAQ
    /// index, a recommender, an embedding cache. BERT-large's weights are 1.3 GB.
    pub const MODEL: Limit = Limit::new("a model file", 4 * GIB);

    const fn new(what: &'static str, bytes: u64) -> Limit {
        Limit {
            what,
            bytes,
            line: None,
        }
    }

    const fn lines(self, line: u64) -> Limit {
        Limit {
            line: Some(line),
            ..self
        }
    }
}

/// Opens the regular file at `path` (a symbolic link is followed to one) without blocking,
/// and returns it with its length; anything else is an error saying what it is. For readers
/// that stream; the others read through [`file`].
pub fn open(path: &Path) -> Result<(File, u64)> {
    // Look before opening: opening a device or a FIFO can block or have effects.
    if let Ok(meta) = std::fs::metadata(path) {
        check_regular(path, &meta)?;
    }
    let file = open_nonblocking(path).map_err(|e| Error::io(path, e))?;
    // Check what was opened, too: the path may have changed since it was looked at.
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta)?;
    Ok((file, meta.len()))
}

/// O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
/// It changes nothing for a regular file, the only kind that is then read.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// The bytes of the regular file at `path`, at most `limit.bytes` of them (and no line longer
/// than `limit.line`); past that an error naming the file and the limit.
pub fn file(path: &Path, limit: Limit) -> Result<Vec<u8>> {
    let (file, len) = open(path)?;
    if len > limit.bytes {
        return Err(Error::data(
            path,
            format!(
                "is {}, more than the {} Ember reads of {}",
                size(len),
                size(limit.bytes),
                limit.what
            ),
        ));
    }
    // The length is a hint only: the file may grow while it is read.
    let mut bytes = Vec::with_capacity(len as usize);
    read_bounded(file, limit, path, &mut bytes)?;
    Ok(bytes)
}

/// [`file`] as UTF-8 text; text that is not is an error naming the file.
pub fn text(path: &Path, limit: Limit) -> Result<String> {
    String::from_utf8(file(path, limit)?).map_err(|e| {
        Error::data(
            path,
            format!(
                "is not UTF-8 text (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Standard input, read to its end, at most `limit.bytes` of it.
pub fn stdin(limit: Limit) -> Result<Vec<u8>> {
    bounded(std::io::stdin().lock(), limit, Path::new(STDIN))
}

/// Standard input as UTF-8 text, at most `limit.bytes` of it.
pub fn stdin_text(limit: Limit) -> Result<String> {
    String::from_utf8(stdin(limit)?).map_err(|e| {
        Error::data(
            STDIN,
            format!(
                "is not UTF-8 text (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Everything `reader` gives, at most `limit.bytes` (and no line longer than `limit.line`);
/// `name` names it in errors.
pub fn bounded(reader: impl Read, limit: Limit, name: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_bounded(reader, limit, name, &mut bytes)?;
    Ok(bytes)
}

fn read_bounded(reader: impl Read, limit: Limit, name: &Path, bytes: &mut Vec<u8>) -> Result<()> {
    // One byte beyond the limit tells a source that has more from one that ends there.
    reader
        .take(limit.bytes.saturating_add(1))
        .read_to_end(bytes)
        .map_err(|e| Error::io(name, e))?;
    if bytes.len() as u64 > limit.bytes {
        return Err(Error::data(
            name,
            format!(
                "holds more than the {} Ember reads of {}",
                size(limit.bytes),
                limit.what
            ),
        ));
    }
    if let Some(max) = limit.line {
        let long = bytes
            .split(|&b| b == b'\n')
            .position(|line| line.len() as u64 > max);
        if let Some(i) = long {
            return Err(long_line(name, i + 1, max, limit));
        }
    }
    Ok(())
}

/// `bytes` as a reader takes them: gzip- or zstd-compressed data (told by its magic
/// bytes, whatever the file's name) decompressed, at most `limit.bytes` of it, so that a
/// small file cannot unpack into all of memory; anything else as it is. Corrupt compressed
/// data is an error naming `name`.
pub fn decompressed<'a>(bytes: &'a [u8], limit: Limit, name: &Path) -> Result<Cow<'a, [u8]>> {
    let corrupt = |kind: &str, e: std::io::Error| {
        Error::data(
            name,
            format!("is {kind}-compressed, but its data is corrupt: {e}"),
        )
    };
    if bytes.starts_with(&[0x1F, 0x8B]) {
        let decoder = flate2::read::MultiGzDecoder::new(bytes);
        let mut out = Vec::new();
        return match read_bounded(decoder, limit, name, &mut out) {
            Ok(()) => Ok(Cow::Owned(out)),
            Err(Error::Io { source, .. }) => Err(corrupt("gzip", source)),
            Err(e) => Err(e),
        };
    }
    if bytes.starts_with(&ZSTD_MAGIC) {
        // A zstd stream is one frame or more, one after the other.
        let mut rest = bytes;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let decoder = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                .map_err(|e| corrupt("zstd", std::io::Error::other(e.to_string())))?;
            // Each frame read to the limit of the whole (the total is checked after each).
            match read_bounded(decoder, limit, name, &mut out) {
                Ok(()) => {}
                Err(Error::Io { source, .. }) => return Err(corrupt("zstd", source)),
                Err(e) => return Err(e),
            }
        }
        return Ok(Cow::Owned(out));
    }
    Ok(Cow::Borrowed(bytes))
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The lines of `reader` (a line ends at `\n`, a `\r` before it dropped), each at most
/// `limit.line` bytes long (unbounded without one); a longer line, or one that is not UTF-8,
/// is an error naming `name` and the line. For a stream read as it comes, standard input
/// say: a file read whole is bounded by [`file`].
pub fn lines<R: BufRead>(reader: R, limit: Limit, name: &Path) -> Lines<R> {
    Lines {
        reader,
        limit,
        name: name.to_path_buf(),
        number: 0,
    }
}

/// The bounded lines of a stream: see [`lines`].
pub struct Lines<R> {
    reader: R,
    limit: Limit,
    name: std::path::PathBuf,
    number: usize,
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        self.number += 1;
        let max = self.limit.line.unwrap_or(u64::MAX);
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(max.saturating_add(1))
            .read_until(b'\n', &mut line);
        match read {
            Err(e) => return Some(Err(Error::io(&self.name, e))),
            Ok(0) => return None,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() as u64 > max {
            return Some(Err(long_line(&self.name, self.number, max, self.limit)));
        }
        Some(String::from_utf8(line).map_err(|_| {
            Error::data(
                &self.name,
                format!("line {} is not UTF-8 text", self.number),
            )
        }))
    }
}

fn long_line(name: &Path, number: usize, max: u64, limit: Limit) -> Error {
    Error::data(
        name,
        format!(
            "line {number} is longer than the {} Ember reads of one line of {}",
            size(max),
            limit.what
        ),
    )
}

/// An error unless `meta` (the metadata of `path`, links followed) is a regular file's.
fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = kind_of(&meta.file_type());
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let message = match (is_link, std::fs::canonicalize(path)) {
        (true, Ok(target)) => format!(
            "is a symbolic link to {kind} ({}), not to a file",
            target.display()
        ),
        (true, Err(_)) => format!("is a symbolic link to {kind}, not to a file"),
        (false, _) => format!("is {kind}, not a file"),
    };
    Err(Error::data(path, message))
}

/// What a file that is not a regular one is, for messages.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// A size as people write it: "16 MiB", "1.5 GiB", "312 bytes".
fn size(bytes: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    match units.iter().find(|(unit, _)| bytes >= *unit) {
        Some(&(unit, name)) if bytes.is_multiple_of(unit) => format!("{} {name}", bytes / unit),
        Some(&(unit, name)) => format!("{:.1} {name}", bytes as f64 / unit as f64),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn error(result: Result<impl std::fmt::Debug>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn reads_a_regular_file_and_a_link_to_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert_eq!(file(&path, Limit::TABLE).unwrap(), b"a,b\n1,2\n");
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(text(&link, Limit::TABLE).unwrap(), "a,b\n1,2\n");
        let (_, len) = open(&link).unwrap();
        assert_eq!(len, 8);
    }

    #[test]
    fn refuses_a_character_device_at_once() {
        let e = error(file(Path::new("/dev/zero"), Limit::TABLE));
        assert_eq!(e, "/dev/zero: is a character device, not a file");
        let e = error(open(Path::new("/dev/null")));
        assert!(e.contains("/dev/null: is a character device"), "{e}");
    }

    #[test]
    fn refuses_a_fifo_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // No writer ever comes: a blocking open would never return.
        let e = error(file(&fifo, Limit::TABLE));
        assert!(
            e.contains("pipe: is a FIFO (named pipe), not a file"),
            "{e}"
        );
        // Also when the path is looked at only after it was opened.
        let e = error(
            open_nonblocking(&fifo)
                .map_err(|e| Error::io(&fifo, e))
                .and_then(|f| check_regular(&fifo, &f.metadata().unwrap())),
        );
        assert!(e.contains("is a FIFO"), "{e}");
    }

    #[test]
    fn refuses_a_folder_where_a_file_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let e = error(file(dir.path(), Limit::SETTINGS));
        assert!(e.ends_with(": is a folder, not a file"), "{e}");
    }

    #[test]
    fn refuses_a_link_to_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("study.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = error(text(&link, Limit::STUDY));
        assert!(
            e.contains(
                "study.jsonl: is a symbolic link to a character device (/dev/zero), not to a file"
            ),
            "{e}"
        );
    }

    #[test]
    fn refuses_a_file_beyond_its_limit_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let big = std::fs::File::create(&path).unwrap();
        // Sparse: 17 MiB on paper, no disk used.
        big.set_len(17 * MIB).unwrap();
        let e = error(file(&path, Limit::SETTINGS));
        assert!(
            e.ends_with("big.toml: is 17 MiB, more than the 16 MiB Ember reads of a settings file"),
            "{e}"
        );
        std::fs::write(&path, vec![b'x'; 1000]).unwrap();
        let small = Limit {
            bytes: 999,
            ..Limit::SETTINGS
        };
        assert!(error(file(&path, small)).contains("999 bytes"));
    }

    #[test]
    fn a_stream_is_read_to_its_limit_and_no_further() {
        let limit = Limit {
            bytes: 10 * KIB,
            ..Limit::INPUT
        };
        let name = Path::new(STDIN);
        let endless = std::io::repeat(0);
        let e = error(bounded(endless, limit, name));
        assert_eq!(
            e,
            "standard input: holds more than the 10 KiB Ember reads of an input"
        );
        let exact = vec![7u8; 10 * KIB as usize];
        assert_eq!(bounded(&exact[..], limit, name).unwrap(), exact);
    }

    #[test]
    fn line_oriented_kinds_bound_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("texts.txt");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "short").unwrap();
        f.write_all(&vec![b'a'; MIB as usize + 1]).unwrap();
        let e = error(file(&path, Limit::TEXT_LINES));
        assert!(
            e.ends_with("texts.txt: line 2 is longer than the 1 MiB Ember reads of one line of a file of texts"),
            "{e}"
        );
        std::fs::write(&path, vec![b'a'; MIB as usize]).unwrap();
        assert!(file(&path, Limit::TEXT_LINES).is_ok());
    }

    #[test]
    fn lines_of_a_stream_are_bounded_as_they_come() {
        let name = Path::new(STDIN);
        let got: Vec<String> = lines(&b"one\r\ntwo\n\nthree"[..], Limit::CHAT, name)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(got, ["one", "two", "", "three"]);
        // /dev/zero on standard input: no newline ever comes.
        let endless = std::io::BufReader::new(std::io::repeat(0));
        let mut zeros = lines(endless, Limit::CHAT, name);
        let e = error(zeros.next().unwrap());
        assert_eq!(
            e,
            "standard input: line 1 is longer than the 1 MiB Ember reads of one line of a chat"
        );
        let e = error(lines(&b"ok\n\xff\n"[..], Limit::CHAT, name).nth(1).unwrap());
        assert_eq!(e, "standard input: line 2 is not UTF-8 text");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(GIB), "1 GiB");
        assert_eq!(size(3 * GIB / 2), "1.5 GiB");
        assert_eq!(size(16 * MIB), "16 MiB");
        assert_eq!(size(312), "312 bytes");
    }
}
