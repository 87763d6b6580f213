//! `ember tune`: searches on MNIST and Titanic, what they write, resuming, failed trials and
//! bad search spaces.

mod common;

use common::*;

/// A small search of an MNIST MLP: `tune` is the `[tune]` section, with its space.
fn mnist_file(tune: &str) -> String {
    let data = repo_root().join("data/mnist").display().to_string();
    format!(
        r#"[model]
input_shape = [784]

[[layers]]
type = "dense"
units = 16
activation = "relu"

[[layers]]
type = "dense"
units = 16
activation = "relu"

[[layers]]
type = "dense"
units = 10
activation = "softmax"

[compile]
optimizer = {{ type = "adam" }}
loss = "categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 1
batch_size = 128
validation_split = 0.2
seed = 1

[data]
format = "mnist"
dir = "{data}"
scale = 255.0
flatten = true
one_hot = true

{tune}
"#
    )
}

const HYPERBAND: &str = r#"[tune]
algorithm = "hyperband"
max_trials = 5
max_epochs = 3
seed = 2

[tune.space]
"layers[0].units" = { choice = [16, 48] }
"layers[1]" = { optional = true }
"compile.optimizer.learning_rate" = { log_uniform = [0.0003, 0.01] }
"fit.batch_size" = { choice = [64, 128] }
"#;

/// The figure after `label: ` on the line that starts with it.
fn figure(out: &str, label: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in:\n{out}"))
}

/// results.csv's rows without the seconds column (which timing changes).
fn results_without_seconds(dir: &Scratch, folder: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.path().join(folder).join("results.csv")).unwrap();
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(5);
            cells.join(",")
        })
        .collect()
}

