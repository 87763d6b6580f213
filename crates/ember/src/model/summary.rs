//! `summary()`: the Keras table of layers, output shapes and parameter counts.

use super::functional::{Model, Operation, Source};

/// Keras's column widths, each including a space either side; a functional model adds
/// "Connected to".
const MIN_WIDTHS: [usize; 4] = [33, 24, 15, 24];

impl Model {
    /// The model as a Keras-style table: each layer's output shape and parameter count, and
    /// for a functional model the layers each one reads ("Connected to").
    ///
    /// ```
    /// use ember::prelude::*;
    /// let mut model = Sequential::new(&[784]);
    /// model.add(Dense::new(64).activation(Activation::Relu)).unwrap();
    /// model.add(Dense::new(10).activation(Activation::Softmax)).unwrap();
    /// let table = model.summary();
    /// assert!(table.contains("dense_1 (Dense)"));
    /// assert!(table.contains("(None, 64)"));
    /// assert!(table.contains("50,240"));
    /// assert!(table.contains("Total params: 50,890 (198.79 KB)"));
    /// ```
    pub fn summary(&self) -> String {
        let functional = !self.is_sequential();
        // Keras names a call's output `layer[call][0]`, counting the layer's calls.
        let mut call_index = vec![0; self.calls.len()];
        let mut seen = vec![0; self.layers.len()];
        for (c, call) in self.calls.iter().enumerate() {
            call_index[c] = seen[call.layer];
            seen[call.layer] += 1;
        }
        let source_name = |s: Source| match s {
            Source::Input(i) => format!("{}[0][0]", self.inputs[i].name),
            Source::Call(c) => format!(
                "{}[{}][0]",
                self.layers[self.calls[c].layer].name, call_index[c]
            ),
        };
        // Each layer's calls, gathered once (not a scan of every call per layer).
        let mut calls_of: Vec<Vec<&super::functional::Call>> = vec![Vec::new(); self.layers.len()];
        for call in &self.calls {
            calls_of[call.layer].push(call);
        }
        let rows = self
            .layers
            .iter()
            .zip(&calls_of)
            .map(|(entry, calls)| SummaryRow {
                name: entry.name.clone(),
                kind: match &entry.op {
                    Operation::Layer(layer) => layer.kind(),
                    Operation::Merge(merge) => merge.kind(),
                },
                output: calls.first().map(|c| c.output_shape.clone()),
                params: entry.op.weights().iter().map(|w| w.value.len()).sum(),
                connected: calls
                    .iter()
                    .flat_map(|c| c.inputs.iter().map(|&s| source_name(s)))
                    .collect(),
            })
            .collect();
        SummaryTable {
            functional,
            inputs: match functional {
                true => self
                    .inputs
                    .iter()
                    .map(|i| (i.name.clone(), i.shape.clone()))
                    .collect(),
                false => Vec::new(),
            },
            rows,
            total: self.count_params(),
            trainable: self.count_trainable_params(),
        }
        .render()
            + &self.privacy().map_or(String::new(), |p| p.description())
    }
}

/// One layer's line of a summary.
pub(crate) struct SummaryRow {
    pub name: String,
    /// The Keras class name.
    pub kind: &'static str,
    /// The sample shape of the layer's first call (None if never called).
    pub output: Option<Vec<usize>>,
    pub params: usize,
    /// The values the layer's calls read (`name[call][0]`), for a functional model.
    pub connected: Vec<String>,
}

/// What [`Model::summary`] prints, gathered from a built model or, without creating any
/// weight, from a model file (`ModelSpec::summary`).
pub(crate) struct SummaryTable {
    /// A functional model (input rows and "Connected to"), not a stack.
    pub functional: bool,
    /// The functional model's inputs: name and sample shape.
    pub inputs: Vec<(String, Vec<usize>)>,
    pub rows: Vec<SummaryRow>,
    pub total: usize,
    pub trainable: usize,
}

