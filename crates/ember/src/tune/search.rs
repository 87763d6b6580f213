//! The search loop: it asks the sampler for each trial's parameters, trains the trials on
//! parallel workers within the thread budget, records every result in the study as it
//! comes, and (Hyperband) stops the weaker trials of each rung. Results already in the study
//! are taken from it, not trained again: that is how a search resumes.

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use super::hyperband;
use super::sampler::{self, Algorithm};
use super::space::{Space, Value};
use super::study::{Study, TrialRecord, TrialState};
use super::{Direction, TuneSettings};
use crate::error::{Error, Result};

/// What a search trains: a trial starts from its configuration (the model file, or a
/// table's options, with the trial's values written in) and trains on epoch by epoch.
pub trait Trainer: Sync {
    type State: Send;
    /// Builds a trial from its configuration; an error when the combination is invalid.
    fn start(&self, config: &toml::Table) -> Result<Self::State>;
    /// Epochs the trial has trained.
    fn epochs_done(&self, state: &Self::State) -> usize;
    /// Trains on until `epochs` epochs in all; the objective after each new epoch (fewer
    /// when the trial's own callbacks stop it).
    fn train(&self, state: &mut Self::State, epochs: usize) -> Result<Vec<f64>>;
}

/// What the search reports as it goes.
pub enum Event<'a> {
    /// A trial finished a stretch of training (or failed, or was stopped at a rung).
    Trial(&'a TrialRecord),
    /// max_seconds ran out: no more trials start.
    OutOfTime,
}

/// How the search runs.
pub struct Run<'a, T: Trainer> {
    pub trainer: &'a T,
    pub settings: &'a TuneSettings,
    /// The configuration trials start from.
    pub base: &'a toml::Table,
    /// Trials trained at once.
    pub jobs: usize,
    /// Threads each trial's kernels may use.
    pub threads_per_trial: usize,
}

/// Where a search's time went: its wall-clock seconds, and the seconds it spent choosing
/// trials' parameters and recording results (the sampler and the study, outside training).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchTimes {
    pub seconds: f64,
    pub sampling: f64,
    pub recording: f64,
}

/// When the search must stop starting trials, and where its time went so far.
struct Clock {
    deadline: Option<Instant>,
    times: SearchTimes,
}

/// A unit of work: train trial `number` (with `values`) to `epochs` epochs.
struct Task<S> {
    number: usize,
    values: Vec<Value>,
    epochs: usize,
    bracket: Option<usize>,
    state: Option<S>,
    /// The objective values recorded before this stretch, and the seconds they took.
    earlier: Vec<f64>,
    earlier_seconds: f64,
}

/// A finished unit of work: the record, and the state to go on from (Hyperband).
struct Done<S> {
    record: TrialRecord,
    state: Option<S>,
}