#[test]
fn a_hyperband_search_writes_its_study_results_charts_and_the_best_model() {
    let dir = Scratch::new("tune-hyperband");
    let model = dir.write("mnist.toml", mnist_file(HYPERBAND));
    let out_dir = dir.file("study");
    let out = ok(&[
        "tune",
        &model,
        "--output",
        &out_dir,
        "--jobs",
        "2",
        "--threads",
        "2",
    ]);
    let lines: Vec<&str> = out.trim_end().lines().collect();
    let n = lines.len();
    assert!(lines[n - 2].starts_with("Best val_accuracy: 0."), "{out}");
    assert!(lines[n - 1].starts_with("Test accuracy: 0."), "{out}");
    assert_eq!(lines[n - 2].len(), "Best val_accuracy: 0.0000".len());
    assert_eq!(lines[n - 1].len(), "Test accuracy: 0.0000".len());
    assert!(out.contains("Search: 5 trials"), "{out}");
    assert!(
        out.contains("stopped at epoch 1"),
        "Hyperband stops some trials early: {out}"
    );
    for file in [
        "study.jsonl",
        "results.csv",
        "best.toml",
        "best.safetensors",
        "history.png",
        "history.svg",
        "params.png",
        "params.svg",
        "importance.png",
        "importance.svg",
    ] {
        let path = dir.path().join("study").join(file);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{file}"
        );
    }
    let png = std::fs::read(dir.path().join("study/history.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // The table is sorted, best first, and its best is the line's.
    let results = std::fs::read_to_string(dir.path().join("study/results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = results
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 5);
    let values: Vec<f64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{results}");
    let best = figure(&out, "Best val_accuracy:");
    assert!((values[0] - best).abs() < 5e-5, "{results}");
    assert!(rows.iter().any(|r| r[2] == "pruned"), "{results}");

    // The saved best model is the one tested, and its model file trains it again.
    let test = figure(&out, "Test accuracy:");
    let best_model = dir.file("study/best.safetensors");
    let evaluated = ok(&["evaluate", &best_model]);
    assert_eq!(figure(&evaluated, "Test accuracy:"), test, "{evaluated}");
    let retrained = ok(&["train", &dir.file("study/best.toml"), "--quiet"]);
    assert_eq!(figure(&retrained, "Test accuracy:"), test, "{retrained}");

    // A finished study resumed is listed again: no trial runs, the same figures.
    let again = ok(&["tune", &model, "--output", &out_dir, "--resume"]);
    assert!(!again.contains("Trial "), "{again}");
    assert_eq!(figure(&again, "Best val_accuracy:"), best);
    assert_eq!(figure(&again, "Test accuracy:"), test);

    // Without --resume, a study in the folder is never overwritten.
    fails_with(
        &["tune", &model, "--output", &out_dir],
        &["already holds a study", "--resume"],
    );
}

#[test]
fn an_interrupted_search_resumes_into_the_same_study() {
    let dir = Scratch::new("tune-resume");
    let tune = r#"[tune]
algorithm = "tpe"
max_trials = 12
seed = 4

[tune.space]
"layers[0].units" = { int = [8, 32], step = 8 }
"compile.optimizer.learning_rate" = { log_uniform = [0.0003, 0.01] }
"layers[1]" = { optional = true }
"#;
    let model = dir.write("mnist.toml", mnist_file(tune));
    ok(&["tune", &model, "--output", &dir.file("whole")]);
    // Killed after 5 trials, in the middle of writing the sixth.
    let study = std::fs::read_to_string(dir.path().join("whole/study.jsonl")).unwrap();
    let mut cut: Vec<&str> = study.lines().take(6).collect();
    cut.push("{\"trial\": {\"number\": 5, \"pa");
    std::fs::create_dir_all(dir.path().join("cut")).unwrap();
    std::fs::write(dir.path().join("cut/study.jsonl"), cut.join("\n")).unwrap();
    let resumed = ok(&["tune", &model, "--output", &dir.file("cut"), "--resume"]);
    assert!(resumed.contains("1 unreadable line"), "{resumed}");
    assert!(
        !resumed.contains("Trial   4:"),
        "trial 4 was done: {resumed}"
    );
    assert!(resumed.contains("Trial   5:"), "{resumed}");
    assert_eq!(
        results_without_seconds(&dir, "cut"),
        results_without_seconds(&dir, "whole")
    );
    // A finished study goes further with more trials: the first ones are not run again.
    let longer = dir.write(
        "longer.toml",
        mnist_file(&tune.replace("max_trials = 12", "max_trials = 14")),
    );
    let more = ok(&["tune", &longer, "--output", &dir.file("whole"), "--resume"]);
    assert!(more.contains("Search: 14 trials"), "{more}");
    assert!(
        more.contains("Trial  12:") && !more.contains("Trial  11:"),
        "{more}"
    );
    // A changed search cannot resume that study.
    let other = dir.write(
        "other.toml",
        mnist_file(&tune.replace("seed = 4", "seed = 5")),
    );
    fails_with(
        &["tune", &other, "--output", &dir.file("cut"), "--resume"],
        &["study.jsonl", "another [tune] section"],
    );
    fails_with(
        &["tune", &model, "--output", &dir.file("nothing"), "--resume"],
        &["--resume", "no study"],
    );
}

#[test]
fn a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on() {
    let dir = Scratch::new("tune-failed");
    let tune = r#"[tune]
algorithm = "grid"

[tune.space]
"compile.optimizer" = { choice = [{ type = "sgd", learning_rate = 0.05 }, { type = "sgd", learning_rate = 1e30 }] }
"#;
    let model = dir.write("mnist.toml", mnist_file(tune));
    let out = ok(&["tune", &model, "--output", &dir.file("study")]);
    assert!(
        out.contains("failed: non-finite value: the loss became NaN"),
        "{out}"
    );
    assert!(out.contains("2 trials (1 failed)"), "{out}");
    let results = std::fs::read_to_string(dir.path().join("study/results.csv")).unwrap();
    let last = results.lines().last().unwrap();
    assert!(
        last.contains(",failed,") && last.contains("loss became"),
        "{results}"
    );
    assert!(figure(&out, "Best val_accuracy:") > 0.8, "{out}");
}

#[test]
fn bad_search_spaces_are_errors_naming_the_file_and_field() {
    let dir = Scratch::new("tune-bad");
    let space =
        |entries: &str| format!("[tune]\nalgorithm = \"random\"\n\n[tune.space]\n{entries}\n");
    for (tune, needles) in [
        (
            space(r#""layers[0].unit" = { choice = [8, 16] }"#),
            vec!["tune.space.\"layers[0].unit\"", "unknown field `unit`"],
        ),
        (
            space(r#""layers[0].units" = { choice = [] }"#),
            vec!["tune.space.\"layers[0].units\"", "choice is empty"],
        ),
        (
            space(r#""layers[1].rate" = { uniform = [0.5, 0.1] }"#),
            vec!["tune.space.\"layers[1].rate\"", "low > high"],
        ),
        (
            space(r#""compile.optimizer.learning_rate" = { log_uniform = [0.0, 0.1] }"#),
            vec!["learning_rate", "log of 0"],
        ),
        (
            space(r#""layers[0].units" = { uniform = [8, 16] }"#),
            vec![
                "tune.space.\"layers[0].units\"",
                "with the value 8.0",
                "invalid type",
            ],
        ),
        (
            space(r#""layers[0].units" = { int = [0, 16] }"#),
            vec!["with the value 0", "must be at least 1"],
        ),
        (
            space(r#""layers[7].units" = { choice = [8] }"#),
            vec!["layers[7]", "has 3 entries"],
        ),
        (
            space(r#""data.scale" = { choice = [1.0, 255.0] }"#),
            vec!["tune.space.\"data.scale\"", "data cannot be searched"],
        ),
        (
            space(r#""fit.epochs" = { choice = [1, 2] }"#),
            vec!["tune.space.\"fit.epochs\"", "use tune.max_epochs"],
        ),
        (
            space(r#""compile.metrics" = { choice = [["accuracy"], []] }"#),
            vec![
                "with the value []",
                "no longer logs the objective, val_accuracy",
            ],
        ),
        (
            space(r#""fit.batch_size" = { choice = [32] }"#).replace("random", "annealing"),
            vec!["tune.algorithm", "unknown variant `annealing`"],
        ),
        (
            space(r#""fit.batch_size" = { choice = [32] }"#)
                .replace("[tune.space]", "objective = \"val_auc\"\n[tune.space]"),
            vec!["tune.objective", "'val_auc' is not logged", "val_accuracy"],
        ),
        (
            space(r#""layers[1].rate" = { uniform = [0.1, 0.5] }"#).replace("random", "grid"),
            vec!["a grid search needs countable values"],
        ),
        (space(""), vec!["tune.space", "is empty"]),
        (
            space(r#""fit.batch_size" = { choice = [32] }"#)
                .replace("[tune]\n", "[tune]\nmax_trials = 0\n"),
            vec!["tune.max_trials", "must be from 1"],
        ),
        (
            "[tune]\nalgorithm = \"random\"\n".to_string(),
            vec!["missing field `space`"],
        ),
        (String::new(), vec!["there is no [tune] section"]),
    ] {
        let model = dir.write("bad.toml", mnist_file(&tune));
        let mut all = vec!["bad.toml"];
        all.extend(needles);
        fails_with(&["tune", &model, "--output", &dir.file("out")], &all);
        assert!(!dir.path().join("out/study.jsonl").exists(), "{tune}");
    }
    // --jobs beyond the threads would oversubscribe the cores.
    let model = dir.write("good.toml", mnist_file(HYPERBAND));
    fails_with(
        &["tune", &model, "--jobs", "2", "--output", &dir.file("out")],
        &["--jobs 2 is more than the 1 threads"],
    );
    fails_with(
        &["tune", &model, "--target", "x"],
        &["--target applies to a table"],
    );
}

#[test]
fn a_table_search_on_titanic_tunes_the_network_and_preprocessing() {
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let dir = Scratch::new("tune-titanic");
    let space = dir.write(
        "space.toml",
        r#"[tune]
algorithm = "random"
max_trials = 4
max_epochs = 60
seed = 3

[tune.space]
"hidden" = { choice = [[16], [32, 16]] }
"dropout" = { uniform = [0.0, 0.4] }
"l2" = { choice = [0.0, 0.001] }
"learning_rate" = { log_uniform = [0.001, 0.01] }
"preprocess.scaling" = { choice = ["standard", "min_max"] }
"#,
    );
    let out_dir = dir.file("study");
    let out = ok(&[
        "tune",
        "--csv",
        &titanic,
        "--target",
        "Survived",
        "--exclude",
        "PassengerId,Name,Ticket,Cabin",
        "--space",
        &space,
        "--output",
        &out_dir,
    ]);
    let lines: Vec<&str> = out.trim_end().lines().collect();
    let n = lines.len();
    assert!(lines[n - 2].starts_with("Best val_accuracy: 0."), "{out}");
    assert!(lines[n - 1].starts_with("Test accuracy: 0."), "{out}");
    assert!(figure(&out, "Test accuracy:") > 0.75, "{out}");
    assert!(figure(&out, "Best val_accuracy:") > 0.75, "{out}");
    let best = std::fs::read_to_string(dir.path().join("study/best.toml")).unwrap();
    assert!(
        best.contains("dropout = ") && best.contains("scaling = "),
        "{best}"
    );
    // The best table model predicts raw rows like any saved table model.
    let predicted = ok(&["predict", &dir.file("study/best.safetensors"), &titanic]);
    assert!(predicted.lines().count() > 800, "{predicted}");
    // scikit-learn's scorers are objectives too, measured on the validation rows and
    // maximised: ROC AUC, here.
    let auc_space = dir.write(
        "auc.toml",
        "[tune]\nalgorithm = \"random\"\nmax_trials = 2\nmax_epochs = 30\nseed = 3\nobjective = \"roc_auc\"\n\n[tune.space]\n\"hidden\" = { choice = [[16], [8]] }\n",
    );
    let out = ok(&[
        "tune",
        "--csv",
        &titanic,
        "--target",
        "Survived",
        "--exclude",
        "PassengerId,Name,Ticket,Cabin",
        "--space",
        &auc_space,
        "--output",
        &dir.file("auc"),
    ]);
    assert!(figure(&out, "Best roc_auc:") > 0.8, "{out}");
    // A binary-only scorer of a regression, or a regression scorer of classes, is refused.
    let r2_space = dir.write(
        "r2.toml",
        "[tune]\nobjective = \"r2\"\n[tune.space]\n\"hidden\" = { choice = [[8]] }\n",
    );
    fails_with(
        &[
            "tune",
            "--csv",
            &titanic,
            "--target",
            "Survived",
            "--space",
            &r2_space,
            "--output",
            &dir.file("r2"),
        ],
        &["'r2' is not logged", "roc_auc"],
    );
    // Table options the space does not know are errors naming them.
    let bad = dir.write(
        "bad.toml",
        "[tune]\n[tune.space]\n\"hiden\" = { choice = [[8]] }\n",
    );
    fails_with(
        &[
            "tune",
            "--csv",
            &titanic,
            "--target",
            "Survived",
            "--space",
            &bad,
            "--output",
            &dir.file("bad"),
        ],
        &["tune.space.\"hiden\"", "unknown field `hiden`"],
    );
}

#[test]
fn trials_write_no_callback_files_and_hyperband_refuses_stateful_callbacks() {
    let dir = Scratch::new("tune-callbacks");
    let log = dir.file("user.csv");
    std::fs::write(&log, "the user's own log\n").unwrap();
    let callbacks = format!(
        "[[callbacks]]\ntype = \"csv_logger\"\nfilename = \"{log}\"\n\n\
         [[callbacks]]\ntype = \"early_stopping\"\nmonitor = \"val_loss\"\npatience = 1\n\n"
    );
    let random = r#"[tune]
algorithm = "random"
max_trials = 2

[tune.space]
"layers[0].units" = { choice = [8, 16] }
"#;
    let model = dir.write("random.toml", format!("{callbacks}{}", mnist_file(random)));
    ok(&["tune", &model, "--output", &dir.file("random")]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "the user's own log\n",
        "a trial's csv_logger would overwrite the user's file"
    );
    let model = dir.write(
        "hyperband.toml",
        format!("{callbacks}{}", mnist_file(HYPERBAND)),
    );
    fails_with(
        &["tune", &model, "--output", &dir.file("hyperband")],
        &["hyperband.toml", "callbacks[1]", "early stopping"],
    );
}
