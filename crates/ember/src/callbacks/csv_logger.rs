//! `CSVLogger`: one CSV row per epoch, flushed as it is written.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{decimal, Callback, Control, EpochLog, Model};

/// Keras `CSVLogger(filename, separator=",", append=False)`. Columns: epoch (from 1, as
/// printed), then the metrics in alphabetical order, learning_rate included.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvLogger {
    pub filename: PathBuf,
    #[serde(default = "comma")]
    pub separator: String,
    #[serde(default)]
    pub append: bool,
    #[serde(skip)]
    writer: Option<BufWriter<File>>,
}

impl Clone for CsvLogger {
    fn clone(&self) -> Self {
        CsvLogger::new(self.filename.clone())
            .separator(&self.separator)
            .append(self.append)
    }
}

impl PartialEq for CsvLogger {
    fn eq(&self, other: &Self) -> bool {
        (&self.filename, &self.separator, self.append)
            == (&other.filename, &other.separator, other.append)
    }
}

fn comma() -> String {
    ",".into()
}

impl CsvLogger {
    pub fn new(filename: impl Into<PathBuf>) -> Self {
        CsvLogger {
            filename: filename.into(),
            separator: comma(),
            append: false,
            writer: None,
        }
    }

    pub fn separator(mut self, separator: &str) -> Self {
        self.separator = separator.into();
        self
    }

    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn columns(log: &EpochLog) -> Vec<(&'static str, f64)> {
        let mut columns = log.metrics();
        columns.push(("learning_rate", decimal(log.learning_rate)));
        columns.sort_by_key(|(name, _)| *name);
        columns
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        // In a data-parallel job, rank 0 keeps the log (the others have the same epochs).
        if !crate::distributed::is_root() {
            return Ok(());
        }
        let existing = self.append && self.filename.metadata().is_ok_and(|m| m.len() > 0);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.filename)
            .map_err(|e| Error::io(&self.filename, e))?;
        self.writer = Some(BufWriter::new(file));
        // The header is written with the first row, once the columns are known.
        if existing {
            self.append = true;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _model: &mut Model, log: &EpochLog) -> Result<Control> {
        let columns = Self::columns(log);
        let sep = self.separator.clone();
        let path = self.filename.clone();
        let needs_header = !self.append || self.filename.metadata().is_ok_and(|m| m.len() == 0);
        let Some(writer) = self.writer.as_mut() else {
            return Ok(Control::Continue);
        };
        let mut text = String::new();
        if needs_header {
            let names: Vec<&str> = std::iter::once("epoch")
                .chain(columns.iter().map(|(n, _)| *n))
                .collect();
            text += &names.join(&sep);
            text.push('\n');
        }
        let values: Vec<String> = std::iter::once(log.epoch.to_string())
            .chain(columns.iter().map(|(_, v)| v.to_string()))
            .collect();
        text += &values.join(&sep);
        text.push('\n');
        writer
            .write_all(text.as_bytes())
            .and_then(|_| writer.flush())
            .map_err(|e| Error::io(&path, e))?;
        self.append = true;
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _model: &mut Model, _history: &crate::model::History) -> Result<()> {
        self.writer = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn log(epoch: usize) -> EpochLog {
        EpochLog {
            epoch,
            loss: 0.5,
            accuracy: Some(0.75),
            val_loss: None,
            val_accuracy: None,
            learning_rate: 0.01,
            train_seconds: 0.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn writes_a_header_once_and_appends() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("log.csv");
        let mut m = Sequential::new(&[1]);
        let mut logger = CsvLogger::new(&path).separator(";");
        logger.on_train_begin(&mut m).unwrap();
        logger.on_epoch_end(&mut m, &log(1)).unwrap();
        logger.on_epoch_end(&mut m, &log(2)).unwrap();
        let mut again = CsvLogger::new(&path).separator(";").append(true);
        again.on_train_begin(&mut m).unwrap();
        again.on_epoch_end(&mut m, &log(3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "epoch;accuracy;learning_rate;loss\n1;0.75;0.01;0.5\n2;0.75;0.01;0.5\n3;0.75;0.01;0.5\n");
    }
}
