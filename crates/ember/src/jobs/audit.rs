//! `ember privacy audit MODEL`: a loss-threshold membership-inference attack (Yeom et al.
//! 2018) on a saved network. An attacker who guesses "member" when a sample's loss is below
//! a threshold tells the model's training rows from rows it never saw as well as the two
//! sets' losses differ: the attack's ROC AUC over every threshold is the probability that a
//! random training row has a lower loss than a random held-out one. 0.5 is no better than a
//! coin; a model that memorised its training rows sits well above it. DP-SGD bounds what any
//! attack can achieve; this measures what one simple attack does achieve.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::roc_auc;
use crate::model::split_point;
use crate::saved::SavedModel;
use crate::tensor::random::Rng;

/// The most rows of each side the attack scores (a random subset of the larger side).
pub const MAX_AUDIT_ROWS: usize = 10_000;

/// What to audit.
pub struct AuditOptions {
    /// The saved network.
    pub model: PathBuf,
    /// Its data folder, instead of the one recorded in the model.
    pub data: Option<PathBuf>,
}

/// The attack's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    /// The attack's ROC AUC: 0.5 is chance.
    pub auc: f64,
    /// Training rows (members) and test rows (non-members) scored: as many of each.
    pub rows: usize,
    /// The mean loss of each side.
    pub member_loss: f64,
    pub non_member_loss: f64,
}

impl Audit {
    /// The result as `ember privacy audit` prints it, ending with the line
    /// `Membership inference AUC: X`.
    pub fn text(&self) -> String {
        format!(
            "Scored {} training rows (members) against {} test rows (non-members): mean loss {:.4} against {:.4}\nMembership inference AUC: {:.3}\n",
            self.rows, self.rows, self.member_loss, self.non_member_loss, self.auc
        )
    }
}

/// Runs the attack on the network saved in `options.model`: its training rows (the rows of
/// its data set's training split that `fit` trained on, without the validation tail) are the
/// members, its test split the non-members; as many of each (up to [`MAX_AUDIT_ROWS`]),
/// drawn at random with a fixed seed when one side is larger.
pub fn membership_audit(options: &AuditOptions) -> Result<Audit> {
    let path = &options.model;
    let network = match SavedModel::load(path)? {
        SavedModel::Network(network) => network,
        other => {
            return Err(Error::data(
                path,
                format!(
                    "the audit attacks a network trained on a data set (`ember train MODEL_FILE \
                     --output FILE`); this is a {} model",
                    other.kind()
                ),
            ))
        }
    };
    let data_spec = network.data(path)?;
    let data = match &options.data {
        Some(dir) => data_spec.load_from(dir)?,
        None => data_spec.load(Path::new("."))?,
    };
    let model = &network.model;
    let trained = split_point(data.x_train.rows(), network.spec.fit.validation_split)?;
    let rows = trained.min(data.x_test.rows()).min(MAX_AUDIT_ROWS);
    if rows == 0 {
        return Err(Error::data(
            path,
            "the data set has no test rows to compare the training rows with",
        ));
    }
    let mut rng = Rng::seed(0);
    let mut pick = |available: usize| {
        let mut all: Vec<usize> = (0..available).collect();
        rng.shuffle(&mut all);
        all.truncate(rows);
        all.sort_unstable();
        all
    };
    let (members, non_members) = (pick(trained), pick(data.x_test.rows()));
    let batch = network.spec.fit.batch_size;
    let losses = |x: &crate::Tensor, y: &crate::Tensor, rows: &[usize]| -> Result<Vec<f32>> {
        let (x, y) = (x.gather_rows(rows)?, y.gather_rows(rows)?);
        model.sample_losses(&x, &y, batch)
    };
    let member_losses = losses(&data.x_train, &data.y_train, &members)?;
    let other_losses = losses(&data.x_test, &data.y_test, &non_members)?;
    // The attack's score: the lower the loss, the likelier a member.
    let scores: Vec<f32> = member_losses
        .iter()
        .chain(&other_losses)
        .map(|l| -l)
        .collect();
    let positive: Vec<bool> = (0..2 * rows).map(|i| i < rows).collect();
    let auc = roc_auc(&scores, &positive)
        .ok_or_else(|| Error::data(path, "the audit needs rows on both sides"))?;
    let mean = |l: &[f32]| l.iter().map(|&v| f64::from(v)).sum::<f64>() / l.len() as f64;
    Ok(Audit {
        auc,
        rows,
        member_loss: mean(&member_losses),
        non_member_loss: mean(&other_losses),
    })
}
