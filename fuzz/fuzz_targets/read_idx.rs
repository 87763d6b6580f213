//! Any bytes given to the IDX reader, plain or as the inside of a gzip stream, give a tensor
//! or an error, never a panic or an allocation beyond the reader's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

use ember::data::idx::read_idx_from;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.idx");
    if let Ok(t) = read_idx_from(data, path) {
        assert_eq!(t.len(), t.shape().iter().product::<usize>());
    }
});
