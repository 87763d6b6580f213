//! Structured logs: one JSON object per line on standard error (a request, a reload, a
//! start or a shutdown), for log collectors to parse.

use std::io::Write;
use std::time::SystemTime;

use serde_json::{Map, Value};

fn write(mut record: Map<String, Value>) {
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    record.insert("time".into(), Value::String(time));
    let line = Value::Object(record).to_string();
    // A closed standard error must not take the server down.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// An event with text fields.
pub fn event(event: &str, fields: &[(&str, &str)]) {
    let mut record = Map::new();
    record.insert("event".into(), event.into());
    for (k, v) in fields {
        record.insert((*k).into(), (*v).into());
    }
    write(record);
}

/// One answered request.
pub fn request(method: &str, path: &str, status: u16, millis: f64, error: Option<&str>) {
    let mut record = Map::new();
    record.insert("event".into(), "request".into());
    record.insert("method".into(), method.into());
    record.insert("path".into(), path.into());
    record.insert("status".into(), status.into());
    record.insert("ms".into(), ((millis * 1000.0).round() / 1000.0).into());
    if let Some(error) = error {
        record.insert("error".into(), error.into());
    }
    write(record);
}
