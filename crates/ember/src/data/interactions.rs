//! Interaction files for recommendation: (user, item[, rating][, timestamp]) rows from CSV, TSV
//! or MovieLens's `::` files, with ids read as categories. Duplicated pairs, ratings that are
//! not numbers or fall outside the declared range, and empty files are errors naming the line,
//! or — when asked — dropped and counted, never silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What to do with a (user, item) pair that appears more than once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// Stop with an error naming both lines.
    #[default]
    Error,
    /// Keep the pair's first row, count the others.
    First,
    /// Keep the pair's last row (the latest, in a file sorted by time), count the others.
    Last,
}

impl Duplicates {
    /// The policy named `name`: error, first or last (`--duplicates`).
    pub fn parse(name: &str) -> std::result::Result<Duplicates, String> {
        match name {
            "error" => Ok(Duplicates::Error),
            "first" => Ok(Duplicates::First),
            "last" => Ok(Duplicates::Last),
            other => Err(format!("'{other}' is not error, first or last")),
        }
    }

    /// The policy's name: error, first or last.
    pub fn name(self) -> &'static str {
        match self {
            Duplicates::Error => "error",
            Duplicates::First => "first",
            Duplicates::Last => "last",
        }
    }
}

/// How to read an interactions file. The defaults read MovieLens's `u.data`, RecBole's
/// `.inter` files and any file with a `user, item, rating, timestamp` header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InteractionOptions {
    /// Field delimiter; None sniffs tab, comma, `|`, `;` and `::` from the first line.
    pub delimiter: Option<char>,
    /// Whether the first line is a header; None detects it (a known column name, or a
    /// rating field that is not a number).
    pub header: Option<bool>,
    /// The user, item, rating and timestamp columns: a header name or a 1-based position.
    /// None takes the usual names (`user`, `user_id`, `userId`, …), or positions 1–4.
    pub user: Option<String>,
    pub item: Option<String>,
    pub rating: Option<String>,
    pub timestamp: Option<String>,
    /// No rating column: every row is one interaction (implicit feedback).
    pub implicit: bool,
    /// The valid ratings, inclusive; None accepts any finite number.
    pub rating_range: Option<(f32, f32)>,
    pub duplicates: Duplicates,
    /// Drop rows with a bad rating or too few fields (counted) instead of failing.
    pub drop_bad_rows: bool,
}

impl Default for InteractionOptions {
    fn default() -> Self {
        InteractionOptions {
            delimiter: None,
            header: None,
            user: None,
            item: None,
            rating: None,
            timestamp: None,
            implicit: false,
            rating_range: None,
            duplicates: Duplicates::Error,
            drop_bad_rows: false,
        }
    }
}

/// String ids and the dense indices they are known by, in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ids {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Ids {
    pub fn from_names(names: Vec<String>) -> Result<Ids> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if index.insert(name.clone(), i as u32).is_some() {
                return Err(Error::invalid(format!("the id '{name}' appears twice")));
            }
        }
        Ok(Ids { names, index })
    }

    /// The index of `name`, added if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What reading an interactions file left out, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InteractionReport {
    /// Rows of the file (header excluded).
    pub rows: usize,
    pub duplicates_dropped: usize,
    /// Rows dropped under `drop_bad_rows`, with the first few reasons.
    pub bad_rows_dropped: usize,
    pub first_bad_rows: Vec<String>,
}

/// Interactions: parallel columns of user index, item index and rating (1 for implicit
/// feedback), one entry per (user, item) pair.
#[derive(Clone, Debug)]
pub struct Interactions {
    pub path: PathBuf,
    pub users: Ids,
    pub items: Ids,
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    /// Seconds (or whatever the file counts in), where the file has them.
    pub timestamp: Option<Vec<i64>>,
    /// Whether the ratings came from a rating column (explicit feedback).
    pub explicit: bool,
    /// 1-based file line of each interaction.
    pub lines: Vec<u64>,
    pub report: InteractionReport,
}

const USER_NAMES: [&str; 5] = ["user", "user_id", "userid", "uid", "customer_id"];
const ITEM_NAMES: [&str; 8] = [
    "item",
    "item_id",
    "itemid",
    "iid",
    "movie",
    "movie_id",
    "movieid",
    "product_id",
];
const RATING_NAMES: [&str; 4] = ["rating", "ratings", "score", "stars"];
const TIMESTAMP_NAMES: [&str; 4] = ["timestamp", "time", "ts", "date"];

