//! The conformance harness every layer passes (Keras's layer test, in spirit): output shape,
//! parameter count, gradients against finite differences, save / load round trip, summary.

use crate::autograd::gradcheck::check_gradients_with;
use crate::autograd::FillMode;
use crate::nn::*;
use crate::prelude::*;
use crate::tensor::numel;
use crate::tensor::random::{uniform_tensor, Rng};
use crate::{Activation, Tape};

fn random(shape: &[usize], seed: u64) -> Tensor {
    uniform_tensor(shape, -1.0, 1.0, &mut Rng::seed(seed))
}

/// Runs every check on one layer configuration for samples of `input`.
fn conform(config: LayerConfig, input: &[usize]) {
    conform_with(config, input, None)
}

/// Random samples for a layer: values in [−1, 1], or integer ids below `vocabulary`.
fn samples(shape: &[usize], seed: u64, vocabulary: Option<usize>) -> Tensor {
    let Some(v) = vocabulary else {
        return random(shape, seed);
    };
    let mut rng = Rng::seed(seed);
    let ids = (0..numel(shape)).map(|_| rng.below(v) as f32).collect();
    Tensor::new(shape, ids).unwrap()
}

/// [`conform`], for layers whose inputs are token ids below `vocabulary` (no gradient with
/// respect to the input, then).
fn conform_with(config: LayerConfig, input: &[usize], vocabulary: Option<usize>) {
    let name = format!("{config:?} on {input:?}");
    let (declared_shape, declared_params) = config.shape_and_params(input).unwrap();

    // Built alone, a layer owns its weights.
    let mut layer = config.to_layer();
    let output = layer.build(input, &mut Rng::seed(3)).unwrap();
    assert_eq!(output, declared_shape, "{name}: output shape");
    let params: Vec<Tensor> = layer.weights().iter().map(|w| w.value.clone()).collect();
    assert_eq!(
        layer.weights_mut().len(),
        params.len(),
        "{name}: weights_mut"
    );
    assert_eq!(
        params.iter().map(Tensor::len).sum::<usize>(),
        declared_params,
        "{name}: parameters"
    );
    assert_eq!(
        layer
            .weights()
            .iter()
            .filter(|w| !w.trainable)
            .map(|w| w.value.len())
            .sum::<usize>(),
        config.non_trainable_params(input),
        "{name}: non-trainable parameters"
    );
    // The layer reports the configuration it was made from, as it was written.
    assert_eq!(layer.config(), config, "{name}: config round trip");

    // Forward shape and gradients with respect to the input and every weight.
    let mut batch_shape = vec![2];
    batch_shape.extend_from_slice(input);
    let mut inputs = params.clone();
    let x_value = samples(&batch_shape, 11, vocabulary);
    if vocabulary.is_none() {
        inputs.push(x_value.clone());
    }
    let x_index = inputs.len() - 1;
    let weights = params.len();
    check_gradients_with(&[], 5, Some(&inputs), |tape, v| {
        let x = match vocabulary {
            Some(_) => tape.constant(&x_value),
            None => v[x_index],
        };
        let y = crate::nn::call_on_tape(&*layer, tape, &v[..weights], x, None, false)?;
        let mut expected = vec![2];
        expected.extend_from_slice(&declared_shape);
        assert_eq!(
            tape.value(y).shape(),
            expected.as_slice(),
            "{name}: forward shape"
        );
        Ok(y)
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));

    // Inference without a tape gives exactly what the tape records.
    let mut tape = Tape::new();
    let vars: Vec<_> = params.iter().map(|w| tape.param(w.clone())).collect();
    let x = tape.constant(&x_value);
    let recorded = crate::nn::call_on_tape(&*layer, &mut tape, &vars, x, None, false).unwrap();
    assert_eq!(
        &layer.forward(&x_value).unwrap(),
        tape.value(recorded),
        "{name}: tape-free forward"
    );
    assert_eq!(
        layer
            .call(
                &mut crate::autograd::Pass::eager(),
                crate::autograd::Value::from(x_value.clone()),
                None
            )
            .and_then(crate::autograd::Value::into_tensor)
            .unwrap(),
        layer.forward(&x_value).unwrap(),
        "{name}: an owned input"
    );

    // In a model: summary, save / load round trip with bit-identical outputs.
    let mut model = Sequential::with_seed(input, 4);
    model.add_boxed(config.to_layer()).unwrap();
    model.add(Flatten).unwrap();
    model
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    model
        .compile(
            Adam::default(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
    let summary = model.summary();
    assert!(
        summary.contains(&format!("({})", layer.kind())),
        "{name}: {summary}"
    );
    let x = samples(&batch_shape, 12, vocabulary);
    let y = Tensor::new(&[2], vec![0.0, 2.0]).unwrap();
    let options = FitOptions {
        epochs: 2,
        batch_size: 1,
        verbose: Verbosity::Silent,
        ..Default::default()
    };
    model.fit(&x, &y, &options).unwrap();
    let spec = crate::spec::ModelSpec::from_model(&model, Default::default(), None).unwrap();
    let bytes = crate::io::to_bytes(&model, &spec, 2).unwrap();
    let loaded = crate::io::from_bytes(&bytes, std::path::Path::new("m"))
        .unwrap()
        .model;
    assert_eq!(
        loaded.predict(&x, 2).unwrap(),
        model.predict(&x, 2).unwrap(),
        "{name}: save / load"
    );
}

#[test]
fn every_layer_conforms() {
    let pool = |pool_size, strides, padding| PoolingConfig {
        pool_size,
        strides,
        padding,
    };
    let cases = [
        (
            LayerConfig::Dense(DenseConfig {
                units: 3,
                activation: Activation::Relu,
                use_bias: true,
                kernel_regularizer: Some(Regularizer { l2: 0.01 }),
            }),
            vec![4],
        ),
        (
            LayerConfig::Dense(DenseConfig {
                units: 2,
                activation: Activation::Linear,
                use_bias: false,
                kernel_regularizer: None,
            }),
            vec![3, 4],
        ),
        (
            LayerConfig::Activation(ActivationConfig {
                activation: Activation::Tanh,
            }),
            vec![5],
        ),
        (
            LayerConfig::Conv2d(Conv2DConfig {
                filters: 2,
                kernel_size: Size2::Square(3),
                strides: Size2::Square(1),
                padding: Padding::Valid,
                activation: Activation::Relu,
                use_bias: true,
            }),
            vec![5, 5, 2],
        ),
        (
            LayerConfig::Conv2d(Conv2DConfig {
                filters: 3,
                kernel_size: Size2::Rect([2, 3]),
                strides: Size2::Rect([2, 1]),
                padding: Padding::Same,
                activation: Activation::Linear,
                use_bias: false,
            }),
            vec![5, 4, 1],
        ),
        (
            LayerConfig::MaxPooling2d(pool(Size2::Square(2), None, Padding::Valid)),
            vec![4, 5, 2],
        ),
        (
            LayerConfig::MaxPooling2d(pool(
                Size2::Square(3),
                Some(Size2::Square(2)),
                Padding::Same,
            )),
            vec![5, 5, 1],
        ),
        (
            LayerConfig::AveragePooling2d(pool(Size2::Square(2), None, Padding::Valid)),
            vec![4, 5, 2],
        ),
        (
            LayerConfig::AveragePooling2d(pool(
                Size2::Square(3),
                Some(Size2::Square(2)),
                Padding::Same,
            )),
            vec![5, 5, 1],
        ),
        (
            LayerConfig::GlobalAveragePooling2d(GlobalAveragePooling2DConfig {}),
            vec![3, 4, 2],
        ),
        (LayerConfig::Flatten(FlattenConfig {}), vec![2, 3, 2]),
        (
            LayerConfig::Reshape(ReshapeConfig {
                target_shape: vec![3, 2, 2],
            }),
            vec![12],
        ),
        (LayerConfig::Dropout(DropoutConfig { rate: 0.5 }), vec![6]),
        (
            LayerConfig::RandomFlip(RandomFlipConfig {
                mode: FlipMode::HorizontalAndVertical,
            }),
            vec![3, 4, 2],
        ),
        (
            LayerConfig::RandomTranslation(RandomTranslationConfig {
                height_factor: 0.2,
                width_factor: 0.1,
                fill_mode: FillMode::Constant,
            }),
            vec![4, 4, 1],
        ),
        (
            LayerConfig::RandomRotation(RandomRotationConfig {
                factor: 0.05,
                fill_mode: FillMode::Reflect,
            }),
            vec![4, 3, 2],
        ),
        (
            LayerConfig::BatchNormalization(BatchNormalizationConfig {
                momentum: 0.99,
                epsilon: 1e-3,
                center: true,
                scale: true,
            }),
            vec![3, 2, 2],
        ),
        (
            LayerConfig::BatchNormalization(BatchNormalizationConfig {
                momentum: 0.5,
                epsilon: 1e-2,
                center: false,
                scale: true,
            }),
            vec![4],
        ),
    ];
    for (config, input) in cases {
        conform(config, &input);
    }
    conform_with(
        LayerConfig::Embedding(EmbeddingConfig {
            input_dim: 7,
            output_dim: 3,
        }),
        &[4],
        Some(7),
    );
}

#[test]
fn text_layers_conform() {
    let cases = [
        (
            LayerConfig::LayerNormalization(LayerNormalizationConfig {
                epsilon: 1e-3,
                center: true,
                scale: true,
            }),
            vec![3, 4],
        ),
        (
            LayerConfig::MultiHeadAttention(MultiHeadAttentionConfig {
                num_heads: 2,
                key_dim: 3,
            }),
            vec![3, 4],
        ),
        (
            LayerConfig::TransformerEncoder(TransformerEncoderConfig {
                num_heads: 2,
                intermediate_dim: 5,
                epsilon: 1e-5,
                dropout: 0.1,
            }),
            vec![3, 4],
        ),
    ];
    for (config, input) in cases {
        conform(config, &input);
    }
}

#[test]
fn dropout_zeroes_a_fraction_in_training_only_and_keeps_the_mean() {
    let mut tape = Tape::new();
    let mut layer = Dropout::new(0.3);
    layer.build(&[10_000], &mut Rng::seed(1)).unwrap();
    let ones = Tensor::full(&[1, 10_000], 1.0);
    let x = tape.constant(&ones);
    let train = crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, true).unwrap();
    let values = tape.value(train).data();
    let zeros = values.iter().filter(|&&v| v == 0.0).count() as f64 / 10_000.0;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / 10_000.0;
    assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
    assert!((mean - 1.0).abs() < 0.03, "{mean}");
    assert!(values
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    let again = crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, true).unwrap();
    assert_ne!(
        tape.value(again).data(),
        tape.value(train).data(),
        "a new mask each step"
    );
    let eval = crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, false).unwrap();
    assert_eq!(eval, x, "identity at inference");
    assert_eq!(
        layer.forward(&ones).unwrap(),
        ones,
        "identity without a tape"
    );
    assert!(Dropout::new(1.0).build(&[1], &mut Rng::seed(1)).is_err());
}
