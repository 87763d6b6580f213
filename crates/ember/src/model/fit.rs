//! `fit`: the training loop (its options, the epochs, validation, callbacks); `evaluate` and
//! `predict` are in evaluate.rs.

use std::time::Instant;

use super::callback::{Callback, Control};
use super::data_parallel;
use super::functional::Model;
use super::history::{EpochLog, History};
use super::progress::Progress;
use super::step::Batch;
use crate::autograd::Tape;
use crate::distributed;
use crate::error::{Error, Result};
use crate::metrics::RunningMetrics;
use crate::privacy::Sampling;
use crate::tensor::denormal::FlushDenormals;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// How much `fit` prints (Keras `verbose`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    Silent,
    /// A progress bar per epoch.
    ProgressBar,
    /// One line per epoch.
    EpochLines,
    /// A progress bar on a terminal, one line per epoch otherwise.
    #[default]
    Auto,
}

impl Verbosity {
    /// Keras's `verbose` as a command line gives it: `quiet` is 0; `verbose` 0, 1 (a bar)
    /// or 2 (lines); None when neither is given. Both at once is an error.
    pub fn from_flags(quiet: bool, verbose: Option<u8>) -> Result<Option<Verbosity>> {
        Ok(match (quiet, verbose) {
            (true, Some(_)) => {
                return Err(Error::invalid(
                    "--quiet and --verbose say different things: give one",
                ))
            }
            (true, None) | (_, Some(0)) => Some(Verbosity::Silent),
            (_, Some(1)) => Some(Verbosity::ProgressBar),
            (_, Some(_)) => Some(Verbosity::EpochLines),
            (false, None) => None,
        })
    }
}

/// The most epochs one training runs, as the recommenders: more is a slip of the keyboard,
/// not a plan, and would run for ever.
pub const MAX_EPOCHS: usize = 100_000;

/// The largest batch: 2^24 samples, far beyond any data set held in memory here; more is a
/// slip, and batch arithmetic must not overflow.
pub const MAX_BATCH_SIZE: usize = 1 << 24;

/// An error unless `epochs` is 1 to [`MAX_EPOCHS`].
pub fn check_epochs(epochs: usize) -> Result<()> {
    match (1..=MAX_EPOCHS).contains(&epochs) {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "epochs must be 1 to {MAX_EPOCHS}, got {epochs}"
        ))),
    }
}

/// Options of `fit`, with Keras's defaults.
#[derive(Clone, Debug)]
pub struct FitOptions<'a> {
    /// Passes over the training data (default 1; at most [`MAX_EPOCHS`]).
    pub epochs: usize,
    /// Samples per gradient update (default 32).
    pub batch_size: usize,
    /// Fraction of the samples held out for validation, taken from the *end* of `x` and `y`
    /// before any shuffling (default 0).
    pub validation_split: f32,
    /// Explicit validation data; takes precedence over `validation_split`.
    pub validation_data: Option<(&'a Tensor, &'a Tensor)>,
    /// Epochs already done: training runs epochs `initial_epoch + 1 ..= epochs` (default 0).
    pub initial_epoch: usize,
    /// Shuffle the training samples before each epoch (default true).
    pub shuffle: bool,
    /// Weight of each class's samples in the training loss (Keras `class_weight`), indexed
    /// by class: a one-hot target's argmax, or a single target value rounded (a class index,
    /// or 0 and 1 for one sigmoid output). Models with one output only, as in Keras.
    pub class_weight: Option<Vec<f32>>,
    /// Seed for shuffling; None derives it from the model's seed.
    pub seed: Option<u64>,
    pub verbose: Verbosity,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            initial_epoch: 0,
            shuffle: true,
            class_weight: None,
            seed: None,
            verbose: Verbosity::Auto,
        }
    }
}

/// Where Keras's `validation_split` cuts `n` samples: ⌊n · (1 - split)⌋, the tail being the
/// validation set. An error when either side would be empty.
pub fn split_point(n: usize, validation_split: f32) -> Result<usize> {
    if validation_split == 0.0 {
        return Ok(n);
    }
    // Through the shortest decimal form, so 0.2f32 is 0.2 as in Python, not 0.2000000030.
    let split = super::history::decimal(validation_split);
    let at = ((n as f64) * (1.0 - split)).floor() as usize;
    if at == 0 || at == n {
        return Err(Error::invalid(format!(
            "{n} samples are too few to hold out validation_split = {validation_split}"
        )));
    }
    Ok(at)
}

