//! The two-tower model, built with the functional API: a user tower (id embedding and the
//! user's features → dense layers → a vector) and an item tower (id embedding, genres and
//! year → a vector), their dot product through a sigmoid, trained with binary cross-entropy
//! on liked pairs against sampled unliked ones. Id 0 of each tower means "unknown": a tenth
//! of the training pairs see it instead of the real id, so the tower learns to place a new
//! user or item from its features alone (cold start).

use super::model::Scorer;
use super::positives::Positives;
use super::train::RecommendConfig;
use crate::data::interactions::{Ids, Interactions};
use crate::data::side_features::SideFeatures;
use crate::error::{Error, Result};
use crate::model::{FitOptions, Graph, Model, SymbolicTensor, Verbosity};
use crate::nn::{ActivationLayer, Dense, Embedding, Flatten, Merge};
use crate::optim::Adam;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;
use crate::{Activation, Loss};

/// The share of training pairs that see a tower's "unknown" id instead of the real one.
const ID_DROPOUT: f32 = 0.1;
/// Width of each tower's hidden layer.
const HIDDEN: usize = 64;

/// One side's ids and features, aligned: row `r` of `features` belongs to id index `r`.
pub struct Side<'a> {
    pub name: &'static str,
    pub ids: &'a Ids,
    /// ids × dim, zeros for an id the feature table lacks; None without a table.
    pub features: Option<(Vec<f32>, usize)>,
}

impl<'a> Side<'a> {
    pub fn new(name: &'static str, ids: &'a Ids, table: Option<&SideFeatures>) -> Side<'a> {
        let features = table.map(|t| {
            let dim = t.dim();
            let rows: std::collections::HashMap<&str, usize> = t
                .ids
                .iter()
                .enumerate()
                .map(|(r, id)| (id.as_str(), r))
                .collect();
            let mut values = vec![0.0f32; ids.len() * dim];
            for (i, id) in ids.names().iter().enumerate() {
                if let Some(&r) = rows.get(id.as_str()) {
                    values[i * dim..(i + 1) * dim].copy_from_slice(t.row(r));
                }
            }
            (values, dim)
        });
        Side {
            name,
            ids,
            features,
        }
    }
}

/// Adds one tower to `graph`: its inputs and its output vector.
fn tower(
    graph: &Graph,
    side: &Side,
    factors: usize,
) -> Result<(Vec<SymbolicTensor>, SymbolicTensor)> {
    let name = side.name;
    let id = graph.input(&format!("{name}_id"), &[1])?;
    let embedded = graph
        .named(
            &format!("{name}_embedding"),
            Embedding::new(side.ids.len() + 1, factors),
        )?
        .call(&id)?;
    let mut x = graph
        .named(&format!("{name}_flatten"), Flatten)?
        .call(&embedded)?;
    let mut inputs = vec![id];
    if let Some((_, dim)) = &side.features {
        let features = graph.input(&format!("{name}_features"), &[*dim])?;
        x = graph.merge_named(
            &format!("{name}_concatenate"),
            Merge::Concatenate {},
            &[&x, &features],
        )?;
        inputs.push(features);
    }
    let hidden = graph
        .named(
            &format!("{name}_hidden"),
            Dense::new(HIDDEN).activation(Activation::Relu),
        )?
        .call(&x)?;
    let vector = graph
        .named(&format!("{name}_vector"), Dense::new(factors))?
        .call(&hidden)?;
    Ok((inputs, vector))
}

/// The tensors one tower reads for the id indices `rows` (model ids are index + 1; 0 is
/// "unknown").
fn tower_inputs(side: &Side, rows: &[u32], unknown: &[bool]) -> Result<Vec<Tensor>> {
    let ids: Vec<f32> = rows
        .iter()
        .zip(unknown)
        .map(|(&r, &u)| if u { 0.0 } else { r as f32 + 1.0 })
        .collect();
    let mut out = vec![Tensor::new(&[rows.len(), 1], ids)?];
    if let Some((values, dim)) = &side.features {
        let mut data = Vec::with_capacity(rows.len() * dim);
        for &r in rows {
            data.extend_from_slice(&values[r as usize * dim..(r as usize + 1) * dim]);
        }
        out.push(Tensor::new(&[rows.len(), *dim], data)?);
    }
    Ok(out)
}

