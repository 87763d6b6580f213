//! The search space: `[tune.space]` entries, each naming a field of the file by its path
//! (`"layers[0].units"`, `"compile.optimizer.learning_rate"`) and the values it may take, and
//! how a point of the space is written into the file.
//!
//! ```toml
//! [tune.space]
//! "layers[0].units" = { choice = [64, 128, 256] }
//! "layers[1].rate" = { uniform = [0.0, 0.5] }
//! "compile.optimizer.learning_rate" = { log_uniform = [0.0001, 0.01] }
//! "layers[2].units" = { int = [16, 512], step = 16 }
//! "layers[2]" = { optional = true }      # the layer is present or not
//! ```

use std::fmt;

use crate::error::{Error, Result};

/// The most entries a space may have, and values a choice may list.
const MAX_ENTRIES: usize = 100;
const MAX_CHOICES: usize = 10_000;
/// Integer bounds beyond ±2^53 would not survive the study file's JSON numbers exactly.
const MAX_INT: i64 = 1 << 53;

/// The values one field may take.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// One of these values (any TOML value: numbers, strings, arrays, tables).
    Choice(Vec<toml::Value>),
    /// A float uniform in `[low, high]`.
    Uniform { low: f64, high: f64 },
    /// A float whose logarithm is uniform: `[low, high]` with `0 < low`.
    LogUniform { low: f64, high: f64 },
    /// An integer among `low, low + step, …, ≤ high`.
    Int { low: i64, high: i64, step: i64 },
    /// A layer of the stack is present or not (`"layers[i]" = { optional = true }`).
    Optional,
}

/// One searched field.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The field's path, as written in the space (`layers[0].units`).
    pub name: String,
    pub distribution: Distribution,
}

/// A parameter's value in a trial, as the samplers see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// The index of a choice; for an optional layer, 0 present and 1 absent.
    Index(usize),
    Float(f64),
    Int(i64),
}

/// The searched fields, sorted by path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Space {
    pub params: Vec<Param>,
}

/// A part of a field's path: a key, and the index into the array it names, if any.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    key: String,
    index: Option<usize>,
}

impl Distribution {
    /// How many values there are, when they can be counted (grid search).
    pub fn count(&self) -> Option<u64> {
        match self {
            Distribution::Choice(c) => Some(c.len() as u64),
            Distribution::Int { low, high, step } => Some(int_count(*low, *high, *step)),
            Distribution::Optional => Some(2),
            Distribution::Uniform { .. } | Distribution::LogUniform { .. } => None,
        }
    }

    /// The `i`-th of the countable values (grid search).
    pub fn nth(&self, i: u64) -> Value {
        match self {
            Distribution::Int { low, step, .. } => Value::Int(int_nth(*low, *step, i)),
            _ => Value::Index(i as usize),
        }
    }

    /// The values at the edges of the space, to check that each fits the file.
    fn extremes(&self) -> Vec<Value> {
        match self {
            Distribution::Choice(c) => (0..c.len()).map(Value::Index).collect(),
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                vec![Value::Float(*low), Value::Float(*high)]
            }
            Distribution::Int { low, high, step } => {
                vec![
                    Value::Int(*low),
                    Value::Int(int_nth(*low, *step, int_count(*low, *high, *step) - 1)),
                ]
            }
            Distribution::Optional => vec![Value::Index(0), Value::Index(1)],
        }
    }

    /// The value as it is written into the model file; None for an absent optional layer
    /// (and for a present one, which the file already holds).
    pub fn to_toml(&self, value: Value) -> Option<toml::Value> {
        match (self, value) {
            (Distribution::Choice(c), Value::Index(i)) => c.get(i).cloned(),
            (_, Value::Float(x)) => Some(toml::Value::Float(x)),
            (_, Value::Int(n)) => Some(toml::Value::Integer(n)),
            _ => None,
        }
    }

    /// The value for people and for the study file: a choice's value, a number, or whether
    /// an optional layer is present.
    pub fn to_json(&self, value: Value) -> serde_json::Value {
        match (self, value) {
            (Distribution::Optional, Value::Index(i)) => serde_json::Value::Bool(i == 0),
            (Distribution::Choice(c), Value::Index(i)) => c
                .get(i)
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(serde_json::Value::Null),
            (_, Value::Float(x)) => serde_json::json!(x),
            (_, Value::Int(n)) => serde_json::json!(n),
            (_, Value::Index(i)) => serde_json::json!(i),
        }
    }

    /// The value a study file recorded, back as a sampler's value (None when it does not
    /// belong to this distribution).
    pub fn from_json(&self, json: &serde_json::Value) -> Option<Value> {
        match self {
            Distribution::Optional => json.as_bool().map(|b| Value::Index(usize::from(!b))),
            Distribution::Choice(c) => c
                .iter()
                .position(|v| serde_json::to_value(v).ok().as_ref() == Some(json))
                .map(Value::Index),
            Distribution::Uniform { .. } | Distribution::LogUniform { .. } => {
                json.as_f64().map(Value::Float)
            }
            Distribution::Int { .. } => json.as_i64().map(Value::Int),
        }
    }
}

