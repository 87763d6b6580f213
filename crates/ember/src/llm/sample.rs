//! Choosing the next token from the logits, in llama.cpp's order: repetition penalty, top-k,
//! top-p, min-p, temperature, then a draw from a seeded generator (the same seed gives the
//! same text). A temperature of 0 is greedy: the most likely token after the penalty.

use crate::error::{Error, Result};
use crate::tensor::random::Rng;

/// Sampling settings. The defaults are llama.cpp's.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities sum to at least p (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one (0: none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recent tokens by this (1: off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Sampling {
            temperature: 0.0,
            ..Sampling::default()
        }
    }

    /// An error naming the first setting out of range.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, v: f32, range: &str| {
            Err(Error::invalid(format!("{what} must be {range}, got {v}")))
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("the temperature", self.temperature, "a number ≥ 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top-p", self.top_p, "in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min-p", self.min_p, "in [0, 1]");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("the repeat penalty", self.repeat_penalty, "a number > 0");
        }
        Ok(())
    }
}

/// A sampler: the settings and the random generator's state.
pub struct Sampler {
    pub settings: Sampling,
    rng: Rng,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(settings: Sampling) -> Result<Sampler> {
        settings.check()?;
        Ok(Sampler {
            rng: Rng::seed(settings.seed),
            settings,
            candidates: Vec::new(),
        })
    }

    /// The next token given the `logits` of the last position and the tokens so far
    /// (`history`, for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let s = &self.settings;
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if s.repeat_penalty != 1.0 {
            let recent = &history[history.len().saturating_sub(s.repeat_last_n)..];
            let mut seen = std::collections::HashSet::new();
            for &t in recent {
                if seen.insert(t) {
                    if let Some((_, l)) = c.get_mut(t as usize) {
                        *l = if *l > 0.0 {
                            *l / s.repeat_penalty
                        } else {
                            *l * s.repeat_penalty
                        };
                    }
                }
            }
        }
        if s.temperature == 0.0 {
            // The first of equal maxima, as argmax does.
            return c
                .iter()
                .fold((0, f32::NEG_INFINITY), |best, &(i, l)| {
                    if l > best.1 {
                        (i, l)
                    } else {
                        best
                    }
                })
                .0;
        }
        // Probabilities at the temperature, in f64 after taking the largest logit away, so
        // that no temperature overflows.
        let temperature = s.temperature as f64;
        let probabilities = |c: &[(u32, f32)], temperature: f64| -> Vec<f64> {
            let max = c
                .iter()
                .fold(f64::NEG_INFINITY, |m, &(_, l)| m.max(l as f64));
            let e: Vec<f64> = c
                .iter()
                .map(|&(_, l)| ((l as f64 - max) / temperature).exp())
                .collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(|v| v / sum).collect()
        };
        if s.top_k == 0 && s.top_p >= 1.0 && s.min_p == 0.0 {
            // No filter: a draw from the whole vocabulary, unsorted.
            let p = probabilities(c, temperature);
            return draw(&mut self.rng, &p, c);
        }
        // Most likely first; ties by id, so the order is the same on every run.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if s.top_k > 0 && s.top_k < c.len() {
            c.select_nth_unstable_by(s.top_k - 1, by_logit);
            c.truncate(s.top_k);
        }
        c.sort_unstable_by(by_logit);
        // Top-p and min-p look at the probabilities at temperature 1, as llama.cpp's do.
        if s.top_p < 1.0 {
            let p = probabilities(c, 1.0);
            let mut cumulative = 0.0;
            let keep = p
                .iter()
                .position(|&q| {
                    cumulative += q;
                    cumulative >= s.top_p as f64
                })
                .map_or(c.len(), |i| i + 1);
            c.truncate(keep);
        }
        if s.min_p > 0.0 {
            let floor = c[0].1 + s.min_p.ln();
            let keep = c.iter().take_while(|&&(_, l)| l >= floor).count().max(1);
            c.truncate(keep);
        }
        let p = probabilities(c, temperature);
        draw(&mut self.rng, &p, c)
    }
}

