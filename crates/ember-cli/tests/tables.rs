//! Tables through the `ember` binary: inspect, train --csv, cv, predict on raw rows, and the
//! malformed-input errors. Real data from ../shared/data (or $EMBER_DATA_DIR).

mod common;

use common::{data_dir, fails_with, ok, Scratch};

#[test]
fn titanic_inspect_train_save_and_predict_raw_rows() {
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let inspect = ok(&["data", "inspect", &titanic]);
    assert!(inspect.contains("891 rows, 12 columns"), "{inspect}");
    assert!(
        inspect
            .lines()
            .any(|l| l.starts_with("Age") && l.contains("numeric") && l.contains(" 177 ")),
        "{inspect}"
    );
    assert!(
        inspect
            .lines()
            .any(|l| l.starts_with("Name") && l.contains("text")),
        "{inspect}"
    );

    let dir = Scratch::new("titanic");
    let model = dir.0.join("titanic.safetensors").display().to_string();
    let out = ok(&[
        "train", "--csv", &titanic, "--target", "Survived", "--output", &model,
    ]);
    assert!(out.contains("binary classification of 'Survived'"), "{out}");
    assert!(out.contains("not a feature: Name (free text"), "{out}");
    assert!(out.contains("Test ROC AUC: "), "{out}");
    let last = out.trim_end().lines().last().unwrap();
    let accuracy: f64 = last
        .strip_prefix("Test accuracy: ")
        .expect(last)
        .parse()
        .unwrap();
    assert!(accuracy > 0.75, "{accuracy}");

    // Balanced class weights trade precision for recall of the minority class (survivors).
    let recall = |extra: &[&str]| -> f64 {
        let mut args = vec!["train", "--csv", titanic.as_str(), "--target", "Survived"];
        args.extend_from_slice(extra);
        let out = ok(&args);
        let line = out
            .lines()
            .find(|l| l.starts_with("Test recall: "))
            .unwrap()
            .to_string();
        line["Test recall: ".len()..].parse().unwrap()
    };
    assert!(
        recall(&["--class-weight", "balanced"]) > recall(&[]),
        "balanced weights raise recall"
    );

    // Scoring the saved model on rows of a file.
    let scored = ok(&["evaluate", &model, "--csv", &titanic]);
    assert!(
        scored.contains("891 rows")
            && scored
                .trim_end()
                .lines()
                .last()
                .unwrap()
                .starts_with("Test accuracy: 0."),
        "{scored}"
    );
    fails_with(&["evaluate", &model], &["pass --csv FILE"]);

    // Raw rows, with missing values and an unseen category, and without the target column.
    let rows = dir.0.join("passengers.csv");
    std::fs::write(
        &rows,
        "PassengerId,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n\
         1,3,\"Doe, Mr. John\",male,,0,0,A/5,7.25,,S\n\
         2,1,\"Roe, Mrs. Jane\",female,38,1,0,PC,71.28,C85,Z\n",
    )
    .unwrap();
    let predicted = ok(&["predict", &model, &rows.display().to_string()]);
    let lines: Vec<&str> = predicted.lines().collect();
    // The predicted class's probability, and the positive class's (scikit-learn's
    // predict_proba[:, 1]) named after it.
    assert!(
        lines[0].ends_with(",Embarked,prediction,probability,probability_1"),
        "{predicted}"
    );
    assert_eq!(lines.len(), 3);
    // A third-class man is predicted not to survive, a first-class woman to survive.
    assert!(lines[1].contains(",S,0,0."), "{predicted}");
    assert!(lines[2].contains(",Z,1,0."), "{predicted}");
    let cells =
        |l: &str| -> Vec<f64> { l.rsplit(',').take(2).map(|v| v.parse().unwrap()).collect() };
    let (man, woman) = (cells(lines[1]), cells(lines[2]));
    assert!((man[0] + man[1] - 1.0).abs() < 2e-4, "{predicted}");
    assert!((woman[0] - woman[1]).abs() < 2e-4, "{predicted}");
    let json = ok(&["predict", &model, &rows.display().to_string(), "--json"]);
    let records: serde_json::Value = serde_json::from_str(&json).unwrap();
    // The same keys as every classification: label, index, score, the top classes.
    assert_eq!(
        (&records[0]["label"], &records[0]["index"]),
        (&"0".into(), &0.into())
    );
    assert_eq!(records[0]["line"], 2, "the header is line 1");
    let survived = records[0]["top"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "1")
        .unwrap();
    assert!(survived["score"].as_f64().unwrap() < 0.5, "{json}");
    // Cells come back as the file wrote them (`NA` stays `NA`), rows may come from standard
    // input, and --output writes the same text to a file (never over an input).
    let na_rows = dir.write(
        "na.csv",
        "PassengerId,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n\
         3,3,\"Poe, Mr. Ed\",male,NA,0,0,A/5,?,,S\n",
    );
    let echoed = ok(&["predict", &model, &na_rows]);
    assert!(
        echoed
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("3,3,\"Poe, Mr. Ed\",male,NA,0,0,A/5,?,,S,0,0."),
        "{echoed}"
    );
    let piped = common::ok_with_stdin(&["predict", &model, "-"], &std::fs::read(&na_rows).unwrap());
    assert_eq!(piped, echoed);
    let saved = dir.file("predictions.csv");
    assert_eq!(ok(&["predict", &model, &na_rows, "--output", &saved]), "");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), echoed);
    fails_with(
        &["predict", &model, &na_rows, "--output", &na_rows],
        &["is also an input"],
    );
    std::fs::write(&rows, "PassengerId,Pclass\n1,3\n").unwrap();
    fails_with(
        &["predict", &model, &rows.display().to_string()],
        &["needs a column"],
    );
}