impl<T: Trainer> Run<'_, T> {
    /// Runs the search into `study`, calling `report` as results come. Trials the study
    /// already holds are not trained again.
    pub fn search(&self, study: &mut Study, report: &mut dyn FnMut(Event)) -> Result<SearchTimes> {
        let started = Instant::now();
        let deadline = self
            .settings
            .max_seconds
            .map(|s| started + std::time::Duration::from_secs_f64(s));
        let mut clock = Clock {
            deadline,
            times: SearchTimes::default(),
        };
        match self.settings.algorithm {
            Algorithm::Hyperband => self.hyperband(study, report, &mut clock)?,
            _ => self.sequence(study, report, &mut clock)?,
        }
        clock.times.seconds = started.elapsed().as_secs_f64();
        Ok(clock.times)
    }

    /// Random, grid and TPE: max_trials trials, each trained for the whole budget; TPE
    /// samples `batch` trials at a time from the trials finished before them.
    fn sequence(
        &self,
        study: &mut Study,
        report: &mut dyn FnMut(Event),
        clock: &mut Clock,
    ) -> Result<()> {
        let settings = self.settings;
        let space = &settings.space;
        let budget = settings.budget();
        let sampling = Instant::now();
        let grid = match settings.algorithm {
            Algorithm::Grid => sampler::grid_order(space, settings.seed, settings.max_trials),
            _ => Vec::new(),
        };
        clock.times.sampling += sampling.elapsed().as_secs_f64();
        let trials = match settings.algorithm {
            Algorithm::Grid => grid.len(),
            _ => settings.max_trials,
        };
        // TPE samples each batch from the trials before it; the others need no history, and
        // go in chunks so that a long study's points are not all held at once.
        let batch = match settings.algorithm {
            Algorithm::Tpe => study.header.batch.max(1),
            _ => trials.clamp(1, 1024),
        };
        let mut start = 0;
        while start < trials {
            let end = (start + batch).min(trials);
            let sampling = Instant::now();
            let history = self.history(study, start);
            let points: Vec<Vec<Value>> = (start..end)
                .map(|number| match settings.algorithm {
                    Algorithm::Grid => sampler::grid_point(space, grid[number]),
                    Algorithm::Tpe => sampler::tpe_point(space, settings.seed, number, &history),
                    _ => {
                        sampler::random_point(space, &mut sampler::trial_rng(settings.seed, number))
                    }
                })
                .collect();
            clock.times.sampling += sampling.elapsed().as_secs_f64();
            let mut tasks = Vec::new();
            for (number, values) in (start..end).zip(points) {
                if self.known(study, number, &values, budget)? {
                    continue;
                }
                tasks.push(Task {
                    number,
                    values,
                    epochs: budget,
                    bracket: None,
                    state: None,
                    earlier: Vec::new(),
                    earlier_seconds: 0.0,
                });
            }
            let out_of_time =
                self.run_tasks(tasks, study, report, clock, TrialState::Complete, None)?;
            if out_of_time {
                report(Event::OutOfTime);
                return Ok(());
            }
            start = end;
        }
        Ok(())
    }

    /// Hyperband: brackets of successive halving over random configurations.
    fn hyperband(
        &self,
        study: &mut Study,
        report: &mut dyn FnMut(Event),
        clock: &mut Clock,
    ) -> Result<()> {
        let settings = self.settings;
        let space = &settings.space;
        let brackets = hyperband::plan(settings.budget(), settings.factor, settings.max_trials);
        let mut first = 0;
        for (b, bracket) in brackets.iter().enumerate() {
            let numbers: Vec<usize> = (first..first + bracket.configs).collect();
            first += bracket.configs;
            let sampling = Instant::now();
            let values: HashMap<usize, Vec<Value>> = numbers
                .iter()
                .map(|&n| {
                    (
                        n,
                        sampler::random_point(space, &mut sampler::trial_rng(settings.seed, n)),
                    )
                })
                .collect();
            clock.times.sampling += sampling.elapsed().as_secs_f64();
            let mut alive = numbers.clone();
            let mut states: HashMap<usize, T::State> = HashMap::new();
            for (r, rung) in bracket.rungs.iter().enumerate() {
                let last_rung = r + 1 == bracket.rungs.len();
                let mut tasks = Vec::new();
                for &number in &alive {
                    let known = study.trials.get(&number);
                    if let Some(t) = known {
                        check_params(space, t, &values[&number])?;
                        // Trained this far already, or finished (failed, or stopped by its
                        // own callbacks before the rung).
                        let stopped_itself = t.state == TrialState::Complete;
                        if t.values.len() >= rung.epochs
                            || t.state == TrialState::Failed
                            || stopped_itself
                        {
                            continue;
                        }
                    }
                    tasks.push(Task {
                        number,
                        values: values[&number].clone(),
                        epochs: rung.epochs,
                        bracket: Some(b),
                        state: states.remove(&number),
                        earlier: known.map(|t| t.values.clone()).unwrap_or_default(),
                        earlier_seconds: known.map_or(0.0, |t| t.seconds),
                    });
                }
                let after = match last_rung {
                    true => TrialState::Complete,
                    false => TrialState::Paused,
                };
                let out_of_time =
                    self.run_tasks(tasks, study, report, clock, after, Some(&mut states))?;
                if out_of_time {
                    report(Event::OutOfTime);
                    return Ok(());
                }
                if last_rung {
                    break;
                }
                // The rung's verdict: the best `keep` go on, the others stop here.
                let mut ranked: Vec<(usize, Option<f64>)> = alive
                    .iter()
                    .map(|&n| {
                        let t = &study.trials[&n];
                        let value = match t.state {
                            TrialState::Failed => None,
                            _ => t.values.get(rung.epochs - 1).or(t.values.last()).copied(),
                        };
                        (n, value)
                    })
                    .collect();
                ranked.sort_by(|a, b| compare(settings.direction, a.1, b.1).then(a.0.cmp(&b.0)));
                let keep: std::collections::HashSet<usize> = ranked
                    .iter()
                    // Trials that failed, or stopped themselves short of the rung, stay.
                    .filter(|(n, v)| v.is_some() && study.trials[n].values.len() >= rung.epochs)
                    .take(rung.keep)
                    .map(|(n, _)| *n)
                    .collect();
                for &n in &alive {
                    let t = &study.trials[&n];
                    if !keep.contains(&n) && t.state == TrialState::Paused {
                        let mut pruned = t.clone();
                        pruned.state = TrialState::Pruned;
                        study.record(pruned)?;
                        report(Event::Trial(&study.trials[&n]));
                        states.remove(&n);
                    }
                }
                alive.retain(|n| keep.contains(n));
            }
        }
        Ok(())
    }

    /// The finished trials numbered below `before`, as (values, loss to minimise).
    fn history(&self, study: &Study, before: usize) -> Vec<(Vec<Value>, f64)> {
        study
            .trials
            .range(..before)
            .filter_map(|(_, t)| {
                let value = t.value()?;
                let values = self.settings.space.from_json(&t.params)?;
                let loss = match self.settings.direction {
                    Direction::Minimize => value,
                    Direction::Maximize => -value,
                };
                Some((values, loss))
            })
            .collect()
    }

    /// Whether the study already holds trial `number`'s whole result.
    fn known(&self, study: &Study, number: usize, values: &[Value], budget: usize) -> Result<bool> {
        let Some(t) = study.trials.get(&number) else {
            return Ok(false);
        };
        check_params(&self.settings.space, t, values)?;
        Ok(t.finished() || t.values.len() >= budget)
    }

    /// Runs `tasks` on `jobs` workers, recording each result as it comes in state `after`
    /// (failures as failed); the trained states go into `keep` when given (Hyperband trains
    /// them on), else are dropped at once. True when the deadline stopped tasks from starting.
    /// In a job of several processes the tasks are spread over them ([`Run::run_shared`]).
    fn run_tasks(
        &self,
        tasks: Vec<Task<T::State>>,
        study: &mut Study,
        report: &mut dyn FnMut(Event),
        clock: &mut Clock,
        after: TrialState,
        mut keep: Option<&mut HashMap<usize, T::State>>,
    ) -> Result<bool> {
        if crate::distributed::world().size() > 1 {
            return self.run_shared(tasks, study, report, clock, after, keep);
        }
        let mut failure = None;
        let skipped = self.execute(tasks, clock.deadline, &mut |done| {
            let has_state = done.state.is_some();
            let settled = Self::settle(done.record, has_state, study, report, clock, after);
            match settled {
                Ok(number) => {
                    if let (Some(states), Some(state)) = (keep.as_deref_mut(), done.state) {
                        states.insert(number, state);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(skipped)
    }

    /// [`Run::run_tasks`] in a job of several processes: trial n is trained by rank
    /// n mod size (where its Hyperband state stays from rung to rung), then every rank's
    /// records go to every rank and are recorded in trial order, so that every rank's study
    /// — and so the next TPE batch and the next rung's verdict — is the same; rank 0 alone
    /// writes the study file.
    fn run_shared(
        &self,
        tasks: Vec<Task<T::State>>,
        study: &mut Study,
        report: &mut dyn FnMut(Event),
        clock: &mut Clock,
        after: TrialState,
        mut keep: Option<&mut HashMap<usize, T::State>>,
    ) -> Result<bool> {
        let world = crate::distributed::world();
        let (rank, size) = (world.rank(), world.size());
        let mine: Vec<Task<T::State>> = tasks
            .into_iter()
            .filter(|t| t.number % size == rank)
            .collect();
        let mut finished = Vec::new();
        let skipped = self.execute(mine, clock.deadline, &mut |done| finished.push(done));
        let mut states = HashMap::new();
        let records: Vec<(TrialRecord, bool)> = finished
            .into_iter()
            .map(|done| {
                let has_state = done.state.is_some();
                if let Some(state) = done.state {
                    states.insert(done.record.number, state);
                }
                (done.record, has_state)
            })
            .collect();
        let bytes = serde_json::to_vec(&(skipped, records))
            .map_err(|e| Error::invalid(format!("cannot send the trials' records: {e}")))?;
        let mut all = Vec::new();
        let mut any_skipped = false;
        for (from, bytes) in crate::distributed::all_gather(bytes)?
            .into_iter()
            .enumerate()
        {
            let (skipped, records): (bool, Vec<(TrialRecord, bool)>) =
                serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid(format!("rank {from}'s trial records do not read: {e}"))
                })?;
            any_skipped |= skipped;
            all.extend(records);
        }
        all.sort_by_key(|(record, _)| record.number);
        for (record, has_state) in all {
            let number = Self::settle(record, has_state, study, report, clock, after)?;
            if let (Some(keep), Some(state)) = (keep.as_deref_mut(), states.remove(&number)) {
                keep.insert(number, state);
            }
        }
        Ok(any_skipped)
    }

    /// Trains `tasks` on `jobs` workers, handing each result to `on_done` as it comes; true
    /// when the deadline stopped tasks from starting. A trial trains on this process alone,
    /// even in a job of several.
    fn execute(
        &self,
        tasks: Vec<Task<T::State>>,
        deadline: Option<Instant>,
        on_done: &mut dyn FnMut(Done<T::State>),
    ) -> bool {
        let queue = Mutex::new(tasks.into_iter().collect::<std::collections::VecDeque<_>>());
        let skipped = std::sync::atomic::AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<Done<T::State>>();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1) {
                let tx = tx.clone();
                let (queue, skipped) = (&queue, &skipped);
                scope.spawn(move || loop {
                    let task = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some(task) = task else { break };
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        skipped.store(true, std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                    let done = crate::distributed::alone(|| {
                        crate::tensor::threads::limited(self.threads_per_trial, || self.work(task))
                    });
                    if tx.send(done).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for done in rx {
                on_done(done);
            }
        });
        skipped.into_inner()
    }

    /// Records a trial's result in state `after` (a failure as failed; a paused trial with
    /// no state to go on from as complete) and reports it; returns its number.
    fn settle(
        mut record: TrialRecord,
        has_state: bool,
        study: &mut Study,
        report: &mut dyn FnMut(Event),
        clock: &mut Clock,
        after: TrialState,
    ) -> Result<usize> {
        if record.state != TrialState::Failed {
            record.state = after;
            // Stopped by its own callbacks before the budget: nothing to go on with.
            if record.state == TrialState::Paused && !has_state {
                record.state = TrialState::Complete;
            }
        }
        let number = record.number;
        let recording = Instant::now();
        let recorded = study.record(record);
        clock.times.recording += recording.elapsed().as_secs_f64();
        recorded?;
        report(Event::Trial(&study.trials[&number]));
        Ok(number)
    }

    /// Trains one task; a failure of the trial is its record, never the search's.
    fn work(&self, task: Task<T::State>) -> Done<T::State> {
        let started = Instant::now();
        let earlier_seconds = task.earlier_seconds;
        let params = self.settings.space.to_json(&task.values);
        let mut record = TrialRecord {
            number: task.number,
            params,
            state: TrialState::Complete,
            values: Vec::new(),
            seconds: 0.0,
            reason: None,
            bracket: task.bracket,
        };
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.train_task(task)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(Error::invalid(format!("the trial panicked: {message}")))
                });
        record.seconds = earlier_seconds + started.elapsed().as_secs_f64();
        match outcome {
            Ok((values, state, stopped)) => {
                record.values = values;
                // A trial that stopped itself (early stopping) has no state to go on from.
                Done {
                    record,
                    state: if stopped { None } else { Some(state) },
                }
            }
            Err(e) => {
                record.state = TrialState::Failed;
                record.reason = Some(e.to_string());
                Done {
                    record,
                    state: None,
                }
            }
        }
    }

    /// (objective per epoch from the first, the state, whether it stopped short).
    fn train_task(&self, task: Task<T::State>) -> Result<(Vec<f64>, T::State, bool)> {
        let mut state = match task.state {
            Some(s) => s,
            None => {
                let mut config = self.base.clone();
                self.settings
                    .space
                    .apply(&mut config, &task.values)
                    .map_err(|(field, message)| Error::invalid(format!("{field}: {message}")))?;
                self.trainer.start(&config)?
            }
        };
        let done = self.trainer.epochs_done(&state);
        let new = self.trainer.train(&mut state, task.epochs)?;
        if new.is_empty() && task.epochs > done {
            return Err(Error::invalid(format!(
                "the trial logged no {}: its configuration does not compute it",
                self.settings.objective
            )));
        }
        if let Some(bad) = new.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{} became {bad}",
                self.settings.objective
            )));
        }
        let stopped = done + new.len() < task.epochs;
        let mut values: Vec<f64> = task.earlier.into_iter().take(done).collect();
        values.extend(new);
        Ok((values, state, stopped))
    }
}

