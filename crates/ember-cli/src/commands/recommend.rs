//! `ember recommend train|evaluate|top|similar|cv|split`: recommenders from ratings files.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ember::data::interactions::{self, Duplicates, InteractionOptions};
use ember::jobs::recommend::{self as jobs, RecommendEvent, RecommendSettings};
use ember::recommend::{EvaluateOptions, ModelKind, Recommender};
use ember::report::recommend as report;

#[derive(Args)]
pub struct RecommendArgs {
    #[command(subcommand)]
    command: RecommendCommand,
}

#[derive(Subcommand)]
enum RecommendCommand {
    /// Train a recommender on a ratings file; prints held-out figures at the end.
    Train(Box<TrainArgs>),
    /// Held-out figures of a saved recommender (and its baselines) on a test ratings file.
    Evaluate(EvaluateArgs),
    /// A user's top-k items, without those they have seen.
    Top(TopArgs),
    /// The items closest to an item.
    Similar(SimilarArgs),
    /// k-fold cross-validation over ratings (Surprise's protocol: seeded random folds).
    Cv(Box<CvArgs>),
    /// Write a seeded leave-n-out split: n random ratings of every user held out.
    Split(SplitArgs),
}

/// How to read a ratings file.
#[derive(Args, Clone)]
struct ReadArgs {
    /// Field delimiter (default: sniffed among tab, comma, `|`, `;` and `::`).
    #[arg(long)]
    delimiter: Option<char>,
    /// The first line is a header (default: detected).
    #[arg(long, conflicts_with = "no_header")]
    header: bool,
    /// The first line is a row.
    #[arg(long)]
    no_header: bool,
    /// The user column: a header name or a 1-based position (default: `user`, `user_id`, … or 1).
    #[arg(long, value_name = "COLUMN")]
    user_column: Option<String>,
    /// The item column (default: `item`, `item_id`, `movie_id`, … or 2).
    #[arg(long, value_name = "COLUMN")]
    item_column: Option<String>,
    /// The rating column (default: `rating`, … or 3).
    #[arg(long, value_name = "COLUMN")]
    rating_column: Option<String>,
    /// The timestamp column (default: `timestamp`, … or 4).
    #[arg(long, value_name = "COLUMN")]
    timestamp_column: Option<String>,
    /// No rating column: every row is one interaction (implicit feedback).
    #[arg(long)]
    implicit: bool,
    /// The valid ratings, inclusive, as `MIN,MAX` (default: any number).
    #[arg(long, value_name = "MIN,MAX", value_parser = interactions::parse_range)]
    rating_range: Option<(f32, f32)>,
    /// A repeated (user, item) pair: error, or keep the first or last and count the rest.
    #[arg(long, default_value = "error", value_parser = Duplicates::parse)]
    duplicates: Duplicates,
    /// Drop rows with a bad rating or too few fields (counted) instead of failing.
    #[arg(long)]
    drop_bad_rows: bool,
}

impl ReadArgs {
    fn options(&self) -> InteractionOptions {
        InteractionOptions {
            delimiter: self.delimiter,
            header: (self.header || self.no_header).then_some(self.header),
            user: self.user_column.clone(),
            item: self.item_column.clone(),
            rating: self.rating_column.clone(),
            timestamp: self.timestamp_column.clone(),
            implicit: self.implicit,
            rating_range: self.rating_range,
            duplicates: self.duplicates,
            drop_bad_rows: self.drop_bad_rows,
        }
    }
}

/// Says what a job reports.
fn print(event: RecommendEvent) {
    print!("{}", event.text());
}

