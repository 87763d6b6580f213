//! Differentially private training (DP-SGD) on MNIST digits: the per-example gradients it
//! clips match finite differences of each sample's own loss; without noise or clipping, on
//! the whole batch, it is plain SGD; its ledger counts the steps it took and gives the
//! accountant's ε; it is reproducible (seeds, thread counts, a resumed run); and layers it
//! cannot train privately are refused by name.

use ember::prelude::*;
use ember::privacy::{rdp_epsilon, Privacy, Sampling};

mod common;
use common::digits;

/// A small tanh convnet of the kind DP training favours (strided convolutions, overlapping
/// max pooling, few weights).
fn convnet(seed: u64) -> Model {
    convnet_pooled(seed, false)
}

/// [`convnet`], with average pooling instead of max pooling when `average`: smooth, for
/// finite differences (the maximum of windows over a digit's flat background has kinks).
fn convnet_pooled(seed: u64, average: bool) -> Model {
    let mut m = Sequential::with_seed(&[28, 28, 1], seed);
    m.add(
        Conv2D::new(4, (6, 6))
            .strides((2, 2))
            .padding(Padding::Same)
            .activation(Activation::Tanh),
    )
    .unwrap();
    match average {
        true => m.add(AveragePooling2D::new((2, 2)).strides((1, 1))),
        false => m.add(MaxPooling2D::new((2, 2)).strides((1, 1))),
    }
    .unwrap();
    m.add(
        Conv2D::new(6, (4, 4))
            .strides((2, 2))
            .activation(Activation::Tanh),
    )
    .unwrap();
    m.add(Flatten).unwrap();
    m.add(Dense::new(12).activation(Activation::Tanh)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m.into()
}

fn quiet(epochs: usize, batch_size: usize) -> FitOptions<'static> {
    FitOptions {
        epochs,
        batch_size,
        seed: Some(5),
        verbose: Verbosity::Silent,
        ..FitOptions::default()
    }
}

