//! A whole search from start to end, for a model file or a table: check the space against
//! the file, open (or resume) the study, run it, retrain the best trial, save it, test it
//! once, and write the results and charts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::search::{Event, Run, SearchTimes, Trainer};
use super::space::spec_error;
use super::study::{FinalRecord, Study, StudyHeader, TrialRecord};
use super::trainers::{ModelFileTrainer, TableTrainer};
use super::{best_trial, report, split_file, TuneSettings};
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::jobs::table::TableData;
use crate::spec::ModelSpec;
use crate::tabular::{TabularOptions, TabularScores, Task};

/// The search of `ember tune --csv` without `--space`: TPE over the network's size,
/// regularisation and optimisation, and the preprocessing.
pub const TABLE_SPACE: &str = r#"
[tune]
algorithm = "tpe"
max_trials = 20

[tune.space]
"hidden" = { choice = [[32], [64], [64, 32], [128, 64], [256, 128]] }
"learning_rate" = { log_uniform = [0.0003, 0.01] }
"l2" = { choice = [0.0, 0.00001, 0.0001, 0.001] }
"dropout" = { uniform = [0.0, 0.5] }
"batch_size" = { choice = [16, 32, 64] }
"preprocess.scaling" = { choice = ["standard", "min_max"] }
"preprocess.impute" = { choice = ["mean", "median"] }
"#;

/// The study file's format version.
const VERSION: u32 = 1;

/// How to run a search.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// The data folder, instead of the model file's.
    pub data_dir: Option<PathBuf>,
    /// Trials trained at once (each on its share of the threads).
    pub jobs: usize,
    /// Where the study, the results, the charts and the best model go.
    pub output: PathBuf,
    /// Go on with the study in `output` instead of starting one.
    pub resume: bool,
}

impl TuneOptions {
    /// The folder a search of the model file or table `source` goes to unless another is
    /// given: tune-NAME, NAME being the file's stem (tune-study without one).
    pub fn default_output(source: Option<&Path>) -> PathBuf {
        let name = source
            .and_then(|p| p.file_stem())
            .map_or("study".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("tune-{name}"))
    }
}

/// What a finished search produced.
pub struct Outcome {
    pub settings: TuneSettings,
    pub study: Study,
    pub best: TrialRecord,
    pub last: FinalRecord,
    /// Files written into the output folder.
    pub files: Vec<PathBuf>,
    /// The trial's objective, retrained, differed from the study's (it should not).
    pub retrained_differs: bool,
    /// Where the search's time went (this run's; none for a finished study listed again).
    pub times: SearchTimes,
}

/// The files a search writes into its folder.
pub const STUDY_FILE: &str = "study.jsonl";
pub const BEST_MODEL: &str = "best.safetensors";
pub const BEST_CONFIG: &str = "best.toml";