/// A recommender's settings; unset ones take the model's defaults.
#[derive(Args, Clone)]
struct ModelArgs {
    /// mf, svdpp, als, bpmf, bpr, warp or two-tower.
    #[arg(long, default_value = "mf", value_parser = ModelKind::NAMES)]
    model: String,
    /// Seed for initialisation, sampling and order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Length of the user and item vectors.
    #[arg(long)]
    factors: Option<usize>,
    /// Passes over the training data (ALS: alternations).
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Multiply the learning rate by this after each epoch.
    #[arg(long)]
    lr_decay: Option<f32>,
    /// L2 regularisation.
    #[arg(long)]
    reg: Option<f32>,
    /// Standard deviation of the initial factors.
    #[arg(long)]
    init_std: Option<f32>,
    /// Ratings at least this are "liked": the positives of the implicit models and of
    /// --implicit-feedback, and the items --explain cites.
    #[arg(long)]
    positive_min: Option<f32>,
    /// Train a rating model (mf, svdpp, als, bpmf) on the liked pairs only, to rank
    /// (always so for a file without ratings).
    #[arg(long)]
    implicit_feedback: bool,
    /// Implicit ALS: confidence α of a liked pair.
    #[arg(long)]
    confidence: Option<f32>,
    /// Unliked items sampled per liked pair (two-tower; rating models on implicit feedback).
    #[arg(long)]
    negatives: Option<usize>,
    /// Two-tower: batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// A user table (u.user, .user): the two-tower model's user features.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// An item table (.item): titles, and the two-tower model's item features.
    #[arg(long, value_name = "FILE")]
    items: Option<PathBuf>,
    #[command(flatten)]
    threads: super::Threads,
}

impl ModelArgs {
    fn settings(&self) -> RecommendSettings {
        RecommendSettings {
            model: self.model.clone(),
            seed: self.seed,
            factors: self.factors,
            epochs: self.epochs,
            lr: self.lr,
            lr_decay: self.lr_decay,
            reg: self.reg,
            init_std: self.init_std,
            positive_min: self.positive_min,
            implicit_feedback: self.implicit_feedback,
            confidence: self.confidence,
            negatives: self.negatives,
            batch_size: self.batch_size,
            users: self.users.clone(),
            items: self.items.clone(),
        }
    }
}

