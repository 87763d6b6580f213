//! `ember bench distributed`: data-parallel training on this machine. The convnet
//! (models/mnist-cnn.toml, global batch 128) is trained by `ember train` as 1 process × 1
//! thread, 1 process × 2 threads and, under `mpirun`, 2 processes × 1 thread; the all-reduce
//! is timed from 4 KB to 64 MB (`--worker`, under `mpirun`), its latency α and inverse
//! bandwidth β fitted, and an α–β cost model says how the step scales to 8–64 nodes; with
//! `--python`, PyTorch DistributedDataParallel (gloo, bench/ddp_cnn.py) trains the same
//! network, data and global batch as 2 processes × 1 thread in the same run. The last line is
//! `2-rank scaling efficiency: X`, the speed-up of 2 ranks × 1 thread over 1 process × 1
//! thread, divided by 2.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ember::distributed;
use ember::{Error, ModelSpec};
use serde::{Deserialize, Serialize};

use super::{median, BenchArgs};

/// The message sizes timed, in bytes: 4 KB to 64 MB by factors of 4.
const SIZES: [usize; 8] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
];

/// One message size's all-reduce timing, as the worker prints it.
#[derive(Debug, Deserialize, Serialize)]
struct AllReduce {
    bytes: usize,
    repetitions: usize,
    median_seconds: f64,
}

