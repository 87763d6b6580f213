//! `summary()`: the Keras table of layers, output shapes and parameter counts.

use super::Sequential;

/// Keras's column widths, each including a space either side.
const MIN_WIDTHS: [usize; 3] = [33, 24, 15];

impl Sequential {
    /// The model as a Keras-style table.
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
        let header = [
            "Layer (type)".to_string(),
            "Output Shape".to_string(),
            "Param #".to_string(),
        ];
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .map(|entry| {
                let mut vars = entry.layer.params();
                vars.extend(entry.layer.state());
                let params: usize = vars.iter().map(|(_, v)| self.tape.value(*v).len()).sum();
                let shape: Vec<String> = std::iter::once("None".to_string())
                    .chain(entry.output_shape.iter().map(|d| d.to_string()))
                    .collect();
                [
                    format!("{} ({})", entry.name, entry.layer.kind()),
                    format!("({})", shape.join(", ")),
                    thousands(params),
                ]
            })
            .collect();
        // Keras's column widths, widened where a cell would not fit.
        let mut widths = MIN_WIDTHS;
        for cells in std::iter::once(&header).chain(&rows) {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count() + 2);
            }
        }
        let line = |l: char, m: char, r: char, fill: char| {
            let cells: Vec<String> = widths.iter().map(|&w| fill.to_string().repeat(w)).collect();
            format!("{l}{}{r}\n", cells.join(&m.to_string()))
        };
        let row = |sep: char, cells: &[String; 3]| {
            format!(
                "{sep} {:<w0$} {sep} {:<w1$} {sep} {:>w2$} {sep}\n",
                cells[0],
                cells[1],
                cells[2],
                w0 = widths[0] - 2,
                w1 = widths[1] - 2,
                w2 = widths[2] - 2,
            )
        };
        let mut out = String::from("Model: \"sequential\"\n");
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
        let total = self.count_params();
        out += &format!(
            " Total params: {} ({})\n",
            thousands(total),
            bytes(total * 4)
        );
        let trainable = self.count_trainable_params();
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
        if i > 0 && (digits.len() - i) % 3 == 0 {
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