/// How many integers `low, low + step, …` are at most `high` (`low <= high`, `step >= 1`,
/// bounds within ±2^53, so nothing overflows).
pub fn int_count(low: i64, high: i64, step: i64) -> u64 {
    ((high - low) / step) as u64 + 1
}

/// The `i`-th of those integers (`i < int_count`, so it lies in `[low, high]`).
pub fn int_nth(low: i64, step: i64, i: u64) -> i64 {
    low + step * i as i64
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Index(i) => write!(f, "choice {i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Int(n) => write!(f, "{n}"),
        }
    }
}

impl Space {
    /// Reads `[tune.space]`; errors name the entry as `tune.space."PATH"`.
    pub fn parse(table: &toml::Table) -> std::result::Result<Space, (String, String)> {
        let mut params = Vec::new();
        for (name, entry) in table {
            let field = format!("tune.space.\"{name}\"");
            parse_path(name).map_err(|m| (field.clone(), m))?;
            let distribution = parse_entry(name, entry).map_err(|m| (field.clone(), m))?;
            params.push(Param {
                name: name.clone(),
                distribution,
            });
        }
        if params.is_empty() {
            return Err((
                "tune.space".into(),
                "is empty: name at least one field to search".into(),
            ));
        }
        if params.len() > MAX_ENTRIES {
            return Err((
                "tune.space".into(),
                format!(
                    "has {} entries; a search takes at most {MAX_ENTRIES}",
                    params.len()
                ),
            ));
        }
        Ok(Space { params })
    }

    /// Writes `values` (one per parameter) into `doc`, a model file as a TOML table, and
    /// removes the optional layers that are absent. Errors are (field, message).
    pub fn apply(
        &self,
        doc: &mut toml::Table,
        values: &[Value],
    ) -> std::result::Result<(), (String, String)> {
        let mut absent = Vec::new();
        for (param, &value) in self.params.iter().zip(values) {
            let field = format!("tune.space.\"{}\"", param.name);
            let path = parse_path(&param.name).map_err(|m| (field.clone(), m))?;
            if param.distribution == Distribution::Optional {
                let index = optional_layer(&path).map_err(|m| (field.clone(), m))?;
                let layers = doc
                    .get("layers")
                    .and_then(toml::Value::as_array)
                    .map_or(0, Vec::len);
                if index >= layers {
                    return Err((
                        field,
                        format!("the file has {layers} layers: there is no layers[{index}]"),
                    ));
                }
                if value == Value::Index(1) {
                    absent.push(index);
                }
                continue;
            }
            let new = param.distribution.to_toml(value).ok_or_else(|| {
                (
                    field.clone(),
                    format!("{value} is not a value of this entry"),
                )
            })?;
            set(doc, &path, new).map_err(|m| (field, m))?;
        }
        if let Some(layers) = doc.get_mut("layers").and_then(toml::Value::as_array_mut) {
            absent.sort_unstable();
            absent.dedup();
            for &index in absent.iter().rev() {
                layers.remove(index);
            }
        }
        Ok(())
    }

