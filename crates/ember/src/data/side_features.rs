//! Side features of users or items for recommendation (MovieLens's `u.user`, RecBole's `.user`
//! and `.item` files): one row per id, its columns turned into numbers — numbers standardised,
//! few categories one-hot, token lists (genres) multi-hot, titles kept for display — and every
//! column left out named with the reason.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::interactions::{bare_name, split_lines};
use crate::error::{Error, Result};
use crate::tensor::stats;

/// Categorical columns with more distinct values than this are left out (zip codes, names).
const MAX_CATEGORIES: usize = 64;

/// How one column of a side table became features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnUse {
    /// Standardised with the table's mean and standard deviation; missing is the mean, and
    /// so are the few cells that are not numbers (counted).
    Numeric {
        mean: f64,
        std: f64,
        not_numbers: usize,
    },
    /// One feature per category.
    Categories { values: Vec<String> },
    /// Space-separated tokens, one feature per token (genres).
    Tokens { values: Vec<String> },
    /// Shown as the row's title, not a feature.
    Title,
    /// Left out, with the reason.
    Unused { reason: String },
}

/// A table of features per id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideFeatures {
    pub path: PathBuf,
    /// The column names (position names `column N` for a file without a header).
    pub columns: Vec<String>,
    pub uses: Vec<ColumnUse>,
    /// One name per feature (`age`, `gender=F`, `class=Drama`).
    pub names: Vec<String>,
    /// The ids, in file order.
    pub ids: Vec<String>,
    /// Row-major features, `ids.len() × names.len()`.
    pub values: Vec<f32>,
    /// Titles by row, where a column is a title.
    pub titles: Option<Vec<String>>,
}

/// A cell as a finite number (`NaN` and `inf` are not).
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// How many of `cells` are numbers.
fn numbers(cells: &[&str]) -> usize {
    cells.iter().filter(|s| number(s).is_some()).count()
}

const KEY_NAMES: [&str; 6] = ["id", "user_id", "item_id", "movie_id", "user", "item"];
const TOKEN_NAMES: [&str; 6] = ["class", "genre", "genres", "tags", "categories", "category"];

