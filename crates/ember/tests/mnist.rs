//! End-to-end on the real MNIST files shipped in `data/mnist` (copied unchanged from the
//! shared data set; see data/mnist/SOURCE.md).

use std::path::PathBuf;

use ember::prelude::*;
use ember::ModelSpec;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> (Tensor, Tensor, Tensor, Tensor) {
    let mnist =
        Mnist::load(repo_root().join("data/mnist")).expect("data/mnist ships with the repository");
    let mut x_train = mnist.train_images.reshape(&[60000, 784]).unwrap();
    x_train.scale_in_place(1.0 / 255.0);
    let mut x_test = mnist.test_images.reshape(&[10000, 784]).unwrap();
    x_test.scale_in_place(1.0 / 255.0);
    let y_train = to_categorical(&mnist.train_labels, Some(10)).unwrap();
    let y_test = to_categorical(&mnist.test_labels, Some(10)).unwrap();
    (x_train, y_train, x_test, y_test)
}

fn reference_model(seed: u64) -> Sequential {
    let mut model = Sequential::with_seed(&[784], seed);
    model
        .add(Dense::new(64).activation(Activation::Relu))
        .unwrap();
    model
        .add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    model
        .compile(
            Adam::default(),
            Loss::CategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
    model
}

#[test]
fn files_match_the_published_counts() {
    let mnist = Mnist::load(repo_root().join("data/mnist")).unwrap();
    assert_eq!(mnist.train_images.shape(), &[60000, 28, 28]);
    assert_eq!(mnist.test_images.shape(), &[10000, 28, 28]);
    let counts = |labels: &Tensor| {
        let mut c = [0usize; 10];
        labels.data().iter().for_each(|&l| c[l as usize] += 1);
        c
    };
    // From data/mnist/SOURCE.md (the published per-class counts).
    assert_eq!(
        counts(&mnist.train_labels),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        counts(&mnist.test_labels),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let pixels = mnist.train_images.data();
    assert_eq!(pixels.iter().copied().fold(0.0, f32::max), 255.0);
    assert_eq!(pixels.iter().copied().fold(255.0, f32::min), 0.0);
}

/// The reference Keras script reaches about 97.5%; Ember must reach at least 97.3%.
#[test]
fn reference_script_reaches_keras_accuracy() {
    ember::set_num_threads(1).unwrap();
    let (x_train, y_train, x_test, y_test) = load();
    let mut model = reference_model(1);
    let options = FitOptions {
        epochs: 10,
        batch_size: 32,
        validation_split: 0.2,
        seed: Some(1),
        verbose: Verbosity::Silent,
        ..FitOptions::default()
    };
    let history = model.fit(&x_train, &y_train, &options).unwrap();
    let losses = history.metric("loss");
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "training loss falls every epoch: {losses:?}"
    );
    let test = model.evaluate(&x_test, &y_test, 32).unwrap();
    let accuracy = test.accuracy.unwrap();
    assert!(accuracy >= 0.973, "test accuracy {accuracy}");
    // predict agrees with evaluate.
    let predictions = model.predict(&x_test, 128).unwrap();
    let correct = predictions
        .argmax_rows()
        .iter()
        .zip(y_test.argmax_rows())
        .filter(|(a, b)| **a == *b)
        .count();
    assert_eq!(correct as f64 / 10000.0, accuracy);
}

#[test]
fn same_seed_same_weights_and_accuracy_with_one_thread() {
    ember::set_num_threads(1).unwrap();
    let (x_train, y_train, x_test, y_test) = load();
    let x = x_train.slice_rows(0, 6000).unwrap();
    let y = y_train.slice_rows(0, 6000).unwrap();
    let run = |seed: u64| {
        let mut model = reference_model(seed);
        let options = FitOptions {
            epochs: 2,
            validation_split: 0.2,
            seed: Some(seed),
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        model.fit(&x, &y, &options).unwrap();
        let accuracy = model
            .evaluate(&x_test, &y_test, 32)
            .unwrap()
            .accuracy
            .unwrap();
        let weights: Vec<Tensor> = model
            .weights()
            .into_iter()
            .map(|(_, w)| w.clone())
            .collect();
        (weights, accuracy)
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a, b, "bit-identical weights and accuracy for the same seed");
    assert_ne!(a.0, c.0);
}

#[test]
fn the_model_file_describes_the_reference_script() {
    let spec = ModelSpec::from_file(repo_root().join("models/mnist-mlp.toml")).unwrap();
    assert_eq!(
        (
            spec.fit.epochs,
            spec.fit.batch_size,
            spec.fit.validation_split
        ),
        (10, 32, 0.2)
    );
    let model = spec.build().unwrap();
    assert_eq!(model.count_params(), 50_890);
    assert_eq!(model.output_shape(), &[10]);
    let data = spec
        .data
        .unwrap()
        .load(&repo_root().join("models"))
        .unwrap();
    assert_eq!(data.x_train.shape(), &[60000, 784]);
    assert_eq!(data.y_test.shape(), &[10000, 10]);
    assert!(data
        .x_train
        .data()
        .iter()
        .all(|&v| (0.0..=1.0).contains(&v)));
}

/// The Keras "simple MNIST convnet" model file (with a RandomTranslation in front): Keras's
/// parameter counts, and it learns.
#[test]
fn convnet_model_file_builds_like_keras_and_learns() {
    ember::set_num_threads(1).unwrap();
    let spec = ModelSpec::from_file(repo_root().join("models/mnist-cnn.toml")).unwrap();
    let mut model = spec.build().unwrap();
    let summary = model.summary();
    for needle in [
        "random_translation (RandomTranslation)",
        "(None, 26, 26, 32)",
        "max_pooling2d (MaxPooling2D)",
        "(None, 5, 5, 64)",
        "18,496",
        "(None, 1600)",
        "Total params: 34,826",
    ] {
        assert!(summary.contains(needle), "{needle}\n{summary}");
    }
    let data = spec
        .data
        .clone()
        .unwrap()
        .load(&repo_root().join("models"))
        .unwrap();
    assert_eq!(data.x_train.shape(), &[60000, 28, 28, 1]);
    // A short run on the first 3000 images already classifies most of 1000 test images.
    let x = data.x_train.slice_rows(0, 3000).unwrap();
    let y = data.y_train.slice_rows(0, 3000).unwrap();
    let options = FitOptions {
        epochs: 2,
        batch_size: 64,
        seed: Some(1),
        verbose: Verbosity::Silent,
        ..FitOptions::default()
    };
    model.fit(&x, &y, &options).unwrap();
    let x_test = data.x_test.slice_rows(0, 1000).unwrap();
    let y_test = data.y_test.slice_rows(0, 1000).unwrap();
    let accuracy = model
        .evaluate(&x_test, &y_test, 128)
        .unwrap()
        .accuracy
        .unwrap();
    assert!(accuracy > 0.85, "{accuracy}");
}

/// models/mnist-residual.toml, the graph form of the model file: two Dense(128) layers with
/// a skip connection. Seed 1 reaches at least 0.975, and the graph survives save / load.
#[test]
fn the_residual_model_file_reaches_0_975_and_round_trips() {
    let path = repo_root().join("models/mnist-residual.toml");
    let spec = ModelSpec::from_file(&path).unwrap();
    let mut model = spec.build().unwrap();
    assert!(!model.is_sequential());
    let summary = model.summary();
    for needle in ["sum (Add)", "h1[0][0], h2[0][0]", "Connected to", "118,282"] {
        assert!(summary.contains(needle), "{needle}\n{summary}");
    }
    let data = spec
        .data
        .as_ref()
        .unwrap()
        .load(path.parent().unwrap())
        .unwrap();
    let options = FitOptions {
        verbose: Verbosity::Silent,
        ..spec.fit.options()
    };
    model.fit(&data.x_train, &data.y_train, &options).unwrap();
    let accuracy = model
        .evaluate(&data.x_test, &data.y_test, 32)
        .unwrap()
        .accuracy
        .unwrap();
    assert!(accuracy >= 0.975, "test accuracy {accuracy}");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("residual.safetensors");
    model.save(&saved).unwrap();
    let loaded = Model::load(&saved).unwrap();
    let x = data.x_test.slice_rows(0, 500).unwrap();
    assert_eq!(
        loaded.predict(&x, 64).unwrap(),
        model.predict(&x, 64).unwrap()
    );
    assert_eq!(loaded.summary(), summary);
}