    /// Checks every entry against the file: each edge value, written into the file alone,
    /// must give a file that `check` accepts (a known field, a value of the right type and
    /// range). Errors name the entry and the value.
    pub fn check_against(
        &self,
        doc: &toml::Table,
        check: impl Fn(&toml::Table) -> Result<()>,
    ) -> std::result::Result<(), (String, String)> {
        for (i, param) in self.params.iter().enumerate() {
            let field = format!("tune.space.\"{}\"", param.name);
            for value in param.distribution.extremes() {
                // The other parameters keep the file's own values: only this one is set.
                let alone = Space {
                    params: vec![self.params[i].clone()],
                };
                let mut changed = doc.clone();
                alone.apply(&mut changed, &[value])?;
                if let Err(error) = check(&changed) {
                    // The file is the user's: its name is said once, by the caller.
                    let e = match error {
                        Error::Spec { field, message, .. } => format!("{field}: {message}"),
                        other => other.to_string(),
                    };
                    let shown = param.distribution.to_json(value);
                    let what = match param.distribution {
                        Distribution::Optional if value == Value::Index(1) => {
                            "without this layer".to_string()
                        }
                        _ => format!("with the value {shown}"),
                    };
                    return Err((field, format!("{what}, the file is invalid: {e}")));
                }
            }
        }
        Ok(())
    }

    /// Whether parameter `p` plays a part in the trial with `values`: not when it is a
    /// field of an optional layer that the trial leaves out.
    pub fn active(&self, p: usize, values: &[Value]) -> bool {
        let Some((layer, _)) = self.params[p].name.split_once("].") else {
            return true;
        };
        let layer = format!("{layer}]");
        !self.params.iter().zip(values).any(|(q, v)| {
            q.name == layer && q.distribution == Distribution::Optional && *v == Value::Index(1)
        })
    }

    /// The parameter values as a JSON object keyed by path (for the study and the table).
    pub fn to_json(&self, values: &[Value]) -> serde_json::Map<String, serde_json::Value> {
        self.params
            .iter()
            .zip(values)
            .map(|(p, &v)| (p.name.clone(), p.distribution.to_json(v)))
            .collect()
    }

    /// Values recorded in a study file, back in the space's order; None when they do not
    /// fit this space.
    pub fn from_json(
        &self,
        json: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<Vec<Value>> {
        self.params
            .iter()
            .map(|p| p.distribution.from_json(json.get(&p.name)?))
            .collect()
    }
}

fn parse_entry(name: &str, entry: &toml::Value) -> std::result::Result<Distribution, String> {
    let table = entry.as_table().ok_or_else(|| {
        "must be a table such as { choice = [...] }, { uniform = [low, high] }, \
         { log_uniform = [low, high] }, { int = [low, high], step = N } or { optional = true }"
            .to_string()
    })?;
    let kinds: Vec<&str> = ["choice", "uniform", "log_uniform", "int", "optional"]
        .into_iter()
        .filter(|k| table.contains_key(*k))
        .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
            "names no distribution (keys: {}); use choice, uniform, log_uniform, int or optional",
            table.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        }
        many => return Err(format!("names several distributions: {}", many.join(", "))),
    };
    let allowed: &[&str] = if kind == "int" {
        &["int", "step"]
    } else {
        &[kind]
    };
    if let Some(other) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown key `{other}` beside `{kind}`"));
    }
    let value = &table[kind];
    match kind {
        "choice" => {
            let choices = value
                .as_array()
                .ok_or("choice must be an array of values")?;
            if choices.is_empty() {
                return Err("choice is empty: list at least one value".into());
            }
            if choices.len() > MAX_CHOICES {
                return Err(format!(
                    "choice lists {} values; at most {MAX_CHOICES}",
                    choices.len()
                ));
            }
            // Choices are told apart by their JSON form in the study file.
            let mut seen = std::collections::HashSet::new();
            for v in choices {
                if !finite(v) {
                    return Err(format!("choice lists {v}: values must be finite numbers"));
                }
                let json = serde_json::to_string(v).unwrap_or_default();
                if !seen.insert(json) {
                    return Err(format!("choice lists {v} twice"));
                }
            }
            Ok(Distribution::Choice(choices.clone()))
        }
        "uniform" | "log_uniform" => {
            let (low, high) = bounds(value, kind, |v| {
                v.as_float().or_else(|| v.as_integer().map(|n| n as f64))
            })?;
            if !(low.is_finite() && high.is_finite()) {
                return Err(format!("{kind} bounds must be finite, got [{low}, {high}]"));
            }
            if low > high {
                return Err(format!("{kind} has low > high: [{low}, {high}]"));
            }
            if kind == "uniform" {
                return Ok(Distribution::Uniform { low, high });
            }
            if low <= 0.0 {
                return Err(format!(
                    "log_uniform needs positive bounds (the log of {low} is undefined)"
                ));
            }
            Ok(Distribution::LogUniform { low, high })
        }
        "int" => {
            let (low, high) = bounds(value, kind, toml::Value::as_integer)?;
            if low > high {
                return Err(format!("int has low > high: [{low}, {high}]"));
            }
            if low.abs() > MAX_INT || high.abs() > MAX_INT {
                return Err(format!(
                    "int bounds must lie within ±{MAX_INT} (2^53), got [{low}, {high}]"
                ));
            }
            let step = match table.get("step") {
                None => 1,
                Some(s) => s.as_integer().ok_or("step must be an integer")?,
            };
            if step < 1 {
                return Err(format!("step must be at least 1, got {step}"));
            }
            Ok(Distribution::Int { low, high, step })
        }
        _ => {
            if value.as_bool() != Some(true) {
                return Err("optional must be true (leave the entry out to keep the layer)".into());
            }
            let path = parse_path(name)?;
            optional_layer(&path)?;
            Ok(Distribution::Optional)
        }
    }
}

