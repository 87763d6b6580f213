//! Text classifiers: `ember train --text-dir DIR` (one subfolder per class, one document per
//! file) on frozen pretrained encoder states (`--encoder DIR`) with an exact softmax
//! regression or, without an encoder, on TF-IDF features with an MLP; `ember predict MODEL
//! FILE…` on new documents.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::jobs::train_text::{train_text, TextSource};
use ember::text::{ClassFolders, TextTraining};

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
    /// With --encoder: where embeddings are cached, by document content and encoder
    /// (default: .ember-cache).
    #[arg(long, value_name = "DIR", requires = "encoder")]
    pub cache: Option<PathBuf>,
    /// Without --encoder: the TF-IDF vocabulary size (default: 5000).
    #[arg(long, conflicts_with = "encoder")]
    pub max_features: Option<usize>,
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
}

impl TextArgs {
    /// The text-classifier flags given, by name (for refusing them where they do nothing).
    pub fn given(&self) -> Vec<&'static str> {
        ember::jobs::checks::given(&[
            ("--class", !self.classes.is_empty()),
            ("--email", self.email),
            ("--encoder", self.encoder.is_some()),
            ("--encoder-layers", !self.encoder_layers.is_empty()),
            ("--cache", self.cache.is_some()),
            ("--max-features", self.max_features.is_some()),
            ("--hidden", self.hidden.is_some()),
            ("--l2", self.l2.is_some()),
        ])
    }
}

/// The training settings shared with `ember train`.
pub struct TrainText<'a> {
    pub test_size: f32,
    pub seed: u64,
    pub epochs: Option<usize>,
    pub output: Option<&'a Path>,
    /// Adam's learning rate for an MLP head (--learning-rate).
    pub learning_rate: Option<f32>,
}

/// The documents of a folder, `--class` groups parsed.
pub fn folder(dir: &Path, args: &TextArgs) -> ember::Result<TextSource> {
    let classes: Vec<ClassFolders> = args
        .classes
        .iter()
        .map(|c| ClassFolders::parse(c))
        .collect::<ember::Result<_>>()?;
    Ok(TextSource::Folder {
        dir: dir.to_path_buf(),
        classes,
        email: args.email,
    })
}

/// Trains, reports and saves a classifier on the documents of `source`.
pub fn train(args: &TextArgs, source: TextSource, options: TrainText) -> ember::Result<()> {
    let defaults = TextTraining::default();
    let training = TextTraining {
        encoder: args.encoder.clone(),
        encoder_layers: args.encoder_layers.clone(),
        cache: args.cache.clone().unwrap_or(defaults.cache),
        max_features: args.max_features.unwrap_or(defaults.max_features),
        hidden: args.hidden,
        l2: args.l2,
        learning_rate: options.learning_rate,
        email: args.email,
        test_size: options.test_size,
        seed: options.seed,
        epochs: options.epochs,
    };
    let job = train_text(&source, &training, options.output, |event| {
        print!("{}", event.text(source.path(), options.seed));
        eprint!("{}", event.warnings());
        Ok(())
    })?;
    let text = ember::report::per_class_assessment_text(&job.trained.assessment);
    print!("{text}");
    Ok(())
}
