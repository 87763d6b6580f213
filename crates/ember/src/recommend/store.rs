//! A recommender on disk: one safetensors file, the biases and factors of the model and its
//! baselines and the training interactions as tensors, everything else (settings, ids,
//! titles) as JSON in its metadata under `ember.recommender`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::model::{Recommender, Scorer};
use super::train::RecommendConfig;
use crate::data::interactions::Ids;
use crate::error::{Error, Result};

const KEY: &str = "ember.recommender";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Info {
    format: u32,
    config: RecommendConfig,
    users: Vec<String>,
    items: Vec<String>,
    titles: Option<Vec<String>>,
    /// (predicts ratings, mean, factors) of the model, popularity and biases.
    scorers: Vec<(bool, f32, usize)>,
    rating_bounds: (f32, f32),
    trained_users: usize,
    trained_items: usize,
    user_features: Option<String>,
    item_features: Option<String>,
}

const SCORERS: [&str; 3] = ["model", "popularity", "biases"];

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Recommender {
    /// Writes the recommender atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let scorers = [&self.model, &self.popularity, &self.biases];
        let info = Info {
            format: FORMAT,
            config: self.config.clone(),
            users: self.users.names().to_vec(),
            items: self.items.names().to_vec(),
            titles: self.titles.clone(),
            scorers: scorers
                .iter()
                .map(|s| (s.predicts_ratings, s.mean, s.factors))
                .collect(),
            rating_bounds: self.rating_bounds,
            trained_users: self.trained_users,
            trained_items: self.trained_items,
            user_features: self.user_features.clone(),
            item_features: self.item_features.clone(),
        };
        let info = serde_json::to_string(&info)
            .map_err(|e| Error::invalid(format!("cannot serialise the recommender: {e}")))?;
        let mut buffers: Vec<(String, Dtype, Vec<u8>)> = Vec::new();
        for (name, s) in SCORERS.iter().zip(scorers) {
            for (part, values) in [
                ("user_bias", &s.user_bias),
                ("item_bias", &s.item_bias),
                ("user_factors", &s.user_factors),
                ("item_factors", &s.item_factors),
            ] {
                buffers.push((format!("{name}.{part}"), Dtype::F32, f32_bytes(values)));
            }
        }
        let (mut seen_user, mut seen_item, mut seen_rating) = (Vec::new(), Vec::new(), Vec::new());
        for (u, rows) in self.seen.iter().enumerate() {
            for &(i, r) in rows {
                seen_user.push(u as u32);
                seen_item.push(i);
                seen_rating.push(r);
            }
        }
        buffers.push(("seen.user".into(), Dtype::U32, u32_bytes(&seen_user)));
        buffers.push(("seen.item".into(), Dtype::U32, u32_bytes(&seen_item)));
        buffers.push(("seen.rating".into(), Dtype::F32, f32_bytes(&seen_rating)));
        let views = buffers
            .iter()
            .map(|(name, dtype, bytes)| {
                TensorView::new(*dtype, vec![bytes.len() / 4], bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid(format!("cannot store {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([(KEY.to_string(), info)]);
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::invalid(format!("cannot serialise the recommender: {e}")))?;
        crate::atomic::write_atomically(path, &bytes)
    }

    /// Whether `path` is a recommender written by [`Recommender::save`] (a safetensors file
    /// whose metadata has `ember.recommender`), read from its header alone.
    pub fn is_recommender(path: &Path) -> Result<bool> {
        crate::io::has_metadata(path, KEY)
    }

    /// Reads a recommender written by [`Recommender::save`]; anything else, or a damaged
    /// file, is an error naming the file and the part.
    pub fn load(path: &Path) -> Result<Recommender> {
        let bad = |m: String| Error::data(path, m);
        let bytes = crate::read::file(path, crate::read::Limit::MODEL)?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a recommender file: {e}")))?;
        let info = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(KEY))
            .ok_or_else(|| {
                bad("not an Ember recommender (ember recommend train writes one)".into())
            })?;
        let info: Info =
            serde_json::from_str(info).map_err(|e| bad(format!("damaged recommender: {e}")))?;
        if info.format != FORMAT {
            return Err(bad(format!(
                "recommender format {} (this Ember reads {FORMAT})",
                info.format
            )));
        }
        info.config
            .check()
            .map_err(|e| bad(format!("damaged recommender settings: {e}")))?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a recommender file: {e}")))?;
        let read = |name: &str, dtype: Dtype| -> Result<Vec<[u8; 4]>> {
            let view = tensors
                .tensor(name)
                .map_err(|_| bad(format!("damaged recommender: no tensor '{name}'")))?;
            if view.dtype() != dtype || view.shape().len() != 1 {
                return Err(bad(format!(
                    "damaged recommender: '{name}' is not a {dtype:?} vector"
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| [b[0], b[1], b[2], b[3]])
                .collect())
        };
        let floats = |name: &str| -> Result<Vec<f32>> {
            Ok(read(name, Dtype::F32)?
                .into_iter()
                .map(f32::from_le_bytes)
                .collect())
        };
        let ints = |name: &str| -> Result<Vec<u32>> {
            Ok(read(name, Dtype::U32)?
                .into_iter()
                .map(u32::from_le_bytes)
                .collect())
        };
        let users =
            Ids::from_names(info.users).map_err(|e| bad(format!("damaged user ids: {e}")))?;
        let items =
            Ids::from_names(info.items).map_err(|e| bad(format!("damaged item ids: {e}")))?;
        if info.scorers.len() != SCORERS.len() {
            return Err(bad("damaged recommender: scorers".into()));
        }
        let mut scorers = Vec::new();
        for (name, &(predicts_ratings, mean, factors)) in SCORERS.iter().zip(&info.scorers) {
            let s = Scorer {
                predicts_ratings,
                mean,
                user_bias: floats(&format!("{name}.user_bias"))?,
                item_bias: floats(&format!("{name}.item_bias"))?,
                factors,
                user_factors: floats(&format!("{name}.user_factors"))?,
                item_factors: floats(&format!("{name}.item_factors"))?,
            };
            s.check(users.len(), items.len())
                .map_err(|m| bad(format!("damaged recommender: {name}: {m}")))?;
            scorers.push(s);
        }
        let (seen_user, seen_item, seen_rating) = (
            ints("seen.user")?,
            ints("seen.item")?,
            floats("seen.rating")?,
        );
        if seen_item.len() != seen_user.len() || seen_rating.len() != seen_user.len() {
            return Err(bad(
                "damaged recommender: the training interactions differ in length".into(),
            ));
        }
        let mut seen = vec![Vec::new(); users.len()];
        for ((&u, &i), &r) in seen_user.iter().zip(&seen_item).zip(&seen_rating) {
            if u as usize >= users.len() || i as usize >= items.len() || !r.is_finite() {
                return Err(bad(format!(
                    "damaged recommender: a training interaction ({u}, {i}, {r}) is out of range"
                )));
            }
            seen[u as usize].push((i, r));
        }
        let (lo, hi) = info.rating_bounds;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(bad(format!(
                "damaged recommender: the rating range {lo}..{hi}"
            )));
        }
        if info.titles.as_ref().is_some_and(|t| t.len() != items.len())
            || info.trained_users > users.len()
            || info.trained_items > items.len()
        {
            return Err(bad(
                "damaged recommender: titles or counts do not match the items".into(),
            ));
        }
        let biases = scorers
            .pop()
            .unwrap_or_else(|| unreachable!("three scorers"));
        let popularity = scorers
            .pop()
            .unwrap_or_else(|| unreachable!("three scorers"));
        let model = scorers
            .pop()
            .unwrap_or_else(|| unreachable!("three scorers"));
        Ok(Recommender {
            config: info.config,
            users,
            items,
            titles: info.titles,
            model,
            popularity,
            biases,
            seen,
            rating_bounds: info.rating_bounds,
            trained_users: info.trained_users,
            trained_items: info.trained_items,
            user_features: info.user_features,
            item_features: info.item_features,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::{InteractionOptions, Interactions};
    use crate::recommend::{train, ModelKind};

    #[test]
    fn a_saved_recommender_loads_back_the_same() {
        let text = "a\tx\t5\na\ty\t3\nb\tx\t4\nb\tz\t2\nc\tz\t5\n";
        let data = Interactions::parse(
            text.as_bytes(),
            Path::new("r"),
            &InteractionOptions::default(),
        )
        .unwrap();
        let config = RecommendConfig {
            factors: 3,
            epochs: 5,
            ..RecommendConfig::new(ModelKind::Mf)
        };
        let model = train(&data, None, None, &config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rec");
        model.save(&path).unwrap();
        assert!(Recommender::is_recommender(&path).unwrap());
        let back = Recommender::load(&path).unwrap();
        assert_eq!(back.config, model.config);
        assert_eq!(back.users, model.users);
        assert_eq!(back.items, model.items);
        assert_eq!(back.model, model.model);
        assert_eq!(back.popularity, model.popularity);
        assert_eq!(back.biases, model.biases);
        assert_eq!(back.seen, model.seen);
        assert_eq!(back.rating_bounds, model.rating_bounds);
        assert_eq!(
            back.top("a", 2, true).unwrap(),
            model.top("a", 2, true).unwrap()
        );
    }
}