/// One training run's figures.
struct Training {
    label: String,
    epoch_seconds: Vec<f64>,
    test_accuracy: f64,
    /// Training samples per epoch.
    samples: usize,
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    if args.worker {
        return time_all_reduce();
    }
    if !cfg!(feature = "mpi") {
        return Err(Error::invalid(
            "`ember bench distributed` starts MPI jobs of this binary: build it with \
             `cargo build --release --features mpi` (scripts/install-mpi.sh installs Open MPI)",
        ));
    }
    if distributed::world().size() > 1 {
        return Err(Error::invalid(
            "run `ember bench distributed` itself, not under mpirun: it starts its own jobs",
        ));
    }
    let epochs = args.epochs.unwrap_or(2) as usize;
    let file = args
        .model
        .clone()
        .unwrap_or_else(|| "models/mnist-cnn.toml".into());
    let spec = ModelSpec::from_file(&file)?;
    let parameters = spec.build()?.count_trainable_params();
    let batch = spec.fit.batch_size;
    let exe = std::env::current_exe().map_err(|e| Error::io("ember", e))?;
    let scratch =
        std::env::temp_dir().join(format!("ember-bench-distributed-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    println!(
        "{}: {} per run, global batch {batch}, {parameters} parameters ({:.0} KB of \
         gradients), seed {}",
        file.display(),
        ember::report::count(epochs, "epoch"),
        parameters as f64 * 4.0 / 1024.0,
        args.seed
    );
    println!("CPU: {}; {}", cpu_name(), mpi_version());
    let train = |ranks: usize, threads: usize| -> ember::Result<Training> {
        let report = scratch.join(format!("{ranks}x{threads}"));
        let mut args_list: Vec<String> = vec![
            "train".into(),
            file.display().to_string(),
            "--data".into(),
            args.data.display().to_string(),
            "--epochs".into(),
            epochs.to_string(),
            "--seed".into(),
            args.seed.to_string(),
            "--verbose".into(),
            "0".into(),
            "--report".into(),
            report.display().to_string(),
        ];
        let mut command = match ranks {
            1 => {
                args_list.extend(["--threads".into(), threads.to_string()]);
                let mut c = Command::new(&exe);
                c.args(&args_list);
                c
            }
            _ => mpirun(&exe, ranks, threads, &args_list),
        };
        let label = format!(
            "{ranks} process{} × {threads} thread{}",
            if ranks == 1 { "" } else { "es" },
            if threads == 1 { "" } else { "s" }
        );
        eprintln!("timing {label} …");
        let out = output(&mut command)?;
        let history = std::fs::read_to_string(report.join("history.json"))
            .map_err(|e| Error::io(report.join("history.json"), e))?;
        #[derive(Deserialize)]
        struct History {
            seconds: Vec<f64>,
        }
        let history: History = serde_json::from_str(&history)
            .map_err(|e| Error::invalid(format!("history.json of {label}: {e}")))?;
        let samples = out
            .lines()
            .find_map(|l| {
                l.split_once(" on ")?
                    .1
                    .split_once(" samples")?
                    .0
                    .parse()
                    .ok()
            })
            .ok_or_else(|| Error::invalid(format!("no 'on N samples' line in:\n{out}")))?;
        Ok(Training {
            label,
            epoch_seconds: history.seconds,
            test_accuracy: figure(&out, "Test accuracy: ")?,
            samples,
        })
    };
    let result = (|| -> ember::Result<()> {
        let one = train(1, 1)?;
        let threads = train(1, 2)?;
        let ranks = train(2, 1)?;
        eprintln!("timing the all-reduce …");
        let worker = mpirun(
            &exe,
            2,
            1,
            &["bench".into(), "distributed".into(), "--worker".into()],
        );
        let timings: Vec<AllReduce> =
            serde_json::from_str(output(&mut { worker })?.lines().last().unwrap_or_default())
                .map_err(|e| Error::invalid(format!("the all-reduce worker's output: {e}")))?;
        let torch = match &args.python {
            Some(python) => {
                eprintln!("timing PyTorch DDP 2 processes × 1 thread …");
                Some(run_torch(python, args, epochs, &spec)?)
            }
            None => None,
        };
        report(
            &one,
            &[&threads, &ranks],
            torch.as_ref(),
            &timings,
            parameters,
            batch,
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// `mpirun -np RANKS EXE ARGS`, each rank on `threads` kernel threads, unbound (as the
/// single process is).
fn mpirun(exe: &Path, ranks: usize, threads: usize, args: &[String]) -> Command {
    let mut c = Command::new("mpirun");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        c.arg("--allow-run-as-root");
    }
    c.args(["--bind-to", "none", "-np", &ranks.to_string()])
        .args(["-x", &format!("EMBER_NUM_THREADS={threads}")])
        .arg(exe)
        .args(args);
    c
}

/// Runs `command`; its standard output, or an error with its standard error.
fn output(command: &mut Command) -> ember::Result<String> {
    let out = command
        .output()
        .map_err(|e| Error::invalid(format!("cannot run {command:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::invalid(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The number on the line that starts with `prefix`.
fn figure(out: &str, prefix: &str) -> ember::Result<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .ok_or_else(|| Error::invalid(format!("no '{prefix}' line in:\n{out}")))
}

/// The all-reduce timings, in an MPI job (`--worker`): rank 0 prints them as JSON.
fn time_all_reduce() -> ember::Result<()> {
    let world = distributed::world();
    if world.size() < 2 {
        return Err(Error::invalid(
            "--worker times the all-reduce inside an MPI job of two or more processes",
        ));
    }
    let mut timings = Vec::new();
    for bytes in SIZES {
        let mut values = vec![1.0f32; bytes / 4];
        // About 64 MB moved per size, 5 to 1000 repetitions, after 3 untimed.
        let repetitions = ((64 << 20) / bytes).clamp(5, 1000);
        let mut seconds = Vec::with_capacity(repetitions);
        for i in 0..repetitions + 3 {
            // Every rank starts each repetition together.
            world.sum_f64(&mut [0.0])?;
            let started = Instant::now();
            world.sum_f32(&mut values)?;
            if i >= 3 {
                seconds.push(started.elapsed().as_secs_f64());
            }
            values.fill(1.0);
        }
        // Each repetition's time is the slowest rank's.
        max_over_ranks(&mut seconds)?;
        timings.push(AllReduce {
            bytes,
            repetitions,
            median_seconds: median(&seconds),
        });
    }
    if distributed::is_root() {
        println!(
            "{}",
            serde_json::to_string(&timings).map_err(|e| Error::invalid(e.to_string()))?
        );
    }
    Ok(())
}

/// Replaces each value with its largest over the ranks: every rank's values are gathered
/// (each fills its own slot of a zeroed buffer, which is then summed).
fn max_over_ranks(values: &mut [f64]) -> ember::Result<()> {
    let world = distributed::world();
    let (rank, size, n) = (world.rank(), world.size(), values.len());
    let mut all = vec![0.0f64; n * size];
    all[rank * n..(rank + 1) * n].copy_from_slice(values);
    world.sum_f64(&mut all)?;
    for (i, v) in values.iter_mut().enumerate() {
        *v = (0..size)
            .map(|r| all[r * n + i])
            .fold(f64::NEG_INFINITY, f64::max);
    }
    Ok(())
}

/// What PyTorch's scripts print.
#[derive(Deserialize)]
struct TorchRun {
    epoch_seconds: Vec<f64>,
    val_accuracy: f64,
    torch: String,
}

/// PyTorch DDP 2 processes × 1 thread (bench/ddp_cnn.py) and PyTorch alone on 1 thread
/// (bench/mnist_cnn.py), for its own scaling efficiency.
fn run_torch(
    python: &Path,
    args: &BenchArgs,
    epochs: usize,
    spec: &ModelSpec,
) -> ember::Result<(TorchRun, TorchRun)> {
    let mut common = vec![
        ("--data", args.data.display().to_string()),
        ("--epochs", epochs.to_string()),
        ("--seed", args.seed.to_string()),
        ("--threads", "1".to_string()),
    ];
    if let Some((h, w)) = super::cnn::translation(spec)? {
        common.push(("--translate", format!("{h},{w}")));
    }
    let mut ddp = common.clone();
    ddp.push(("--processes", "2".to_string()));
    let shared: TorchRun = super::run_python(python, "ddp_cnn.py", &ddp)?;
    eprintln!("timing PyTorch 1 process × 1 thread …");
    let alone: TorchRun = super::run_python(python, "mnist_cnn.py", &common)?;
    Ok((shared, alone))
}

/// The ring all-reduce's time for `bytes` over `nodes` by the α–β model: 2(P − 1) messages
/// of latency α, and 2(P − 1)/P of the data through each link at β seconds per byte.
fn ring_seconds(alpha: f64, beta: f64, nodes: usize, bytes: f64) -> f64 {
    let p = nodes as f64;
    2.0 * (p - 1.0) * alpha + 2.0 * (p - 1.0) / p * bytes * beta
}

fn report(
    one: &Training,
    others: &[&Training],
    torch: Option<&(TorchRun, TorchRun)>,
    timings: &[AllReduce],
    parameters: usize,
    batch: usize,
) {
    let base = median(&one.epoch_seconds);
    println!();
    println!(
        "{:<34} {:>8} {:>9} {:>9}",
        "", "s/epoch", "speed-up", "test_acc"
    );
    for t in std::iter::once(one).chain(others.iter().copied()) {
        let s = median(&t.epoch_seconds);
        println!(
            "{:<34} {:>8.2} {:>9.2} {:>9.4}",
            format!("Ember, {}", t.label),
            s,
            base / s,
            t.test_accuracy
        );
    }
    if let Some((ddp, alone)) = torch {
        let (d, a) = (median(&ddp.epoch_seconds), median(&alone.epoch_seconds));
        println!(
            "{:<34} {:>8.2} {:>9.2} {:>9}",
            format!("PyTorch {}, 1 process × 1 thread", alone.torch),
            a,
            1.0,
            format!("{:.4}*", alone.val_accuracy)
        );
        println!(
            "{:<34} {:>8.2} {:>9.2} {:>9}",
            "PyTorch DDP gloo, 2 processes × 1",
            d,
            a / d,
            format!("{:.4}*", ddp.val_accuracy)
        );
        println!("  (* PyTorch's figures are validation accuracy; speed-ups are each side's own)");
    }

    println!();
    println!("All-reduce of f32 sums between 2 processes (the slowest rank's time, median):");
    println!(
        "{:>10} {:>12} {:>12} {:>8}",
        "size", "time", "bandwidth", "repeats"
    );
    for t in timings {
        println!(
            "{:>10} {:>12} {:>9.2} GB/s {:>8}",
            bytes_text(t.bytes),
            seconds_text(t.median_seconds),
            t.bytes as f64 / t.median_seconds / 1e9,
            t.repetitions
        );
    }
    // α: the smallest message's time (4 KB moves in well under α at these bandwidths); β:
    // the slope between the two largest.
    let (alpha, beta) = match timings {
        [first, .., a, b] => {
            let beta =
                ((b.median_seconds - a.median_seconds) / (b.bytes - a.bytes) as f64).max(1e-15);
            (first.median_seconds, beta)
        }
        _ => (f64::NAN, f64::NAN),
    };
    println!(
        "α–β fit: latency α = {}, bandwidth 1/β = {:.2} GB/s",
        seconds_text(alpha),
        1.0 / beta / 1e9
    );

    // The cost model: the step's compute shrinks with the nodes (the global batch is
    // shared), the ring all-reduce of the gradients grows with them.
    let step = base / one.samples.div_ceil(batch) as f64;
    let bytes = parameters as f64 * 4.0;
    println!();
    println!(
        "Cost model of one step (global batch {batch}: {} of compute on 1 thread; a ring \
         all-reduce of {}, overlap left out): efficiency = compute / (compute + all-reduce)",
        seconds_text(step),
        bytes_text(bytes as usize)
    );
    let networks = [
        ("measured here (shared memory)", alpha, beta),
        ("10 GbE (assumed: α 50 µs, 1.1 GB/s)", 50e-6, 1.0 / 1.1e9),
        (
            "InfiniBand HDR100 (assumed: α 2 µs, 11 GB/s)",
            2e-6,
            1.0 / 11e9,
        ),
    ];
    let nodes = [2usize, 8, 16, 32, 64];
    print!("{:<46}", "nodes");
    for p in nodes {
        print!(" {p:>6}");
    }
    println!();
    for (name, a, b) in networks {
        print!("{name:<46}");
        for p in nodes {
            let compute = step / p as f64;
            print!(
                " {:>6.2}",
                compute / (compute + ring_seconds(a, b, p, bytes))
            );
        }
        println!();
    }

    if let Some((ddp, _)) = torch {
        let ranks = others.iter().find(|t| t.label.starts_with("2 processes"));
        if let Some(r) = ranks {
            println!();
            println!(
                "ratio Ember / PyTorch DDP (2 processes × 1 thread, median s/epoch): {:.3}",
                median(&r.epoch_seconds) / median(&ddp.epoch_seconds)
            );
        }
    } else {
        println!();
        println!(
            "PyTorch DDP: not timed; pass --python PATH (a virtual environment with torch, see bench/README.md)"
        );
    }
    let ranks = others
        .iter()
        .find(|t| t.label.starts_with("2 processes"))
        .map_or(f64::NAN, |t| base / median(&t.epoch_seconds) / 2.0);
    println!("2-rank scaling efficiency: {ranks:.3}");
}

fn bytes_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MB", b >> 20),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

fn seconds_text(s: f64) -> String {
    match s {
        s if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        s if s < 1.0 => format!("{:.2} ms", s * 1e3),
        s => format!("{s:.2} s"),
    }
}

/// The CPU's model name, from /proc/cpuinfo, with the number of cores this process may use.
fn cpu_name() -> String {
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{name} ({cores} cores)")
}

/// `mpirun --version`'s first line.
fn mpi_version() -> String {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "mpirun not found".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_model_is_latency_bound_for_small_messages_and_bandwidth_bound_for_large() {
        // Two nodes: two messages of α, and the whole buffer once through at β.
        assert!((ring_seconds(1e-6, 1e-9, 2, 1e6) - (2e-6 + 1e-3)).abs() < 1e-12);
        // Many nodes: the data term tends to 2·n·β, the latency term grows linearly.
        let many = ring_seconds(0.0, 1e-9, 64, 1e6);
        assert!((many - 2.0 * 63.0 / 64.0 * 1e-3).abs() < 1e-12);
        assert!((ring_seconds(1e-6, 0.0, 64, 1e6) - 126e-6).abs() < 1e-12);
    }

    #[test]
    fn sizes_are_shown_in_their_unit() {
        assert_eq!(bytes_text(4 << 10), "4 KB");
        assert_eq!(bytes_text(64 << 20), "64 MB");
        assert_eq!(seconds_text(2.5e-6), "2.5 µs");
        assert_eq!(seconds_text(0.0125), "12.50 ms");
    }
}
