//! `ember recommend` end to end on MovieLens 100K (read from the shared data, never
//! committed): the cross-validated RMSE against Surprise's published figures, every model
//! above popularity on a seeded leave-10-out split, the fixed output lines, top-k lists,
//! explanations, cold start, reproducibility and the errors bad files get.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use common::{ember, fails_with, ok, Scratch};

fn movielens() -> Option<PathBuf> {
    let dir = common::data_dir()?.join("movielens-100k");
    if dir.join("u.data").is_file() {
        Some(dir)
    } else {
        common::missing(&format!("no MovieLens 100K at {}", dir.display()));
        None
    }
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The number after `label` on the first line that starts with it.
fn figure(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' line in:\n{out}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.trim_end_matches([')', ',', ';']).parse().ok())
        .unwrap_or_else(|| panic!("no number after '{label}' in '{line}'"))
}

/// The popularity baseline's figure `label` (`Precision@10:`) from a report.
fn popularity(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("popularity"))
        .unwrap_or_else(|| panic!("no popularity line in:\n{out}"));
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label} in '{line}'"));
    line[at + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label} in '{line}'"))
}

/// The seeded leave-10-out split of u.data (as ua.base / ua.test were made).
fn split(dir: &std::path::Path, scratch: &Scratch, seed: &str) -> (String, String) {
    let (train, test) = (scratch.file("train.tsv"), scratch.file("test.tsv"));
    let u_data = path(&dir.join("u.data"));
    let out = ok(&[
        "recommend",
        "split",
        "--ratings",
        &u_data,
        "--holdout",
        "10",
        "--seed",
        seed,
        "--train",
        &train,
        "--test",
        &test,
    ]);
    assert!(
        out.contains("90570 ratings to") && out.contains("9430 (10 per user)"),
        "{out}"
    );
    (train, test)
}

#[test]
fn five_fold_cross_validation_on_u_data_beats_surprises_published_rmse() {
    let Some(dir) = movielens() else { return };
    let u_data = path(&dir.join("u.data"));
    let cv = |model: &str| {
        ok(&[
            "recommend",
            "cv",
            "--ratings",
            &u_data,
            "--folds",
            "5",
            "--model",
            model,
        ])
    };
    // BPMF: below Surprise's SVD (0.934), SVD++ (0.920) and KNNBaseline (0.931) on the
    // same protocol, and below the 0.905.
    let bpmf = cv("bpmf");
    assert!(
        bpmf.contains("100000 ratings of 943 users on 1682 items"),
        "{bpmf}"
    );
    let rmse = figure(&bpmf, "CV RMSE:");
    assert!(rmse <= 0.905, "BPMF 5-fold RMSE {rmse}\n{bpmf}");
    // MF with Surprise's SVD defaults lands where Surprise's SVD does (0.934 published,
    // 0.935 measured with its KFold), and SVD++ below it (0.920 published).
    let mf = figure(&cv("mf"), "CV RMSE:");
    assert!((0.925..=0.945).contains(&mf), "MF 5-fold RMSE {mf}");
    let svdpp = figure(&cv("svdpp"), "CV RMSE:");
    assert!(
        svdpp < mf - 0.005 && svdpp <= 0.925,
        "SVD++ {svdpp} against MF {mf}"
    );
    // The bias baseline is reported beside it (Surprise's BaselineOnly: 0.944 measured),
    // and beaten by far.
    let biases = figure(&bpmf, "CV RMSE (biases):");
    assert!((0.935..0.955).contains(&biases), "{bpmf}");
    assert!(biases > rmse + 0.03, "biases {biases}, BPMF {rmse}");
}

