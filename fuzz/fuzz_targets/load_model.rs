//! Any bytes given to the model loader give a model or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ember::io::from_bytes(data, std::path::Path::new("fuzz.safetensors"));
});