/// A header name without RecBole's `:type` suffix, lower-cased (`user_id:token` → `user_id`).
pub(crate) fn bare_name(name: &str) -> String {
    name.split(':').next().unwrap_or(name).trim().to_lowercase()
}

/// The delimiter of a line: the most frequent of tab, comma, `|` and `;` (`::` counts as one,
/// turned into a tab before parsing).
pub(crate) fn sniff_delimiter(first_line: &str) -> (u8, bool) {
    if first_line.contains("::") {
        return (b'\t', true);
    }
    let candidates = [b'\t', b',', b'|', b';'];
    let best = candidates
        .iter()
        .copied()
        .max_by_key(|&c| first_line.bytes().filter(|&b| b == c).count())
        .unwrap_or(b'\t');
    (best, false)
}

/// The fields of every line of `text`, with their 1-based line numbers, skipping blank lines.
pub(crate) fn split_lines(
    path: &Path,
    bytes: &[u8],
    delimiter: Option<char>,
) -> Result<Vec<(u64, Vec<String>)>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!("is not UTF-8 text (byte {})", e.valid_up_to()),
        )
    })?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Error::data(path, "is empty: there are no rows to read"))?;
    let (delimiter, double_colon) = match delimiter {
        Some(c) if c.is_ascii() => (c as u8, false),
        Some(c) => {
            return Err(Error::invalid(format!(
                "the delimiter must be one ASCII character, got '{c}'"
            )))
        }
        None => sniff_delimiter(first),
    };
    let replaced;
    let text = if double_colon {
        replaced = text.replace("::", "\t");
        replaced.as_str()
    } else {
        text
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) if record.iter().all(str::is_empty) => {}
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                rows.push((line, record.iter().map(String::from).collect()));
            }
            Err(e) => {
                return Err(Error::data(
                    path,
                    format!("line {line}: cannot be read: {e}"),
                ))
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::data(path, "is empty: there are no rows to read"));
    }
    Ok(rows)
}

/// Which field holds `what`: a header name, a 1-based position, or the usual names.
fn find_column(
    path: &Path,
    header: Option<&[String]>,
    wanted: Option<&str>,
    usual: &[&str],
    position: usize,
    fields: usize,
    what: &str,
) -> Result<Option<usize>> {
    if let Some(wanted) = wanted {
        if let Ok(n) = wanted.parse::<usize>() {
            if n == 0 || n > fields {
                return Err(Error::data(
                    path,
                    format!("the {what} column {n} is out of range: rows have {fields} fields"),
                ));
            }
            return Ok(Some(n - 1));
        }
        let Some(header) = header else {
            return Err(Error::data(
                path,
                format!("the {what} column '{wanted}' is named, but the file has no header: give its position"),
            ));
        };
        let bare = bare_name(wanted);
        return header
            .iter()
            .position(|h| bare_name(h) == bare)
            .map(Some)
            .ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "no {what} column '{wanted}' (the header has: {})",
                        header.join(", ")
                    ),
                )
            });
    }
    match header {
        Some(header) => Ok(header
            .iter()
            .position(|h| usual.contains(&bare_name(h).as_str()))),
        None => Ok((position < fields).then_some(position)),
    }
}

/// A finite number, as a command-line value (`--relevant-min`).
pub fn parse_finite(text: &str) -> std::result::Result<f32, String> {
    text.parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{text}' is not a finite number"))
}

/// A rating range `MIN,MAX` of finite numbers, MIN at most MAX (`--rating-range`).
pub fn parse_range(text: &str) -> std::result::Result<(f32, f32), String> {
    let (low, high) = text
        .split_once(',')
        .ok_or_else(|| format!("'{text}' is not MIN,MAX"))?;
    let (low, high) = (parse_finite(low.trim())?, parse_finite(high.trim())?);
    if low > high {
        return Err(format!("{low} is above {high}"));
    }
    Ok((low, high))
}

impl InteractionOptions {
    /// Refuses the rating settings of a file read without ratings (`--implicit`).
    pub fn check(&self) -> Result<()> {
        let flag = match (self.rating.is_some(), self.rating_range.is_some()) {
            _ if !self.implicit => return Ok(()),
            (true, _) => "--rating-column",
            (_, true) => "--rating-range",
            _ => return Ok(()),
        };
        Err(Error::invalid(format!(
            "{flag} does nothing with --implicit: the file is read without ratings"
        )))
    }
}

impl Interactions {
    /// Reads an interactions file.
    pub fn read(path: impl AsRef<Path>, options: &InteractionOptions) -> Result<Interactions> {
        let path = path.as_ref();
        options.check()?;
        let bytes = crate::read::file(path, crate::read::Limit::RATINGS)?;
        Self::parse(&bytes, path, options)
    }

