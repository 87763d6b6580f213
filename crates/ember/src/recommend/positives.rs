//! Implicit feedback as the models see it: the liked (user, item) pairs — ratings at least
//! the positive threshold, or every interaction of a file without ratings — and items
//! sampled from those a user did not like.

use std::collections::HashSet;

use crate::data::interactions::Interactions;
use crate::error::{Error, Result};
use crate::tensor::random::Rng;

/// Parallel (user, item, target) columns, for the pointwise models.
pub struct Triples {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
}

impl Triples {
    pub fn of(data: &Interactions) -> Triples {
        Triples {
            user: data.user.clone(),
            item: data.item.clone(),
            rating: data.rating.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// Each user's (item, target) pairs.
    pub fn by_user(&self, users: usize) -> Vec<Vec<(u32, f32)>> {
        let mut rows = vec![Vec::new(); users];
        for r in 0..self.len() {
            rows[self.user[r] as usize].push((self.item[r], self.rating[r]));
        }
        rows
    }
}

/// The liked pairs of a training set, and each user's liked items.
#[derive(Debug)]
pub struct Positives {
    pub pairs: Vec<(u32, u32)>,
    pub liked: Vec<HashSet<u32>>,
    pub items: usize,
}

impl Positives {
    /// The liked pairs of `data`, for `users` users (at least `data`'s) and its items.
    pub fn new(data: &Interactions, positive_min: f32, users: usize) -> Result<Positives> {
        let pairs: Vec<(u32, u32)> = (0..data.len())
            .filter(|&r| !data.explicit || data.rating[r] >= positive_min)
            .map(|r| (data.user[r], data.item[r]))
            .collect();
        if pairs.is_empty() {
            return Err(Error::data(
                &data.path,
                format!("no training rating is at least {positive_min} (--positive-min): there is nothing to rank"),
            ));
        }
        let mut liked: Vec<HashSet<u32>> = vec![HashSet::new(); users];
        for &(u, i) in &pairs {
            liked[u as usize].insert(i);
        }
        let items = data.items.len();
        if liked.iter().all(|l| l.len() >= items) {
            return Err(Error::data(
                &data.path,
                "every user likes every item: there are no negatives to sample",
            ));
        }
        Ok(Positives {
            pairs,
            liked,
            items,
        })
    }

    /// Each user's liked items, in index order (a fixed order, so runs are reproducible).
    pub fn sorted_liked(&self) -> Vec<Vec<u32>> {
        self.liked
            .iter()
            .map(|l| {
                let mut items: Vec<u32> = l.iter().copied().collect();
                items.sort_unstable();
                items
            })
            .collect()
    }

    /// A random item user `u` did not like; None when they like them all.
    pub fn negative(&self, u: u32, rng: &mut Rng) -> Option<u32> {
        let liked = &self.liked[u as usize];
        if liked.len() >= self.items {
            return None;
        }
        loop {
            let j = rng.below(self.items) as u32;
            if !liked.contains(&j) {
                return Some(j);
            }
        }
    }

    /// Every liked pair with target 1 and, for each, `negatives` sampled unliked items
    /// with target 0: the pointwise form of implicit feedback, drawn afresh by each call.
    pub fn pointwise(&self, negatives: usize, rng: &mut Rng) -> Triples {
        let n = self.pairs.len() * (1 + negatives);
        let mut t = Triples {
            user: Vec::with_capacity(n),
            item: Vec::with_capacity(n),
            rating: Vec::with_capacity(n),
        };
        for &(u, i) in &self.pairs {
            t.user.push(u);
            t.item.push(i);
            t.rating.push(1.0);
            for _ in 0..negatives {
                if let Some(j) = self.negative(u, rng) {
                    t.user.push(u);
                    t.item.push(j);
                    t.rating.push(0.0);
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::InteractionOptions;
    use std::path::Path;

    #[test]
    fn positives_are_the_liked_pairs_and_negatives_are_never_liked() {
        let text = "a\tx\t5\na\ty\t2\nb\tz\t4\nb\tx\t1\n";
        let data = Interactions::parse(
            text.as_bytes(),
            Path::new("r"),
            &InteractionOptions::default(),
        )
        .unwrap();
        let p = Positives::new(&data, 4.0, 2).unwrap();
        assert_eq!(p.pairs, [(0, 0), (1, 2)]);
        let mut rng = Rng::seed(1);
        let t = p.pointwise(3, &mut rng);
        assert_eq!(t.len(), 8);
        for r in 0..t.len() {
            let liked = p.liked[t.user[r] as usize].contains(&t.item[r]);
            assert_eq!(liked, t.rating[r] == 1.0);
        }
        let err = Positives::new(&data, 6.0, 2).unwrap_err().to_string();
        assert!(err.contains("no training rating is at least 6"), "{err}");
    }
}
