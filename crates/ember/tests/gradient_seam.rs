//! The training step's seam between gradients and updates, on MNIST digits: gradient
//! transforms run before the optimizer (a doubling transform is SGD at twice the rate; Keras's
//! `global_clipnorm` formula), per-example gradients from one backward pass equal the
//! gradients of each sample alone, and a convolution and the pooling after it, run in one
//! pass, predict what the layers run apart do.

use ember::optim::{GlobalNormClip, Scale};
use ember::prelude::*;

mod common;
use common::digits;

/// Conv2D → max pooling → Flatten → Dense: both kinds of weight a per-example rule covers.
fn convnet(seed: u64) -> Model {
    let mut m = Sequential::with_seed(&[28, 28, 1], seed);
    m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
        .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten).unwrap();
    m.add(Dense::new(16).activation(Activation::Tanh)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m.into()
}

fn weights(model: &Model) -> Vec<Vec<f32>> {
    model
        .weights()
        .iter()
        .map(|(_, w)| w.data().to_vec())
        .collect()
}

fn options(epochs: usize, batch_size: usize) -> FitOptions<'static> {
    FitOptions {
        epochs,
        batch_size,
        verbose: Verbosity::Silent,
        ..Default::default()
    }
}

#[test]
fn a_transform_doubling_gradients_is_sgd_at_twice_the_rate() {
    let (x, y) = digits(256);
    let mut doubled = convnet(3);
    doubled
        .compile(Sgd::new(0.05), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    doubled
        .add_gradient_transform(Box::new(Scale::new(2.0).unwrap()))
        .unwrap();
    let mut faster = convnet(3);
    faster
        .compile(Sgd::new(0.1), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let mut plain = convnet(3);
    plain
        .compile(Sgd::new(0.05), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    for model in [&mut doubled, &mut faster, &mut plain] {
        model.fit(&x, &y, &options(2, 32)).unwrap();
    }
    // lr · (2g) and (2 lr) · g are the same floats: a factor of two is exact.
    assert_eq!(weights(&doubled), weights(&faster));
    assert_ne!(weights(&doubled), weights(&plain));
}

#[test]
fn global_clipnorm_scales_the_step_by_keras_formula() {
    let (x, y) = digits(64);
    let lr = 0.5;
    let mut model = convnet(5);
    model
        .compile(Sgd::new(lr), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let before = weights(&model);
    let (_, grads) = model.loss_gradients(&[&x], &[&y]).unwrap();
    let norm = grads.iter().map(|g| g.sum_of_squares()).sum::<f64>().sqrt();
    // A limit well below the batch's gradient norm, so that the clip acts.
    let limit = (norm / 4.0) as f32;
    model
        .compile(
            Optimizer::from(Sgd::new(lr)).global_clipnorm(limit),
            Loss::CategoricalCrossentropy,
            &[],
        )
        .unwrap();
    let mut once = options(1, 64);
    once.shuffle = false;
    model.fit(&x, &y, &once).unwrap();
    // Keras / TensorFlow: g · limit / max(global_norm, limit), then w − lr · g.
    let factor = limit as f64 / norm.max(limit as f64);
    for ((after, before), g) in weights(&model).iter().zip(&before).zip(&grads) {
        for ((a, b), g) in after.iter().zip(before).zip(g.data()) {
            let expected = *b as f64 - lr as f64 * factor * *g as f64;
            assert!(
                (*a as f64 - expected).abs() < 1e-5,
                "{a} vs {expected} (factor {factor})"
            );
        }
    }
    // In a model file the option is Keras's optimizer argument, checked there.
    let err = model
        .compile(
            Optimizer::from(Sgd::new(lr)).global_clipnorm(-1.0),
            Loss::CategoricalCrossentropy,
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("global_clipnorm"), "{err}");
}

#[test]
fn per_example_gradients_equal_each_sample_alone() {
    let (x, y) = digits(32);
    let mut model = convnet(7);
    model
        .compile(Adam::default(), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let (_, per_example) = model.per_example_gradients(&[&x], &[&y]).unwrap();
    let shapes: Vec<Vec<usize>> = model
        .weights()
        .iter()
        .map(|(_, w)| w.shape().to_vec())
        .collect();
    for (g, shape) in per_example.iter().zip(&shapes) {
        assert_eq!(g.shape()[0], 32);
        assert_eq!(&g.shape()[1..], shape.as_slice());
    }
    let mut largest = 0.0f32;
    for i in 0..32 {
        let xi = x.slice_rows(i, i + 1).unwrap();
        let yi = y.slice_rows(i, i + 1).unwrap();
        let (_, alone) = model.loss_gradients(&[&xi], &[&yi]).unwrap();
        for (batch, alone) in per_example.iter().zip(&alone) {
            let row = &batch.data()[i * alone.len()..(i + 1) * alone.len()];
            for (a, b) in row.iter().zip(alone.data()) {
                largest = largest.max(b.abs());
                assert!(
                    (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                    "sample {i}: {a} vs {b}"
                );
            }
        }
    }
    assert!(largest > 1e-3, "the gradients compared are not all zero");
    // Their mean is the batch's gradient.
    let (_, batch) = model.loss_gradients(&[&x], &[&y]).unwrap();
    for (per, whole) in per_example.iter().zip(&batch) {
        for (j, w) in whole.data().iter().enumerate() {
            let mean: f32 = (0..32)
                .map(|i| per.data()[i * whole.len() + j])
                .sum::<f32>()
                / 32.0;
            assert!((mean - w).abs() <= 1e-5 + 1e-4 * w.abs(), "{mean} vs {w}");
        }
    }
}

#[test]
fn per_example_gradients_refuse_a_trained_layer_without_a_rule() {
    let (x, y) = digits(8);
    let mut m = Sequential::with_seed(&[28, 28, 1], 1);
    m.add(Flatten).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    let mut model: Model = m.into();
    model
        .compile(Sgd::new(0.1), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let err = model.per_example_gradients(&[&x], &[&y]).unwrap_err();
    assert!(err.to_string().contains("batch normalization"), "{err}");
    // Frozen, it is a constant of the pass, and the rest has a rule.
    let name = model.weights()[0].0.split('/').next().unwrap().to_string();
    model.set_trainable(&name, false).unwrap();
    let (_, grads) = model.per_example_gradients(&[&x], &[&y]).unwrap();
    assert_eq!(grads.last().unwrap().shape(), &[8, 10]);
    let _ = GlobalNormClip::new(1.0).unwrap();
}

#[test]
fn a_pooling_computed_with_its_convolution_changes_no_prediction() {
    // The model runs Conv2D and the max pooling after it in one pass (the pooling alone
    // reads the convolution); its layers one by one run them apart. Same numbers, to the bit.
    let model = convnet(5);
    let (x, _) = digits(37);
    let predicted = model.predict(&x, 16).unwrap();
    let mut apart = x.clone();
    for (_, layer) in model.layers() {
        apart = layer.forward(&apart).unwrap();
    }
    assert_eq!(predicted, apart);
}
