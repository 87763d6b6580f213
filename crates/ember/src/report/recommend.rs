//! Recommenders as the command line prints them: a ratings file's size and what was left
//! out of it, held-out figures beside the baselines', top-k and similar-item lists, folds.

use std::fmt::Write as _;
use std::path::Path;

use crate::data::interactions::{Duplicates, Interactions};
use crate::data::side_features::SideFeatures;
use crate::error::Result;
use crate::recommend::{self, EvaluateOptions, Evaluation, Recommendation, Recommender, TopList};

/// `u.data: 100000 ratings of 943 users on 1682 items`.
pub fn ratings_text(data: &Interactions) -> String {
    format!(
        "{}: {} {} of {} users on {} items\n",
        data.path.display(),
        data.len(),
        if data.explicit {
            "ratings"
        } else {
            "interactions"
        },
        data.users.len(),
        data.items.len()
    )
}

/// The rows a ratings reader dropped (repeated pairs, bad rows); `duplicates` is the
/// policy the file was read with.
pub fn dropped_ratings_text(data: &Interactions, path: &Path, duplicates: Duplicates) -> String {
    let r = &data.report;
    let mut out = String::new();
    if r.duplicates_dropped > 0 {
        let _ = writeln!(
            out,
            "{}: {} repeated (user, item) rows dropped (--duplicates {})",
            path.display(),
            r.duplicates_dropped,
            duplicates.name(),
        );
    }
    if r.bad_rows_dropped > 0 {
        let _ = writeln!(
            out,
            "{}: {} bad rows dropped, first: {}",
            path.display(),
            r.bad_rows_dropped,
            r.first_bad_rows.join("; ")
        );
    }
    out
}

/// A user or item table read: its size and what its features are.
pub fn side_features_text(table: &SideFeatures, path: &Path, what: &str) -> String {
    format!(
        "{}: {} {what}; {}\n",
        path.display(),
        table.ids.len(),
        table.describe()
    )
}

/// A model's figures on `test` (the fixed lines), then its baselines' beside them.
pub fn evaluation_text(
    model: &Recommender,
    test: &Interactions,
    options: &EvaluateOptions,
) -> Result<String> {
    let (evaluations, coverage) = recommend::evaluate(model, test, options)?;
    let k = options.k;
    let mut out = format!(
        "{}: {} test rows; ranking {} users (relevant: rating >= {}; {} without relevant items and {} unknown users skipped; {} rows with an unknown user or item)\n",
        test.path.display(),
        coverage.test_rows,
        evaluations[0].ranking.users,
        options.relevant_min,
        coverage.users_without_relevant,
        coverage.unknown_users,
        coverage.unknown_rows
    );
    if coverage.seen_rows > 0 {
        let _ = writeln!(
            out,
            "warning: {} test rows are (user, item) pairs of the training data: these figures are optimistic, and those items are not ranked",
            coverage.seen_rows
        );
    }
    for line in figure_lines(&evaluations[0], k) {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("Baselines (same protocol):\n");
    for e in &evaluations[1..] {
        let _ = writeln!(out, "  {:<11} {}", e.name, figure_lines(e, k).join("  "));
    }
    Ok(out)
}

/// `Test RMSE: x`, `Test MAE: x` (for a model that predicts ratings), then the ranking lines.
fn figure_lines(e: &Evaluation, k: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(r) = &e.ratings {
        lines.push(format!("Test RMSE: {:.4}", r.rmse));
        lines.push(format!("Test MAE: {:.4}", r.mae));
    }
    let m = &e.ranking;
    lines.push(format!("Precision@{k}: {:.4}", m.precision));
    lines.push(format!("Recall@{k}: {:.4}", m.recall));
    lines.push(format!("NDCG@{k}: {:.4}", m.ndcg));
    lines.push(format!("MAP@{k}: {:.4}", m.map));
    lines.push(format!("Hit rate@{k}: {:.4}", m.hit_rate));
    lines.push(format!("AUC: {:.4}", m.auc));
    lines
}

/// What a saved recommender holds, in one line: `bpmf recommender: 943 users, 1682 items
/// (titled), 10 factors; predicts ratings from 1 to 5`.
pub fn summary_text(model: &Recommender) -> String {
    let titled = match model.titles {
        Some(_) => " (titled)",
        None => "",
    };
    let scores = match model.model.predicts_ratings {
        true => format!(
            "predicts ratings from {} to {}",
            model.rating_bounds.0, model.rating_bounds.1
        ),
        false => "ranks items (implicit feedback)".to_string(),
    };
    format!(
        "{} recommender: {} users, {} items{titled}, {} factors; {scores}",
        model.kind(),
        model.users.len(),
        model.items.len(),
        model.model.factors
    )
}

/// A user's top-k list: a note when it is not personalised, a heading, the items.
pub fn top_text(model: &Recommender, list: &TopList) -> String {
    let mut out = String::new();
    if let Some(note) = &list.fallback {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(
        out,
        "Top {} for user {} ({}):",
        list.items.len(),
        list.user,
        model.kind()
    );
    out + &items_text(&list.items)
}

/// The items closest to `item`, under a heading.
pub fn similar_text(model: &Recommender, item: &str, items: &[Recommendation]) -> String {
    let i = model.items.get(item).unwrap_or(0);
    format!("Closest to {} ({}):\n", model.display(i), model.kind()) + &items_text(items)
}

/// Ranked items, each with its score and, when explained, the liked items behind it.
fn items_text(items: &[Recommendation]) -> String {
    let mut out = String::new();
    for (rank, r) in items.iter().enumerate() {
        let _ = match &r.title {
            Some(title) => writeln!(
                out,
                "{:>3}. {title} (item {})  {:.4}",
                rank + 1,
                r.item,
                r.score
            ),
            None => writeln!(out, "{:>3}. item {}  {:.4}", rank + 1, r.item, r.score),
        };
        if !r.because.is_empty() {
            let because: Vec<String> = r
                .because
                .iter()
                .map(|(name, s)| format!("{name} ({s:.2})"))
                .collect();
            let _ = writeln!(out, "     because you liked {}", because.join(", "));
        }
    }
    out
}
