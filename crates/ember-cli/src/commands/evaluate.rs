//! `ember evaluate MODEL`: loss, accuracy, top-k accuracy, per-class precision / recall / F1
//! and the confusion matrix on the model's test data.

use std::path::PathBuf;

use clap::Args;
use ember::report;
use ember::saved::{SavedModel, TableModel};

#[derive(Args)]
pub struct EvaluateArgs {
    /// A model saved by `ember train --output` (or a checkpoint).
    model: PathBuf,
    /// Data folder, instead of the one recorded in the model.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Report top-k accuracy for this k.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write evaluation.json and the confusion matrix (PNG, SVG) into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// For a table model: the CSV rows to score (with the target column).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// For a table model: how to read --csv (default: as its training file was read).
    #[command(flatten)]
    csv_options: super::table::CsvArgs,
    /// Threads for the numeric kernels.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
}

pub fn run(args: EvaluateArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    if let Some(dir) = &args.report {
        ember::atomic::check_output_dir(dir)?;
    }
    let network = match SavedModel::load(&args.model)? {
        SavedModel::Network(network) => network,
        SavedModel::Table(table) => return evaluate_table(&table, &args),
        SavedModel::Text(_) | SavedModel::Faq(_) => {
            return Err(ember::Error::data(
                &args.model,
                "a text classifier or FAQ index has no test set of its own: `ember train` reports its held-out figures",
            ))
        }
    };
    let data = super::load_data(
        network.data(&args.model)?,
        args.data.as_deref(),
        std::path::Path::new("."),
    )?;
    super::report_skipped(&data.skipped);
    let batch = network.spec.fit.batch_size;
    let assessment =
        network
            .model
            .assess(&data.x_test, &data.y_test, batch, args.top_k as usize)?;
    if let Some(dir) = &args.report {
        report::write_evaluation(dir, &assessment, assessment.confusion_matrix.as_ref())?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&assessment)
            .map_err(|e| ember::Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        println!(
            "{}: {} test samples, trained {} epochs",
            args.model.display(),
            assessment.samples,
            network.epochs_done
        );
        super::print_assessment(&assessment, true);
    }
    Ok(())
}

/// A table model scored on the rows of `--csv FILE`.
fn evaluate_table(table_model: &TableModel, args: &EvaluateArgs) -> ember::Result<()> {
    use ember::data::table::Table;
    use ember::tabular::rows_with_target;

    let (tabular, spec) = (&table_model.model, &table_model.spec);

    let file = args.csv.as_ref().ok_or_else(|| ember::Error::Data {
        path: args.model.clone(),
        message: format!(
            "a table model is evaluated on rows it has not seen: pass --csv FILE (it was trained on {})",
            spec.file.display()
        ),
    })?;
    let table = Table::read(file, &args.csv_options.or(&spec.options.csv))?;
    super::table::report_rejected(&table);
    let target_name = match &spec.preprocessor.target {
        ember::data::preprocess::Target::Classes { column, .. }
        | ember::data::preprocess::Target::Regression { column, .. } => column.clone(),
    };
    let target = table.column_named(&target_name)?;
    let (rows, missing) = rows_with_target(&table, target);
    if !missing.is_empty() {
        println!(
            "Left out {} row(s) whose target is missing (lines {})",
            missing.len(),
            super::table::preview(&missing)
        );
    }
    let scores = tabular.score(&table, &rows)?;
    if let Some(dir) = &args.report {
        report::write_evaluation(dir, &scores, scores.confusion_matrix.as_ref())?;
    }
    // The file the model was trained on holds its training rows: no held-out figures then.
    let same_file = match (
        std::fs::canonicalize(file),
        std::fs::canonicalize(&spec.file),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&scores)
            .map_err(|e| ember::Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        println!(
            "{}: {} rows of {}",
            args.model.display(),
            scores.samples,
            file.display()
        );
        if same_file {
            println!(
                "note: this is the file the model was trained on, so these rows include its \
                 training rows and the scores are not held-out figures"
            );
        }
        if let Some(report) = &scores.report {
            println!("{}", report.to_text_named(&scores.classes));
        }
        if let Some(matrix) = &scores.confusion_matrix {
            println!("Confusion matrix (rows: true class, columns: predicted class)");
            print!("{}", matrix.to_text());
            if scores
                .classes
                .iter()
                .enumerate()
                .any(|(c, n)| *n != c.to_string())
            {
                for (c, name) in scores.classes.iter().enumerate() {
                    println!("  {c}: {name}");
                }
            }
        }
        println!("Test loss: {:.4}", scores.loss);
        super::table::print_scores(&scores, "Test");
    }
    Ok(())
}