#[test]
fn on_a_leave_ten_out_split_every_model_ranks_well_above_popularity() {
    let Some(dir) = movielens() else { return };
    let scratch = Scratch::new("recommend-implicit");
    let (train, test) = split(&dir, &scratch, "1");
    let (users, items) = (path(&dir.join("u.user")), path(&dir.join("ml-100k.item")));
    for model in ["mf", "svdpp", "als", "bpmf", "bpr", "warp", "two-tower"] {
        let output = scratch.file(&format!("{model}.rec"));
        let mut args = vec![
            "recommend",
            "train",
            "--ratings",
            &train,
            "--test",
            &test,
            "--model",
            model,
            "--items",
            &items,
            "--output",
            &output,
        ];
        // Each takes only the settings it uses: the rating models are told to rank liked
        // pairs, the two towers get the users' features.
        match model {
            "bpr" | "warp" => {}
            "two-tower" => args.extend(["--users", users.as_str()]),
            _ => args.push("--implicit-feedback"),
        }
        let out = ok(&args);
        assert!(out.contains("ranking 937 users"), "{out}");
        let precision = figure(&out, "Precision@10:");
        let ndcg = figure(&out, "NDCG@10:");
        let (pop_precision, pop_ndcg) = (
            popularity(&out, "Precision@10:"),
            popularity(&out, "NDCG@10:"),
        );
        // Popularity sits near 0.077; every model at least 1.5 times that, and above
        // LightFM WARP's published precision@10 of about 0.11.
        assert!((0.07..0.09).contains(&pop_precision), "{out}");
        assert!(
            precision >= 1.5 * pop_precision && ndcg >= 1.5 * pop_ndcg && precision > 0.11,
            "{model}: precision@10 {precision}, NDCG@10 {ndcg} against popularity \
             {pop_precision}, {pop_ndcg}\n{out}"
        );
        // Implicit models report no rating errors (the bias baseline still does).
        assert!(!out.contains("\nTest RMSE"), "{out}");
    }
}

#[test]
fn evaluate_prints_the_fixed_lines_in_order_and_agrees_with_train() {
    let Some(dir) = movielens() else { return };
    let scratch = Scratch::new("recommend-evaluate");
    let (train, test) = split(&dir, &scratch, "1");
    let model = scratch.file("mf.rec");
    let trained = ok(&[
        "recommend",
        "train",
        "--ratings",
        &train,
        "--test",
        &test,
        "--model",
        "mf",
        "--output",
        &model,
    ]);
    // `ember summary` says what the saved recommender holds, as the server's model list does.
    let summary = ok(&["summary", &model]);
    assert!(
        summary.contains("mf recommender: ") && summary.contains("predicts ratings from 1 to 5"),
        "{summary}"
    );
    let out = ok(&["recommend", "evaluate", &model, "--ratings", &test]);
    let labels = [
        "Test RMSE: ",
        "Test MAE: ",
        "Precision@10: ",
        "Recall@10: ",
        "NDCG@10: ",
        "MAP@10: ",
        "Hit rate@10: ",
        "AUC: ",
    ];
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| labels.iter().any(|p| l.starts_with(p)))
        .collect();
    assert_eq!(lines.len(), labels.len(), "{out}");
    for (line, label) in lines.iter().zip(labels) {
        assert!(
            line.starts_with(label),
            "'{line}' should start with '{label}'"
        );
        let value: f64 = line[label.len()..]
            .parse()
            .unwrap_or_else(|_| panic!("{line}"));
        assert!(value.is_finite() && value >= 0.0, "{line}");
        assert_eq!(
            figure(&trained, label.trim_end()),
            value,
            "{label} differs from train"
        );
    }
    let rmse = figure(&out, "Test RMSE:");
    assert!((0.85..0.97).contains(&rmse), "{out}");
    // Evaluating on the training data is flagged.
    let out = ok(&["recommend", "evaluate", &model, "--ratings", &train]);
    assert!(
        out.contains("warning: 90570 test rows are (user, item) pairs of the training data"),
        "{out}"
    );
    // -k changes the cut-off in the labels.
    let at5 = ok(&[
        "recommend",
        "evaluate",
        &model,
        "--ratings",
        &test,
        "-k",
        "5",
    ]);
    assert!(
        at5.contains("\nPrecision@5: ") && at5.contains("\nNDCG@5: "),
        "{at5}"
    );
    // A ranking model has no rating lines.
    let bpr = scratch.file("bpr.rec");
    ok(&[
        "recommend",
        "train",
        "--ratings",
        &train,
        "--model",
        "bpr",
        "--output",
        &bpr,
    ]);
    let out = ok(&["recommend", "evaluate", &bpr, "--ratings", &test]);
    assert!(
        !out.contains("\nTest RMSE") && out.contains("\nPrecision@10: "),
        "{out}"
    );
}

/// Each user's items in a u.data-layout file, with ratings.
fn ratings_by_user(file: &std::path::Path) -> HashMap<String, Vec<(String, f64)>> {
    let mut out: HashMap<String, Vec<(String, f64)>> = HashMap::new();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        out.entry(f[0].into())
            .or_default()
            .push((f[1].into(), f[2].parse().unwrap()));
    }
    out
}

