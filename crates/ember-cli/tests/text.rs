//! Text classifiers through the `ember` binary on the SpamAssassin corpus
//! (../shared/data/spamassassin, raw e-mails): stratified 20% test split, seeds 1–3, with
//! TF-IDF features and with frozen all-MiniLM-L6-v2 encoder states.

mod common;

use common::{data_dir, ok, Scratch};

/// Accuracy and spam F1 from `ember train --text-dir` output.
fn scores(out: &str) -> (f64, f64) {
    let accuracy = out
        .lines()
        .find_map(|l| l.strip_prefix("Test accuracy: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"));
    let spam_f1 = out
        .lines()
        .find(|l| l.starts_with("spam "))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no spam row in {out}"));
    (accuracy, spam_f1)
}

/// A spam message written for the tests (not from the corpus).
const SPAM_MAIL: &str = "Subject: Make $$$ fast - limited offer!!!\n\nEarn money from home. Click here now to claim your FREE prize, no credit card required. Remove me from this list.\n";

fn train_args<'a>(corpus: &'a str, seed: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--text-dir",
        corpus,
        "--class",
        "ham=easy-ham-1,easy-ham-2,hard-ham-1",
        "--class",
        "spam=spam-1,spam-2",
        "--email",
        "--seed",
        seed,
    ]
}

#[test]
fn tfidf_spam_filter_meets_the_bar_and_predicts_new_mail() {
    let Some(data) = data_dir() else { return };
    let corpus = data.join("spamassassin").display().to_string();
    let dir = Scratch::new("spam-tfidf");
    let model = dir.file("spam.safetensors");
    for seed in ["1", "2", "3"] {
        let mut args = train_args(&corpus, seed);
        if seed == "1" {
            args.extend(["--output", &model]);
        }
        let out = ok(&args);
        assert!(
            out.contains("6046 documents (ham 4150, spam 1896)"),
            "{out}"
        );
        assert!(out.contains("500 not valid UTF-8"), "{out}");
        let (accuracy, f1) = scores(&out);
        assert!(
            accuracy >= 0.98 && f1 >= 0.97,
            "seed {seed}: {accuracy} / {f1}"
        );
    }
    // New mail (written here, not from the corpus) is classified by the saved model.
    let spam = dir.write("offer.eml", SPAM_MAIL);
    let ham = dir.write(
        "meeting.eml",
        "Subject: Re: patch for the build script\n\nThanks, I applied your patch to the CVS tree and the build works again on Linux. Let's talk about the release at the meeting tomorrow.\n",
    );
    let out = ok(&["predict", &model, &spam, &ham]);
    assert!(out.contains("offer.eml: spam"), "{out}");
    assert!(out.contains("meeting.eml: ham"), "{out}");
}

#[test]
fn pretrained_embeddings_spam_filter_per_seed() {
    let Some(data) = data_dir() else { return };
    let Some(encoder) = common::encoder_dir() else {
        return;
    };
    let corpus = data.join("spamassassin").display().to_string();
    let encoder = encoder.display().to_string();
    let dir = Scratch::new("spam-minilm");
    let cache = dir.file("cache");
    let model = dir.file("spam.safetensors");
    for seed in ["1", "2", "3"] {
        let mut args = train_args(&corpus, seed);
        args.extend(["--encoder", &encoder, "--cache", &cache]);
        if seed == "1" {
            args.extend(["--output", &model]);
        }
        let out = ok(&args);
        let (accuracy, f1) = scores(&out);
        // Every layer's states pooled by mean and maximum, for the subject, the beginning
        // and the end: 3 × 7 × 2 × 384 features, classified by an exact softmax regression.
        assert!(
            out.contains("features: pretrained encoder states (16128 wide)"),
            "{out}"
        );
        assert!(out.contains("fitted a softmax regression"), "{out}");
        assert!(!out.contains("before converging"), "{out}");
        assert!(
            accuracy >= 0.985 && f1 >= 0.975,
            "seed {seed}: {accuracy} / {f1}"
        );
    }
    // A layer the encoder does not have is an error naming the option.
    let mut args = train_args(&corpus, "1");
    args.extend(["--encoder", &encoder, "--encoder-layers", "2,9"]);
    common::fails_with(&args, &["--encoder-layers 9", "0 (embeddings) to 6"]);
    // The second and third runs read every embedding from the cache.
    assert!(std::fs::read_dir(&cache).unwrap().count() == 1);
    let spam = dir.write("offer.eml", SPAM_MAIL);
    let out = ok(&["predict", &model, &spam, "--json"]);
    assert!(out.contains("\"label\": \"spam\""), "{out}");
}

