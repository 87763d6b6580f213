//! A study for people: the results table (terminal and CSV), each parameter's importance,
//! and three charts as PNG and SVG: the optimisation history, each parameter against the
//! objective, and the importances.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::search::compare;
use super::space::{Distribution, Value};
use super::study::{Study, TrialRecord, TrialState};
use super::TuneSettings;
use crate::error::Result;
use crate::report::plot::{plot_error, render, Chart, COLOURS};
use crate::report::write;

/// The trials best first (by the objective at their last epoch), failed ones last.
pub fn ranked<'a>(study: &'a Study, settings: &TuneSettings) -> Vec<&'a TrialRecord> {
    let mut trials: Vec<&TrialRecord> = study.trials.values().collect();
    trials.sort_by(|a, b| {
        compare(settings.direction, a.value(), b.value()).then(a.number.cmp(&b.number))
    });
    trials
}

fn state_name(state: TrialState) -> &'static str {
    match state {
        TrialState::Complete => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Paused => "paused",
        TrialState::Failed => "failed",
    }
}

fn param_text(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) if n.is_f64() && x != 0.0 && x.abs() < 0.01 => format!("{x:.3e}"),
            Some(x) if n.is_f64() => format!("{x:.4}"),
            _ => n.to_string(),
        },
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// The results table as CSV: one row per trial, best first.
pub fn results_csv(study: &Study, settings: &TuneSettings) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let names: Vec<&str> = settings
        .space
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut header = vec![
        "rank",
        "trial",
        "state",
        settings.objective.as_str(),
        "epochs",
        "seconds",
    ];
    header.extend(&names);
    header.push("reason");
    let bad =
        |e: csv::Error| crate::error::Error::invalid(format!("cannot write the results: {e}"));
    out.write_record(&header).map_err(bad)?;
    for (rank, t) in ranked(study, settings).into_iter().enumerate() {
        let mut row = vec![
            (rank + 1).to_string(),
            t.number.to_string(),
            state_name(t.state).to_string(),
            t.value().map(|v| format!("{v:.6}")).unwrap_or_default(),
            t.values.len().to_string(),
            format!("{:.2}", t.seconds),
        ];
        row.extend(names.iter().map(|n| {
            let v = t.params.get(*n);
            match v {
                Some(serde_json::Value::Number(_)) => v.map(|v| v.to_string()).unwrap_or_default(),
                _ => param_text(v),
            }
        }));
        row.push(t.reason.clone().unwrap_or_default());
        out.write_record(&row).map_err(bad)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| crate::error::Error::invalid(format!("cannot write the results: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether `name` is a field of an optional layer that this trial leaves out
/// (`layers[1].units` while `layers[1]` is false): its value played no part.
fn absent_layer(name: &str, params: &serde_json::Map<String, serde_json::Value>) -> bool {
    let Some((layer, _)) = name.split_once("].") else {
        return false;
    };
    params.get(&format!("{layer}]")) == Some(&serde_json::Value::Bool(false))
}

/// The results table for the terminal, best first, at most `limit` rows (a field of a layer
/// the trial leaves out shows as `-`).
pub fn results_text(study: &Study, settings: &TuneSettings, limit: usize) -> String {
    let names: Vec<&str> = settings
        .space
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut header = vec![
        "rank".to_string(),
        "trial".into(),
        "state".into(),
        settings.objective.clone(),
        "epochs".into(),
        "seconds".into(),
    ];
    header.extend(names.iter().map(|n| n.to_string()));
    let trials = ranked(study, settings);
    let mut rows: Vec<Vec<String>> = vec![header];
    for (rank, t) in trials.iter().take(limit).enumerate() {
        let mut row = vec![
            (rank + 1).to_string(),
            t.number.to_string(),
            state_name(t.state).to_string(),
            t.value()
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into()),
            t.values.len().to_string(),
            format!("{:.1}", t.seconds),
        ];
        row.extend(names.iter().map(|n| match absent_layer(n, &t.params) {
            true => "-".to_string(),
            false => param_text(t.params.get(*n)),
        }));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| match c {
                2 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        text += cells.join("  ").trim_end();
        text.push('\n');
    }
    if trials.len() > limit {
        text += &format!(
            "… and {} more trials in results.csv\n",
            trials.len() - limit
        );
    }
    text
}

/// Each parameter's importance: the share of the objective's variance over the trials that
/// its value alone explains (the correlation ratio η², values grouped by choice, or for
/// numbers into four quantile bins), scaled to sum to 1. In the space's order.
pub fn importance(study: &Study, settings: &TuneSettings) -> Vec<(String, f64)> {
    let scored: Vec<(Vec<Value>, f64)> = study
        .trials
        .values()
        .filter_map(|t| Some((settings.space.from_json(&t.params)?, t.value()?)))
        .collect();
    let raw: Vec<f64> = settings
        .space
        .params
        .iter()
        .enumerate()
        .map(|(p, _)| {
            let groups = groups(scored.iter().map(|(v, _)| v[p]).collect());
            correlation_ratio(&groups, &scored.iter().map(|s| s.1).collect::<Vec<_>>())
        })
        .collect();
    let total: f64 = raw.iter().sum();
    settings
        .space
        .params
        .iter()
        .zip(raw)
        .map(|(p, r)| (p.name.clone(), if total > 0.0 { r / total } else { 0.0 }))
        .collect()
}

/// The group of each value: its choice, or its quantile bin among four.
fn groups(values: Vec<Value>) -> Vec<usize> {
    let numbers: Vec<f64> = values
        .iter()
        .map(|v| match v {
            Value::Float(x) => *x,
            Value::Int(n) => *n as f64,
            Value::Index(i) => *i as f64,
        })
        .collect();
    if values.iter().all(|v| matches!(v, Value::Index(_))) {
        return numbers.iter().map(|&x| x as usize).collect();
    }
    let mut sorted = numbers.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let cuts: Vec<f64> = (1..4)
        .map(|q| sorted[(q * n / 4).min(n.saturating_sub(1))])
        .collect();
    numbers
        .iter()
        .map(|x| cuts.iter().filter(|&&c| *x >= c).count())
        .collect()
}

fn correlation_ratio(groups: &[usize], y: &[f64]) -> f64 {
    let n = y.len() as f64;
    if y.len() < 2 {
        return 0.0;
    }
    let mean = y.iter().sum::<f64>() / n;
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let k = groups.iter().copied().max().unwrap_or(0) + 1;
    let (mut sums, mut counts) = (vec![0.0; k], vec![0.0; k]);
    for (&g, &v) in groups.iter().zip(y) {
        sums[g] += v;
        counts[g] += 1.0;
    }
    let between: f64 = (0..k)
        .filter(|&g| counts[g] > 0.0)
        .map(|g| counts[g] * (sums[g] / counts[g] - mean).powi(2))
        .sum();
    between / total
}

/// Writes results.csv and the charts (history, params, importance as PNG and SVG) into
/// `dir`; returns the files written.
pub fn write_all(dir: &Path, study: &Study, settings: &TuneSettings) -> Result<Vec<PathBuf>> {
    let mut files = vec![write(
        dir,
        "results.csv",
        results_csv(study, settings)?.as_bytes(),
    )?];
    let scored: Vec<&TrialRecord> = study
        .trials
        .values()
        .filter(|t| t.value().is_some())
        .collect();
    if scored.is_empty() {
        return Ok(files);
    }
    let history = HistoryChart { study, settings };
    let params = ParamsChart { study, settings };
    let bars = ImportanceChart {
        importance: importance(study, settings),
    };
    let rows = settings.space.params.len().div_ceil(2) as u32;
    for (name, (png, svg)) in [
        ("history", render(&history, (900, 560))?),
        ("params", render(&params, (1000, 320 * rows.max(1)))?),
        (
            "importance",
            render(&bars, (900, 120 + 60 * settings.space.params.len() as u32))?,
        ),
    ] {
        files.push(write(dir, &format!("{name}.png"), &png)?);
        files.push(write(dir, &format!("{name}.svg"), svg.as_bytes())?);
    }
    Ok(files)
}

/// The range of `values` with some room, never empty.
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((high - low) * 0.08).max(1e-3);
    (low - pad)..(high + pad)
}

/// Each trial's objective in trial order, and the best so far.
struct HistoryChart<'a> {
    study: &'a Study,
    settings: &'a TuneSettings,
}

impl Chart for HistoryChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let points: Vec<(f64, f64)> = self
            .study
            .trials
            .values()
            .filter_map(|t| Some((t.number as f64, t.value()?)))
            .collect();
        let mut best: Vec<(f64, f64)> = Vec::new();
        for &(x, y) in &points {
            let b = match best.last() {
                Some(&(_, b)) if !self.settings.better(y, b) => b,
                _ => y,
            };
            best.push((x, b));
        }
        let last = points.last().map_or(1.0, |p| p.0).max(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption("Optimisation history", ("sans-serif", 26))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..last + 0.5, padded(points.iter().map(|p| p.1)))
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("trial")
            .y_desc(&self.settings.objective)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 5, COLOURS[0].filled())),
            )
            .map_err(plot_error)?
            .label("trial")
            .legend(|(x, y)| Circle::new((x + 12, y), 5, COLOURS[0].filled()));
        chart
            .draw_series(LineSeries::new(best, COLOURS[1].stroke_width(3)))
            .map_err(plot_error)?
            .label("best so far")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], COLOURS[1].stroke_width(3))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

