//! `ember bench predict`: tape-free inference of a saved MNIST MLP and a saved MNIST convnet —
//! single-sample latency (median, p99) and batch throughput, from one thread and from two
//! threads sharing one `&Model` — with the two-thread predictions checked against one thread's.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ember::autograd::{Pass, Value};
use ember::metrics::{accuracy_counts, AccuracyKind};
use ember::spec::Dataset;
use ember::tensor::threads::serial;
use ember::{Error, Model, ModelSpec, Tensor, Verbosity};

use super::{median, BenchArgs};

const MLP_FILE: &str = "models/mnist-mlp.toml";
const CNN_FILE: &str = "models/mnist-cnn.toml";
/// Distinct test images the single-sample calls cycle through.
const SAMPLES: usize = 1000;
/// Timed passes over the test set for throughput; the median is reported.
const PASSES: usize = 3;
/// The thread counts compared: one caller, and two callers sharing one model.
const CALLERS: [usize; 2] = [1, 2];

/// One model to time: where it comes from and how many single-sample calls each thread makes.
struct Workload {
    name: &'static str,
    file: &'static str,
    saved: Option<PathBuf>,
    /// Cuts training to this many epochs (latency does not depend on accuracy).
    epochs: Option<usize>,
    calls: usize,
    warmup: usize,
}

/// One caller's prediction of each sample, as (sample index, prediction).
type SamplePredictions = Vec<(usize, Tensor)>;

/// One row of the table.
struct Row {
    model: &'static str,
    callers: usize,
    single: Latency,
    samples_per_s: f64,
}

/// Per-call latency over every caller's timed calls, and the calls per second they made together.
#[derive(Debug, PartialEq)]
struct Latency {
    calls: usize,
    median_us: f64,
    p99_us: f64,
    calls_per_s: f64,
}

impl Latency {
    fn new(mut micros: Vec<f64>, wall: Duration) -> Latency {
        micros.sort_by(f64::total_cmp);
        Latency {
            calls: micros.len(),
            median_us: percentile(&micros, 50.0),
            p99_us: percentile(&micros, 99.0),
            calls_per_s: micros.len() as f64 / wall.as_secs_f64(),
        }
    }
}

/// The `p`-th percentile (0–100) of ascending `sorted` values, interpolating linearly between
/// the two nearest ranks (numpy's default), so that the 50th is the usual median.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let rank = p.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