/// Searches a model file's `[tune]` space.
pub fn tune_model_file(
    path: &Path,
    options: &TuneOptions,
    report: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    let text = crate::read::text(path, crate::read::Limit::SETTINGS)?;
    let spec = ModelSpec::parse(&text, path)?;
    let (doc, tune) = split_file(&text, path)?;
    let tune = tune.ok_or_else(|| Error::Spec {
        path: path.to_path_buf(),
        line: None,
        field: "tune".into(),
        message: "there is no [tune] section: add one naming the fields to search (see the README's Tuning section)".into(),
    })?;
    let settings = TuneSettings::parse(&tune, &spec.logged_metrics(), spec.fit.epochs)
        .map_err(|e| spec_error(path, &text, e))?;
    refuse_fixed_fields(
        &settings,
        &["data", "tune", "fit.epochs", "fit.validation_split"],
    )
    .map_err(|e| spec_error(path, &text, e))?;
    if settings.algorithm == super::Algorithm::Hyperband {
        // Hyperband trains a trial in stretches: these would start afresh at every rung.
        if let Some(i) = spec.callbacks.iter().position(|c| {
            matches!(
                c,
                crate::spec::CallbackConfig::EarlyStopping(_)
                    | crate::spec::CallbackConfig::ReduceLrOnPlateau(_)
            )
        }) {
            return Err(Error::Spec {
                path: path.to_path_buf(),
                line: None,
                field: format!("callbacks[{i}]"),
                message: "Hyperband stops weak trials itself and trains the others in stretches, \
                          across which early stopping and reduce_lr_on_plateau would start afresh: \
                          remove it, or search with random or tpe"
                    .into(),
            });
        }
    }
    let objective = settings.objective.clone();
    settings
        .space
        .check_against(&doc, |d| {
            let t = toml::to_string(d).map_err(|e| Error::invalid(e.to_string()))?;
            let trial = ModelSpec::parse(&t, path).map_err(super::trainers::without_line)?;
            if !trial.logged_metrics().contains(&objective.as_str()) {
                return Err(Error::invalid(format!(
                    "it no longer logs the objective, {objective}"
                )));
            }
            Ok(())
        })
        .map_err(|e| spec_error(path, &text, e))?;
    let study_path = prepare_output(options, &[path])?;

    let (mut data_spec, data_dir) =
        crate::jobs::train_file::data_section(&spec, path, options.data_dir.as_deref())?;
    if std::path::absolute(&options.output).ok() == std::path::absolute(&data_dir).ok() {
        return Err(Error::invalid(format!(
            "--output {} is the data folder: choose another folder",
            options.output.display()
        )));
    }
    // What prediction needs to read new inputs as these were read (as `ember train` does).
    let data = crate::jobs::train_file::read_data(&mut data_spec, &data_dir, true)?;
    let data_identity = data_spec.dir.display().to_string();
    let trainer = ModelFileTrainer {
        path: path.to_path_buf(),
        data,
        data_spec,
        objective: settings.objective.clone(),
    };
    let header = header(&tune, &settings, &doc, data_identity, options)?;
    let (mut study, times) = run_study(
        &trainer,
        &settings,
        &doc,
        header,
        &study_path,
        options,
        report,
    )?;
    let best = best_of(&study, &settings)?;

    // A finished study resumed again is listed and plotted, not retrained.
    let model_file = options.output.join(BEST_MODEL);
    if let Some(last) = study
        .last
        .clone()
        .filter(|l| l.trial == best.number && model_file.exists())
    {
        let differs = best.value().is_none_or(|v| (v - last.value).abs() > 1e-9);
        let mut files = vec![options.output.join(BEST_CONFIG), model_file];
        return finish((differs, times), study, settings, best, &mut files, options);
    }
    // The best trial, trained again from the start for its epochs: the same model. In a job
    // of several processes each trains it alone, as its trial was (rank 0 saves it).
    let config = config_of(&doc, &settings, &best)?;
    let (trial, values, evaluation) = crate::distributed::alone(|| -> Result<_> {
        let mut trial = trainer.start(&config)?;
        let values = trainer.train(&mut trial, best.values.len())?;
        let evaluation = trainer.test(&trial)?;
        Ok((trial, values, evaluation))
    })?;
    let mut test = BTreeMap::from([("loss".to_string(), evaluation.loss)]);
    if let Some(a) = evaluation.accuracy {
        test.insert("accuracy".into(), a);
    }
    trainer.save(&trial, &model_file)?;
    let mut best_spec = trial.spec.clone();
    best_spec.fit.epochs = trial.epochs_done;
    let mut files = vec![
        crate::report::write(
            &options.output,
            BEST_CONFIG,
            best_spec.to_toml()?.as_bytes(),
        )?,
        model_file,
    ];
    finish(
        (study_finish(&mut study, &best, values, test)?, times),
        study,
        settings,
        best,
        &mut files,
        options,
    )
}

/// The configuration of a recorded trial: `doc` with its values written in.
fn config_of(
    doc: &toml::Table,
    settings: &TuneSettings,
    trial: &TrialRecord,
) -> Result<toml::Table> {
    let mut config = doc.clone();
    let values = settings
        .space
        .from_json(&trial.params)
        .ok_or_else(|| Error::invalid("the best trial's parameters do not fit the space"))?;
    settings
        .space
        .apply(&mut config, &values)
        .map_err(|(f, m)| Error::invalid(format!("{f}: {m}")))?;
    Ok(config)
}

/// A table split for a search: trials train and validate on the training rows; the best
/// model is tested once on the test rows.
pub struct TableSplit {
    pub table: Table,
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    pub task: Task,
}

