//! Apache Parquet tables, as pandas, Polars, Spark and DuckDB write them: each row read into
//! the text cells a CSV file of the same table gives ([`crate::data::table::Table`]), so every
//! command that reads a CSV file reads a Parquet file the same way. Flat columns of numbers,
//! booleans, strings, decimals, dates and times; a null (or a NaN) is a missing cell.
//! Snappy, gzip, LZ4 and Zstandard pages.
//!
//! Rows are numbered as the lines of the same table written as CSV with a header: the first
//! row is line 2.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::data::table::CsvOptions;
use crate::error::{Error, Result};
use crate::read::Limit;

/// A Parquet file begins and ends with these four bytes.
const MAGIC: &[u8] = b"PAR1";

/// Whether `bytes` are a Parquet file (told by its first bytes, whatever its name).
pub fn is_parquet(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// A Parquet table's columns: names, then cells column by column (`None` where missing),
/// each non-null text cell that `options.missing` names recorded by (column, row) in the
/// third.
pub type Cells = (
    Vec<String>,
    Vec<Vec<Option<String>>>,
    Vec<((usize, usize), String)>,
);

/// Reads a Parquet file's `bytes` (see the module's doc). The CSV options that have no
/// meaning for it (`delimiter`, `no_header`, `skip_rows`) are refused; its rows are whole,
/// so `drop_bad_rows` drops none.
pub fn read(bytes: &[u8], path: &Path, options: &CsvOptions) -> Result<Cells> {
    let unused = [
        ("--delimiter", options.delimiter.is_some()),
        ("--no-header", options.header == Some(false)),
        ("--skip-rows", options.skip_rows > 0),
    ];
    if let Some((flag, _)) = unused.iter().find(|(_, given)| *given) {
        return Err(Error::data(
            path,
            format!(
                "is an Apache Parquet file: {flag} is for CSV text (its columns are named and \
                 typed, its rows whole)"
            ),
        ));
    }
    let corrupt = |what: String| {
        Error::data(
            path,
            format!("is an Apache Parquet file, but cannot be read: {what}"),
        )
    };
    // The reader is a third party's: a panic on a damaged file is an error like any other.
    caught(|| cells(bytes, options))
        .map_err(|message| corrupt(message.unwrap_or_else(|| "the file is damaged".into())))?
        .map_err(|e| match e {
            Read::Parquet(e) => corrupt(e.to_string()),
            Read::Data(message) => Error::data(path, message),
        })
}

thread_local! {
    /// Whether this thread is inside [`caught`], whose panics are errors, not messages.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `f`'s result, or its panic's message (when it has one) where it panicked: the panic is
/// not printed, on this thread only (another thread's panic is reported as ever).
fn caught<T>(f: impl FnOnce() -> T) -> std::result::Result<T, Option<String>> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
    })
}

enum Read {
    Parquet(parquet::errors::ParquetError),
    Data(String),
}

impl From<parquet::errors::ParquetError> for Read {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Read::Parquet(e)
    }
}