/// Whether every number in a value (and in the arrays and tables it holds) is finite.
fn finite(value: &toml::Value) -> bool {
    match value {
        toml::Value::Float(x) => x.is_finite(),
        toml::Value::Array(a) => a.iter().all(finite),
        toml::Value::Table(t) => t.values().all(finite),
        _ => true,
    }
}

fn bounds<T: fmt::Display>(
    value: &toml::Value,
    kind: &str,
    number: impl Fn(&toml::Value) -> Option<T>,
) -> std::result::Result<(T, T), String> {
    let wrong = || format!("{kind} must be [low, high], two numbers");
    match value.as_array().map(Vec::as_slice) {
        Some([low, high]) => Ok((
            number(low).ok_or_else(wrong)?,
            number(high).ok_or_else(wrong)?,
        )),
        _ => Err(wrong()),
    }
}

/// `layers[0].units` → [layers[0], units].
fn parse_path(name: &str) -> std::result::Result<Vec<Segment>, String> {
    let bad = || format!("'{name}' is not a field path such as layers[0].units or fit.batch_size");
    let mut segments = Vec::new();
    for part in name.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => {
                let digits = rest.strip_suffix(']').ok_or_else(bad)?;
                // One spelling per index: layers[01] would be a second name for layers[1].
                if digits.len() > 1 && digits.starts_with('0') {
                    return Err(bad());
                }
                (key, Some(digits.parse::<usize>().map_err(|_| bad())?))
            }
            None => (part, None),
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        segments.push(Segment {
            key: key.to_string(),
            index,
        });
    }
    Ok(segments)
}

/// The layer an `optional` entry names: its path must be `layers[i]`.
fn optional_layer(path: &[Segment]) -> std::result::Result<usize, String> {
    match path {
        [Segment {
            key,
            index: Some(i),
        }] if key == "layers" => Ok(*i),
        _ => Err("optional applies to a layer: name it as layers[i]".into()),
    }
}