/// Orders objective values best first; a failed trial (None) last.
pub fn compare(direction: Direction, a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => match direction {
            Direction::Maximize => b.total_cmp(&a),
            Direction::Minimize => a.total_cmp(&b),
        },
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// A recorded trial must have the parameters this study gives it now.
fn check_params(space: &Space, record: &TrialRecord, values: &[Value]) -> Result<()> {
    if record.params != space.to_json(values) {
        return Err(Error::invalid(format!(
            "the study's trial {} had other parameters than this search gives it: \
             the study file was changed, or made by another version",
            record.number
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::study::StudyHeader;

    /// A trainer whose objective is known: a bowl with its top at x = 0.3 and choice 2,
    /// approached as epochs go on; x > 0.9 diverges.
    struct Bowl;

    struct BowlTrial {
        x: f64,
        choice: i64,
        epochs: usize,
    }

    impl Trainer for Bowl {
        type State = BowlTrial;
        fn start(&self, config: &toml::Table) -> Result<BowlTrial> {
            let x = config["x"].as_float().unwrap_or(0.0);
            let choice = config["c"].as_integer().unwrap_or(0);
            Ok(BowlTrial {
                x,
                choice,
                epochs: 0,
            })
        }
        fn epochs_done(&self, t: &BowlTrial) -> usize {
            t.epochs
        }
        fn train(&self, t: &mut BowlTrial, epochs: usize) -> Result<Vec<f64>> {
            if t.x > 0.9 {
                return Err(Error::NonFinite("the loss became NaN".into()));
            }
            let values = (t.epochs + 1..=epochs)
                .map(|e| {
                    let top = 1.0 - (t.x - 0.3).powi(2) - 0.1 * ((t.choice - 2).abs() as f64);
                    top * (1.0 - 1.0 / (e as f64 + 1.0))
                })
                .collect();
            t.epochs = epochs;
            Ok(values)
        }
    }

    fn settings(algorithm: &str, trials: usize) -> TuneSettings {
        let text = format!(
            r#"algorithm = "{algorithm}"
objective = "val_accuracy"
max_trials = {trials}
max_epochs = 9
seed = 5
[space]
"x" = {{ {x} }}
"c" = {{ int = [0, 4] }}"#,
            x = match algorithm {
                "grid" => "choice = [0.0, 0.3, 0.6, 0.95]",
                _ => "uniform = [0.0, 1.0]",
            }
        );
        TuneSettings::parse(&toml::from_str(&text).unwrap(), &["val_accuracy"], 9).unwrap()
    }

    fn header(s: &TuneSettings, jobs: usize) -> StudyHeader {
        StudyHeader {
            version: 1,
            tune: format!("{s:?}"),
            base: String::new(),
            batch: jobs,
            data: String::new(),
        }
    }

    fn search(s: &TuneSettings, study: &mut Study, jobs: usize) {
        let base: toml::Table = toml::from_str("x = 0.0\nc = 0").unwrap();
        let run = Run {
            trainer: &Bowl,
            settings: s,
            base: &base,
            jobs,
            threads_per_trial: 1,
        };
        run.search(study, &mut |_| {}).unwrap();
    }

    /// The records, without the seconds they took.
    fn records(study: &Study) -> Vec<TrialRecord> {
        study
            .trials
            .values()
            .map(|t| TrialRecord {
                seconds: 0.0,
                ..t.clone()
            })
            .collect()
    }

    #[test]
    fn every_algorithm_finds_the_top_of_the_bowl_and_records_failures() {
        let dir = tempfile::tempdir().unwrap();
        for (algorithm, trials) in [
            ("random", 30),
            ("grid", 100),
            ("tpe", 30),
            ("hyperband", 30),
        ] {
            let s = settings(algorithm, trials);
            let path = dir.path().join(format!("{algorithm}.jsonl"));
            let mut study = Study::create(&path, header(&s, 2)).unwrap();
            search(&s, &mut study, 2);
            let best = crate::tune::best_trial(&study, &s).unwrap();
            let x = best.params["x"].as_f64().unwrap();
            assert_eq!(best.params["c"], serde_json::json!(2), "{algorithm}");
            assert!((x - 0.3).abs() < 0.15, "{algorithm}: x = {x}");
            assert_eq!(best.values.len(), 9, "{algorithm}: the best trained fully");
            let failed: Vec<_> = study
                .trials
                .values()
                .filter(|t| t.state == TrialState::Failed)
                .collect();
            assert!(!failed.is_empty(), "{algorithm}: x > 0.9 fails");
            assert!(failed
                .iter()
                .all(|t| t.reason.as_deref().unwrap().contains("NaN")));
            let expected = match algorithm {
                "grid" => 20,
                _ => trials,
            };
            assert_eq!(study.trials.len(), expected, "{algorithm}");
            if algorithm == "hyperband" {
                let pruned = study
                    .trials
                    .values()
                    .filter(|t| t.state == TrialState::Pruned)
                    .count();
                assert!(pruned >= 10, "{pruned}");
                assert!(study.trials.values().all(|t| t.state != TrialState::Paused));
            }
        }
    }

    #[test]
    fn a_resumed_study_is_the_uninterrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        for algorithm in ["random", "tpe", "hyperband"] {
            let s = settings(algorithm, 24);
            let whole = dir.path().join(format!("{algorithm}-whole.jsonl"));
            let mut uninterrupted = Study::create(&whole, header(&s, 2)).unwrap();
            search(&s, &mut uninterrupted, 2);
            // Kill it part-way: the header and the first lines, and a line cut short.
            let text = std::fs::read_to_string(&whole).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for keep in [1, lines.len() / 3, lines.len() / 2] {
                let cut = dir.path().join(format!("{algorithm}-{keep}.jsonl"));
                let mut partial = lines[..keep].join("\n");
                partial.push_str("\n{\"trial\": {\"numb");
                std::fs::write(&cut, partial).unwrap();
                let mut resumed = Study::resume(&cut, header(&s, 2)).unwrap();
                search(&s, &mut resumed, 2);
                assert_eq!(
                    records(&resumed),
                    records(&uninterrupted),
                    "{algorithm}, {keep} lines"
                );
            }
        }
    }

    #[test]
    fn no_trial_starts_after_max_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings("random", 10);
        s.max_seconds = Some(1e-9);
        let mut study = Study::create(&dir.path().join("s"), header(&s, 1)).unwrap();
        let base: toml::Table = toml::from_str("x = 0.0\nc = 0").unwrap();
        let run = Run {
            trainer: &Bowl,
            settings: &s,
            base: &base,
            jobs: 1,
            threads_per_trial: 1,
        };
        let mut out_of_time = false;
        run.search(&mut study, &mut |e| {
            out_of_time |= matches!(e, Event::OutOfTime)
        })
        .unwrap();
        assert!(out_of_time);
        assert!(study.trials.is_empty());
    }

    #[test]
    fn trials_are_the_same_for_any_number_of_jobs_except_tpe_batches() {
        let dir = tempfile::tempdir().unwrap();
        for algorithm in ["random", "hyperband"] {
            let s = settings(algorithm, 12);
            let mut one =
                Study::create(&dir.path().join(format!("{algorithm}1")), header(&s, 1)).unwrap();
            search(&s, &mut one, 1);
            let mut two =
                Study::create(&dir.path().join(format!("{algorithm}2")), header(&s, 1)).unwrap();
            search(&s, &mut two, 2);
            assert_eq!(records(&one), records(&two), "{algorithm}");
        }
    }
}