#[derive(Args)]
struct TrainArgs {
    /// The ratings file (CSV or TSV; a `user, item, rating, timestamp` header needs no flags).
    #[arg(long, value_name = "FILE")]
    ratings: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Where to save the recommender.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// A test ratings file for the held-out figures (default: a seeded random
    /// --validation-split of the ratings, left out of training).
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// Share of the ratings held out for the figures when there is no --test (default 0.1);
    /// 0 trains on all.
    #[arg(long)]
    validation_split: Option<f64>,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

/// The ranking protocol.
#[derive(Args, Clone, Copy)]
struct ProtocolArgs {
    /// Cut-off of the ranking metrics (default 10).
    #[arg(short, long = "k", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    k: Option<u64>,
    /// Test ratings at least this are a user's relevant items (default 4).
    #[arg(long, value_parser = interactions::parse_finite)]
    relevant_min: Option<f32>,
}

impl ProtocolArgs {
    fn options(self) -> EvaluateOptions {
        let defaults = EvaluateOptions::default();
        EvaluateOptions {
            k: self.k.map_or(defaults.k, |k| k as usize),
            relevant_min: self.relevant_min.unwrap_or(defaults.relevant_min),
        }
    }
}

#[derive(Args)]
struct EvaluateArgs {
    /// The saved recommender.
    model: PathBuf,
    /// The test ratings file.
    #[arg(long, value_name = "FILE")]
    ratings: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

#[derive(Args)]
struct TopArgs {
    /// The saved recommender.
    model: PathBuf,
    /// The user id.
    #[arg(long)]
    user: String,
    /// How many items.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    k: u64,
    /// Say why: the user's liked items closest to each one.
    #[arg(long)]
    explain: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SimilarArgs {
    /// The saved recommender.
    model: PathBuf,
    /// The item id.
    #[arg(long)]
    item: String,
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    k: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CvArgs {
    /// The ratings file.
    #[arg(long, value_name = "FILE")]
    ratings: PathBuf,
    /// Number of folds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=100))]
    folds: u64,
    /// Seed of the folds (default: --seed).
    #[arg(long)]
    fold_seed: Option<u64>,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

#[derive(Args)]
struct SplitArgs {
    /// The ratings file.
    #[arg(long, value_name = "FILE")]
    ratings: PathBuf,
    /// Ratings held out per user, 1 to 1000000 (users with no more than this stay whole in
    /// training).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    holdout: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the training ratings (u.data's layout).
    #[arg(long, value_name = "FILE")]
    train: PathBuf,
    /// Where to write the held-out ratings.
    #[arg(long, value_name = "FILE")]
    test: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: RecommendArgs) -> ember::Result<()> {
    match args.command {
        RecommendCommand::Train(args) => train(*args),
        RecommendCommand::Evaluate(args) => evaluate(args),
        RecommendCommand::Top(args) => top(args),
        RecommendCommand::Similar(args) => similar(args),
        RecommendCommand::Cv(args) => cv(*args),
        RecommendCommand::Split(args) => split(args),
    }
}

fn train(args: TrainArgs) -> ember::Result<()> {
    super::set_threads(args.model.threads)?;
    let job = jobs::TrainRecommender {
        ratings: args.ratings,
        read: args.read.options(),
        settings: args.model.settings(),
        output: args.output,
        test: args.test,
        validation_split: args.validation_split,
        figure_flags: ember::jobs::checks::given(&[
            ("-k", args.protocol.k.is_some()),
            ("--relevant-min", args.protocol.relevant_min.is_some()),
        ]),
    };
    let trained = jobs::train_recommender(&job, print)?;
    if let Some(test) = trained.test {
        print!(
            "{}",
            report::evaluation_text(&trained.model, &test, &args.protocol.options())?
        );
    }
    Ok(())
}

fn evaluate(args: EvaluateArgs) -> ember::Result<()> {
    jobs::untimed(&args.read.options())?;
    let model = Recommender::load(&args.model)?;
    let test = jobs::read_ratings(&args.ratings, &args.read.options(), print)?;
    println!("{} ({})", args.model.display(), model.kind());
    print!(
        "{}",
        report::evaluation_text(&model, &test, &args.protocol.options())?
    );
    Ok(())
}

fn top(args: TopArgs) -> ember::Result<()> {
    let model = Recommender::load(&args.model)?;
    let list = model.top(&args.user, args.k as usize, args.explain)?;
    match args.json {
        true => print!("{}", ember::report::pretty_json(&list)?),
        false => print!("{}", report::top_text(&model, &list)),
    }
    Ok(())
}

fn similar(args: SimilarArgs) -> ember::Result<()> {
    let model = Recommender::load(&args.model)?;
    let items = model.similar(&args.item, args.k as usize)?;
    match args.json {
        true => print!("{}", ember::report::pretty_json(&items)?),
        false => print!("{}", report::similar_text(&model, &args.item, &items)),
    }
    Ok(())
}

fn cv(args: CvArgs) -> ember::Result<()> {
    super::set_threads(args.model.threads)?;
    let job = jobs::RecommendCv {
        ratings: args.ratings,
        read: args.read.options(),
        settings: args.model.settings(),
        folds: args.folds as usize,
        fold_seed: args.fold_seed,
        evaluate: args.protocol.options(),
    };
    let summary = jobs::cross_validate(&job, print)?;
    print!("{}", ember::jobs::recommend::cv_summary_text(&summary));
    Ok(())
}

fn split(args: SplitArgs) -> ember::Result<()> {
    let job = jobs::SplitRatings {
        ratings: args.ratings,
        read: args.read.options(),
        holdout: args.holdout as usize,
        seed: args.seed,
        train: args.train,
        test: args.test,
    };
    print!("{}", jobs::split_ratings(&job, print)?);
    Ok(())
}
