//! The functional API on real data: a wide-and-deep model of Titanic, two inputs (the
//! passenger's categories, and the numbers through a deep tower) joined before the output.

use std::path::PathBuf;

use ember::data::preprocess::{PreprocessOptions, Preprocessor};
use ember::data::split::train_test_split;
use ember::data::table::{CsvOptions, Table};
use ember::prelude::*;

/// ../shared/data (or $EMBER_DATA_DIR); absent, the test is skipped, except under CI=true
/// where it fails.
fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no shared data at {} under CI",
        dir.display()
    );
    eprintln!("skipping: no shared data at {}", dir.display());
    None
}

/// A preprocessing of `keep` alone (every other column excluded), fitted on `rows`.
fn features(table: &Table, rows: &[usize], target: usize, keep: &[&str]) -> Preprocessor {
    let exclude = table
        .names
        .iter()
        .filter(|n| !keep.contains(&n.as_str()))
        .cloned()
        .collect();
    let options = PreprocessOptions {
        exclude,
        ..PreprocessOptions::default()
    };
    Preprocessor::fit(table, rows, target, true, false, &options).unwrap()
}

fn wide_and_deep(wide: usize, deep: usize, seed: u64) -> Model {
    let g = Graph::with_seed(seed);
    let categories = g.input("categories", &[wide]).unwrap();
    let numbers = g.input("numbers", &[deep]).unwrap();
    let h = g
        .named("deep_1", Dense::new(16).activation(Activation::Relu))
        .unwrap()
        .call(&numbers)
        .unwrap();
    let h = g
        .named("deep_2", Dense::new(8).activation(Activation::Relu))
        .unwrap()
        .call(&h)
        .unwrap();
    let joined = g
        .merge_named("wide_and_deep", Merge::Concatenate {}, &[&categories, &h])
        .unwrap();
    let survived = g
        .named("survived", Dense::new(1).activation(Activation::Sigmoid))
        .unwrap()
        .call(&joined)
        .unwrap();
    let mut model = Model::new(&[&categories, &numbers], &[&survived]).unwrap();
    model
        .compile(
            Adam::new(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
    model
}

#[test]
fn a_wide_and_deep_titanic_model_trains_saves_loads_and_predicts_bit_identically() {
    let Some(dir) = data_dir() else { return };
    let table = Table::read(dir.join("titanic/titanic.csv"), &CsvOptions::default()).unwrap();
    let target = table.column("Survived").unwrap();
    let labels: Vec<usize> = (0..table.rows())
        .map(|r| (table.columns[target][r].as_deref() == Some("1")) as usize)
        .collect();
    let (train, test) = train_test_split(table.rows(), Some(&labels), 0.2, 1).unwrap();
    let wide = features(&table, &train, target, &["Sex", "Pclass", "Embarked"]);
    let deep = features(&table, &train, target, &["Age", "Fare", "SibSp", "Parch"]);
    let y = |rows: &[usize]| {
        let t = wide.targets(&table, rows).unwrap();
        let n = t.rows();
        t.reshape(&[n, 1]).unwrap()
    };
    let inputs = |rows: &[usize]| {
        (
            wide.transform(&table, rows).unwrap(),
            deep.transform(&table, rows).unwrap(),
        )
    };
    let ((wide_train, deep_train), y_train) = (inputs(&train), y(&train));
    let ((wide_test, deep_test), y_test) = (inputs(&test), y(&test));

    let mut model = wide_and_deep(wide.width(), deep.width(), 1);
    let summary = model.summary();
    assert!(
        summary.contains("categories[0][0], deep_2[0][0]"),
        "{summary}"
    );
    let options = FitOptions {
        epochs: 40,
        batch_size: 32,
        validation_split: 0.2,
        seed: Some(1),
        verbose: Verbosity::Silent,
        ..FitOptions::default()
    };
    let history = model
        .fit_many(&[&wide_train, &deep_train], &[&y_train], &options, &mut [])
        .unwrap();
    assert!(history.metric("val_accuracy").last().unwrap() > &0.7);
    let test = model
        .evaluate_many(&[&wide_test, &deep_test], &[&y_test], 64)
        .unwrap();
    let accuracy = test.accuracy.unwrap();
    eprintln!("wide-and-deep Titanic test accuracy: {accuracy:.4}");
    assert!(accuracy >= 0.77, "test accuracy {accuracy}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("titanic.safetensors");
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    let x = [&wide_test, &deep_test];
    assert_eq!(
        loaded.predict_many(&x, 16).unwrap(),
        model.predict_many(&x, 16).unwrap()
    );
    assert_eq!(
        loaded.evaluate_many(&x, &[&y_test], 64).unwrap(),
        test,
        "the loaded model evaluates alike"
    );
    // The same seed trains the same model.
    let mut again = wide_and_deep(wide.width(), deep.width(), 1);
    again
        .fit_many(&[&wide_train, &deep_train], &[&y_train], &options, &mut [])
        .unwrap();
    assert_eq!(again.get_weights(), model.get_weights());
}
