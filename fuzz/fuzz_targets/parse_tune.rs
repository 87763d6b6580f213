//! Any model file's `[tune]` section gives checked search settings or an error naming the
//! field, never a panic; every point a sampler draws from a checked space writes into the
//! file without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use ember::tune::{sampler, split_file, TuneSettings};
use ember::ModelSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.toml");
    let Ok((doc, Some(tune))) = split_file(text, path) else {
        return;
    };
    let Ok(spec) = ModelSpec::parse(text, path) else {
        return;
    };
    let Ok(settings) = TuneSettings::parse(&tune, &spec.logged_metrics(), spec.fit.epochs) else {
        return;
    };
    let check = |d: &toml::Table| {
        let t = toml::to_string(d).map_err(|e| ember::Error::invalid(e.to_string()))?;
        ModelSpec::parse(&t, path).map(|_| ())
    };
    if settings.space.check_against(&doc, check).is_err() {
        return;
    }
    for number in 0..4 {
        let point = sampler::random_point(&settings.space, &mut sampler::trial_rng(settings.seed, number));
        let mut config = doc.clone();
        let _ = settings.space.apply(&mut config, &point);
        let json = settings.space.to_json(&point);
        assert_eq!(settings.space.from_json(&json), Some(point));
    }
});
