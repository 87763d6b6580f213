//! Any bytes given to the CSV reader, type inference and preprocessing give a table or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use ember::data::preprocess::{PreprocessOptions, Preprocessor};
use ember::data::table::{CsvOptions, Table};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    for options in [CsvOptions::default(), CsvOptions { drop_bad_rows: true, header: Some(false), ..CsvOptions::default() }] {
        let Ok(table) = Table::parse(data, path, &options) else { continue };
        for i in 0..table.names.len() {
            let _ = table.summary(i);
        }
        let rows: Vec<usize> = (0..table.rows()).collect();
        let last = table.names.len() - 1;
        for classification in [true, false] {
            if let Ok(p) = Preprocessor::fit(&table, &rows, last, classification, false, &PreprocessOptions::default()) {
                let _ = p.transform(&table, &rows);
                let _ = p.targets(&table, &rows);
            }
        }
    }
});
