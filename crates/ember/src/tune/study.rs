//! The study file: the search's settings, then one JSON line per trial result as it comes
//! (`study.jsonl`). A search killed half-way resumes from it; a finished one is listed and
//! plotted again from it. Lines are appended and flushed one by one, so a crash loses at
//! most the line being written, which is then ignored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What decides a study's trials: resuming needs the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyHeader {
    pub version: u32,
    /// The `[tune]` section, as TOML text.
    pub tune: String,
    /// The model file (or the table options) trials start from, as TOML text.
    pub base: String,
    /// Trials sampled together from the same history (TPE with parallel jobs).
    pub batch: usize,
    /// The data trials train on (the folder or the table, and its split).
    #[serde(default)]
    pub data: String,
}

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Trained for its whole budget.
    Complete,
    /// Hyperband stopped it at a rung: it was not among the best.
    Pruned,
    /// Trained to a rung, waiting for the rung's verdict.
    Paused,
    /// It could not be trained (the reason says why): a diverging loss, a bad combination.
    Failed,
}

/// One trial's result so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub number: usize,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub state: TrialState,
    /// The objective after each epoch trained.
    pub values: Vec<f64>,
    /// Seconds spent training it.
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its Hyperband bracket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bracket: Option<usize>,
}

impl TrialRecord {
    /// The objective at its last epoch (what its trained model scores).
    pub fn value(&self) -> Option<f64> {
        match self.state {
            TrialState::Failed => None,
            _ => self.values.last().copied(),
        }
    }

    pub fn finished(&self) -> bool {
        self.state != TrialState::Paused
    }
}

/// The retrained best model's figures, recorded once at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalRecord {
    pub trial: usize,
    /// The best trial's objective, again from the retraining.
    pub value: f64,
    /// Test figures by name (loss, accuracy).
    pub test: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Study(StudyHeader),
    Trial(TrialRecord),
    Final(FinalRecord),
}

/// The study in memory and its file.
pub struct Study {
    path: PathBuf,
    /// The study file, locked (`flock`) for as long as this run writes it: a second run on
    /// the same folder is refused, and the lock goes with the process, however it ends.
    /// None on the ranks of a data-parallel job other than 0, which only read it.
    _lock: Option<std::fs::File>,
    pub header: StudyHeader,
    /// Each trial's latest record.
    pub trials: BTreeMap<usize, TrialRecord>,
    pub last: Option<FinalRecord>,
    /// Lines the file had that could not be read (the line a crash cut short).
    pub ignored: usize,
}

