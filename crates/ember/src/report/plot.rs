//! Charts with `plotters`: line curves per epoch and the confusion-matrix heat map, each drawn
//! once to a PNG and once to an SVG. The font is embedded, so charts look the same everywhere.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::metrics::ConfusionMatrix;

const SIZE: (u32, u32) = (900, 560);
/// Training blue and validation orange (matplotlib's first two colours).
pub(crate) const COLOURS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // DejaVu Sans (free licence, see assets/DejaVuSans-LICENSE.txt).
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .unwrap_or_else(|_| unreachable!("the embedded font is valid"));
    });
}

pub(crate) fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("cannot draw the chart: {e}"))
}

pub struct Series {
    pub name: &'static str,
    pub values: Vec<f64>,
}

/// Metric curves over epochs.
pub struct Curves {
    pub title: String,
    pub y_label: String,
    pub epochs: Vec<f64>,
    pub series: Vec<Series>,
    /// The metric improves upwards (accuracy).
    pub rising: bool,
}

/// A chart drawn the same way on any backend: once to pixels, once to SVG.
pub(crate) trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `chart` at `size`: (PNG bytes, SVG text).
pub(crate) fn render(chart: &impl Chart, size: (u32, u32)) -> Result<(Vec<u8>, String)> {
    register_font();
    let mut pixels = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    let png = image::RgbImage::from_raw(size.0, size.1, pixels)
        .ok_or_else(|| plot_error("bad buffer"))?;
    Ok((encode_image(png)?, svg))
}

impl Curves {
    /// (PNG bytes, SVG text).
    pub fn render(&self) -> Result<(Vec<u8>, String)> {
        render(self, SIZE)
    }
}

impl Chart for Curves {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let values = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite());
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let (low, high) = if low.is_finite() {
            (low, high)
        } else {
            (0.0, 1.0)
        };
        let pad = ((high - low) * 0.08).max(1e-3);
        let first = self.epochs.first().copied().unwrap_or(1.0);
        let last = self.epochs.last().copied().unwrap_or(1.0).max(first + 1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(first..last, (low - pad)..(high + pad))
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(&self.y_label)
            .x_labels(self.epochs.len().clamp(2, 12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(plot_error)?;
        for (series, colour) in self.series.iter().zip(COLOURS) {
            let points: Vec<(f64, f64)> = self
                .epochs
                .iter()
                .copied()
                .zip(series.values.iter().copied())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))
                .map_err(plot_error)?
                .label(series.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            // Loss falls and accuracy rises: keep the legend off the curves' ends.
            .position(if self.rising {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

/// The confusion matrix as a heat map: (PNG bytes, SVG text).
pub fn render_confusion(cm: &ConfusionMatrix) -> Result<(Vec<u8>, String)> {
    struct Heat<'a>(&'a ConfusionMatrix);
    impl Chart for Heat<'_> {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            draw_confusion(root, self.0)
        }
    }
    render(&Heat(cm), (760, 720))
}

fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cm: &ConfusionMatrix,
) -> Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    let n = cm.classes() as i32;
    // Segmented axes put each class label at the centre of its cell. Rows are drawn from
    // the top, so the y axis counts down: row r shows true class n - 1 - r.
    let mut chart = ChartBuilder::on(root)
        .caption("Confusion matrix", ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(60)
        // A segmented range a..b has segments a..=b.
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(plot_error)?;
    let class_label = |v: &SegmentValue<i32>, flip: bool| match v {
        SegmentValue::CenterOf(c) if flip => (n - 1 - c).to_string(),
        SegmentValue::CenterOf(c) => c.to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .x_labels(n as usize)
        .y_labels(n as usize)
        .x_label_formatter(&|v| class_label(v, false))
        .y_label_formatter(&|v| class_label(v, true))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(plot_error)?;
    let font = ("sans-serif", if n <= 12 { 17 } else { 11 });
    let centred = plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Center,
    );
    for t in 0..n {
        let row_total: usize = (0..n).map(|p| cm.count(t as usize, p as usize)).sum();
        let row = n - 1 - t;
        for p in 0..n {
            let count = cm.count(t as usize, p as usize);
            let share = if row_total == 0 {
                0.0
            } else {
                count as f64 / row_total as f64
            };
            // White to dark blue by the share of the true class.
            let shade = |full: u8| (255.0 - (255.0 - full as f64) * share) as u8;
            let colour = RGBColor(shade(8), shade(48), shade(107));
            let corners = [
                (SegmentValue::Exact(p), SegmentValue::Exact(row)),
                (SegmentValue::Exact(p + 1), SegmentValue::Exact(row + 1)),
            ];
            chart
                .draw_series(std::iter::once(Rectangle::new(corners, colour.filled())))
                .map_err(plot_error)?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let style = TextStyle::from(font.into_font()).color(&ink).pos(centred);
            let centre = (SegmentValue::CenterOf(p), SegmentValue::CenterOf(row));
            chart
                .draw_series(std::iter::once(Text::new(count.to_string(), centre, style)))
                .map_err(plot_error)?;
        }
    }
    Ok(())
}

fn encode_image(image: image::RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(plot_error)?;
    Ok(bytes)
}