#[test]
fn regression_and_cross_validation_last_lines() {
    let Some(data) = data_dir() else { return };
    let wine = data
        .join("wine-quality-red/wine-quality-red.csv")
        .display()
        .to_string();
    let out = ok(&[
        "train",
        "--csv",
        &wine,
        "--target",
        "class",
        "--task",
        "regression",
    ]);
    assert!(out.contains("regression of 'class'"), "{out}");
    let last = out.trim_end().lines().last().unwrap();
    let rmse: f64 = last
        .strip_prefix("Test RMSE: ")
        .expect(last)
        .parse()
        .unwrap();
    assert!(rmse < 0.8, "{rmse}");

    // A settings file overrides the default network.
    let dir = Scratch::new("options");
    let options = dir.0.join("small.toml");
    std::fs::write(
        &options,
        "hidden = [16]\nlearning_rate = 0.01\npatience = 5\n",
    )
    .unwrap();
    let out = ok(&[
        "train",
        "--csv",
        &wine,
        "--target",
        "class",
        "--task",
        "regression",
        "--options",
        &options.display().to_string(),
    ]);
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Test RMSE: "),
        "{out}"
    );

    // Cross-validation reports RMSE, MAE and R² per fold and over the folds, RMSE last.
    let out = ok(&[
        "cv",
        "--csv",
        &wine,
        "--target",
        "class",
        "--task",
        "regression",
        "--folds",
        "3",
    ]);
    assert!(
        out.contains("CV MAE: 0.") && out.contains("CV R²: 0."),
        "{out}"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("Fold 1: MAE ") && l.contains(", RMSE ")));
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("CV RMSE: 0."),
        "{out}"
    );

    let iris = data.join("sklearn-toy/iris.csv").display().to_string();
    // A model trained with --target last is evaluated on the same layout, and predicts on a
    // plain rows file read with its own flags.
    let dir = Scratch::new("iris");
    let model = dir.0.join("iris.safetensors").display().to_string();
    ok(&[
        "train",
        "--csv",
        &iris,
        "--skip-rows",
        "1",
        "--no-header",
        "--target",
        "last",
        "--output",
        &model,
    ]);
    let report = dir.0.join("report").display().to_string();
    // The file is read with its own flags: they belong to the file, not to the model.
    let scored = ok(&[
        "evaluate",
        &model,
        "--csv",
        &iris,
        "--skip-rows",
        "1",
        "--no-header",
        "--report",
        &report,
    ]);
    assert!(
        scored.contains("150 rows")
            && scored
                .trim_end()
                .lines()
                .last()
                .unwrap()
                .starts_with("Test accuracy: 0.9"),
        "{scored}"
    );
    // Evaluated like an image model (loss, per-class report, confusion matrix), and told
    // that the training file's rows are not held out.
    for part in [
        "the file the model was trained on",
        "weighted avg",
        "Confusion matrix",
        "Test loss: ",
    ] {
        assert!(scored.contains(part), "{part}: {scored}");
    }
    assert!(dir.0.join("report/confusion_matrix.png").is_file());
    let rows = dir.0.join("rows.csv");
    std::fs::write(&rows, "5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1\n").unwrap();
    let out = ok(&[
        "predict",
        &model,
        &rows.display().to_string(),
        "--no-header",
    ]);
    let predicted: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap())
        .collect();
    assert_eq!(predicted, vec!["0", "2"], "{out}");
    // A plain rows file with no flags: every row in is a row out, numbered by its line,
    // though the training file needed --skip-rows 1.
    let new3 = dir.write(
        "new3.csv",
        "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n",
    );
    let out = ok(&["predict", &model, &new3]);
    let predicted: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap())
        .collect();
    assert_eq!(predicted, vec!["0", "2", "1"], "{out}");
    let json = ok(&["predict", &model, &new3, "--json"]);
    for line in 1..=3 {
        assert!(json.contains(&format!("\"line\": {line},")), "{json}");
    }
    let explained = ok(&["explain", &model, &new3]);
    for line in 1..=3 {
        assert!(
            explained.contains(&format!("new3.csv line {line}: ")),
            "{explained}"
        );
    }
    // Rows, dropped rows and errors all name the file's lines (CRLF, a blank line).
    let crlf = dir.write(
        "crlf.csv",
        "5.1,3.5,1.4,0.2\r\n\r\n6.7,3.0,5.2,2.3\r\n5.9,3.0,4.2\r\n",
    );
    let json = ok(&["predict", &model, &crlf, "--json", "--drop-bad-rows"]);
    assert!(
        json.contains("Dropped 1 malformed rows:\n  line 4: 3 fields, expected 4")
            && json.contains("\"line\": 1,")
            && json.contains("\"line\": 3,"),
        "{json}"
    );
    fails_with(
        &["predict", &model, &crlf],
        &["crlf.csv: line 4: 3 fields, expected 4"],
    );
    // Without its flags, the training file's line of counts reads as a header: an error
    // that says how the model's columns run, not rows lost.
    fails_with(
        &["evaluate", &model, "--csv", &iris],
        &["needs a column 'column_1'", "column_5", "--no-header"],
    );
    let out = ok(&[
        "cv",
        "--csv",
        &iris,
        "--skip-rows",
        "1",
        "--no-header",
        "--target",
        "last",
        "--folds",
        "3",
    ]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Fold ")).count(),
        3,
        "{out}"
    );
    for score in ["CV precision: 0.", "CV recall: 0.", "CV F1: 0."] {
        assert!(out.contains(score), "{score}: {out}");
    }
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("CV accuracy: 0.9"),
        "{out}"
    );
}