/// A draw from `candidates` with probabilities `p`.
fn draw(rng: &mut Rng, p: &[f64], candidates: &[(u32, f32)]) -> u32 {
    let mut u = rng.uniform_f64();
    for (q, &(id, _)) in p.iter().zip(candidates) {
        if u < *q {
            return id;
        }
        u -= q;
    }
    // Rounding left u just above the total: the most likely candidate.
    p.iter()
        .zip(candidates)
        .fold(
            (f64::NEG_INFINITY, candidates[0].0),
            |best, (&q, &(id, _))| {
                if q > best.0 {
                    (q, id)
                } else {
                    best
                }
            },
        )
        .1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(settings: Sampling, logits: &[f32], draws: usize) -> Vec<usize> {
        let mut s = Sampler::new(settings).unwrap();
        let mut n = vec![0; logits.len()];
        for _ in 0..draws {
            n[s.sample(logits, &[]) as usize] += 1;
        }
        n
    }

    #[test]
    fn greedy_takes_the_first_maximum_after_the_penalty() {
        let mut s = Sampler::new(Sampling::greedy()).unwrap();
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, -1.0], &[]), 1);
        let mut p = Sampler::new(Sampling {
            repeat_penalty: 2.0,
            ..Sampling::greedy()
        })
        .unwrap();
        // 3.0 / 2 = 1.5 < 2.0: the repeated token loses.
        assert_eq!(p.sample(&[2.0, 3.0, -1.0], &[1]), 0);
        // A negative logit is multiplied: -1 · 2 = -2.
        assert_eq!(p.sample(&[-1.5, -1.0, -3.0], &[1]), 0);
    }

    #[test]
    fn filters_keep_what_they_promise() {
        let logits = [2.0, 1.0, 0.0, -1.0, -8.0];
        let all = Sampling {
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            temperature: 1.0,
            ..Sampling::default()
        };
        let n = counts(
            Sampling {
                top_k: 2,
                ..all.clone()
            },
            &logits,
            2000,
        );
        assert!(
            n[2..].iter().all(|&c| c == 0) && n[0] > n[1] && n[1] > 0,
            "{n:?}"
        );
        // Probabilities at temperature 1: 0.64, 0.24, 0.09, 0.03, 0.00002; top-p 0.8 keeps 2.
        let n = counts(
            Sampling {
                top_p: 0.8,
                ..all.clone()
            },
            &logits,
            2000,
        );
        assert!(n[2..].iter().all(|&c| c == 0), "{n:?}");
        // min-p 0.1: e^-3 / 1 < 0.1 drops tokens 3 and 4; e^-2 = 0.135 keeps token 2.
        let n = counts(
            Sampling {
                min_p: 0.1,
                ..all.clone()
            },
            &logits,
            4000,
        );
        assert!(n[3] == 0 && n[4] == 0 && n[2] > 0, "{n:?}");
        // Frequencies follow the softmax: token 0 about 64% of 4000 draws.
        let n = counts(all.clone(), &logits, 4000);
        assert!((2400..2720).contains(&n[0]), "{n:?}");
        // A low temperature sharpens; a tiny one is greedy, not a NaN.
        let n = counts(
            Sampling {
                temperature: 0.1,
                ..all.clone()
            },
            &logits,
            1000,
        );
        assert!(n[0] > 990, "{n:?}");
        let n = counts(
            Sampling {
                temperature: 1e-30,
                ..all
            },
            &logits,
            100,
        );
        assert_eq!(n[0], 100, "{n:?}");
        let tiny = Sampling {
            temperature: 1e-30,
            top_k: 2,
            ..Sampling::default()
        };
        assert_eq!(counts(tiny, &logits, 100)[0], 100);
    }

    #[test]
    fn same_seed_same_draws_and_bad_settings_are_errors() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let draw = |seed| {
            let mut s = Sampler::new(Sampling {
                seed,
                ..Sampling::default()
            })
            .unwrap();
            (0..30).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        for bad in [
            Sampling {
                temperature: -1.0,
                ..Sampling::default()
            },
            Sampling {
                temperature: f32::NAN,
                ..Sampling::default()
            },
            Sampling {
                top_p: 0.0,
                ..Sampling::default()
            },
            Sampling {
                min_p: 1.5,
                ..Sampling::default()
            },
            Sampling {
                repeat_penalty: 0.0,
                ..Sampling::default()
            },
        ] {
            assert!(Sampler::new(bad).is_err());
        }
    }
}