/// Runs `f(caller)` on `callers` threads sharing whatever `f` borrows, and returns the results
/// in caller order. One caller runs here with the kernel pool; several each run their kernels
/// on themselves alone (`threads::serial`), so that they do not also compete for the pool.
fn on_threads<R: Send>(callers: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if callers == 1 {
        return vec![f(0)];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|c| {
                let f = &f;
                scope.spawn(move || serial(|| f(c)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A folder under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> ember::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("ember-bench-predict-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let workloads = [
        Workload {
            name: "MLP",
            file: MLP_FILE,
            saved: args.mlp.clone(),
            epochs: None,
            calls: 20_000,
            warmup: 1_000,
        },
        Workload {
            name: "CNN",
            file: CNN_FILE,
            saved: args.cnn.clone(),
            epochs: Some(1),
            calls: 2_000,
            warmup: 100,
        },
    ];
    println!(
        "tape-free Model::predict of saved models on the MNIST test set; kernel threads: {} for \
         1 thread (--threads), 1 each for 2 threads sharing one model (threads::serial)",
        ember::num_threads()
    );
    let temp = TempDir::new()?;
    let mut rows = Vec::new();
    let mut breakdown = String::new();
    for workload in &workloads {
        let (model, data) = prepare(workload, args, &temp.0)?;
        let samples: Vec<Tensor> = (0..SAMPLES.min(data.x_test.rows()))
            .map(|i| data.x_test.slice_rows(i, i + 1))
            .collect::<ember::Result<_>>()?;
        let mut reference: Option<(Vec<Tensor>, Tensor)> = None;
        for callers in CALLERS {
            let (single, outputs) = single_sample(&model, &samples, workload, callers)?;
            let (samples_per_s, predictions) =
                throughput(&model, &data.x_test, args.batch_size as usize, callers)?;
            match &reference {
                None => {
                    let (correct, total) =
                        accuracy_counts(AccuracyKind::Categorical, &predictions, &data.y_test)?;
                    println!(
                        "{}: test accuracy {:.4} (from the 1-thread batch predictions)",
                        workload.name,
                        correct as f64 / total as f64
                    );
                    let by_sample = outputs.into_iter().flatten().map(|(_, y)| y).collect();
                    reference = Some((by_sample, predictions));
                }
                Some((by_sample, batch)) => {
                    let same_samples = outputs
                        .iter()
                        .flatten()
                        .all(|(i, y)| by_sample.get(*i) == Some(y));
                    if !same_samples || predictions != *batch {
                        return Err(Error::invalid(format!(
                            "{}: the predictions of {callers} threads sharing the model differ \
                             from 1 thread's ({})",
                            workload.name,
                            if same_samples {
                                "batch"
                            } else {
                                "single-sample"
                            }
                        )));
                    }
                }
            }
            rows.push(Row {
                model: workload.name,
                callers,
                single,
                samples_per_s,
            });
        }
        if workload.name == "MLP" {
            breakdown = layer_breakdown(&model, &samples, workload)?;
        }
    }

    println!();
    println!(
        "{:<6} {:>8} {:>8} {:>10} {:>9} {:>10} {:>18}",
        "model",
        "threads",
        "calls",
        "median us",
        "p99 us",
        "calls/s",
        format!("batch {} samples/s", args.batch_size)
    );
    for row in &rows {
        println!(
            "{:<6} {:>8} {:>8} {:>10.1} {:>9.1} {:>10.0} {:>18.0}",
            row.model,
            row.callers,
            row.single.calls,
            row.single.median_us,
            row.single.p99_us,
            row.single.calls_per_s,
            row.samples_per_s
        );
    }
    println!(
        "single-sample: one test image per call, cycling through the first {SAMPLES}; for 2 \
         threads, latency over both threads' calls, calls/s and samples/s of both together"
    );
    println!("2 threads' predictions equal 1 thread's exactly (single-sample and batch)");
    if let Some(mlp) = rows.iter().find(|r| r.model == "MLP" && r.callers == 1) {
        println!("MLP single-sample median: {:.1} us", mlp.single.median_us);
    }
    print!("{breakdown}");
    Ok(())
}

/// The workload's model, loaded from its saved file (or trained from its model file, saved
/// under `temp` and loaded back, as a server would), and the model file's data.
fn prepare(workload: &Workload, args: &BenchArgs, temp: &Path) -> ember::Result<(Model, Dataset)> {
    let mut spec = ModelSpec::from_file(workload.file)?;
    let file = Path::new(workload.file);
    let (data_spec, dir) = ember::jobs::train_file::data_section(&spec, file, Some(&args.data))?;
    let data = data_spec.load_from(&dir)?;
    let path = match &workload.saved {
        Some(path) => {
            println!("{}: {}", workload.name, path.display());
            path.clone()
        }
        None => {
            let full = spec.fit.epochs;
            spec.fit.epochs = workload.epochs.map_or(full, |e| e.min(full));
            spec.fit.seed = args.seed;
            let started = Instant::now();
            let mut model = spec.build()?;
            let options = ember::FitOptions {
                verbose: Verbosity::Silent,
                ..spec.fit.options()
            };
            model.fit(&data.x_train, &data.y_train, &options)?;
            let path = temp.join(format!("{}.safetensors", workload.name.to_lowercase()));
            model.save(&path)?;
            let cut = match spec.fit.epochs < full {
                true => format!(" (cut from {full}: latency does not depend on accuracy)"),
                false => String::new(),
            };
            println!(
                "{}: {} trained {} epoch{}{cut} in {:.1} s, saved and loaded back",
                workload.name,
                workload.file,
                spec.fit.epochs,
                if spec.fit.epochs == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
            path
        }
    };
    let model = Model::load(&path)?;
    let images = &data.x_test.shape()[1..];
    if model.inputs().len() != 1 || model.input_shape() != images {
        return Err(Error::invalid(format!(
            "{}: {} takes inputs of shape {:?}, not the {} images of {} ({images:?})",
            workload.name,
            path.display(),
            model.input_shape(),
            workload.name,
            workload.file
        )));
    }
    Ok((model, data))
}

/// Times `workload.calls` single-sample `predict` calls on each of `callers` threads sharing
/// `model`, after `workload.warmup` untimed ones each (timing starts when every caller is warm). Returns the latencies and, per caller, the
/// prediction of each sample from its first pass over them, as (sample, prediction).
fn single_sample(
    model: &Model,
    samples: &[Tensor],
    workload: &Workload,
    callers: usize,
) -> ember::Result<(Latency, Vec<SamplePredictions>)> {
    let n = samples.len();
    let warm = std::sync::Barrier::new(callers);
    let per_caller = on_threads(callers, |caller| {
        // Callers start at different images, so that they do not run in lockstep.
        let first = caller * n / callers;
        let warmed = (0..workload.warmup).try_for_each(|j| {
            black_box(model.predict(&samples[(first + j) % n], 1)?);
            Ok(())
        });
        // Every caller reaches the barrier, even one that failed, so that none waits forever.
        warm.wait();
        warmed?;
        let started = Instant::now();
        let mut micros = Vec::with_capacity(workload.calls);
        let mut outputs = Vec::with_capacity(n);
        for j in 0..workload.calls {
            let i = (first + j) % n;
            let x = black_box(&samples[i]);
            let start = Instant::now();
            let y = black_box(model.predict(x, 1)?);
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            if j < n {
                outputs.push((i, y));
            }
        }
        Ok((started.elapsed(), micros, outputs))
    });
    let mut wall = Duration::ZERO;
    let mut micros = Vec::new();
    let mut outputs = Vec::new();
    for result in per_caller {
        let (span, m, o) = result?;
        // Calls per second together: every call over the span of the slowest caller.
        wall = wall.max(span);
        micros.extend(m);
        outputs.push(o);
    }
    Ok((Latency::new(micros, wall), outputs))
}

/// Samples per second predicting all of `x` in batches of `batch`, the batches dealt out in
/// turn to `callers` threads sharing `model`: the median of [`PASSES`] passes after a warm-up
/// batch. Returns it with the predictions of the last pass, in row order.
fn throughput(
    model: &Model,
    x: &Tensor,
    batch: usize,
    callers: usize,
) -> ember::Result<(f64, Tensor)> {
    let starts: Vec<usize> = (0..x.rows()).step_by(batch).collect();
    let pass = || -> ember::Result<Vec<Vec<Tensor>>> {
        on_threads(callers, |caller| {
            starts
                .iter()
                .skip(caller)
                .step_by(callers)
                .map(|&s| model.predict(&x.slice_rows(s, (s + batch).min(x.rows()))?, batch))
                .collect()
        })
        .into_iter()
        .collect()
    };
    black_box(model.predict(&x.slice_rows(0, batch.min(x.rows()))?, batch)?);
    let mut rates = Vec::with_capacity(PASSES);
    let mut last = Vec::new();
    for _ in 0..PASSES {
        let started = Instant::now();
        last = black_box(pass()?);
        rates.push(x.rows() as f64 / started.elapsed().as_secs_f64());
    }
    // Batch k went to caller k % callers, as its (k / callers)-th.
    let batches: Vec<&Tensor> = (0..starts.len())
        .map(|k| &last[k % callers][k / callers])
        .collect();
    Ok((median(&rates), stack_rows(&batches)?))
}

/// The rows of `parts`, one after the other, in one tensor.
fn stack_rows(parts: &[&Tensor]) -> ember::Result<Tensor> {
    let Some(first) = parts.first() else {
        return Err(Error::invalid("nothing to stack"));
    };
    let mut shape = first.shape().to_vec();
    shape[0] = parts.iter().map(|t| t.rows()).sum();
    let data = parts.iter().flat_map(|t| t.data()).copied().collect();
    Tensor::new(&shape, data)
}

/// Where one single-sample call's time goes, on this thread: each layer's own forward
/// (`Layer::forward`: for Dense, `tensor::forward::linear`), timed alone on the same samples,
/// and all of them chained; the rest of a `predict` call is its own overhead.
fn layer_breakdown(
    model: &Model,
    samples: &[Tensor],
    workload: &Workload,
) -> ember::Result<String> {
    let layers: Vec<(&str, &dyn ember::Layer)> = model.layers().collect();
    let median_of = |f: &dyn Fn(usize) -> ember::Result<Tensor>| -> ember::Result<f64> {
        for j in 0..workload.warmup {
            black_box(f(j % samples.len())?);
        }
        let mut micros = Vec::with_capacity(workload.calls);
        for j in 0..workload.calls {
            let i = black_box(j % samples.len());
            let start = Instant::now();
            black_box(f(i)?);
            micros.push(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok(median(&micros))
    };
    let mut text = format!(
        "{} single-sample breakdown, median per call:",
        workload.name
    );
    let mut inputs: Vec<Tensor> = samples.to_vec();
    for (name, layer) in &layers {
        let us = median_of(&|i| layer.forward(&inputs[i]))?;
        text += &format!(" {name} ({}) {us:.1} us;", layer.kind());
        inputs = inputs
            .iter()
            .map(|x| layer.forward(x))
            .collect::<ember::Result<_>>()?;
    }
    let chained = median_of(&|i| {
        layers
            .iter()
            .try_fold(Value::from(samples[i].clone()), |x, (_, layer)| {
                layer.call(&mut Pass::eager(), x, None)
            })?
            .into_tensor()
    })?;
    let predict = median_of(&|i| model.predict(&samples[i], 1))?;
    // Rounded so that noise of a few nanoseconds does not print as "-0.0".
    let overhead = match predict - chained {
        d if d.abs() < 0.05 => 0.0,
        d => d,
    };
    text += &format!(
        " all layers chained {chained:.1} us; Model::predict {predict:.1} us, so predict's own \
         overhead is {overhead:.1} us\n"
    );
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_like_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [0, 50, 90, 99, 100]) = 1, 3, 7.6, 9.76, 10
        let values = [1.0, 2.0, 3.0, 4.0, 10.0];
        for (p, want) in [
            (0.0, 1.0),
            (50.0, 3.0),
            (90.0, 7.6),
            (99.0, 9.76),
            (100.0, 10.0),
        ] {
            assert!((percentile(&values, p) - want).abs() < 1e-12, "{p}");
        }
        // An even count: the 50th is the mean of the middle two, as `median` gives.
        assert_eq!(percentile(&[1.0, 2.0, 4.0, 8.0], 50.0), 3.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn latency_sorts_its_calls_and_counts_them_per_second() {
        let micros = vec![30.0, 10.0, 20.0, 40.0];
        let latency = Latency::new(micros, Duration::from_millis(2));
        assert_eq!(latency.calls, 4);
        assert_eq!(latency.median_us, 25.0);
        assert!((latency.p99_us - 39.7).abs() < 1e-9);
        assert!((latency.calls_per_s - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn threads_return_results_in_caller_order() {
        assert_eq!(on_threads(1, |c| c * 10), vec![0]);
        assert_eq!(on_threads(3, |c| c * 10), vec![0, 10, 20]);
    }

    #[test]
    fn stacked_rows_keep_their_order() {
        let a = Tensor::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = Tensor::new(&[1, 2], vec![5.0, 6.0]).unwrap();
        let stacked = stack_rows(&[&a, &b]).unwrap();
        assert_eq!(
            stacked,
            Tensor::new(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()
        );
        assert!(stack_rows(&[]).is_err());
    }
}
