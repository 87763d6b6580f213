//! `ember privacy epsilon`: Opacus 1.6.0's ε for its MNIST example's settings, by both
//! accountants, on the line the issue fixes; bad settings are one clear error.

mod common;

use common::{ember, fails_with, stderr, stdout};

fn epsilon(accountant: &str, sigma: &str, epochs: &str) -> String {
    let o = ember(&[
        "privacy",
        "epsilon",
        "--sample-rate",
        "0.004",
        "--noise-multiplier",
        sigma,
        "--epochs",
        epochs,
        "--delta",
        "1e-5",
        "--accountant",
        accountant,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn opacus_example_settings_give_opacus_epsilons() {
    for (accountant, expected) in [
        ("rdp", ["0.922", "2.503", "6.093"]),
        ("prv", ["0.844", "2.306", "5.442"]),
    ] {
        for ((sigma, epochs), want) in [("1.3", "15"), ("1.1", "60"), ("0.7", "45")]
            .into_iter()
            .zip(expected)
        {
            assert_eq!(
                epsilon(accountant, sigma, epochs),
                format!("epsilon: {want}\n")
            );
        }
    }
}

#[test]
fn bad_settings_are_one_line_errors() {
    let base = [
        "privacy",
        "epsilon",
        "--noise-multiplier",
        "1",
        "--epochs",
        "1",
    ];
    for (extra, says) in [
        (["--sample-rate", "0", "--delta", "1e-5"], "sampling rate"),
        (["--sample-rate", "1.5", "--delta", "1e-5"], "sampling rate"),
        (["--sample-rate", "0.01", "--delta", "0"], "delta"),
        (["--sample-rate", "0.01", "--delta", "NaN"], "delta"),
    ] {
        let args: Vec<&str> = base.iter().chain(&extra).copied().collect();
        fails_with(&args, &[says]);
    }
    fails_with(
        &[
            "privacy",
            "epsilon",
            "--sample-rate",
            "0.01",
            "--noise-multiplier=-1",
            "--epochs",
            "1",
            "--delta",
            "1e-5",
        ],
        &["noise multiplier"],
    );
}
