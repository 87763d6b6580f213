//! Text classifiers: `ember train --text-dir DIR` (one subfolder per class, one document per
//! file) on frozen pretrained encoder states (`--encoder DIR`) with an exact softmax
//! regression or, without an encoder, on TF-IDF features with an MLP; `ember predict MODEL
//! FILE…` on new documents.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::callbacks::EarlyStopping;
use ember::data::split::train_test_split;
use ember::data::StandardScaler;
use ember::prelude::*;
use ember::spec::{FitSpec, ModelSpec, TextSpec};
use ember::text::features::{embed_cached, encoder_key};
use ember::text::{
    read_text_folder, ClassFolders, Documents, SentenceEncoder, TextFeatures, TfIdf,
};
use ember::{io, Error, SoftmaxRegression};

#[derive(Args, Default)]
pub struct TextArgs {
    /// Train a text classifier on a folder: one subfolder per class, one document per file.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "resume", "checkpoint", "data", "csv"])]
    pub text_dir: Option<PathBuf>,
    /// With --csv FILE and --target T: train a text classifier on this column of the table.
    #[arg(long, value_name = "COLUMN", requires = "csv")]
    pub text_column: Option<String>,
    /// A class made of several subfolders: NAME=FOLDER[,FOLDER…] (repeat per class; default:
    /// each subfolder is a class).
    #[arg(long = "class", value_name = "NAME=FOLDERS")]
    pub classes: Vec<String>,
    /// The documents are e-mails: read the subject and the body text, not the headers.
    #[arg(long)]
    pub email: bool,
    /// A pretrained sentence encoder folder (all-MiniLM-L6-v2): classify its frozen token
    /// states (see --encoder-layers and --hidden). Without it: TF-IDF features.
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// With --encoder: the layers whose token states, pooled by mean and maximum, make the
    /// features (default: every layer, 0 = the embeddings to the last block).
    #[arg(
        long,
        value_name = "L,L,…",
        value_delimiter = ',',
        requires = "encoder"
    )]
    pub encoder_layers: Vec<usize>,
    /// Where embeddings are cached, by document content and encoder.
    #[arg(long, value_name = "DIR", default_value = ".ember-cache")]
    pub cache: PathBuf,
    /// TF-IDF vocabulary size.
    #[arg(long, default_value_t = 5000)]
    pub max_features: usize,
    /// Units of the classifier's hidden layer (an MLP trained with Adam and early
    /// stopping), or 0 for none: a softmax regression fitted exactly. Default: 0 on
    /// pretrained features, 64 on TF-IDF.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// L2 penalty on the classifier's kernels (Keras `kernel_regularizer=l2(F)`).
    /// Default: 1 / training documents for a softmax regression (scikit-learn's C = 1),
    /// none for an MLP.
    #[arg(long, value_name = "F")]
    pub l2: Option<f32>,
    /// Learning rate of the MLP classifier (Adam).
    #[arg(long, default_value_t = 0.001)]
    pub learning_rate: f32,
}

/// The training settings shared with `ember train`.
pub struct TrainText<'a> {
    pub dir: &'a Path,
    pub test_size: f32,
    pub seed: u64,
    pub epochs: Option<usize>,
    pub output: Option<&'a Path>,
}

/// Features of `texts` as a saved classifier's spec says (loading its encoder when needed),
/// standardized when it has a scaler.
fn featurize(spec: &TextSpec, texts: &[&str], cache: &Path) -> ember::Result<Tensor> {
    let x = match &spec.features {
        TextFeatures::Tfidf(tfidf) => tfidf.transform(texts)?,
        TextFeatures::Pretrained {
            encoder,
            encoder_key: key,
            layers,
        } => {
            let model = SentenceEncoder::load(encoder)?;
            let actual = encoder_key(&model)?;
            if &actual != key {
                return Err(Error::data(
                    encoder,
                    format!("this is not the encoder the classifier was trained with (weights {actual}, expected {key})"),
                ));
            }
            document_embeddings(&model, key, layers, texts, spec.email, cache)?
        }
    };
    match &spec.scaler {
        Some(scaler) => scaler.transform(&x),
        None => Ok(x),
    }
}