/// Sets the field at `path` in `doc`: every table and array on the way must exist; the last
/// key may be new (the model file's own check then says whether the field exists).
fn set(
    doc: &mut toml::Table,
    path: &[Segment],
    value: toml::Value,
) -> std::result::Result<(), String> {
    let mut table = doc;
    let mut walked = String::new();
    for (i, segment) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(&segment.key);
        let Some(index) = segment.index else {
            if last {
                table.insert(segment.key.clone(), value);
                return Ok(());
            }
            table = match table
                .entry(segment.key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                toml::Value::Table(t) => t,
                _ => return Err(format!("{walked} is not a table")),
            };
            continue;
        };
        let array = match table.get_mut(&segment.key) {
            Some(toml::Value::Array(a)) => a,
            Some(_) => return Err(format!("{walked} is not an array")),
            None => return Err(format!("the file has no {walked}")),
        };
        let len = array.len();
        let element = array.get_mut(index).ok_or_else(|| {
            format!("the file's {walked} has {len} entries: there is no {walked}[{index}]")
        })?;
        walked.push_str(&format!("[{index}]"));
        if last {
            *element = value;
            return Ok(());
        }
        table = element
            .as_table_mut()
            .ok_or_else(|| format!("{walked} is not a table"))?;
    }
    Ok(())
}