#[test]
fn per_example_gradients_match_finite_differences_of_each_sample_s_loss() {
    let (x, y) = digits(3);
    let mut model = convnet_pooled(2, true);
    model
        .compile(Sgd::new(0.1), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let (_, per_example) = model.per_example_gradients(&[&x], &[&y]).unwrap();
    let weights = model.get_weights();
    let h = 1e-3f32;
    let mut compared = 0;
    for i in 0..3 {
        let xi = x.slice_rows(i, i + 1).unwrap();
        let yi = y.slice_rows(i, i + 1).unwrap();
        for (w, grads) in per_example.iter().enumerate() {
            let len = weights[w].len();
            // A spread of each weight's coordinates.
            for j in (0..len).step_by((len / 7).max(1)) {
                let loss_at = |delta: f32, model: &mut Model| {
                    let mut moved = weights.clone();
                    let mut values = moved[w].data().to_vec();
                    values[j] += delta;
                    moved[w] = Tensor::new(weights[w].shape(), values).unwrap();
                    model.set_weights(moved).unwrap();
                    model.loss_gradients(&[&xi], &[&yi]).unwrap().0 as f64
                };
                let numeric = (loss_at(h, &mut model) - loss_at(-h, &mut model)) / (2.0 * h as f64);
                let analytic = grads.data()[i * len + j] as f64;
                let alone = model.loss_gradients(&[&xi], &[&yi]).unwrap().1[w].data()[j] as f64;
                eprintln!("{i} {w} {j}: fd {numeric} per {analytic} alone {alone}");
                assert!(
                    (numeric - analytic).abs() <= 1e-3 + 1e-2 * analytic.abs(),
                    "sample {i}, weight {w}[{j}]: finite difference {numeric}, per-example {analytic}"
                );
                compared += 1;
            }
        }
    }
    model.set_weights(weights).unwrap();
    assert!(compared > 100, "{compared}");
}

#[test]
fn without_noise_or_clipping_on_the_whole_batch_it_is_plain_sgd() {
    // Sampling rate 1 (the batch is every row) puts each row in the one batch of each epoch;
    // σ = 0 and a clipping norm no gradient reaches leave the mean gradient as it is.
    let (x, y) = digits(48);
    let mut plain = convnet(4);
    plain
        .compile(Sgd::new(0.5), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let mut private = convnet(4);
    private
        .compile(Sgd::new(0.5), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    private.make_private(Privacy::new(1e6, 0.0, 1e-5)).unwrap();
    plain.fit(&x, &y, &quiet(3, 48)).unwrap();
    private.fit(&x, &y, &quiet(3, 48)).unwrap();
    for (a, b) in plain.get_weights().iter().zip(private.get_weights()) {
        for (a, b) in a.data().iter().zip(b.data()) {
            assert!((a - b).abs() <= 1e-5 + 1e-4 * a.abs(), "{a} vs {b}");
        }
    }
    let ledger = private.privacy().unwrap();
    assert_eq!(ledger.spent.len(), 1);
    assert_eq!(
        (ledger.spent[0].sample_rate, ledger.spent[0].steps),
        (1.0, 3)
    );
    assert_eq!(ledger.epsilon().unwrap(), f64::INFINITY);
}

#[test]
fn private_training_learns_counts_its_steps_and_is_reproducible() {
    let (x, y) = digits(1000);
    let train = |threads: usize, epochs: usize| {
        let mut m = convnet(8);
        m.compile(
            Sgd::new(1.0).momentum(0.9, false),
            Loss::CategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.make_private(Privacy::new(0.5, 0.8, 1e-5)).unwrap();
        let history =
            ember::tensor::threads::limited(threads, || m.fit(&x, &y, &quiet(epochs, 100)))
                .unwrap();
        (m, history)
    };
    let (model, history) = train(2, 6);
    // q = 100 / 1000: ⌊1/q⌋ = 10 Poisson-sampled batches an epoch.
    let ledger = model.privacy().unwrap();
    assert_eq!(ledger.spent[0].steps, 60);
    assert_eq!(ledger.spent[0].sample_rate, 0.1);
    let eps = rdp_epsilon(0.1, 0.8, 60, 1e-5).unwrap();
    assert!((ledger.epsilon().unwrap() - eps).abs() < 1e-12);
    assert_eq!(
        ledger.guarantee_line().unwrap(),
        format!("Privacy: epsilon = {eps:.2}, delta = 1e-5")
    );
    let accuracy = history.metric("accuracy");
    assert!(
        *accuracy.last().unwrap() > 0.6,
        "private training should still learn: {accuracy:?}"
    );
    // One thread or two: the same weights, to the bit.
    let (one_thread, _) = train(1, 6);
    assert_eq!(model.get_weights(), one_thread.get_weights());
    // A run stopped after 4 epochs and resumed equals the uninterrupted run, ledger too.
    let (mut resumed, _) = train(2, 4);
    let options = FitOptions {
        initial_epoch: 4,
        ..quiet(6, 100)
    };
    resumed.fit(&x, &y, &options).unwrap();
    assert_eq!(resumed.get_weights(), model.get_weights());
    assert_eq!(resumed.privacy(), model.privacy());
}

#[test]
fn a_saved_private_model_keeps_its_ledger_and_shows_its_guarantee() {
    let (x, y) = digits(200);
    let mut m = convnet(3);
    m.compile(Sgd::new(0.5), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    m.make_private(Privacy::new(1.0, 1.1, 1e-5)).unwrap();
    m.fit(&x, &y, &quiet(2, 50)).unwrap();
    let dir = std::env::temp_dir().join(format!("ember-privacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("private.safetensors");
    m.save(&file).unwrap();
    let loaded = Model::load(&file).unwrap();
    assert_eq!(loaded.privacy(), m.privacy());
    assert_eq!(loaded.privacy().unwrap().spent[0].steps, 8);
    let summary = loaded.summary();
    let line = m.privacy().unwrap().guarantee_line().unwrap();
    assert!(summary.contains(&line), "{summary}");
    assert!(
        summary.contains("8 steps at sampling rate 0.25000"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layers_that_cannot_be_trained_privately_are_refused_by_name() {
    let mut m = Sequential::with_seed(&[28, 28, 1], 1);
    m.add(Flatten).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    let mut model: Model = m.into();
    let privacy = Privacy::new(1.0, 1.0, 1e-5);
    let err = model.make_private(privacy.clone()).unwrap_err().to_string();
    assert!(err.contains("compile()"), "{err}");
    model
        .compile(Sgd::new(0.1), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let err = model.make_private(privacy.clone()).unwrap_err().to_string();
    assert!(
        err.contains("BatchNormalization") && err.contains("LayerNormalization"),
        "{err}"
    );
    assert!(model.privacy().is_none());
    // A weight penalty belongs to no example.
    let mut m = Sequential::with_seed(&[4], 1);
    m.add(Dense::new(2).kernel_l2(0.01)).unwrap();
    let mut model: Model = m.into();
    model
        .compile(Sgd::new(0.1), Loss::MeanSquaredError, &[])
        .unwrap();
    let err = model.make_private(privacy.clone()).unwrap_err().to_string();
    assert!(err.contains("weight penalty"), "{err}");
    // Settings that make no sense are named.
    let mut m = Sequential::with_seed(&[4], 1);
    m.add(Dense::new(2)).unwrap();
    let mut model: Model = m.into();
    model
        .compile(Sgd::new(0.1), Loss::MeanSquaredError, &[])
        .unwrap();
    let err = model
        .make_private(Privacy::new(-1.0, 1.0, 1e-5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("privacy.max_grad_norm"), "{err}");
    // Shuffled batches train, and say that the ε is not a proven guarantee.
    let mut shuffled = Privacy::new(1.0, 1.0, 1e-5);
    shuffled.sampling = Sampling::Shuffle;
    model.make_private(shuffled).unwrap();
    let x = Tensor::new(&[10, 4], vec![0.5; 40]).unwrap();
    let y = Tensor::new(&[10, 2], vec![1.0; 20]).unwrap();
    model.fit(&x, &y, &quiet(1, 3)).unwrap();
    let ledger = model.privacy().unwrap();
    assert_eq!(ledger.spent[0].steps, 4);
    assert!(ledger
        .guarantee_line()
        .unwrap()
        .contains("not a proven guarantee"));
}
