//! Recommender jobs: train on a ratings file and hold figures out for it, cross-validate
//! (Surprise's protocol: seeded random folds) with every fold's figures beside its
//! baselines', and write a leave-n-out split; the settings as a user gives them, and what
//! each job reports as it goes.

mod cv;
mod split;
mod train;

use std::path::{Path, PathBuf};

pub use cv::{
    cross_validate, cv_summary_text, fold_text, folds, FigureSummary, FoldFigures, RecommendCv,
};
pub use split::{split_ratings, SplitRatings};
pub use train::{train_recommender, validation_split, TrainRecommender, TrainedRecommender};

use crate::data::interactions::{Duplicates, InteractionOptions, Interactions};
use crate::data::side_features::SideFeatures;
use crate::error::Result;
use crate::recommend::{ModelKind, RecommendConfig};
use crate::report::recommend as report;

/// A recommender's settings as a user gives them: the model by name, and every `Some`
/// replacing that model's default.
#[derive(Clone, Debug)]
pub struct RecommendSettings {
    /// mf, svdpp, als, bpmf, bpr, warp or two-tower.
    pub model: String,
    /// Seed for initialisation, sampling and order.
    pub seed: u64,
    pub factors: Option<usize>,
    pub epochs: Option<usize>,
    pub lr: Option<f32>,
    pub lr_decay: Option<f32>,
    pub reg: Option<f32>,
    pub init_std: Option<f32>,
    pub positive_min: Option<f32>,
    /// Train a rating model on the liked pairs only, to rank (always so for a file without
    /// ratings).
    pub implicit_feedback: bool,
    pub confidence: Option<f32>,
    pub negatives: Option<usize>,
    pub batch_size: Option<usize>,
    /// A user table: the two-tower model's user features.
    pub users: Option<PathBuf>,
    /// An item table: titles, and the two-tower model's item features.
    pub items: Option<PathBuf>,
}

impl RecommendSettings {
    /// The checked configuration; `implicit_file` when the ratings file is read without
    /// ratings.
    pub fn config(&self, implicit_file: bool) -> Result<RecommendConfig> {
        let model = ModelKind::from_name(&self.model)?;
        let implicit = self.implicit_feedback || implicit_file;
        self.refuse_unused(model, implicit)?;
        let mut c = RecommendConfig::for_feedback(model, implicit);
        c.seed = self.seed;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(
            factors,
            epochs,
            lr,
            lr_decay,
            reg,
            init_std,
            positive_min,
            confidence,
            negatives,
            batch_size
        );
        c.check()?;
        Ok(c)
    }

    /// Refuses the settings `model` does not use (on `implicit` feedback or not), naming
    /// them: `--lr` means nothing to ALS, `--batch-size` to anything but the two towers.
    fn refuse_unused(&self, model: ModelKind, implicit: bool) -> Result<()> {
        use ModelKind::*;
        let sgd = matches!(model, Mf | Svdpp | Bpr | Warp);
        let sampled = model == TwoTower || (implicit && matches!(model, Mf | Svdpp | Bpmf));
        // (flag, given, used by this model)
        let settings = [
            ("--lr", self.lr.is_some(), sgd || model == TwoTower),
            ("--lr-decay", self.lr_decay.is_some(), sgd),
            (
                "--reg",
                self.reg.is_some(),
                !matches!(model, Bpmf | TwoTower),
            ),
            ("--init-std", self.init_std.is_some(), model != TwoTower),
            (
                "--implicit-feedback",
                self.implicit_feedback,
                model.predicts_ratings(),
            ),
            (
                "--confidence",
                self.confidence.is_some(),
                model == Als && implicit,
            ),
            ("--negatives", self.negatives.is_some(), sampled),
            ("--batch-size", self.batch_size.is_some(), model == TwoTower),
            ("--users", self.users.is_some(), model == TwoTower),
        ];
        let unused: Vec<&str> = settings
            .iter()
            .filter(|(_, given, used)| *given && !*used)
            .map(|(flag, ..)| *flag)
            .collect();
        let feedback = match (model.predicts_ratings(), implicit) {
            (false, _) => "",
            (true, true) => " on implicit feedback",
            (true, false) => " on ratings (see --implicit-feedback)",
        };
        let here = format!("for --model {}{feedback}", model.name());
        crate::jobs::checks::does_nothing(&here, "", &unused)
    }

