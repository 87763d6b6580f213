//! `summary()`: the Keras table of layers, output shapes and parameter counts.

use super::Sequential;

const WIDTHS: [usize; 3] = [33, 24, 15];

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
        let line = |l: char, m: char, r: char, fill: char| {
            let cells: Vec<String> = WIDTHS.iter().map(|&w| fill.to_string().repeat(w)).collect();
            format!("{l}{}{r}\n", cells.join(&m.to_string()))
        };
        let row = |sep: char, cells: [String; 3]| {
            format!(
                "{sep} {:<w0$} {sep} {:<w1$} {sep} {:>w2$} {sep}\n",
                cells[0],
                cells[1],
                cells[2],
                w0 = WIDTHS[0] - 2,
                w1 = WIDTHS[1] - 2,
                w2 = WIDTHS[2] - 2,
            )
        };
        let mut out = String::from("Model: \"sequential\"\n");
        out += &line('┏', '┳', '┓', '━');
        out += &row(
            '┃',
            [
                "Layer (type)".into(),
                "Output Shape".into(),
                "Param #".into(),
            ],
        );
        out += &line('┡', '╇', '┩', '━');
        for (i, entry) in self.layers.iter().enumerate() {
            if i > 0 {
                out += &line('├', '┼', '┤', '─');
            }
            let mut vars = entry.layer.params();
            vars.extend(entry.layer.state());
            let params: usize = vars.iter().map(|(_, v)| self.tape.value(*v).len()).sum();
            let shape: Vec<String> = std::iter::once("None".to_string())
                .chain(entry.output_shape.iter().map(|d| d.to_string()))
                .collect();
            out += &row(
                '│',
                [
                    format!("{} ({})", entry.name, entry.layer.kind()),
                    format!("({})", shape.join(", ")),
                    thousands(params),
                ],
            );
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
}