impl SummaryTable {
    /// The Keras-style table.
    pub fn render(&self) -> String {
        let functional = self.functional;
        let columns = if functional { 4 } else { 3 };
        let mut header = vec![
            "Layer (type)".to_string(),
            "Output Shape".to_string(),
            "Param #".to_string(),
        ];
        if functional {
            header.push("Connected to".to_string());
        }
        let shape = |dims: &[usize]| {
            let dims: Vec<String> = std::iter::once("None".to_string())
                .chain(dims.iter().map(|&d| match d {
                    crate::nn::ANY => "None".to_string(),
                    d => d.to_string(),
                }))
                .collect();
            format!("({})", dims.join(", "))
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (name, input_shape) in &self.inputs {
            rows.push(vec![
                format!("{name} (InputLayer)"),
                shape(input_shape),
                "0".to_string(),
                "-".to_string(),
            ]);
        }
        for row in &self.rows {
            let mut cells = vec![
                format!("{} ({})", row.name, row.kind),
                row.output.as_deref().map_or_else(String::new, shape),
                thousands(row.params),
            ];
            if functional {
                cells.push(row.connected.join(", "));
            }
            rows.push(cells);
        }
        // Keras's column widths, widened where a cell would not fit.
        let mut widths = MIN_WIDTHS[..columns].to_vec();
        for cells in std::iter::once(&header).chain(&rows) {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count() + 2);
            }
        }
        let line = |l: char, m: char, r: char, fill: char| {
            let cells: Vec<String> = widths.iter().map(|&w| fill.to_string().repeat(w)).collect();
            format!("{l}{}{r}\n", cells.join(&m.to_string()))
        };
        let row = |sep: char, cells: &[String]| {
            let cells: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, &w))| match i {
                    2 => format!(" {cell:>0$} ", w - 2),
                    _ => format!(" {cell:<0$} ", w - 2),
                })
                .collect();
            format!("{sep}{}{sep}\n", cells.join(&sep.to_string()))
        };
        let name = if functional {
            "functional"
        } else {
            "sequential"
        };
        let mut out = format!("Model: \"{name}\"\n");
        out += &line('┏', '┳', '┓', '━');
        out += &row('┃', &header);
        out += &line('┡', '╇', '┩', '━');
        for (i, cells) in rows.iter().enumerate() {
            if i > 0 {
                out += &line('├', '┼', '┤', '─');
            }
            out += &row('│', cells);
        }
        out += &line('└', '┴', '┘', '─');
        let (total, trainable) = (self.total, self.trainable);
        out += &format!(
            " Total params: {} ({})\n",
            thousands(total),
            bytes(total * 4)
        );
        let frozen = total - trainable;
        out += &format!(
            " Trainable params: {} ({})\n",
            thousands(trainable),
            bytes(trainable * 4)
        );
        out += &format!(
            " Non-trainable params: {} ({})\n",
            thousands(frozen),
            bytes(frozen * 4)
        );
        out
    }
}

/// 50240 → "50,240".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's size format: 203560 → "198.79 KB".
fn bytes(n: usize) -> String {
    let units = ["B", "KB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sequential;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(650), "650");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(0), "0.00 B");
        assert_eq!(bytes(50890 * 4), "198.79 KB");
    }

    #[test]
    fn columns_widen_to_fit_long_names_and_keep_the_table_aligned() {
        let mut model = Sequential::new(&[28, 28, 1]);
        model
            .add(crate::nn::Augment::translation(0.1, 0.1))
            .unwrap();
        model.add(crate::nn::Flatten).unwrap();
        let table = model.summary();
        assert!(
            table.contains("│ random_translation (RandomTranslation) │"),
            "{table}"
        );
        let lines: Vec<&str> = table
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with(' '))
            .collect();
        let width = lines[0].chars().count();
        assert!(width > 33 + 24 + 15, "{table}");
        for l in &lines {
            assert_eq!(l.chars().count(), width, "{l}\n{table}");
        }
        // Short tables keep Keras's widths.
        let mut small = Sequential::new(&[4]);
        small.add(crate::nn::Dense::new(2)).unwrap();
        assert_eq!(
            small.summary().lines().nth(1).unwrap().chars().count(),
            33 + 24 + 15 + 4
        );
    }
}