/// Characters from the end of a document that make its tail view.
const TAIL_CHARS: usize = 1500;

/// A document's pretrained features ([`embed_cached`]: pooled `layers`, or the sentence
/// embedding): of its beginning (the encoder reads the first 256 tokens) and of its last
/// characters, side by side; for an e-mail, its subject's first. Long
/// documents keep cues at both ends (a signature, a mailing list's footer, an unsubscribe
/// line) that one 256-token view misses, and a subject is a strong cue a long body dilutes.
fn document_embeddings(
    encoder: &SentenceEncoder,
    key: &str,
    layers: &[usize],
    texts: &[&str],
    email: bool,
    cache: &Path,
) -> ember::Result<Tensor> {
    let tails: Vec<&str> = texts
        .iter()
        .map(|t| {
            let start = t.char_indices().rev().nth(TAIL_CHARS).map_or(0, |(i, _)| i);
            &t[start..]
        })
        .collect();
    let mut views = Vec::new();
    if email {
        let subjects: Vec<&str> = texts
            .iter()
            .map(|t| t.lines().next().unwrap_or(""))
            .collect();
        views.push(embed_cached(encoder, key, layers, &subjects, Some(cache))?);
    }
    views.push(embed_cached(encoder, key, layers, texts, Some(cache))?);
    views.push(embed_cached(encoder, key, layers, &tails, Some(cache))?);
    let dim = views[0].row_len();
    let mut data = Vec::with_capacity(views.len() * texts.len() * dim);
    for row in 0..texts.len() {
        for view in &views {
            data.extend_from_slice(&view.data()[row * dim..(row + 1) * dim]);
        }
    }
    Tensor::new(&[texts.len(), views.len() * dim], data)
}

/// The encoder layers whose pooled states make a classifier's features: those asked for, or
/// every one, from the embeddings (0) to the last block.
fn encoder_layers(asked: &[usize], encoder: &SentenceEncoder) -> ember::Result<Vec<usize>> {
    let depth = encoder.encoder.config.num_hidden_layers;
    if let Some(&l) = asked.iter().find(|&&l| l > depth) {
        return Err(Error::invalid(format!(
            "--encoder-layers {l}: the encoder has layers 0 (embeddings) to {depth}"
        )));
    }
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    Ok((0..=depth).collect())
}

/// Documents from a CSV file: one per row, the text in `text_column`, the class in `target`
/// (classes sorted by name). A row without a class is an error naming its line.
pub fn read_csv_documents(
    file: &Path,
    text_column: &str,
    target: &str,
) -> ember::Result<Documents> {
    let mut reader = csv::Reader::from_path(file).map_err(|e| Error::data(file, e.to_string()))?;
    let headers = reader
        .byte_headers()
        .map_err(|e| Error::data(file, e.to_string()))?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let column = |name: &str| {
        names.iter().position(|h| h == name).ok_or_else(|| {
            Error::data(
                file,
                format!("no '{name}' column (the header is: {})", names.join(", ")),
            )
        })
    };
    let (t, c) = (column(text_column)?, column(target)?);
    let mut rows = Vec::new();
    let mut lossy = 0;
    for (n, record) in reader.byte_records().enumerate() {
        let record = record.map_err(|e| Error::data(file, e.to_string()))?;
        let line = record.position().map_or(n + 2, |p| p.line() as usize);
        let (Some(text), Some(class)) = (record.get(t), record.get(c)) else {
            return Err(Error::data(
                file,
                format!("line {line}: missing the text or the class"),
            ));
        };
        let class = String::from_utf8_lossy(class).trim().to_string();
        if class.is_empty() {
            return Err(Error::data(
                file,
                format!("line {line}: the class is empty"),
            ));
        }
        lossy += usize::from(std::str::from_utf8(text).is_err());
        rows.push((String::from_utf8_lossy(text).into_owned(), class));
    }
    let mut classes: Vec<String> = rows.iter().map(|(_, c)| c.clone()).collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::data(file, "a classifier needs at least two classes"));
    }
    Ok(Documents {
        labels: rows
            .iter()
            .map(|(_, c)| classes.binary_search(c).expect("collected above"))
            .collect(),
        files: vec![file.to_path_buf(); rows.len()],
        texts: rows.into_iter().map(|(t, _)| t).collect(),
        classes,
        lossy,
        unparsed: Vec::new(),
    })
}

