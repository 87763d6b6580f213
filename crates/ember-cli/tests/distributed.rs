//! Data-parallel training under `mpirun` (feature `mpi`): two ranks train the reference MNIST
//! model and a table model as one process does, print once, and a killed rank ends the job
//! with a line naming it, after which the last checkpoint resumes to the uninterrupted run's
//! weights.
//!
//! The binary under test is built with `cargo build --release --features mpi` and copied
//! to `target/mpi/ember` (`.ci/run` does both; `EMBER_MPI_BIN` names another). Without it,
//! or without `mpirun`, the MPI tests skip on a developer's machine and fail under CI=true.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{data_dir, missing, repo_root, Scratch};

/// One MPI job at a time: two ranks already take both cores.
static ONE_JOB: Mutex<()> = Mutex::new(());

/// The mpi-enabled binary and mpirun, or None (skip, or fail under CI=true).
fn mpi_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("EMBER_MPI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/release/ember → target/mpi/ember, whatever the target folder.
            let ember = PathBuf::from(env!("CARGO_BIN_EXE_ember"));
            ember.parent().unwrap().parent().unwrap().join("mpi/ember")
        });
    let mpirun = Command::new("mpirun").arg("--version").output();
    if !bin.is_file() || !mpirun.is_ok_and(|o| o.status.success()) {
        missing(&format!(
            "no MPI build at {} or no mpirun (scripts/install-mpi.sh, then cargo build --release \
             --features mpi and copy target/release/ember there)",
            bin.display()
        ));
        return None;
    }
    Some(bin)
}

/// `mpirun -np N BIN ARGS` with the flags a container and two cores need: root allowed,
/// more ranks than cores allowed, no binding (so each rank's one kernel thread may run on
/// either core), no single-copy transfers (ptrace-based, refused in many containers).
fn mpirun(bin: &Path, ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
    .args(["-np", &ranks.to_string(), "-x", "EMBER_NUM_THREADS=1"])
    .arg(bin)
    .args(args)
    .current_dir(repo_root())
    .env("EMBER_NUM_THREADS", "1");
    c
}

/// The same binary as one plain process, on one thread.
fn alone(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(repo_root())
        .env("EMBER_NUM_THREADS", "1");
    c
}

fn run(mut c: Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of the line starting with `prefix` (its only one).
fn figure(out: &str, prefix: &str) -> f64 {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(lines.len(), 1, "one '{prefix}' line:\n{out}");
    lines[0][prefix.len()..].trim().parse().unwrap()
}

/// The largest relative difference, ‖a − b‖ / ‖a‖, between two saved models' weights.
fn weight_difference(a: &str, b: &str) -> f64 {
    let (a, b) = (
        ember::io::load(a).unwrap().model,
        ember::io::load(b).unwrap().model,
    );
    let (a, b) = (a.weights(), b.weights());
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|((name, x), (other, y))| {
            assert_eq!(name, other);
            let diff: f64 = x
                .data()
                .iter()
                .zip(y.data())
                .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
                .sum();
            let norm: f64 = x.data().iter().map(|p| (*p as f64).powi(2)).sum();
            (diff / norm.max(1e-30)).sqrt()
        })
        .fold(0.0, f64::max)
}

/// The stated bound: two ranks' final weights are within this relative (L2) distance of one
/// process's, weight by weight (measured: about 1e-6 after 10 MNIST epochs, 2e-6 for the
/// Titanic table model; the gap is summation order, as with different thread counts).
const WEIGHTS_AGREE: f64 = 1e-4;

