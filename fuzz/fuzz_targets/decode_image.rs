//! Any bytes given to the image decoder (PNG or JPEG by content, truncation checked) give an
//! image or an error, never a panic or an allocation beyond the decoder's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

use ember::data::image::decode_bytes;

fuzz_target!(|data: &[u8]| {
    let _ = decode_bytes(data, std::path::Path::new("fuzz.png"));
});
