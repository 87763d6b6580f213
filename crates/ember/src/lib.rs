//! Ember: a deep-learning toolkit with Keras's vocabulary and Rust's speed.
//!
//! ```
//! use ember::prelude::*;
//!
//! let mut model = Sequential::with_seed(&[2], 7);
//! model.add(Dense::new(4).activation(Activation::Tanh)).unwrap();
//! model.add(Dense::new(1).activation(Activation::Sigmoid)).unwrap();
//! model.compile(Adam::new(0.05), Loss::BinaryCrossentropy, &[Metric::Accuracy]).unwrap();
//!
//! // XOR.
//! let x = Tensor::new(&[4, 2], vec![0., 0., 0., 1., 1., 0., 1., 1.]).unwrap();
//! let y = Tensor::new(&[4, 1], vec![0., 1., 1., 0.]).unwrap();
//! let options = FitOptions { epochs: 300, batch_size: 4, verbose: Verbosity::Silent, ..Default::default() };
//! model.fit(&x, &y, &options).unwrap();
//! assert_eq!(model.evaluate(&x, &y, 4).unwrap().accuracy, Some(1.0));
//! ```

pub mod atomic;
pub mod autograd;
pub mod callbacks;
pub mod data;
pub mod distributed;
mod error;
pub mod explain;
pub mod gguf;
pub mod io;
pub mod jobs;
pub mod llm;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod optim;
pub mod prediction;
pub mod privacy;
pub mod progress;
pub mod read;
pub mod recommend;
pub mod report;
pub mod saved;
pub mod spec;
pub mod tabular;
pub mod tensor;
pub mod text;
pub mod tune;

pub use autograd::{Tape, Var};
pub use data::{read_idx, to_categorical, Mnist};
pub use error::{Error, Result};
pub use loss::Loss;
pub use metrics::Metric;
pub use model::{
    Callback, Control, EpochLog, Evaluation, FitOptions, Graph, GraphLayer, History, InputSpec,
    Model, Sequential, SoftmaxRegression, SymbolicTensor, Verbosity,
};
pub use nn::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, Layer, LayerConfig, MaxPooling2D, Merge, Padding, Reshape,
};
pub use optim::{Adam, Optimizer, RmsProp, Sgd};
pub use saved::SavedModel;
pub use spec::ModelSpec;
pub use tensor::activation::Activation;
pub use tensor::threads::{num_threads, set_num_threads};
pub use tensor::Tensor;

/// Everything a training script needs, in one `use`.
pub mod prelude {
    pub use crate::callbacks::{
        CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLrOnPlateau,
        Schedule, TerminateOnNan,
    };
    pub use crate::{
        to_categorical, Activation, ActivationLayer, Adam, AveragePooling2D, BatchNormalization,
        Callback, Conv2D, Dense, Dropout, FitOptions, Flatten, GlobalAveragePooling2D, Graph,
        History, Layer, Loss, MaxPooling2D, Merge, Metric, Mnist, Model, Optimizer, Padding,
        Reshape, RmsProp, Sequential, Sgd, Tensor, Verbosity,
    };
}
