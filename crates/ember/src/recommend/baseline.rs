//! The baselines every recommender is reported beside: popularity (how many users liked
//! each item) and user and item biases (`μ + b_u + b_i`, fitted as Surprise's
//! `BaselineOnly` does, by alternating regularised means).

use super::model::Scorer;
use crate::data::interactions::Interactions;

/// Items scored by how many training users liked them (rated them at least
/// `positive_min`, or interacted at all with implicit feedback); ties go to the item with
/// more interactions of any kind.
pub fn popularity(data: &Interactions, positive_min: f32) -> Scorer {
    let (mut liked, mut other) = (vec![0u32; data.items.len()], vec![0u32; data.items.len()]);
    for (&i, &r) in data.item.iter().zip(&data.rating) {
        if !data.explicit || r >= positive_min {
            liked[i as usize] += 1;
        } else {
            other[i as usize] += 1;
        }
    }
    // Likes, plus the other interactions as a fraction below one like.
    let users = (data.users.len() + 1) as f64;
    let score: Vec<f32> = liked
        .iter()
        .zip(&other)
        .map(|(&l, &o)| (l as f64 + o as f64 / users) as f32)
        .collect();
    Scorer {
        predicts_ratings: false,
        mean: 0.0,
        user_bias: vec![0.0; data.users.len()],
        item_bias: score,
        factors: 0,
        user_factors: Vec::new(),
        item_factors: Vec::new(),
    }
}

/// Surprise's `BaselineOnly` with its defaults: 10 alternating passes, item biases with
/// regularisation 10 then user biases with 15.
pub fn biases(data: &Interactions) -> Scorer {
    let (reg_item, reg_user, passes) = (10.0f64, 15.0f64, 10);
    let mean = data.rating.iter().map(|&r| r as f64).sum::<f64>() / data.len().max(1) as f64;
    let mut bu = vec![0.0f64; data.users.len()];
    let mut bi = vec![0.0f64; data.items.len()];
    let mut user_count = vec![0.0f64; data.users.len()];
    let mut item_count = vec![0.0f64; data.items.len()];
    for (&u, &i) in data.user.iter().zip(&data.item) {
        user_count[u as usize] += 1.0;
        item_count[i as usize] += 1.0;
    }
    for _ in 0..passes {
        let mut sums = vec![0.0f64; bi.len()];
        for r in 0..data.len() {
            sums[data.item[r] as usize] += data.rating[r] as f64 - mean - bu[data.user[r] as usize];
        }
        for ((b, s), n) in bi.iter_mut().zip(&sums).zip(&item_count) {
            *b = s / (reg_item + n);
        }
        let mut sums = vec![0.0f64; bu.len()];
        for r in 0..data.len() {
            sums[data.user[r] as usize] += data.rating[r] as f64 - mean - bi[data.item[r] as usize];
        }
        for ((b, s), n) in bu.iter_mut().zip(&sums).zip(&user_count) {
            *b = s / (reg_user + n);
        }
    }
    Scorer {
        predicts_ratings: data.explicit,
        mean: mean as f32,
        user_bias: bu.into_iter().map(|b| b as f32).collect(),
        item_bias: bi.into_iter().map(|b| b as f32).collect(),
        factors: 0,
        user_factors: Vec::new(),
        item_factors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::InteractionOptions;
    use std::path::Path;

    #[test]
    fn biases_match_hand_computed_regularised_means() {
        // One user, one item, rating 5 with mean 5: every bias is 0.
        let data =
            Interactions::parse(b"a\tx\t5\n", Path::new("r"), &InteractionOptions::default())
                .unwrap();
        let s = biases(&data);
        assert_eq!((s.mean, s.user_bias[0], s.item_bias[0]), (5.0, 0.0, 0.0));
        // Ratings a·x 4, a·y 2, b·x 3: mean 3. First item pass: b_x = (1 + 0)/12, b_y = −1/11.
        let text = "a\tx\t4\na\ty\t2\nb\tx\t3\n";
        let data = Interactions::parse(
            text.as_bytes(),
            Path::new("r"),
            &InteractionOptions::default(),
        )
        .unwrap();
        let s = biases(&data);
        assert!(s.item_bias[0] > 0.0 && s.item_bias[1] < 0.0, "{s:?}");
        assert!(s.item_bias[0] < 1.0 / 12.0 + 1e-3);
    }

    #[test]
    fn popularity_counts_liked_items_first() {
        let text = "a\tx\t5\nb\tx\t4\na\ty\t2\nb\ty\t1\nc\ty\t3\nc\tz\t4\n";
        let data = Interactions::parse(
            text.as_bytes(),
            Path::new("r"),
            &InteractionOptions::default(),
        )
        .unwrap();
        let s = popularity(&data, 4.0);
        // x liked twice, z once, y never (three other interactions).
        assert!(s.item_bias[0] > s.item_bias[2] && s.item_bias[2] > s.item_bias[1]);
    }
}