fn cells(bytes: &[u8], options: &CsvOptions) -> std::result::Result<Cells, Read> {
    let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes))?;
    let metadata = reader.metadata();
    // What the pages unpack into, as the file declares it, within what a table may hold.
    let unpacked: i64 = metadata
        .row_groups()
        .iter()
        .map(|g| g.total_byte_size().max(0))
        .fold(0i64, i64::saturating_add);
    if unpacked as u64 > Limit::TABLE.bytes {
        return Err(Read::Data(format!(
            "its rows unpack into {unpacked} bytes, more than the {} a table may hold",
            Limit::TABLE.bytes
        )));
    }
    let fields = metadata
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields();
    if let Some(nested) = fields.iter().find(|f| f.is_group()) {
        return Err(Read::Data(format!(
            "column '{}' is nested (a list, a map or a struct): a table's columns are flat",
            nested.name()
        )));
    }
    let names: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
    if names.is_empty() {
        return Err(Read::Data("the file has no columns".into()));
    }
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    let mut missing_text = Vec::new();
    for (row, record) in reader.get_row_iter(None)?.enumerate() {
        let record = record?;
        let mut width = 0;
        for (c, (_, field)) in record.get_column_iter().enumerate() {
            let cell = cell(field).map_err(|kind| {
                Read::Data(format!(
                    "line {}: column '{}' holds {kind}: a table's cells are single values",
                    row + 2,
                    names[c]
                ))
            })?;
            let cell = match cell {
                Some(text) if options.missing.contains(&text) => {
                    if !text.is_empty() {
                        missing_text.push(((c, row), text));
                    }
                    None
                }
                other => other,
            };
            columns
                .get_mut(c)
                .ok_or_else(|| Read::Data(format!("line {}: more cells than columns", row + 2)))?
                .push(cell);
            width += 1;
        }
        if width != names.len() {
            return Err(Read::Data(format!(
                "line {}: {width} cells for {} columns",
                row + 2,
                names.len()
            )));
        }
    }
    if columns[0].is_empty() {
        return Err(Read::Data("the file has no rows".into()));
    }
    Ok((names, columns, missing_text))
}

/// A field as the text a CSV file would hold (as [`crate::data::table::Table`] reads it,
/// trimmed): numbers in their shortest exact form, a null
/// or a NaN missing. A list, a map or a group is refused, named by its kind.
fn cell(field: &Field) -> std::result::Result<Option<String>, &'static str> {
    Ok(match field {
        Field::Null => None,
        // Text trimmed, as a CSV file's cells are.
        Field::Str(s) => Some(s.trim().to_string()),
        Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).trim().to_string()),
        Field::Float(x) if x.is_nan() => None,
        Field::Double(x) if x.is_nan() => None,
        Field::Float16(x) if x.is_nan() => None,
        Field::Float(x) => Some(x.to_string()),
        Field::Double(x) => Some(x.to_string()),
        Field::Float16(x) => Some(f32::from(*x).to_string()),
        Field::Bool(b) => Some(b.to_string()),
        Field::Byte(x) => Some(x.to_string()),
        Field::Short(x) => Some(x.to_string()),
        Field::Int(x) => Some(x.to_string()),
        Field::Long(x) => Some(x.to_string()),
        Field::UByte(x) => Some(x.to_string()),
        Field::UShort(x) => Some(x.to_string()),
        Field::UInt(x) => Some(x.to_string()),
        Field::ULong(x) => Some(x.to_string()),
        Field::Group(_) => return Err("a group of fields"),
        Field::ListInternal(_) => return Err("a list"),
        Field::MapInternal(_) => return Err("a map"),
        // Decimals, dates, times and timestamps, as the reader writes them.
        other => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_the_text_a_csv_file_holds() {
        assert_eq!(cell(&Field::Null), Ok(None));
        assert_eq!(cell(&Field::Double(f64::NAN)), Ok(None), "NaN is missing");
        assert_eq!(cell(&Field::Double(22.0)), Ok(Some("22".into())));
        assert_eq!(cell(&Field::Double(7.25)), Ok(Some("7.25".into())));
        assert_eq!(
            cell(&Field::Float(0.1)),
            Ok(Some("0.1".into())),
            "f32's shortest"
        );
        assert_eq!(cell(&Field::Long(-3)), Ok(Some("-3".into())));
        assert_eq!(cell(&Field::Bool(true)), Ok(Some("true".into())));
        assert_eq!(cell(&Field::Str(" Daly ".into())), Ok(Some("Daly".into())));
    }

    #[test]
    fn what_is_not_parquet_is_told_apart_and_a_damaged_file_is_an_error() {
        assert!(is_parquet(b"PAR1\x15\x04"));
        assert!(!is_parquet(b"a,b\n1,2\n"));
        let e = read(
            b"PAR1 not really",
            Path::new("x.parquet"),
            &CsvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.parquet: is an Apache Parquet file, but cannot be read"),
            "{e}"
        );
    }
}
