//! Any text given to the model-file parser (stacks, graphs, callbacks, data sections) gives a
//! checked model file or an error naming the field, never a panic; a file that parses writes
//! back to text that parses to the same file.
#![no_main]

use libfuzzer_sys::fuzz_target;

use ember::ModelSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.toml");
    if let Ok(spec) = ModelSpec::parse(text, path) {
        if let Ok(again) = spec.to_toml() {
            let back = ModelSpec::parse(&again, path).expect("a written model file parses");
            assert_eq!(back, spec);
        }
    }
});
