//! Ranking metrics of one user's top-k list against the items relevant to them: precision,
//! recall, NDCG, average precision and hit rate at k, and the AUC of the whole ranking
//! (per user, over the candidates not seen in training).

use std::collections::HashSet;

/// The scores of one ranked list at cut-off k (binary relevance).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RankingScores {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    /// Average precision at k, normalised by `min(|relevant|, k)`.
    pub average_precision: f64,
    /// 1 when any of the top k is relevant.
    pub hit: f64,
}

/// Scores `ranked` (best first, at most k long) against `relevant` (not empty), at `k`.
pub fn ranking_at_k(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> RankingScores {
    let top = &ranked[..ranked.len().min(k)];
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut precision_sum = 0.0;
    for (rank, item) in top.iter().enumerate() {
        if relevant.contains(item) {
            hits += 1;
            dcg += 1.0 / (rank as f64 + 2.0).log2();
            precision_sum += hits as f64 / (rank + 1) as f64;
        }
    }
    let ideal_hits = relevant.len().min(k);
    let ideal: f64 = (0..ideal_hits).map(|r| 1.0 / (r as f64 + 2.0).log2()).sum();
    RankingScores {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: if ideal > 0.0 { dcg / ideal } else { 0.0 },
        average_precision: if ideal_hits > 0 {
            precision_sum / ideal_hits as f64
        } else {
            0.0
        },
        hit: if hits > 0 { 1.0 } else { 0.0 },
    }
}

/// The share of (relevant, irrelevant) candidate pairs ranked the right way round, ties
/// half; relevant items the model does not know count as ranked last.
pub fn user_auc(scores: &[f32], seen: &HashSet<u32>, relevant: &HashSet<u32>) -> f64 {
    let n = scores.len() as u32;
    let mut positive: Vec<f32> = Vec::new();
    let mut negative: Vec<f32> = Vec::new();
    for i in 0..n {
        if seen.contains(&i) {
            continue;
        }
        if relevant.contains(&i) {
            positive.push(scores[i as usize]);
        } else {
            negative.push(scores[i as usize]);
        }
    }
    let unknown = relevant.iter().filter(|&&i| i >= n).count();
    let pairs = (positive.len() + unknown) as f64 * negative.len() as f64;
    if pairs == 0.0 {
        return 0.5;
    }
    negative.sort_by(f32::total_cmp);
    let mut right = 0.0;
    for p in positive {
        let below = negative.partition_point(|&x| x < p);
        let ties = negative[below..].partition_point(|&x| x <= p);
        right += below as f64 + 0.5 * ties as f64;
    }
    right / pairs
}

/// Averages of [`RankingScores`] over users, with the AUC beside them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanRanking {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub hit_rate: f64,
    pub auc: f64,
    pub users: usize,
}

/// Running sums of per-user ranking scores.
#[derive(Clone, Debug, Default)]
pub struct RankingMeans {
    sum: MeanRanking,
}

impl RankingMeans {
    pub fn add(&mut self, s: RankingScores, auc: f64) {
        let m = &mut self.sum;
        m.precision += s.precision;
        m.recall += s.recall;
        m.ndcg += s.ndcg;
        m.map += s.average_precision;
        m.hit_rate += s.hit;
        m.auc += auc;
        m.users += 1;
    }

    pub fn mean(&self) -> MeanRanking {
        let n = self.sum.users.max(1) as f64;
        let m = &self.sum;
        MeanRanking {
            precision: m.precision / n,
            recall: m.recall / n,
            ndcg: m.ndcg / n,
            map: m.map / n,
            hit_rate: m.hit_rate / n,
            auc: m.auc / n,
            users: m.users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computed_list() {
        // Top 5 = [a, b, c, d, e], relevant = {b, d, z}: hits at ranks 2 and 4.
        let relevant: HashSet<u32> = [1, 3, 99].into();
        let s = ranking_at_k(&[0, 1, 2, 3, 4], &relevant, 5);
        assert_eq!(s.precision, 2.0 / 5.0);
        assert_eq!(s.recall, 2.0 / 3.0);
        assert_eq!(s.hit, 1.0);
        // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/2.
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((s.ndcg - dcg / idcg).abs() < 1e-12);
        // AP = (1/2 + 2/4) / min(3, 5).
        assert!((s.average_precision - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_list_scores_one_and_a_miss_zero() {
        let relevant: HashSet<u32> = [7, 8].into();
        let s = ranking_at_k(&[8, 7, 1], &relevant, 3);
        assert_eq!(
            (s.recall, s.ndcg, s.average_precision, s.hit),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(s.precision, 2.0 / 3.0);
        let s = ranking_at_k(&[1, 2, 3], &relevant, 3);
        assert_eq!(s, RankingScores::default());
    }

    #[test]
    fn auc_counts_pairs_ranked_the_right_way_with_ties_half() {
        let scores = [0.9, 0.5, 0.5, 0.1, 0.7];
        let relevant: HashSet<u32> = [1].into();
        // Item 4 seen. Relevant 0.5 against 0.9 (wrong), 0.5 (tie), 0.1 (right): 1.5 / 3.
        let auc = user_auc(&scores, &[4].into(), &relevant);
        assert!((auc - 0.5).abs() < 1e-12);
        let auc = user_auc(&scores, &HashSet::new(), &[0].into());
        assert_eq!(auc, 1.0);
        // An unknown relevant item is ranked last: 0 of its 4 pairs right.
        let auc = user_auc(&scores, &HashSet::new(), &[0, 99].into());
        assert!((auc - 4.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn means_average_over_users() {
        let mut means = RankingMeans::default();
        let relevant: HashSet<u32> = [1].into();
        means.add(ranking_at_k(&[1], &relevant, 1), 1.0);
        means.add(ranking_at_k(&[2], &relevant, 1), 0.5);
        let m = means.mean();
        assert_eq!(
            (m.precision, m.hit_rate, m.auc, m.users),
            (0.5, 0.5, 0.75, 2)
        );
    }
}