#[test]
fn two_ranks_train_mnist_as_one_process_does_and_print_once() {
    let Some(bin) = mpi_binary() else { return };
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("mpi-mnist");
    let (one, two) = (dir.file("one.safetensors"), dir.file("two.safetensors"));
    let args = [
        "train",
        "models/mnist-mlp.toml",
        "--seed",
        "1",
        "--verbose",
        "2",
    ];
    let single = stdout(&run(alone(&bin, &[&args[..], &["-o", &one]].concat())));
    let out = run(mpirun(&bin, 2, &[&args[..], &["-o", &two]].concat()));
    let shared = stdout(&out);
    assert!(
        shared.contains("(2 processes × 1 thread, seed 1)"),
        "{shared}"
    );
    // Rank 0 alone prints: every line once.
    assert_eq!(shared.matches("Epoch 10/10").count(), 1, "{shared}");
    let (a, b) = (
        figure(&single, "Test accuracy: "),
        figure(&shared, "Test accuracy: "),
    );
    assert!((a - b).abs() <= 0.002, "1 process {a}, 2 ranks {b}");
    assert!(a > 0.96, "{a}");
    let gap = weight_difference(&one, &two);
    assert!(gap <= WEIGHTS_AGREE, "weights differ by {gap:e}");
    // Evaluation shares the test set among the ranks and adds up their sums.
    let evaluate = ["evaluate", two.as_str()];
    let (a, b) = (
        stdout(&run(alone(&bin, &evaluate))),
        stdout(&run(mpirun(&bin, 2, &evaluate))),
    );
    assert_eq!(a, b);
    // A command that would do the same work on each rank is refused, once.
    let out = mpirun(&bin, 2, &["summary"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        said.matches("`ember summary` does not share its work")
            .count(),
        1,
        "{said}"
    );
}

#[test]
fn two_ranks_train_a_table_model_as_one_process_does() {
    let Some(bin) = mpi_binary() else { return };
    let Some(data) = data_dir() else { return };
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let dir = Scratch::new("mpi-table");
    let (one, two) = (dir.file("one.safetensors"), dir.file("two.safetensors"));
    let args = ["train", "--csv", &titanic, "--target", "Survived"];
    let single = stdout(&run(alone(&bin, &[&args[..], &["-o", &one]].concat())));
    let shared = stdout(&run(mpirun(&bin, 2, &[&args[..], &["-o", &two]].concat())));
    for prefix in ["Test accuracy: ", "Test ROC AUC: "] {
        let (a, b) = (figure(&single, prefix), figure(&shared, prefix));
        assert!((a - b).abs() <= 0.002, "{prefix}1 process {a}, 2 ranks {b}");
    }
    let gap = weight_difference(&one, &two);
    assert!(gap <= WEIGHTS_AGREE, "weights differ by {gap:e}");
}

#[test]
fn random_layers_draw_for_the_whole_batch_whatever_the_number_of_ranks() {
    let Some(bin) = mpi_binary() else { return };
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("mpi-draws");
    let (one, two) = (dir.file("one.safetensors"), dir.file("two.safetensors"));
    // The convnet (random shifts, dropout) on 240 images in batches of 239: each epoch's
    // last batch is one image, which rank 1 has no share of (it sends zeros). The ranks
    // must draw each image's shift and dropout mask as one process does: the weights then
    // agree to float rounding. (Over a whole epoch the
    // convnet's rounding differences grow — max pooling and ReLU switch on them — to about
    // 1% of the weights, with the same test accuracy, as any change of summation order
    // would make them.)
    let args = [
        "train",
        "models/mnist-cnn.toml",
        "--epochs",
        "3",
        "--validation-split",
        "0.996",
        "--batch-size",
        "239",
        "--verbose",
        "0",
    ];
    run(alone(&bin, &[&args[..], &["-o", &one]].concat()));
    run(mpirun(&bin, 2, &[&args[..], &["-o", &two]].concat()));
    let gap = weight_difference(&one, &two);
    assert!(gap <= 1e-6, "weights differ by {gap:e}");
}

/// Rank `rank`'s process among mpirun's children (found by the rank Open MPI gives it).
fn rank_pid(mpirun: u32, rank: usize) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{mpirun}/task/{mpirun}/children")).ok()?;
    children.split_whitespace().find_map(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        environ
            .split(|&b| b == 0)
            .any(|v| v == wanted.as_bytes())
            .then(|| pid.parse().ok())?
    })
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes_to_the_same_weights() {
    let Some(bin) = mpi_binary() else { return };
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("mpi-kill");
    let (checkpoint, resumed, whole) = (
        dir.file("checkpoint.safetensors"),
        dir.file("resumed.safetensors"),
        dir.file("whole.safetensors"),
    );
    let args = [
        "train",
        "models/mnist-mlp.toml",
        "--seed",
        "2",
        "--epochs",
        "6",
    ];
    let mut job = mpirun(
        &bin,
        2,
        &[&args[..], &["--checkpoint", &checkpoint]].concat(),
    );
    let mut job = job
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the checkpoint holds two epochs, rank 1 is killed.
    let started = Instant::now();
    let epochs_done = |file: &str| ember::io::load(file).map_or(0, |c| c.epochs_done);
    while epochs_done(&checkpoint) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after two minutes"
        );
        assert!(job.try_wait().unwrap().is_none(), "the job ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = rank_pid(job.id(), 1).expect("rank 1's process");
    kill9(victim);
    let killed = Instant::now();
    let out = job.wait_with_output().unwrap();
    let ended = killed.elapsed();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        ended < Duration::from_secs(10),
        "ended {ended:?} after the kill"
    );
    assert!(
        said.lines()
            .any(|l| l.contains("process rank 1") && l.contains("signal 9")),
        "a line names the killed rank:\n{said}"
    );
    let done = epochs_done(&checkpoint);
    assert!((2..6).contains(&done), "{done} epochs in the checkpoint");

    // The checkpoint resumes on two ranks to the very weights of an uninterrupted run …
    let resume = [
        "train",
        "--resume",
        &checkpoint,
        "--epochs",
        "6",
        "-o",
        &resumed,
    ];
    run(mpirun(&bin, 2, &resume));
    run(mpirun(&bin, 2, &[&args[..], &["-o", &whole]].concat()));
    assert_eq!(weight_difference(&whole, &resumed), 0.0);
    // … and on one process, on another number of ranks, to the same accuracy.
    let single = [
        "train",
        "--resume",
        &checkpoint,
        "--epochs",
        "6",
        "--verbose",
        "0",
    ];
    let out = stdout(&run(alone(&bin, &single)));
    let evaluated = stdout(&run(alone(&bin, &["evaluate", &whole])));
    let (a, b) = (
        figure(&out, "Test accuracy: "),
        figure(&evaluated, "Test accuracy: "),
    );
    assert!(
        (a - b).abs() <= 0.002,
        "resumed alone {a}, uninterrupted {b}"
    );
}

fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
#[cfg(not(feature = "mpi"))]
fn a_binary_without_mpi_started_as_several_processes_says_how_to_rebuild() {
    // The test binary is built without the feature; a launcher's variables are enough.
    for (var, value) in [("OMPI_COMM_WORLD_SIZE", "2"), ("PMI_SIZE", "4")] {
        let out = common::command(&["train", "--epochs", "1"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&format!("started as one of {value} processes"))
                && err.contains("--features mpi"),
            "{err}"
        );
    }
    // The other processes of such a job say nothing.
    let out = common::command(&["train", "--epochs", "1"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_RANK", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A launcher's world of one is a plain run.
    let out = common::command(&["summary"])
        .env("OMPI_COMM_WORLD_SIZE", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// results.csv without its seconds column (the sixth).
fn results_without_seconds(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("results.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(',').collect();
            fields.remove(5);
            fields.join(",")
        })
        .collect()
}

#[test]
fn two_ranks_share_a_search_and_resume_it() {
    let Some(bin) = mpi_binary() else { return };
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("mpi-tune");
    // The reference search cut to 4 trials of at most 2 epochs, by Hyperband and by TPE.
    let text = std::fs::read_to_string(repo_root().join("models/mnist-mlp-tune.toml"))
        .unwrap()
        .replace("max_trials = 20", "max_trials = 4")
        .replace("max_epochs = 20 ", "max_epochs = 2 ")
        .replace(
            "dir = \"../data/mnist\"",
            &format!("dir = \"{}\"", repo_root().join("data/mnist").display()),
        );
    for algorithm in ["hyperband", "tpe"] {
        let file = dir.write(
            &format!("{algorithm}.toml"),
            text.replace(
                "algorithm = \"hyperband\"",
                &format!("algorithm = \"{algorithm}\""),
            ),
        );
        let (one, two) = (
            dir.path().join(format!("{algorithm}-one")),
            dir.path().join(format!("{algorithm}-two")),
        );
        // One process training two trials at a time, and two ranks one each: the same
        // batches of trials, so the same study.
        let single = alone(
            &bin,
            &[
                "tune",
                &file,
                "--jobs",
                "2",
                "-o",
                &one.display().to_string(),
            ],
        );
        let single = stdout(&run({
            let mut c = single;
            c.env("EMBER_NUM_THREADS", "2");
            c
        }));
        let shared = stdout(&run(mpirun(
            &bin,
            2,
            &["tune", &file, "-o", &two.display().to_string()],
        )));
        assert!(
            shared.contains("(2 processes × 1 thread, 2 at a time)"),
            "{shared}"
        );
        assert_eq!(
            results_without_seconds(&one),
            results_without_seconds(&two),
            "{algorithm}"
        );
        for prefix in ["Best val_accuracy: ", "Test accuracy: "] {
            assert_eq!(
                figure(&single, prefix),
                figure(&shared, prefix),
                "{algorithm}"
            );
        }
        assert!(!shared.contains("warning"), "{shared}");
        // Rank 0 alone wrote the study: as many lines as one process's.
        let lines = |d: &Path| {
            std::fs::read_to_string(d.join("study.jsonl"))
                .unwrap()
                .lines()
                .count()
        };
        assert_eq!(lines(&one), lines(&two));
    }
    // A study cut after its first trial resumes on two ranks to the same results.
    let (one, two) = (dir.path().join("tpe-one"), dir.path().join("tpe-two"));
    let study = two.join("study.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&study)
        .unwrap()
        .lines()
        .take(2)
        .map(String::from)
        .collect();
    std::fs::write(&study, kept.join("\n") + "\n").unwrap();
    std::fs::remove_file(two.join("best.safetensors")).unwrap();
    let file = dir.file("tpe.toml");
    run(mpirun(
        &bin,
        2,
        &["tune", &file, "--resume", "-o", &two.display().to_string()],
    ));
    assert_eq!(results_without_seconds(&one), results_without_seconds(&two));
}
