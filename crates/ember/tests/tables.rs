//! Tables end to end on the real data sets in ../shared/data (or $EMBER_DATA_DIR): a 20%
//! stratified test split, mean over seeds 1–5, against the targets of the tables issue.

use std::path::PathBuf;

use ember::data::split::{k_fold, train_test_split};
use ember::data::table::{CsvOptions, Table};
use ember::tabular::{
    class_of_rows, infer_task, rows_with_target, TabularModel, TabularOptions, TabularScores, Task,
};
use ember::Verbosity;

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no shared data at {} under CI=true",
            dir.display()
        );
        eprintln!(
            "skipping: no shared data at {} (set EMBER_DATA_DIR)",
            dir.display()
        );
        None
    }
}

fn sklearn_csv() -> CsvOptions {
    // scikit-learn's files start with a line of counts and class names, and have no header.
    CsvOptions {
        skip_rows: 1,
        header: Some(false),
        ..CsvOptions::default()
    }
}

/// Mean of the scores over seeds 1–5 on a 20% stratified test split.
fn held_out(file: &str, options: TabularOptions, task: Option<Task>) -> Option<Vec<TabularScores>> {
    let path = data_dir()?.join(file);
    let table = Table::read(&path, &options.csv).unwrap();
    let target = table.column(&options.target).unwrap();
    let task = task.unwrap_or_else(|| infer_task(&table, target));
    let (rows, _) = rows_with_target(&table, target);
    let mut all = Vec::new();
    for seed in 1..=5 {
        let classes = class_of_rows(&table, target, &rows, task);
        let (train, test) = train_test_split(rows.len(), classes.as_deref(), 0.2, seed).unwrap();
        let train: Vec<usize> = train.iter().map(|&i| rows[i]).collect();
        let test: Vec<usize> = test.iter().map(|&i| rows[i]).collect();
        let options = TabularOptions {
            seed,
            ..options.clone()
        };
        let (model, _) =
            TabularModel::fit(&table, &train, task, &options, Verbosity::Silent).unwrap();
        let scores = model.score(&table, &test, None).unwrap();
        eprintln!("{file} seed {seed}: {scores:?}");
        all.push(scores);
    }
    Some(all)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn accuracy(scores: &[TabularScores]) -> f64 {
    mean(scores.iter().map(|s| s.accuracy.unwrap()))
}

#[test]
fn breast_cancer_iris_and_wine() {
    for (file, floor) in [
        ("sklearn-toy/breast_cancer.csv", 0.965),
        ("sklearn-toy/iris.csv", 0.95),
        ("sklearn-toy/wine_data.csv", 0.95),
    ] {
        let options = TabularOptions {
            target: "last".into(),
            csv: sklearn_csv(),
            ..Default::default()
        };
        let Some(scores) = held_out(file, options, None) else {
            return;
        };
        let acc = accuracy(&scores);
        eprintln!("{file}: mean accuracy {acc:.4}");
        assert!(acc >= floor, "{file}: {acc}");
    }
}

#[test]
fn titanic_from_raw_columns() {
    let options = TabularOptions {
        target: "Survived".into(),
        ..Default::default()
    };
    let Some(scores) = held_out("titanic/titanic.csv", options, None) else {
        return;
    };
    let acc = accuracy(&scores);
    eprintln!("titanic: mean accuracy {acc:.4}");
    assert!(scores.iter().all(|s| s.roc_auc.is_some()));
    assert!(acc >= 0.80, "{acc}");
}

#[test]
fn wine_quality_as_regression() {
    let options = TabularOptions {
        target: "class".into(),
        ..Default::default()
    };
    let Some(scores) = held_out(
        "wine-quality-red/wine-quality-red.csv",
        options,
        Some(Task::Regression),
    ) else {
        return;
    };
    let rmse = mean(scores.iter().map(|s| s.regression.unwrap().rmse));
    eprintln!("wine quality: mean RMSE {rmse:.4}");
    assert!(rmse <= 0.68, "{rmse}");
}

#[test]
fn house_prices_log_rmse_by_5_fold_cross_validation() {
    let Some(dir) = data_dir() else { return };
    let options = TabularOptions {
        target: "SalePrice".into(),
        log_target: true,
        ..Default::default()
    };
    let table = Table::read(
        dir.join("house-prices/house_prices_train.csv"),
        &options.csv,
    )
    .unwrap();
    let target = table.column("SalePrice").unwrap();
    let (rows, _) = rows_with_target(&table, target);
    let mut rmses = Vec::new();
    for (train, validation) in k_fold(rows.len(), 5, None, 1).unwrap() {
        let train: Vec<usize> = train.iter().map(|&i| rows[i]).collect();
        let validation: Vec<usize> = validation.iter().map(|&i| rows[i]).collect();
        let (model, _) = TabularModel::fit(
            &table,
            &train,
            Task::Regression,
            &options,
            Verbosity::Silent,
        )
        .unwrap();
        let rmse = model
            .score(&table, &validation, None)
            .unwrap()
            .regression
            .unwrap()
            .rmse;
        eprintln!("house prices fold: RMSE(log) {rmse:.4}");
        rmses.push(rmse);
    }
    let rmse = mean(rmses.into_iter());
    eprintln!("house prices: mean RMSE(log) {rmse:.4}");
    assert!(rmse <= 0.16, "{rmse}");
}