#[test]
fn malformed_tables_are_clear_errors() {
    let dir = Scratch::new("malformed");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let ragged = write("ragged.csv", b"a,b,y\n1,2,0\n3,1\n4,5,1\n");
    fails_with(
        &["train", "--csv", &ragged, "--target", "y"],
        &["ragged.csv", "line 3: 2 fields, expected 3"],
    );
    // With --drop-bad-rows the row is dropped and reported.
    let inspect = ok(&["data", "inspect", &ragged]);
    assert!(
        inspect.contains("1 rows would be rejected") && inspect.contains("line 3"),
        "{inspect}"
    );
    let latin1 = write("latin1.csv", b"name,y\nJos\xe9,1\n");
    fails_with(
        &["train", "--csv", &latin1, "--target", "y"],
        &["latin1.csv", "line 2: not valid UTF-8"],
    );
    let empty = write("empty.csv", b"");
    fails_with(&["data", "inspect", &empty], &["empty.csv", "no rows"]);
    let good = write("good.csv", b"a,b,y\n1,2,0\n3,4,1\n");
    fails_with(
        &["train", "--csv", &good, "--target", "label"],
        &["no column 'label'", "a, b, y"],
    );
    fails_with(&["train", "--csv", &good], &["--target"]);
    let rows: String = (0..20)
        .map(|i| format!("{i},{},{}\n", i % 3, i % 2))
        .collect();
    let two_classes = write("two.csv", format!("a,b,y\n{rows}").as_bytes());
    let args = [
        "train",
        "--csv",
        &two_classes,
        "--target",
        "y",
        "--task",
        "multiclass",
    ];
    fails_with(&args, &["two classes: use the binary task"]);
    let options = write(
        "options.toml",
        b"hidden = [8]\nlearning_rate = 0.01\n\n[preprocess]\nscalling = \"min_max\"\n",
    );
    fails_with(
        &[
            "train",
            "--csv",
            &good,
            "--target",
            "y",
            "--options",
            &options,
        ],
        &["options.toml:5", "unknown field `scalling`"],
    );
    fails_with(
        &[
            "train",
            "--csv",
            &dir.0.join("absent.csv").display().to_string(),
            "--target",
            "y",
        ],
        &["absent.csv"],
    );
}

