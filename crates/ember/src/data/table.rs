//! CSV tables: reading (delimiter sniffing, header detection, quoting, trimming, missing-value
//! tokens), column type inference, and per-column summaries. Rows that cannot be read are
//! errors naming the line, or — when asked — dropped and reported, never silently.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How to read a CSV file. The defaults suit most files: the delimiter and the header are
/// detected, and the usual missing-value spellings are recognised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    /// Field delimiter; None sniffs comma, semicolon and tab.
    pub delimiter: Option<char>,
    /// Whether the first (kept) line is a header; None detects it.
    pub header: Option<bool>,
    /// Lines to skip before the header or the first row (e.g. scikit-learn's line of counts).
    pub skip_rows: usize,
    /// Cell values that mean "missing", compared after trimming.
    pub missing: Vec<String>,
    /// Drop rows with the wrong number of fields (reported with counts) instead of failing.
    pub drop_bad_rows: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            header: None,
            skip_rows: 0,
            missing: ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "?"]
                .map(String::from)
                .to_vec(),
            drop_bad_rows: false,
        }
    }
}

/// A row left out of the table, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectedRow {
    /// 1-based line in the file.
    pub line: u64,
    pub reason: String,
}

/// What a column holds, as inferred from its non-missing values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Boolean,
    /// Few distinct strings: one-hot encoded.
    Categorical,
    /// Many distinct strings (names, free text): not used as a feature by default.
    Text,
    /// Distinct consecutive integers (a row number): not used as a feature by default.
    Identifier,
    /// Nothing but missing values.
    Empty,
}

/// A table of raw string cells, `None` where missing.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    pub names: Vec<String>,
    /// Whether the file named its columns on its first line (else they are `column_1`,
    /// `column_2`, …).
    pub header: bool,
    /// Column-major cells.
    pub columns: Vec<Vec<Option<String>>>,
    /// 1-based file line of each row.
    pub lines: Vec<u64>,
    pub rejected: Vec<RejectedRow>,
    /// Cells of number columns that are not numbers (`inf`, `0.3.1`, `1e400`), read as
    /// missing: see [`Table::parse`].
    pub bad_cells: Vec<BadCell>,
    /// What each cell read as missing held in the file, where it held something (`NA`, `?`,
    /// a bad number), by (column, row): see [`Table::as_written`].
    pub missing_text: HashMap<(usize, usize), String>,
}

/// A cell of a number column that is not a finite number, read as missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadCell {
    /// 1-based line in the file.
    pub line: u64,
    pub column: String,
    /// What the cell held (at most 40 characters of it).
    pub text: String,
}

/// One column's summary for `ember data inspect`.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnSummary {
    pub name: String,
    pub kind: ColumnKind,
    pub missing: usize,
    pub distinct: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Most frequent values with counts (for non-numeric columns).
    pub top: Vec<(String, usize)>,
}

impl Table {
    /// Reads a CSV file (plain, gzip- or zstd-compressed) or an Apache Parquet file (told by
    /// its first bytes); `-` reads standard input, and
    /// errors then name it "standard input".
    pub fn read(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table> {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            let bytes = crate::read::stdin(crate::read::Limit::TABLE)?;
            return Self::parse(&bytes, Path::new(crate::read::STDIN), options);
        }
        let bytes = crate::read::file(path, crate::read::Limit::TABLE)?;
        Self::parse(&bytes, path, options)
    }

    /// A table of cells given column by column (`None` where missing), as a CSV file of them
    /// with a header of `names` would read: `path` names it in errors, `lines` numbers its
    /// rows.
    pub fn from_columns(
        path: &Path,
        names: Vec<String>,
        columns: Vec<Vec<Option<String>>>,
        lines: Vec<u64>,
    ) -> Table {
        Table {
            path: path.to_path_buf(),
            names,
            header: true,
            columns,
            lines,
            rejected: Vec::new(),
            bad_cells: Vec::new(),
            missing_text: HashMap::new(),
        }
    }