/// One panel per parameter: its value (log scale for log_uniform, the choice for choices)
/// against the objective.
struct ParamsChart<'a> {
    study: &'a Study,
    settings: &'a TuneSettings,
}

impl Chart for ParamsChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let params = &self.settings.space.params;
        let rows = params.len().div_ceil(2).max(1);
        let panels = root.split_evenly((rows, 2));
        let trials: Vec<(Vec<Value>, f64)> = self
            .study
            .trials
            .values()
            .filter_map(|t| Some((self.settings.space.from_json(&t.params)?, t.value()?)))
            .collect();
        let y_range = padded(trials.iter().map(|t| t.1));
        for (p, (param, panel)) in params.iter().zip(panels.iter()).enumerate() {
            let log = matches!(param.distribution, Distribution::LogUniform { .. });
            let labels: Vec<String> = match &param.distribution {
                Distribution::Choice(c) => c.iter().map(short).collect(),
                Distribution::Optional => vec!["present".into(), "absent".into()],
                _ => Vec::new(),
            };
            let x = |v: Value| match v {
                Value::Float(x) if log => x.log10(),
                Value::Float(x) => x,
                Value::Int(n) => n as f64,
                Value::Index(i) => i as f64,
            };
            let points: Vec<(f64, f64)> = trials.iter().map(|t| (x(t.0[p]), t.1)).collect();
            let x_range = match labels.len() {
                0 => padded(points.iter().map(|p| p.0)),
                n => -0.5..(n as f64 - 0.5),
            };
            let title = match log {
                true => format!("{} (log10)", param.name),
                false => param.name.clone(),
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(&title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(x_range, y_range.clone())
                .map_err(plot_error)?;
            let labels_ref = &labels;
            chart
                .configure_mesh()
                .y_desc(&self.settings.objective)
                .x_labels(match labels.len() {
                    0 => 6,
                    n => n,
                })
                .x_label_formatter(&|v| match labels_ref.len() {
                    0 => format!("{v:.3}"),
                    _ => labels_ref
                        .get(v.round().max(0.0) as usize)
                        .filter(|_| (v - v.round()).abs() < 1e-6)
                        .cloned()
                        .unwrap_or_default(),
                })
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(plot_error)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&q| Circle::new(q, 4, COLOURS[0].mix(0.8).filled())),
                )
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// A choice's value, short enough for an axis.
pub(crate) fn short(value: &toml::Value) -> String {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.chars().count() > 14 {
        true => format!("{}…", text.chars().take(13).collect::<String>()),
        false => text,
    }
}

/// Importances as horizontal bars, the largest first.
struct ImportanceChart {
    importance: Vec<(String, f64)>,
}

impl Chart for ImportanceChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut bars = self.importance.clone();
        bars.sort_by(|a, b| a.1.total_cmp(&b.1));
        let n = bars.len() as i32;
        let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Parameter importance (share of variance explained)",
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(260)
            .build_cartesian_2d(0.0..1.0, (0..n - 1).into_segmented())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    COLOURS[0].filled(),
                );
                bar.set_margin(6, 6, 0, 0);
                bar
            }))
            .map_err(plot_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_correlation_ratio_is_one_for_a_parameter_that_decides_everything() {
        assert!((correlation_ratio(&[0, 0, 1, 1], &[1.0, 1.0, 3.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(correlation_ratio(&[0, 1, 0, 1], &[1.0, 1.0, 3.0, 3.0]), 0.0);
        assert_eq!(correlation_ratio(&[0, 1], &[2.0, 2.0]), 0.0);
        // Quantile bins of numbers: four groups of two.
        let g = groups((0..8).map(|i| Value::Float(i as f64)).collect());
        assert_eq!(g, vec![0, 0, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn fields_of_a_left_out_layer_are_told_apart() {
        let params =
            serde_json::json!({"layers[1]": false, "layers[1].units": 64, "layers[0].units": 8});
        let params = params.as_object().unwrap();
        assert!(absent_layer("layers[1].units", params));
        assert!(!absent_layer("layers[0].units", params));
        assert!(!absent_layer("fit.batch_size", params));
    }
}