#[test]
fn top_lists_exclude_seen_items_explain_themselves_and_fall_back_for_unknown_users() {
    let Some(dir) = movielens() else { return };
    let scratch = Scratch::new("recommend-top");
    let model = scratch.file("bpmf.rec");
    let items = path(&dir.join("ml-100k.item"));
    let u_data = path(&dir.join("u.data"));
    ok(&[
        "recommend",
        "train",
        "--ratings",
        &u_data,
        "--model",
        "bpmf",
        "--items",
        &items,
        "--validation-split",
        "0",
        "--output",
        &model,
    ]);
    let seen = ratings_by_user(&dir.join("u.data"));
    let json = ok(&[
        "recommend",
        "top",
        &model,
        "--user",
        "196",
        "-k",
        "10",
        "--json",
        "--explain",
    ]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(list["fallback"].is_null(), "{json}");
    let entries = list["items"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    let rated: HashSet<&str> = seen["196"].iter().map(|(i, _)| i.as_str()).collect();
    let liked: HashSet<&str> = seen["196"]
        .iter()
        .filter(|(_, r)| *r >= 4.0)
        .map(|(i, _)| i.as_str())
        .collect();
    let titles = std::fs::read_to_string(dir.join("ml-100k.item")).unwrap();
    let title_of: HashMap<&str, &str> = titles
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], f[1])
        })
        .collect();
    let liked_titles: HashSet<&str> = liked.iter().map(|i| title_of[i]).collect();
    let mut previous = f64::INFINITY;
    for e in entries {
        let item = e["item"].as_str().unwrap();
        assert!(!rated.contains(item), "user 196 already rated {item}");
        assert_eq!(e["title"].as_str(), Some(title_of[item]));
        // Predicted ratings on the 1–5 scale, best first.
        let score = e["score"].as_f64().unwrap();
        assert!((1.0..=5.0).contains(&score) && score <= previous, "{json}");
        previous = score;
        // "Because you liked": items user 196 rated 4 or 5.
        let because = e["because"].as_array().unwrap();
        assert!(!because.is_empty(), "{json}");
        for b in because {
            let name = b[0].as_str().unwrap();
            assert!(
                liked_titles.contains(name),
                "{name} is not one user 196 liked"
            );
        }
    }
    let text = ok(&[
        "recommend",
        "top",
        &model,
        "--user",
        "196",
        "-k",
        "3",
        "--explain",
    ]);
    assert!(
        text.contains("Top 3 for user 196 (bpmf):") && text.contains("because you liked"),
        "{text}"
    );
    // An unknown user gets the most liked movies, and is told so: Star Wars first (item 50,
    // liked by 452 users).
    let out = ok(&[
        "recommend",
        "top",
        &model,
        "--user",
        "no-such-user",
        "-k",
        "3",
    ]);
    assert!(
        out.contains(
            "note: user 'no-such-user' is not in the training data: the most popular items"
        ),
        "{out}"
    );
    assert!(out.contains("1. Star Wars (item 50)"), "{out}");
    // The closest movies to Star Wars include its sequels.
    let out = ok(&["recommend", "similar", &model, "--item", "50", "-k", "5"]);
    assert!(out.starts_with("Closest to Star Wars (bpmf):"), "{out}");
    assert!(
        out.contains("Empire Strikes Back") || out.contains("Return of the Jedi"),
        "{out}"
    );
    fails_with(
        &["recommend", "similar", &model, "--item", "99999"],
        &["item '99999' is not in the model's 1682 items"],
    );
}

#[test]
fn the_two_tower_model_recommends_to_users_it_knows_only_from_their_features() {
    let Some(dir) = movielens() else { return };
    let scratch = Scratch::new("recommend-cold");
    let data = std::fs::read_to_string(dir.join("u.data")).unwrap();
    // Users 1–50 have no ratings in training; their ratings are the test set.
    let (mut warm, mut cold) = (String::new(), String::new());
    for line in data.lines() {
        let user: u32 = line.split('\t').next().unwrap().parse().unwrap();
        let target = if user <= 50 { &mut cold } else { &mut warm };
        target.push_str(line);
        target.push('\n');
    }
    let (train, test) = (
        scratch.write("warm.tsv", warm),
        scratch.write("cold.tsv", cold),
    );
    let model = scratch.file("tt.rec");
    let (users, items) = (path(&dir.join("u.user")), path(&dir.join("ml-100k.item")));
    let out = ok(&[
        "recommend",
        "train",
        "--ratings",
        &train,
        "--test",
        &test,
        "--model",
        "two-tower",
        "--users",
        &users,
        "--items",
        &items,
        "--output",
        &model,
    ]);
    assert!(out.contains("u.user: 943 users; column 2: number; column 3: 2 categories; column 4: 21 categories; column 5: not used (795 distinct values)"), "{out}");
    assert!(
        out.contains(
            "release_year: number (2 cells not numbers, read as missing); class: 19 tokens"
        ),
        "{out}"
    );
    // All 50 cold users are ranked (none skipped as unknown), far above chance (about
    // 0.03: some 50 liked movies among 1,682).
    assert!(
        out.contains("ranking 50 users") && out.contains("0 unknown users skipped"),
        "{out}"
    );
    let precision = figure(&out, "Precision@10:");
    assert!(
        precision > 0.2,
        "cold-start precision@10 {precision}\n{out}"
    );
    let top = ok(&["recommend", "top", &model, "--user", "7", "-k", "5"]);
    assert!(
        top.contains(
            "user '7' has no ratings in the training data: recommended from their features"
        ),
        "{top}"
    );
}

