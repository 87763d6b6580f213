//! A seeded leave-n-out split of a ratings file, written as two files.

use std::path::PathBuf;

use super::{read_ratings, RecommendEvent};
use crate::data::interactions::InteractionOptions;
use crate::error::{Error, Result};
use crate::recommend;

/// What to split, and where to write the two sides.
#[derive(Clone, Debug)]
pub struct SplitRatings {
    /// The ratings file.
    pub ratings: PathBuf,
    /// How to read it.
    pub read: InteractionOptions,
    /// Ratings held out per user (users with no more than this stay whole in training).
    pub holdout: usize,
    pub seed: u64,
    /// Where to write the training ratings (u.data's layout).
    pub train: PathBuf,
    /// Where to write the held-out ratings.
    pub test: PathBuf,
}

/// Writes a seeded leave-n-out split of the ratings: `holdout` random ratings of every
/// user to `test`, the rest to `train` (never over the ratings file); `on_event` hears of
/// the reading. Returns the line that says what was written.
pub fn split_ratings(job: &SplitRatings, on_event: impl FnMut(RecommendEvent)) -> Result<String> {
    for out in [&job.train, &job.test] {
        crate::atomic::check_output(out, &[&job.ratings])?;
    }
    if job.train == job.test {
        return Err(Error::invalid("--train and --test are the same file"));
    }
    let data = read_ratings(&job.ratings, &job.read, on_event)?;
    let holdout = job.holdout;
    let (train_rows, test_rows, whole) = recommend::leave_n_out(&data, holdout, job.seed);
    data.subset(&train_rows).write_tsv(&job.train)?;
    data.subset(&test_rows).write_tsv(&job.test)?;
    Ok(format!(
        "{}: {} ratings to {}, {} ({holdout} per user) to {}; {whole} users with {holdout} or fewer ratings kept whole in training\n",
        data.path.display(),
        train_rows.len(),
        job.train.display(),
        test_rows.len(),
        job.test.display(),
    ))
}