#[test]
fn the_readme_faq_examples_find_their_answers() {
    let Some(encoder) = common::encoder_dir() else {
        return;
    };
    let dir = Scratch::new("faq");
    let index = dir.file("faq.index");
    let out = ok(&[
        "index",
        "data/faq/ember-faq.csv",
        "--encoder",
        &encoder.display().to_string(),
        "--output",
        &index,
    ]);
    assert!(out.contains("indexed 35 questions"), "{out}");
    for (query, expected) in [
        (
            "can I use my own pictures to train?",
            "How do I train on my own folder of images?",
        ),
        (
            "is it faster than pytorch?",
            "How fast is Ember compared with PyTorch?",
        ),
        (
            "my email filter for junk mail",
            "How do I build a spam filter from e-mails?",
        ),
        (
            "continue training after my laptop crashed",
            "How do I resume training after a crash?",
        ),
        (
            "what if a jpeg is corrupt",
            "What happens to images that cannot be read?",
        ),
    ] {
        let out = ok(&["ask", &index, query, "--top-k", "3"]);
        let first = out.lines().next().unwrap_or_default();
        assert!(first.ends_with(expected), "{query}: {out}");
    }
    // A damaged index is an error naming the file, not a panic.
    let broken = dir.write("broken.index", b"not an index");
    common::fails_with(&["ask", &broken, "hello"], &["broken.index"]);
    // An empty question has no answer.
    for empty in ["", "   "] {
        common::fails_with(&["ask", &index, empty], &["the question is empty"]);
    }
    // The index may not be its own input's output.
    common::fails_with(
        &[
            "index",
            "data/faq/ember-faq.csv",
            "--encoder",
            &encoder.display().to_string(),
            "--output",
            "data/faq/ember-faq.csv",
        ],
        &["ember-faq.csv", "is also an input"],
    );
}

#[test]
fn a_text_classifier_needs_two_classes() {
    let dir = Scratch::new("one-class");
    std::fs::create_dir(dir.path().join("ham")).unwrap();
    for i in 0..6 {
        dir.write(&format!("ham/{i}.txt"), format!("message number {i}"));
    }
    let folder = dir.path().display().to_string();
    common::fails_with(
        &["train", "--text-dir", &folder],
        &["at least two classes, got only 'ham'"],
    );
    std::fs::create_dir(dir.path().join("spam")).unwrap();
    dir.write("spam/0.txt", "buy now");
    common::fails_with(
        &[
            "train",
            "--text-dir",
            &folder,
            "--class",
            "a=ham",
            "--class",
            "b=spam,ham",
        ],
        &["ham", "in two classes, 'a' and 'b'"],
    );
}

#[test]
fn a_text_column_of_a_csv_trains_the_same_classifier() {
    let Some(data) = data_dir() else { return };
    use ember::text::{read_text_folder, ClassFolders};
    let groups = [
        ClassFolders::parse("ham=easy-ham-1,easy-ham-2,hard-ham-1").unwrap(),
        ClassFolders::parse("spam=spam-1,spam-2").unwrap(),
    ];
    let docs = read_text_folder(&data.join("spamassassin"), &groups, true).unwrap();
    // Every second message, as a table of (text, label).
    let dir = Scratch::new("spam-csv");
    let file = dir.file("mail.csv");
    let mut writer = csv::Writer::from_path(&file).unwrap();
    writer.write_record(["id", "text", "label"]).unwrap();
    for (i, (text, &label)) in docs.texts.iter().zip(&docs.labels).enumerate().step_by(2) {
        writer
            .write_record([&i.to_string(), text, &docs.classes[label]])
            .unwrap();
    }
    writer.flush().unwrap();
    let out = ok(&[
        "train",
        "--csv",
        &file,
        "--text-column",
        "text",
        "--target",
        "label",
    ]);
    assert!(out.contains("3023 documents (ham 2075, spam 948)"), "{out}");
    let (accuracy, f1) = scores(&out);
    assert!(accuracy >= 0.97 && f1 >= 0.95, "{accuracy} / {f1}");
    common::fails_with(
        &[
            "train",
            "--csv",
            &file,
            "--text-column",
            "body",
            "--target",
            "label",
        ],
        &["mail.csv", "no column 'body'", "columns: id, text, label"],
    );
}