#[test]
fn the_same_seed_gives_the_same_model_and_the_same_split() {
    let Some(dir) = movielens() else { return };
    let scratch = Scratch::new("recommend-seed");
    let u_data = path(&dir.join("u.data"));
    let train = |seed: &str, name: &str, model: &str| {
        let output = scratch.file(name);
        ok(&[
            "recommend",
            "train",
            "--ratings",
            &u_data,
            "--model",
            model,
            "--seed",
            seed,
            "--output",
            &output,
        ]);
        std::fs::read(&output).unwrap()
    };
    for model in ["mf", "bpmf", "warp"] {
        let a = train("3", "a.rec", model);
        assert_eq!(
            a,
            train("3", "b.rec", model),
            "{model}: same seed, other bytes"
        );
        assert_ne!(
            a,
            train("4", "c.rec", model),
            "{model}: another seed, same bytes"
        );
    }
    let first = split(&dir, &scratch, "1");
    let (train1, test1) = (
        std::fs::read(&first.0).unwrap(),
        std::fs::read(&first.1).unwrap(),
    );
    let again = split(&dir, &scratch, "1");
    assert_eq!(
        (train1, test1),
        (
            std::fs::read(again.0).unwrap(),
            std::fs::read(&again.1).unwrap()
        )
    );
    // Every user has exactly 10 held-out ratings.
    let held = ratings_by_user(std::path::Path::new(&first.1));
    assert_eq!(held.len(), 943);
    assert!(held.values().all(|r| r.len() == 10));
}

