//! `Sequential`: a stack of layers, each feeding the next — the simplest [`Model`].

use std::ops::{Deref, DerefMut};

use super::functional::{Call, Entry, InputSpec, KindCounts, Model, ModelKind, Operation, Source};
use crate::error::Result;
use crate::nn::Layer;
use crate::tensor::random::Rng;

/// A linear stack of layers (Keras `Sequential`): a [`Model`] with one input whose layers
/// each read the previous one's output. Everything a model does (compile, fit, evaluate,
/// predict, summary, save) it does through `Deref`.
///
/// ```
/// use ember::prelude::*;
/// let mut model = Sequential::with_seed(&[4], 1);
/// model.add(Dense::new(8).activation(Activation::Relu)).unwrap();
/// model.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
/// model.compile(Adam::default(), Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy]).unwrap();
/// let x = Tensor::zeros(&[5, 4]);
/// assert_eq!(model.predict(&x, 32).unwrap().shape(), &[5, 3]);
/// ```
pub struct Sequential {
    model: Model,
    kinds: KindCounts,
}

impl Sequential {
    /// An empty model for samples of `input_shape` (without the batch axis), seed 0.
    pub fn new(input_shape: &[usize]) -> Self {
        Self::with_seed(input_shape, 0)
    }

    /// An empty model whose weight initialisation and shuffling derive from `seed`.
    pub fn with_seed(input_shape: &[usize], seed: u64) -> Self {
        Sequential {
            model: Model {
                kind: ModelKind::Sequential,
                inputs: vec![InputSpec {
                    name: "input".into(),
                    shape: input_shape.to_vec(),
                }],
                layers: Vec::new(),
                calls: Vec::new(),
                outputs: vec![Source::Input(0)],
                rng: Rng::seed(seed),
                compiled: None,
            },
            kinds: KindCounts::default(),
        }
    }

    /// Appends a layer and builds its weights for the current output shape.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<&mut Self> {
        self.add_boxed(Box::new(layer))
    }

    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer>) -> Result<&mut Self> {
        let m = &mut self.model;
        let input = m.output_shape().to_vec();
        let mut init_rng = m.rng.fork();
        let output_shape = crate::nn::build_checked(layer.as_mut(), &input, &mut init_rng)?;
        let name = self.kinds.next_name(layer.kind());
        self.kinds.add(layer.kind());
        m.layers.push(Entry {
            name,
            op: Operation::Layer(layer),
            trainable: true,
        });
        m.calls.push(Call {
            layer: m.layers.len() - 1,
            inputs: m.outputs.clone(),
            output_shape,
        });
        m.outputs = vec![Source::Call(m.calls.len() - 1)];
        Ok(self)
    }

    /// The model itself, for code that takes any [`Model`].
    pub fn into_model(self) -> Model {
        self.model
    }
}

impl Deref for Sequential {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

impl DerefMut for Sequential {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.model
    }
}

impl From<Sequential> for Model {
    fn from(s: Sequential) -> Model {
        s.model
    }
}
