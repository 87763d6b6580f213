//! No flag is accepted and ignored: a flag given where it does nothing (for the model's
//! kind, the method, the algorithm or the mode) is refused with a message naming it. Tiny
//! models, trained once for the whole file.

mod common;

use std::sync::OnceLock;

use common::{data_dir, fails_with, ok, repo_root, Scratch};

/// Models trained once for every test here, in a scratch folder.
struct Models {
    dir: Scratch,
    /// An MNIST MLP after one epoch.
    network: String,
    /// Iris, a table model.
    table: Option<String>,
    /// A TF-IDF classifier of two classes of tiny documents.
    text: String,
    /// A document of the text model's first class.
    document: String,
}

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = Scratch::new("flags-models");
        let network = dir.file("mlp.safetensors");
        ok(&[
            "train",
            "models/mnist-mlp.toml",
            "--epochs",
            "1",
            "-q",
            "--output",
            &network,
        ]);
        let table = data_dir().map(|data| {
            let out = dir.file("iris.safetensors");
            let iris = data.join("sklearn-toy/iris.csv").display().to_string();
            ok(&[
                "train",
                "--csv",
                &iris,
                "--skip-rows",
                "1",
                "--no-header",
                "--target",
                "last",
                "--epochs",
                "2",
                "--output",
                &out,
            ]);
            out
        });
        for (class, words) in [
            ("fruit", "apple banana cherry"),
            ("cars", "engine wheel road"),
        ] {
            std::fs::create_dir_all(dir.0.join("docs").join(class)).unwrap();
            for i in 0..12 {
                dir.write(&format!("docs/{class}/{i}.txt"), format!("{words} {i}"));
            }
        }
        let text = dir.file("text.safetensors");
        let docs = dir.file("docs");
        ok(&["train", "--text-dir", &docs, "--output", &text]);
        let document = dir.file("docs/fruit/0.txt");
        Models {
            dir,
            network,
            table,
            text,
            document,
        }
    })
}

fn digit() -> String {
    repo_root()
        .join("data/mnist/t10k-images-idx3-ubyte.gz")
        .display()
        .to_string()
}

#[test]
fn reading_options_are_refused_for_models_that_do_not_read_tables() {
    let m = models();
    let digit = digit();
    fails_with(
        &["predict", &m.network, &digit, "--skip-rows", "2"],
        &["--skip-rows does nothing", "a network model"],
    );
    fails_with(
        &["predict", &m.text, &m.document, "--no-header"],
        &["--no-header does nothing", "a text model"],
    );
    fails_with(
        &["explain", &m.text, &m.document, "--delimiter", ";"],
        &["--delimiter does nothing", "a text model"],
    );
    fails_with(
        &[
            "evaluate",
            &m.network,
            "--csv",
            &m.document,
            "--delimiter",
            ",",
        ],
        &[
            "--csv does nothing",
            "a network model",
            "nor do --delimiter",
        ],
    );
}

#[test]
fn evaluate_refuses_a_data_folder_for_a_table_model() {
    let m = models();
    let Some(table) = &m.table else { return };
    let csv = data_dir().unwrap().join("sklearn-toy/iris.csv");
    let csv = csv.display().to_string();
    let args = ["--skip-rows", "1", "--no-header", "--data", "data/mnist"];
    let mut all = vec!["evaluate", table.as_str(), "--csv", &csv];
    all.extend(args);
    fails_with(&all, &["--data does nothing", "a table model"]);
}

#[test]
fn a_text_model_shows_its_top_k_classes() {
    let m = models();
    let out = ok(&["predict", &m.text, &m.document, "--top-k", "2"]);
    assert!(out.contains(": fruit  (top: fruit "), "{out}");
    assert!(out.contains(", cars "), "two classes shown: {out}");
    let out = ok(&["predict", &m.text, &m.document, "--top-k", "1"]);
    assert!(!out.contains("cars"), "one class shown: {out}");
}

#[test]
fn explain_refuses_settings_of_other_methods_and_kinds() {
    let m = models();
    let digit = digit();
    fails_with(
        &[
            "explain", &m.network, &digit, "--method", "saliency", "--seed", "3",
        ],
        &["--seed does nothing with --method saliency"],
    );
    // A default value given explicitly is refused too: it was given.
    fails_with(
        &[
            "explain",
            &m.network,
            &digit,
            "--method",
            "saliency",
            "--baseline",
            "black",
        ],
        &["--baseline does nothing with --method saliency"],
    );
    fails_with(
        &[
            "explain",
            &m.network,
            &digit,
            "--method",
            "smoothgrad",
            "--repeats",
            "5",
        ],
        &["--repeats does nothing with --method smoothgrad"],
    );
    fails_with(
        &["explain", &m.text, &m.document, "--baseline", "blur"],
        &["--baseline does nothing", "a text model"],
    );
    let Some(table) = &m.table else { return };
    let rows = m
        .dir
        .write("rows.csv", "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n");
    fails_with(
        &["explain", table, &rows, "--no-header", "--blur-sigma", "2"],
        &["--blur-sigma does nothing", "a table model"],
    );
    let iris = data_dir().unwrap().join("sklearn-toy/iris.csv");
    let iris = iris.display().to_string();
    fails_with(
        &[
            "explain",
            table,
            "--method",
            "permutation",
            "--csv",
            &iris,
            "--skip-rows",
            "1",
            "--no-header",
            "--target",
            "1",
        ],
        &["--target does nothing with --method permutation"],
    );
}