/// Inputs and targets of a data set, one tensor per model input and output.
pub(super) struct Data<'a> {
    pub x: Vec<&'a Tensor>,
    pub y: Vec<&'a Tensor>,
}
impl Model {
    /// Trains the model (Keras `fit`).
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: &FitOptions) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// Trains the model, calling `callbacks` around every batch and epoch.
    ///
    /// ```
    /// use ember::prelude::*;
    /// let mut model = Sequential::with_seed(&[1], 3);
    /// model.add(Dense::new(1)).unwrap();
    /// model.compile(Sgd::new(0.1), Loss::MeanSquaredError, &[]).unwrap();
    /// let x = Tensor::new(&[8, 1], (0..8).map(|i| i as f32 / 8.0).collect()).unwrap();
    /// let y = Tensor::new(&[8, 1], (0..8).map(|i| 2.0 * i as f32 / 8.0).collect()).unwrap();
    /// let mut stop = EarlyStopping::new("val_loss", 2).restore_best_weights(true);
    /// let mut schedule = LearningRateScheduler::from_fn(|epoch, lr| if epoch < 5 { lr } else { lr * 0.9 });
    /// let options = FitOptions { epochs: 20, validation_split: 0.25, verbose: Verbosity::Silent, ..Default::default() };
    /// let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut stop, &mut schedule]).unwrap();
    /// assert!(history.epochs.len() <= 20);
    /// assert!(model.learning_rate() < 0.1);
    /// ```
    pub fn fit_with_callbacks(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        options: &FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.fit_many(&[x], &[y], options, callbacks)
    }

    /// Trains a model of several inputs or outputs: one tensor per input in `xs` and per
    /// output in `ys`, in the model's order. With several outputs the training loss is the
    /// sum of each output's loss, and accuracy is the first output's.
    pub fn fit_many(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        options: &FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let accuracy = self.compiled("fit")?.accuracy;
        let data = Data {
            x: xs.to_vec(),
            y: ys.to_vec(),
        };
        self.check_data(&data, "x", "y")?;
        if options.batch_size == 0 {
            return Err(Error::invalid("batch_size must be at least 1"));
        }
        if options.class_weight.is_some() && ys.len() > 1 {
            return Err(Error::invalid(format!(
                "class_weight is only supported for a model with one output (as in Keras); this one has {}",
                ys.len()
            )));
        }
        check_epochs(options.epochs)?;
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::invalid(format!(
                "validation_split must be in [0, 1), got {}",
                options.validation_split
            )));
        }
        let n = xs[0].rows();
        if n == 0 {
            return Err(Error::invalid(
                "there are no training samples: nothing to fit",
            ));
        }
        let n_train = if options.validation_data.is_some() {
            n
        } else {
            split_point(n, options.validation_split)?
        };
        let validation_data = options.validation_data.map(|(vx, vy)| Data {
            x: vec![vx],
            y: vec![vy],
        });
        if let Some(v) = &validation_data {
            self.check_data(v, "validation x", "validation y")?;
        }

        let _flush = FlushDenormals::new();
        // Each epoch shuffles the previous epoch's order. A run resumed after k epochs replays
        // the first k shuffles (milliseconds), so it sees exactly the batches of an
        // uninterrupted run.
        let seed = options.seed.unwrap_or_else(|| self.rng.next_u64());
        let mut shuffler = Rng::seed(seed);
        let mut order: Vec<usize> = (0..n_train).collect();
        // Nothing left to train (a model saved with as many epochs done, or a forged count
        // in a saved file): replaying its shuffles would take forever.
        let replays = match options.initial_epoch < options.epochs {
            true => options.initial_epoch,
            false => 0,
        };
        if options.shuffle {
            for _ in 0..replays {
                shuffler.shuffle(&mut order);
            }
        }
        // Private training (`Model::make_private`): DP-SGD steps, on Poisson-sampled batches.
        let private = self.start_private_run(n_train, options.batch_size, options.epochs)?;
        let steps = match &private {
            Some(run) => run.steps(n_train),
            None => n_train.div_ceil(options.batch_size),
        };
        // Data-parallel: every process starts from rank 0's weights; only rank 0 prints.
        self.broadcast_weights()?;
        let mut progress = Progress::new(match distributed::is_root() {
            true => options.verbose,
            false => Verbosity::Silent,
        });
        let mut history = History::default();
        // Scratch for the training steps; its buffers are reused from step to step.
        let mut tape = Tape::new();
        let graph = self.graph();
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(self)?;
        }
        'epochs: for epoch in options.initial_epoch.saturating_add(1)..=options.epochs {
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(self, epoch)?;
            }
            let started = Instant::now();
            if options.shuffle {
                shuffler.shuffle(&mut order);
            }
            progress.start_epoch(epoch, options.epochs, steps);
            let mut running = RunningMetrics::default();
            let sampled = match private.filter(|r| r.sampling == Sampling::Poisson) {
                Some(run) => run.poisson_batches(n_train, seed, epoch)?,
                None => Vec::new(),
            };
            let batches: Vec<&[usize]> = match private.map(|r| r.sampling) {
                Some(Sampling::Poisson) => sampled.iter().map(Vec::as_slice).collect(),
                _ => order.chunks(options.batch_size).collect(),
            };
            let mut noise = private.map(|run| run.noise(seed, epoch));
            for (step, &rows) in batches.iter().enumerate() {
                let class_weight = options.class_weight.as_deref();
                let loss = match (&private, noise.as_mut()) {
                    (Some(run), Some(noise)) => self.private_step(
                        &mut tape,
                        &graph,
                        &data,
                        rows,
                        class_weight,
                        &mut running,
                        run,
                        noise,
                    )?,
                    _ => self.train_step(
                        &mut tape,
                        &graph,
                        &data,
                        Batch {
                            rows,
                            next: batches.get(step + 1).copied(),
                        },
                        class_weight,
                        &mut running,
                    )?,
                };
                let mut stop = false;
                for cb in callbacks.iter_mut() {
                    stop |= cb.on_batch_end(self, step + 1, loss)? == Control::Stop;
                }
                if stop {
                    history.stopped_early = true;
                    break 'epochs;
                }
                if !loss.is_finite() {
                    return Err(Error::NonFinite(format!(
                        "the loss became {loss} at epoch {epoch}, step {}; lower the learning rate or check the data",
                        step + 1
                    )));
                }
                progress.step(step + 1, &running, accuracy.is_some());
            }
            let running = data_parallel::summed(&running)?;
            self.synchronise_epoch(epoch)?;
            let train_seconds = started.elapsed().as_secs_f64();
            let validation = match &validation_data {
                Some(v) => Some(self.evaluate_rows(v, 0..v.x[0].rows(), options.batch_size)?),
                None if n_train < n => {
                    Some(self.evaluate_rows(&data, n_train..n, options.batch_size)?)
                }
                None => None,
            };
            let log = EpochLog {
                epoch,
                loss: running.loss(),
                accuracy: accuracy.map(|_| running.accuracy()),
                val_loss: validation.map(|v| v.loss),
                val_accuracy: validation.and_then(|v| v.accuracy),
                learning_rate: self.learning_rate(),
                train_seconds,
                seconds: started.elapsed().as_secs_f64(),
            };
            progress.end_epoch(&log);
            history.epochs.push(log);
            let log = history.epochs.last().expect("just pushed");
            let mut stop = false;
            for cb in callbacks.iter_mut() {
                stop |= cb.on_epoch_end(self, log)? == Control::Stop;
            }
            if stop {
                history.stopped_early = epoch < options.epochs;
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(self, &history)?;
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;

    #[test]
    fn keras_verbose_from_the_command_line() {
        use Verbosity::*;
        assert_eq!(Verbosity::from_flags(false, None).unwrap(), None);
        assert_eq!(Verbosity::from_flags(true, None).unwrap(), Some(Silent));
        assert_eq!(Verbosity::from_flags(false, Some(0)).unwrap(), Some(Silent));
        assert_eq!(
            Verbosity::from_flags(false, Some(1)).unwrap(),
            Some(ProgressBar)
        );
        assert_eq!(
            Verbosity::from_flags(false, Some(2)).unwrap(),
            Some(EpochLines)
        );
        assert!(Verbosity::from_flags(true, Some(2)).is_err());
    }

    /// Two well-separated blobs: any working training loop reaches 100% quickly.
    fn blobs() -> (Tensor, Tensor) {
        let mut rng = crate::tensor::random::Rng::seed(9);
        let n = 200;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let class = i % 2;
            let centre = if class == 0 { -1.0 } else { 1.0 };
            x.push(centre + rng.uniform_range(-0.5, 0.5));
            x.push(-centre + rng.uniform_range(-0.5, 0.5));
            y.push(class as f32);
        }
        (
            Tensor::new(&[n, 2], x).unwrap(),
            Tensor::new(&[n], y).unwrap(),
        )
    }

    fn model(seed: u64) -> Sequential {
        let mut m = Sequential::with_seed(&[2], seed);
        m.add(Dense::new(8).activation(Activation::Tanh)).unwrap();
        m.add(Dense::new(2).activation(Activation::Softmax))
            .unwrap();
        m.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m
    }

    fn quiet(epochs: usize) -> FitOptions<'static> {
        FitOptions {
            epochs,
            validation_split: 0.25,
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        }
    }

    #[test]
    fn learns_separable_data_and_reports_history() {
        let (x, y) = blobs();
        let mut m = model(1);
        let history = m.fit(&x, &y, &quiet(20)).unwrap();
        assert_eq!(history.epochs.len(), 20);
        let losses = history.metric("loss");
        assert!(losses[19] < losses[0] / 4.0, "{losses:?}");
        assert_eq!(history.metric("val_accuracy").last(), Some(&1.0));
        let eval = m.evaluate(&x, &y, 32).unwrap();
        assert_eq!(eval.accuracy, Some(1.0));
    }

    #[test]
    fn targets_that_do_not_fit_the_output_are_named_before_training() {
        let (x, mut y) = blobs();
        let mut m = model(1);
        for (bad, says) in [
            (
                5.0,
                "label 5 of sample 3 is not one of the 2 classes of output 'dense_1'",
            ),
            (-1.0, "label -1 of sample 3"),
            (0.5, "label 0.5 of sample 3"),
        ] {
            let mut labels = y.data().to_vec();
            labels[3] = bad;
            y = Tensor::new(y.shape(), labels).unwrap();
            let err = m.fit(&x, &y, &quiet(1)).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            let err = m.evaluate(&x, &y, 32).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        // One-hot targets of more classes than the output has units.
        let mut wide = Sequential::with_seed(&[2], 1);
        wide.add(Dense::new(2).activation(Activation::Softmax))
            .unwrap();
        wide.compile(Adam::new(0.01), Loss::CategoricalCrossentropy, &[])
            .unwrap();
        let one_hot = Tensor::zeros(&[x.rows(), 5]);
        let err = wide.fit(&x, &one_hot, &quiet(1)).unwrap_err().to_string();
        assert!(
            err.contains("samples of [5], output 'dense' gives [2]")
                && err.contains("5 one-hot classes for 2 output units"),
            "{err}"
        );
        let err = wide
            .check_targets(&[&one_hot], "labels in data/mnist")
            .unwrap_err()
            .to_string();
        assert!(err.contains("labels in data/mnist"), "{err}");
    }

    #[test]
    fn no_training_samples_is_an_error_not_an_empty_run() {
        let mut m = model(1);
        let (x, y) = (Tensor::zeros(&[0, 2]), Tensor::zeros(&[0]));
        for split in [0.0, 0.25] {
            let options = FitOptions {
                validation_split: split,
                ..quiet(3)
            };
            let err = m.fit(&x, &y, &options).unwrap_err().to_string();
            assert!(err.contains("no training samples"), "{err}");
        }
    }

    #[test]
    fn a_run_with_every_epoch_done_returns_at_once() {
        let (x, y) = blobs();
        let mut m = model(1);
        let before = m.get_weights();
        let options = FitOptions {
            initial_epoch: usize::MAX,
            ..quiet(3)
        };
        let history = m.fit(&x, &y, &options).unwrap();
        assert!(history.epochs.is_empty());
        assert_eq!(m.get_weights(), before);
    }

    #[test]
    fn same_seed_same_weights() {
        let (x, y) = blobs();
        let (mut a, mut b, mut c) = (model(4), model(4), model(5));
        for m in [&mut a, &mut b, &mut c] {
            m.fit(&x, &y, &quiet(3)).unwrap();
        }
        let weights = |m: &Sequential| -> Vec<Tensor> {
            m.weights().into_iter().map(|(_, t)| t.clone()).collect()
        };
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(weights(&a), weights(&c));
    }

    #[test]
    fn validation_split_takes_the_last_samples() {
        // Label the last quarter differently from everything else: if validation came from
        // the tail (and is never trained on), validation accuracy stays at 0.
        let n = 40;
        let x = Tensor::new(&[n, 1], (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
        let y = Tensor::new(
            &[n],
            (0..n)
                .map(|i| {
                    if i >= 30 {
                        1.0 - (i % 2) as f32
                    } else {
                        (i % 2) as f32
                    }
                })
                .collect(),
        )
        .unwrap();
        let mut m = Sequential::with_seed(&[1], 2);
        m.add(Dense::new(2).activation(Activation::Softmax))
            .unwrap();
        m.compile(
            Adam::new(0.1),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let h = m.fit(&x, &y, &quiet(30)).unwrap();
        assert_eq!(h.metric("accuracy").last(), Some(&1.0));
        assert_eq!(h.metric("val_accuracy").last(), Some(&0.0));
    }

    #[test]
    fn split_point_is_keras_floor() {
        use crate::model::split_point;
        assert_eq!(split_point(60000, 0.2).unwrap(), 48000);
        assert_eq!(split_point(60000, 0.1).unwrap(), 54000);
        assert_eq!(split_point(10, 0.25).unwrap(), 7);
        assert_eq!(split_point(10, 0.0).unwrap(), 10);
        assert_eq!(split_point(9, 0.1).unwrap(), 8);
        assert!(split_point(1, 0.5).is_err(), "no training sample left");
    }

    #[test]
    fn bad_calls_are_errors_not_panics() {
        let (x, y) = blobs();
        let mut m = Sequential::new(&[2]);
        m.add(Dense::new(2)).unwrap();
        assert!(m
            .fit(&x, &y, &quiet(1))
            .unwrap_err()
            .to_string()
            .contains("compile"));
        let mut m = model(0);
        let wrong = Tensor::zeros(&[10, 3]);
        assert!(m
            .fit(&wrong, &y, &quiet(1))
            .unwrap_err()
            .to_string()
            .contains("expects (batch, 2)"));
        assert!(m.predict(&wrong, 32).is_err());
        let short_y = Tensor::zeros(&[5]);
        assert!(m.fit(&x, &short_y, &quiet(1)).is_err());
        let mut values = x.data().to_vec();
        values[7] = f32::NAN;
        let nan_x = Tensor::new(x.shape(), values).unwrap();
        assert!(m
            .fit(&nan_x, &y, &quiet(1))
            .unwrap_err()
            .to_string()
            .contains("NaN at sample 3"));
        let bad = FitOptions {
            batch_size: 0,
            ..quiet(1)
        };
        assert!(m.fit(&x, &y, &bad).is_err());
        let bad = FitOptions {
            validation_split: 1.0,
            ..quiet(1)
        };
        assert!(m.fit(&x, &y, &bad).is_err());
        assert!(m
            .compile(Adam::new(-1.0), Loss::MeanSquaredError, &[])
            .is_err());
    }

    #[test]
    fn class_weights_shift_predictions_towards_the_heavier_class() {
        // Overlapping classes, 90% of class 0: unweighted, almost everything is called 0;
        // with balanced weights, class 1's recall rises.
        let mut rng = crate::tensor::random::Rng::seed(5);
        let n = 400;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let class = (i % 10 == 0) as usize;
            x.push(class as f32 * 0.8 + rng.uniform_range(-1.0, 1.0));
            y.push(class as f32);
        }
        let x = Tensor::new(&[n, 1], x).unwrap();
        let y = Tensor::new(&[n, 1], y).unwrap();
        let recall = |weights: Option<Vec<f32>>| {
            let mut m = Sequential::with_seed(&[1], 3);
            m.add(Dense::new(1).activation(Activation::Sigmoid))
                .unwrap();
            m.compile(
                Adam::new(0.05),
                Loss::BinaryCrossentropy,
                &[Metric::Accuracy],
            )
            .unwrap();
            let options = FitOptions {
                epochs: 30,
                class_weight: weights,
                verbose: Verbosity::Silent,
                ..FitOptions::default()
            };
            m.fit(&x, &y, &options).unwrap();
            let p = m.predict(&x, 64).unwrap();
            let hits = p
                .data()
                .iter()
                .zip(y.data())
                .filter(|(p, t)| **t == 1.0 && **p > 0.5)
                .count();
            hits as f64 / 40.0
        };
        let (plain, balanced) = (
            recall(None),
            recall(Some(vec![400.0 / 720.0, 400.0 / 80.0])),
        );
        assert!(balanced > plain + 0.3, "recall {plain} → {balanced}");
        let mut m = model(0);
        let (bx, by) = blobs();
        let bad = FitOptions {
            class_weight: Some(vec![1.0]),
            ..quiet(1)
        };
        assert!(m
            .fit(&bx, &by, &bad)
            .unwrap_err()
            .to_string()
            .contains("class_weight has 1 entries"));
    }

    #[test]
    fn an_l2_kernel_penalty_adds_to_the_loss_and_to_the_gradient() {
        // Two models alike but for an L2 penalty on the kernel: the reported loss differs by
        // l2 · Σ w², and one SGD step by -lr · 2 · l2 · w (the data gradients are the same).
        let (x, y) = blobs();
        let (l2, lr) = (0.05f32, 0.1f32);
        let build = |penalty: Option<f32>| {
            let mut m = Sequential::with_seed(&[2], 3);
            let dense = Dense::new(2).activation(Activation::Softmax);
            m.add(match penalty {
                Some(f) => dense.kernel_l2(f),
                None => dense,
            })
            .unwrap();
            m.compile(Sgd::new(lr), Loss::SparseCategoricalCrossentropy, &[])
                .unwrap();
            m
        };
        let (mut plain, mut penalized) = (build(None), build(Some(l2)));
        let w0 = plain.get_weights()[0].clone();
        let squares: f64 = w0.data().iter().map(|&w| (w as f64).powi(2)).sum();
        let loss_plain = plain.evaluate(&x, &y, 1000).unwrap().loss;
        let loss_penalized = penalized.evaluate(&x, &y, 1000).unwrap().loss;
        assert!(
            (loss_penalized - loss_plain - l2 as f64 * squares).abs() < 1e-5,
            "{loss_penalized} vs {loss_plain} + {l2} · {squares}"
        );
        let one_step = FitOptions {
            epochs: 1,
            batch_size: x.rows(),
            shuffle: false,
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        plain.fit(&x, &y, &one_step).unwrap();
        penalized.fit(&x, &y, &one_step).unwrap();
        let (a, b) = (&plain.get_weights()[0], &penalized.get_weights()[0]);
        for ((wa, wb), w) in a.data().iter().zip(b.data()).zip(w0.data()) {
            assert!((wb - wa + lr * 2.0 * l2 * w).abs() < 1e-6, "{wa} {wb} {w}");
        }
        // The bias is not penalized.
        assert_eq!(plain.get_weights()[1], penalized.get_weights()[1]);
    }

    #[test]
    fn divergence_is_reported() {
        let x = Tensor::new(&[4, 1], vec![1e18, -1e18, 1e18, -1e18]).unwrap();
        let y = Tensor::new(&[4, 1], vec![1e18, 0.0, 1e18, 0.0]).unwrap();
        let mut m = Sequential::new(&[1]);
        m.add(Dense::new(1)).unwrap();
        m.compile(Sgd::new(1.0), Loss::MeanSquaredError, &[])
            .unwrap();
        let err = m.fit(&x, &y, &quiet(5)).unwrap_err().to_string();
        assert!(err.contains("loss became"), "{err}");
    }
}