#[test]
fn a_compressed_table_and_standard_input_train_as_the_plain_file() {
    use std::io::Write;
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv");
    let text = std::fs::read(&titanic).unwrap();
    let dir = Scratch::new("titanic-compressed");
    let gz = dir.0.join("titanic.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&text).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    let train = |file: &str| -> String {
        let out = ok(&["train", "--csv", file, "--target", "Survived"]);
        // The figures, not the lines that name the file.
        out.lines()
            .filter(|l| l.starts_with("Test "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plain = train(&titanic.display().to_string());
    assert!(plain.contains("Test accuracy: "), "{plain}");
    assert_eq!(train(&gz.display().to_string()), plain);
    let inspect = ok(&["data", "inspect", &gz.display().to_string()]);
    assert!(inspect.contains("891 rows, 12 columns"), "{inspect}");
    let piped = common::ok_with_stdin(&["data", "inspect", "-"], &text);
    assert!(piped.contains("891 rows, 12 columns"), "{piped}");
    let piped = common::ok_with_stdin(&["train", "--csv", "-", "--target", "Survived"], &text);
    let figures: Vec<&str> = piped.lines().filter(|l| l.starts_with("Test ")).collect();
    assert_eq!(figures.join("\n"), plain);
}

/// Apache Parquet files written by pyarrow from the same CSV (bench/parquet_fixture.py: Snappy
/// in three row groups, Zstandard in one) read as that CSV does: the same columns, the same
/// model, the same predictions row for row; damaged files and CSV-only flags are errors.
#[test]
fn parquet_tables_read_as_the_csv_they_were_written_from() {
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let fixtures = common::repo_root().join("crates/ember-cli/tests/data");
    let snappy = fixtures
        .join("titanic.snappy.parquet")
        .display()
        .to_string();
    let zstd = fixtures.join("titanic.zstd.parquet").display().to_string();
    let table_part = |out: String| -> String {
        // The figures and columns, not the line that names the file.
        out.lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    let inspect = table_part(ok(&["data", "inspect", &titanic]));
    assert_eq!(table_part(ok(&["data", "inspect", &snappy])), inspect);
    assert_eq!(table_part(ok(&["data", "inspect", &zstd])), inspect);

    let dir = Scratch::new("parquet");
    let model = dir.file("titanic.safetensors");
    let figures = |out: String| -> String {
        out.lines()
            .filter(|l| l.starts_with("Test "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plain = figures(ok(&[
        "train", "--csv", &titanic, "--target", "Survived", "--output", &model,
    ]));
    assert!(plain.contains("Test accuracy: "), "{plain}");
    assert_eq!(
        figures(ok(&["train", "--csv", &zstd, "--target", "Survived"])),
        plain
    );
    let piped = common::ok_with_stdin(
        &["train", "--csv", "-", "--target", "Survived"],
        &std::fs::read(&snappy).unwrap(),
    );
    assert_eq!(figures(piped), plain);
    // Every row back, cells as the CSV holds them, the same predictions.
    let expected = ok(&["predict", &model, &titanic]);
    assert_eq!(expected.lines().count(), 892);
    assert_eq!(ok(&["predict", &model, &snappy]), expected);
    assert_eq!(
        figures(ok(&["evaluate", &model, "--csv", &zstd])),
        figures(ok(&["evaluate", &model, "--csv", &titanic]))
    );

    fails_with(
        &["data", "inspect", &snappy, "--skip-rows", "1"],
        &["is an Apache Parquet file: --skip-rows is for CSV text"],
    );
    fails_with(
        &["predict", &model, &snappy, "--delimiter", ";"],
        &["--delimiter is for CSV text"],
    );
    fails_with(
        &[
            "data",
            "inspect",
            &fixtures.join("nested.parquet").display().to_string(),
        ],
        &["column 'tags' is nested"],
    );
    // A cut file, a damaged page: errors naming the file, never a panic.
    let bytes = std::fs::read(&snappy).unwrap();
    let cut = dir.write("cut.parquet", &bytes[..bytes.len() / 2]);
    fails_with(
        &["data", "inspect", &cut],
        &["cut.parquet: is an Apache Parquet file, but cannot be read"],
    );
    let mut damaged = bytes.clone();
    for b in &mut damaged[200..260] {
        *b = 0xFF;
    }
    let damaged = dir.write("damaged.parquet", &damaged);
    let out = common::ember(&["train", "--csv", &damaged, "--target", "Survived"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("damaged.parquet: is an Apache Parquet file, but cannot be read"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A classifier's prediction holds every class's probability in label order (scikit-learn's
/// `predict_proba` row), in CSV columns and in JSON; `--threshold` decides a binary one and
/// is refused elsewhere, as `--top-k` is where no class is listed.
#[test]
fn every_class_probability_a_binary_threshold_and_refused_flags() {
    let Some(data) = data_dir() else { return };
    let iris = data.join("sklearn-toy/iris.csv").display().to_string();
    let dir = Scratch::new("probabilities");
    let model = dir.file("iris.safetensors");
    let rows = dir.write(
        "rows.csv",
        "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n",
    );
    let read = ["--no-header", "--epochs", "30"];
    ok(&[
        &[
            "train",
            "--csv",
            &iris,
            "--skip-rows",
            "1",
            "--target",
            "last",
            "--output",
            &model,
        ][..],
        &read[..],
    ]
    .concat());
    let csv = ok(&["predict", &model, &rows, "--no-header"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].ends_with(",prediction,probability,probability_0,probability_1,probability_2"),
        "{csv}"
    );
    assert_eq!(lines.len(), 4, "every row in is a row out: {csv}");
    for line in &lines[1..] {
        let cells: Vec<f64> = line
            .rsplit(',')
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!((cells.iter().sum::<f64>() - 1.0).abs() < 2e-3, "{line}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "predict",
        &model,
        &rows,
        "--no-header",
        "--json",
        "--top-k",
        "1",
    ]))
    .unwrap();
    for (record, line) in json.as_array().unwrap().iter().zip(&lines[1..]) {
        let p: Vec<f64> = record["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), 3, "{record}");
        let best = record["index"].as_u64().unwrap() as usize;
        assert!(p.iter().all(|&q| q <= p[best]), "{record}");
        assert_eq!(record["top"].as_array().unwrap().len(), 1, "--top-k 1");
        let written: Vec<f64> = line
            .split(',')
            .rev()
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        for (c, w) in written.iter().rev().enumerate() {
            assert!(
                (p[c] - w).abs() < 1e-4,
                "CSV and JSON agree: {line} {record}"
            );
        }
    }
    fails_with(
        &["predict", &model, &rows, "--no-header", "--top-k", "2"],
        &["--top-k 2", "add --json"],
    );
    fails_with(
        &[
            "predict",
            &model,
            &rows,
            "--no-header",
            "--threshold",
            "0.3",
        ],
        &["--threshold 0.3 decides between two classes", "3 classes"],
    );

    // A regression lists no classes.
    let petal = dir.file("petal.safetensors");
    ok(&[
        &[
            "train",
            "--csv",
            &iris,
            "--skip-rows",
            "1",
            "--target",
            "2",
            "--task",
            "regression",
            "--output",
            &petal,
        ][..],
        &read[..],
    ]
    .concat());
    fails_with(
        &[
            "predict",
            &petal,
            &rows,
            "--no-header",
            "--json",
            "--top-k",
            "2",
        ],
        &["--top-k 2 lists the most likely classes", "regression"],
    );

    // A binary model: the threshold moves the decision, CSV and JSON alike.
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let binary = dir.file("titanic.safetensors");
    ok(&[
        "train", "--csv", &titanic, "--target", "Survived", "--epochs", "20", "--output", &binary,
    ]);
    let decided = |extra: &[&str]| -> Vec<(String, f64)> {
        let out = ok(&[&["predict", &binary, &titanic][..], extra].concat());
        out.lines()
            .skip(1)
            .map(|l| {
                let cells: Vec<&str> = l.rsplit(',').take(3).collect();
                (cells[2].to_string(), cells[0].parse().unwrap())
            })
            .collect()
    };
    let default = decided(&[]);
    let low = decided(&["--threshold", "0.2"]);
    assert_eq!(default.len(), 891);
    for ((class, p), (low_class, low_p)) in default.iter().zip(&low) {
        assert_eq!(p, low_p, "the probability stays");
        assert_eq!(class, if *p > 0.5 { "1" } else { "0" });
        assert_eq!(low_class, if *p >= 0.2 { "1" } else { "0" });
    }
    assert!(
        low.iter().filter(|(c, _)| c == "1").count()
            > default.iter().filter(|(c, _)| c == "1").count(),
        "a lower threshold predicts more survivors"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "predict",
        &binary,
        &titanic,
        "--threshold",
        "0.2",
        "--json",
    ]))
    .unwrap();
    for (record, (class, _)) in json.as_array().unwrap().iter().zip(&low) {
        assert_eq!(record["label"].as_str().unwrap(), class);
        assert_eq!(record["probabilities"].as_array().unwrap().len(), 2);
    }
    for bad in ["2", "-0.1", "NaN"] {
        fails_with(
            &["predict", &binary, &titanic, "--threshold", bad],
            &["--threshold", "between 0 and 1"],
        );
    }
}

/// `evaluate --threshold` scores a binary table model at that threshold, as `predict
/// --threshold` decides its rows; the network-only flags are refused for a table model.
#[test]
fn evaluate_scores_a_binary_table_model_at_a_threshold() {
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let dir = Scratch::new("evaluate-threshold");
    let model = dir.file("titanic.safetensors");
    ok(&[
        "train", "--csv", &titanic, "--target", "Survived", "--epochs", "20", "--output", &model,
    ]);
    let scores = |extra: &[&str]| -> serde_json::Value {
        let out = ok(&[
            &["evaluate", &model, "--csv", &titanic, "--json"][..],
            extra,
        ]
        .concat());
        serde_json::from_str(&out).unwrap()
    };
    let predicted_survivors = |extra: &[&str]| -> u64 {
        let out = ok(&[&["predict", &model, &titanic][..], extra].concat());
        out.lines()
            .skip(1)
            .filter(|l| l.rsplit(',').nth(2) == Some("1"))
            .count() as u64
    };
    let column_sum = |s: &serde_json::Value| -> u64 {
        // Predicted class 1: the second column of the 2 × 2 counts, row by row.
        let counts = s["confusion_matrix"]["counts"].as_array().unwrap();
        counts[1].as_u64().unwrap() + counts[3].as_u64().unwrap()
    };
    let default = scores(&[]);
    let low = scores(&["--threshold", "0.2"]);
    assert_eq!(column_sum(&default), predicted_survivors(&[]));
    assert_eq!(
        column_sum(&low),
        predicted_survivors(&["--threshold", "0.2"])
    );
    assert!(
        low["recall"].as_f64() > default["recall"].as_f64(),
        "{low} {default}"
    );
    assert_eq!(
        low["roc_auc"], default["roc_auc"],
        "ranking does not depend on it"
    );
    fails_with(
        &["evaluate", &model, "--csv", &titanic, "--top-k", "2"],
        &["--top-k does nothing for", "top-k accuracy is a network's"],
    );
    fails_with(
        &[
            "evaluate",
            &model,
            "--csv",
            &titanic,
            "--data",
            "data/mnist",
        ],
        &["--data does nothing for", "labelled rows (--csv FILE)"],
    );
    fails_with(
        &["evaluate", &model, "--csv", &titanic, "--threshold", "1.5"],
        &["--threshold", "between 0 and 1"],
    );
}