    /// Parses interaction rows; `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path, options: &InteractionOptions) -> Result<Interactions> {
        let rows = split_lines(path, bytes, options.delimiter)?;
        let (first_line, first) = &rows[0];
        let is_name = |f: &String| {
            let bare = bare_name(f);
            [
                &USER_NAMES[..],
                &ITEM_NAMES,
                &RATING_NAMES,
                &TIMESTAMP_NAMES,
            ]
            .iter()
            .any(|names| names.contains(&bare.as_str()))
        };
        let header = options.header.unwrap_or_else(|| {
            first.iter().any(is_name)
                || (!options.implicit
                    && first.len() >= 3
                    && first[2].parse::<f64>().is_err()
                    && rows
                        .get(1)
                        .is_some_and(|(_, r)| r.get(2).is_some_and(|v| v.parse::<f64>().is_ok())))
        });
        let header_fields = header.then(|| first.clone());
        let fields = first.len();
        let body = if header { &rows[1..] } else { &rows[..] };
        if body.is_empty() {
            return Err(Error::data(
                path,
                format!("line {first_line}: a header and no rows: there is nothing to read"),
            ));
        }
        let h = header_fields.as_deref();
        let user = find_column(
            path,
            h,
            options.user.as_deref(),
            &USER_NAMES,
            0,
            fields,
            "user",
        )?
        .ok_or_else(|| {
            Error::data(
                path,
                "no user column in the header (--user-column names it)",
            )
        })?;
        let item = find_column(
            path,
            h,
            options.item.as_deref(),
            &ITEM_NAMES,
            1,
            fields,
            "item",
        )?
        .ok_or_else(|| {
            Error::data(
                path,
                "no item column in the header (--item-column names it)",
            )
        })?;
        if user == item {
            return Err(Error::data(
                path,
                "the user and item columns are the same column",
            ));
        }
        let rating = if options.implicit {
            None
        } else {
            let column = find_column(
                path,
                h,
                options.rating.as_deref(),
                &RATING_NAMES,
                2,
                fields,
                "rating",
            )?;
            Some(column.ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "no rating column (line {first_line} has {fields} fields): --rating-column names it, --implicit reads a file without ratings"
                    ),
                )
            })?)
        };
        let timestamp = find_column(
            path,
            h,
            options.timestamp.as_deref(),
            &TIMESTAMP_NAMES,
            3,
            fields,
            "timestamp",
        )?;
        if let Some((low, high)) = options.rating_range {
            if !(low.is_finite() && high.is_finite() && low <= high) {
                return Err(Error::invalid(format!(
                    "the rating range {low}..{high} is not a range of finite numbers"
                )));
            }
        }
        let needed = [Some(user), Some(item), rating, timestamp]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
            + 1;

        let mut out = Interactions {
            path: path.to_path_buf(),
            users: Ids::default(),
            items: Ids::default(),
            user: Vec::with_capacity(body.len()),
            item: Vec::with_capacity(body.len()),
            rating: Vec::with_capacity(body.len()),
            timestamp: timestamp.map(|_| Vec::with_capacity(body.len())),
            explicit: rating.is_some(),
            lines: Vec::with_capacity(body.len()),
            report: InteractionReport {
                rows: body.len(),
                ..Default::default()
            },
        };
        // (user, item) → position in `out`, for duplicates.
        let mut seen: HashMap<(u32, u32), usize> = HashMap::with_capacity(body.len());
        for (line, row) in body {
            let parsed = (|| -> std::result::Result<(f32, Option<i64>), String> {
                if row.len() < needed {
                    return Err(format!("has {} fields, {needed} needed", row.len()));
                }
                if row[user].is_empty() || row[item].is_empty() {
                    return Err("has an empty user or item id".into());
                }
                let value = match rating {
                    None => 1.0,
                    Some(c) => {
                        let text = &row[c];
                        let value = match text.parse::<f32>() {
                            Ok(v) if v.is_finite() => v,
                            // A number, but not one a rating can be (1e39, inf, NaN).
                            Ok(_) => {
                                return Err(format!(
                                    "rating '{text}' is not a finite number within f32's range"
                                ))
                            }
                            Err(_) => return Err(format!("rating '{text}' is not a number")),
                        };
                        if let Some((low, high)) = options.rating_range {
                            if !(low..=high).contains(&value) {
                                return Err(format!(
                                    "rating {value} is outside the declared range {low}..{high}"
                                ));
                            }
                        }
                        value
                    }
                };
                let time = match timestamp {
                    None => None,
                    Some(c) => Some(
                        row[c]
                            .parse::<f64>()
                            .ok()
                            .filter(|t| t.is_finite())
                            .map(|t| t as i64)
                            .ok_or_else(|| format!("timestamp '{}' is not a number", row[c]))?,
                    ),
                };
                Ok((value, time))
            })();
            let (value, time) = match parsed {
                Ok(v) => v,
                Err(reason) if options.drop_bad_rows => {
                    out.report.bad_rows_dropped += 1;
                    if out.report.first_bad_rows.len() < 5 {
                        out.report
                            .first_bad_rows
                            .push(format!("line {line}: {reason}"));
                    }
                    continue;
                }
                Err(reason) => {
                    return Err(Error::data(
                        path,
                        format!(
                        "line {line}: {reason} (--drop-bad-rows drops such rows and counts them)"
                    ),
                    ))
                }
            };
            let u = out.users.intern(&row[user]);
            let i = out.items.intern(&row[item]);
            if let Some(&at) = seen.get(&(u, i)) {
                match options.duplicates {
                    Duplicates::Error => {
                        return Err(Error::data(
                            path,
                            format!(
                                "line {line}: user '{}' and item '{}' again (first on line {}); --duplicates first|last keeps one and counts the rest",
                                row[user], row[item], out.lines[at]
                            ),
                        ))
                    }
                    Duplicates::First => {}
                    Duplicates::Last => {
                        out.rating[at] = value;
                        out.lines[at] = *line;
                        if let (Some(ts), Some(t)) = (out.timestamp.as_mut(), time) {
                            ts[at] = t;
                        }
                    }
                }
                out.report.duplicates_dropped += 1;
                continue;
            }
            seen.insert((u, i), out.user.len());
            out.user.push(u);
            out.item.push(i);
            out.rating.push(value);
            out.lines.push(*line);
            if let (Some(ts), Some(t)) = (out.timestamp.as_mut(), time) {
                ts.push(t);
            }
        }
        if out.user.is_empty() {
            return Err(Error::data(
                path,
                "no row could be read: there is nothing to train on",
            ));
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The interactions at `rows`, with ids re-indexed over the users and items they hold.
    pub fn subset(&self, rows: &[usize]) -> Interactions {
        let mut users = Ids::default();
        let mut items = Ids::default();
        let user = rows
            .iter()
            .map(|&r| users.intern(self.users.name(self.user[r])))
            .collect();
        let item = rows
            .iter()
            .map(|&r| items.intern(self.items.name(self.item[r])))
            .collect();
        Interactions {
            path: self.path.clone(),
            users,
            items,
            user,
            item,
            rating: rows.iter().map(|&r| self.rating[r]).collect(),
            timestamp: self
                .timestamp
                .as_ref()
                .map(|t| rows.iter().map(|&r| t[r]).collect()),
            explicit: self.explicit,
            lines: rows.iter().map(|&r| self.lines[r]).collect(),
            report: InteractionReport {
                rows: rows.len(),
                ..Default::default()
            },
        }
    }

    /// The smallest and largest rating.
    pub fn rating_bounds(&self) -> (f32, f32) {
        self.rating
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            })
    }

    /// Writes the interactions as `user \t item \t rating [\t timestamp]` lines (u.data's
    /// layout), atomically.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        let mut text = String::with_capacity(self.len() * 24);
        for r in 0..self.len() {
            text.push_str(self.users.name(self.user[r]));
            text.push('\t');
            text.push_str(self.items.name(self.item[r]));
            text.push('\t');
            text.push_str(&self.rating[r].to_string());
            if let Some(ts) = &self.timestamp {
                text.push('\t');
                text.push_str(&ts[r].to_string());
            }
            text.push('\n');
        }
        crate::atomic::write_atomically(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, options: &InteractionOptions) -> Result<Interactions> {
        Interactions::parse(text.as_bytes(), Path::new("ratings.csv"), options)
    }

    #[test]
    fn reads_u_data_recbole_and_headed_csv_alike() {
        let udata = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n";
        let recbole =
            format!("user_id:token\titem_id:token\trating:float\ttimestamp:float\n{udata}");
        let csv = "userId,movieId,rating,timestamp\n196,242,3,881250949\n186,302,3,891717742\n196,377,1,878887116\n";
        let ml1m = "196::242::3::881250949\n186::302::3::891717742\n196::377::1::878887116\n";
        for text in [udata, &recbole, csv, ml1m] {
            let r = parse(text, &InteractionOptions::default()).unwrap();
            assert_eq!(r.len(), 3);
            assert_eq!(r.users.names(), ["196", "186"]);
            assert_eq!(r.user, [0, 1, 0]);
            assert_eq!(r.item, [0, 1, 2]);
            assert_eq!(r.rating, [3.0, 3.0, 1.0]);
            assert_eq!(
                r.timestamp.as_deref(),
                Some(&[881250949, 891717742, 878887116][..])
            );
            assert!(r.explicit);
        }
    }

    #[test]
    fn columns_can_be_named_or_numbered() {
        let text = "ts;rating;item;who\n5;4.5;a;x\n6;2;b;y\n";
        let options = InteractionOptions {
            user: Some("who".into()),
            item: Some("3".into()),
            ..Default::default()
        };
        let r = parse(text, &options).unwrap();
        assert_eq!(r.users.names(), ["x", "y"]);
        assert_eq!(r.items.names(), ["a", "b"]);
        assert_eq!(r.rating, [4.5, 2.0]);
        let bad = InteractionOptions {
            user: Some("customer".into()),
            ..Default::default()
        };
        let err = parse(text, &bad).unwrap_err().to_string();
        assert!(
            err.contains("no user column 'customer'") && err.contains("who"),
            "{err}"
        );
    }

    #[test]
    fn implicit_files_have_two_columns() {
        let options = InteractionOptions {
            implicit: true,
            ..Default::default()
        };
        let r = parse("u1,i1\nu1,i2\nu2,i1\n", &options).unwrap();
        assert_eq!(r.rating, [1.0; 3]);
        assert!(!r.explicit);
        assert!(r.timestamp.is_none());
    }

    #[test]
    fn bad_rows_are_errors_naming_the_line_or_dropped_and_counted() {
        let text = "1\t1\t4\n1\t2\tfive\n2\t1\t9\n2\t2\n";
        let strict = InteractionOptions {
            rating_range: Some((1.0, 5.0)),
            ..Default::default()
        };
        let err = parse(text, &strict).unwrap_err().to_string();
        assert!(
            err.contains("ratings.csv: line 2: rating 'five' is not a number"),
            "{err}"
        );
        let err = parse("1\t1\t4\n2\t1\t1e39\n", &strict)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: rating '1e39' is not a finite number within f32's range"),
            "{err}"
        );
        let err = parse("1\t1\t4\n2\t1\t9\n", &strict)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: rating 9 is outside the declared range 1..5"),
            "{err}"
        );
        let lenient = InteractionOptions {
            drop_bad_rows: true,
            ..strict
        };
        let r = parse(text, &lenient).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.report.bad_rows_dropped, 3);
        assert_eq!(r.report.first_bad_rows[2], "line 4: has 2 fields, 3 needed");
    }

    #[test]
    fn duplicates_are_an_error_or_kept_once_and_counted() {
        let text = "1,1,4\n1,2,3\n1,1,2\n";
        let err = parse(text, &InteractionOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: user '1' and item '1' again (first on line 1)"),
            "{err}"
        );
        for (keep, rating) in [(Duplicates::First, 4.0), (Duplicates::Last, 2.0)] {
            let options = InteractionOptions {
                duplicates: keep,
                ..Default::default()
            };
            let r = parse(text, &options).unwrap();
            assert_eq!(
                (r.len(), r.rating[0], r.report.duplicates_dropped),
                (2, rating, 1)
            );
        }
    }

    #[test]
    fn empty_files_and_lone_headers_are_errors() {
        let err = parse("\n\n", &InteractionOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ratings.csv: is empty"), "{err}");
        let err = parse("user,item,rating\n", &InteractionOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("a header and no rows"), "{err}");
    }

    #[test]
    fn subsets_reindex_their_ids_and_tsv_round_trips() {
        let r = parse(
            "a\tx\t1\nb\ty\t2\nc\tx\t3\n",
            &InteractionOptions::default(),
        )
        .unwrap();
        let s = r.subset(&[2, 1]);
        assert_eq!(s.users.names(), ["c", "b"]);
        assert_eq!(s.items.names(), ["x", "y"]);
        assert_eq!(s.rating, [3.0, 2.0]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tsv");
        s.write_tsv(&path).unwrap();
        let back = Interactions::read(&path, &InteractionOptions::default()).unwrap();
        assert_eq!(
            (back.user, back.item, back.rating),
            (s.user, s.item, s.rating)
        );
    }
}