impl Study {
    /// Starts a new study file; an error if one exists (resume it or choose another folder).
    pub fn create(path: &Path, header: StudyHeader) -> Result<Study> {
        // In a job of several processes, rank 0 writes the study; the others keep it in memory.
        if !crate::distributed::is_root() {
            return Ok(Study {
                path: path.to_path_buf(),
                _lock: None,
                header,
                trials: BTreeMap::new(),
                last: None,
                ignored: 0,
            });
        }
        // create_new: of two runs started on one folder, the second fails here.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::invalid(format!(
                    "{} already holds a study: pass --resume to continue it, or choose another --output",
                    path.display()
                )),
                _ => Error::io(path, e),
            })?;
        lock(&file, path)?;
        let study = Study {
            path: path.to_path_buf(),
            _lock: Some(file),
            header,
            trials: BTreeMap::new(),
            last: None,
            ignored: 0,
        };
        study.append(&Line::Study(study.header.clone()))?;
        Ok(study)
    }

    /// Reads a study file to go on with it; its settings must be `header`'s.
    pub fn resume(path: &Path, header: StudyHeader) -> Result<Study> {
        let (file, _) = crate::read::open(path)?;
        // Rank 0 of a job of several processes locks and mends the file; the others read it.
        let writer = crate::distributed::is_root();
        if writer {
            lock(&file, path)?;
        }
        let mut text = crate::read::text(path, crate::read::Limit::STUDY)?;
        // A line a crash cut short is cut off the file, so that the next line starts afresh.
        let mut cut = 0;
        if !text.is_empty() && !text.ends_with('\n') {
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            if writer {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                file.set_len(whole as u64).map_err(|e| Error::io(path, e))?;
            }
            text.truncate(whole);
            cut = 1;
        }
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let Ok(Line::Study(stored)) = serde_json::from_str::<Line>(first) else {
            return Err(Error::data(
                path,
                "line 1 is not a study header: not a study file",
            ));
        };
        if stored.version != header.version {
            return Err(Error::data(
                path,
                format!(
                    "study version {} (this Ember writes {})",
                    stored.version, header.version
                ),
            ));
        }
        for (what, a, b) in [
            ("[tune] section", &stored.tune, &header.tune),
            ("model (everything but [tune])", &stored.base, &header.base),
            ("data", &stored.data, &header.data),
        ] {
            if a != b {
                return Err(Error::data(
                    path,
                    format!("the study was made with another {what}: start a new study in another --output"),
                ));
            }
        }
        let range = objective_range(&stored.tune);
        let mut study = Study {
            path: path.to_path_buf(),
            _lock: writer.then_some(file),
            header: stored,
            trials: BTreeMap::new(),
            last: None,
            ignored: cut,
        };
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // Line 1 is the header.
            let number = i + 2;
            match serde_json::from_str::<Line>(line) {
                Ok(Line::Trial(t)) => {
                    let earlier = study.trials.get(&t.number);
                    check_record(&t, earlier, range)
                        .map_err(|m| Error::data(path, format!("line {number}: {m}")))?;
                    study.trials.insert(t.number, t);
                }
                Ok(Line::Final(f)) => {
                    if !study.trials.contains_key(&f.trial) || !f.value.is_finite() {
                        return Err(Error::data(
                            path,
                            format!("line {number}: a final record of trial {} that the study does not hold", f.trial),
                        ));
                    }
                    study.last = Some(f)
                }
                Ok(Line::Study(_)) | Err(_) => study.ignored += 1,
            }
        }
        Ok(study)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(&mut self, trial: TrialRecord) -> Result<()> {
        self.append(&Line::Trial(trial.clone()))?;
        // A later result of a trial replaces the earlier one.
        self.trials.insert(trial.number, trial);
        Ok(())
    }

    pub fn record_final(&mut self, last: FinalRecord) -> Result<()> {
        self.append(&Line::Final(last.clone()))?;
        self.last = Some(last);
        Ok(())
    }

    fn append(&self, line: &Line) -> Result<()> {
        if self._lock.is_none() {
            return Ok(());
        }
        let mut text = serde_json::to_string(line)
            .map_err(|e| Error::invalid(format!("cannot write the study: {e}")))?;
        text.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        // One write per line: a crash leaves whole lines and at most one cut one.
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Takes the study file's lock, or says which run holds it.
fn lock(file: &std::fs::File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function borrows; no memory is involved.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !taken {
            return Err(Error::invalid(format!(
                "{} is being written by another `ember tune`: let it finish (or stop it) before resuming",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// The values an objective can take: accuracies and areas in [0, 1], losses and errors at
/// least 0, anything finite otherwise. `tune` is the study's `[tune]` section.
fn objective_range(tune: &str) -> (f64, f64) {
    let objective = toml::from_str::<toml::Table>(tune)
        .ok()
        .and_then(|t| t.get("objective")?.as_str().map(str::to_string))
        .unwrap_or_default();
    let bounded = ["accuracy", "auc", "precision", "recall", "f1"];
    let positive = ["loss", "mae", "mse", "rmse", "error"];
    if bounded.iter().any(|b| objective.ends_with(b)) {
        (0.0, 1.0)
    } else if positive.iter().any(|p| objective.ends_with(p)) {
        (0.0, f64::MAX)
    } else {
        (f64::MIN, f64::MAX)
    }
}

/// A trial record as only Ember writes one: a number below the most trials a study may
/// have, objective values the objective can take, and, for a trial recorded before, the
/// same parameters, a paused earlier state and the earlier values continued.
fn check_record(
    t: &TrialRecord,
    earlier: Option<&TrialRecord>,
    (lo, hi): (f64, f64),
) -> std::result::Result<(), String> {
    if t.number >= super::MAX_TRIALS {
        return Err(format!(
            "trial {} is beyond the {} trials a study can have",
            t.number,
            super::MAX_TRIALS
        ));
    }
    if let Some(v) = t
        .values
        .iter()
        .find(|v| !(v.is_finite() && (lo..=hi).contains(*v)))
    {
        return Err(format!(
            "trial {} has the objective value {}, which the objective cannot take",
            t.number,
            match v.abs() {
                a if a != 0.0 && !(1e-4..1e6).contains(&a) => format!("{v:e}"),
                _ => format!("{v}"),
            }
        ));
    }
    if !(t.seconds.is_finite() && t.seconds >= 0.0) {
        return Err(format!("trial {} took {} seconds", t.number, t.seconds));
    }
    if let Some(e) = earlier {
        let continued = e.state == TrialState::Paused
            && e.params == t.params
            && t.values.starts_with(&e.values);
        if !continued {
            return Err(format!(
                "trial {} again, not as the continuation of its earlier record (the study file was edited?)",
                t.number
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> StudyHeader {
        StudyHeader {
            version: 1,
            tune: "algorithm = \"random\"".into(),
            base: "[model]".into(),
            batch: 1,
            data: "/data".into(),
        }
    }

    /// The header of a study that maximises val_accuracy.
    fn accuracy() -> StudyHeader {
        StudyHeader {
            tune: "algorithm = \"random\"\nobjective = \"val_accuracy\"".into(),
            ..header()
        }
    }

    fn trial(number: usize, state: TrialState, values: Vec<f64>) -> TrialRecord {
        TrialRecord {
            number,
            params: serde_json::Map::new(),
            state,
            values,
            seconds: 1.0,
            reason: None,
            bracket: None,
        }
    }

    #[test]
    fn a_study_reads_back_with_its_latest_records_and_skips_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("study.jsonl");
        let mut study = Study::create(&path, header()).unwrap();
        study
            .record(trial(0, TrialState::Paused, vec![0.5]))
            .unwrap();
        study.record(trial(1, TrialState::Failed, vec![])).unwrap();
        study
            .record(trial(0, TrialState::Complete, vec![0.5, 0.7]))
            .unwrap();
        drop(study);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"trial\": {\"number\": 2, \"par");
        std::fs::write(&path, text).unwrap();
        let mut study = Study::resume(&path, header()).unwrap();
        assert_eq!(study.ignored, 1, "the cut line, cut off the file");
        assert_eq!(study.trials.len(), 2);
        // A record appended after the crash reads back at the next resume.
        study
            .record(trial(2, TrialState::Complete, vec![0.9]))
            .unwrap();
        drop(study);
        let study = Study::resume(&path, header()).unwrap();
        assert_eq!(study.trials[&2].value(), Some(0.9));
        assert_eq!(study.trials[&0].value(), Some(0.7));
        assert_eq!(study.trials[&1].value(), None);
        // While a run holds the study, another cannot resume it.
        let e = Study::resume(&path, header()).err().unwrap().to_string();
        assert!(
            e.contains("is being written by another `ember tune`"),
            "{e}"
        );
        drop(study);
        assert!(Study::create(&path, header())
            .err()
            .unwrap()
            .to_string()
            .contains("--resume"));
        let mut other = header();
        other.tune = "algorithm = \"tpe\"".into();
        let e = Study::resume(&path, other).err().unwrap().to_string();
        assert!(e.contains("another [tune] section"), "{e}");
        // Forged lines: a finished trial again, an impossible value, an absurd number.
        let path = dir.path().join("accuracy.jsonl");
        let mut study = Study::create(&path, accuracy()).unwrap();
        study
            .record(trial(0, TrialState::Paused, vec![0.5]))
            .unwrap();
        study
            .record(trial(0, TrialState::Complete, vec![0.5, 0.7]))
            .unwrap();
        drop(study);
        let good = std::fs::read_to_string(&path).unwrap();
        assert_eq!(Study::resume(&path, accuracy()).unwrap().trials.len(), 1);
        let line = |t: TrialRecord| serde_json::to_string(&Line::Trial(t)).unwrap() + "\n";
        let forged = [
            (
                trial(0, TrialState::Complete, vec![0.5, 0.9133]),
                "trial 0 again",
            ),
            (
                trial(3, TrialState::Complete, vec![1e308]),
                "objective value 1e308",
            ),
            (
                trial(1_000_000_000_000_000_000, TrialState::Complete, vec![0.5]),
                "beyond the",
            ),
        ];
        for (record, needle) in forged {
            std::fs::write(&path, good.clone() + &line(record)).unwrap();
            let e = Study::resume(&path, accuracy()).err().unwrap().to_string();
            assert!(e.contains(needle) && e.contains("line "), "{e}");
        }
        std::fs::write(&path, "not json\n").unwrap();
        let e = Study::resume(&path, header()).err().unwrap().to_string();
        assert!(e.contains("not a study file"), "{e}");
    }
}
