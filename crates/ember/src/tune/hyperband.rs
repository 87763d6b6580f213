//! Hyperband's schedule (Li et al. 2018): brackets of successive halving, epochs as the
//! budget. A bracket starts many configurations on a few epochs, keeps the best 1/factor
//! of them at each rung and trains those further, until the survivors reach max_epochs;
//! brackets differ in how many configurations they start and how early they judge.

/// One rung of a bracket: the survivors are trained to `epochs` epochs in all, then the
/// best `keep` of them go on to the next rung (0 after the last rung).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rung {
    pub epochs: usize,
    pub keep: usize,
}

/// One bracket: how many configurations it starts, and its rungs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bracket {
    pub configs: usize,
    pub rungs: Vec<Rung>,
}

/// The brackets for `max_trials` configurations, each trained for at most `max_epochs`:
/// Hyperband's brackets from the most aggressive (s = s_max) to plain training (s = 0),
/// repeated while trials are left, the last one cut to the trials that remain.
pub fn plan(max_epochs: usize, factor: usize, max_trials: usize) -> Vec<Bracket> {
    let (max_epochs, factor) = (max_epochs.max(1), factor.max(2));
    // s_max = ⌊log_factor(max_epochs)⌋.
    let mut s_max = 0;
    while factor
        .checked_pow(s_max + 1)
        .is_some_and(|budget| budget <= max_epochs)
    {
        s_max += 1;
    }
    if s_max == 0 {
        // Too few epochs to halve: every trial trains fully (random search).
        return match max_trials {
            0 => Vec::new(),
            n => vec![Bracket {
                configs: n,
                rungs: vec![Rung {
                    epochs: max_epochs,
                    keep: 0,
                }],
            }],
        };
    }
    let mut brackets = Vec::new();
    let mut left = max_trials;
    while left > 0 {
        for s in (0..=s_max).rev() {
            if left == 0 {
                break;
            }
            // n = ⌈(s_max + 1) / (s + 1) · factor^s⌉ configurations on max_epochs / factor^s.
            let planned = ((s_max + 1) as usize)
                .saturating_mul(factor.pow(s))
                .div_ceil(s as usize + 1);
            let configs = planned.min(left);
            left -= configs;
            let rungs = (0..=s)
                .map(|i| {
                    let epochs = (max_epochs as f64 / factor.pow(s - i) as f64).round() as usize;
                    let keep = match i == s {
                        true => 0,
                        false => (configs / factor.pow(i + 1)).max(1),
                    };
                    Rung {
                        epochs: epochs.max(1),
                        keep,
                    }
                })
                .collect();
            brackets.push(Bracket { configs, rungs });
        }
    }
    brackets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brackets_of_the_paper() {
        // R = 81, η = 3: s_max = 4, brackets of 81, 34, 15, 8 and 5 configurations.
        let brackets = plan(81, 3, 143);
        let configs: Vec<usize> = brackets.iter().map(|b| b.configs).collect();
        assert_eq!(configs, vec![81, 34, 15, 8, 5]);
        let first = &brackets[0];
        let epochs: Vec<usize> = first.rungs.iter().map(|r| r.epochs).collect();
        let keep: Vec<usize> = first.rungs.iter().map(|r| r.keep).collect();
        assert_eq!(epochs, vec![1, 3, 9, 27, 81]);
        assert_eq!(keep, vec![27, 9, 3, 1, 0]);
        assert_eq!(
            brackets[4].rungs,
            vec![Rung {
                epochs: 81,
                keep: 0
            }]
        );
    }

    #[test]
    fn trials_left_over_start_a_new_round_and_the_last_bracket_is_cut() {
        // R = 9, η = 3: brackets of 9, 5 and 3 (17 trials); 20 trials add a cut bracket of 3.
        let brackets = plan(9, 3, 20);
        let configs: Vec<usize> = brackets.iter().map(|b| b.configs).collect();
        assert_eq!(configs, vec![9, 5, 3, 3]);
        let last = &brackets[3];
        assert_eq!(
            last.rungs,
            vec![
                Rung { epochs: 1, keep: 1 },
                Rung { epochs: 3, keep: 1 },
                Rung { epochs: 9, keep: 0 }
            ]
        );
        assert_eq!(
            plan(1, 3, 4),
            vec![Bracket {
                configs: 4,
                rungs: vec![Rung { epochs: 1, keep: 0 }]
            }]
        );
        assert!(plan(9, 3, 0).is_empty());
        // Budgets at the ends of usize neither overflow nor loop.
        let huge = plan(usize::MAX, 2, 3);
        assert_eq!(huge.iter().map(|b| b.configs).sum::<usize>(), 3);
        assert_eq!(huge[0].rungs.last().unwrap().epochs, usize::MAX);
    }
}