#[test]
fn bad_ratings_files_models_and_outputs_are_clear_errors() {
    let scratch = Scratch::new("recommend-errors");
    let model = scratch.file("m.rec");
    let train = |file: &str, extra: &[&str], needles: &[&str]| {
        let mut args = vec!["recommend", "train", "--ratings", file, "--output", &model];
        args.extend_from_slice(extra);
        fails_with(&args, needles);
    };
    let dup = scratch.write("dup.tsv", "1\t1\t4\n1\t2\t3\n1\t1\t5\n");
    train(
        &dup,
        &[],
        &["dup.tsv: line 3: user '1' and item '1' again (first on line 1)"],
    );
    let text = scratch.write("text.tsv", "1\t1\t4\n1\t2\tgood\n");
    train(
        &text,
        &[],
        &["text.tsv: line 2: rating 'good' is not a number"],
    );
    let range = scratch.write("range.tsv", "1\t1\t4\n2\t2\t7\n");
    train(
        &range,
        &["--rating-range", "1,5"],
        &["range.tsv: line 2: rating 7 is outside the declared range 1..5"],
    );
    let commas = scratch.write("commas.csv", ",,,\n\"\",\n");
    train(&commas, &[], &["commas.csv: is empty"]);
    let unrated = scratch.write("unrated.csv", "user,item\na,x\nb,y\n");
    train(
        &unrated,
        &[],
        &["unrated.csv: no rating column", "--implicit"],
    );
    let empty = scratch.write("empty.tsv", "");
    train(&empty, &[], &["empty.tsv: is empty"]);
    let header = scratch.write("header.csv", "user,item,rating,timestamp\n");
    train(&header, &[], &["header.csv: line 1: a header and no rows"]);
    let named = scratch.write("named.csv", "who,what,stars\na,x,4\n");
    train(
        &named,
        &["--user-column", "customer"],
        &["no user column 'customer' (the header has: who, what, stars)"],
    );
    fails_with(
        &["recommend", "train", "--ratings", &dup, "--output", &dup],
        &["dup.tsv"],
    );
    assert_eq!(
        std::fs::read_to_string(&dup).unwrap(),
        "1\t1\t4\n1\t2\t3\n1\t1\t5\n",
        "the input survived"
    );
    train(
        &dup,
        &["--model", "als", "--reg", "0"],
        &["ALS needs --reg above 0"],
    );
    train(
        &dup,
        &["--factors", "0"],
        &["--factors must be in 1..=4096"],
    );
    let out = ember(&[
        "recommend",
        "train",
        "--ratings",
        &dup,
        "--output",
        &model,
        "--model",
        "svd",
    ]);
    assert!(!out.status.success() && common::stderr(&out).contains("svd"));
    // Kept once and counted, never silently.
    let out = ok(&[
        "recommend",
        "train",
        "--ratings",
        &dup,
        "--duplicates",
        "last",
        "--validation-split",
        "0",
        "--output",
        &model,
    ]);
    assert!(
        out.contains("dup.tsv: 1 repeated (user, item) rows dropped (--duplicates last)"),
        "{out}"
    );
    let bad = scratch.write("bad.tsv", "1\t1\t4\n1\t2\tgood\n2\t1\t3\n2\t2\n");
    let out = ok(&[
        "recommend",
        "train",
        "--ratings",
        &bad,
        "--drop-bad-rows",
        "--validation-split",
        "0",
        "--output",
        &model,
    ]);
    assert!(out.contains("bad.tsv: 2 bad rows dropped, first: line 2: rating 'good' is not a number; line 4: has 2 fields, 3 needed"), "{out}");
    // A test set with nothing in common with the model is an error, not figures of 0.
    let strangers = scratch.write("strangers.tsv", "9\t9\t4\n8\t8\t5\n");
    fails_with(
        &["recommend", "evaluate", &model, "--ratings", &strangers],
        &["strangers.tsv: none of its 2 rows has a user and an item the model knows"],
    );
    let unranked = scratch.write("unranked.tsv", "9\t1\t4\n8\t2\t5\n1\t1\t1\n");
    fails_with(
        &["recommend", "evaluate", &model, "--ratings", &unranked],
        &["unranked.tsv: no user can be ranked: 2 of its users are unknown to the model and 1 have no relevant item (rating >= 4)"],
    );
    fails_with(
        &["recommend", "evaluate", &model, "--ratings", "/dev/zero"],
        &["/dev/zero: is a character device, not a file"],
    );
    // Damaged or foreign model files.
    let bytes = std::fs::read(&model).unwrap();
    let cut = scratch.write("cut.rec", &bytes[..bytes.len() / 2]);
    fails_with(
        &["recommend", "top", &cut, "--user", "1"],
        &["cut.rec", "not a recommender file"],
    );
    let foreign = scratch.write("foreign.rec", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ");
    fails_with(
        &["recommend", "top", &foreign, "--user", "1"],
        &["foreign.rec"],
    );
    fails_with(
        &[
            "recommend",
            "top",
            &scratch.file("absent.rec"),
            "--user",
            "1",
        ],
        &["absent.rec"],
    );
    let out = ember(&["recommend", "top", &model, "--user", "1", "-k", "0"]);
    assert!(!out.status.success() && common::stderr(&out).contains("0 is not in 1..=10000"));
}

#[test]
fn cross_validation_writes_its_figures_as_ember_cv_does() {
    let scratch = Scratch::new("recommend-cv-lines");
    let mut csv = String::from("user,item,rating\n");
    for user in 0..30 {
        for item in 0..12 {
            if (user + item) % 3 != 0 {
                csv += &format!("{user},{item},{}\n", 1 + (user * 7 + item * 3) % 5);
            }
        }
    }
    let ratings = scratch.write("ratings.csv", csv);
    let out = ok(&[
        "recommend",
        "cv",
        "--ratings",
        &ratings,
        "--folds",
        "3",
        "--model",
        "mf",
    ]);
    assert!(out.lines().any(|l| l.starts_with("Fold 1: RMSE ")), "{out}");
    // `CV NAME: mean ± std`, four decimals each, as `ember cv` writes a figure over folds.
    let figures: Vec<&str> = out.lines().filter(|l| l.starts_with("CV ")).collect();
    assert_eq!(figures.len(), 6, "{out}");
    for line in &figures {
        let (_, numbers) = line.rsplit_once(": ").unwrap();
        let (mean, std) = numbers
            .split_once(" ± ")
            .unwrap_or_else(|| panic!("{line}"));
        for v in [mean, std] {
            let decimals = v.split_once('.').map(|(_, d)| d.len());
            assert_eq!(decimals, Some(4), "{line}");
        }
    }
    assert!(figures[0].starts_with("CV RMSE: "), "{out}");
    assert!(
        figures.iter().any(|l| l.starts_with("CV RMSE (biases): ")),
        "{out}"
    );
    assert!(!out.contains("Mean ") && !out.contains("(std "), "{out}");
}
