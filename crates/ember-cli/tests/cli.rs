//! The `ember` binary: its output contract and every error path, each one clear line and a
//! non-zero exit.

mod common;

use common::{assert_fails, ember, repo_root, stderr, stdout, Scratch};

/// The reference model file with one edit.
fn reference_with(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("models/mnist-mlp.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn train_prints_epochs_and_ends_with_test_accuracy() {
    let o = ember(&["train", "--epochs", "1", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Epoch 1/1"), "{out}");
    assert!(out.contains("val_accuracy: "), "{out}");
    let last = out.trim_end().lines().last().unwrap();
    let value = last.strip_prefix("Test accuracy: ").expect(last);
    assert_eq!(value.len(), 6, "four decimals: {last}");
    let accuracy: f64 = value.parse().unwrap();
    assert!(
        accuracy > 0.9,
        "one epoch already gets above 90%: {accuracy}"
    );
}

/// Peak resident memory of a finished child, in megabytes (Linux's `wait4`).
#[cfg(target_os = "linux")]
fn wait_peak_mb(child: std::process::Child) -> (std::process::ExitStatus, f64) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: pid is our unreaped child; both pointers are valid for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

#[cfg(target_os = "linux")]
#[test]
fn summary_counts_a_huge_models_weights_without_allocating_them() {
    let dir = Scratch::new("huge-summary");
    // A million hidden units: 785 million weights, 3.1 GB if they were created.
    let path = dir.write("huge.toml", reference_with("units = 64", "units = 1000000"));
    let child = common::command(&["summary", &path])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_peak_mb(child);
    assert!(status.success());
    assert!(peak < 200.0, "summary peaked at {peak:.0} MB");
    let out = stdout(&ember(&["summary", &path]));
    assert!(out.contains("785,000,000"), "{out}");
    assert!(out.contains("Total params: 795,000,010 (2.96 GB)"), "{out}");
}

/// A model without a network inside is summed up in a line, as the server lists it.
#[test]
fn summary_describes_an_encoder_and_a_language_model_and_embed_reads_stdin() {
    if let Some(encoder) = common::encoder_dir() {
        let encoder_path = encoder.display().to_string();
        // `embed --file -` reads its texts from standard input, as every reader takes `-`.
        let piped = common::ok_with_stdin(
            &["embed", "--encoder", &encoder_path, "--file", "-"],
            b"a first text\n\na second one\n",
        );
        let given = common::ok(&[
            "embed",
            "--encoder",
            &encoder_path,
            "a first text",
            "a second one",
        ]);
        assert_eq!(piped, given);
        let out = stdout(&ember(&["summary", &encoder.display().to_string()]));
        assert!(
            out.contains("sentence encoder: 6 layers, 12 heads, 384-dimensional embeddings"),
            "{out}"
        );
    }
    if let Some(llm) = common::llm_model() {
        let out = stdout(&ember(&["summary", &llm]));
        assert!(
            out.contains("llama language model: 30 layers, hidden 576"),
            "{out}"
        );
    }
}

#[test]
fn summary_prints_the_keras_table() {
    let o = ember(&["summary"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "dense (Dense)",
        "dense_1 (Dense)",
        "(None, 64)",
        "50,240",
        "650",
        "Total params: 50,890",
    ] {
        assert!(out.contains(needle), "{needle} missing from\n{out}");
    }
}

#[test]
fn model_file_errors_name_file_and_field() {
    let dir = Scratch::new("spec");
    let cases: [(&str, &str, &[&str]); 8] = [
        (
            "activation = \"relu\"",
            "activation = \"relu6\"",
            &["bad.toml:11", "layers[0].activation", "relu6"],
        ),
        (
            "type = \"dense\"",
            "type = \"dense_layer\"",
            &["layers[0]", "dense_layer"],
        ),
        (
            "type = \"adam\"",
            "type = \"adamax\"",
            &["compile.optimizer", "adamax"],
        ),
        (
            "units = 64",
            "units = \"64\"",
            &["layers[0].units", "invalid type"],
        ),
        ("units = 64\n", "", &["layers[0]", "missing field `units`"]),
        ("epochs = 10", "epochs = -1", &["fit.epochs"]),
        ("epochs = 10", "epoch = 10", &["unknown field `epoch`"]),
        (
            "format = \"mnist\"",
            "format = \"cifar\"",
            &["data.format", "cifar"],
        ),
    ];
    for (from, to, needles) in cases {
        let path = dir.write("bad.toml", reference_with(from, to));
        assert_fails(&ember(&["train", &path]), needles);
        assert_fails(&ember(&["summary", &path]), needles);
    }
    assert_fails(
        &ember(&["train", "no/such/model.toml"]),
        &["no/such/model.toml"],
    );
    let path = dir.write("nodata.toml", reference_with("[data]", "[unused]"));
    assert_fails(&ember(&["train", &path]), &["unknown field `unused`"]);
}

#[test]
fn data_errors_name_the_file() {
    let dir = Scratch::new("data");
    let data = dir.path().display().to_string();
    assert_fails(
        &ember(&["train", "--data", &data]),
        &["missing train-images-idx3-ubyte"],
    );
    assert_fails(
        &ember(&["train", "--data", "no/such/dir"]),
        &["no/such/dir", "not a directory"],
    );
    let idx = |dims: &[u32], values: &[u8]| {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        dims.iter()
            .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
        out.extend_from_slice(values);
        out
    };
    dir.write("train-images-idx3-ubyte", idx(&[2, 28, 28], &[0; 2 * 784]));
    dir.write("train-labels-idx1-ubyte", idx(&[2], &[3, 4]));
    dir.write("t10k-images-idx3-ubyte", idx(&[1, 28, 28], &[0; 784]));
    dir.write("t10k-labels-idx1-ubyte", idx(&[2], &[1, 2]));
    assert_fails(
        &ember(&["train", "--data", &data]),
        &["t10k-images-idx3-ubyte", "1 images but", "2 labels"],
    );
    dir.write("t10k-labels-idx1-ubyte", [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_fails(
        &ember(&["train", "--data", &data]),
        &["t10k-labels-idx1-ubyte", "bad magic number"],
    );
    dir.write("t10k-labels-idx1-ubyte", &idx(&[3], &[1, 2, 3])[..9]);
    assert_fails(
        &ember(&["train", "--data", &data]),
        &["t10k-labels-idx1-ubyte", "truncated"],
    );
    dir.write("t10k-labels-idx1-ubyte", idx(&[1], &[7]));
    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    dir.write("train-images-idx3-ubyte.gz", [0x1f, 0x8b, 8, 0, 1, 2, 3]);
    assert_fails(
        &ember(&["train", "--data", &data]),
        &["train-images-idx3-ubyte.gz"],
    );
}

#[test]
fn bad_flags_are_rejected() {
    for args in [
        &["train", "--epochs", "0"][..],
        &["train", "--batch-size", "abc"],
        &["train", "--threads", "0"],
        &["frobnicate"],
    ] {
        let o = ember(args);
        assert!(!o.status.success(), "{args:?}");
        assert!(!stderr(&o).is_empty());
    }
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // The reader has gone before ember prints its first line (`ember summary … | head -0`).
    let mut child = common::command(&["summary", "models/mnist-cnn.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    let quiet = output.status.success() || output.status.signal() == Some(libc_sigpipe());
    assert!(quiet, "{:?}: {err}", output.status);
}

/// SIGPIPE's number on Linux and the BSDs.
fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn thread_counts_are_checked() {
    // 1 to 1024, as the README says, for every command's --threads.
    // A usage error, as clap reports them (exit code 2).
    for bad in ["100000", "0"] {
        let o = ember(&["train", "--threads", bad, "--epochs", "1"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains(&format!("{bad} is not in 1..=1024")),
            "{}",
            stderr(&o)
        );
        assert!(!stdout(&o).contains("Epoch"), "{}", stdout(&o));
    }
    let o = ember(&["data", "inspect", "--threads", "0", "models/mnist-mlp.toml"]);
    assert!(
        stderr(&o).contains("0 is not in 1..=1024"),
        "{}",
        stderr(&o)
    );
    for bad in ["abc", "0", "-3", ""] {
        let o = common::command(&["summary", "models/mnist-mlp.toml"])
            .env("EMBER_NUM_THREADS", bad)
            .output()
            .unwrap();
        assert_fails(&o, &["EMBER_NUM_THREADS", "from 1 to 1024"]);
    }
    // The error's kind is said once, before the variable it is about.
    for args in [&["summary"][..], &["predict", "model.safetensors", "x.png"]] {
        let o = common::command(args)
            .env("EMBER_NUM_THREADS", "abc")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            "error: invalid argument: EMBER_NUM_THREADS: threads must be an integer from 1 to \
             1024, got 'abc'\n"
        );
    }
    let o = common::command(&["summary", "models/mnist-mlp.toml"])
        .env("EMBER_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn labels_that_do_not_fit_the_model_are_named_before_training() {
    let dir = Scratch::new("labels");
    let data = repo_root().join("data/mnist").display().to_string();
    let spec = reference_with("units = 10", "units = 5")
        .replace("dir = \"../data/mnist\"", &format!("dir = \"{data}\""));
    let path = dir.write("five.toml", spec);
    let o = ember(&["train", &path]);
    assert_fails(
        &o,
        &[
            "data/mnist/train-labels-idx1-ubyte",
            "sample 0 has label 5, outside the model's 5 classes (0 to 4)",
            "give the last layer as many units as there are classes",
        ],
    );
    assert!(!stdout(&o).contains("Epoch"), "{}", stdout(&o));
}

#[test]
fn a_stray_label_is_named_by_its_file_and_sample() {
    use std::io::{Read, Write};
    let Some(shared) = common::data_dir() else {
        return;
    };
    let dir = Scratch::new("stray-label");
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ] {
        std::fs::copy(shared.join("mnist").join(name), dir.path().join(name)).unwrap();
    }
    // The real test labels with one byte rewritten: sample 4242 (after the 8-byte header).
    let gz = std::fs::read(shared.join("mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    let mut labels = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut labels)
        .unwrap();
    labels[8 + 4242] = 77;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&labels).unwrap();
    let file = dir.write("t10k-labels-idx1-ubyte.gz", encoder.finish().unwrap());
    let data = dir.path().display().to_string();
    let o = ember(&["train", "--data", &data, "--epochs", "1"]);
    assert_fails(
        &o,
        &[&format!(
            "{file}: sample 4242 has label 77, outside the model's 10 classes (0 to 9)"
        )],
    );
    let err = stderr(&o);
    assert!(
        !err.contains("training labels") && !err.contains("other samples"),
        "{err}"
    );
    assert!(!stdout(&o).contains("Epoch"), "{}", stdout(&o));
}

#[test]
fn the_reference_model_file_is_built_in() {
    let dir = Scratch::new("elsewhere");
    let summary = common::command(&["summary"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(summary.status.success(), "{}", stderr(&summary));
    let table = stdout(&summary);
    assert!(table.contains("Total params: 50,890"), "{table}");
    let data = repo_root().join("data/mnist").display().to_string();
    let trained = common::command(&["train", "--epochs", "1", "--data", &data])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", stderr(&trained));
    assert!(stdout(&trained).contains("Training models/mnist-mlp.toml on 48000 samples"));
    // Without --data, the error says where it looked.
    let o = common::command(&["train", "--epochs", "1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_fails(&o, &["data/mnist"]);
}

#[test]
fn every_command_takes_threads_and_completions_are_printed() {
    let o = ember(&["summary", "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for command in ["predict", "index", "ask", "embed", "train", "evaluate"] {
        let o = ember(&[command, "--help"]);
        assert!(stdout(&o).contains("--threads"), "{command}");
    }
    // embed names its encoder as train, index and ask do (--model stays an alias).
    assert!(stdout(&ember(&["embed", "--help"])).contains("--encoder <DIR>"));
    let o = ember(&["embed", "--model", "/nonexistent", "hello"]);
    assert_fails(&o, &["/nonexistent"]);
    let o = ember(&["completions", "bash"]);
    assert!(o.status.success());
    let script = stdout(&o);
    assert!(
        script.contains("_ember()") && script.contains("train"),
        "{script}"
    );
    let o = ember(&["completions", "cmd"]);
    assert!(!o.status.success() && stderr(&o).contains("possible values"));
}

/// Long jobs report their progress: a bar on a terminal, a closing line each with
/// EMBER_PROGRESS=lines, nothing with -q (any subcommand takes it) or when piped.
#[test]
fn long_jobs_report_progress_unless_quiet_or_piped() {
    let Some(encoder) = common::encoder_dir() else {
        return;
    };
    let encoder = encoder.display().to_string();
    let run = |args: &[&str], lines: bool| {
        let mut command = common::command(args);
        if lines {
            command.env("EMBER_PROGRESS", "lines");
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stderr(&out)
    };
    let embed = [
        "embed",
        "--encoder",
        &encoder,
        "a first text",
        "a second one",
    ];
    let err = run(&embed, true);
    assert!(err.contains("Encoding: 2/2 texts in "), "{err}");
    assert!(!run(&embed, false).contains("Encoding"), "piped: no bar");
    let quiet: Vec<&str> = embed.iter().copied().chain(["-q"]).collect();
    assert!(!run(&quiet, true).contains("Encoding"), "-q: nothing");
    let Some(data) = common::data_dir() else {
        return;
    };
    let ratings = data.join("movielens-100k/u.data").display().to_string();
    let dir = common::Scratch::new("progress");
    let model = dir.file("mf.rec");
    let err = run(
        &[
            "recommend",
            "train",
            "--ratings",
            &ratings,
            "--epochs",
            "3",
            "--output",
            &model,
        ],
        true,
    );
    assert!(err.contains("Training: 3/3 epochs in "), "{err}");
}
