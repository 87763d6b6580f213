//! Training a recommender on a ratings file and saving it, with ratings held out for the
//! figures: a test file's, or a seeded random share of the ratings.

use std::path::PathBuf;
use std::time::Instant;

use super::{read_ratings, RecommendEvent, RecommendSettings};
use crate::data::interactions::{InteractionOptions, Interactions};
use crate::error::{Error, Result};
use crate::recommend::{self, Recommender};
use crate::tensor::random::Rng;

/// What to train on, and where to save it.
#[derive(Clone, Debug)]
pub struct TrainRecommender {
    /// The ratings file.
    pub ratings: PathBuf,
    /// How to read it (and the test file).
    pub read: InteractionOptions,
    pub settings: RecommendSettings,
    /// Where to save the recommender.
    pub output: PathBuf,
    /// A test ratings file for the held-out figures (default: a seeded random
    /// `validation_split` of the ratings, left out of training).
    pub test: Option<PathBuf>,
    /// Share of the ratings held out when there is no test file, in [0, 1) (default
    /// [`TrainRecommender::VALIDATION_SPLIT`]); 0 trains on all.
    pub validation_split: Option<f64>,
    /// The flags of the held-out figures given (`-k`, `--relevant-min`): refused when no
    /// rating is held out.
    pub figure_flags: Vec<&'static str>,
}

impl TrainRecommender {
    /// The share of the ratings held out unless another is asked for.
    pub const VALIDATION_SPLIT: f64 = 0.1;
}

/// A trained (and saved) recommender, and the ratings held out for its figures, if any.
pub struct TrainedRecommender {
    pub model: Recommender,
    pub test: Option<Interactions>,
}

/// Trains a recommender as `job` says and saves it; `on_event` hears of each step as it
/// ends. The output and the settings are checked before any file is read.
pub fn train_recommender(
    job: &TrainRecommender,
    mut on_event: impl FnMut(RecommendEvent),
) -> Result<TrainedRecommender> {
    let mut inputs = vec![job.ratings.as_path()];
    inputs.extend(job.settings.inputs());
    inputs.extend(job.test.as_deref());
    crate::atomic::check_output(&job.output, &inputs)?;
    job.settings.config(job.read.implicit)?;
    super::untimed(&job.read)?;
    let split = job
        .validation_split
        .unwrap_or(TrainRecommender::VALIDATION_SPLIT);
    if !(0.0..1.0).contains(&split) {
        return Err(Error::invalid(format!(
            "--validation-split must be in [0, 1), got {split}"
        )));
    }
    if job.test.is_some() && job.validation_split.is_some() {
        return Err(Error::invalid(
            "--validation-split does nothing with --test FILE: the test file's ratings are held out",
        ));
    }
    if job.test.is_none() && split == 0.0 {
        crate::jobs::checks::does_nothing(
            "with --validation-split 0 and no --test",
            "no rating is held out for figures",
            &job.figure_flags,
        )?;
    }
    let data = read_ratings(&job.ratings, &job.read, &mut on_event)?;
    // A file read without ratings trains with the implicit defaults.
    let config = job.settings.config(!data.explicit)?;
    on_event(RecommendEvent::Ratings(&data));
    let (users, items) = job.settings.read_tables(&mut on_event)?;
    let (train, test) = match &job.test {
        Some(path) => (data, Some(read_ratings(path, &job.read, &mut on_event)?)),
        None if split > 0.0 => {
            let (kept, held) = validation_split(&data, split, config.seed)?;
            on_event(RecommendEvent::HeldOut {
                ratings: held.len(),
                fraction: split,
            });
            (kept, Some(held))
        }
        None => (data, None),
    };
    let started = Instant::now();
    let model = recommend::train(&train, users.as_ref(), items.as_ref(), &config)?;
    on_event(RecommendEvent::Trained {
        config: &config,
        ratings: train.len(),
        seconds: started.elapsed().as_secs_f64(),
    });
    model.save(&job.output)?;
    on_event(RecommendEvent::Saved(&job.output));
    Ok(TrainedRecommender { model, test })
}

/// Holds out `fraction` of the ratings, chosen at random with `seed`: (kept, held out),
/// each in the file's order.
pub fn validation_split(
    data: &Interactions,
    fraction: f64,
    seed: u64,
) -> Result<(Interactions, Interactions)> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    Rng::seed(seed).shuffle(&mut order);
    let cut = ((data.len() as f64) * fraction).round() as usize;
    if cut == 0 || cut == data.len() {
        return Err(Error::invalid(format!(
            "--validation-split {fraction} of {} ratings leaves one side empty",
            data.len()
        )));
    }
    let (held, kept) = order.split_at(cut);
    let (mut held, mut kept) = (held.to_vec(), kept.to_vec());
    held.sort_unstable();
    kept.sort_unstable();
    Ok((data.subset(&kept), data.subset(&held)))
}