#[test]
fn a_softmax_regression_refuses_epochs() {
    let m = models();
    let docs = m.dir.file("docs");
    fails_with(
        &[
            "train",
            "--text-dir",
            &docs,
            "--hidden",
            "0",
            "--epochs",
            "3",
        ],
        &["--epochs does nothing for a softmax regression"],
    );
}

#[test]
fn recommenders_refuse_settings_their_algorithm_does_not_use() {
    let dir = Scratch::new("flags-recommend");
    let ratings = dir.write("r.tsv", "1\t1\t5\n1\t2\t3\n2\t1\t4\n2\t3\t2\n3\t2\t5\n");
    let out = dir.file("r.rec");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "recommend",
            "train",
            "--ratings",
            &ratings,
            "--output",
            &out,
        ];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["--model", "als", "--lr", "0.1"],
            &["--lr does nothing for --model als"],
        ),
        (
            &["--model", "bpmf", "--reg", "0.1"],
            &["--reg does nothing for --model bpmf"],
        ),
        (
            &["--model", "mf", "--batch-size", "8", "--users", "u.user"],
            &["--batch-size does nothing for --model mf", "nor do --users"],
        ),
        (
            &["--model", "mf", "--confidence", "2"],
            &["--confidence does nothing for --model mf"],
        ),
        (
            &["--model", "bpr", "--implicit-feedback"],
            &["--implicit-feedback does nothing for --model bpr"],
        ),
        (
            &["--test", "r.tsv", "--validation-split", "0.2"],
            &["--validation-split does nothing with --test"],
        ),
        (
            &["--validation-split", "0", "-k", "5"],
            &["-k does nothing with --validation-split 0"],
        ),
        (
            &["--timestamp-column", "4"],
            &["--timestamp-column does nothing"],
        ),
    ];
    for (extra, needles) in cases {
        let args = train(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needles);
    }
    let args = train(&["--implicit", "--rating-column", "3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_with(&args, &["--rating-column does nothing with --implicit"]);
}

#[test]
fn greedy_decoding_refuses_sampling_settings() {
    // Refused before the model is read: no model is needed.
    fails_with(
        &[
            "generate",
            "--model",
            "absent.gguf",
            "--temperature",
            "0",
            "--top-k",
            "5",
            "hi",
        ],
        &["--top-k does nothing at --temperature 0"],
    );
    fails_with(
        &[
            "chat",
            "--model",
            "absent.gguf",
            "--temperature",
            "0",
            "--seed",
            "5",
        ],
        &["--seed does nothing at --temperature 0"],
    );
    fails_with(
        &[
            "ask",
            "absent.index",
            "hi",
            "--llm",
            "absent.gguf",
            "--seed",
            "5",
        ],
        &["--seed does nothing at --temperature 0"],
    );
}

#[test]
fn printing_a_model_file_and_benchmarks_refuse_flags_they_do_not_read() {
    fails_with(
        &[
            "train",
            "--image-dir",
            "data",
            "--print-model-file",
            "--threads",
            "2",
        ],
        &["--threads does nothing with --print-model-file"],
    );
    fails_with(
        &["bench", "conv", "--soak", "5", "--trials", "2"],
        &[
            "--trials does nothing for `ember bench conv`",
            "nor do --soak",
        ],
    );
}

/// A count flag out of range says its range as `--help` states it, never u64's whole range.
#[test]
fn count_flags_state_their_bounds() {
    for (args, range) in [
        (&["train", "--epochs", "0"][..], "1..=100000"),
        (&["train", "--batch-size", "0"], "1..=16777216"),
        (
            &["embed", "--encoder", "x", "--batch-size", "0", "hi"],
            "1..=65536",
        ),
        (&["ask", "index", "q", "--top-k", "0"], "1..=1000"),
        (
            &[
                "recommend",
                "split",
                "--ratings",
                "r",
                "--train",
                "a",
                "--test",
                "b",
                "--holdout",
                "0",
            ],
            "1..=1000000",
        ),
        (&["tune", "m.toml", "--jobs", "0"], "1..=1024"),
        (&["predict", "m", "x", "--top-k", "0"], "1..=1000000"),
        (&["predict", "m", "x", "--threads", "0"], "1..=1024"),
    ] {
        let out = common::ember(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(range), "{args:?}: {err}");
        assert!(!err.contains("18446744073709551615"), "{args:?}: {err}");
    }
}
