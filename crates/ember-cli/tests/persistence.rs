//! Saving, evaluating, predicting and resuming through the `ember` binary, on the real MNIST
//! files in data/mnist.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{command, ember, fails_with, last_line, ok, repo_root, Scratch};

use ember::data::image::save_png;
use ember::{io, Mnist, Tensor};

fn weights(path: &str) -> Vec<Tensor> {
    io::load(path).unwrap().model.get_weights()
}

#[test]
fn saved_model_evaluates_to_the_accuracy_train_printed_and_predicts_digits() {
    let dir = Scratch::new("evaluate");
    let model = dir.file("mnist.safetensors");
    let report = dir.file("report");
    let trained = ok(&[
        "train", "--epochs", "2", "--output", &model, "--report", &report,
    ]);
    let printed = last_line(&trained).to_string();
    assert!(printed.starts_with("Test accuracy: "), "{trained}");

    let evaluated = ok(&["evaluate", &model]);
    assert_eq!(last_line(&evaluated), printed, "evaluate agrees with train");
    // A decision threshold is a binary classifier's: refused for ten digits.
    common::fails_with(
        &["evaluate", &model, "--threshold", "0.5"],
        &["--threshold does nothing for", "a network model"],
    );
    common::fails_with(
        &[
            "predict",
            &model,
            "data/mnist/t10k-images-idx3-ubyte.gz",
            "--threshold",
            "0.5",
        ],
        &["--threshold 0.5 decides between two classes; this is a network of 10 classes"],
    );
    for needle in [
        "Top-5 accuracy: ",
        "weighted avg",
        "Confusion matrix",
        "true\\pred",
    ] {
        assert!(evaluated.contains(needle), "{needle}:\n{evaluated}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["evaluate", &model, "--json"])).unwrap();
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert_eq!(format!("Test accuracy: {accuracy:.4}"), printed);
    assert_eq!(
        json["confusion_matrix"]["counts"].as_array().unwrap().len(),
        100
    );
    // Top-k accuracy as an object; each class's scores under its label, as predict says it.
    let top = &json["top_k_accuracy"];
    assert_eq!(top["k"], 5, "{top}");
    assert!(top["accuracy"].as_f64().unwrap() >= accuracy, "{top}");
    let per_class = json["report"]["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    for (c, entry) in per_class.iter().enumerate() {
        assert_eq!(entry["label"], c.to_string(), "{entry}");
        assert_eq!(entry["index"], c, "{entry}");
        for key in ["precision", "recall", "f1", "support"] {
            assert!(entry[key].is_number(), "{key} in {entry}");
        }
    }

    for file in [
        "history.csv",
        "history.json",
        "loss.png",
        "loss.svg",
        "accuracy.png",
        "accuracy.svg",
        "confusion_matrix.png",
        "confusion_matrix.svg",
        "evaluation.json",
    ] {
        let path = Path::new(&report).join(file);
        assert!(
            path.metadata().map(|m| m.len() > 100).unwrap_or(false),
            "{file}"
        );
    }
    let csv = std::fs::read_to_string(Path::new(&report).join("history.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,accuracy,loss,val_accuracy,val_loss,learning_rate\n1,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);

    // Real test digits as PNG files, an IDX file and CSV rows.
    let mnist = Mnist::load(repo_root().join("data/mnist")).unwrap();
    let digit = |i: usize| {
        mnist
            .test_images
            .slice_rows(i, i + 1)
            .unwrap()
            .reshape(&[28, 28])
            .unwrap()
    };
    let labels: Vec<usize> = (0..5)
        .map(|i| mnist.test_labels.data()[i] as usize)
        .collect();
    let mut pngs = Vec::new();
    for i in 0..5 {
        let path = dir.file(&format!("digit{i}.png"));
        save_png(Path::new(&path), &digit(i)).unwrap();
        pngs.push(path);
    }
    // A large, dark-on-light rendering of the first digit (as a scan or a drawing would be).
    let big = Tensor::new(
        &[112, 112],
        (0..112 * 112)
            .map(|k| 255.0 - digit(0).data()[(k / 112 / 4) * 28 + (k % 112) / 4])
            .collect(),
    )
    .unwrap();
    let big_path = dir.file("big-inverted.png");
    save_png(Path::new(&big_path), &big).unwrap();
    let mut args = vec!["predict", model.as_str()];
    args.extend(pngs.iter().map(String::as_str));
    args.push(&big_path);
    args.push("--json");
    let predictions: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let predicted: Vec<usize> = predictions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_u64().unwrap() as usize)
        .collect();
    let mut expected = labels.clone();
    expected.push(labels[0]);
    assert_eq!(predicted, expected, "labels of test digits {labels:?}");
    let top = predictions[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert_eq!(top[0]["label"], labels[0].to_string());
    assert_eq!(top[0]["index"].as_u64(), Some(labels[0] as u64));
    assert!(top[0]["score"].as_f64().unwrap() > top[1]["score"].as_f64().unwrap());

    // An image is one sample: no `#0` after its name.
    let text = ok(&["predict", &model, &pngs[1]]);
    assert!(
        text.starts_with(&format!(
            "{}: {}  (top: {} 0.",
            pngs[1], labels[1], labels[1]
        )),
        "{text}"
    );

    let idx = dir.file("five.idx");
    let five = mnist.test_images.slice_rows(0, 5).unwrap();
    let mut bytes = vec![0u8, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28];
    bytes.extend(five.data().iter().map(|&v| v as u8));
    std::fs::write(&idx, bytes).unwrap();
    let out = ok(&["predict", &model, &idx]);
    let out_idx = out.clone();
    // A file of several samples numbers them.
    assert!(
        out.lines()
            .nth(4)
            .unwrap()
            .starts_with(&format!("{idx}#4: ")),
        "{out}"
    );
    let from_idx: Vec<String> = out
        .lines()
        .map(|l| {
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        from_idx,
        labels.iter().map(|l| l.to_string()).collect::<Vec<_>>()
    );

    let csv_path = dir.file("rows.csv");
    let rows: Vec<String> = (0..2)
        .map(|i| {
            digit(i)
                .data()
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(&csv_path, rows.join("\n")).unwrap();
    let out = ok(&["predict", &model, &csv_path]);
    assert!(
        out.contains(&format!("#0: {}", labels[0])) && out.contains(&format!("#1: {}", labels[1])),
        "{out}"
    );

    // Inputs of the wrong kind or shape.
    std::fs::write(dir.file("short.csv"), "1,2,3\n").unwrap();
    fails_with(
        &["predict", &model, &dir.file("short.csv")],
        &["short.csv", "rows of 3 values", "784"],
    );
    std::fs::write(dir.file("notes.txt"), "hello").unwrap();
    fails_with(
        &["predict", &model, &dir.file("notes.txt")],
        &[
            "notes.txt",
            "not a PNG/JPEG image, IDX file or CSV rows of numbers",
        ],
    );
    // Values no training image came near (IDX floats of 3e38) get no confident answer.
    let mut huge = vec![0u8, 0, 0x0d, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
    for _ in 0..784 {
        huge.extend(3e38f32.to_be_bytes());
    }
    std::fs::write(dir.file("huge.idx"), huge).unwrap();
    fails_with(
        &["predict", &model, &dir.file("huge.idx")],
        &[
            "huge.idx",
            "far outside the values the model was trained on (0 to 255)",
        ],
    );
    // What a file holds decides how it is read, not its name.
    std::fs::write(dir.file("fake.png"), "not an image").unwrap();
    fails_with(
        &["predict", &model, &dir.file("fake.png")],
        &[
            "fake.png",
            "not a PNG/JPEG image, IDX file or CSV rows of numbers",
        ],
    );
    std::fs::write(dir.file("broken.jpg"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    fails_with(
        &["predict", &model, &dir.file("broken.jpg")],
        &["broken.jpg", "cannot decode"],
    );
    let misnamed = dir.file("idx-named.png");
    std::fs::copy(&idx, &misnamed).unwrap();
    let by_content = ok(&["predict", &model, &misnamed]);
    assert_eq!(
        by_content.replace(&misnamed, &idx),
        out_idx,
        "read by content"
    );
    // Standard input is `-`, once; --output writes the lines to a file, never over an input.
    let from_stdin =
        common::ok_with_stdin(&["predict", &model, "-"], &std::fs::read(&idx).unwrap());
    assert_eq!(from_stdin.replace("-#", &format!("{idx}#")), out_idx);
    fails_with(&["predict", &model, "-", "-"], &["can be read once"]);
    let saved = dir.file("predictions.txt");
    assert_eq!(ok(&["predict", &model, &idx, "--output", &saved]), "");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), out_idx);
    fails_with(
        &["predict", &model, &idx, "--output", &model],
        &["is also an input"],
    );
    fails_with(
        &["predict", &model, &dir.file("absent.png")],
        &["absent.png"],
    );
}

#[test]
fn corrupt_or_missing_model_files_are_one_line_errors() {
    let dir = Scratch::new("corrupt");
    let model = dir.file("m.safetensors");
    ok(&["train", "--epochs", "1", "--output", &model]);
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.file("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let garbage = dir.file("garbage.safetensors");
    std::fs::write(
        &garbage,
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
    )
    .unwrap();
    for command in ["evaluate", "predict"] {
        let mut args = vec![command, truncated.as_str()];
        if command == "predict" {
            args.push("x.png");
        }
        fails_with(&args, &["truncated.safetensors", "not a valid model file"]);
        args[1] = &garbage;
        fails_with(&args, &["garbage.safetensors", "not a valid model file"]);
    }
    fails_with(
        &["train", "--resume", &truncated],
        &["truncated.safetensors"],
    );
    fails_with(
        &["evaluate", &dir.file("nothing.safetensors")],
        &["nothing.safetensors"],
    );
    fails_with(
        &["evaluate", &model, "--data", "no/such/dir"],
        &["no/such/dir"],
    );
    let o = ember(&["train", "models/mnist-mlp.toml", "--resume", &model]);
    assert!(
        !o.status.success(),
        "a model file and --resume together are refused"
    );
}

#[test]
fn sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run() {
    let dir = Scratch::new("resume");
    let uninterrupted = dir.file("full.safetensors");
    ok(&["train", "--epochs", "4", "--output", &uninterrupted]);

    let checkpoint = dir.file("checkpoint.safetensors");
    let mut child = command(&["train", "--epochs", "4", "--checkpoint", &checkpoint])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then kill the run part-way into the next epoch.
    let started = Instant::now();
    while !Path::new(&checkpoint).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint written"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(120));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed before it finished");

    let saved = io::load(&checkpoint).expect("the checkpoint is valid after SIGKILL");
    assert!((1..4).contains(&saved.epochs_done), "{}", saved.epochs_done);
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no temporary files left behind: {leftovers:?}"
    );

    let resumed = dir.file("resumed.safetensors");
    let out = ok(&["train", "--resume", &checkpoint, "--output", &resumed]);
    let first_epoch = format!("Epoch {}/4", saved.epochs_done + 1);
    assert!(
        out.contains(&first_epoch) && !out.contains("Epoch 1/4"),
        "{out}"
    );
    assert!(last_line(&out).starts_with("Test accuracy: 0.9"), "{out}");
    assert_eq!(io::load(&resumed).unwrap().epochs_done, 4);
    assert_eq!(
        weights(&resumed),
        weights(&uninterrupted),
        "bit-identical to the uninterrupted run"
    );

    // Nothing left to do: says so and still evaluates.
    let again = ok(&["train", "--resume", &resumed]);
    assert!(
        again.contains("already been trained for 4 epochs"),
        "{again}"
    );
}

#[test]
fn callbacks_from_the_model_file() {
    let dir = Scratch::new("callbacks");
    let text = std::fs::read_to_string(repo_root().join("models/mnist-mlp.toml")).unwrap();
    let log = dir.file("log.csv");
    // The training loss falls every epoch, so monitoring it in "max" mode never improves:
    // training stops after epoch 2 and restores the weights of epoch 1.
    let spec = format!(
        "{text}\n[[callbacks]]\ntype = \"early_stopping\"\nmonitor = \"loss\"\nmode = \"max\"\nrestore_best_weights = true\n\n\
         [[callbacks]]\ntype = \"csv_logger\"\nfilename = \"{log}\"\n\n\
         [[callbacks]]\ntype = \"learning_rate_scheduler\"\nschedule = {{ type = \"step\", every = 1, factor = 0.5 }}\n"
    )
    .replace("dir = \"../data/mnist\"", &format!("dir = \"{}\"", repo_root().join("data/mnist").display()));
    let model_file = dir.file("early.toml");
    std::fs::write(&model_file, spec).unwrap();
    let stopped = dir.file("stopped.safetensors");
    let out = ok(&["train", &model_file, "--output", &stopped]);
    assert!(
        out.contains("Training stopped early after epoch 2"),
        "{out}"
    );
    assert!(!out.contains("Epoch 3/10"), "{out}");

    let csv = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    );
    assert!(
        lines[1].starts_with("1,") && lines[1].contains(",0.001,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("2,") && lines[2].contains(",0.0005,"),
        "the step schedule halved the rate: {csv}"
    );

    let one_epoch = dir.file("one.safetensors");
    ok(&[
        "train",
        &model_file,
        "--epochs",
        "1",
        "--output",
        &one_epoch,
    ]);
    assert_eq!(
        weights(&stopped),
        weights(&one_epoch),
        "the best (first) epoch's weights were restored"
    );

    let bad = dir.file("bad.toml");
    std::fs::write(
        &bad,
        format!("{text}\n[[callbacks]]\ntype = \"early_stoping\"\n"),
    )
    .unwrap();
    fails_with(&["train", &bad], &["callbacks[0]", "early_stoping"]);
    std::fs::write(
        &bad,
        format!("{text}\n[[callbacks]]\ntype = \"reduce_lr_on_plateau\"\nfactor = 2.0\n"),
    )
    .unwrap();
    fails_with(
        &["train", &bad],
        &["callbacks[0]", "factor must be in (0, 1)"],
    );
    // Callbacks that could never fire are refused when the file is read, before training.
    let no_split = text.replace("validation_split = 0.2", "validation_split = 0.0");
    assert_ne!(no_split, text);
    for (base, callback, field, says) in [
        (
            &text,
            "type = \"early_stopping\"\nmonitor = \"val_nope\"",
            "callbacks[0].monitor",
            "'val_nope' is never logged",
        ),
        (
            &text,
            "type = \"reduce_lr_on_plateau\"\nmonitor = \"bogus\"",
            "callbacks[0].monitor",
            "'bogus' is never logged",
        ),
        (
            &no_split,
            "type = \"early_stopping\"",
            "callbacks[0].monitor",
            "val_ metrics need fit.validation_split > 0",
        ),
        (
            &text,
            "type = \"learning_rate_scheduler\"\nschedule = { type = \"cosine\", epochs = 0 }",
            "callbacks[0]",
            "schedule.epochs must be at least 1",
        ),
        (
            &text,
            "type = \"model_checkpoint\"\nfilepath = \"ck-{epoch:03x}.safetensors\"",
            "callbacks[0]",
            "is not a field this path can take",
        ),
        (
            &text,
            "type = \"model_checkpoint\"\nfilepath = \"ck-{nope}.safetensors\"",
            "callbacks[0].filepath",
            "'{nope}' names no metric",
        ),
    ] {
        std::fs::write(&bad, format!("{base}\n[[callbacks]]\n{callback}\n")).unwrap();
        let o = ember(&["train", &bad]);
        common::assert_fails(&o, &[field, says]);
        assert!(!common::stdout(&o).contains("Epoch"), "{callback}");
    }
    // Keras's path fields: the epoch zero-padded, a metric with its precision.
    let template = dir
        .path()
        .join("ck-{epoch:03d}-{val_accuracy:.3f}.safetensors");
    let with_checkpoint = format!(
        "{text}\n[[callbacks]]\ntype = \"model_checkpoint\"\nfilepath = \"{}\"\n",
        template.display()
    )
    .replace(
        "dir = \"../data/mnist\"",
        &format!("dir = \"{}\"", repo_root().join("data/mnist").display()),
    );
    std::fs::write(&bad, with_checkpoint).unwrap();
    ok(&["train", &bad, "--epochs", "2"]);
    let mut saved: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ck-"))
        .collect();
    saved.sort();
    assert_eq!(saved.len(), 2, "{saved:?}");
    for (name, epoch) in saved.iter().zip(["001", "002"]) {
        let accuracy = name
            .strip_prefix(&format!("ck-{epoch}-0."))
            .and_then(|rest| rest.strip_suffix(".safetensors"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(accuracy.len(), 3, "{name}");
    }
}

#[test]
fn outputs_that_would_destroy_an_input_or_cannot_be_written_are_refused_before_training() {
    let dir = Scratch::new("outputs");
    let mnist = repo_root().join("data/mnist");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in std::fs::read_dir(&mnist).unwrap().flatten() {
        std::fs::copy(f.path(), data.join(f.file_name())).unwrap();
    }
    let data = data.display().to_string();
    let spec = std::fs::read_to_string(repo_root().join("models/mnist-mlp.toml")).unwrap();
    let model_file = dir.write("m.toml", &spec);
    let labels = format!("{data}/t10k-labels-idx1-ubyte.gz");
    let labels_before = std::fs::read(&labels).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", &model_file, "--data", &data, "--epochs", "1"];
        args.extend_from_slice(extra);
        ember(&args)
    };
    let not_a_folder = dir.write("report.txt", "notes");
    for (extra, says) in [
        (vec!["--output", &model_file], "is also an input"),
        (vec!["--output", &labels], "is a file of the input folder"),
        (vec!["--checkpoint", &model_file], "is also an input"),
        (
            vec!["--output", &dir.file("missing/m.safetensors")],
            "does not exist",
        ),
        (vec!["--output", &dir.file("data")], "not a regular file"),
        (vec!["--report", &not_a_folder], "is not a folder"),
    ] {
        let o = train(&extra);
        let (out, err) = (common::stdout(&o), common::stderr(&o));
        assert!(!o.status.success(), "{extra:?} succeeded:\n{out}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(
            !out.contains("Epoch 1/1"),
            "{extra:?} trained first:\n{out}"
        );
    }
    assert_eq!(std::fs::read_to_string(&model_file).unwrap(), spec);
    assert_eq!(std::fs::read(&labels).unwrap(), labels_before);
    assert_eq!(std::fs::read_to_string(&not_a_folder).unwrap(), "notes");

    // A table may not be its own output either.
    let rows: String = std::iter::once("a,b,y\n".to_string())
        .chain((0..40).map(|i| format!("{i},{},{}\n", i % 7, i % 2)))
        .collect();
    let csv = dir.write("t.csv", &rows);
    fails_with(
        &["train", "--csv", &csv, "--target", "y", "--output", &csv],
        &["t.csv", "is also an input"],
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), rows);

    // export-images writes new files only: a second export into the same folder is refused
    // before it replaces anything.
    let images = format!("{data}/t10k-images-idx3-ubyte.gz");
    let out = dir.file("pngs");
    let export = [
        "data",
        "export-images",
        &images,
        &labels,
        "--output",
        &out,
        "--limit",
        "3",
    ];
    ok(&export);
    let first = dir.path().join("pngs/7/00000.png");
    std::fs::write(&first, b"mine").unwrap();
    fails_with(&export, &["00000.png", "already exists"]);
    assert_eq!(std::fs::read(&first).unwrap(), b"mine");
}

#[test]
fn a_forged_epoch_count_does_not_hang_resume() {
    let dir = Scratch::new("forged-epochs");
    let model = dir.file("m.safetensors");
    ok(&["train", "--epochs", "1", "--output", &model]);
    let saved = io::load(&model).unwrap();
    let forged = dir.file("forged.safetensors");
    io::save(&forged, &saved.model, &saved.spec, usize::MAX).unwrap();
    // A replay of 2^64 shuffles would never end; the run reports and stops instead.
    for extra in [&[][..], &["--epochs", "5"][..]] {
        let mut args = vec!["train", "--resume", &forged];
        args.extend_from_slice(extra);
        let out = ok(&args);
        assert!(
            out.contains(&format!("already been trained for {} epochs", usize::MAX)),
            "{out}"
        );
        assert!(!out.contains("Epoch "), "{out}");
    }
}

#[test]
fn keras_settings_take_effect_and_flags_that_would_do_nothing_are_refused() {
    let dir = Scratch::new("flags");
    // --learning-rate and --validation-split reach the model file's training…
    let model = dir.file("m.safetensors");
    let out = ok(&[
        "train",
        "--epochs",
        "1",
        "--learning-rate",
        "0.0005",
        "--validation-split",
        "0.5",
        "--output",
        &model,
    ]);
    assert!(
        out.contains("on 30000 samples, validating on 30000"),
        "{out}"
    );
    let saved = io::load(&model).unwrap();
    assert_eq!(saved.model.learning_rate(), 0.0005);
    assert_eq!(saved.spec.fit.validation_split, 0.5);
    // … and a table model's.
    let rows: String = std::iter::once("a,b,y\n".to_string())
        .chain((0..60).map(|i| format!("{i},{},{}\n", (i * 7) % 11, i % 2)))
        .collect();
    let csv = dir.write("t.csv", &rows);
    let table_model = dir.file("t.safetensors");
    ok(&[
        "train",
        "--csv",
        &csv,
        "--target",
        "y",
        "--learning-rate",
        "0.01",
        "--epochs",
        "2",
        "--output",
        &table_model,
    ]);
    let saved = io::load(&table_model).unwrap();
    assert_eq!(saved.spec.table.unwrap().options.learning_rate, 0.01);
    // A regression's JSON prediction is a number, not a string of one.
    let regression = dir.file("r.safetensors");
    ok(&[
        "train",
        "--csv",
        &csv,
        "--target",
        "b",
        "--task",
        "regression",
        "--epochs",
        "2",
        "--output",
        &regression,
    ]);
    let json = ok(&["predict", &regression, &csv, "--json"]);
    let records: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(records[0]["value"].is_f64(), "{json}");
    assert!(records[0]["line"].as_u64() == Some(2), "{json}");
    assert!(records[0].get("label").is_none(), "{json}");
    // Keras's verbose: 0 (or --quiet) prints no epoch, 2 a line per epoch, tables included.
    for (flags, epochs) in [
        (&["--verbose", "0"][..], 0),
        (&["--quiet"][..], 0),
        (&["--verbose", "2"][..], 1),
    ] {
        let mut args = vec!["train", "--epochs", "1"];
        args.extend_from_slice(flags);
        let out = ok(&args);
        assert_eq!(out.matches("Epoch 1/1").count(), epochs, "{flags:?}: {out}");
        assert!(
            out.trim_end().ends_with(|c: char| c.is_ascii_digit()),
            "{out}"
        );
    }
    let out = ok(&[
        "train",
        "--csv",
        &csv,
        "--target",
        "y",
        "--epochs",
        "2",
        "--verbose",
        "2",
    ]);
    assert!(out.contains("Epoch 2/2"), "{out}");
    // Flags of another mode are errors, named, before anything is read.
    let text_dir = dir.path().join("docs");
    std::fs::create_dir_all(text_dir.join("a")).unwrap();
    let text_dir = text_dir.display().to_string();
    for (args, says) in [
        (vec!["train", "--hidden", "4"], "--hidden does nothing when training a model file"),
        (vec!["train", "--test-size", "0.3"], "--test-size does nothing when training a model file"),
        (vec!["train", "--target", "y"], "--target does nothing when training a model file"),
        (
            vec!["train", "--csv", &csv, "--target", "y", "--hidden", "4", "--l2", "5"],
            "--hidden does nothing when training a table model (--csv without --text-column) (nor do --l2)",
        ),
        (vec!["train", "--text-dir", &text_dir, "--batch-size", "8"], "--batch-size does nothing when training a text classifier"),
        (vec!["train", "--text-dir", &text_dir, "--drop-bad-rows"], "--drop-bad-rows does nothing"),
        (vec!["train", "--text-dir", &text_dir, "--encoder", "minilm", "--learning-rate", "0.1"], "--learning-rate does nothing for a softmax regression"),
        (vec!["train", "--learning-rate", "0"], "--learning-rate must be a positive number"),
        (vec!["train", "--validation-split", "1"], "--validation-split must be in [0, 1)"),
        (vec!["train", "--text-dir", &text_dir, "--verbose", "2"], "--verbose does nothing"),
    ] {
        let o = ember(&args);
        common::assert_fails(&o, &[says]);
        assert!(!common::stdout(&o).contains("Epoch"), "{args:?}");
    }
}

#[test]
fn optimizer_and_metrics_flags_replace_the_model_files() {
    let dir = Scratch::new("optimizer-flags");
    let model = dir.file("sgd.safetensors");
    let out = ok(&[
        "train",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "0.05",
        "--metrics",
        "none",
        "--output",
        &model,
    ]);
    // No accuracy is logged or reported; the loss still is.
    assert!(!out.contains("val_accuracy"), "{out}");
    assert!(out.contains("Test loss: "), "{out}");
    let saved = io::load(&model).unwrap();
    match &saved.spec.compile.optimizer {
        ember::Optimizer::Sgd(sgd) => assert_eq!(sgd.learning_rate, 0.05),
        other => panic!("expected SGD, got {other:?}"),
    }
    assert!(saved.spec.compile.metrics.is_empty());
    // The changed file is checked again: early stopping on val_accuracy needs accuracy.
    let text = std::fs::read_to_string(repo_root().join("models/mnist-mlp.toml"))
        .unwrap()
        .replace(
            "dir = \"../data/mnist\"",
            &format!("dir = {:?}", repo_root().join("data/mnist")),
        )
        + "\n[[callbacks]]\ntype = \"early_stopping\"\nmonitor = \"val_accuracy\"\n";
    let file = dir.write("watch.toml", text);
    fails_with(
        &["train", &file, "--metrics", "none"],
        &["'val_accuracy' is never logged"],
    );
    fails_with(
        &["train", "--metrics", "none,accuracy"],
        &["cannot be listed with others"],
    );
    fails_with(
        &["train", "--resume", &model, "--optimizer", "adam"],
        &["the optimizer cannot change a resumed model"],
    );
    let csv = dir.write("t.csv", "a,y\n1,0\n2,1\n");
    fails_with(
        &[
            "train",
            "--csv",
            &csv,
            "--target",
            "y",
            "--optimizer",
            "sgd",
        ],
        &["--optimizer does nothing when training a table model"],
    );
}