/// Errors of the space as the library's error: the file, the field and the message.
pub fn spec_error(path: &std::path::Path, text: &str, (field, message): (String, String)) -> Error {
    // The entry's line: where its quoted key is written.
    let key = field
        .strip_prefix("tune.space.")
        .map(str::to_string)
        .or_else(|| field.strip_prefix("tune.").map(|k| format!("{k} =")));
    // Searched from the [tune] header on: other sections have keys of the same names.
    let tune_start = text
        .lines()
        .position(|l| l.trim_start().starts_with("[tune"))
        .unwrap_or(0);
    let line = key.and_then(|k| {
        text.lines()
            .enumerate()
            .skip(tune_start)
            .find(|(_, l)| l.trim_start().starts_with(&k))
            .map(|(i, _)| i + 1)
    });
    Error::Spec {
        path: path.to_path_buf(),
        line,
        field,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(text: &str) -> std::result::Result<Space, (String, String)> {
        Space::parse(&toml::from_str(text).unwrap())
    }

    const FILE: &str = r#"
[model]
input_shape = [4]
[[layers]]
type = "dense"
units = 8
[[layers]]
type = "dropout"
rate = 0.1
[[layers]]
type = "dense"
units = 3
[compile]
optimizer = { type = "adam" }
loss = "mse"
"#;

    #[test]
    fn entries_parse_into_distributions() {
        let s = space(
            r#""layers[0].units" = { choice = [64, 128] }
"layers[1].rate" = { uniform = [0.0, 0.5] }
"compile.optimizer.learning_rate" = { log_uniform = [0.0001, 0.01] }
"fit.batch_size" = { int = [16, 128], step = 16 }
"layers[1]" = { optional = true }"#,
        )
        .unwrap();
        let kinds: Vec<_> = s.params.iter().map(|p| p.distribution.clone()).collect();
        assert!(kinds.contains(&Distribution::Int {
            low: 16,
            high: 128,
            step: 16
        }));
        assert!(kinds.contains(&Distribution::LogUniform {
            low: 0.0001,
            high: 0.01
        }));
        assert!(kinds.contains(&Distribution::Optional));
        let int = Distribution::Int {
            low: 16,
            high: 128,
            step: 16,
        };
        assert_eq!(int.count(), Some(8));
        assert_eq!(int.nth(7), Value::Int(128));
        let wide = Distribution::Int {
            low: -(1 << 53),
            high: 1 << 53,
            step: 1,
        };
        assert_eq!(wide.count(), Some((1 << 54) + 1));
        assert_eq!(wide.nth(1 << 54), Value::Int(1 << 53));
    }

    #[test]
    fn bad_entries_are_errors_naming_the_entry() {
        for (entry, wanted) in [
            ("{ choice = [] }", "choice is empty"),
            ("{ choice = [8, 16, 8] }", "lists 8 twice"),
            ("{ choice = [nan, 1.0] }", "must be finite"),
            ("{ choice = [[1, inf]] }", "must be finite"),
            ("{ int = [0, 9007199254740993] }", "within ±"),
            ("{ uniform = [0.5, 0.1] }", "low > high"),
            ("{ log_uniform = [0.0, 0.1] }", "log of 0"),
            ("{ log_uniform = [-1.0, 0.1] }", "log of -1"),
            ("{ int = [4, 2] }", "low > high"),
            ("{ int = [1, 8], step = 0 }", "step must be at least 1"),
            ("{ int = [1.5, 8] }", "two numbers"),
            ("{ uniform = [0.0] }", "two numbers"),
            ("{ normal = [0, 1] }", "names no distribution"),
            (
                "{ choice = [1], uniform = [0, 1] }",
                "several distributions",
            ),
            ("{ choice = [1], step = 2 }", "unknown key `step`"),
            ("5", "must be a table"),
            ("{ optional = true }", "name it as layers[i]"),
        ] {
            let (field, message) = space(&format!("\"layers[0].units\" = {entry}")).unwrap_err();
            assert_eq!(field, "tune.space.\"layers[0].units\"", "{entry}");
            assert!(message.contains(wanted), "{entry}: {message}");
        }
        assert!(space("").unwrap_err().1.contains("empty"));
    }

    #[test]
    fn values_are_written_at_their_paths_and_absent_layers_removed() {
        let s = space(
            r#""layers[0].units" = { choice = [64, 128] }
"compile.optimizer.learning_rate" = { log_uniform = [0.0001, 0.01] }
"layers[1]" = { optional = true }"#,
        )
        .unwrap();
        let values: Vec<Value> = s
            .params
            .iter()
            .map(|p| match p.distribution {
                Distribution::Choice(_) => Value::Index(1),
                Distribution::Optional => Value::Index(1),
                _ => Value::Float(0.002),
            })
            .collect();
        let mut doc: toml::Table = toml::from_str(FILE).unwrap();
        s.apply(&mut doc, &values).unwrap();
        let layers = doc["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "the dropout layer is gone");
        assert_eq!(layers[0]["units"].as_integer(), Some(128));
        assert_eq!(layers[1]["units"].as_integer(), Some(3));
        assert_eq!(
            doc["compile"]["optimizer"]["learning_rate"].as_float(),
            Some(0.002)
        );
    }

    #[test]
    fn paths_the_file_lacks_are_errors() {
        let doc: toml::Table = toml::from_str(FILE).unwrap();
        let s = space(r#""layers[5].units" = { choice = [1] }"#).unwrap();
        let e = s.apply(&mut doc.clone(), &[Value::Index(0)]).unwrap_err();
        assert!(
            e.1.contains("has 3 entries: there is no layers[5]"),
            "{e:?}"
        );
        let s = space(r#""compile.loss.x" = { choice = [1] }"#).unwrap();
        let e = s.apply(&mut doc.clone(), &[Value::Index(0)]).unwrap_err();
        assert!(e.1.contains("compile.loss is not a table"), "{e:?}");
        for bad in [
            "layers[01].units",
            "layers[0]..units",
            "layers[x].units",
            "a b",
        ] {
            let e = space(&format!("\"{bad}\" = {{ choice = [1] }}")).unwrap_err();
            assert!(e.1.contains("not a field path"), "{bad}: {e:?}");
        }
        let s = space(r#""layers[3]" = { optional = true }"#).unwrap();
        let e = s.apply(&mut doc.clone(), &[Value::Index(1)]).unwrap_err();
        assert!(e.1.contains("no layers[3]"), "{e:?}");
    }

    #[test]
    fn json_values_round_trip() {
        let s = space(
            r#""a" = { choice = ["x", [1, 2]] }
"b" = { optional = false }"#,
        );
        assert!(s.unwrap_err().1.contains("optional must be true"));
        let s = space(
            r#""a" = { choice = ["x", [1, 2]] }
"b" = { int = [1, 9], step = 2 }
"c" = { uniform = [0, 1] }"#,
        )
        .unwrap();
        let values = vec![Value::Index(1), Value::Int(5), Value::Float(0.25)];
        let json = s.to_json(&values);
        assert_eq!(json["a"], serde_json::json!([1, 2]));
        assert_eq!(s.from_json(&json), Some(values));
    }
}