impl TableSplit {
    /// A loaded table split for a search: `test_size` of its usable rows held out for the
    /// test (stratified for classification), chosen with `seed`.
    pub fn new(data: TableData, test_size: f32, seed: u64) -> Result<TableSplit> {
        let (train_rows, test_rows) = crate::jobs::table::split(&data, test_size, seed)?;
        Ok(TableSplit {
            table: data.table,
            train_rows,
            test_rows,
            task: data.task,
        })
    }
}

/// The search space of a table model: the `[tune]` file `path` when given, else the
/// built-in one. Returns its name for errors and its text.
pub fn table_space(path: Option<&Path>) -> Result<(PathBuf, String)> {
    Ok(match path {
        Some(path) => (
            path.to_path_buf(),
            crate::read::text(path, crate::read::Limit::SETTINGS)?,
        ),
        None => (
            PathBuf::from("(the built-in table space)"),
            TABLE_SPACE.to_string(),
        ),
    })
}

/// Searches a table model's options (`hidden`, `learning_rate`, `l2`, `dropout`,
/// `preprocess.scaling`, …) by the `[tune]` section of `space_text` (the file `space_file`,
/// named in errors) over [`TabularOptions`]' fields. Returns the outcome and the best
/// model's test scores.
pub fn tune_table(
    data: TableSplit,
    base: &TabularOptions,
    (space_file, space_text): (&Path, &str),
    options: &TuneOptions,
    report: &mut dyn FnMut(Event),
) -> Result<(Outcome, TabularScores)> {
    let (_, tune) = split_file(space_text, space_file)?;
    let tune = tune.ok_or_else(|| Error::Spec {
        path: space_file.to_path_buf(),
        line: None,
        field: "tune".into(),
        message: "there is no [tune] section".into(),
    })?;
    let tune = &tune;
    let TableSplit {
        table,
        train_rows,
        test_rows,
        task,
    } = data;
    let file = table.path.clone();
    let doc = match toml::Value::try_from(base) {
        Ok(toml::Value::Table(t)) => t,
        _ => return Err(Error::invalid("cannot write the table options as TOML")),
    };
    let logged = TableTrainer::logged(task);
    let space_error = |e| spec_error(space_file, space_text, e);
    let settings = TuneSettings::parse(tune, &logged, base.epochs).map_err(space_error)?;
    refuse_fixed_fields(&settings, &["epochs", "validation_split", "target", "task"])
        .map_err(space_error)?;
    settings
        .space
        .check_against(&doc, |d| {
            let o: TabularOptions = toml::Value::Table(d.clone())
                .try_into()
                .map_err(|e: toml::de::Error| Error::invalid(e.message().trim().to_string()))?;
            check_table_options(&o)
        })
        .map_err(space_error)?;
    let study_path = prepare_output(options, &[&file, space_file])?;
    let data_identity = format!(
        "{}: {} training rows, {} test rows from row {:?}",
        std::path::absolute(&file).unwrap_or(file.clone()).display(),
        train_rows.len(),
        test_rows.len(),
        test_rows.iter().take(8).collect::<Vec<_>>()
    );
    let trainer = TableTrainer {
        table,
        train_rows,
        test_rows,
        task,
        objective: settings.objective.clone(),
    };
    let header = header(tune, &settings, &doc, data_identity, options)?;
    let (mut study, times) = run_study(
        &trainer,
        &settings,
        &doc,
        header,
        &study_path,
        options,
        report,
    )?;
    let best = best_of(&study, &settings)?;
    let config = config_of(&doc, &settings, &best)?;
    let mut trial = trainer.start(&config)?;
    // As many epochs as the trial's values: they end at the epoch whose weights it kept.
    let values = trainer.train(&mut trial, best.values.len())?;
    let scores = trainer.test(&trial)?;
    let mut test = BTreeMap::from([("loss".to_string(), scores.loss)]);
    if let Some(a) = scores.accuracy {
        test.insert("accuracy".into(), a);
    }
    if let Some(r) = &scores.regression {
        test.insert("rmse".into(), r.rmse);
    }
    let mut files = vec![crate::report::write(
        &options.output,
        BEST_CONFIG,
        toml::to_string(&trial.options)
            .map_err(|e| Error::invalid(format!("cannot write the best options: {e}")))?
            .as_bytes(),
    )?];
    if let Some(model) = &trial.model {
        model.save(&options.output.join(BEST_MODEL), values.len())?;
        files.push(options.output.join(BEST_MODEL));
    }
    let outcome = finish(
        (study_finish(&mut study, &best, values, test)?, times),
        study,
        settings,
        best,
        &mut files,
        options,
    )?;
    Ok((outcome, scores))
}

