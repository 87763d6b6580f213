//! `ember privacy epsilon`: Opacus 1.6.0's ε for its MNIST example's settings, by both
//! accountants, on the line the issue fixes; bad settings are one clear error. Private
//! training through `ember train` (a model file's `[privacy]`, a table's `--dp-epsilon`): the
//! run ends with its guarantee, the saved model and `ember summary` keep it, `--resume` goes
//! on accounting, and `ember privacy audit` attacks the result.

mod common;

use common::{data_dir, ember, fails_with, last_line, ok, repo_root, stderr, stdout, Scratch};

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

/// A private MLP on the repository's MNIST: one epoch is ⌊60000 / 256⌋ = 234 steps at
/// q = 256 / 60000 with σ = 1.
fn private_mlp(extra_layer: &str) -> String {
    let mnist = repo_root().join("data/mnist").display().to_string();
    format!(
        r#"[model]
input_shape = [784]
{extra_layer}
[[layers]]
type = "dense"
units = 32
activation = "tanh"

[[layers]]
type = "dense"
units = 10
activation = "softmax"

[compile]
optimizer = {{ type = "sgd", learning_rate = 0.5, momentum = 0.9 }}
loss = "categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 1
batch_size = 256
seed = 3

[privacy]
max_grad_norm = 1.0
noise_multiplier = 1.0
delta = 1e-5

[data]
format = "mnist"
dir = "{mnist}"
scale = 255.0
flatten = true
one_hot = true
"#
    )
}

/// ε of `epochs` epochs of the private MLP, as `ember privacy epsilon` gives it.
fn mlp_epsilon(epochs: &str) -> f64 {
    let q = (256.0f64 / 60000.0).to_string();
    let line = ok(&[
        "privacy",
        "epsilon",
        "--sample-rate",
        &q,
        "--noise-multiplier",
        "1",
        "--epochs",
        epochs,
        "--delta",
        "1e-5",
    ]);
    line.trim()
        .strip_prefix("epsilon: ")
        .unwrap()
        .parse()
        .unwrap()
}

/// The ε of a line `Privacy: epsilon = X, delta = 1e-5`.
fn guarantee(line: &str) -> f64 {
    let rest = line
        .strip_prefix("Privacy: epsilon = ")
        .unwrap_or_else(|| panic!("{line}"));
    let (eps, delta) = rest.split_once(", delta = ").unwrap();
    assert_eq!(delta, "1e-5");
    assert_eq!(eps.split_once('.').unwrap().1.len(), 2, "{line}");
    eps.parse().unwrap()
}

#[test]
fn a_private_model_file_ends_with_its_guarantee_keeps_it_and_resumes_accounting() {
    let dir = Scratch::new("private-mlp");
    let file = dir.write("private.toml", private_mlp(""));
    let saved = dir.file("private.safetensors");
    let out = ok(&["train", &file, "--output", &saved, "--verbose", "0"]);
    let once = guarantee(last_line(&out));
    assert!((once - mlp_epsilon("1")).abs() <= 0.005, "{out}");
    let accuracy = out
        .lines()
        .find_map(|l| l.strip_prefix("Test accuracy: "))
        .unwrap();
    assert!(accuracy.parse::<f64>().unwrap() > 0.8, "{out}");
    // The saved model states it, with how it was trained.
    let summary = ok(&["summary", &saved]);
    assert!(summary.contains(last_line(&out)), "{summary}");
    assert!(
        summary.contains("234 steps at sampling rate 0.00427"),
        "{summary}"
    );
    // Resumed for a second epoch: 468 steps accounted, as one run of two epochs.
    let resumed = dir.file("resumed.safetensors");
    let out = ok(&[
        "train",
        "--resume",
        &saved,
        "--epochs",
        "2",
        "--output",
        &resumed,
        "--verbose",
        "0",
    ]);
    let twice = guarantee(last_line(&out));
    assert!((twice - mlp_epsilon("2")).abs() <= 0.005, "{out}");
    assert!(twice > once);
    assert!(ok(&["summary", &resumed]).contains("468 steps"));
    // The audit: a private model's training rows look like its test rows.
    let audit = ok(&["privacy", "audit", &resumed]);
    let auc: f64 = last_line(&audit)
        .strip_prefix("Membership inference AUC: ")
        .unwrap_or_else(|| panic!("{audit}"))
        .parse()
        .unwrap();
    assert!((0.45..=0.55).contains(&auc), "{audit}");
    assert!(audit.contains("Scored 10000 training rows"), "{audit}");
}

#[test]
fn what_private_training_cannot_do_is_refused_by_name() {
    let dir = Scratch::new("private-refusals");
    let batch_norm = "\n[[layers]]\ntype = \"batch_normalization\"\n";
    let file = dir.write("bn.toml", private_mlp(batch_norm));
    fails_with(
        &["train", &file],
        &["BatchNormalization", "LayerNormalization"],
    );
    let file = dir.write(
        "plain.toml",
        private_mlp("").replace("noise_multiplier = 1.0", ""),
    );
    fails_with(
        &["train", &file],
        &["privacy.noise_multiplier", "target_epsilon"],
    );
    // The audit attacks a network with a data set.
    let not_a_model = dir.write("x.safetensors", "not a model");
    fails_with(&["privacy", "audit", &not_a_model], &["x.safetensors"]);
    // The table flags belong to a table, and the two refinements to --dp-epsilon.
    let mlp = dir.write("mlp.toml", private_mlp(""));
    fails_with(&["train", &mlp, "--dp-epsilon", "1"], &["--dp-epsilon"]);
    let o = ember(&[
        "train",
        "--csv",
        "t.csv",
        "--target",
        "y",
        "--dp-delta",
        "1e-6",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--dp-epsilon"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_table_trains_privately_to_its_target_epsilon() {
    let Some(data) = data_dir() else { return };
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let out = ok(&[
        "train",
        "--csv",
        &titanic,
        "--target",
        "Survived",
        "--epochs",
        "30",
        "--dp-epsilon",
        "2",
        "--dp-max-grad-norm",
        "0.5",
    ]);
    let eps = guarantee(last_line(&out));
    assert!(eps <= 2.0 && eps > 0.5, "{out}");
    assert!(out.contains("Test accuracy: "), "{out}");
}