impl SideFeatures {
    /// Reads a side table: the first column is the id.
    pub fn read(path: impl AsRef<Path>) -> Result<SideFeatures> {
        let path = path.as_ref();
        let bytes = crate::read::file(path, crate::read::Limit::RATINGS)?;
        Self::parse(&bytes, path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<SideFeatures> {
        let rows = split_lines(path, bytes, None)?;
        let first = &rows[0].1;
        let numeric = |s: &str| s.parse::<f64>().is_ok();
        let header = first.iter().any(|f| f.contains(':'))
            || KEY_NAMES.contains(&bare_name(&first[0]).as_str())
            || (!numeric(&first[0]) && rows.get(1).is_some_and(|(_, r)| numeric(&r[0])));
        let width = first.len();
        if width < 2 {
            return Err(Error::data(
                path,
                "a side table needs an id column and at least one more",
            ));
        }
        let columns: Vec<String> = if header {
            first.iter().map(|f| bare_name(f)).collect()
        } else {
            (1..=width).map(|i| format!("column {i}")).collect()
        };
        let typed: Vec<&str> = if header {
            first
                .iter()
                .map(|f| f.split(':').nth(1).unwrap_or(""))
                .collect()
        } else {
            vec![""; width]
        };
        let body = if header { &rows[1..] } else { &rows[..] };
        if body.is_empty() {
            return Err(Error::data(
                path,
                "a header and no rows: there is nothing to read",
            ));
        }
        for (line, row) in body {
            if row.len() != width {
                return Err(Error::data(
                    path,
                    format!(
                        "line {line}: has {} fields, the first row has {width}",
                        row.len()
                    ),
                ));
            }
        }
        let mut ids = Vec::with_capacity(body.len());
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for (line, row) in body {
            if let Some(first_line) = seen.insert(&row[0], *line) {
                return Err(Error::data(
                    path,
                    format!(
                        "line {line}: the id '{}' again (first on line {first_line})",
                        row[0]
                    ),
                ));
            }
            ids.push(row[0].clone());
        }

        let mut uses = vec![ColumnUse::Unused {
            reason: "the id".into(),
        }];
        let mut titles = None;
        for c in 1..width {
            let cells: Vec<&str> = body.iter().map(|(_, r)| r[c].as_str()).collect();
            let present: Vec<&str> = cells.iter().copied().filter(|s| !s.is_empty()).collect();
            let name = &columns[c];
            let distinct: BTreeMap<&str, ()> = present.iter().map(|s| (*s, ())).collect();
            let use_ = if name.contains("title") || name.contains("name") {
                if titles.is_none() {
                    titles = Some(cells.iter().map(|s| s.to_string()).collect());
                }
                ColumnUse::Title
            } else if typed[c] == "token_seq" || TOKEN_NAMES.contains(&name.as_str()) {
                let tokens: BTreeMap<&str, ()> = present
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(|t| (t, ()))
                    .collect();
                if tokens.len() > MAX_CATEGORIES * 4 {
                    ColumnUse::Unused {
                        reason: format!("{} distinct tokens", tokens.len()),
                    }
                } else {
                    ColumnUse::Tokens {
                        values: tokens.keys().map(|s| s.to_string()).collect(),
                    }
                }
            } else if present.is_empty() {
                ColumnUse::Unused {
                    reason: "every cell is empty".into(),
                }
            } else if numbers(&present) * 100 >= present.len() * 99 && distinct.len() > 2 {
                // At least 99% numbers: a number column with a few bad cells, read as
                // missing and reported. (Zip codes, 2% letters, are not numbers.)
                let values: Vec<f64> = present.iter().filter_map(|s| number(s)).collect();
                let (mean, std) = stats::mean_std(&values, 0);
                ColumnUse::Numeric {
                    mean,
                    std: if std > 0.0 { std } else { 1.0 },
                    not_numbers: present.len() - values.len(),
                }
            } else if distinct.len() <= MAX_CATEGORIES {
                ColumnUse::Categories {
                    values: distinct.keys().map(|s| s.to_string()).collect(),
                }
            } else {
                ColumnUse::Unused {
                    reason: format!("{} distinct values", distinct.len()),
                }
            };
            uses.push(use_);
        }

        let mut names = Vec::new();
        for (name, use_) in columns.iter().zip(&uses) {
            match use_ {
                ColumnUse::Numeric { .. } => names.push(name.clone()),
                ColumnUse::Categories { values } | ColumnUse::Tokens { values } => {
                    names.extend(values.iter().map(|v| format!("{name}={v}")))
                }
                ColumnUse::Title | ColumnUse::Unused { .. } => {}
            }
        }
        let dim = names.len();
        let mut values = vec![0.0f32; body.len() * dim];
        for (r, (_, row)) in body.iter().enumerate() {
            let out = &mut values[r * dim..(r + 1) * dim];
            let mut at = 0;
            for (cell, use_) in row.iter().zip(&uses) {
                match use_ {
                    ColumnUse::Numeric { mean, std, .. } => {
                        out[at] = number(cell).map_or(0.0, |v| ((v - mean) / std) as f32);
                        at += 1;
                    }
                    ColumnUse::Categories { values } => {
                        if let Ok(k) = values.binary_search_by(|v| v.as_str().cmp(cell)) {
                            out[at + k] = 1.0;
                        }
                        at += values.len();
                    }
                    ColumnUse::Tokens { values } => {
                        for token in cell.split_whitespace() {
                            if let Ok(k) = values.binary_search_by(|v| v.as_str().cmp(token)) {
                                out[at + k] = 1.0;
                            }
                        }
                        at += values.len();
                    }
                    ColumnUse::Title | ColumnUse::Unused { .. } => {}
                }
            }
        }
        if dim == 0 {
            return Err(Error::data(
                path,
                format!("no column gives features: {}", describe(&columns, &uses)),
            ));
        }
        Ok(SideFeatures {
            path: path.to_path_buf(),
            columns,
            uses,
            names,
            ids,
            values,
            titles,
        })
    }

    pub fn dim(&self) -> usize {
        self.names.len()
    }

    /// The features of row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        let d = self.dim();
        &self.values[r * d..(r + 1) * d]
    }

    /// How each column was used, in one line (`age: numeric; gender: 2 categories; …`).
    pub fn describe(&self) -> String {
        describe(&self.columns, &self.uses)
    }
}

fn describe(columns: &[String], uses: &[ColumnUse]) -> String {
    columns
        .iter()
        .zip(uses)
        .skip(1)
        .map(|(name, use_)| match use_ {
            ColumnUse::Numeric { not_numbers: 0, .. } => format!("{name}: number"),
            ColumnUse::Numeric { not_numbers, .. } => {
                format!("{name}: number ({not_numbers} cells not numbers, read as missing)")
            }
            ColumnUse::Categories { values } => format!("{name}: {} categories", values.len()),
            ColumnUse::Tokens { values } => format!("{name}: {} tokens", values.len()),
            ColumnUse::Title => format!("{name}: title"),
            ColumnUse::Unused { reason } => format!("{name}: not used ({reason})"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recbole_item_table_gives_titles_years_and_genres() {
        let text = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n\
                    1\tToy Story\t1995\tAnimation Children's Comedy\n\
                    2\tGoldenEye\t1996\tAction Adventure Thriller\n\
                    3\tFour Rooms\t1997\tThriller\n";
        let t = SideFeatures::parse(text.as_bytes(), Path::new("ml.item")).unwrap();
        assert_eq!(t.ids, ["1", "2", "3"]);
        assert_eq!(t.titles.as_deref().unwrap()[1], "GoldenEye");
        assert_eq!(t.names[0], "release_year");
        assert!(t.names.contains(&"class=Thriller".to_string()));
        // Years standardised: mean 1996, std 0.8165.
        assert!((t.row(0)[0] + 1.2247).abs() < 1e-3, "{:?}", t.row(0));
        let thriller = t.names.iter().position(|n| n == "class=Thriller").unwrap();
        assert_eq!(
            [t.row(0)[thriller], t.row(1)[thriller], t.row(2)[thriller]],
            [0.0, 1.0, 1.0]
        );
        assert!(t.describe().contains("class: 6 tokens"), "{}", t.describe());
        // A year column with one bad cell among 100 numbers is still numbers, and says so.
        let mut text = String::from("item_id:token\trelease_year:token\n");
        for i in 0..100 {
            text.push_str(&format!("{i}\t{}\n", 1900 + i));
        }
        text.push_str("100\tunkonwn\n");
        let t = SideFeatures::parse(text.as_bytes(), Path::new("ml.item")).unwrap();
        assert_eq!(t.row(100), [0.0]);
        assert!(t
            .describe()
            .contains("release_year: number (1 cells not numbers, read as missing)"));
    }

    #[test]
    fn a_headerless_pipe_table_one_hots_categories_and_leaves_out_ids_like_zips() {
        let mut text = String::new();
        for u in 1..=80 {
            let gender = if u % 3 == 0 { "F" } else { "M" };
            text.push_str(&format!(
                "{u}|{}|{gender}|job{}|Z{u:04}\n",
                20 + u % 30,
                u % 4
            ));
        }
        let t = SideFeatures::parse(text.as_bytes(), Path::new("u.user")).unwrap();
        assert_eq!(t.columns[1], "column 2");
        assert_eq!(t.dim(), 1 + 2 + 4);
        assert_eq!(&t.row(2)[1..3], &[1.0, 0.0]);
        assert!(t
            .describe()
            .contains("column 5: not used (80 distinct values)"));
    }

    #[test]
    fn ragged_rows_and_repeated_ids_are_errors_naming_the_line() {
        let err = SideFeatures::parse(b"1|a\n2|b|c\n", Path::new("u.user")).unwrap_err();
        assert!(
            err.to_string().contains("u.user: line 2: has 3 fields"),
            "{err}"
        );
        let err = SideFeatures::parse(b"1|a\n1|b\n", Path::new("u.user")).unwrap_err();
        assert!(
            err.to_string().contains("line 2: the id '1' again"),
            "{err}"
        );
    }
}
