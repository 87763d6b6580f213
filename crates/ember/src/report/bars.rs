//! A horizontal bar chart of named values with optional error bars: column importances and
//! attributions, largest at the top.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plot::{plot_error, render, Chart, COLOURS};
use crate::error::Result;

/// Bars, one per name, drawn in the order given (the first on top).
pub struct Bars {
    pub title: String,
    pub x_label: String,
    pub names: Vec<String>,
    pub values: Vec<f64>,
    /// ± this around each value (a standard deviation), if any.
    pub errors: Option<Vec<f64>>,
}

impl Bars {
    /// (PNG bytes, SVG text).
    pub fn render(&self) -> Result<(Vec<u8>, String)> {
        let height = (120 + 34 * self.names.len()).clamp(240, 2000) as u32;
        render(self, (900, height))
    }
}

impl Chart for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let errors = |i: usize| self.errors.as_ref().map_or(0.0, |e| e[i]);
        let (mut low, mut high) = (0.0f64, 0.0f64);
        for (i, &v) in self.values.iter().enumerate() {
            if v.is_finite() {
                low = low.min(v - errors(i));
                high = high.max(v + errors(i));
            }
        }
        if high - low < 1e-12 {
            high = low + 1.0;
        }
        let pad = (high - low) * 0.05;
        let n = self.names.len().max(1);
        let longest = self
            .names
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(4);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size((longest as u32 * 9 + 20).clamp(60, 320))
            .build_cartesian_2d((low - pad)..(high + pad), 0.0..n as f64)
            .map_err(plot_error)?;
        let names = &self.names;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(&self.x_label)
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                // A label at each bar's centre, counted from the top.
                let k = (n as f64 - y - 0.5).round();
                if (n as f64 - y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                    names[k as usize].clone()
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(plot_error)?;
        let [positive, negative] = COLOURS;
        chart
            .draw_series(self.values.iter().enumerate().map(|(i, &v)| {
                let top = n as f64 - i as f64 - 0.15;
                let bottom = n as f64 - i as f64 - 0.85;
                let colour = if v >= 0.0 { positive } else { negative };
                Rectangle::new([(0.0, bottom), (v, top)], colour.filled())
            }))
            .map_err(plot_error)?;
        if let Some(errors) = &self.errors {
            chart
                .draw_series(
                    self.values
                        .iter()
                        .zip(errors)
                        .enumerate()
                        .map(|(i, (&v, &e))| {
                            let y = n as f64 - i as f64 - 0.5;
                            PathElement::new(vec![(v - e, y), (v + e, y)], BLACK.stroke_width(2))
                        }),
                )
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_render_to_a_png_and_an_svg_naming_every_bar() {
        let bars = Bars {
            title: "Permutation importance".into(),
            x_label: "drop in accuracy".into(),
            names: vec!["Sex".into(), "Pclass".into(), "Fare".into()],
            values: vec![0.2, 0.05, -0.01],
            errors: Some(vec![0.02, 0.01, 0.005]),
        };
        let (png, svg) = bars.render().unwrap();
        let image = image::load_from_memory(&png).unwrap();
        assert_eq!(image.width(), 900);
        for name in ["Sex", "Pclass", "Fare", "Permutation importance"] {
            assert!(svg.contains(name), "{name} missing");
        }
    }
}
