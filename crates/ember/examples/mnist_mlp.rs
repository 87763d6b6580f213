//! The classic Keras MNIST script, line by line in Ember:
//!
//! ```python
//! (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
//! x_train = x_train.reshape(60000, 784).astype("float32") / 255
//! x_test = x_test.reshape(10000, 784).astype("float32") / 255
//! y_train = keras.utils.to_categorical(y_train, 10)
//! y_test = keras.utils.to_categorical(y_test, 10)
//!
//! model = keras.Sequential([
//!     keras.Input(shape=(784,)),
//!     layers.Dense(64, activation="relu"),
//!     layers.Dense(10, activation="softmax"),
//! ])
//! model.summary()
//! model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.2)
//! score = model.evaluate(x_test, y_test)
//! print("Test accuracy:", score[1])
//! ```
//!
//! Run from the repository root: `cargo run --release --example mnist_mlp [DATA_DIR]`.

use ember::prelude::*;

fn main() -> ember::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/mnist".into());
    let mnist = Mnist::load(&dir)?;
    let mut x_train = mnist.train_images.reshape(&[60000, 784])?;
    x_train.scale_in_place(1.0 / 255.0);
    let mut x_test = mnist.test_images.reshape(&[10000, 784])?;
    x_test.scale_in_place(1.0 / 255.0);
    let y_train = to_categorical(&mnist.train_labels, Some(10))?;
    let y_test = to_categorical(&mnist.test_labels, Some(10))?;

    let mut model = Sequential::with_seed(&[784], 1);
    model.add(Dense::new(64).activation(Activation::Relu))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    print!("{}", model.summary());
    model.compile(
        Adam::default(),
        Loss::CategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    let options = FitOptions {
        epochs: 10,
        batch_size: 32,
        validation_split: 0.2,
        ..FitOptions::default()
    };
    model.fit(&x_train, &y_train, &options)?;
    let score = model.evaluate(&x_test, &y_test, 32)?;
    println!("Test accuracy: {:.4}", score.accuracy.unwrap_or(0.0));
    Ok(())
}