/// The vectors of every id of a side, from a tower model holding the trained weights.
/// Ids below `trained` use their own embedding; the rest (from the feature table only)
/// the "unknown" one.
fn tower_vectors(trained: &Model, side: &Side, factors: usize, known: usize) -> Result<Vec<f32>> {
    let graph = Graph::with_seed(0);
    let (inputs, vector) = tower(&graph, side, factors)?;
    let refs: Vec<&SymbolicTensor> = inputs.iter().collect();
    let mut model = Model::new(&refs, &[&vector])?;
    let prefix = format!("{}_", side.name);
    for (name, value) in trained.weights() {
        if name.starts_with(&prefix) {
            model.set_weight(&name, value.clone())?;
        }
    }
    let rows: Vec<u32> = (0..side.ids.len() as u32).collect();
    let unknown: Vec<bool> = rows.iter().map(|&r| r as usize >= known).collect();
    let xs = tower_inputs(side, &rows, &unknown)?;
    let refs: Vec<&Tensor> = xs.iter().collect();
    Ok(model
        .predict_many(&refs, 1024)?
        .swap_remove(0)
        .data()
        .to_vec())
}

/// Trains the two towers on the liked pairs of `data` (whose user and item indices are
/// those of `users` and `items`, which may hold more ids, from feature tables) and returns
/// every user's and item's vector.
pub fn train_two_tower(
    data: &Interactions,
    users: &Side,
    items: &Side,
    config: &RecommendConfig,
    rng: &mut Rng,
) -> Result<Scorer> {
    let k = config.factors;
    let positives = Positives::new(data, config.positive_min, users.ids.len())?;
    let graph = Graph::with_seed(rng.next_u64());
    let (user_inputs, user_vector) = tower(&graph, users, k)?;
    let (item_inputs, item_vector) = tower(&graph, items, k)?;
    let dot = graph.merge_named("score", Merge::Dot {}, &[&user_vector, &item_vector])?;
    let probability = graph
        .named("probability", ActivationLayer::new(Activation::Sigmoid))?
        .call(&dot)?;
    let inputs: Vec<&SymbolicTensor> = user_inputs.iter().chain(&item_inputs).collect();
    let mut model = Model::new(&inputs, &[&probability])?;
    model.compile(Adam::new(config.lr), Loss::BinaryCrossentropy, &[])?;

    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        // A fresh set of negatives every epoch: for each liked pair, `negatives` items
        // the user did not like.
        let pairs = positives.pointwise(config.negatives, rng);
        let n = pairs.len();
        let user_unknown: Vec<bool> = (0..n).map(|_| rng.uniform() < ID_DROPOUT).collect();
        let item_unknown: Vec<bool> = (0..n).map(|_| rng.uniform() < ID_DROPOUT).collect();
        let mut xs = tower_inputs(users, &pairs.user, &user_unknown)?;
        xs.extend(tower_inputs(items, &pairs.item, &item_unknown)?);
        let y = Tensor::new(&[n, 1], pairs.rating)?;
        let refs: Vec<&Tensor> = xs.iter().collect();
        let options = FitOptions {
            epochs: 1,
            batch_size: config.batch_size,
            seed: Some(rng.next_u64()),
            verbose: Verbosity::Silent,
            ..Default::default()
        };
        model.fit_many(&refs, &[&y], &options, &mut [])?;
    }
    let user_factors = tower_vectors(&model, users, k, data.users.len())?;
    let item_factors = tower_vectors(&model, items, k, data.items.len())?;
    let scorer = Scorer {
        predicts_ratings: false,
        mean: 0.0,
        user_bias: vec![0.0; users.ids.len()],
        item_bias: vec![0.0; items.ids.len()],
        factors: k,
        user_factors,
        item_factors,
    };
    scorer
        .check(users.ids.len(), items.ids.len())
        .map_err(|_| Error::NonFinite("two-tower diverged: lower --lr".into()))?;
    Ok(scorer)
}