/// The options a table trial may not have (checked for each edge of the space).
fn check_table_options(o: &TabularOptions) -> Result<()> {
    let bad = |field: &str, message: String| Err(Error::invalid(format!("{field} {message}")));
    if o.hidden.contains(&0) {
        return bad("hidden", "sizes must be at least 1".into());
    }
    if !(o.learning_rate.is_finite() && o.learning_rate > 0.0) {
        return bad(
            "learning_rate",
            format!("must be positive, got {}", o.learning_rate),
        );
    }
    if !(0.0..1.0).contains(&o.dropout) {
        return bad("dropout", format!("must be in [0, 1), got {}", o.dropout));
    }
    if !(o.l2.is_finite() && o.l2 >= 0.0) {
        return bad("l2", format!("must be >= 0, got {}", o.l2));
    }
    if o.batch_size == 0 || o.epochs == 0 {
        return bad("batch_size and epochs", "must be at least 1".into());
    }
    if !(0.0..1.0).contains(&o.validation_split) || o.validation_split == 0.0 {
        return bad(
            "validation_split",
            format!("must be in (0, 1), got {}", o.validation_split),
        );
    }
    Ok(())
}

/// The study's identity: the `[tune]` section and the configuration trials start from. The
/// time limit is not part of it, nor (but for Hyperband, whose brackets depend on it) the
/// number of trials: a resumed study may go on for longer, or further.
fn header(
    tune: &toml::Table,
    settings: &TuneSettings,
    doc: &toml::Table,
    data: String,
    options: &TuneOptions,
) -> Result<StudyHeader> {
    let text = |t: &toml::Table| {
        toml::to_string(t)
            .map_err(|e| Error::invalid(format!("cannot write the study header: {e}")))
    };
    let mut identity = tune.clone();
    identity.remove("max_seconds");
    if settings.algorithm != super::Algorithm::Hyperband {
        identity.remove("max_trials");
    }
    Ok(StudyHeader {
        version: VERSION,
        tune: text(&identity)?,
        base: text(doc)?,
        // Trials trained at once: --jobs on each process of the job.
        batch: options.jobs.max(1) * crate::distributed::world().size(),
        data,
    })
}

/// Refuses space entries that change what every trial must share: its data and how it is
/// scored (`fixed` are paths and the sections under them), and its epochs, which the search
/// sets (`max_epochs`).
fn refuse_fixed_fields(
    settings: &TuneSettings,
    fixed: &[&str],
) -> std::result::Result<(), (String, String)> {
    for p in &settings.space.params {
        let Some(f) = fixed.iter().find(|f| {
            p.name == **f
                || p.name.starts_with(&format!("{f}."))
                || p.name.starts_with(&format!("{f}["))
        }) else {
            continue;
        };
        let why = if f.ends_with("epochs") {
            "the search sets each trial's epochs: use tune.max_epochs".to_string()
        } else {
            format!("every trial is trained and scored on the same data, so {f} cannot be searched")
        };
        return Err((format!("tune.space.\"{}\"", p.name), why));
    }
    Ok(())
}