pub fn train(args: &TextArgs, options: TrainText) -> ember::Result<()> {
    let groups: Vec<ClassFolders> = args
        .classes
        .iter()
        .map(|c| ClassFolders::parse(c))
        .collect::<ember::Result<_>>()?;
    let docs = read_text_folder(options.dir, &groups, args.email)?;
    train_documents(args, docs, options)
}

/// Trains, reports and saves a classifier on documents already read.
pub fn train_documents(args: &TextArgs, docs: Documents, options: TrainText) -> ember::Result<()> {
    let counts: Vec<String> = docs
        .classes
        .iter()
        .enumerate()
        .map(|(c, name)| format!("{name} {}", docs.labels.iter().filter(|&&l| l == c).count()))
        .collect();
    println!(
        "{}: {} documents ({}); {} not valid UTF-8 (decoded with replacement characters)",
        options.dir.display(),
        docs.texts.len(),
        counts.join(", "),
        docs.lossy
    );
    for (path, reason) in &docs.unparsed {
        eprintln!(
            "warning: {}: not a parsable e-mail ({reason}); read as plain text",
            path.display()
        );
    }
    let (train_rows, test_rows) = train_test_split(
        docs.texts.len(),
        Some(&docs.labels),
        options.test_size,
        options.seed,
    )?;
    let texts: Vec<&str> = docs.texts.iter().map(String::as_str).collect();
    let pick = |rows: &[usize]| -> Vec<&str> { rows.iter().map(|&r| texts[r]).collect() };
    let labels = |rows: &[usize]| {
        Tensor::new(
            &[rows.len()],
            rows.iter().map(|&r| docs.labels[r] as f32).collect(),
        )
    };

    let started = std::time::Instant::now();
    let (features, scaler, x_train, x_test) = match &args.encoder {
        Some(dir) => {
            let encoder = SentenceEncoder::load(dir)?;
            let key = encoder_key(&encoder)?;
            let layers = encoder_layers(&args.encoder_layers, &encoder)?;
            let all =
                document_embeddings(&encoder, &key, &layers, &texts, args.email, &args.cache)?;
            let features = TextFeatures::Pretrained {
                encoder: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
                encoder_key: key,
                layers,
            };
            let x_train = all.gather_rows(&train_rows)?;
            // Pooled states differ in scale from layer to layer: standardize them.
            let scaler = StandardScaler::fit(&x_train)?;
            (
                features,
                Some(scaler.clone()),
                scaler.transform(&x_train)?,
                scaler.transform(&all.gather_rows(&test_rows)?)?,
            )
        }
        None => {
            let tfidf = TfIdf::fit(&pick(&train_rows), args.max_features, 2);
            let (a, b) = (
                tfidf.transform(&pick(&train_rows))?,
                tfidf.transform(&pick(&test_rows))?,
            );
            (TextFeatures::Tfidf(tfidf), None, a, b)
        }
    };
    println!(
        "features: {} ({} wide) in {:.1}s; training on {}, testing on {} (seed {})",
        match &features {
            TextFeatures::Pretrained { .. } => "pretrained encoder states",
            TextFeatures::Tfidf(_) => "TF-IDF",
        },
        x_train.row_len(),
        started.elapsed().as_secs_f64(),
        train_rows.len(),
        test_rows.len(),
        options.seed
    );
    let (y_train, y_test) = (labels(&train_rows)?, labels(&test_rows)?);
    let pretrained = matches!(features, TextFeatures::Pretrained { .. });
    let fit = FitSpec {
        epochs: options.epochs.unwrap_or(40),
        batch_size: 32,
        validation_split: 0.1,
        seed: options.seed,
        ..FitSpec::default()
    };
    let (model, epochs) = match args.hidden.unwrap_or(if pretrained { 0 } else { 64 }) {
        0 => {
            // scikit-learn's LogisticRegression(C=1) for two classes.
            let l2 = args.l2.unwrap_or(1.0 / train_rows.len() as f32);
            let classes: Vec<usize> = train_rows.iter().map(|&r| docs.labels[r]).collect();
            let (model, minimum) =
                SoftmaxRegression::new(l2).fit(&x_train, &classes, docs.classes.len())?;
            println!(
                "fitted a softmax regression (l2 {l2:.3e}) in {} L-BFGS iterations{}",
                minimum.iterations,
                if minimum.converged {
                    ""
                } else {
                    " (stopped before converging)"
                }
            );
            (model, 0)
        }
        hidden => {
            let l2 = args.l2.unwrap_or(0.0);
            let mut model = Sequential::with_seed(&[x_train.row_len()], options.seed);
            model.add(
                Dense::new(hidden)
                    .activation(Activation::Relu)
                    .kernel_l2(l2),
            )?;
            model.add(Dropout::new(0.3))?;
            model.add(
                Dense::new(docs.classes.len())
                    .activation(Activation::Softmax)
                    .kernel_l2(l2),
            )?;
            model.compile(
                Adam::new(args.learning_rate),
                Loss::SparseCategoricalCrossentropy,
                &[Metric::Accuracy],
            )?;
            let mut stop = EarlyStopping::new("val_loss", 4).restore_best_weights(true);
            let fit_options = FitOptions {
                verbose: Verbosity::Silent,
                ..fit.options()
            };
            let history =
                model.fit_with_callbacks(&x_train, &y_train, &fit_options, &mut [&mut stop])?;
            println!("trained {} epochs", history.epochs.len());
            (model, history.epochs.len())
        }
    };
    if let Some(path) = options.output {
        let mut spec = ModelSpec::from_model(&model, fit, None)?;
        spec.text = Some(TextSpec {
            classes: docs.classes.clone(),
            email: args.email,
            features,
            scaler,
        });
        io::save(path, &model, &spec, epochs)?;
        println!("Saved the model to {}", path.display());
    }
    let assessment = model.assess(&x_test, &y_test, 256, 1)?;
    super::print_named_assessment(&assessment, &docs.classes);
    Ok(())
}

/// `ember predict` for a text classifier: each input file (or every file in an input
/// folder) is one document.
pub fn predict(
    model: Model,
    spec: TextSpec,
    inputs: &[PathBuf],
    cache: &Path,
    json: bool,
) -> ember::Result<()> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(input.clone());
        }
    }
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let text = if spec.email {
            ember::text::documents::email_text(&bytes)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        texts.push(text);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let x = featurize(&spec, &refs, cache)?;
    let outputs = model.predict(&x, 256)?;
    let width = outputs.row_len();
    let mut records = Vec::new();
    for (file, row) in files.iter().zip(outputs.data().chunks(width)) {
        let best = (0..width)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        if json {
            records.push(serde_json::json!({
                "input": file.display().to_string(),
                "class": spec.classes[best],
                "probability": row[best],
            }));
        } else {
            println!(
                "{}: {} ({:.4})",
                file.display(),
                spec.classes[best],
                row[best]
            );
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    }
    Ok(())
}