    /// Parses CSV bytes; `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path, options: &CsvOptions) -> Result<Table> {
        // A gzip- or zstd-compressed table (`.csv.gz`, `.csv.zst`) is read as its text.
        let bytes = &*crate::read::decompressed(bytes, crate::read::Limit::TABLE, path)?;
        if super::parquet::is_parquet(bytes) {
            return Self::from_parquet(bytes, path, options);
        }
        // A binary file given where a table belongs: say what it looks like.
        let kind = [
            (&b"\x89PNG"[..], "a PNG image"),
            (&[0xFF, 0xD8, 0xFF][..], "a JPEG image"),
            (&[0, 0][..], "binary (an IDX file?)"),
        ]
        .into_iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, kind)| kind)
        .or_else(|| {
            bytes[..bytes.len().min(1024)]
                .contains(&0)
                .then_some("binary")
        });
        if let Some(kind) = kind {
            return Err(Error::data(
                path,
                format!("is {kind}, not a CSV table of text"),
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::data(
                path,
                format!("line {line}: not valid UTF-8 (byte {})", e.valid_up_to()),
            )
        })?;
        let body = skip_lines(text, options.skip_rows);
        let skipped = options.skip_rows as u64;
        if body.trim().is_empty() {
            return Err(Error::data(path, "the file has no rows"));
        }
        let delimiter = match options.delimiter {
            Some(d) if d.is_ascii() => d as u8,
            Some(d) => {
                return Err(Error::invalid(format!(
                    "the delimiter '{d}' is not an ASCII character"
                )))
            }
            None => sniff_delimiter(body),
        };
        // An unclosed quote would swallow every line after it into one cell: refuse the file
        // rather than lose those rows (with or without drop_bad_rows).
        if let Some((opened, lines)) = unclosed_quote(body, delimiter) {
            return Err(Error::data(
                path,
                format!(
                    "line {}: a quote opened here is never closed; it would swallow the {lines} \
                     lines to the end of the file into one cell",
                    opened as u64 + skipped
                ),
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(body.as_bytes());
        let mut records = Vec::new();
        let mut lines = LineCounter::new(body);
        for record in reader.records() {
            let record = record.map_err(|e| Error::data(path, format!("{e}")))?;
            let line = lines.line_at(record.position().map_or(0, |p| p.byte())) + skipped;
            // A blank line is no row; a line of empty fields (",,,") is a row of missing values.
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            records.push((line, record.iter().map(str::to_string).collect::<Vec<_>>()));
        }
        if records.is_empty() {
            return Err(Error::data(path, "the file has no rows"));
        }
        let header = options
            .header
            .unwrap_or_else(|| looks_like_header(&records, &options.missing));
        // A lone line of names is a header with no rows under it, not one row of data.
        let lone_names = records.len() == 1
            && options.header.is_none()
            && records[0]
                .1
                .iter()
                .all(|c| !c.is_empty() && parse_number(c).is_none());
        if lone_names || (header && records.len() == 1) {
            return Err(Error::data(
                path,
                format!(
                    "the file has a header ({}) but no rows",
                    names_preview(&records[0].1)
                ),
            ));
        }
        let names: Vec<String> = if header {
            let (_, first) = records.remove(0);
            let mut names: Vec<String> = Vec::with_capacity(first.len());
            // Names taken, and each repeated name's next suffix to try: linear in the width.
            let mut taken: HashSet<String> = HashSet::with_capacity(first.len());
            let mut next: HashMap<String, usize> = HashMap::new();
            for (i, n) in first.into_iter().enumerate() {
                let base = if n.is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    n
                };
                // Repeated names get the first free suffix: a, a_2, a_3, …
                let mut name = base.clone();
                if taken.contains(&name) {
                    let k = next.entry(base.clone()).or_insert(2);
                    while taken.contains(&format!("{base}_{k}")) {
                        *k += 1;
                    }
                    name = format!("{base}_{k}");
                    *k += 1;
                }
                taken.insert(name.clone());
                names.push(name);
            }
            names
        } else {
            let width = records.first().map_or(0, |(_, r)| r.len());
            (1..=width).map(|i| format!("column_{i}")).collect()
        };
        let width = names.len();
        let mut columns = vec![Vec::with_capacity(records.len()); width];
        let mut lines = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        let mut missing_text = HashMap::new();
        for (line, fields) in records {
            if fields.len() != width {
                let reason = format!("{} fields, expected {width}", fields.len());
                if options.drop_bad_rows {
                    rejected.push(RejectedRow { line, reason });
                    continue;
                }
                return Err(Error::data(
                    path,
                    format!("line {line}: {reason} (--drop-bad-rows skips such rows)"),
                ));
            }
            let row = lines.len();
            for (c, (column, field)) in columns.iter_mut().zip(fields).enumerate() {
                if options.missing.contains(&field) {
                    if !field.is_empty() {
                        missing_text.insert((c, row), field);
                    }
                    column.push(None);
                } else {
                    column.push(Some(field));
                }
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(Error::data(path, "no usable rows"));
        }
        let mut table = Table {
            path: path.to_path_buf(),
            names,
            header,
            columns,
            lines,
            rejected,
            bad_cells: Vec::new(),
            missing_text,
        };
        table.bad_cells = table.clear_bad_numbers();
        Ok(table)
    }

    /// An Apache Parquet file's table (see [`super::parquet`]): its rows numbered as the
    /// lines of the same table written as CSV with a header (the first row is line 2).
    fn from_parquet(bytes: &[u8], path: &Path, options: &CsvOptions) -> Result<Table> {
        let (names, columns, missing) = super::parquet::read(bytes, path, options)?;
        let lines = (2..columns[0].len() as u64 + 2).collect();
        let mut table = Table::from_columns(path, names, columns, lines);
        table.missing_text = missing.into_iter().collect();
        table.bad_cells = table.clear_bad_numbers();
        Ok(table)
    }

    /// Cell (`column`, `row`) as the file wrote it: its value, or what a missing cell held
    /// (`NA` stays `NA` when a table is written back out, an empty cell stays empty).
    pub fn as_written(&self, column: usize, row: usize) -> &str {
        match self.columns.get(column).and_then(|c| c.get(row)) {
            Some(Some(value)) => value,
            _ => self
                .missing_text
                .get(&(column, row))
                .map_or("", String::as_str),
        }
    }

    /// In a column of numbers, a few cells that are not finite numbers (at most 1 in 20 of
    /// its values, among at least 10 numbers) are errors in the data, not a sign that the
    /// column is text: they become missing, and are returned to be reported. Without this,
    /// one `inf` would demote the whole column to text and drop it as a feature.
    fn clear_bad_numbers(&mut self) -> Vec<BadCell> {
        let mut bad_cells = Vec::new();
        for (c, column) in self.columns.iter_mut().enumerate() {
            let present = column.iter().flatten().count();
            let bad: Vec<usize> = column
                .iter()
                .enumerate()
                .filter(|(_, cell)| cell.as_deref().is_some_and(|v| parse_number(v).is_none()))
                .map(|(r, _)| r)
                .collect();
            if bad.is_empty() || present - bad.len() < 10 || bad.len() * 20 > present {
                continue;
            }
            for r in bad {
                let text = column[r].take().unwrap_or_default();
                let shown = text.chars().take(40).collect();
                self.missing_text.insert((c, r), text);
                bad_cells.push(BadCell {
                    line: self.lines[r],
                    column: self.names[c].clone(),
                    text: shown,
                });
            }
        }
        bad_cells.sort_by_key(|b| b.line);
        bad_cells
    }

    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The index of a column given by name, by 0-based index, or as "last".
    pub fn column(&self, name: &str) -> Result<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i);
        }
        if name == "last" && !self.names.is_empty() {
            return Ok(self.names.len() - 1);
        }
        if let Ok(i) = name.parse::<usize>() {
            if i < self.names.len() {
                return Ok(i);
            }
        }
        Err(Error::data(
            &self.path,
            format!("no column '{name}' (columns: {})", self.names.join(", ")),
        ))
    }

    /// What column `i` holds.
    pub fn kind(&self, i: usize) -> ColumnKind {
        let values: Vec<&str> = self.columns[i]
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if values.is_empty() {
            return ColumnKind::Empty;
        }
        if let Some(numbers) = values
            .iter()
            .map(|v| parse_number(v))
            .collect::<Option<Vec<f64>>>()
        {
            let consecutive = numbers.len() == self.rows()
                && numbers.len() > 20
                && numbers.windows(2).all(|w| w[1] == w[0] + 1.0)
                && numbers[0].fract() == 0.0;
            return if consecutive {
                ColumnKind::Identifier
            } else {
                ColumnKind::Numeric
            };
        }
        if values.iter().all(|v| parse_bool(v).is_some()) {
            return ColumnKind::Boolean;
        }
        let distinct = distinct_count(&values);
        if distinct <= 50 || distinct * 10 <= values.len() {
            ColumnKind::Categorical
        } else {
            ColumnKind::Text
        }
    }

    /// A summary of column `i`.
    pub fn summary(&self, i: usize) -> ColumnSummary {
        let kind = self.kind(i);
        let values: Vec<&str> = self.columns[i]
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let missing = self.rows() - values.len();
        let distinct = distinct_count(&values);
        let (mut min, mut max, mut mean, mut top) = (None, None, None, Vec::new());
        if matches!(kind, ColumnKind::Numeric | ColumnKind::Identifier) {
            let numbers: Vec<f64> = values.iter().filter_map(|v| parse_number(v)).collect();
            min = numbers.iter().copied().reduce(f64::min);
            max = numbers.iter().copied().reduce(f64::max);
            mean =
                (!numbers.is_empty()).then(|| numbers.iter().sum::<f64>() / numbers.len() as f64);
        } else {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            values
                .iter()
                .for_each(|v| *counts.entry(v).or_insert(0) += 1);
            let mut sorted: Vec<(&str, usize)> = counts.into_iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            top = sorted
                .into_iter()
                .take(5)
                .map(|(v, c)| (v.to_string(), c))
                .collect();
        }
        ColumnSummary {
            name: self.names[i].clone(),
            kind,
            missing,
            distinct,
            min,
            max,
            mean,
            top,
        }
    }

    /// The rows (by index) that have a missing value in column `i`, with their file lines.
    pub fn missing_in(&self, i: usize) -> Vec<u64> {
        self.columns[i]
            .iter()
            .zip(&self.lines)
            .filter(|(v, _)| v.is_none())
            .map(|(_, &l)| l)
            .collect()
    }
}