    /// The user and item tables, read; `on_event` hears of each.
    fn read_tables(
        &self,
        on_event: &mut impl FnMut(RecommendEvent),
    ) -> Result<(Option<SideFeatures>, Option<SideFeatures>)> {
        let mut read = |path: &Option<PathBuf>, what| -> Result<Option<SideFeatures>> {
            let Some(path) = path else { return Ok(None) };
            let table = SideFeatures::read(path)?;
            on_event(RecommendEvent::SideFeatures {
                path,
                table: &table,
                what,
            });
            Ok(Some(table))
        };
        Ok((read(&self.users, "users")?, read(&self.items, "items")?))
    }

    /// The tables read besides the ratings.
    fn inputs(&self) -> Vec<&Path> {
        self.users
            .iter()
            .chain(&self.items)
            .map(|p| p.as_path())
            .collect()
    }
}

/// What the recommender jobs report as they go.
pub enum RecommendEvent<'a> {
    /// A ratings file is read: `data` is what was kept of it.
    Read {
        path: &'a Path,
        data: &'a Interactions,
        duplicates: Duplicates,
    },
    /// The ratings to train on, before any validation split.
    Ratings(&'a Interactions),
    /// A user or item table is read (`what`: users or items).
    SideFeatures {
        path: &'a Path,
        table: &'a SideFeatures,
        what: &'static str,
    },
    /// Random ratings held out of training for the figures.
    HeldOut {
        ratings: usize,
        fraction: f64,
    },
    /// The model is trained on `ratings` ratings in `seconds`.
    Trained {
        config: &'a RecommendConfig,
        ratings: usize,
        seconds: f64,
    },
    Saved(&'a Path),
    /// Cross-validation of `data` over `folds` folds starts.
    CrossValidating {
        data: &'a Interactions,
        folds: usize,
        model: ModelKind,
    },
    /// A fold's figures, the fold counted from 0.
    Fold(usize, &'a FoldFigures),
}

impl RecommendEvent<'_> {
    /// The event as the command line says it, lines ending in newlines (none when there is
    /// nothing to say).
    pub fn text(&self) -> String {
        match self {
            RecommendEvent::Read {
                path,
                data,
                duplicates,
            } => report::dropped_ratings_text(data, path, *duplicates),
            RecommendEvent::Ratings(data) => report::ratings_text(data),
            RecommendEvent::SideFeatures { path, table, what } => {
                report::side_features_text(table, path, what)
            }
            RecommendEvent::HeldOut { ratings, fraction } => format!(
                "holding out {ratings} random ratings (--validation-split {fraction}) for the figures\n"
            ),
            RecommendEvent::Trained {
                config,
                ratings,
                seconds,
            } => format!(
                "trained {} ({} factors, {} epochs) on {ratings} ratings in {seconds:.2} s\n",
                config.model.name(),
                config.factors,
                config.epochs,
            ),
            RecommendEvent::Saved(path) => format!("saved {}\n", path.display()),
            RecommendEvent::CrossValidating { data, folds, model } => format!(
                "{}; {folds}-fold cross-validation of {}\n",
                report::ratings_text(data).trim_end(),
                model.name()
            ),
            RecommendEvent::Fold(fold, figures) => cv::fold_text(*fold, figures),
        }
    }
}

/// Reads a ratings file; `on_event` hears of what was left out of it.
/// Refuses `--timestamp-column` where the times are not used: only `ember recommend split`
/// writes them; no recommender trains or is evaluated on them.
pub fn untimed(read: &InteractionOptions) -> Result<()> {
    crate::jobs::checks::refuse_given(
        &[("--timestamp-column", read.timestamp.is_some())],
        "does nothing here: no recommender uses the times (`ember recommend split` writes them)",
    )
}

pub fn read_ratings(
    path: &Path,
    options: &InteractionOptions,
    mut on_event: impl FnMut(RecommendEvent),
) -> Result<Interactions> {
    let data = Interactions::read(path, options)?;
    on_event(RecommendEvent::Read {
        path,
        data: &data,
        duplicates: options.duplicates,
    });
    Ok(data)
}