/// Checks the output folder before any work and returns the study file's path: a new
/// study needs a folder without one, a resumed one needs it.
fn prepare_output(options: &TuneOptions, inputs: &[&Path]) -> Result<PathBuf> {
    let dir = &options.output;
    crate::atomic::check_output_dir(dir)?;
    for input in inputs {
        if std::path::absolute(input).ok() == std::path::absolute(dir).ok() {
            return Err(Error::invalid(format!(
                "--output {} is an input",
                dir.display()
            )));
        }
    }
    let study = dir.join(STUDY_FILE);
    if options.resume && !study.exists() {
        return Err(Error::invalid(format!(
            "--resume: there is no study in {} ({} is missing)",
            dir.display(),
            study.display()
        )));
    }
    if !options.resume && study.exists() {
        return Err(Error::invalid(format!(
            "{} already holds a study: pass --resume to continue it, or choose another --output",
            study.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let outputs = [
        BEST_MODEL,
        BEST_CONFIG,
        "results.csv",
        "history.png",
        "history.svg",
        "params.png",
        "params.svg",
        "importance.png",
        "importance.svg",
    ];
    for name in outputs {
        let file = dir.join(name);
        // A new study never writes over files it did not make (a resumed one remade them).
        if !options.resume && file.exists() {
            return Err(Error::invalid(format!(
                "{} exists: a new study writes its results into a folder without them (choose another --output)",
                file.display()
            )));
        }
        crate::atomic::check_output(&file, inputs)?;
    }
    Ok(study)
}

fn run_study<T: Trainer>(
    trainer: &T,
    settings: &TuneSettings,
    doc: &toml::Table,
    header: StudyHeader,
    study_path: &Path,
    options: &TuneOptions,
    report: &mut dyn FnMut(Event),
) -> Result<(Study, SearchTimes)> {
    let threads = crate::num_threads();
    let jobs = options.jobs.max(1);
    if jobs > threads {
        return Err(Error::invalid(format!(
            "--jobs {jobs} is more than the {threads} threads Ember may use: trials would fight over the cores (raise --threads, or lower --jobs)"
        )));
    }
    let mut study = match options.resume {
        true => Study::resume(study_path, header)?,
        false => Study::create(study_path, header)?,
    };
    let run = Run {
        trainer,
        settings,
        base: doc,
        jobs,
        threads_per_trial: threads / jobs,
    };
    let times = run.search(&mut study, report)?;
    Ok((study, times))
}

fn best_of(study: &Study, settings: &TuneSettings) -> Result<TrialRecord> {
    best_trial(study, settings).cloned().ok_or_else(|| {
        let reason = study
            .trials
            .values()
            .find_map(|t| t.reason.clone())
            .unwrap_or_else(|| "no trial ran".into());
        Error::invalid(format!("no trial succeeded; the first failure: {reason}"))
    })
}

/// Records the retrained best trial once; true when its objective differs from the study's.
fn study_finish(
    study: &mut Study,
    best: &TrialRecord,
    values: Vec<f64>,
    test: BTreeMap<String, f64>,
) -> Result<bool> {
    let value = values.last().copied().unwrap_or(f64::NAN);
    let differs = best.value().is_none_or(|v| (v - value).abs() > 1e-9);
    let last = FinalRecord {
        trial: best.number,
        value,
        test,
    };
    if study.last.as_ref() != Some(&last) {
        study.record_final(last)?;
    }
    Ok(differs)
}

fn finish(
    (retrained_differs, times): (bool, SearchTimes),
    study: Study,
    settings: TuneSettings,
    best: TrialRecord,
    files: &mut Vec<PathBuf>,
    options: &TuneOptions,
) -> Result<Outcome> {
    files.extend(report::write_all(&options.output, &study, &settings)?);
    files.push(study.path().to_path_buf());
    let last = study
        .last
        .clone()
        .ok_or_else(|| Error::invalid("the study has no final record"))?;
    Ok(Outcome {
        settings,
        study,
        best,
        last,
        files: files.clone(),
        retrained_differs,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_space_fits_the_table_options() {
        let (_, tune) = split_file(TABLE_SPACE, Path::new("built-in")).unwrap();
        let tune = tune.unwrap();
        for task in [Task::Binary, Task::Regression] {
            let settings = TuneSettings::parse(&tune, &TableTrainer::logged(task), 500).unwrap();
            let base = TabularOptions {
                target: "y".into(),
                ..TabularOptions::default()
            };
            let toml::Value::Table(doc) = toml::Value::try_from(&base).unwrap() else {
                panic!()
            };
            settings
                .space
                .check_against(&doc, |d| {
                    let o: TabularOptions = toml::Value::Table(d.clone())
                        .try_into()
                        .map_err(|e: toml::de::Error| Error::invalid(e.to_string()))?;
                    check_table_options(&o)
                })
                .unwrap();
        }
    }
}