/// A finite number, or None.
pub fn parse_number(value: &str) -> Option<f64> {
    // Ember computes in f32: a value beyond its range (1e39, -5e300) is no usable number.
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() <= f64::from(f32::MAX))
}

/// true / false in the usual spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" => Some(true),
        "false" | "no" | "f" | "n" => Some(false),
        _ => None,
    }
}

fn distinct_count(values: &[&str]) -> usize {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Where a quote that is never closed opens (its line, from 1) and how many lines it runs
/// to the end of `body`; None when every quote closes. A quote opens a quoted field only at
/// the start of a field, and `""` inside one is an escaped quote, as the CSV reader has it.
fn unclosed_quote(body: &str, delimiter: u8) -> Option<(usize, usize)> {
    let bytes = body.as_bytes();
    let (mut line, mut opened) = (1, 0);
    let (mut quoted, mut field_start) = (false, true);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            } else if b == b'\n' {
                line += 1;
            }
        } else if b == b'"' && field_start {
            quoted = true;
            opened = line;
        } else if b == b'\n' {
            line += 1;
            field_start = true;
        } else {
            field_start = b == delimiter;
        }
        i += 1;
    }
    let last = line - usize::from(body.ends_with('\n'));
    quoted.then(|| (opened, last - opened + 1))
}

