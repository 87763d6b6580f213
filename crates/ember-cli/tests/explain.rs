//! `ember explain` through the binary: a convnet trained on real MNIST digits (PNG files),
//! every image method with its JSON and heat maps, and a Titanic table model's rows and
//! permutation importance.

mod common;

use common::{data_dir, ember, fails_with, ok, repo_root, stderr, stdout, Scratch};
use serde_json::Value;

/// A JSON array of numbers.
fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON array of strings.
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

#[test]
fn images_are_explained_by_every_method_with_json_and_heat_maps() {
    let dir = Scratch::new("explain-images");
    let mnist = repo_root().join("data/mnist");
    let digits = dir.file("digits");
    ok(&[
        "data",
        "export-images",
        &mnist
            .join("t10k-images-idx3-ubyte.gz")
            .display()
            .to_string(),
        &mnist
            .join("t10k-labels-idx1-ubyte.gz")
            .display()
            .to_string(),
        "--output",
        &digits,
        "--limit",
        "1000",
    ]);
    let model = dir.file("cnn.safetensors");
    ok(&[
        "train",
        "models/digits-folder.toml",
        "--data",
        &digits,
        "--epochs",
        "4",
        "--output",
        &model,
    ]);
    let seven = format!("{digits}/7/00000.png");
    let maps = dir.file("maps");
    for method in ["saliency", "smoothgrad", "integrated-gradients", "grad-cam"] {
        let v = json(&[
            "explain", &model, &seven, "--method", method, "--json", "--output", &maps,
        ]);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{v}");
        let r = &results[0];
        assert_eq!(r["input"], seven.as_str());
        assert_eq!(r["target"], r["label"], "the predicted class by default");
        let attributions: Vec<f64> = numbers(&r["attributions"]);
        assert_eq!(attributions.len(), 784, "one per pixel");
        assert!(attributions.iter().any(|&a| a != 0.0), "{method}: all zero");
        let (score, baseline) = (
            r["score"].as_f64().unwrap(),
            r["baseline_score"].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&score) && (0.0..=1.0).contains(&baseline));
        if method == "integrated-gradients" {
            let sum: f64 = attributions.iter().sum();
            assert!(
                (sum - (score - baseline)).abs() <= 0.01 * (score - baseline).abs(),
                "{sum} vs {score} − {baseline}"
            );
        } else {
            assert!(
                attributions.iter().all(|&a| a >= 0.0),
                "{method}: magnitudes"
            );
        }
        let png = std::fs::read(format!("{maps}/00000.{method}.png")).unwrap();
        // The PNG's IHDR: the image beside its map, enlarged ten times.
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (2 * 280 + 8, 280));
    }
    // Another class on request, by name; a blurred baseline; the text form.
    let v = json(&[
        "explain",
        &model,
        &seven,
        "--target",
        "3",
        "--baseline",
        "blur",
        "--json",
    ]);
    assert_eq!(v["results"][0]["target"], "3");
    let text = ok(&["explain", &model, &seven, "--steps", "32"]);
    assert!(
        text.contains("label 7, target 7")
            && text.contains("attributions sum")
            && text.contains("strongest: ("),
        "{text}"
    );
    // The same seed gives the same SmoothGrad.
    let a = ok(&[
        "explain",
        &model,
        &seven,
        "--method",
        "smoothgrad",
        "--samples",
        "4",
        "--json",
    ]);
    assert_eq!(
        a,
        ok(&[
            "explain",
            &model,
            &seven,
            "--method",
            "smoothgrad",
            "--samples",
            "4",
            "--json"
        ])
    );
    // `ember predict --explain`: the predictions, then the explanations; one JSON object.
    let text = ok(&["predict", &model, &seven, "--explain", "saliency"]);
    assert!(
        text.contains("00000.png: 7")
            && text.contains("Explanations (saliency):")
            && text.contains("strongest: ("),
        "{text}"
    );
    let both = json(&["predict", &model, &seven, "--explain", "--json"]);
    assert_eq!(both["predictions"][0]["label"], "7", "{both}");
    let results = &both["explanations"]["results"];
    assert_eq!(results[0]["attributions"].as_array().unwrap().len(), 784);
    fails_with(&["predict", &model, "-", "--explain"], &["standard input"]);
    // A picture never replaces an input: x.png's map would be x.saliency.png, given too.
    let own = dir.file("own");
    std::fs::create_dir_all(&own).unwrap();
    let (x, map) = (format!("{own}/x.png"), format!("{own}/x.saliency.png"));
    std::fs::copy(&seven, &x).unwrap();
    std::fs::copy(&seven, &map).unwrap();
    let o = ember(&[
        "explain", &model, &x, &map, "--method", "saliency", "--output", &own,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("x.saliency.png"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&map).unwrap(), std::fs::read(&seven).unwrap());
    assert!(
        !std::path::Path::new(&format!("{own}/x.saliency.saliency.png")).exists(),
        "the clash is found before any picture is written"
    );
    // Two inputs of one name would share a picture: refused, nothing written.
    let (a, b, maps) = (dir.file("a"), dir.file("b"), dir.file("twin-maps"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(&seven, format!("{a}/digit.png")).unwrap();
    std::fs::copy(&seven, format!("{b}/digit.png")).unwrap();
    fails_with(
        &[
            "explain",
            &model,
            &format!("{a}/digit.png"),
            &format!("{b}/digit.png"),
            "--method",
            "saliency",
            "--output",
            &maps,
        ],
        &["would both be written to", "digit.saliency.png"],
    );
    assert!(!std::path::Path::new(&maps).exists(), "nothing written");
    // Clear errors.
    fails_with(
        &["explain", &model, &seven, "--method", "lime"],
        &["unknown method 'lime'"],
    );
    fails_with(
        &[
            "explain",
            &model,
            &seven,
            "--method",
            "smoothgrad",
            "--samples",
            "100000",
        ],
        &["10000 samples"],
    );
    fails_with(
        &["explain", &model, &seven, "--target", "cat"],
        &["--target 'cat'"],
    );
    fails_with(
        &["explain", &model, &seven, "--method", "permutation"],
        &["table model"],
    );
    fails_with(
        &[
            "explain", &model, &seven, "--layer", "nope", "--method", "grad-cam",
        ],
        &["nope"],
    );
    fails_with(&["explain", &model, &seven, "--steps", "0"], &["steps"]);
    fails_with(
        &["explain", &model, &seven, "--output", &seven],
        &["not a folder"],
    );
    fails_with(
        &["explain", &model, &format!("{digits}/missing.png")],
        &["missing.png"],
    );
    fails_with(&["explain", &model], &["inputs"]);
}

#[test]
fn table_rows_are_explained_per_column_and_columns_by_permutation() {
    let Some(data) = data_dir() else { return };
    let dir = Scratch::new("explain-table");
    let titanic = data.join("titanic/titanic.csv").display().to_string();
    let model = dir.file("titanic.safetensors");
    ok(&[
        "train", "--csv", &titanic, "--target", "Survived", "--output", &model,
    ]);
    let rows = dir.write(
        "passengers.csv",
        "PassengerId,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n\
         1,3,\"Braund, Mr. Owen Harris\",male,22,1,0,A/5 21171,7.25,,S\n\
         2,1,\"Cumings, Mrs. John Bradley\",female,38,1,0,PC 17599,71.2833,C85,C\n",
    );
    let v = json(&["explain", &model, &rows, "--json", "--target", "1"]);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let features: Vec<&str> = strings(&r["features"]);
        assert!(
            features.contains(&"Sex")
                && features.contains(&"Pclass")
                && !features.contains(&"Name"),
            "{features:?}"
        );
        let attributions: Vec<f64> = numbers(&r["attributions"]);
        assert_eq!(attributions.len(), features.len());
        let (score, baseline) = (
            r["score"].as_f64().unwrap(),
            r["baseline_score"].as_f64().unwrap(),
        );
        let sum: f64 = attributions.iter().sum();
        assert!(
            (sum - (score - baseline)).abs() <= 0.01 * (score - baseline).abs().max(1e-3),
            "{sum} vs {score} − {baseline}"
        );
        assert_eq!(r["target"], "1");
    }
    // Being a woman in first class raises the survival probability; a man in third, lowers it.
    let sex = |r: &Value| {
        let f = r["features"]
            .as_array()
            .unwrap()
            .iter()
            .position(|f| f == "Sex")
            .unwrap();
        r["attributions"][f].as_f64().unwrap()
    };
    assert!(sex(&results[0]) < 0.0 && sex(&results[1]) > 0.0, "{v}");
    // Shapley values: exact over the 7 columns used, adding up to the change exactly.
    let v = json(&[
        "explain", &model, &rows, "--method", "shap", "--json", "--target", "1",
    ]);
    for r in v["results"].as_array().unwrap() {
        let sum: f64 = numbers(&r["attributions"]).iter().sum();
        let change = r["score"].as_f64().unwrap() - r["baseline_score"].as_f64().unwrap();
        assert!((sum - change).abs() < 1e-5, "{sum} vs {change}");
    }
    let charts = dir.file("charts");
    let v = json(&[
        "explain",
        &model,
        "--method",
        "permutation",
        "--csv",
        &titanic,
        "--repeats",
        "3",
        "--json",
        "--output",
        &charts,
    ]);
    let importances = v["importances"].as_array().unwrap();
    assert_eq!(importances.len(), 11, "every column but the target");
    let top = importances
        .iter()
        .max_by(|a, b| {
            a["mean"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["mean"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(top["column"], "Sex", "{v}");
    assert!(
        std::fs::metadata(format!("{charts}/permutation-importance.png"))
            .unwrap()
            .len()
            > 1000
    );
    let o = ember(&[
        "explain",
        &model,
        "--method",
        "permutation",
        "--csv",
        &titanic,
        "--repeats",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Permutation importance on 891 rows"),
        "{}",
        stdout(&o)
    );
    // scikit-learn's scorers by name: the drop in ROC AUC, which Sex still leads.
    let v = json(&[
        "explain",
        &model,
        "--method",
        "permutation",
        "--csv",
        &titanic,
        "--repeats",
        "2",
        "--scoring",
        "roc_auc",
        "--json",
    ]);
    assert_eq!(v["scoring"], "roc_auc", "{v}");
    assert!(v["baseline"].as_f64().unwrap() > 0.8, "{v}");
    let top = v["importances"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["mean"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["mean"].as_f64().unwrap())
        })
        .unwrap()
        .clone();
    assert_eq!(top["column"], "Sex", "{v}");
    fails_with(
        &[
            "explain",
            &model,
            "--method",
            "permutation",
            "--csv",
            &titanic,
            "--scoring",
            "r2",
        ],
        &["scoring 'r2' is for regressions"],
    );
    fails_with(
        &[
            "explain",
            &model,
            "--method",
            "permutation",
            "--csv",
            &titanic,
            "--scoring",
            "auc",
        ],
        &["unknown scoring 'auc'", "roc_auc"],
    );
    fails_with(
        &["explain", &model, &rows, "--scoring", "roc_auc"],
        &["--scoring is for --method permutation"],
    );
    // Each setting belongs to some methods: elsewhere it is refused, not ignored.
    for (method, flag, value) in [
        ("shap", "--steps", "10"),
        ("integrated-gradients", "--samples", "10"),
        ("shap", "--layer", "dense"),
        ("integrated-gradients", "--repeats", "3"),
    ] {
        fails_with(
            &["explain", &model, &rows, "--method", method, flag, value],
            &[&format!("{flag} does nothing with --method {method}")],
        );
    }
    fails_with(
        &["explain", &model, "--method", "permutation"],
        &["--csv FILE"],
    );
    fails_with(
        &["explain", &model, &rows, "--method", "saliency"],
        &["integrated-gradients"],
    );
    fails_with(
        &["explain", &model, &rows, "--target", "2"],
        &["--target '2'"],
    );
}

#[test]
fn e_mails_are_explained_word_by_word_with_a_page() {
    let Some(data) = data_dir() else { return };
    let dir = Scratch::new("explain-text");
    let mail = data.join("spamassassin");
    let model = dir.file("spam.safetensors");
    ok(&[
        "train",
        "--text-dir",
        &mail.display().to_string(),
        "--email",
        "--class",
        "ham=easy-ham-1,easy-ham-2,hard-ham-1",
        "--class",
        "spam=spam-1,spam-2",
        "--output",
        &model,
    ]);
    let spam = mail
        .join("spam-1/00001.7848dde101aa985090474a91ec93fcf0.txt")
        .display()
        .to_string();
    let pages = dir.file("pages");
    let v = json(&["explain", &model, &spam, "--json", "--output", &pages]);
    let r = &v["results"][0];
    assert_eq!(
        (r["label"].as_str(), r["target"].as_str()),
        (Some("spam"), Some("spam"))
    );
    let words: Vec<&str> = strings(&r["features"]);
    let attributions: Vec<f64> = numbers(&r["attributions"]);
    assert_eq!(words.len(), attributions.len());
    // Completeness through the TF-IDF features, word by word.
    let (score, baseline) = (
        r["score"].as_f64().unwrap(),
        r["baseline_score"].as_f64().unwrap(),
    );
    let sum: f64 = attributions.iter().sum();
    assert!(
        (sum - (score - baseline)).abs() <= 0.01 * (score - baseline).abs(),
        "{sum} vs {score} − {baseline}"
    );
    // The strongest words for spam are spam's words.
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by(|&a, &b| attributions[b].total_cmp(&attributions[a]));
    let top: Vec<String> = order[..10]
        .iter()
        .map(|&i| words[i].to_lowercase())
        .collect();
    assert!(
        top.iter().any(
            |w| ["money", "investment", "financial", "dollars", "remove"].contains(&w.as_str())
        ),
        "{top:?}"
    );
    let page = std::fs::read_to_string(format!(
        "{pages}/00001.7848dde101aa985090474a91ec93fcf0.txt.integrated-gradients.html"
    ))
    .unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<span style=\"background:rgba("));
    // Occlusion, word by word; one score per word.
    let v = json(&["explain", &model, &spam, "--method", "occlusion", "--json"]);
    assert_eq!(
        v["results"][0]["attributions"].as_array().unwrap().len(),
        words.len()
    );
    fails_with(
        &["explain", &model, &spam, "--method", "grad-cam"],
        &["occlusion"],
    );
}

/// Occlusion through a frozen sentence encoder (all-MiniLM-L6-v2), on a classifier trained on
/// twenty SpamAssassin mails.
#[test]
fn occlusion_explains_a_frozen_encoder_classifier() {
    let (Some(data), Some(encoder)) = (data_dir(), common::encoder_dir()) else {
        return;
    };
    let dir = Scratch::new("explain-encoder");
    for (class, folder) in [("ham", "easy-ham-1"), ("spam", "spam-1")] {
        let target = dir.0.join("mail").join(class);
        std::fs::create_dir_all(&target).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(data.join("spamassassin").join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        files.sort();
        for f in &files[..10] {
            std::fs::copy(f, target.join(f.file_name().unwrap())).unwrap();
        }
    }
    let model = dir.file("spam.safetensors");
    ok(&[
        "train",
        "--text-dir",
        &dir.file("mail"),
        "--email",
        "--encoder",
        &encoder.display().to_string(),
        "--output",
        &model,
    ]);
    let note = dir.write(
        "note.eml",
        "Subject: Win money now\r\n\r\nClick here to claim your free prize!\r\n",
    );
    let v = json(&["explain", &model, &note, "--method", "occlusion", "--json"]);
    let r = &v["results"][0];
    let words: Vec<&str> = strings(&r["features"]);
    // The subject and the body, as the classifier reads e-mails.
    for w in ["Win", "money", "Click", "prize"] {
        assert!(words.contains(&w), "{words:?}");
    }
    let attributions = r["attributions"].as_array().unwrap();
    assert_eq!(attributions.len(), words.len());
    assert!(
        attributions.iter().any(|a| a.as_f64().unwrap() != 0.0),
        "{v}"
    );
    // The same answer twice (the encoder's features are cached, not changed).
    assert_eq!(
        v,
        json(&["explain", &model, &note, "--method", "occlusion", "--json"])
    );
    fails_with(&["explain", &model, &note], &["occlusion"]);
}
