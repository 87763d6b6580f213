//! The settings the training jobs share, checked before anything is read; errors name the
//! options as the command line gives them.

use crate::error::{Error, Result};

/// The flags of `flags` that are given (`true`), in order.
pub fn given(flags: &[(&'static str, bool)]) -> Vec<&'static str> {
    flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect()
}

/// Refuses the first of `flags` that is given (`true`): "FLAG `says`".
pub fn refuse_given(flags: &[(&'static str, bool)], says: &str) -> Result<()> {
    match given(flags).first() {
        Some(flag) => Err(Error::invalid(format!("{flag} {says}"))),
        None => Ok(()),
    }
}

/// Refuses the flags in `unused`, given but doing nothing when training `mode`, naming
/// the first and listing the others: no flag is accepted and ignored.
pub fn unused_flags(mode: &str, unused: &[&str]) -> Result<()> {
    does_nothing(&format!("when training {mode}"), "", unused)
}

/// Refuses the flags in `unused`, given but doing nothing `here` ("for a network model"),
/// saying `why` when it is not empty: "FLAG does nothing HERE (nor do …): WHY".
pub fn does_nothing(here: &str, why: &str, unused: &[&str]) -> Result<()> {
    let why = match why {
        "" => String::new(),
        why => format!(": {why}"),
    };
    match unused {
        [] => Ok(()),
        [flag] => Err(Error::invalid(format!("{flag} does nothing {here}{why}"))),
        [flag, rest @ ..] => Err(Error::invalid(format!(
            "{flag} does nothing {here} (nor do {}){why}",
            rest.join(", ")
        ))),
    }
}

/// The metrics `--metrics` names (comma-separated: accuracy, or none for no metric besides
/// the loss); `none` listed with another is an error.
pub fn metrics(names: &[String]) -> Result<Vec<crate::Metric>> {
    let none = names.iter().any(|n| n == "none");
    if none && names.len() > 1 {
        return Err(Error::invalid(
            "--metrics none means no metric: it cannot be listed with others",
        ));
    }
    Ok(match names.iter().any(|n| n == "accuracy") {
        true => vec![crate::Metric::Accuracy],
        false => Vec::new(),
    })
}

/// Refuses a learning rate that is not a positive number.
pub fn learning_rate(rate: Option<f32>) -> Result<()> {
    match rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        Some(rate) => Err(Error::invalid(format!(
            "--learning-rate must be a positive number, got {rate}"
        ))),
        None => Ok(()),
    }
}

/// Refuses a share of the training rows for validation outside [0, 1).
pub fn validation_split(split: Option<f32>) -> Result<()> {
    match split.filter(|s| !(0.0..1.0).contains(s)) {
        Some(split) => Err(Error::invalid(format!(
            "--validation-split must be in [0, 1), got {split}"
        ))),
        None => Ok(()),
    }
}

/// Refuses a share of the rows or documents held out for the test outside (0, 1).
pub fn test_size(size: f32) -> Result<()> {
    match size > 0.0 && size < 1.0 {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "--test-size must be in (0, 1), got {size}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_that_do_nothing_are_named() {
        assert!(unused_flags("a table", &[]).is_ok());
        let e = unused_flags("a table", &["--class"])
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("--class does nothing when training a table"),
            "{e}"
        );
        let e = unused_flags("x", &["--a", "--b", "--c"])
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("--a does nothing when training x (nor do --b, --c)"),
            "{e}"
        );
        let flags = [("--a", false), ("--b", true), ("--c", true)];
        assert_eq!(given(&flags), ["--b", "--c"]);
        let e = refuse_given(&flags, "is wrong here")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("--b is wrong here"), "{e}");
        assert!(refuse_given(&[("--a", false)], "no").is_ok());
        let e = does_nothing("for a network", "why", &["--csv", "--x"])
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("--csv does nothing for a network (nor do --x): why"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        assert!(learning_rate(None).is_ok() && learning_rate(Some(0.01)).is_ok());
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let message = learning_rate(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("--learning-rate must be a positive number"));
        }
        assert!(validation_split(Some(0.0)).is_ok() && validation_split(None).is_ok());
        for bad in [1.0, -0.1, f32::NAN] {
            let message = validation_split(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("--validation-split must be in [0, 1)"));
        }
        assert!(test_size(0.2).is_ok());
        for bad in [0.0, 1.0, f32::NAN] {
            let message = test_size(bad).unwrap_err().to_string();
            assert!(message.contains("--test-size must be in (0, 1)"));
        }
    }
}