/// The file line a record starts on. The csv reader's own line count skips blank lines and
/// counts a CRLF file's lines short, so that rows and errors would name different lines;
/// its byte position is where it began reading the record (the end of the one before, blank
/// lines and all): the record starts after the line breaks there, and its line is one more
/// than the line breaks before it.
struct LineCounter<'a> {
    text: &'a [u8],
    /// A byte offset and the 1-based line it lies on, counted up to so far.
    counted: (usize, u64),
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            counted: (0, 1),
        }
    }

    /// The line of the record the reader began reading at `byte` (records come in order).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = (byte as usize).min(self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let (from, line) = self.counted;
        let from = from.min(start);
        let breaks = self.text[from..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.counted = (start, line + breaks as u64);
        self.counted.1
    }
}

/// The first few of a line's fields for a message, each cut at 40 characters: a header of
/// a million names (or one 100 MB name) is not quoted whole.
fn names_preview(fields: &[String]) -> String {
    let mut shown: Vec<String> = fields
        .iter()
        .take(8)
        .map(|f| match f.char_indices().nth(40) {
            Some((cut, _)) => format!("{}…", &f[..cut]),
            None => f.clone(),
        })
        .collect();
    if fields.len() > 8 {
        shown.push(format!("… {} in all", fields.len()));
    }
    shown.join(", ")
}

fn skip_lines(text: &str, n: usize) -> &str {
    let mut rest = text;
    for _ in 0..n {
        match rest.find('\n') {
            Some(i) => rest = &rest[i + 1..],
            None => return "",
        }
    }
    rest
}

/// The candidate that splits the first lines into the same number (> 1) of fields most
/// consistently; comma when nothing splits.
fn sniff_delimiter(text: &str) -> u8 {
    let sample: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t'] {
        let counts: Vec<usize> = sample
            .iter()
            .map(|l| {
                csv::ReaderBuilder::new()
                    .delimiter(candidate)
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(l.as_bytes())
                    .records()
                    .next()
                    .and_then(|r| r.ok())
                    .map_or(1, |r| r.len())
            })
            .collect();
        let first = counts.first().copied().unwrap_or(1);
        let consistent = counts.iter().filter(|&&c| c == first).count();
        let score = if first > 1 { consistent * first } else { 0 };
        if score > best.1 {
            best = (candidate, score);
        }
    }
    best.0
}

/// A header when some first-row cell is a non-number in a column whose other values are all
/// numbers, or when every first-row cell is a distinct non-number (and the file has more rows).
fn looks_like_header(records: &[(u64, Vec<String>)], missing: &[String]) -> bool {
    let Some((_, first)) = records.first() else {
        return false;
    };
    let rest = &records[1..];
    if rest.is_empty() {
        return false;
    }
    let is_missing = |v: &str| missing.iter().any(|m| m == v);
    for (c, cell) in first.iter().enumerate() {
        if parse_number(cell).is_some() || is_missing(cell) {
            continue;
        }
        let column_numeric = rest
            .iter()
            .filter_map(|(_, r)| r.get(c))
            .filter(|v| !is_missing(v))
            .all(|v| parse_number(v).is_some());
        if column_numeric
            && rest
                .iter()
                .any(|(_, r)| r.get(c).is_some_and(|v| !is_missing(v)))
        {
            return true;
        }
    }
    // All text: a header if its cells never occur again in their columns.
    first
        .iter()
        .all(|c| parse_number(c).is_none() && !c.is_empty())
        && first
            .iter()
            .enumerate()
            .all(|(c, cell)| rest.iter().all(|(_, r)| r.get(c) != Some(cell)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, options: &CsvOptions) -> Result<Table> {
        Table::parse(text.as_bytes(), Path::new("t.csv"), options)
    }

    fn default(text: &str) -> Table {
        parse(text, &CsvOptions::default()).unwrap()
    }

    #[test]
    fn sniffs_delimiters_headers_quotes_and_missing_values() {
        let t = default("name;age;city\n\"Doe, J\" ; 31 ; Paris\nRoe;NA;\n");
        assert_eq!(t.names, vec!["name", "age", "city"]);
        assert_eq!(t.columns[0][0].as_deref(), Some("Doe, J"));
        assert_eq!(t.columns[1][1], None);
        assert_eq!(t.columns[2][1], None);
        let t = default("a\tb\n1\t2\n");
        assert_eq!((t.names.len(), t.rows()), (2, 1));
        // No header: numbers throughout.
        let t = default("1,2,0\n3,4,1\n");
        assert_eq!(t.names, vec!["column_1", "column_2", "column_3"]);
        assert_eq!(t.rows(), 2);
        assert_eq!(t.lines, vec![1, 2]);
    }

    #[test]
    fn skip_rows_handles_a_line_of_counts() {
        // scikit-learn's layout: a line of counts and class names, then rows.
        let text = "3,2,setosa,versicolor\n5.1,3.5,0\n4.9,3.0,1\n4.7,3.2,0\n";
        let options = CsvOptions {
            skip_rows: 1,
            header: Some(false),
            ..CsvOptions::default()
        };
        let t = parse(text, &options).unwrap();
        assert_eq!((t.rows(), t.names.len()), (3, 3));
        assert_eq!(t.lines, vec![2, 3, 4]);
        assert_eq!(t.column("last").unwrap(), 2);
        assert_eq!(t.column("0").unwrap(), 0);
        assert!(t
            .column("species")
            .unwrap_err()
            .to_string()
            .contains("no column 'species'"));
    }

    #[test]
    fn rows_are_numbered_by_their_file_lines() {
        let lines = |text: &str, options: &CsvOptions| {
            let t = parse(text, options).unwrap();
            let rejected: Vec<u64> = t.rejected.iter().map(|r| r.line).collect();
            (t.lines, rejected)
        };
        let drop = CsvOptions {
            drop_bad_rows: true,
            ..CsvOptions::default()
        };
        // Blank lines, before the header and between rows, are lines of the file.
        assert_eq!(
            lines("\na,b\n1,2\n\n\n3\n4,5\n", &drop),
            (vec![3, 7], vec![6])
        );
        // CRLF line ends, and a blank CRLF line.
        assert_eq!(
            lines("1,2\r\n3,4\r\n\r\n5\r\n6,7\r\n", &drop),
            (vec![1, 2, 5], vec![4])
        );
        // A quoted cell over two lines: the row after it is on the line after both.
        assert_eq!(lines("a,b\n\"x\ny\",1\n2,3\n", &drop), (vec![2, 4], vec![]));
        let skip = CsvOptions {
            skip_rows: 1,
            ..drop
        };
        assert_eq!(
            lines("3,2,counts\r\n\r\n1,2\r\n3\r\n", &skip),
            (vec![3], vec![4])
        );
        // Errors name the same lines.
        let e = parse("a,b\r\n1,2\r\n\r\n3\r\n", &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4: 1 fields, expected 2"), "{e}");
    }

    #[test]
    fn duplicate_names_and_empty_rows() {
        let t = default("a,a,a_2\n1,2,3\n,,\n\n4,5,6\n");
        assert_eq!(t.names, vec!["a", "a_2", "a_2_2"]);
        assert_eq!(t.rows(), 3, "the row of empty cells is kept");
        assert_eq!(t.columns[0][1], None);
    }

    #[test]
    fn ragged_rows_fail_or_are_dropped_and_reported() {
        let text = "a,b\n1,2\n3\n4,5,6\n7,8\n";
        let e = parse(text, &CsvOptions::default()).unwrap_err().to_string();
        assert!(e.contains("t.csv: line 3: 1 fields, expected 2"), "{e}");
        let t = parse(
            text,
            &CsvOptions {
                drop_bad_rows: true,
                ..CsvOptions::default()
            },
        )
        .unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(
            t.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn a_few_bad_cells_in_a_number_column_become_missing_and_are_reported() {
        for bad in ["inf", "0.3.1", "1e400", "-5e300", "1e39"] {
            let mut text = String::from("x,y\n");
            for i in 0..40 {
                let x = if i == 7 {
                    bad.to_string()
                } else {
                    format!("{}.5", i)
                };
                text.push_str(&format!("{x},{}\n", i % 2));
            }
            let t = parse(&text, &CsvOptions::default()).unwrap();
            assert_eq!(t.kind(0), ColumnKind::Numeric, "{bad}");
            assert_eq!(t.columns[0][7], None, "{bad}");
            assert_eq!(
                t.bad_cells,
                vec![BadCell {
                    line: 9,
                    column: "x".into(),
                    text: bad.into()
                }]
            );
        }
        // A multi-line cell too; but a column of words with a few numbers stays text.
        let mut text = String::from("x,y\n");
        for i in 0..40 {
            let x = if i == 3 {
                "\"4\n5\"".to_string()
            } else {
                i.to_string()
            };
            text.push_str(&format!("{x},{}\n", i % 2));
        }
        let t = parse(&text, &CsvOptions::default()).unwrap();
        assert_eq!(t.bad_cells.len(), 1);
        assert_eq!(t.bad_cells[0].text, "4\n5");
        let words: String = std::iter::once("x\n".to_string())
            .chain((0..40).map(|i| match i % 4 {
                0 => format!("{i}\n"),
                _ => format!("word{i}\n"),
            }))
            .collect();
        let t = parse(&words, &CsvOptions::default()).unwrap();
        assert!(t.bad_cells.is_empty());
        assert_ne!(t.kind(0), ColumnKind::Numeric);
    }

    #[test]
    fn an_unclosed_quote_is_named_where_it_opens() {
        let mut text = String::from("a,b,y\n");
        for i in 0..200 {
            match i {
                50 => text.push_str("1,\"two,0\n"),
                _ => text.push_str(&format!("{i},{},{}\n", i * 2, i % 2)),
            }
        }
        for drop_bad_rows in [false, true] {
            let options = CsvOptions {
                drop_bad_rows,
                ..CsvOptions::default()
            };
            let e = parse(&text, &options).unwrap_err().to_string();
            assert!(
                e.contains("t.csv: line 52: a quote opened here is never closed")
                    && e.contains("the 150 lines to the end"),
                "{e}"
            );
        }
        // Quotes that close, escaped quotes, quoted newlines and a quote inside a field are
        // all fine.
        let fine = "a,b\n\"x, \"\"quoted\"\"\",1\n\"two\nlines\",2\n5\",3\n";
        let t = parse(fine, &CsvOptions::default()).unwrap();
        assert_eq!(t.rows(), 3);
        assert_eq!(t.columns[0][0].as_deref(), Some("x, \"quoted\""));
        assert_eq!(t.columns[0][2].as_deref(), Some("5\""));
    }

    #[test]
    fn binary_files_are_named_for_what_they_look_like() {
        for (bytes, says) in [
            (
                &b"\x89PNG\r\n\x1a\nrest"[..],
                "is a PNG image, not a CSV table",
            ),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 1][..], "is a JPEG image"),
            (
                &[0x1F, 0x8B, 8, 0][..],
                "is gzip-compressed, but its data is corrupt",
            ),
            (&b"PAR1\x15\x04"[..], "is an Apache Parquet file"),
            (&[0, 0, 8, 1, 0, 0, 0, 1, 7][..], "binary (an IDX file?)"),
            (&b"a,b\n1,\x002\n"[..], "is binary"),
        ] {
            let e = Table::parse(bytes, Path::new("x.png"), &CsvOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("x.png") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_compressed_table_reads_as_its_text_and_a_bomb_stops_at_the_limit() {
        use std::io::Write;
        let text = "a,b,y\n1,2,x\n3,4,z\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            text.as_bytes(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let plain = parse(text, &CsvOptions::default()).unwrap();
        for bytes in [&gz, &zst] {
            let t = Table::parse(bytes, Path::new("t.csv.gz"), &CsvOptions::default()).unwrap();
            assert_eq!(
                (t.names.clone(), t.columns.clone()),
                (plain.names.clone(), plain.columns.clone())
            );
        }
        // A gzip member that unpacks past the limit is refused, not unpacked into memory.
        let small = crate::read::Limit {
            bytes: 1 << 20,
            ..crate::read::Limit::TABLE
        };
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b'1'; 2 << 20]).unwrap();
        let bomb = bomb.finish().unwrap();
        let e = crate::read::decompressed(&bomb, small, Path::new("bomb.csv.gz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bomb.csv.gz: holds more than the 1 MiB"), "{e}");
        // Cut short: corrupt, named.
        let e = Table::parse(
            &gz[..gz.len() / 2],
            Path::new("cut.csv.gz"),
            &CsvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cut.csv.gz: is gzip-compressed, but its data is corrupt"),
            "{e}"
        );
    }

    #[test]
    fn a_header_without_rows_is_named_as_such() {
        for (text, options) in [
            ("a,b,y\n", CsvOptions::default()),
            (
                "1,2,3\n",
                CsvOptions {
                    header: Some(true),
                    ..CsvOptions::default()
                },
            ),
        ] {
            let e = parse(text, &options).unwrap_err().to_string();
            assert!(
                e.contains("has a header") && e.contains("but no rows"),
                "{e}"
            );
        }
        // One row of numbers is one row.
        assert_eq!(parse("1,2,3\n", &CsvOptions::default()).unwrap().rows(), 1);
    }

    #[test]
    fn repeated_names_get_free_suffixes_and_a_wide_header_is_quoted_in_part() {
        let t = default("a,b,a,a,a_2,,c\n1,2,3,4,5,6,7\n");
        assert_eq!(t.names, ["a", "b", "a_2", "a_3", "a_2_2", "column_6", "c"]);
        // Twenty thousand copies of one name: each its own, found in linear time.
        let wide = vec!["x"; 20_000].join(",");
        let t = default(&format!("{wide}\n{}\n", vec!["1"; 20_000].join(",")));
        let distinct: std::collections::HashSet<&String> = t.names.iter().collect();
        assert_eq!(distinct.len(), 20_000);
        assert_eq!(t.names[19_999], "x_20000");
        // A header with no rows under it is named in part, not quoted whole.
        let long = "n".repeat(10_000);
        let header: Vec<String> = (0..1000).map(|i| format!("{long}{i}")).collect();
        let e = parse(&header.join(","), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("… 1000 in all) but no rows") && e.len() < 1000,
            "{e}"
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let e = Table::parse(b"a,b\n1,\xff\n", Path::new("t.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: not valid UTF-8"), "{e}");
        assert!(parse("", &CsvOptions::default())
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        assert!(parse("\n\n", &CsvOptions::default())
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        let e = parse(
            "a,b\n",
            &CsvOptions {
                header: Some(true),
                ..CsvOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("header (a, b) but no rows"), "{e}");
    }

    #[test]
    fn infers_column_kinds() {
        let mut text = String::from("id,x,flag,colour,name,empty\n");
        for i in 0..30 {
            text += &format!(
                "{},{}.5,{},{},Person {i},\n",
                i + 1,
                i % 7,
                if i % 2 == 0 { "yes" } else { "no" },
                ["red", "green"][i % 2]
            );
        }
        let t = default(&text);
        let kinds: Vec<ColumnKind> = (0..6).map(|i| t.kind(i)).collect();
        use ColumnKind::*;
        assert_eq!(
            kinds,
            vec![
                Identifier,
                Numeric,
                Boolean,
                Categorical,
                Categorical,
                Empty
            ]
        );
        let s = t.summary(1);
        assert_eq!((s.min, s.max, s.missing), (Some(0.5), Some(6.5), 0));
        let s = t.summary(3);
        assert_eq!(
            s.top,
            vec![("green".to_string(), 15), ("red".to_string(), 15)]
        );
    }
}
